"""Recording rules per service kind, named level:metric:operations. Alerts read these; dashboards read them where they exist.

A series is recorded when an alert reads it (or a recorded series it reads is built from it): each
recording costs a head series, so what only dashboards show (per route, per status, the median) is
computed by the dashboards from the counters or from the recorded bucket rates. Every recorded
series keeps the labels service, team and env (BY). The names are an interface (dashboards query
them); they are spelled in generator/catalogue/recorded.py:

http services (group <service>.recording)
  service:http_requests:rate5m                       requests per second
  service:http_errors:rate5m                         failed requests per second (0, not absent, before the first failure)
  service:http_errors:ratio_rate5m                   share of requests that failed
  service:http_request_duration_seconds_bucket:rate5m  per-le bucket rates (sum by le)
  service:http_request_duration_seconds:p95_5m|p99_5m  latency percentiles from those, in seconds
  service:db_query_duration_seconds_bucket:rate5m, service:db_query_duration_seconds:p95_5m|p99_5m
                                                     when metrics.db_query_duration is set
worker services (group <service>.recording)
  service:jobs:rate5m, service:jobs_failed:rate5m, service:jobs_failed:ratio_rate5m
  service:job_duration_seconds_bucket:rate5m, service:job_duration_seconds:p95_5m
services with an SLO (group <service>.slo; 2h, 1d and 3d in <service>.slo-slow, every minute), for each window W
of 5m 30m 1h 2h 6h 1d 3d
  service:http_errors:ratio_rate<W> (service:jobs_failed:ratio_rate<W>)         availability SLI
  service:http_requests_slow:ratio_rate<W> (service:jobs_slow:ratio_rate<W>)    latency SLI: share slower than the threshold
  and for the long windows of the burn-rate pairs (1h 6h 1d 3d) the events per second the ratios divide by:
  service:http_requests:rate<W> (service:jobs:rate<W>)                          every request (job)
  service:http_request_duration_seconds_count:rate<W> (service:job_duration_seconds_count:rate<W>)  every timed one

Over a window of days, reading the counters is what costs: each window's counters are read once,
the ratio divides by the recorded rate of all events, and the burn-rate alerts' floor of bad events
(ratio x events per second x window) multiplies recorded series instead of reading the counters again.
increase() is rate() times the window, so the floor is the same number. The 5m failure rate falls back
on the recorded request rate of the same evaluation.

A histogram in milliseconds (metrics.duration_unit, or a _ms name) keeps its le labels in
milliseconds, so its bucket rates are named ..._milliseconds_bucket:rate5m; the percentiles
divide by 1000 once, so every percentile, alert and panel reads seconds.

A ratio is (failures or all * 0) / all: 0, not absent, while no failure
series exists yet. Percentiles are histogram_quantile over the recorded
per-le rates, never over raw buckets.
"""
from __future__ import annotations

from typing import Any

from generator import names
from generator.catalogue import recorded as R
from generator.catalogue.slo import le_regex, slow_windows
from generator.model import HttpMetrics, Service, WorkerMetrics
from generator.promql import num, sel
from generator.units import duration_bound, duration_scale

BY = f"{names.SERVICE}, {names.TEAM}, {names.ENV}"


def rec(metric: str, ops: str) -> str:
    """A per-service recorded name, e.g. rec("http_errors", "ratio_rate5m")."""
    return R.rec(metric, ops)


def rules_for(s: Service) -> list[dict[str, Any]]:
    """Every standard recording rule of the service (both groups), in order."""
    return recording_rules(s) + slo_rules(s)


def recording_rules(s: Service) -> list[dict[str, Any]]:
    if s.scrape is None:
        return []
    if isinstance(s.metrics, HttpMetrics):
        return http_rules(s, s.metrics)
    if isinstance(s.metrics, WorkerMetrics):
        return worker_rules(s, s.metrics)
    return []


def _rule(record: str, expr: str) -> dict[str, Any]:
    return {"record": record, "expr": expr}


def _rate(selector: str, window: str, by: str = BY) -> str:
    return f"sum by ({by}) (rate({selector}[{window}]))"


def _ratio(failures: str, total: str, window: str, by: str = BY) -> str:
    """(failures or total * 0) / total over window; selectors without the range."""
    return f"({_rate(failures, window, by)} or {_rate(total, window, by)} * 0) / {_rate(total, window, by)}"


def _percentiles(s: Service, buckets_record: str, target: Any, quantiles: tuple[tuple[str, float], ...],
                 unit: str = "seconds") -> list[dict[str, Any]]:
    scale = duration_scale(unit)
    per = f" / {num(scale)}" if scale != 1 else ""
    return [_rule(target(label), f"histogram_quantile({q}, {sel(buckets_record, {names.SERVICE: s.name})}){per}") for label, q in quantiles]


