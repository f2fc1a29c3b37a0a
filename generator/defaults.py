"""Every default the inventory does not state, in one place.

Each value says when you would change it. Alert thresholds live with the alert
catalogue (generator/catalogue/); this module holds the stack, the delivery
policy and the host selectors the inventory schema offers as defaults.
"""
from __future__ import annotations

from generator import names

# Stack --------------------------------------------------------------------
SCRAPE_INTERVAL = "15s"  # lower for fast-moving gauges; raises series churn and storage
SCRAPE_TIMEOUT = "10s"  # must stay below every job's interval
EVALUATION_INTERVAL = "15s"  # alert latency floor: an alert fires at most one interval after `for` ends
# The hard-down alerts (a target that no longer answers, a failing health probe) sit in a rule group of
# their own evaluated this often (or at evaluation_interval when that is shorter): they read one raw
# gauge per service, so evaluating them often is cheap, and it takes seconds off every outage page.
FAST_EVALUATION_INTERVAL = "5s"
# The SLO windows of a day and more (and the short window only their pairs read) are recorded, and their
# burn-rate alerts evaluated, in a rule group of their own this often (or at evaluation_interval when that is
# longer): a ratio over days moves little in a minute, and reading days of counters is the rule set's largest
# cost (docs/performance.md). Their alerts open tickets (P3) and wait a minute at most for it.
SLOW_EVALUATION_INTERVAL = "1m"
# Health probes run this often (or at the service's scrape interval when that is shorter). Two failed
# probes in a row page; at 10s a dead service pages about 20s after it dies, and one failed probe
# never does. Each probe is one request to the service through the blackbox exporter.
PROBE_INTERVAL = "10s"
# Above this many services, services of the same shape share one templated dashboard (a `service`
# variable) instead of one each, and the overview aggregates instead of asking per service
# (generator/fleet.py). Per-service dashboards beyond it cost Grafana 40 KB each to provision and
# make stack-wide panels of hundreds of queries.
FLEET_DASHBOARDS_ABOVE = 100
RETENTION_TIME = "15d"  # raise with remote_write off; lower on small disks
SLO_WINDOW = "30d"  # the error-budget window; 28d aligns with weekly cycles

SECRETS_DIR = "secrets"  # beside the inventory; every *_file must lie inside (compose mounts, the native runner reads)

# Delivery policy per severity (docs/scenarios.md, the shared severity policy).
# group_wait: how long to gather the first notification; group_interval: how
# soon a changed group notifies again; repeat_interval: reminder cadence.
LEVEL_TIMING = {
    "P0": {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "30m"},  # users hurt now: page fast (an outage pages in ~30s)
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
BUSINESS_HOURS_WEEKDAYS = ("monday:friday",)
BUSINESS_HOURS_TIMES = (("09:00", "17:00"),)
TIMEZONE = "UTC"  # set stack.timezone to the team's zone so business hours mean local hours

# Rules written elsewhere (rules.d/, community mixins) say severity critical/warning/info; Prometheus maps them to
# levels before Alertmanager routes. warning is P2, not P1: community warnings are rarely "will hurt within the hour".
SEVERITY_MAP = {"critical": "P0", "warning": "P2", "info": "P3"}

# Hosts (node_exporter) -------------------------------------------------------
# Filesystems never worth a disk-space page: pseudo filesystems and read-only images.
EXCLUDE_FSTYPES = "tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs|proc|sysfs|cgroup2?|autofs|fuse\\..*|iso9660"
# Block devices that are not disks (loop mounts of snaps and images, RAM disks, optical drives).
EXCLUDE_DISK_DEVICES = "loop[0-9]+|ram[0-9]+|sr[0-9]+|fd[0-9]+|zram[0-9]+"
# Virtual interfaces whose counters say nothing about the host's network (loopback, containers, bridges).
EXCLUDE_NETWORK_DEVICES = "lo|veth.*|docker.*|br-.*|virbr.*|cni.*|flannel.*|cali.*|tun.*|tap.*"
