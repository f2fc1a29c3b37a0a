"""Every name monstack invents, in one place: labels, jobs, rule names, files, uids, ports.

Change a name here and every renderer, test and dashboard follows.
"""
from __future__ import annotations

import hashlib
import re
from typing import Literal

LEVELS: tuple[Literal["P0", "P1", "P2", "P3"], ...] = ("P0", "P1", "P2", "P3")

# Labels on every series and alert -------------------------------------------
SERVICE = "service"
TEAM = "team"
ENV = "env"
KIND = "kind"
SEVERITY = "severity"
PROBE = "probe"  # which health probe of a service (liveness, readiness, ...)
SYNTHETIC = "synthetic"  # set on alerts that `monstack test-alerts` posts
SYNTHETIC_ALERT = "MonstackSyntheticTest"  # alertname of the alerts `monstack test-alerts` posts
MONSTACK_JOB_LABEL = "monstack"  # on the stack's own scrape jobs: "self"

# Generated files, relative to the output root --------------------------------
PROMETHEUS_CONFIG = "prometheus/prometheus.yml"
RULES_DIR = "prometheus/rules"
RULE_TESTS_DIR = "prometheus/tests"
BLACKBOX_CONFIG = "prometheus/blackbox.yml"
ALERTMANAGER_CONFIG = "alertmanager/alertmanager.yml"
ALERTMANAGER_TEMPLATES_DIR = "alertmanager/templates"
ROUTING_TESTS = "alertmanager/tests/routing.yml"
GRAFANA_DATASOURCES = "grafana/provisioning/datasources/monstack.yml"
GRAFANA_DASHBOARD_PROVIDERS = "grafana/provisioning/dashboards/monstack.yml"
DASHBOARDS_DIR = "grafana/dashboards"
RUNBOOKS_DIR = "docs/runbooks"
ALERTS_DOC = "docs/alerts.md"
COMPOSE_FILE = "compose.yaml"
MANIFEST = ".monstack-generated"  # list of generated files with their sha256, for stale-file cleanup and drift


def prometheus_config(replica: int = 1) -> str:
    """The configuration file of one Prometheus replica (an HA pair differs only in its replica label)."""
    return PROMETHEUS_CONFIG if replica == 1 else f"prometheus/prometheus-{replica}.yml"


PROMETHEUS_REPLICA_LABEL = "prometheus_replica"  # external label of each Prometheus of an HA pair; dropped from alerts


def rules_file(group: str) -> str:
    return f"{RULES_DIR}/{group}.yml"


def rule_tests_file(group: str, step: str | None = None) -> str:
    """promtool tests of one rule file; tests evaluated every `step` (not the default minute) get their own file."""
    return f"{RULE_TESTS_DIR}/{group}.test.yml" if step is None else f"{RULE_TESTS_DIR}/{group}.every-{step}.test.yml"


def runbook_file(alert: str) -> str:
    return f"{RUNBOOKS_DIR}/{alert.lower()}.md"


def dashboard_file(folder: str, name: str) -> str:
    return f"{DASHBOARDS_DIR}/{folder}/{name}.json"


# Scrape jobs ---------------------------------------------------------------
def service_job(service: str) -> str:
    return service


def probe_job(service: str) -> str:
    return f"probe-{service}"


SELF_PROMETHEUS_JOB = "prometheus"
SELF_ALERTMANAGER_JOB = "alertmanager"
SELF_BLACKBOX_JOB = "blackbox-exporter"
META_RULES_GROUP = "monstack-meta"  # rule file and group for meta-monitoring
META_SERVICE = "monstack"  # service label of the stack's own series and alerts
META_TEAM = "monstack"  # team label of the same; no team route matches it, so the severity policy applies


# Rule groups of one service's rule file (prometheus/rules/<service>.yml), evaluated in this order.
def recording_group(service: str) -> str:
    return f"{service}.recording"


def slo_group(service: str) -> str:
    return f"{service}.slo"


def alerts_group(service: str) -> str:
    return f"{service}.alerts"