def http_rules(s: Service, m: HttpMetrics) -> list[dict[str, Any]]:
    mine = {names.SERVICE: s.name}
    requests = sel(m.requests, mine)
    errors = sel(m.requests, mine, {m.status_label: m.error_status})
    buckets = R.buckets("http_request_duration", m.duration_unit)
    rules = [
        _rule(R.HTTP_REQUESTS, _rate(requests, "5m")),
        _rule(R.HTTP_ERRORS, f"{_rate(errors, '5m')} or {sel(R.HTTP_REQUESTS, mine)} * 0"),
        _rule(R.HTTP_ERROR_RATIO, f"{sel(R.HTTP_ERRORS, mine)} / {sel(R.HTTP_REQUESTS, mine)}"),
        _rule(buckets, _rate(sel(m.duration + "_bucket", mine), "5m", f"{BY}, le")),
    ]
    rules += _percentiles(s, buckets, R.http_latency, R.HTTP_QUANTILES, m.duration_unit)
    if m.db_query_duration:
        db_buckets = R.buckets("db_query_duration", m.db_query_duration_unit)
        rules.append(_rule(db_buckets, _rate(sel(m.db_query_duration + "_bucket", mine), "5m", f"{BY}, le")))
        rules += _percentiles(s, db_buckets, R.db_query_latency, R.DB_QUANTILES, m.db_query_duration_unit)
    return rules


def worker_rules(s: Service, m: WorkerMetrics) -> list[dict[str, Any]]:
    mine = {names.SERVICE: s.name}
    jobs = sel(m.jobs, mine)
    failed = sel(m.jobs, {**mine, m.status_label: m.failed_value})
    rules = [
        _rule(R.JOBS, _rate(jobs, "5m")),
        _rule(R.JOBS_FAILED, f"{_rate(failed, '5m')} or {sel(R.JOBS, mine)} * 0"),
        _rule(R.JOB_FAILURE_RATIO, f"{sel(R.JOBS_FAILED, mine)} / {sel(R.JOBS, mine)}"),
        _rule(R.buckets("job_duration", m.duration_unit), _rate(sel(m.duration + "_bucket", mine), "5m", f"{BY}, le")),
    ]
    return rules + _percentiles(s, R.buckets("job_duration", m.duration_unit), R.job_latency, R.JOB_QUANTILES, m.duration_unit)


def slo_rules(s: Service) -> list[dict[str, Any]]:
    """Every SLO recording rule of the service, both SLO groups', in order."""
    fast, slow = slo_rule_groups(s)
    return fast + slow


def slo_rule_groups(s: Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SLI ratios over every burn-rate window, for the SLO group and for the slow SLO group (the windows of a day and
    more, and the 2h window only their pair reads: catalogue.slo.slow_windows); the 5m availability ratio is the
    recording group's.

    Over a long window the events per second are recorded first and the ratio divides by them: the
    counters of all events are read once per window, and the burn-rate alerts' floor reads the record.
    """
    if s.scrape is None or s.slo is None or not isinstance(s.metrics, (HttpMetrics, WorkerMetrics)):
        return [], []
    m = s.metrics
    mine = {names.SERVICE: s.name}
    if isinstance(m, HttpMetrics):
        total, failed = sel(m.requests, mine), sel(m.requests, mine, {m.status_label: m.error_status})
    else:
        total, failed = sel(m.jobs, mine), sel(m.jobs, {**mine, m.status_label: m.failed_value})
    slow = slow_windows()
    fast_rules: list[dict[str, Any]] = []
    slow_rules: list[dict[str, Any]] = []

    def group(w: str) -> list[dict[str, Any]]:
        return slow_rules if w in slow else fast_rules

    if s.slo.availability is not None:
        for w in R.SLI_WINDOWS:
            if w in R.SLI_LONG_WINDOWS:
                events = R.sli_events(s.kind, w)
                group(w).append(_rule(events, _rate(total, w)))
                group(w).append(_rule(R.sli_errors(s.kind, w), f"({_rate(failed, w)} or {sel(events, mine)} * 0) / {sel(events, mine)}"))
            elif w != "5m":
                group(w).append(_rule(R.sli_errors(s.kind, w), _ratio(failed, total, w)))
    if s.slo.latency_threshold is not None:
        count = sel(m.duration + "_count", mine)
        fast = sel(m.duration + "_bucket", mine, {"le": le_regex(duration_bound(s.slo.latency_threshold.ms, m.duration_unit))})
        for w in R.SLI_WINDOWS:
            if w in R.SLI_LONG_WINDOWS:
                timed = R.sli_timed(s.kind, w, m.duration_unit)
                group(w).append(_rule(timed, _rate(count, w)))
                group(w).append(_rule(R.sli_slow(s.kind, w), f"({sel(timed, mine)} - {_rate(fast, w)}) / {sel(timed, mine)}"))
            else:
                group(w).append(_rule(R.sli_slow(s.kind, w), f"({_rate(count, w)} - {_rate(fast, w)}) / {_rate(count, w)}"))
    return fast_rules, slow_rules
