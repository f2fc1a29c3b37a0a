"""Worker services: queue depth, job failure ratio, job duration, stalled processing."""
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
    Expected,
    aggregated,
    eval_time,
    guarded,
    num,
    points,
    quantile_over,
    rate_sum,
    ratio_over,
    threshold_cases,
)
from generator.promql import sel
from generator.units import duration_scale

TEST_QUEUE = "default"


def _by(ctx: Ctx) -> str:
    """Per queue when the metrics carry a queue label."""
    q = ctx.worker.queue_label
    return f"{BY_TEXT}, {q}" if q else BY_TEXT


def _queue_labels(ctx: Ctx) -> dict[str, str]:
    q = ctx.worker.queue_label
    return {q: TEST_QUEUE} if q else {}


def _depth(ctx: Ctx) -> str:
    return f"max by ({_by(ctx)}) ({sel(ctx.worker.queue_depth, ctx.mine())})"


def ok_value(m) -> str:
    """A status value of jobs that did not fail, for test series."""
    return "completed" if m.failed_value != "completed" else "succeeded"


def job_series(ctx: Ctx, per_second: float, failure_ratio: float, n: int) -> list:
    m = ctx.worker
    base = S.target(ctx.model, ctx.s, **_queue_labels(ctx))
    ok = {**base, m.status_label: ok_value(m)}
    bad = {**base, m.status_label: m.failed_value}
    return [S.counter(m.jobs, ok, per_second * (1 - failure_ratio), n), S.counter(m.jobs, bad, per_second * failure_ratio, n)]


def _depth_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s, **_queue_labels(ctx))
    return threshold_cases(ctx, d, lambda v, n: (
        [S.gauge(ctx.worker.queue_depth, labels, v, n)], [aggregated(ctx, **_queue_labels(ctx))]), settle="0s")


def _selectors(ctx: Ctx) -> tuple[str, str]:
    """(failed, all) jobs of the service, as raw selectors."""
    m = ctx.worker
    return sel(m.jobs, ctx.mine(**{m.status_label: m.failed_value})), sel(m.jobs, ctx.mine())


def _failure_ratio(ctx: Ctx) -> str:
    if ctx.recorded:
        return sel(R.JOB_FAILURE_RATIO, ctx.mine())
    return ratio_over(*_selectors(ctx), ctx.window)


def _failure_expr(ctx: Ctx) -> str:
    rate = sel(R.JOBS, ctx.mine()) if ctx.recorded else rate_sum(_selectors(ctx)[1], ctx.window)
    return guarded(ctx, f"{_failure_ratio(ctx)} > {num(ctx.threshold)}", rate)


MIN_JOB_RATE = 0.1  # jobs/s: 30 jobs in the 5m window; below that a single failed job is a 3% "ratio"


def _failure_def(name: str, severity: str, threshold: float, for_: str) -> AlertDef:
    def cases(d: AlertDef, ctx: Ctx):
        rate = max(10.0, 4 * ctx.min_rate)
        out = threshold_cases(ctx, d, lambda v, n: (job_series(ctx, rate, v, n), [aggregated(ctx)]), settle=ctx.window)
        if ctx.min_rate:
            at = eval_time(ctx.window, ctx.setting.for_)
            slow = ctx.min_rate / 2
            out.append(Case(f"{ctx.setting.name} stays silent at 50% failures below the minimum traffic ({num(slow)}/s < {num(ctx.min_rate)}/s)",
                            tuple(job_series(ctx, slow, 0.5, points(at))), (), at))
        return out

    return AlertDef(
        name=name,
        kinds=("worker",),
        severity=severity,
        for_=for_,
        threshold=threshold,
        unit="ratio",
        summary="{service}: {{ $value | humanizePercentage }} of jobs fail",
        description="{{ $value | humanizePercentage }} of the jobs {service} finished over the last {window} failed (alert above {threshold} for {for}{traffic}).",
        query=_failure_ratio,
        expr=_failure_expr,
        cases=cases,
        problem="WorkerJobFailureRatio",
        meaning="Jobs fail: work is lost or retried, and whatever waits on it is delayed. Below min_rate jobs per second it stays silent.",
        causes=("a failing downstream (API, database, SMTP)", "bad input data (invalid payloads)", "a bad deploy of the worker",
                "timeouts set too short for the current load"),
        needs=SCRAPED,
        window=WINDOW,
        min_rate=MIN_JOB_RATE,
        placeholders=lambda c: {"traffic": f", at {num(c.min_rate)} or more jobs per second" if c.min_rate else ""},
    )


def _job_latency(ctx: Ctx) -> str:
    if ctx.recorded:
        return sel(R.job_latency("p95"), ctx.mine())
    m = ctx.worker
    return quantile_over(0.95, sel(m.duration + "_bucket", ctx.mine()), ctx.window, duration_scale(m.duration_unit))


