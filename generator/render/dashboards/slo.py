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

from generator import names
from generator.catalogue import recorded as R
from generator.model import Model
from generator.render.dashboards import builder as b
from generator.render.dashboards.panels import Scope, bad_above, fmt
from generator.render.dashboards.sli import BUDGET_STEPS, Sli, budget_left_panel, reading, slis

NAME = names.DASHBOARD_SLO


def uid() -> str:
    return names.dashboard_uid(NAME)


def sli_panels(i: Sli, scope: Scope) -> list[b.Panel]:
    window = str(i.window)
    burn = [b.Query(i.burn_rate(w, scope), w) for w in R.SLI_WINDOWS]
    found = i.burn_marks()
    pages = [m for m in found if m.severity in ("P0", "P1")]
    tickets = [m for m in found if m not in pages]
    note = ""
    if found:
        note = (" Dashed: the burn-rate alerts" + (f" that page ({', '.join(f'{fmt(m.value)}x over {m.alert[-2:]}' for m in pages)})" if pages else "")
                + (" and" if pages and tickets else "")
                + (f" that open tickets ({', '.join(f'{fmt(m.value)}x over {m.alert[-2:]}' for m in tickets)})" if tickets else "") + ".")
    title = "Availability" if i.kind == "availability" else f"{i.events.capitalize()} faster than {i.latency_threshold}"
    # Panels over the whole window read the long-term store when the window outlasts Prometheus' retention.
    return [
        reading(b.stat(f"{title} over {window}", f"Objective: {i.label}. Share of {i.events} not {i.bad} over the window.",
                       [b.Query(f"1 - ({i.bad_ratio(window, scope)})", i.kind)], unit="percentunit", w=6, h=6, decimals=3,
                       steps=b.thresholds((None, b.RED), (i.objective, b.GREEN))), i.store),
        reading(b.stat("Error budget left", f"Budget: {fmt(i.budget * 100)}% of {i.events} may be {i.bad} over {window}. "
                       "Below 0 the objective is missed.", [b.Query(i.budget_left(scope), "left")], unit="percentunit", w=6, h=6,
                       decimals=1, steps=BUDGET_STEPS), i.store),
        b.timeseries("Burn rate by window", "How fast the error budget goes over each look-back window (1: the budget lasts "
                     f"exactly {window})." + note, burn, unit="none", w=12, h=6, steps=bad_above(found), threshold_line=True,
                     decimals=2, fill=0, legend_calcs=("lastNotNull", "max")),
        reading(b.timeseries("Error budget consumed", f"Share of the {window} error budget spent by each moment (100%: all of it).",
                             [b.Query(f"({i.bad_ratio(window, scope)}) / {fmt(i.budget)}", "consumed")], unit="percentunit",
                             w=24, h=6, steps=b.bad_above(0.75, 1), threshold_line=True, legend_calcs=("lastNotNull",),
                             interval="1h"), i.store),
    ]


def render(model: Model) -> dict[str, Any] | None:
    items = slis(model)
    if not items:
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
