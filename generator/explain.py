"""Plain-text explanations of what an inventory produces: scrapes, alerts, routing, dashboards."""
from __future__ import annotations

from generator import names
from generator.model import Model, Service
from generator.render import rules as rules_render


def receivers_for(model: Model, team: str, level: str) -> tuple[str, ...]:
    return model.teams[team].receivers[level]


def _when(model: Model, team: str, level: str) -> str:
    policy = model.levels[level]
    notes = []
    if policy.active_time_intervals:
        notes.append("only during " + ", ".join(policy.active_time_intervals))
    mutes = model.mute_time_intervals + policy.mute_time_intervals + model.teams[team].mute_time_intervals
    if mutes:
        notes.append("muted during " + ", ".join(dict.fromkeys(mutes)))
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
    lines.append(f"  dashboard: {rules_render.dashboard_url(model, s)}")
    return "\n".join(lines)


def routing_table(model: Model) -> str:
    lines = ["routing (severity x team -> receivers, in order):"]
    for team in model.teams.values():
        for level in names.LEVELS:
            lines.append(f"  {level} team={team.name:<16} -> {', '.join(team.receivers[level])}")
    watchdog = model.watchdog.receiver if model.watchdog else "(no heartbeat receiver: swallowed)"
    lines.append(f"  Watchdog                 -> {watchdog}")
    lines.append(f"  anything else            -> {model.default_receiver}")
    return "\n".join(lines)


def services(model: Model, only: str | None = None) -> str:
    parts = [service_text(model, s) for s in model.services if only in (None, s.name)]
    if only is None:
        parts.append(routing_table(model))
    return "\n\n".join(parts)


def dashboards(model: Model, only: str | None = None) -> str:
    from generator.render import dashboards as dash
    from generator.topology import COMPOSE

    lines = []
    for path, d in dash.render(model, COMPOSE).items():
        if only and only not in path and only not in d.get("title", ""):
            continue
        lines.append(f"{d['title']}  (uid {d['uid']}, {path})")
        for p in d.get("panels", []):
            for t in p.get("targets", []):
                lines.append(f"  [{p['type']}] {p['title']}: {t.get('expr', '')}")
    return "\n".join(lines)
