"""Every name monstack invents, in one place: labels, jobs, rule names, files, uids, ports.

Change a name here and every renderer, test and dashboard follows.
"""
from __future__ import annotations

import functools
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
BACKTEST_FILTER_LABEL = "__monstack_backtest_keep"  # scratch label inside backtest queries (filters by label); never stored

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
HANDWRITTEN = "handwritten"  # subfolder of RULES_DIR and RULE_TESTS_DIR for rules.d/ beside the inventory


def rules_file(group: str) -> str:
    return f"{RULES_DIR}/{group}.yml"


def handwritten_rules_file(name: str) -> str:
    return f"{RULES_DIR}/{HANDWRITTEN}/{name}.yml"


def handwritten_tests_file(name: str) -> str:
    return f"{RULE_TESTS_DIR}/{HANDWRITTEN}/{name}.test.yml"


def rule_tests_file(group: str, step: str | None = None) -> str:
    """promtool tests of one rule file; tests evaluated every `step` (not the default minute) get their own file."""
    return f"{RULE_TESTS_DIR}/{group}.test.yml" if step is None else f"{RULE_TESTS_DIR}/{group}.every-{step}.test.yml"


# A fleet's services alike share their tests: representative rule file -> the rule files it stands for.
RULE_TESTS_SHARED = f"{RULE_TESTS_DIR}/shared.yml"


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
SELF_VICTORIA_METRICS_JOB = "victoria-metrics"  # scraped when the stack runs VictoriaMetrics as its long-term store
META_RULES_GROUP = "monstack-meta"  # rule file and group for meta-monitoring
META_SERVICE = "monstack"  # service label of the stack's own series and alerts
META_TEAM = "monstack"  # team label of the same; no team route matches it, so the severity policy applies


# Rule groups of one service's rule file (prometheus/rules/<service>.yml), evaluated in this order.
def fast_group(service: str) -> str:
    """The service's hard-down alerts, evaluated more often than the rest (catalogue AlertDef.fast)."""
    return f"{service}.fast"


def recording_group(service: str) -> str:
    return f"{service}.recording"


def slo_group(service: str) -> str:
    return f"{service}.slo"


def slo_slow_group(service: str) -> str:
    """The SLO windows of a day and more, evaluated less often than the rest (catalogue.slo BurnWindow.slow); in the SLO file."""
    return f"{service}.slo-slow"


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


@functools.lru_cache(maxsize=1 << 16)  # every alert of a service links its dashboard
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
# The sample exporters' fault-injection API answers only requests carrying this token in CONTROL_HEADER
# (exporters/common.py): a custom header makes a browser ask first (a preflight), which is never granted.
CONTROL_TOKEN_FILE = "secrets/exporter_control_token"
CONTROL_HEADER = "X-Monstack-Control"
# The key VictoriaMetrics asks of its admin endpoints (delete_series, snapshots, force merge, cache reset).
VICTORIA_METRICS_AUTH_KEY_FILE = "secrets/victoria_metrics_auth_key"
# stack.web_auth: the exporter-toolkit web config (a bcrypt hash of the password) Prometheus and Alertmanager read,
# written by the runners at `up` (bcrypt salts are random: it is not a rendered file); and the HTTP client config
# (user name and password file) the compose healthchecks' promtool and amtool authenticate with.
WEB_CONFIG_FILE = "secrets/web_config.yml"
WEB_CLIENT_CONFIG = "web_client.yml"  # under each of the prometheus/ and alertmanager/ folders

PROBLEM = "problem"  # alerts that are tiers of one problem share it; a higher tier inhibits the lower