def custom_record(rule: str) -> str:
    """The recorded series of a custom `threshold` rule's expression (the alert compares it)."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", rule).lower()
    return record("service", f"custom_{snake}", "value")


# Recording rules: level:metric:operations (Prometheus naming practice) -----
def record(level: str, metric: str, operations: str) -> str:
    return f"{level}:{metric}:{operations}"


# Grafana --------------------------------------------------------------------
DATASOURCE_PROMETHEUS_UID = "monstack-prometheus"
DATASOURCE_ALERTMANAGER_UID = "monstack-alertmanager"
DATASOURCE_VICTORIA_METRICS_UID = "monstack-victoria-metrics"  # the long-term store, when the stack remote-writes to it
# The stack-wide dashboards (folder GRAFANA_STACK_FOLDER); dashboards link each other by dashboard_uid(name).
DASHBOARD_OVERVIEW = "overview"
DASHBOARD_SLO = "slo"
DASHBOARD_INFRASTRUCTURE = "infrastructure"
DASHBOARD_BUSINESS = "business"
DASHBOARD_STACK = "stack"
GRAFANA_STACK_FOLDER = "monstack"  # folder of the stack-wide dashboards; each team gets a folder of its own
GRAFANA_DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"  # where Grafana reads grafana/dashboards (compose mount)
_UID_MAX = 40  # Grafana's limit


def folder_uid(folder: str) -> str:
    """The uid of a provisioned dashboard folder, fixed so links and permissions survive re-provisioning."""
    return dashboard_uid("folder", folder)


def service_dashboard_uid(service: str) -> str:
    return dashboard_uid("service", service)


def dashboard_uid(*parts: str) -> str:
    """A uid derived from names only, so it never changes by accident; hashed when too long."""
    slug = re.sub(r"[^a-z0-9-]+", "-", "-".join(("ms",) + parts).lower()).strip("-")
    if len(slug) <= _UID_MAX:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: _UID_MAX - 9]}-{digest}"


# Ports of the stack's own components live in their table (generator/components.py); these are the native
# runner's local stand-ins for Slack/PagerDuty/webhooks (HTTP) and email (SMTP).
NATIVE_SINK_HTTP_PORT = 19980
NATIVE_SINK_SMTP_PORT = 19925

# Runtime state of the runners, relative to the working directory (git-ignored).
STATE_DIR = ".monstack"
STATE_CONFIG = "config"  # native: the inventory rendered with the native topology
STATE_DATA = "data"  # TSDB, Alertmanager silences and notification log, databases
STATE_LOGS = "logs"  # one <component>.log per process
STATE_RUN = "run"  # one <component>.pid per process, stack.json (mode, URLs), the state folder's lock
STATE_CONFIG_GOOD = "config-good"  # native: the last configuration every component accepted (what a failed apply restores)
# Secrets the runners create when absent (relative to the inventory's folder, like *_file references).
GRAFANA_ADMIN_PASSWORD_FILE = "secrets/grafana_admin_password"
POSTGRES_PASSWORD_FILE = "secrets/postgres_password"  # the demo PostgreSQL in compose.yaml

PROBLEM = "problem"  # alerts that are tiers of one problem share it; a higher tier inhibits the lower

# Alertmanager -----------------------------------------------------------------
NULL_RECEIVER = "monstack-null"  # swallows the Watchdog when the inventory names no heartbeat receiver
WATCHDOG_ALERT = "Watchdog"  # the always-firing meta alert routed to the heartbeat receiver
DOWN_ALERTS = ("TargetDown", "HealthProbeFailing", "PostgresDown", "RedisDown")  # a service is down: these mute its other alerts
BUSINESS_HOURS = "business-hours"  # time interval P3 notifies in by default; built in unless the inventory defines it


def secret_name(ref: str) -> str:
    """The compose secret name of a secret file reference (also its /run/secrets/ file name)."""
    return re.sub(r"[^a-z0-9_]+", "_", ref.lower()).strip("_")
