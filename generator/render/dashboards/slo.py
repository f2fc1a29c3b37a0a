"""The SLO dashboard: per objective, the budget left over the SLO window, burn rate per window, budget consumed.

Burn rate is how fast the error budget goes: 1 spends exactly the budget over the SLO window.
Burn rates per window read the SLI ratios the SLO recording rules record for every window of
the burn-rate alerts (generator/catalogue/slo.py); the dashed lines are those alerts'
thresholds for this service (14.4x, 6x, 3x and 1x for a 30-day window), coloured by severity.
The whole SLO window (30 days) is not recorded: budget left and consumed are computed from
the counters over that window, so they are exact ratios of requests, not averages of ratios.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator import names
from generator.catalogue import recorded as R
from generator.catalogue import slo as slo_alerts
from generator.durations import Duration
from generator.model import HttpMetrics, Model, Service, WorkerMetrics
from generator.render import recording
from generator.render.dashboards import builder as b
from generator.render.dashboards.panels import Mark, Scope, bad_above, fmt

NAME = "slo"


def uid() -> str:
    return names.dashboard_uid(NAME)


@dataclass(frozen=True)
class Sli:
    """One objective of a service: the bad-event ratio over any window, and its budget."""

    service: Service
    kind: str  # "availability" or "latency"
    objective: float  # share of good events, 0..1
    budget: float  # share of bad events allowed over the window
    window: Duration
    label: str  # e.g. "99.9% of requests succeed"

    @property
    def events(self) -> str:
        return "requests" if self.service.kind == "http" else "jobs"

    @property
    def bad(self) -> str:
        return "failed" if self.kind == "availability" else f"slower than {self.service.slo.latency_threshold}"

    def _recorded(self, window: str) -> str | None:
        s = self.service
        if self.kind == "availability":
            name = R.sli_errors(s.kind, window)
        else:
            name = R.sli_slow(s.kind, window)
        return name if name in _recorded(s) else None

    def bad_ratio(self, window: str, scope: Scope) -> str:
        """Share of bad events over window: recorded where the SLO rules record that window, else from the counters."""
        name = self._recorded(window)
        if name:
            return scope.rec(name)
        s, m = self.service, self.service.metrics
        if isinstance(m, HttpMetrics):
            total, failed = scope.raw(m.requests), scope.raw(m.requests, regex={m.status_label: m.error_status})
        else:
            assert isinstance(m, WorkerMetrics)
            total, failed = scope.raw(m.jobs), scope.raw(m.jobs, eq={m.status_label: m.failed_value})
        if self.kind == "availability":
            return f"sum(increase({failed}[{window}])) / sum(increase({total}[{window}]))"
        count = scope.raw(m.duration + "_count")
        fast = scope.raw(m.duration + "_bucket", regex={"le": slo_alerts.le_regex(s.slo.latency_threshold.seconds)})
        return f"(sum(increase({count}[{window}])) - sum(increase({fast}[{window}]))) / sum(increase({count}[{window}]))"

    def budget_left(self, scope: Scope) -> str:
        return f"1 - ({self.bad_ratio(str(self.window), scope)}) / {fmt(self.budget)}"

    def burn_rate(self, window: str, scope: Scope) -> str:
        return f"{self.bad_ratio(window, scope)} / {fmt(self.budget)}"

    def burn_marks(self) -> list[Mark]:
        """The service's burn-rate alerts (overrides applied) as threshold lines."""
        prefix = "ErrorBudgetBurn" if self.kind == "availability" else "LatencyBudgetBurn"
        out = []
        for w in slo_alerts.WINDOWS:
            a = self.service.alert(f"{prefix}{w.long}")
            if a is not None and a.threshold is not None:
                out.append(Mark(a.threshold, a.severity, a.name))
        return out


def _recorded(s: Service) -> set[str]:
    return {r["record"] for r in recording.rules_for(s) if "record" in r}


