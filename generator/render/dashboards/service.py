"""One dashboard per service, in its team's folder: status, RED, saturation and the panels of its kind.

A fleet (generator/fleet.py) gets one dashboard per shape instead, in the stack's folder: the same
panels built for a stand-in service named `$service`, a variable listing the shape's members, and the
objectives' burn-rate panels that the SLO dashboard shows for smaller inventories.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from generator import fleet, names
from generator.model import HttpMetrics, Model, Service, WorkerMetrics
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p
from generator.render.dashboards import sli


def uid(s: Service) -> str:
    return names.service_dashboard_uid(s.name)


def file(s: Service) -> str:
    return names.dashboard_file(s.team, s.name)


def variables(s: Service, shape: fleet.Shape | None = None) -> list[dict[str, Any]]:
    mine = f'{names.SERVICE}="{s.name}"'
    out = [_members(shape)] if shape else []
    out.append(b.query_variable("env", "Environment", b.label_values(f"up{{{mine}}}", names.ENV), multi=False))
    if s.scrape:  # the scrape targets; probe panels ignore it (a probe's instance is the URL it probes)
        out.append(b.query_variable("instance", "Instance", b.label_values(
            f'up{{{mine}, {names.PROBE}="", {names.ENV}=~"$env"}}', "instance")))
    return out


def _members(shape: fleet.Shape) -> dict[str, Any]:
    """The shape's services, listed (no label tells the shapes apart)."""
    return {
        "name": "service", "label": "Service", "type": "custom", "description": f"The {len(shape.members)} {shape.kind} "
        "services of this shape: the same panels, thresholds and objectives.", "query": ",".join(shape.members),
        "options": [], "hide": 0, "multi": False, "includeAll": False, "skipUrlSync": False,
        "current": {"selected": True, "text": shape.members[0], "value": shape.members[0]},
    }


def links(model: Model, s: Service, shape: fleet.Shape | None = None) -> list[dict[str, Any]]:
    out = [b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW), include_vars=False)]
    if shape is None:
        out.append(b.tag_dropdown(f"Team {s.team}", ["monstack", f"team:{s.team}"]))
    if sli.service_slis(model, s) and shape is None:
        out.append(b.dashboard_link("SLO", names.dashboard_uid(names.DASHBOARD_SLO)))
    if s.kind == "host":
        out.append(b.dashboard_link("Infrastructure", names.dashboard_uid(names.DASHBOARD_INFRASTRUCTURE)))
    if s.rules and any(r.name for r in s.rules) and shape is None:
        out.append(b.dashboard_link("Business", names.dashboard_uid(names.DASHBOARD_BUSINESS)))
    book = s.runbook_base or model.stack.runbooks_url
    if book:
        out.append(b.url_link("Runbooks", book, tooltip=f"Runbooks for {s.name}'s alerts"))
    return out


def _status(model: Model, s: Service, scope: p.Scope) -> list[b.Panel]:
    out: list[b.Panel] = []
    if s.scrape:
        out.append(p.targets_up(scope, "instance", "{{instance}}", w=9, h=5, links=p.runbook_links(model, s, "TargetDown")))
    if s.probes:
        out.append(p.probes_up(scope, names.PROBE, f"{{{{{names.PROBE}}}}}", w=9 if s.scrape else 18, h=5,
                               links=p.runbook_links(model, s, "HealthProbeFailing")))
    if not s.probes and s.scrape:
        out[0].w = 18
    out.append(p.firing_by_severity(p.Scope({names.SERVICE: s.name}, {}), w=6, h=5))
    return out


def render_one(model: Model, s: Service, shape: fleet.Shape | None = None) -> dict[str, Any]:
    """One service's dashboard; with a shape, the shared dashboard of its members (s is the shape's template)."""
    env = {names.ENV: "$env"}
    raw = p.Scope({names.SERVICE: s.name}, env, instance=True)
    sections = [b.Section("Status", _status(model, s, raw))]
    if shape is None:
        items = list(sli.service_slis(model, s))
    else:
        items = [dataclasses.replace(i, service=s) for i in sli.service_slis(model, shape.representative)]

    if s.kind == "http" and s.scrape and isinstance(s.metrics, HttpMetrics):
        sections.append(b.Section("Requests: rate, errors, duration", p.http_red(model, s, s.metrics, raw)))
        sections.append(b.Section("Database (the app's view)", p.database_panels(model, s, s.metrics, raw)))
    if s.kind == "worker" and s.scrape and isinstance(s.metrics, WorkerMetrics):
        sections.append(b.Section("Jobs and queues", p.worker_panels(model, s, s.metrics, raw)))
    if items:
        sections.append(b.Section("Objectives", [sli.budget_left_panel(items, w=24, h=4, scope_vars=env, slo_link=shape is None)]))
        if shape is not None:
            for i in items:
                sections.append(b.Section(f"{i.label} over {i.window}", sli.sli_panels(i, p.Scope({names.SERVICE: s.name}, env))))
    if s.kind in ("http", "worker") and s.scrape:
        sections.append(b.Section("Saturation", p.process_saturation(model, s, raw)))
    if s.kind == "postgres" and s.scrape:
        sections.append(b.Section("PostgreSQL", p.postgres_panels(model, s, raw)))
    if s.kind == "redis" and s.scrape:
        sections.append(b.Section("Redis", p.redis_panels(model, s, raw)))
    if s.kind == "host" and s.scrape:
        sections.append(b.Section("Host", p.host_panels(raw, s, model)))
    if s.rules:
        sections.append(b.Section("Business metrics (custom rules)", [p.rule_panel(model, s, r, raw) for r in s.rules]))
    if s.probes:
        sections.append(b.Section("Health probes", p.probe_panels(model, s, raw)))
    if s.scrape:
        sections.append(b.Section("Scrapes", p.scrape_panels(s, raw), collapsed=True))
    alerts = p.alerts_markdown(model, s)
    sections.append(b.Section("Alerts and runbooks", [b.text("Alerts", alerts, h=min(3 + alerts.count("\n"), 16))], collapsed=True))

    if shape is not None:
        return b.dashboard(shape.uid, f"{model.stack.name} / $service", source=model.source,
                           tags=["service", f"kind:{s.kind}"],
                           description=f"{len(shape.members)} {s.kind} services of one shape; pick one with the service variable",
                           sections=sections, variables=variables(s, shape), links=links(model, s, shape))
    what = f"{s.kind} service of team {s.team}" + (f": {s.description}" if s.description else "")
    return b.dashboard(uid(s), f"{model.stack.name} / {s.name}", source=model.source,
                       tags=["service", f"team:{s.team}", f"kind:{s.kind}"], description=f"{s.name}, {what}.",
                       sections=sections, variables=variables(s), links=links(model, s))


def render(model: Model) -> dict[str, dict[str, Any]]:
    if fleet.enabled(model):
        return {shape.file: render_one(model, shape.template, shape) for shape in fleet.shapes(model)}
    return {file(s): render_one(model, s) for s in model.services}


def file_of(model: Model, s: Service) -> str:
    """The dashboard file that shows the service (its own, or its shape's in a fleet)."""
    return fleet.shape_of(model, s.name).file if fleet.enabled(model) else file(s)
