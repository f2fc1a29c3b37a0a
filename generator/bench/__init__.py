"""`make bench`: monstack's speed, measured in sections, each printing a table and writing its own key of
bench/results.json (read, merged, written: a section never clobbers another's figures).

    python -m generator.bench [--only render,validate,dashboards,outage] [--sizes 100,1000,10000]

Numbers, not pass/fail: speed goals are read here, never asserted in unit tests. Every process a
section starts runs in its own process group and is stopped when the section ends, however it ends.
The method and the latest results are described in docs/performance.md.
"""
from __future__ import annotations

from typing import Any

KINDS = ("http", "http", "http", "worker", "postgres", "redis", "custom")


def synthetic_inventory(n: int) -> dict[str, Any]:
    """n services over n/20 teams, mixing kinds, probes, SLOs and custom rules like a real fleet."""
    teams: dict[str, dict[str, Any]] = {f"team-{t}": {} for t in range(max(1, n // 20))}
    team_names = list(teams)
    services = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        svc: dict[str, Any] = {"name": f"svc-{i}", "team": team_names[i % len(team_names)], "kind": kind,
                               "scrape": {"targets": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9100"]}}
        if kind == "http":
            svc["health"] = [{"name": "liveness", "url": f"http://svc-{i}.internal:8080/health"}]
            svc["slo"] = {"availability": 99.9, "latency": {"threshold": "500ms", "percentile": 95}}
        if kind == "custom":
            svc["rules"] = [{"name": "ThingsStalled", "type": "stalled", "metric": "things_processed_total", "for": "15m"}]
        services.append(svc)
    return {
        "version": 1,
        "stack": {"retention": {"time": "30d"}},  # the 30-day SLO windows need 30 days of samples
        "receivers": {"slack": {"type": "slack", "webhook_url_file": "secrets/slack", "channel": "#alerts"},
                      "pager": {"type": "pagerduty", "routing_key_file": "secrets/pd"}},
        "severities": {"P0": {"receivers": ["pager", "slack"]}, "P1": {"receivers": ["slack"]},
                       "P2": {"receivers": ["slack"]}, "P3": {"receivers": ["slack"]}},
        "teams": teams,
        "services": services,
    }
