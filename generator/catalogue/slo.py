"""SLO alerts: multi-window, multi-burn-rate alerts on the error budget (Google SRE workbook, chapter 5).

A burn rate of 1 spends exactly the budget over the SLO window. Each alert
pairs a long window (is the budget really burning?) with a short one (is it
still burning now? so the alert resets minutes after a fix). The burn-rate
thresholds derive from the share of the budget a window may spend before
someone acts, so they follow the SLO window: for 30 days they are the
workbook's 14.4 (1h), 6 (6h), 3 (1d) and 1 (3d).

Severity choice: the two fast pairs page (P0: users are hurt now, the budget
goes in days); the two slow pairs open a ticket at P3, which the severity
policy reserves for ticket-only delivery (no page, within 24 hours). A 3x
burn for a day still leaves about nine days of budget, enough for business
hours. Override per service (alerts: {ErrorBudgetBurn1d: {severity: P2}}).

Every pair also needs MIN_BAD_EVENTS bad events in its long window: on a
quiet service one failed request makes a whole hour's ratio look like a burn.
The count is the recorded ratio times the recorded events per second times the
window: the alert reads recorded series only, never the counters over days.
"""
from __future__ import annotations

from dataclasses import dataclass

from generator.alerttext import go_float
from generator.catalogue import recorded as R
from generator.catalogue import series as S
from generator.catalogue.core import AlertDef, Case, Ctx, Expected, Needs, aggregated, eval_time, num, points, show, slo_of, threshold_cases
from generator.catalogue.http import request_series
from generator.catalogue.worker import job_series
from generator.durations import Duration, parse_duration
from generator.promql import sel
from generator.units import duration_bound


@dataclass(frozen=True)
class BurnWindow:
    long: str
    short: str
    budget_share: float  # share of the whole budget spent in `long` at the threshold burn rate
    severity: str
    for_: str
    slow: bool = False  # recorded and evaluated in the service's slow SLO group (defaults.SLOW_EVALUATION_INTERVAL)


# The workbook's recommended pairs. Change budget_share to page earlier (smaller) or later (larger).
WINDOWS = (
    BurnWindow("1h", "5m", 0.02, "P0", "0s"),  # 2% of the budget in an hour: page (about a minute to detect a full outage)
    BurnWindow("6h", "30m", 0.05, "P0", "0s"),  # 5% in six hours: page
    BurnWindow("1d", "2h", 0.10, "P3", "0s", slow=True),  # 10% in a day: ticket
    BurnWindow("3d", "6h", 0.10, "P3", "0s", slow=True),  # 10% in three days: ticket
)
# The ticket pairs read a day and more: evaluated every minute, not every 15 s (a minute more before a ticket).
# The short window already makes the alert reset fast and filters blips, hence `for: 0s` (the workbook's choice).

# Bad events (failed or slow requests or jobs) the long window must hold before a burn-rate alert fires. A ratio
# over a quiet hour is noise: a back-office API seeing a request a minute at night has a 1h error ratio of 1.7%,
# above 14.4 x 0.1%, from one failed request, and paged for it (the alert-quality benchmark, `make bench`: about
# one false page a week). Five failures in that hour do not happen by chance at a healthy error ratio, and a real
# outage reaches five within minutes even at that traffic (busy services within a second).
MIN_BAD_EVENTS = 5
SETTLE = "5m"  # a burn case's traffic before its condition holds
# The floor multiplies the long window's recorded ratio by its recorded events per second (generator/recording.py).
assert {w.long for w in WINDOWS} <= set(R.SLI_LONG_WINDOWS), "every long window's events per second are recorded"


def factor(window: Duration, w: BurnWindow) -> float:
    """Burn rate at which `long` spends budget_share of the budget of an SLO over `window`."""
    return round(w.budget_share * window.ms / parse_duration(w.long).ms, 4)


def _slo(s) -> bool:
    return s.scrape is not None and s.kind in ("http", "worker") and s.slo is not None


AVAILABILITY_SLO = Needs(lambda s: _slo(s) and slo_of(s).availability is not None,
                         "the service has no availability SLO (or no scrape targets)")
LATENCY_SLO = Needs(lambda s: _slo(s) and slo_of(s).latency_threshold is not None, "the service has no latency SLO (or no scrape targets)")


def le_spellings(bound: float) -> list[str]:
    """How exporters print this bucket bound: Go and Node.js clients 2 and 0.5, Python clients and Prometheus 3 2.0 and 0.5."""
    spellings = {repr(float(bound)), _go_shortest(bound)}
    if bound == int(bound):
        spellings |= {str(int(bound)), f"{int(bound)}.0"}
    return sorted(spellings)


