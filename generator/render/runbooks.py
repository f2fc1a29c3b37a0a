"""docs/runbooks/<alert>.md (one page per alert name) and docs/alerts.md (the catalogue), from Jinja2 templates.

A page covers every service the alert fires for: what it means, likely
causes, the first PromQL to run, how to silence it. The texts come from the
catalogue (generator/catalogue/); the expressions and routing from the same
code that renders the rules and Alertmanager's routes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from generator import alerting, catalogue, components, links, names
from generator.catalogue.core import fast_interval, show, slow_interval
from generator.model import Model
from generator.topology import Topology


@dataclass(frozen=True)
class Row:
    name: str
    page: str
    service: str
    team: str
    severity: str
    expr: str
    for_: str
    threshold: str
    query: str
    graph_url: str  # under docker compose (the inventory's Prometheus URL)
    native_graph_url: str  # the native runner's Prometheus (either version redirects /graph to its query page)
    dashboard_url: str
    native_dashboard_url: str | None  # the native runner's Grafana (when grafana-server is installed); None for a service's own link
    routed: str
    window: str
    detection: str


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("generator", "templates"), autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["cell"] = lambda text: str(text).replace("\n", " ").replace("|", "\\|")
    return env


def routed(model: Model, a: alerting.Alert) -> str:
    """Where Alertmanager sends this alert (receivers in order), as the routing renderer decides it."""
    if a.name == names.WATCHDOG_ALERT:
        return f"{model.watchdog.receiver} (heartbeat)" if model.watchdog else f"{names.NULL_RECEIVER} (no heartbeat receiver configured)"
    level = a.ctx.setting.severity
    team = model.teams.get(a.ctx.service.team) if a.ctx.service else None
    receivers = team.receivers[level] if team else model.levels[level].receivers
    return ", ".join(receivers)


def row(model: Model, a: alerting.Alert, expr: str, found: alerting.Detection) -> Row:
    s = a.ctx.service
    query = a.definition.query(a.ctx)
    threshold = "" if a.ctx.setting.threshold is None else show(a.ctx.setting.threshold, a.definition.unit)
    uid = names.dashboard_uid("stack") if s is None else names.service_dashboard_uid(s.name)
    return Row(
        name=a.name,
        page=names.runbook_file(a.definition.name).rsplit("/", 1)[-1],
        service=s.name if s else names.META_SERVICE,
        team=s.team if s else names.META_TEAM,
        severity=a.ctx.setting.severity,
        expr=expr,
        for_=str(a.ctx.setting.for_),
        threshold=threshold,
        query=query,
        graph_url=links.graph_url(model.stack.prometheus_url, query),
        native_graph_url=links.graph_url(f"http://127.0.0.1:{components.get('prometheus').native_port}", query),
        # The same in both modes: people read the committed runbooks, whatever runs the stack.
        dashboard_url=s.dashboard_url if s is not None and s.dashboard_url else f"{model.stack.grafana_url}/d/{uid}",
        native_dashboard_url=None if s is not None and s.dashboard_url else
        f"http://127.0.0.1:{components.get('grafana').native_port}/d/{uid}",
        routed=routed(model, a),
        window=str(found.window) if found.window.ms else "",
        detection=str(found.worst),
    )


def render(model: Model, topo: Topology) -> dict[str, Any]:
    alerts = alerting.all_alerts(model)
    exprs = [a.definition.expression(a.ctx) for a in alerts]
    rows_of = [row(model, a, expr, found) for a, expr, found in zip(alerts, exprs, alerting.detections(model, alerts, exprs), strict=True)]
    by_name: dict[str, list[tuple[alerting.Alert, Row]]] = defaultdict(list)
    for a, r in zip(alerts, rows_of, strict=True):
        by_name[a.definition.name].append((a, r))  # tiers of an alert share its page
    out: dict[str, Any] = {}
    page = _env().get_template("runbook.md.j2")
    # Runbooks are shared by both modes (the native runner's copy is not the one people read): Alertmanager's UI
    # is linked as compose publishes it, with a note that natively there is none.
    compose_ui = links.Ui(model.stack.prometheus_url, model.stack.alertmanager_url, model.stack.grafana_url)
    for name, pairs in sorted(by_name.items()):
        group = [a for a, _ in pairs]
        rows = [r for _, r in pairs]
        d = group[0].definition
        out[names.runbook_file(name)] = page.render(
            name=name,
            meaning=d.meaning,
            causes=list(dict.fromkeys(c for a in group for c in a.definition.causes)),
            severities=", ".join(sorted({r.severity for r in rows})),
            problem=d.problem_label,
            services=list(dict.fromkeys(r.service for r in rows)),
            rows=rows,
            custom=any(a.custom for a in group),
            instance_down_alerts=names.INSTANCE_DOWN_ALERTS,
            service_down_alerts=names.SERVICE_DOWN_ALERTS,
            alertmanager_url=model.stack.alertmanager_url,
            alertmanager_alerts=compose_ui.alertmanager_alerts(f'{{alertname="{name}"}}'),
        )
    catalogue_rows = sorted(rows_of, key=lambda r: (names.LEVELS.index(r.severity), r.name, r.service))
    handwritten = [{"name": r["alert"], "file": f"{f.name}.yml", "severity": str(r.get("labels", {}).get("severity", "")),
                    "level": model.severity_map.get(str(r.get("labels", {}).get("severity", "")), r.get("labels", {}).get("severity", "—")),
                    "expr": r["expr"], "for_": r.get("for", "0s")}
                   for f in model.handwritten for g in f.groups for r in g["rules"] if "alert" in r]
    out[names.ALERTS_DOC] = _env().get_template("alerts.md.j2").render(
        rows=catalogue_rows, services=len(model.services), scrape=model.stack.scrape_interval, evaluation=model.stack.evaluation_interval,
        fast=fast_interval(model), slow=slow_interval(model),
        handwritten=handwritten, kinds=catalogue_by_kind())
    return out


@dataclass(frozen=True)
class KindRow:
    name: str
    severity: str
    threshold: str
    for_: str
    requires: str
    meaning: str


def catalogue_by_kind() -> list[tuple[str, list[KindRow]]]:
    """Every catalogue alert under each kind that gets it (the stack's own under "the stack itself")."""
    kinds: dict[str, list[KindRow]] = {}
    for d in catalogue.ALERTS + catalogue.META_ALERTS:
        if d.threshold is not None:
            threshold = show(d.threshold, d.unit)
        else:
            threshold = "derived" if d.derived_threshold is not None else "-"
        row = KindRow(d.name, d.severity, threshold, d.for_, d.requires or "-", d.meaning)
        for kind in d.kinds:
            kinds.setdefault("the stack itself" if kind == "meta" else kind, []).append(row)
    return list(kinds.items())
