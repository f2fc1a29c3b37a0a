"""Business metrics: a panel per custom rule metric in the inventory, grouped by service."""
from __future__ import annotations

from typing import Any

from generator import fleet, names
from generator.model import Model
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p

NAME = names.DASHBOARD_BUSINESS


def uid() -> str:
    return names.dashboard_uid(NAME)


def render(model: Model) -> dict[str, Any] | None:
    found = p.business_services(model)
    if not found or fleet.enabled(model):  # a fleet's rule panels are on its shared service dashboards
        return None
    sections = []
    for s in found:
        scope = p.Scope({names.SERVICE: s.name}, {names.ENV: "$env"})
        sections.append(b.Section(f"{s.name} (team {s.team})",
                                  [p.rule_panel(model, s, r, scope) for r in s.rules] + [p.kpi_panel(k) for k in s.kpis]))
    with_rules = "|".join(s.name for s in found)
    variables = [b.query_variable("env", "Environment", b.label_values(f'up{{{names.SERVICE}=~"{with_rules}"}}', names.ENV),
                                  multi=False)]
    links = [b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW))]
    links += [b.dashboard_link(s.name, names.service_dashboard_uid(s.name)) for s in found]
    return b.dashboard(uid(), f"{model.stack.name} / Business", source=model.source, tags=[NAME],
                       description="The business metrics the inventory's custom rules watch, each with the threshold its alert uses, "
                                   "and its KPIs (business numbers without an alert).",
                       sections=sections, variables=variables, links=links)
