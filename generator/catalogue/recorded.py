"""Names of the recorded series alerts and dashboards read (level:metric:operations).

generator/recording.py defines them; this module only names them, so
the catalogue can use them without importing the model. The names are part of
monstack's interface to dashboards: change them only with both.
"""
from __future__ import annotations

from generator import names

SERVICE = "service"  # aggregated per service (labels service, team, env)
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))  # what dashboards show
# Percentiles recorded because alerts read them; dashboards compute the others from the recorded bucket rates.
HTTP_QUANTILES = (("p95", 0.95), ("p99", 0.99))
DB_QUANTILES = (("p95", 0.95), ("p99", 0.99))
JOB_QUANTILES = (("p95", 0.95),)
# SLI error-ratio windows: the multi-window, multi-burn-rate pairs (1h/5m, 6h/30m, 1d/2h, 3d/6h).
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The pairs' long windows: their burn-rate alerts also count the events in them (a floor of bad events), so the
# events per second over these windows are recorded too, and each ratio divides by that recorded rate.
SLI_LONG_WINDOWS = ("1h", "6h", "1d", "3d")


def rec(metric: str, ops: str, level: str = SERVICE) -> str:
    return names.record(level, metric, ops)


HTTP_REQUESTS = rec("http_requests", "rate5m")
HTTP_ERRORS = rec("http_errors", "rate5m")
HTTP_ERROR_RATIO = rec("http_errors", "ratio_rate5m")
def buckets(base: str, unit: str = "seconds", level: str = SERVICE) -> str:
    """Per-le bucket rates of a histogram, named for the unit of their le labels (the one series not converted to seconds)."""
    return rec(f"{base}_{unit}_bucket", "rate5m", level)


HTTP_DURATION_BUCKETS = buckets("http_request_duration")
DB_QUERY_BUCKETS = buckets("db_query_duration")
JOBS = rec("jobs", "rate5m")
JOBS_FAILED = rec("jobs_failed", "rate5m")
JOB_FAILURE_RATIO = rec("jobs_failed", "ratio_rate5m")
JOB_DURATION_BUCKETS = buckets("job_duration")


def http_latency(q: str, level: str = SERVICE) -> str:
    """q is p50, p95 or p99."""
    return rec("http_request_duration_seconds", f"{q}_5m", level)


def db_query_latency(q: str) -> str:
    return rec("db_query_duration_seconds", f"{q}_5m")


def job_latency(q: str) -> str:
    return rec("job_duration_seconds", f"{q}_5m")


def sli_errors(kind: str, window: str) -> str:
    """Share of failed requests (http) or jobs (worker) over window: the availability SLI. 5m is the alerts' error ratio."""
    return rec("http_errors" if kind == "http" else "jobs_failed", f"ratio_rate{window}")


def sli_slow(kind: str, window: str) -> str:
    """Share of requests (jobs) slower than the latency SLO threshold over window: the latency SLI."""
    return rec("http_requests_slow" if kind == "http" else "jobs_slow", f"ratio_rate{window}")


def sli_events(kind: str, window: str) -> str:
    """Requests (jobs) per second over window, all of them: the availability SLI's denominator (5m: HTTP_REQUESTS, JOBS)."""
    return rec("http_requests" if kind == "http" else "jobs", f"rate{window}")


def sli_timed(kind: str, window: str, unit: str = "seconds") -> str:
    """Observations of the duration histogram per second over window: the latency SLI's denominator."""
    return rec(f"{'http_request_duration' if kind == 'http' else 'job_duration'}_{unit}_count", f"rate{window}")
