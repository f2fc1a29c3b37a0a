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
from generator.render.dashboards.panels import Mark, Scope, bad_above, fmt
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


def _recorded(s: Service) -> frozenset[str]:
    found = _RECORDED.get(id(s))
    if found is None or found[0] is not s:
        found = _RECORDED[id(s)] = (s, frozenset(r["record"] for r in recording.rules_for(s) if "record" in r))
    return found[1]


# Memos keyed by object identity (the model's dataclasses hold dicts, so they are not hashable); each entry
# keeps its object, so an id is never reused while its entry lives. Every dashboard asks for the same
# objectives again: without these, per-service dashboards cost the square of the fleet size.
_RECORDED: dict[int, tuple[Service, frozenset[str]]] = {}
_SLIS: dict[int, tuple[Model, list[Sli], dict[str, list[Sli]]]] = {}


def _memo(model: Model) -> tuple[Model, list[Sli], dict[str, list[Sli]]]:
    found = _SLIS.get(id(model))
    if found is None or found[0] is not model:
        _SLIS.clear()
        _RECORDED.clear()
        items = _slis(model)
        by_service: dict[str, list[Sli]] = {}
        for i in items:
            by_service.setdefault(i.service.name, []).append(i)
        found = _SLIS[id(model)] = (model, items, by_service)
    return found


def slis(model: Model) -> list[Sli]:
    """Every objective of every scraped http or worker service with an SLO (the list is shared: do not change it)."""
    return _memo(model)[1]


def service_slis(model: Model, s: Service) -> list[Sli]:
    """The objectives of one service (the list is shared: do not change it)."""
    return _memo(model)[2].get(s.name, [])


def _slis(model: Model) -> list[Sli]:
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
                      scope_vars: dict[str, str] | None = None, slo_link: bool = True) -> b.Panel:
    queries = [b.Query(i.budget_left(Scope({names.SERVICE: i.service.name}, scope_vars or {})), f"{i.service.name} {i.kind}")
               for i in items]
    panel = b.stat(title, "Share of the error budget not yet spent over each SLO's window (below 0: the objective is missed).",
                   queries, unit="percentunit", w=w, h=h, steps=BUDGET_STEPS, text_mode="value_and_name", decimals=1,
                   links=[b.dashboard_link("SLO details", names.dashboard_uid(names.DASHBOARD_SLO))] if slo_link else [])
    return reading(panel, items[0].store) if items else panel


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