def _go_shortest(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as client_golang prints bucket bounds."""
    return go_float(v)


def le_regex(bound: float) -> str:
    """Every spelling of a bucket bound, in the histogram's own unit (500 for 500ms of a milliseconds histogram)."""
    return "|".join(s.replace(".", "\\.").replace("+", "\\+") for s in le_spellings(bound))


def latency_bound(ctx: Ctx) -> float:
    """The latency objective as a bucket bound of the service's duration histogram."""
    return duration_bound(ctx.latency_threshold.ms, ctx.metrics.duration_unit)


def _burn_def(kind: str, w: BurnWindow) -> AlertDef:
    """kind: "errors" (availability SLO) or "latency" (latency SLO)."""
    record = (lambda k, w: R.sli_errors(k, w)) if kind == "errors" else (lambda k, w: R.sli_slow(k, w))
    name = f"{'ErrorBudgetBurn' if kind == 'errors' else 'LatencyBudgetBurn'}{w.long}"
    budget = (lambda s: s.slo.error_budget) if kind == "errors" else (lambda s: s.slo.latency_budget)
    what = "requests failed" if kind == "errors" else "requests were slower than {latency}"

    def expr(ctx: Ctx) -> str:
        limit = f"({num(ctx.threshold)} * {num(budget(ctx.s))})"
        long = sel(record(ctx.s.kind, w.long), ctx.mine())
        short = sel(record(ctx.s.kind, w.short), ctx.mine())
        return f"{long} > {limit} and {short} > {limit} and {bad_events(ctx, kind, w.long, long)} >= {MIN_BAD_EVENTS}"

    def query(ctx: Ctx) -> str:
        return f"{sel(record(ctx.s.kind, w.long), ctx.mine())} / {num(budget(ctx.s))}"

    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        b = budget(ctx.s)
        seen = eval_time(SETTLE, ctx.setting.for_)

        def build(burn: float, n: int):
            return _sli_series(ctx, kind, burn * b, n, per_second=_volume(burn * b, seen)), [aggregated(ctx)]

        out = threshold_cases(ctx, d, build, settle=SETTLE, shown=lambda burn: burn * b)
        # A quiet hour: one request a minute, half of them bad (far above any burn rate), fewer than
        # MIN_BAD_EVENTS bad events in the window so far: silent.
        at = out[0].at
        quiet = _sli_series(ctx, kind, 0.5, points(at), per_second=1 / 60)
        out.append(Case(f"{d.name} stays silent with fewer than {MIN_BAD_EVENTS} bad events in its window", tuple(quiet), (), at))
        return out

    def placeholders(ctx: Ctx) -> dict[str, str]:
        b = budget(ctx.s)
        slo = ctx.slo
        lasts = Duration(int(slo.window.ms / ctx.threshold)) if ctx.threshold else slo.window
        return {"long": w.long, "short": w.short, "budget": show(b, "ratio"), "window": str(slo.window), "lasts": str(lasts),
                "latency": str(slo.latency_threshold), "objective": f"{(1 - b) * 100:g}%"}

    slo_name = "availability" if kind == "errors" else "latency"
    return AlertDef(
        name=name,
        kinds=("http", "worker"),
        severity=w.severity,
        for_=w.for_,
        threshold=None,
        derived_threshold=lambda s: factor(slo_of(s).window, w),
        unit="count",
        summary=f"{{service}}: {slo_name} error budget burning {{threshold}}x too fast ({{long}} window)",
        description=(f"{{{{ $value | humanizePercentage }}}} of {{service}}'s {what} over the last {{long}} (and over {{short}}): "
                     f"at least {{threshold}} times the {{budget}} the {{objective}} {slo_name} SLO allows. At this rate the {{window}} "
                     f"budget is gone in {{lasts}}."),
        expr=expr,
        query=query,
        cases=cases,
        problem="ErrorBudgetBurn" if kind == "errors" else "LatencyBudgetBurn",
        meaning=(f"The service spends its {slo_name} error budget faster than the SLO allows, measured over a {w.long} window "
                 f"and confirmed over {w.short}. " + ("Users are hurt now: page." if w.severity == "P0" else
                                                      "A slow burn: no page, but fix it within days or the budget runs out.")),
        causes=("a bad deploy (compare with deploy times)", "a failing dependency", "capacity: traffic above what the service handles")
        if kind == "errors" else ("slow dependencies (database, cache, external APIs)", "CPU saturation or too few instances",
                                  "a new slow code path or a changed query plan"),
        needs=AVAILABILITY_SLO if kind == "errors" else LATENCY_SLO,
        placeholders=placeholders,
        window=w.long,
        window_fixed=True,
    )


def bad_events(ctx: Ctx, kind: str, window: str, ratio: str) -> str:
    """Bad requests or jobs of the service over window: the recorded ratio of bad ones times all of them.

    All of them is the recorded rate of all events over the window times its seconds (increase() is rate()
    times the window), so the floor reads no counter the recorded ratio has not read already.
    """
    if kind == "errors":
        events = R.sli_events(ctx.s.kind, window)
    else:
        events = R.sli_timed(ctx.s.kind, window, ctx.metrics.duration_unit)
    return f"{ratio} * {sel(events, ctx.mine())} * {num(parse_duration(window).seconds)}"


def _volume(bad_ratio: float, seen: Duration) -> float:
    """Events per second for a burn case: 100, or more where so small a bad ratio would leave the window fewer than
    2 x MIN_BAD_EVENTS bad events by the case's eval time (`seen` of traffic), and the floor, not the ratio, would
    decide (a short SLO window derives burn factors far below 1)."""
    return max(100.0, 2 * MIN_BAD_EVENTS / (bad_ratio * seen.seconds)) if bad_ratio > 0 else 100.0


def _sli_series(ctx: Ctx, kind: str, bad_ratio: float, n: int, per_second: float = 100) -> list:
    """Traffic where bad_ratio of the events are bad (failed, or slower than the latency threshold)."""
    s = ctx.s
    if kind == "errors":
        return request_series(ctx, per_second, bad_ratio, n) if s.kind == "http" else job_series(ctx, per_second, bad_ratio, n)
    threshold = latency_bound(ctx)
    base = S.target(ctx.model, s, **({"method": "GET", ctx.http.route_label: "/api/monstack-test"} if s.kind == "http" else {}))
    if s.kind == "worker" and (queue := ctx.worker.queue_label):
        base[queue] = "default"
    return S.histogram(ctx.metrics.duration, base, per_second, [(threshold, 1 - bad_ratio)], n, mean=threshold / 2)


def _bucket_missing(ctx: Ctx) -> str:
    count = f"sum by (service, team, env) (rate({sel(ctx.metrics.duration + '_count', ctx.mine())}[5m])) > 0"
    bucket = f"sum by (service, team, env) (rate({sel(ctx.metrics.duration + '_bucket', ctx.mine(), {'le': le_regex(latency_bound(ctx))})}[5m]))"
    return f"{count} unless on (service, team, env) {bucket}"


def _bucket_missing_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    s = ctx.s
    at = eval_time("5m", ctx.setting.for_)
    n = points(at)
    threshold = latency_bound(ctx)
    base = S.target(ctx.model, s)
    other = threshold * 1.5
    return [
        Case("SloLatencyBucketMissing fires when no bucket bound equals the SLO threshold",
             tuple(S.histogram(ctx.metrics.duration, base, 10, [(other, 1.0)], n, mean=other / 2)), (Expected(aggregated(ctx), 10),), at),
        Case("SloLatencyBucketMissing stays silent when the threshold is a bucket bound",
             tuple(S.histogram(ctx.metrics.duration, base, 10, [(threshold, 1.0)], n, mean=threshold / 2)), (), at),
    ]


BUCKET_MISSING = AlertDef(
    name="SloLatencyBucketMissing",
    kinds=("http", "worker"),
    severity="P3",
    for_="15m",  # a deploy may briefly change buckets; a quarter hour is a configuration problem
    threshold=None,
    unit="none",
    op="==",
    summary="{service}: latency SLO threshold {latency} is not a histogram bucket",
    description="{service} exports {duration} but no bucket with le equal to {latency}, so its latency SLO cannot be measured and its burn-rate alerts never fire. Add the bucket or change slo.latency.threshold.",
    expr=_bucket_missing,
    query=lambda c: f"count by (le) ({sel(c.metrics.duration + '_bucket', c.mine())})",
    cases=_bucket_missing_cases,
    meaning="The latency SLI counts requests faster than the threshold from the histogram bucket at exactly that bound; without it the SLO is blind.",
    causes=("slo.latency.threshold is not one of the histogram's bucket bounds", "the application changed its buckets"),
    needs=LATENCY_SLO,
    placeholders=lambda c: {"latency": str(c.latency_threshold), "duration": c.metrics.duration},
)

_BURNS = tuple((_burn_def(kind, w), w) for kind in ("errors", "latency") for w in WINDOWS)
ALERTS = tuple(d for d, _ in _BURNS) + (BUCKET_MISSING,)
SLOW_ALERTS = tuple(d for d, w in _BURNS if w.slow)  # evaluated in the slow SLO group


def slow_windows() -> frozenset[str]:
    """The SLI windows only slow pairs read (2h, 1d, 3d): recorded in the slow SLO group; the others in the SLO group."""
    fast = {x for w in WINDOWS if not w.slow for x in (w.long, w.short)}
    return frozenset(x for w in WINDOWS if w.slow for x in (w.long, w.short)) - fast
