"""The benchmark fleet: an inventory in the spirit of generator/bench.py's synthetic one, with every kind the catalogue covers.

Three HTTP services of very different traffic (a busy storefront, a
payments API with an https health URL, a back-office API that sees a few
requests an hour at night), a worker, PostgreSQL, Redis, two hosts and a
custom batch sync. The alerts are the catalogue's defaults: no overrides.
Targets are scraped and rules evaluated every minute so three simulated weeks
stay small; health probes run at the default probe interval (10s) and the
hard-down rule group at its fast interval (5s), as the rendered config says,
because their alerts count failures over windows of two probes; every `for`
and window is the catalogue's.
"""
from __future__ import annotations

from typing import Any

CADENCE = 60  # seconds: scrape and evaluation interval of the fleet

FLEET: dict[str, Any] = {
    "version": 1,
    "stack": {"name": "quality-bench", "environment": "production", "scrape_interval": f"{CADENCE}s",
              "evaluation_interval": f"{CADENCE}s", "timezone": "UTC",
              "retention": {"time": "30d"}},  # the 30-day SLO windows need 30 days of samples
    "receivers": {
        "pager": {"type": "pagerduty", "routing_key_file": "secrets/pagerduty_routing_key"},
        "chat": {"type": "slack", "webhook_url_file": "secrets/slack_webhook_url", "channel": "#alerts"},
        "tickets": {"type": "webhook", "url": "http://tickets.internal:8080/hook"},
    },
    # The default severity policy: P0 pages, P1 and P2 go to chat, P3 opens tickets in business hours.
    "severities": {"P0": {"receivers": ["pager", "chat"]}, "P1": {"receivers": ["chat"]},
                   "P2": {"receivers": ["chat"]}, "P3": {"receivers": ["tickets"]}},
    "teams": {"shop": {}, "payments": {}, "platform": {}},
    "services": [
        {"name": "storefront", "team": "shop", "kind": "http", "scrape": {"targets": ["10.0.1.1:8080"]},
         "health": [{"name": "liveness", "url": "http://10.0.1.1:8080/health", "max_duration": "50ms"},
                    {"name": "readiness", "url": "http://10.0.1.1:8080/ready", "max_duration": "500ms"}],
         "slo": {"availability": 99.9, "latency": {"threshold": "500ms", "percentile": 95}},
         "resources": {"memory_limit": "1GiB"},
         "metrics": {"db_pool_size": "db_connection_pool_size", "db_pool_available": "db_connection_pool_available",
                     "db_query_duration": "db_query_duration_seconds"}},
        {"name": "payments-api", "team": "payments", "kind": "http", "scrape": {"targets": ["10.0.2.1:8080"]},
         "health": [{"name": "api", "url": "https://payments.example.com/health", "max_duration": "500ms"}],
         "slo": {"availability": 99.95, "latency": {"threshold": "250ms", "percentile": 99}},
         "resources": {"memory_limit": "512MiB"}},
        {"name": "backoffice-api", "team": "shop", "kind": "http", "scrape": {"targets": ["10.0.3.1:8080"]},
         "health": [{"name": "liveness", "url": "http://10.0.3.1:8080/health"}],
         "slo": {"availability": 99.9, "latency": {"threshold": "1s", "percentile": 95}},
         "resources": {"memory_limit": "512MiB"}},
        {"name": "order-worker", "team": "shop", "kind": "worker", "scrape": {"targets": ["10.0.4.1:9100"]},
         "health": [{"name": "liveness", "url": "http://10.0.4.1:9100/health"}]},
        {"name": "orders-db", "team": "platform", "kind": "postgres", "scrape": {"targets": ["10.0.5.1:9187"]}},
        {"name": "session-cache", "team": "platform", "kind": "redis", "scrape": {"targets": ["10.0.6.1:9121"]}},
        {"name": "hosts", "team": "platform", "kind": "host", "scrape": {"targets": ["10.0.7.1:9100", "10.0.7.2:9100"]}},
        {"name": "catalog-sync", "team": "shop", "kind": "custom", "scrape": {"targets": ["10.0.8.1:9100"]},
         "rules": [{"name": "CatalogSyncStalled", "type": "stalled", "metric": "catalog_items_synced_total", "for": "15m",
                    "severity": "P1"}]},
    ],
}