def _job_latency_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s, **_queue_labels(ctx))
    return threshold_cases(ctx, d, lambda v, n: (
        S.quantile_histogram(ctx.worker.duration, labels, 0.95, v * duration_scale(ctx.worker.duration_unit), n), [aggregated(ctx)]),
        settle=ctx.window)


def _completed(ctx: Ctx) -> str:
    return f"sum by ({_by(ctx)}) (rate({sel(ctx.worker.jobs, ctx.mine())}[{ctx.window}]))"


def _stalled(ctx: Ctx) -> str:
    on = _by(ctx)
    return (f"({_depth(ctx)} > {num(ctx.threshold)}) unless on ({on}) ({_completed(ctx)} > 0)")


def _stalled_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    at = eval_time(ctx.window, ctx.setting.for_)
    n = points(at)
    m = ctx.worker
    depth_labels = S.target(ctx.model, ctx.s, **_queue_labels(ctx))
    waiting = ctx.threshold + 5
    flat = job_series(ctx, 0, 0, n)
    moving = job_series(ctx, 1, 0, n)
    expected = Expected(aggregated(ctx, **_queue_labels(ctx)), waiting)
    return [
        Case("WorkerStalled fires when jobs wait and none finishes", (S.gauge(m.queue_depth, depth_labels, waiting, n), *flat), (expected,), at),
        Case("WorkerStalled fires when jobs wait and the worker never reported a job",
             (S.gauge(m.queue_depth, depth_labels, waiting, n),), (expected,), at),
        Case("WorkerStalled stays silent while jobs finish", (S.gauge(m.queue_depth, depth_labels, waiting, n), *moving), (), at),
        Case("WorkerStalled stays silent for an idle worker (nothing waiting)",
             (S.gauge(m.queue_depth, depth_labels, ctx.threshold, n), *flat), (), at),
    ]


ALERTS = (
    AlertDef(
        name="WorkerQueueDepthHigh",
        kinds=("worker",),
        severity="P1",
        for_="10m",  # a burst that drains within minutes is normal; ten minutes above the line is a backlog
        threshold=1000,  # jobs waiting; scenario A: queue depth > 1000 is P1. Scale with throughput
        unit="count",
        summary="{service}: {{ $value | humanize }} jobs waiting in {{ $labels.queue }}",
        description="Queue {{ $labels.queue }} of {service} holds {{ $value | humanize }} jobs (alert above {threshold} for {for}).",
        query=_depth,
        cases=_depth_cases,
        meaning="Jobs arrive faster than the worker finishes them; everything behind them is delayed.",
        causes=("too few worker processes for the load", "jobs got slower (a slow dependency)", "a burst of enqueued work (a batch import)"),
        needs=SCRAPED,
    ),
    _failure_def("WorkerJobFailureRatioHigh", "P1",
                 0.05,  # 5% of jobs failing: will hurt soon (work piles up in retries)
                 "10m"),
    _failure_def("WorkerJobFailureRatioWarning", "P2",
                 0.01,  # scenario A: failed jobs should stay below 1%
                 "15m"),
    AlertDef(
        name="WorkerJobDurationP95High",
        kinds=("worker",),
        severity="P2",
        for_="15m",  # job durations are bursty; a quarter hour is a trend
        threshold=5.0,  # seconds; scenario A: jobs slower than 5 s are slow operations. Raise for batch jobs
        unit="seconds",
        summary="{service}: p95 job duration {{ $value | humanizeDuration }}",
        description="The p95 of {service}'s job duration over {window} is {{ $value | humanizeDuration }} (alert above {threshold} for {for}).",
        query=_job_latency,
        cases=_job_latency_cases,
        meaning="Jobs take longer than usual; throughput drops and queues grow.",
        causes=("a slow dependency the jobs call", "larger inputs than usual", "CPU or memory pressure on the worker"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="WorkerStalled",
        kinds=("worker",),
        severity="P1",
        for_="10m",  # on top of the 10m rate window: a long job may legitimately finish nothing for a while
        threshold=0,  # jobs waiting above which finishing none counts as stalled
        unit="count",
        summary="{service}: no job finished while {{ $value | humanize }} wait in {{ $labels.queue }}",
        description="{service} has finished no job (completed or failed) for at least {window} while {{ $value | humanize }} jobs wait in queue {{ $labels.queue }}.",
        expr=_stalled,
        query=lambda c: f"{_depth(c)} and on ({_by(c)}) {_completed(c)}",
        cases=_stalled_cases,
        meaning="The worker takes no work although jobs are waiting: it is hung, disconnected from the queue, or all its slots are stuck.",
        causes=("a deadlock or a job that never returns", "the worker lost its connection to the queue backend (Redis)",
                "all worker processes crashed but the metrics endpoint survives", "a paused queue"),
        needs=SCRAPED,
        window="10m",  # a job may legitimately take minutes: ten without one finished is a stall
    ),
)

