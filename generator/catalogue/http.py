"""HTTP services: error ratio, latency percentiles, the app's database pool and query time."""
from __future__ import annotations

from generator.catalogue import recorded as R
from generator.catalogue import series as S
from generator.catalogue.core import (
    BY_TEXT,
    SCRAPED,
    WINDOW,
    AlertDef,
    Case,
    Ctx,
    Needs,
    aggregated,
    eval_time,
    example_value,
    guarded,
    instance,
    num,
    points,
    quantile_over,
    rate_sum,
    ratio_over,
    threshold_cases,
)
from generator.promql import sel
from generator.units import duration_scale


def request_series(ctx: Ctx, per_second: float, error_ratio: float, points: int, route: str = "/api/monstack-test") -> list:
    """Requests at per_second, error_ratio of them answered with an error status."""
    m = ctx.http
    base = S.target(ctx.model, ctx.s, method="GET", **{m.route_label: route})
    ok = {**base, m.status_label: example_value(m.error_status, matching=False)}
    bad = {**base, m.status_label: example_value(m.error_status)}
    return [S.counter(m.requests, ok, per_second * (1 - error_ratio), points),
            S.counter(m.requests, bad, per_second * error_ratio, points)]


def _selectors(ctx: Ctx) -> tuple[str, str]:
    """(failed, all) requests of the service, as raw selectors."""
    m = ctx.http
    return sel(m.requests, ctx.mine(), {m.status_label: m.error_status}), sel(m.requests, ctx.mine())


def _error_ratio(ctx: Ctx) -> str:
    if ctx.recorded:
        return sel(R.HTTP_ERROR_RATIO, ctx.mine())
    return ratio_over(*_selectors(ctx), ctx.window)


def _request_rate(ctx: Ctx) -> str:
    return sel(R.HTTP_REQUESTS, ctx.mine()) if ctx.recorded else rate_sum(_selectors(ctx)[1], ctx.window)


def _error_ratio_expr(ctx: Ctx) -> str:
    return guarded(ctx, f"{_error_ratio(ctx)} > {num(ctx.threshold)}", _request_rate(ctx))


def traffic_rate(ctx: Ctx) -> float:
    """Requests (jobs) per second of generated test traffic: comfortably above the alert's minimum rate."""
    return max(10.0, 4 * ctx.min_rate)


def _traffic_text(ctx: Ctx, events: str) -> dict[str, str]:
    guard = f", at {num(ctx.min_rate)} or more {events} per second" if ctx.min_rate else ""
    return {"traffic": guard}


def low_traffic_case(d: AlertDef, ctx: Ctx, series) -> list[Case]:
    """The guard: half the minimum rate, every second event failing, stays silent."""
    if not ctx.min_rate:
        return []
    at = eval_time(ctx.window, ctx.setting.for_)
    rate = ctx.min_rate / 2
    return [Case(f"{ctx.setting.name} stays silent at 50% failures below the minimum traffic ({num(rate)}/s < {num(ctx.min_rate)}/s)",
                 tuple(series(ctx, rate, 0.5, points(at))), (), at)]


def _error_ratio_def(name: str, severity: str, threshold: float, meaning: str, causes: tuple[str, ...]) -> AlertDef:
    def cases(d: AlertDef, ctx: Ctx):
        rate = traffic_rate(ctx)
        return (threshold_cases(ctx, d, lambda v, n: (request_series(ctx, rate, v, n), [aggregated(ctx)]), settle=ctx.window)
                + low_traffic_case(d, ctx, request_series))

    return AlertDef(
        name=name,
        kinds=("http",),
        severity=severity,
        for_="5m",  # the ratio is a 5m rate already; 5m more rides out one bad deploy minute (scenario A, C)
        threshold=threshold,
        unit="ratio",
        summary="{service}: {{ $value | humanizePercentage }} of requests fail",
        description="{{ $value | humanizePercentage }} of {service}'s requests answered with a server error over the last {window} (alert above {threshold} for {for}{traffic}).",
        query=_error_ratio,
        expr=_error_ratio_expr,
        cases=cases,
        problem="HttpErrorRatio",
        meaning=meaning + " Services seeing less than min_rate requests per second never fire it: a handful of requests is no ratio.",
        causes=causes,
        needs=SCRAPED,
        window=WINDOW,
        min_rate=MIN_REQUEST_RATE,
        placeholders=lambda c: _traffic_text(c, "requests"),
    )