# Alertmanager -----------------------------------------------------------------
NULL_RECEIVER = "monstack-null"  # swallows the Watchdog when the inventory names no heartbeat receiver
WATCHDOG_ALERT = "Watchdog"  # the always-firing meta alert routed to the heartbeat receiver
# Something is down: these mute the alerts they explain. A target (or the server behind an exporter) explains the
# other alerts of its instance; a failing health URL explains every alert of its service.
INSTANCE_DOWN_ALERTS = ("TargetDown", "PostgresDown", "RedisDown")
SERVICE_DOWN_ALERTS = ("HealthProbeFailing",)
DOWN_ALERTS = INSTANCE_DOWN_ALERTS + SERVICE_DOWN_ALERTS
BUSINESS_HOURS = "business-hours"  # time interval P3 notifies in by default; built in unless the inventory defines it


def secret_name(ref: str) -> str:
    """The compose secret name of a secret file reference (also its /run/secrets/ file name)."""
    return re.sub(r"[^a-z0-9_]+", "_", ref.lower()).strip("_")

# Kubernetes output (monstack render --target kubernetes), relative to its own root -----------
KUBERNETES_DIR = "kubernetes"  # the tree's root under --out; it keeps its own MANIFEST
KUSTOMIZATION = "kustomization.yaml"
KUBE_RULES_DIR = "prometheus-rules"
KUBE_SCRAPE_DIR = "scrape-configs"
KUBE_POD_MONITORS_DIR = "pod-monitors"
KUBE_PROBES_DIR = "probes"
KUBE_ALERTMANAGER_DIR = "alertmanager"
KUBE_GRAFANA_DIR = "grafana"
KUBE_README = "README.md"
# Where the Operator mounts things in the Alertmanager pod: the config Secret's keys, and each of spec.secrets.
KUBE_ALERTMANAGER_CONFIG_MOUNT = "/etc/alertmanager/config"
KUBE_ALERTMANAGER_SECRETS_MOUNT = "/etc/alertmanager/secrets"
KUBE_ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml"  # the key the Operator reads from the config Secret
# The Grafana sidecar's defaults (kube-prometheus-stack): which ConfigMaps it loads, and the folder annotation.
GRAFANA_SIDECAR_DASHBOARD_LABEL = "grafana_dashboard"
GRAFANA_SIDECAR_DATASOURCE_LABEL = "grafana_datasource"
GRAFANA_SIDECAR_FOLDER_ANNOTATION = "grafana_folder"
KUBE_MANAGED_BY = "monstack"
KUBE_ADDITIONAL_SCRAPE_KEY = "scrape-configs.yaml"  # key of the Secret Prometheus' spec.additionalScrapeConfigs reads
KUBE_ALERT_RELABEL_KEY = "alert-relabel-configs.yaml"  # key of the Secret Prometheus' spec.additionalAlertRelabelConfigs reads


def kube_object(stack: str, *parts: str) -> str:
    """An object name: the stack's name first, so two stacks can share a namespace; DNS-1123 characters only."""
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join((stack,) + parts).lower()).strip("-.")[:253]


def kube_receivers_secret(stack: str) -> str:
    """The Secret users create from their receiver secret files; Alertmanager mounts it (spec.secrets)."""
    return kube_object(stack, "alertmanager-secrets")


def kube_scrape_secret(stack: str) -> str:
    """The Secret users create from their scrape secret files (passwords, TLS keys and certificates)."""
    return kube_object(stack, "scrape-secrets")


# docker compose ------------------------------------------------------------
# What containers call the Docker host (compose extra_hosts "<name>:host-gateway"): how Prometheus reaches components
# in the host's network namespace (node-exporter).
DOCKER_HOST_NAME = "host.docker.internal"
# compose.yaml variable with the host gateway address those components listen on; `monstack up` sets it from
# `docker network inspect bridge`, and the default is the gateway of Docker's default bridge.
HOST_GATEWAY_ENV = "MONSTACK_HOST_GATEWAY"
HOST_GATEWAY_DEFAULT = "172.17.0.1"
# Container labels cAdvisor turns into series labels (container_label_com_docker_compose_service, ...).
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
SELF_CADVISOR_JOB = "cadvisor"  # scraped under docker compose: container CPU and memory
