"""compose.yaml: the whole stack for `docker compose`, built from the inventory as data.

Only the components the inventory needs are in it: Prometheus, Alertmanager,
Grafana and the blackbox exporter always; node-exporter, the postgres/redis
exporters (with a throwaway database each), the sample exporters, a
Pushgateway or VictoriaMetrics when a scrape target, health URL or
remote_write URL names them by their compose address (e.g. demo-web:8080).

Every secret the generated configs read is a compose secret named
names.secret_name(ref), mounted at /run/secrets/<name> (what topology.COMPOSE
points the configs at), only into the service that reads it.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any

from generator import names
from generator.components import SAMPLE_EXPORTERS, hostport, needed_components
from generator.durations import victoria_metrics_retention
from generator.model import Model, parse_bytes
from generator.topology import Topology

# Image pins, the one place they live. Bump deliberately: Prometheus 3.x reads the same
# prometheus.yml the Debian 2.42 promtool checks here; Alertmanager >= 0.28 for the
# classic matchers and *_file fields the renderer uses; Grafana 11/12 provisioning.
IMAGES: dict[str, str] = {
    "prometheus": "prom/prometheus:v3.5.0",
    "alertmanager": "prom/alertmanager:v0.28.1",
    "grafana": "grafana/grafana:12.0.2",
    "node-exporter": "prom/node-exporter:v1.9.1",
    "blackbox-exporter": "prom/blackbox-exporter:v0.27.0",
    "postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
    "redis-exporter": "oliver006/redis_exporter:v1.74.0-alpine",  # -alpine: the plain image has no shell for a healthcheck
    "postgres": "postgres:17.5-alpine",
    "redis": "redis:7.4.4-alpine",
    "pushgateway": "prom/pushgateway:v1.11.1",
    "victoria-metrics": "victoriametrics/victoria-metrics:v1.115.0",
}
SAMPLE_IMAGE = "monstack-demo-exporters:local"
# The sample exporters build from exporters/Dockerfile; the runner points this at the
# repository when compose.yaml is rendered elsewhere (an example's folder).
BUILD_CONTEXT = "${MONSTACK_BUILD_CONTEXT:-.}"

# Published on 127.0.0.1 only: the UIs (at the port of the inventory's stack URL when
# that is a local one), the Pushgateway (clients push to it) and the sample exporters
# at their native ports, so `monstack test-alerts --fault` reaches their control
# endpoints the same way in both modes.
UI_URL = {"prometheus": "prometheus", "alertmanager": "alertmanager", "grafana": "grafana"}

VOLUMES = {
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
    "grafana": "/var/lib/grafana",
    "postgres": "/var/lib/postgresql/data",
    "victoria-metrics": "/storage",
}


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {names.COMPOSE_FILE: config(model)}


def prometheus_secrets(model: Model) -> list[str]:
    refs: list[str] = []
    for s in model.services:
        if s.scrape and s.scrape.basic_auth:
            refs.append(s.scrape.basic_auth.password_file)
        if s.scrape and s.scrape.tls:
            refs += [f for f in (s.scrape.tls.ca_file, s.scrape.tls.cert_file, s.scrape.tls.key_file) if f]
    for rw in model.stack.remote_write:
        if rw.basic_auth:
            refs.append(rw.basic_auth.password_file)
        if rw.bearer_token_file:
            refs.append(rw.bearer_token_file)
    return sorted(set(refs))


def _secret_source(ref: str) -> str:
    """Where compose reads a secret reference from: relative to compose.yaml, which sits beside the inventory."""
    return ref if posixpath.isabs(ref) else "./" + posixpath.normpath(ref)


def _ui_port(url: str, default: int) -> int:
    host, port = hostport(url)
    return port if host in ("localhost", "127.0.0.1") and port else default


def _wget(port: int, path: str) -> list[str]:
    # busybox wget is in every prom/* image and the alpine-based ones.
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}"]


def _healthcheck(test: list[str], start_period: str = "20s") -> dict[str, Any]:
    return {"test": test, "interval": "15s", "timeout": "5s", "retries": 5, "start_period": start_period}


def retention_bytes(size: str) -> str:
    """--storage.tsdb.retention.size: Prometheus reads KB/MB/GB as powers of 2; plain bytes keep the inventory's meaning."""
    return f"{parse_bytes(size)}B"


