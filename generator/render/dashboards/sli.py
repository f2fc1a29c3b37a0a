"""Service level objectives as dashboards read them: one Sli per objective, its ratios and budget panels.

Shared by the SLO, overview and per-service dashboards. Burn rates per window read the SLI
ratios the SLO recording rules record (generator/recording.py); the whole SLO window is not
recorded, so budget left and consumed are computed from the counters over that window.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from generator import names, recording
from generator.catalogue import recorded as R
from generator.catalogue import slo as slo_alerts
from generator.durations import Duration
from generator.model import HttpMetrics, Model, Service, WorkerMetrics
from generator.render.dashboards import builder as b
from generator.render.dashboards.panels import Mark, Scope, fmt
from generator.units import duration_bound


@dataclass(frozen=True)
class Sli:
    """One objective of a service: the bad-event ratio over any window, and its budget."""

    service: Service
    kind: str  # "availability" or "latency"
    objective: float  # share of good events, 0..1
    budget: float  # share of bad events allowed over the window
    window: Duration
    label: str  # e.g. "99.9% of requests succeed"
    store: dict[str, str] = field(default_factory=b.prometheus)  # where queries over the whole window read (see long_term)

    @property
    def events(self) -> str:
        return "requests" if self.service.kind == "http" else "jobs"

    @property
    def latency_threshold(self) -> Duration:
        """The threshold of a latency objective."""
        slo = self.service.slo
        assert slo is not None and slo.latency_threshold is not None, f"{self.service.name}: no latency objective"
        return slo.latency_threshold

    @property
    def bad(self) -> str:
        return "failed" if self.kind == "availability" else f"slower than {self.latency_threshold}"

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
        m = self.service.metrics
        if isinstance(m, HttpMetrics):
            total, failed = scope.raw(m.requests), scope.raw(m.requests, regex={m.status_label: m.error_status})
        else:
            assert isinstance(m, WorkerMetrics)
            total, failed = scope.raw(m.jobs), scope.raw(m.jobs, eq={m.status_label: m.failed_value})
        if self.kind == "availability":
            return f"sum(increase({failed}[{window}])) / sum(increase({total}[{window}]))"
        count = scope.raw(m.duration + "_count")
        fast = scope.raw(m.duration + "_bucket", regex={"le": slo_alerts.le_regex(duration_bound(self.latency_threshold.ms, m.duration_unit))})
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


def long_term(model: Model) -> dict[str, str]:
    """The datasource of queries over a whole SLO window: the long-term store when a window outlasts Prometheus' retention.

    The model allows such a window only with a long-term store (VictoriaMetrics, which then keeps the longest window);
    the dashboard's long-term picker defaults to it.
    """
    if model.stack.long_term_retention is None:
        return b.prometheus()
    return b.long_term()


def reading(panel: b.Panel, store: dict[str, str]) -> b.Panel:
    """The panel with every query read from store."""
    if store == b.prometheus():
        return panel
    body = {**panel.body, "datasource": store, "targets": [{**t, "datasource": store} for t in panel.body["targets"]]}
    return replace(panel, body=body)


def _recorded(s: Service) -> set[str]:
    return {r["record"] for r in recording.rules_for(s) if "record" in r}


def slis(model: Model) -> list[Sli]:
    """Every objective of every scraped http or worker service with an SLO."""
    out: list[Sli] = []
    store = long_term(model)
    for s in model.services:
        if not (s.slo and s.scrape and isinstance(s.metrics, (HttpMetrics, WorkerMetrics))):
            continue
        events = "requests" if s.kind == "http" else "jobs"
        if s.slo.availability is not None:
            assert s.slo.error_budget is not None  # set with availability
            out.append(Sli(s, "availability", s.slo.availability / 100, s.slo.error_budget, s.slo.window,
                           f"{fmt(s.slo.availability)}% of {events} succeed", store))
        if s.slo.latency_threshold is not None:
            pct = s.slo.latency_percentile or 95
            assert s.slo.latency_budget is not None  # set with the latency threshold
            out.append(Sli(s, "latency", pct / 100, s.slo.latency_budget, s.slo.window,
                           f"{fmt(pct)}% of {events} faster than {s.slo.latency_threshold}", store))
    return out


BUDGET_STEPS = b.thresholds((None, b.RED), (0, b.ORANGE), (0.25, b.GREEN))


def budget_left_panel(items: list[Sli], title: str = "Error budget left", w: int = 12, h: int = 5,
                      scope_vars: dict[str, str] | None = None) -> b.Panel:
    queries = [b.Query(i.budget_left(Scope({names.SERVICE: i.service.name}, scope_vars or {})), f"{i.service.name} {i.kind}")
               for i in items]
    panel = b.stat(title, "Share of the error budget not yet spent over each SLO's window (below 0: the objective is missed).",
                   queries, unit="percentunit", w=w, h=h, steps=BUDGET_STEPS, text_mode="value_and_name", decimals=1,
                   links=[b.dashboard_link("SLO details", names.dashboard_uid(names.DASHBOARD_SLO))])
    return reading(panel, items[0].store) if items else panel
