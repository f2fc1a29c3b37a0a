"""prometheus/prometheus.yml and blackbox.yml: one job per service with its options, probes through the blackbox exporter, self-scrapes."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from generator import components, checks, names, pipeline, writer
from generator.render import blackbox, prometheus
from generator.topology import COMPOSE, native
from rules_support import needs_promtool

INVENTORY = textwrap.dedent("""\
    version: 1
    stack: {name: shop, environment: staging, scrape_interval: 30s, scrape_timeout: 10s}
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}, data: {}}
    services:
      - name: api
        team: web
        kind: http
        scrape:
          targets: ["api-1.internal:3000", "api-2.internal:3000"]
          path: /api/metrics
          scheme: https
          interval: 15s
          timeout: 5s
          labels: {tier: frontend}
          basic_auth: {username: prometheus, password_file: secrets/api_metrics_password}
          tls: {ca_file: secrets/ca.pem, server_name: api.internal}
        health:
          - {name: liveness, url: "https://api-1.internal:3000/health"}
          - {name: port, url: "tcp://api-1.internal:3000"}
      - name: db
        team: data
        kind: postgres
        scrape: {targets: ["postgres-exporter:9187"]}
      - name: vendor
        team: web
        kind: probe
        health: [{url: "icmp://vendor.example.com"}]
    """)


@pytest.fixture
def model(tmp_path: Path):
    (tmp_path / "services.yaml").write_text(INVENTORY)
    return pipeline.load_model(tmp_path / "services.yaml")


def _jobs(cfg) -> dict:
    return {j["job_name"]: j for j in cfg["scrape_configs"]}


def test_a_service_job_carries_its_scrape_options_and_the_identity_labels(model):
    job = _jobs(prometheus.config(model, COMPOSE))["api"]
    assert (job["metrics_path"], job["scheme"], job["scrape_interval"], job["scrape_timeout"]) == ("/api/metrics", "https", "15s", "5s")
    assert job["basic_auth"] == {"username": "prometheus", "password_file": "/run/secrets/secrets_api_metrics_password"}
    assert job["tls_config"] == {"ca_file": "/run/secrets/secrets_ca_pem", "server_name": "api.internal"}
    [static] = job["static_configs"]
    assert static["targets"] == ["api-1.internal:3000", "api-2.internal:3000"]
    assert static["labels"] == {"tier": "frontend", "service": "api", "team": "web", "env": "staging", "kind": "http"}


def test_an_exporter_job_inherits_the_stack_interval(model):
    job = _jobs(prometheus.config(model, COMPOSE))["db"]
    assert (job["scrape_interval"], job["scrape_timeout"], job["metrics_path"]) == ("30s", "10s", "/metrics")
    assert job["static_configs"][0]["labels"]["kind"] == "postgres"


def test_every_health_url_is_probed_through_the_blackbox_exporter_with_its_module(model):
    jobs = _jobs(prometheus.config(model, COMPOSE))
    probe = jobs[names.probe_job("api")]
    assert probe["metrics_path"] == "/probe"
    targets = {s["targets"][0]: s["labels"] for s in probe["static_configs"]}
    assert targets["https://api-1.internal:3000/health"]["__param_module"] == "http_2xx"
    assert targets["api-1.internal:3000"]["__param_module"] == "tcp_connect"
    assert targets["api-1.internal:3000"][names.PROBE] == "port"
    assert probe["relabel_configs"] == [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": "blackbox-exporter:9115"},
    ]
    vendor = jobs[names.probe_job("vendor")]
    assert vendor["static_configs"][0]["targets"] == ["vendor.example.com"]
    assert vendor["static_configs"][0]["labels"]["__param_module"] == "icmp"
    modules = blackbox.config()["modules"]
    for job in (probe, vendor):
        for s in job["static_configs"]:
            assert s["labels"]["__param_module"] in modules


def test_the_stack_scrapes_itself(model):
    jobs = _jobs(prometheus.config(model, native("/tmp")))
    for job, component in prometheus.SELF_COMPONENTS:
        assert jobs[job]["static_configs"][0]["targets"] == [f"127.0.0.1:{components.get(component).native_port}"]
        assert jobs[job]["static_configs"][0]["labels"][names.MONSTACK_JOB_LABEL] == "self"
        assert jobs[job]["static_configs"][0]["labels"][names.SERVICE] == names.META_SERVICE
    assert _jobs(prometheus.config(model, native("/tmp")))[names.probe_job("api")]["relabel_configs"][2]["replacement"] == "127.0.0.1:19115"


@pytest.mark.integration
@needs_promtool
def test_promtool_accepts_the_config(model, tmp_path: Path):
    """Syntax only: the secret files the config names exist on the Prometheus host, not here."""
    files = writer.serialize_all({names.PROMETHEUS_CONFIG: prometheus.config(model, COMPOSE)}, "services.yaml")
    (tmp_path / "prometheus").mkdir()
    (tmp_path / names.PROMETHEUS_CONFIG).write_bytes(files[names.PROMETHEUS_CONFIG])
    proc = subprocess.run([checks.tool("promtool"), "check", "config", "--syntax-only", names.PROMETHEUS_CONFIG], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
