"""Recording rules per service kind: level:metric:operations, aggregated by the service labels.

Alerts and dashboards read these series, never raw histograms.
"""
from __future__ import annotations

from typing import Any

from generator import names
from generator.model import HttpMetrics, Service
from generator.promql import sel

BY = f"{names.SERVICE}, {names.TEAM}, {names.ENV}"
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def rec(metric: str, ops: str) -> str:
    return names.record("service", metric, ops)


def rules_for(s: Service) -> list[dict[str, Any]]:
    if s.kind == "http" and s.scrape and isinstance(s.metrics, HttpMetrics):
        return http_rules(s, s.metrics)
    return []


def http_rules(s: Service, m: HttpMetrics) -> list[dict[str, Any]]:
    mine = {names.SERVICE: s.name}
    requests = f"sum by ({BY}) (rate({sel(m.requests, mine)}[5m]))"
    errors = f"sum by ({BY}) (rate({sel(m.requests, mine, {m.status_label: m.error_status})}[5m]))"
    rules = [
        {"record": rec("http_requests", "rate5m"), "expr": requests},
        # `or ... * 0` keeps the ratio at 0 (not absent) while no error series exists yet.
        {"record": rec("http_errors", "rate5m"), "expr": f"{errors} or {requests} * 0"},
        {"record": rec("http_errors", "ratio_rate5m"),
         "expr": f"{sel(rec('http_errors', 'rate5m'), mine)} / {sel(rec('http_requests', 'rate5m'), mine)}"},
    ]
    buckets = f"sum by (le, {BY}) (rate({sel(m.duration + '_bucket', mine)}[5m]))"
    for label, q in QUANTILES:
        rules.append({"record": rec("http_request_duration_seconds", f"{label}_5m"), "expr": f"histogram_quantile({q}, {buckets})"})
    return rules
