"""Every default the inventory does not state, in one place.

Each value says when you would change it. Alert thresholds live with the alert
catalogue (generator/catalogue.py); this module holds the stack and the
delivery policy.
"""
from __future__ import annotations

from generator import names

# Stack --------------------------------------------------------------------
SCRAPE_INTERVAL = "15s"  # lower for fast-moving gauges; raises series churn and storage
SCRAPE_TIMEOUT = "10s"  # must stay below every job's interval
EVALUATION_INTERVAL = "15s"  # alert latency floor: an alert fires at most one interval after `for` ends
RETENTION_TIME = "15d"  # raise with remote_write off; lower on small disks
SLO_WINDOW = "30d"  # the error-budget window; 28d aligns with weekly cycles

SECRETS_DIR = "secrets"  # beside the inventory; every *_file must lie inside (compose mounts, the native runner reads)

# Delivery policy per severity (SCENARIOS.md, "Default severity policy").
# group_wait: how long to gather the first notification; group_interval: how
# soon a changed group notifies again; repeat_interval: reminder cadence.
LEVEL_TIMING = {
    "P0": {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "30m"},  # users hurt now: page fast
    "P1": {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"},  # will hurt soon
    "P2": {"group_wait": "1m", "group_interval": "10m", "repeat_interval": "4h"},  # degraded
    "P3": {"group_wait": "5m", "group_interval": "30m", "repeat_interval": "24h"},  # housekeeping, tickets
}
LEVEL_MEANING = {
    "P0": "critical: users hurt now, respond immediately",
    "P1": "high: will hurt soon, respond within 1 hour",
    "P2": "medium: degraded, respond within 4 hours",
    "P3": "low: housekeeping, respond within 24 hours",
}
# Labels that make one notification group; add `instance` to page per host.
GROUP_BY = ("alertname", "service")
# Housekeeping (P3) notifies only inside business hours unless its policy sets
# active_time_intervals ([] for always). The built-in business hours, in
# stack.timezone; define a time interval named business-hours to change them.
ACTIVE_TIME_INTERVALS = {"P3": (names.BUSINESS_HOURS,)}
BUSINESS_HOURS = {"weekdays": ("monday:friday",), "times": (("09:00", "17:00"),)}
TIMEZONE = "UTC"  # set stack.timezone to the team's zone so business hours mean local hours