def _latency(q: str):
    quantile = dict(R.QUANTILES)[q]

    def expr(ctx: Ctx) -> str:
        if ctx.recorded:
            return sel(R.http_latency(q), ctx.mine())
        m = ctx.http
        return quantile_over(quantile, sel(m.duration + "_bucket", ctx.mine()), ctx.window, duration_scale(m.duration_unit))

    return expr


def _latency_def(name: str, q: str, severity: str, threshold: float, for_: str, meaning: str) -> AlertDef:
    quantile = dict(R.QUANTILES)[q]

    def cases(d: AlertDef, ctx: Ctx):
        m = ctx.http
        labels = S.target(ctx.model, ctx.s, method="GET", **{m.route_label: "/api/monstack-test"})
        scale = duration_scale(m.duration_unit)
        return threshold_cases(ctx, d, lambda v, n: (S.quantile_histogram(m.duration, labels, quantile, v * scale, n), [aggregated(ctx)]),
                               settle=ctx.window)

    return AlertDef(
        name=name,
        kinds=("http",),
        severity=severity,
        for_=for_,
        threshold=threshold,
        unit="seconds",
        summary=f"{{service}}: {q} latency {{{{ $value | humanizeDuration }}}}",
        description=f"The {q} of {{service}}'s request latency over {{window}} is {{{{ $value | humanizeDuration }}}} (alert above {{threshold}} for {{for}}).",
        query=_latency(q),
        cases=cases,
        problem=f"HttpLatency{q.upper()}",
        meaning=meaning,
        causes=("slow database queries or lock contention", "a slow external API or cache", "CPU saturation, GC pauses or too few workers",
                "a traffic spike beyond capacity"),
        needs=SCRAPED,
        window=WINDOW,
    )


def _pool_use(ctx: Ctx) -> str:
    m = ctx.http
    if m.db_pool_utilization:
        return f"max by ({BY_TEXT}, instance) ({sel(m.db_pool_utilization, ctx.mine())})"
    return (f"max by ({BY_TEXT}, instance) (1 - {sel(m.db_pool_available or '', ctx.mine())} / "
            f"{sel(m.db_pool_size or '', ctx.mine())})")


def _pool_cases(d: AlertDef, ctx: Ctx):
    m = ctx.http
    labels = S.target(ctx.model, ctx.s)

    def build(v: float, n: int):
        if m.db_pool_utilization:
            return [S.gauge(m.db_pool_utilization, labels, v, n)], [instance(ctx)]
        size = 20
        return ([S.gauge(m.db_pool_size or "", labels, size, n), S.gauge(m.db_pool_available or "", labels, size * (1 - v), n)],
                [instance(ctx)])

    return threshold_cases(ctx, d, build, settle="0s")


def _db_latency(q: str):
    quantile = dict(R.QUANTILES)[q]

    def expr(ctx: Ctx) -> str:
        m = ctx.http
        if ctx.recorded:
            return sel(R.db_query_latency(q), ctx.mine())
        return quantile_over(quantile, sel((m.db_query_duration or "") + "_bucket", ctx.mine()), ctx.window,
                             duration_scale(m.db_query_duration_unit))

    return expr


def _db_cases(q: str):
    quantile = dict(R.QUANTILES)[q]

    def cases(d: AlertDef, ctx: Ctx):
        m = ctx.http
        labels = S.target(ctx.model, ctx.s, operation="select", table="monstack_test")
        scale = duration_scale(m.db_query_duration_unit)
        return threshold_cases(ctx, d, lambda v, n: (S.quantile_histogram(m.db_query_duration or "", labels, quantile, v * scale, n),
                                                     [aggregated(ctx)]), settle=ctx.window)

    return cases


