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
from urllib.parse import quote

import jinja2

from generator import alerting, names
from generator.catalogue.core import show
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
    graph_url: str
    dashboard_url: str
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


def row(model: Model, a: alerting.Alert) -> Row:
    s = a.ctx.service
    query = a.definition.query(a.ctx)
    threshold = "" if a.ctx.setting.threshold is None else show(a.ctx.setting.threshold, a.definition.unit)
    found = alerting.detection(model, a)
    return Row(
        name=a.name,
        page=names.runbook_file(a.definition.name).rsplit("/", 1)[-1],
        service=s.name if s else names.META_SERVICE,
        team=s.team if s else names.META_TEAM,
        severity=a.ctx.setting.severity,
        expr=a.definition.expression(a.ctx),
        for_=str(a.ctx.setting.for_),
        threshold=threshold,
        query=query,
        graph_url=f"{model.stack.prometheus_url}/graph?g0.expr={quote(query, safe='')}&g0.tab=0",
        dashboard_url=alerting.dashboard_url(model, s),
        routed=routed(model, a),
        window=str(found.window) if found.window.ms else "",
        detection=str(found.worst),
    )


def render(model: Model, topo: Topology) -> dict[str, Any]:
    alerts = alerting.all_alerts(model)
    by_name: dict[str, list[alerting.Alert]] = defaultdict(list)
    for a in alerts:
        by_name[a.definition.name].append(a)  # tiers of an alert share its page
    out: dict[str, Any] = {}
    page = _env().get_template("runbook.md.j2")
    for name, group in sorted(by_name.items()):
        d = group[0].definition
        rows = [row(model, a) for a in group]
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
        )
    catalogue_rows = sorted((row(model, a) for a in alerts), key=lambda r: (names.LEVELS.index(r.severity), r.name, r.service))
    handwritten = [{"name": r["alert"], "file": f"{f.name}.yml", "severity": str(r.get("labels", {}).get("severity", "")),
                    "level": model.severity_map.get(str(r.get("labels", {}).get("severity", "")), r.get("labels", {}).get("severity", "—")),
                    "expr": r["expr"], "for_": r.get("for", "0s")}
                   for f in model.handwritten for g in f.groups for r in g["rules"] if "alert" in r]
    out[names.ALERTS_DOC] = _env().get_template("alerts.md.j2").render(
        rows=catalogue_rows, services=len(model.services), scrape=model.stack.scrape_interval, evaluation=model.stack.evaluation_interval,
        handwritten=handwritten)
    return out
