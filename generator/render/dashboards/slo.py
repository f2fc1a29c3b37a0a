"""The SLO dashboard: per objective, the budget left over the SLO window, burn rate per window, budget consumed.

Burn rate is how fast the error budget goes: 1 spends exactly the budget over the SLO window.
Burn rates per window read the SLI ratios the SLO recording rules record for every window of
the burn-rate alerts (generator/catalogue/slo.py); the dashed lines are those alerts'
thresholds for this service (14.4x, 6x, 3x and 1x for a 30-day window), coloured by severity.
The whole SLO window (30 days) is not recorded: budget left and consumed are computed from
the counters over that window, so they are exact ratios of requests, not averages of ratios.
"""
from __future__ import annotations

from typing import Any

from generator import fleet, names
from generator.model import Model
from generator.render.dashboards import builder as b
from generator.render.dashboards.panels import Scope
from generator.render.dashboards.sli import budget_left_panel, sli_panels, slis

NAME = names.DASHBOARD_SLO


def uid() -> str:
    return names.dashboard_uid(NAME)


def render(model: Model) -> dict[str, Any] | None:
    items = slis(model)
    if not items or fleet.enabled(model):  # a fleet's objectives are on its shared service dashboards
        return None
    env = {names.ENV: "$env"}
    sections = [b.Section("Error budgets", [budget_left_panel(items, w=24, scope_vars=env)])]
    for i in items:
        scope = Scope({names.SERVICE: i.service.name}, env)
        sections.append(b.Section(f"{i.service.name}: {i.label} over {i.window}", sli_panels(i, scope)))
    links = [b.dashboard_link("Overview", names.dashboard_uid(names.DASHBOARD_OVERVIEW)), b.tag_dropdown("Services", ["monstack", "service"])]
    links += [b.dashboard_link(name, names.service_dashboard_uid(name)) for name in dict.fromkeys(i.service.name for i in items)]
    variables = [b.query_variable("env", "Environment", b.label_values(f'up{{{names.SERVICE}!=""}}', names.ENV), multi=False)]
    return b.dashboard(uid(), f"{model.stack.name} / SLOs", source=model.source, tags=[NAME],
                       description="Service level objectives from the inventory: budget left, burn rates, budget consumed.",
                       sections=sections, variables=variables, links=links, time_from="now-7d", refresh="1m")