def _service(model: Model, name: str) -> dict[str, Any]:
    stack = model.stack
    port = names.COMPONENTS[name][0] if name in names.COMPONENTS else 8080
    svc: dict[str, Any] = {}
    if name in SAMPLE_EXPORTERS:
        svc["build"] = {"context": BUILD_CONTEXT, "dockerfile": "exporters/Dockerfile"}
        svc["image"] = SAMPLE_IMAGE
        svc["command"] = [name, "--listen", f"0.0.0.0:{port}"]
        health = ["CMD", "python", "-c",
                  f"import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=3).status != 200)"]
        svc["healthcheck"] = _healthcheck(health, "10s")
        svc["ports"] = [f"127.0.0.1:{names.COMPONENTS[name][1]}:{port}"]
        svc["restart"] = "unless-stopped"
        return svc
    svc["image"] = IMAGES[name]
    if name == "prometheus":
        cmd = [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={stack.retention_time}",
        ]
        if stack.retention_size:
            cmd.append(f"--storage.tsdb.retention.size={retention_bytes(stack.retention_size)}")
        cmd += ["--web.enable-lifecycle", f"--web.external-url={stack.prometheus_url}", f"--web.listen-address=:{port}"]
        svc["command"] = cmd
        svc["volumes"] = ["./prometheus:/etc/prometheus:ro", f"prometheus-data:{VOLUMES[name]}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/-/ready"), "60s")  # TSDB replay after a restart takes a while
        secrets = prometheus_secrets(model)
    elif name == "alertmanager":
        svc["command"] = [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            f"--web.external-url={stack.alertmanager_url}",
            f"--web.listen-address=:{port}",
            "--cluster.listen-address=",  # one replica: no gossip; reloads go to POST /-/reload
        ]
        svc["volumes"] = ["./alertmanager:/etc/alertmanager:ro", f"alertmanager-data:{VOLUMES[name]}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/-/ready"))
        secrets = model.receiver_secret_files()
    elif name == "grafana":
        secret = names.secret_name(names.GRAFANA_ADMIN_PASSWORD_FILE)
        svc["environment"] = {
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_SECURITY_ADMIN_PASSWORD__FILE": f"/run/secrets/{secret}",
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
            "GF_AUTH_DISABLE_LOGIN_FORM": "false",
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_SERVER_ROOT_URL": stack.grafana_url,
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        }
        svc["volumes"] = [
            f"grafana-data:{VOLUMES[name]}",
            "./grafana/provisioning:/etc/grafana/provisioning:ro",
            "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
        ]
        svc["healthcheck"] = _healthcheck(_wget(port, "/api/health"), "60s")  # first start runs the database migrations
        svc["depends_on"] = {"prometheus": {"condition": "service_healthy"}}
        secrets = [names.GRAFANA_ADMIN_PASSWORD_FILE]
    elif name == "node-exporter":
        # On the compose network (Prometheus scrapes node-exporter:9100 as the inventory says),
        # reading the host's filesystems and processes through /host.
        svc["command"] = ["--path.rootfs=/host", f"--web.listen-address=:{port}"]
        svc["pid"] = "host"
        svc["volumes"] = ["/:/host:ro,rslave"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/"))
        secrets = []
    elif name == "blackbox-exporter":
        svc["command"] = ["--config.file=/etc/blackbox_exporter/config.yml", f"--web.listen-address=:{port}"]
        svc["volumes"] = [f"./{names.BLACKBOX_CONFIG}:/etc/blackbox_exporter/config.yml:ro"]
        svc["cap_add"] = ["NET_RAW"]  # icmp probes
        svc["healthcheck"] = _healthcheck(_wget(port, "/-/healthy"))
        secrets = []
    elif name == "postgres":
        secret = names.secret_name(names.POSTGRES_PASSWORD_FILE)
        svc["environment"] = {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD_FILE": f"/run/secrets/{secret}"}
        svc["volumes"] = [f"postgres-data:{VOLUMES[name]}"]
        svc["healthcheck"] = _healthcheck(["CMD", "pg_isready", "-U", "postgres", "-d", "postgres"])
        secrets = [names.POSTGRES_PASSWORD_FILE]
    elif name == "postgres-exporter":
        secret = names.secret_name(names.POSTGRES_PASSWORD_FILE)
        pg = names.COMPONENTS["postgres"][0]
        svc["environment"] = {
            "DATA_SOURCE_URI": f"postgres:{pg}/postgres?sslmode=disable",
            "DATA_SOURCE_USER": "postgres",
            "DATA_SOURCE_PASS_FILE": f"/run/secrets/{secret}",
        }
        svc["command"] = [f"--web.listen-address=:{port}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/"))
        svc["depends_on"] = {"postgres": {"condition": "service_healthy"}}
        secrets = [names.POSTGRES_PASSWORD_FILE]
    elif name == "redis":
        svc["command"] = ["redis-server", "--save", "", "--appendonly", "no"]
        svc["healthcheck"] = _healthcheck(["CMD", "redis-cli", "ping"])
        secrets = []
    elif name == "redis-exporter":
        svc["environment"] = {"REDIS_ADDR": f"redis://redis:{names.COMPONENTS['redis'][0]}"}
        svc["command"] = [f"--web.listen-address=:{port}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/health"))
        svc["depends_on"] = {"redis": {"condition": "service_healthy"}}
        secrets = []
    elif name == "pushgateway":
        svc["command"] = [f"--web.listen-address=:{port}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/-/ready"))
        svc["ports"] = [f"127.0.0.1:{port}:{port}"]
        secrets = []
    elif name == "victoria-metrics":
        svc["command"] = ["-storageDataPath=/storage", f"-retentionPeriod={victoria_metrics_retention(stack.retention_time)}", f"-httpListenAddr=:{port}"]
        svc["volumes"] = [f"victoria-metrics-data:{VOLUMES[name]}"]
        svc["healthcheck"] = _healthcheck(_wget(port, "/health"))
        secrets = []
    else:  # pragma: no cover - a component added to names.COMPONENTS without a compose service
        raise AssertionError(f"no compose service for component {name!r}")
    if name in UI_URL:
        url = getattr(stack, f"{UI_URL[name]}_url")
        svc["ports"] = [f"127.0.0.1:{_ui_port(url, port)}:{port}"]
    if secrets:
        svc["secrets"] = [names.secret_name(ref) for ref in secrets]
    svc["restart"] = "unless-stopped"
    return svc


def config(model: Model) -> dict[str, Any]:
    components = needed_components(model)
    services = {name: _service(model, name) for name in components}
    secret_refs = sorted({ref for svc_refs in (
        prometheus_secrets(model) if "prometheus" in components else [],
        model.receiver_secret_files(),
        [names.GRAFANA_ADMIN_PASSWORD_FILE] if "grafana" in components else [],
        [names.POSTGRES_PASSWORD_FILE] if "postgres" in components else [],
    ) for ref in svc_refs})
    secrets: dict[str, Any] = {}
    for ref in secret_refs:
        key = names.secret_name(ref)
        assert key not in secrets or secrets[key]["file"] == _secret_source(ref), f"two secret files map to compose secret {key}"
        secrets[key] = {"file": _secret_source(ref)}
    out: dict[str, Any] = {
        "name": project_name(model),
        "services": services,
        "volumes": {f"{c}-data": {} for c in components if c in VOLUMES},
    }
    if secrets:
        out["secrets"] = dict(sorted(secrets.items()))
    return out


def project_name(model: Model) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", f"monstack-{model.stack.name}")
