"""Recording rules per service kind, named level:metric:operations. Alerts and dashboards read these.

Every recorded series keeps the labels service, team and env (BY); the
per-route and per-status levels add the service's route or status label. The
names are an interface (dashboards query them); they are spelled in
generator/catalogue/recorded.py:

http services (group <service>.recording)
  service:http_requests:rate5m                       requests per second
  service:http_errors:rate5m                         failed requests per second (0, not absent, before the first failure)
  service:http_errors:ratio_rate5m                   share of requests that failed
  service_route:http_requests:rate5m                 requests per second per route
  service_route:http_errors:ratio_rate5m             share of requests that failed, per route
  service_status:http_requests:rate5m                requests per second per status code
  service:http_request_duration_seconds_bucket:rate5m  per-le bucket rates (sum by le)
  service:http_request_duration_seconds:p50_5m|p95_5m|p99_5m   latency percentiles from those, in seconds
  service_route:http_request_duration_seconds_bucket:rate5m, service_route:...:p50_5m|p95_5m|p99_5m
  service:db_query_duration_seconds_bucket:rate5m, service:db_query_duration_seconds:p50_5m|p95_5m|p99_5m
                                                     when metrics.db_query_duration is set
worker services (group <service>.recording)
  service:jobs:rate5m, service:jobs_failed:rate5m, service:jobs_failed:ratio_rate5m
  service:job_duration_seconds_bucket:rate5m, service:job_duration_seconds:p50_5m|p95_5m|p99_5m
services with an SLO (group <service>.slo), for each window W of 5m 30m 1h 2h 6h 1d 3d
  service:http_errors:ratio_rate<W> (service:jobs_failed:ratio_rate<W>)         availability SLI
  service:http_requests_slow:ratio_rate<W> (service:jobs_slow:ratio_rate<W>)    latency SLI: share slower than the threshold

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
from generator.catalogue.slo import le_regex
from generator.model import HttpMetrics, Service, WorkerMetrics
from generator.promql import num, sel
from generator.units import duration_bound, duration_scale

BY = f"{names.SERVICE}, {names.TEAM}, {names.ENV}"
QUANTILES = R.QUANTILES


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


def _percentiles(s: Service, buckets_record: str, target: Any, unit: str = "seconds") -> list[dict[str, Any]]:
    scale = duration_scale(unit)
    per = f" / {num(scale)}" if scale != 1 else ""
    return [_rule(target(label), f"histogram_quantile({q}, {sel(buckets_record, {names.SERVICE: s.name})}){per}") for label, q in QUANTILES]


def http_rules(s: Service, m: HttpMetrics) -> list[dict[str, Any]]:
    mine = {names.SERVICE: s.name}
    requests = sel(m.requests, mine)
    errors = sel(m.requests, mine, {m.status_label: m.error_status})
    by_route = f"{BY}, {m.route_label}"
    rules = [
        _rule(R.HTTP_REQUESTS, _rate(requests, "5m")),
        _rule(R.HTTP_ERRORS, f"{_rate(errors, '5m')} or {_rate(requests, '5m')} * 0"),
        _rule(R.HTTP_ERROR_RATIO, f"{sel(R.HTTP_ERRORS, mine)} / {sel(R.HTTP_REQUESTS, mine)}"),
        _rule(R.ROUTE_REQUESTS, _rate(requests, "5m", by_route)),
        _rule(R.ROUTE_ERROR_RATIO, _ratio(errors, requests, "5m", by_route)),
        _rule(R.STATUS_REQUESTS, _rate(requests, "5m", f"{BY}, {m.status_label}")),
        _rule(R.buckets("http_request_duration", m.duration_unit), _rate(sel(m.duration + "_bucket", mine), "5m", f"{BY}, le")),
    ]
    rules += _percentiles(s, R.buckets("http_request_duration", m.duration_unit), R.http_latency, m.duration_unit)
    route_buckets = R.buckets("http_request_duration", m.duration_unit, R.ROUTE)
    rules.append(_rule(route_buckets, _rate(sel(m.duration + "_bucket", mine), "5m", f"{by_route}, le")))
    rules += _percentiles(s, route_buckets, lambda q: R.http_latency(q, R.ROUTE), m.duration_unit)
    if m.db_query_duration:
        db_buckets = R.buckets("db_query_duration", m.db_query_duration_unit)
        rules.append(_rule(db_buckets, _rate(sel(m.db_query_duration + "_bucket", mine), "5m", f"{BY}, le")))
        rules += _percentiles(s, db_buckets, R.db_query_latency, m.db_query_duration_unit)
    return rules


def worker_rules(s: Service, m: WorkerMetrics) -> list[dict[str, Any]]:
    mine = {names.SERVICE: s.name}
    jobs = sel(m.jobs, mine)
    failed = sel(m.jobs, {**mine, m.status_label: m.failed_value})
    rules = [
        _rule(R.JOBS, _rate(jobs, "5m")),
        _rule(R.JOBS_FAILED, f"{_rate(failed, '5m')} or {_rate(jobs, '5m')} * 0"),
        _rule(R.JOB_FAILURE_RATIO, f"{sel(R.JOBS_FAILED, mine)} / {sel(R.JOBS, mine)}"),
        _rule(R.buckets("job_duration", m.duration_unit), _rate(sel(m.duration + "_bucket", mine), "5m", f"{BY}, le")),
    ]
    return rules + _percentiles(s, R.buckets("job_duration", m.duration_unit), R.job_latency, m.duration_unit)


def slo_rules(s: Service) -> list[dict[str, Any]]:
    """SLI ratios over every burn-rate window (the 5m availability ratio is already in the recording group)."""
    if s.scrape is None or s.slo is None or not isinstance(s.metrics, (HttpMetrics, WorkerMetrics)):
        return []
    m = s.metrics
    mine = {names.SERVICE: s.name}
    if isinstance(m, HttpMetrics):
        total, failed = sel(m.requests, mine), sel(m.requests, mine, {m.status_label: m.error_status})
    else:
        total, failed = sel(m.jobs, mine), sel(m.jobs, {**mine, m.status_label: m.failed_value})
    rules: list[dict[str, Any]] = []
    if s.slo.availability is not None:
        for w in R.SLI_WINDOWS:
            if w != "5m":
                rules.append(_rule(R.sli_errors(s.kind, w), _ratio(failed, total, w)))
    if s.slo.latency_threshold is not None:
        count = sel(m.duration + "_count", mine)
        fast = sel(m.duration + "_bucket", mine, {"le": le_regex(duration_bound(s.slo.latency_threshold.ms, m.duration_unit))})
        for w in R.SLI_WINDOWS:
            rules.append(_rule(R.sli_slow(s.kind, w), f"({_rate(count, w)} - {_rate(fast, w)}) / {_rate(count, w)}"))
    return rules
