"""Plain-text explanations of what an inventory produces: scrapes, alerts, routing, dashboards."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from generator import alerting, links, names
from generator.model import Model, Service, TimeInterval
from generator.render import alertmanager as am_render


def receivers_for(model: Model, team: str, level: str) -> tuple[str, ...]:
    return model.teams[team].receivers[level]


def _when(model: Model, team: str | None, level: str) -> str:
    policy = model.levels[level]
    notes = []
    if policy.active_time_intervals:
        notes.append("only during " + ", ".join(policy.active_time_intervals))
    muted = am_render.mutes(model, level, model.teams.get(team) if team else None)
    if muted:
        notes.append("muted during " + ", ".join(muted))
    notes.append(f"repeat every {policy.repeat_interval}")
    return "; ".join(notes)


def service_text(model: Model, s: Service) -> str:
    lines = [f"{s.name} ({s.kind}, team {s.team})"]
    if s.scrape:
        lines.append(f"  scrape: job {names.service_job(s.name)!r} every {s.scrape.interval} "
                     f"{s.scrape.scheme}://{{{', '.join(s.scrape.targets)}}}{s.scrape.path}")
    for p in s.probes:
        extra = f", slower than {p.max_duration} alerts" if p.max_duration else ""
        lines.append(f"  probe:  {p.name} {p.url} via blackbox module {p.module}{extra}")
    if s.slo:
        parts = []
        if s.slo.availability is not None:
            parts.append(f"availability {s.slo.availability:g}%")
        if s.slo.latency_threshold is not None:
            parts.append(f"{s.slo.latency_percentile:g}% of requests under {s.slo.latency_threshold}")
        lines.append(f"  slo:    {', '.join(parts)} over {s.slo.window}")
    lines.append("  alerts:")
    rows = []
    for a in s.alerts:
        limit = "" if a.threshold is None else f"threshold {a.threshold:g}, "
        rows.append((a.severity, a.name, f"{limit}for {a.for_}"))
    for r in s.rules:
        limit = f"{r.op} {r.threshold:g} " if r.threshold is not None else ""
        rows.append((r.severity, r.name, f"{r.type} {limit}for {r.for_}"))
    for level, name, cond in sorted(rows):
        to = ", ".join(receivers_for(model, s.team, level))
        lines.append(f"    {level} {name:<34} {cond:<24} -> {to} ({_when(model, s.team, level)})")
    if s.disabled_alerts:
        lines.append(f"  disabled: {', '.join(s.disabled_alerts)}")
    lines.append(f"  dashboard: {alerting.dashboard_url(model, s)}")
    return "\n".join(lines)


def _interval_text(t: TimeInterval) -> str:
    parts = [",".join(t.weekdays), ",".join(f"{r.start_time}-{r.end_time}" for r in t.times),
             ("days " + ",".join(t.days_of_month)) if t.days_of_month else "", ",".join(t.months), ",".join(t.years)]
    return " ".join(p for p in parts if p) + f" ({t.location or 'UTC'})"


@dataclass(frozen=True)
class RouteRow:
    """Where an alert of one severity from one team goes; team None stands for any team not listed."""

    level: str
    team: str | None
    receivers: tuple[str, ...]
    overridden: bool
    when: str


def routing_rows(model: Model) -> list[RouteRow]:
    rows = []
    for team in model.teams.values():
        rows += [RouteRow(lv, team.name, team.receivers[lv], lv in team.overridden, _when(model, team.name, lv)) for lv in names.LEVELS]
    rows += [RouteRow(lv, None, model.levels[lv].receivers, False, _when(model, None, lv)) for lv in names.LEVELS]
    return rows


def routing_table(model: Model) -> str:
    lines = ["routing (severity x team -> receivers, in delivery order; timing is group_wait/group_interval):"]
    for row in routing_rows(model):
        policy = model.levels[row.level]
        who = f"team={row.team}" if row.team else "any other team"
        to = ", ".join(row.receivers) + (" (team override)" if row.overridden else "")
        lines.append(f"  {row.level} {who:<24} -> {to:<48} {policy.group_wait}/{policy.group_interval}; {row.when}")
    if model.watchdog:
        lines.append(f"  {names.WATCHDOG_ALERT:<27} -> {model.watchdog.receiver} (heartbeat every {model.watchdog.repeat_interval}, never muted)")
    else:
        lines.append(f"  {names.WATCHDOG_ALERT:<27} -> {names.NULL_RECEIVER} (no heartbeat receiver: swallowed)")
    lines.append(f"  {'no or unknown severity':<27} -> {model.default_receiver} (catch-all)")
    if model.time_intervals:
        lines.append("time intervals:")
        for name, entries in model.time_intervals.items():
            lines.append(f"  {name}: " + " or ".join(_interval_text(t) for t in entries))
    lines.append("inhibition (the first alert mutes the second while it fires):")
    lines.append(f"  {' or '.join(names.INSTANCE_DOWN_ALERTS)} of an instance -> the other alerts of that instance")
    lines.append(f"  {' or '.join(names.SERVICE_DOWN_ALERTS)} of a service -> every other alert of that service (TargetDown steps aside)")
    for i, level in enumerate(names.LEVELS[:-1]):
        lower = names.LEVELS[i + 1:]
        lines.append(f"  {level} -> {lower[0] if len(lower) == 1 else lower[0] + '-' + lower[-1]} of the same service and {names.PROBLEM}")
    return "\n".join(lines)


def for_running(model: Model, inventory: Path, state: Mapping[str, Any] | None) -> Model:
    """The model with the pages of the stack `monstack up` started from this inventory (its links then lead somewhere)."""
    if not state or not state.get("ui") or Path(str(state.get("inventory", ""))) != Path(inventory).absolute():
        return model
    return replace(model, stack=replace(model.stack, ui_override=links.Ui.from_json(state["ui"])))


def pages_text(model: Model) -> str:
    ui = model.stack.ui
    where = "the running native stack" if ui.mode == "native" else "docker compose (stack.urls)"
    am = ui.alertmanager + ("" if ui.alertmanager_ui else "   (API only: monstack silence add|list|expire)")
    return "\n".join([f"pages of {where}:", f"  Prometheus    {ui.prometheus}   alerts {ui.alerts}   targets {ui.targets}",
                      f"  Alertmanager  {am}", f"  Grafana       {ui.grafana or 'not running'}"])


def services(model: Model, only: str | None = None) -> str:
    parts = [service_text(model, s) for s in model.services if only in (None, s.name)]
    parts.append(pages_text(model))
    if only is None:
        parts.append(routing_table(model))
    return "\n\n".join(parts)


def dashboards(model: Model, only: str | None = None) -> str:
    """Each generated dashboard (only the service's own when one is named): rows, panels, units and queries."""
    from generator.render import dashboards as dash
    from generator.render.dashboards import service as service_dash
    from generator.topology import COMPOSE

    wanted = service_dash.file_of(model, model.service(only)) if only else None
    blocks = []
    for path, d in dash.render(model, COMPOSE).items():
        if wanted and path != wanted:
            continue
        folder = path.split("/")[-2]
        variables = ", ".join(v["name"] for v in d["templating"]["list"]) or "none"
        lines = [d["title"], f"  uid {d['uid']} in folder {folder} ({path}); variables: {variables}"]
        links = [f"{link['title']} -> {link['url'] or 'tags ' + ','.join(link['tags'])}" for link in d["links"]]
        if links:
            lines.append(f"  links: {'; '.join(links)}")
        for row in d["panels"]:
            members = [row]
            if row["type"] == "row":
                lines.append(f"  {row['title']}" + (" (collapsed)" if row.get("collapsed") else ""))
                members = row["panels"] if row.get("collapsed") else []
            for p in members:
                unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
                lines.append(f"    [{p['type']}{', ' + unit if unit else ''}] {p['title']}")
                for t in p.get("targets", []):
                    lines.append(f"      {t['refId']} {t['legendFormat']!r}: {t['expr']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --- the same as data (`monstack explain --json`) ----------------------------------------------


def _ui_data(model: Model) -> dict[str, Any]:
    ui = model.stack.ui
    return {"mode": ui.mode, "prometheus": ui.prometheus, "prometheus_alerts": ui.alerts, "prometheus_targets": ui.targets,
            "alertmanager": ui.alertmanager, "alertmanager_ui": ui.alertmanager_ui, "grafana": ui.grafana}


def service_data(model: Model, s: Service) -> dict[str, Any]:
    def routed(level: str) -> dict[str, Any]:
        return {"receivers": list(receivers_for(model, s.team, level)), "when": _when(model, s.team, level)}

    alerts: list[dict[str, Any]] = [{"name": a.name, "severity": a.severity, "threshold": a.threshold, "for": str(a.for_),
                                     "custom": False, **routed(a.severity)} for a in s.alerts]
    alerts += [{"name": r.name, "severity": r.severity, "threshold": r.threshold, "for": str(r.for_), "custom": True, "type": r.type,
                "op": r.op, **routed(r.severity)} for r in s.rules]
    return {
        "name": s.name, "kind": s.kind, "team": s.team,
        "scrape": None if not s.scrape else {"job": names.service_job(s.name), "interval": str(s.scrape.interval),
                                              "scheme": s.scrape.scheme, "targets": list(s.scrape.targets), "path": s.scrape.path},
        "probes": [{"name": p.name, "url": p.url, "module": p.module, "max_duration": str(p.max_duration) if p.max_duration else None}
                   for p in s.probes],
        "alerts": sorted(alerts, key=lambda a: (a["severity"], a["name"])),
        "disabled_alerts": list(s.disabled_alerts),
        "dashboard": alerting.dashboard_url(model, s),
    }


def services_data(model: Model, only: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"services": [service_data(model, s) for s in model.services if only in (None, s.name)], "pages": _ui_data(model)}
    if only is None:
        out["routing"] = [{"level": r.level, "team": r.team, "receivers": list(r.receivers), "team_override": r.overridden, "when": r.when}
                          for r in routing_rows(model)]
    return out


def dashboards_data(model: Model, only: str | None = None) -> dict[str, Any]:
    from generator.render import dashboards as dash
    from generator.render.dashboards import lint
    from generator.render.dashboards import service as service_dash
    from generator.topology import COMPOSE

    wanted = service_dash.file(model.service(only)) if only else None
    boards = []
    for path, d in dash.render(model, COMPOSE).items():
        if wanted and path != wanted:
            continue
        boards.append({"path": path, "uid": d["uid"], "title": d["title"], "variables": [v["name"] for v in d["templating"]["list"]],
                       "panels": [{"title": p.get("title"), "type": p.get("type"), "unit": p.get("fieldConfig", {}).get("defaults", {}).get("unit"),
                                   "queries": [{"ref_id": t["refId"], "legend": t["legendFormat"], "expr": t["expr"]} for t in p.get("targets", [])]}
                                  for p in lint.panels(d)]})
    return {"dashboards": boards}