def _db_latency_def(name: str, q: str, threshold: float, meaning: str) -> AlertDef:
    return AlertDef(
        name=name,
        kinds=("http",),
        severity="P2",  # scenario B: slow queries are a warning; raise where the database is the product
        for_="5m",  # scenario B: query time above the line for 5 min
        threshold=threshold,
        unit="seconds",
        summary=f"{{service}}: {q} database query time {{{{ $value | humanizeDuration }}}}",
        description=f"The {q} of {{service}}'s database query time over {{window}} is {{{{ $value | humanizeDuration }}}} (alert above {{threshold}} for {{for}}).",
        query=_db_latency(q),
        cases=_db_cases(q),
        problem=f"DbQueryLatency{q.upper()}",
        meaning=meaning,
        causes=("a missing index or a changed query plan", "lock contention or long transactions", "database CPU or I/O saturation"),
        needs=Needs(lambda s: s.scrape is not None and s.http_metrics.db_query_duration is not None, "metrics.db_query_duration is not set"),
        window=WINDOW,
    )


MIN_REQUEST_RATE = 1.0  # requests/s: 300 requests in the 5m window, so the 5% tier needs 15 failures, not one unlucky request


ALERTS = (
    _error_ratio_def(
        "HttpErrorRatioCritical", "P0",
        0.05,  # 5% of requests failing hurts users now (scenario A and B: > 5% for 5 min is critical)
        "A large share of requests fail with a server error: users are hurt now.",
        ("a bad deploy", "a failing dependency (database, cache, external API)", "resource exhaustion (memory, connections, file descriptors)"),
    ),
    _error_ratio_def(
        "HttpErrorRatioHigh", "P1",
        0.01,  # 1%: will hurt soon (scenario A: 1-5% is P1); the P0 tier mutes this one above 5%
        "An elevated share of requests fail with a server error.",
        ("a partial outage of a dependency", "one bad instance behind the load balancer", "a buggy route or client"),
    ),
    _latency_def("HttpLatencyP95High", "p95", "P1",
                 2.0,  # seconds; scenario A: p95 > 2 s for 10 min is P1
                 "10m", "Requests are slow for a sizeable share of users."),
    _latency_def("HttpLatencyP95Warning", "p95", "P2",
                 1.0,  # seconds; scenario A: p95 > 1 s for 15 min is P2 (and the API slow-operation warning)
                 "15m", "Requests are slower than usual for a sizeable share of users."),
    _latency_def("HttpLatencyP99High", "p99", "P1",
                 3.0,  # seconds; scenario B pages on p99 > 3 s; raise the severity there, lower the threshold for fast APIs
                 "5m", "The slowest 1% of requests take very long: some users wait for seconds."),
    _latency_def("HttpLatencyP99Warning", "p99", "P2",
                 2.0,  # seconds; scenario B: p99 > 2 s for 5 min is a warning
                 "5m", "The slowest 1% of requests are slower than usual."),
    AlertDef(
        name="DbConnectionPoolSaturated",
        kinds=("http",),
        severity="P2",
        for_="5m",  # scenario B: pool use > 80% for 5 min is a warning
        threshold=0.8,  # share of the pool in use; at 100% requests queue for a connection
        unit="ratio",
        summary="{service}: {{ $value | humanizePercentage }} of the database pool in use on {{ $labels.instance }}",
        description="{{ $labels.instance }} of {service} uses {{ $value | humanizePercentage }} of its database connection pool (alert above {threshold} for {for}).",
        query=_pool_use,
        cases=_pool_cases,
        meaning="The application's database connection pool is nearly exhausted; requests will soon wait for a connection or fail.",
        causes=("slow queries holding connections", "a connection leak (connections not returned)", "more traffic than the pool was sized for"),
        needs=Needs(lambda s: s.scrape is not None and (s.http_metrics.db_pool_size is not None or s.http_metrics.db_pool_utilization is not None),
                    "metrics.db_pool_utilization, or metrics.db_pool_size and metrics.db_pool_available, are not set"),
    ),
    _db_latency_def("DbQueryLatencyP95High", "p95",
                    0.5,  # seconds; scenario A warns on database calls over 500ms. Most queries should take milliseconds
                    "Database queries issued by the application are slow for a sizeable share of requests; request latency follows."),
    _db_latency_def("DbQueryLatencyP99High", "p99",
                    1.0,  # seconds; scenario B: p99 query time > 1 s for 5 min is a warning
                    "The slowest database queries issued by the application take very long; request latency follows."),
)