def slis(model: Model) -> list[Sli]:
    """Every objective of every scraped http or worker service with an SLO."""
    out: list[Sli] = []
    for s in model.services:
        if not (s.slo and s.scrape and isinstance(s.metrics, (HttpMetrics, WorkerMetrics))):
            continue
        events = "requests" if s.kind == "http" else "jobs"
        if s.slo.availability is not None:
            out.append(Sli(s, "availability", s.slo.availability / 100, s.slo.error_budget, s.slo.window,
                           f"{fmt(s.slo.availability)}% of {events} succeed"))
        if s.slo.latency_threshold is not None:
            pct = s.slo.latency_percentile or 95
            out.append(Sli(s, "latency", pct / 100, s.slo.latency_budget, s.slo.window,
                           f"{fmt(pct)}% of {events} faster than {s.slo.latency_threshold}"))
    return out


BUDGET_STEPS = b.thresholds((None, b.RED), (0, b.ORANGE), (0.25, b.GREEN))


def budget_left_panel(items: list[Sli], title: str = "Error budget left", w: int = 12, h: int = 5,
                      scope_vars: dict[str, str] | None = None) -> b.Panel:
    queries = [b.Query(i.budget_left(Scope({names.SERVICE: i.service.name}, scope_vars or {})), f"{i.service.name} {i.kind}")
               for i in items]
    return b.stat(title, "Share of the error budget not yet spent over each SLO's window (below 0: the objective is missed).",
                  queries, unit="percentunit", w=w, h=h, steps=BUDGET_STEPS, text_mode="value_and_name", decimals=1,
                  links=[b.dashboard_link("SLO details", uid())])


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
    title = "Availability" if i.kind == "availability" else f"{i.events.capitalize()} faster than {i.service.slo.latency_threshold}"
    return [
        b.stat(f"{title} over {window}", f"Objective: {i.label}. Share of {i.events} not {i.bad} over the window.",
               [b.Query(f"1 - ({i.bad_ratio(window, scope)})", i.kind)], unit="percentunit", w=6, h=6, decimals=3,
               steps=b.thresholds((None, b.RED), (i.objective, b.GREEN))),
        b.stat("Error budget left", f"Budget: {fmt(i.budget * 100)}% of {i.events} may be {i.bad} over {window}. "
               "Below 0 the objective is missed.", [b.Query(i.budget_left(scope), "left")], unit="percentunit", w=6, h=6,
               decimals=1, steps=BUDGET_STEPS),
        b.timeseries("Burn rate by window", "How fast the error budget goes over each look-back window (1: the budget lasts "
                     f"exactly {window})." + note, burn, unit="none", w=12, h=6, steps=bad_above(found), threshold_line=True,
                     decimals=2, fill=0, legend_calcs=("lastNotNull", "max")),
        b.timeseries("Error budget consumed", f"Share of the {window} error budget spent by each moment (100%: all of it).",
                     [b.Query(f"({i.bad_ratio(window, scope)}) / {fmt(i.budget)}", "consumed")], unit="percentunit",
                     w=24, h=6, steps=b.bad_above(0.75, 1), threshold_line=True, legend_calcs=("lastNotNull",),
                     interval="1h"),
    ]


def render(model: Model) -> dict[str, Any] | None:
    items = slis(model)
    if not items:
        return None
    from generator.render.dashboards import overview  # the overview links here and back

    env = {names.ENV: "$env"}
    sections = [b.Section("Error budgets", [budget_left_panel(items, w=24, scope_vars=env)])]
    for i in items:
        scope = Scope({names.SERVICE: i.service.name}, env)
        sections.append(b.Section(f"{i.service.name}: {i.label} over {i.window}", sli_panels(i, scope)))
    links = [b.dashboard_link("Overview", overview.uid()), b.tag_dropdown("Services", ["monstack", "service"])]
    links += [b.dashboard_link(name, names.dashboard_uid("service", name)) for name in dict.fromkeys(i.service.name for i in items)]
    variables = [b.query_variable("env", "Environment", b.label_values(f'up{{{names.SERVICE}!=""}}', names.ENV), multi=False)]
    return b.dashboard(uid(), f"{model.stack.name} / SLOs", source=model.source, tags=[NAME],
                       description="Service level objectives from the inventory: budget left, burn rates, budget consumed.",
                       sections=sections, variables=variables, links=links, time_from="now-7d", refresh="1m")
