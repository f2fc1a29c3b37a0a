"""What real teams needed custom PromQL for, now in the catalogue.

- DbQueryLatencyP95High beside the p99 alert;
- pool use from one utilisation gauge (db_pool_utilization) instead of size and available;
- Redis memory against the inventory's memory_limit while maxmemory is 0 (Redis' default), and
  RedisMaxmemoryUnset (P3) when neither exists, instead of a memory alert that never fires;
- one endpoint with metrics of several kinds (a monolith's HTTP and queue metrics on one /metrics):
  each service scrapes it with its own job, the second keeping only what its rules read (a real
  Prometheus proves it).
"""
from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from conftest import monstack
from generator import alerting, alerttext, names, pipeline
from generator.errors import InventoryError
from generator.render import rules as rules_render
from rules_support import needs_promtool, promtool_test

HEAD = textwrap.dedent("""\
    version: 1
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
    """)
MONOLITH = """\
  - name: monolith
    team: web
    kind: http
    scrape: {targets: ["%(target)s"]}
    metrics: {db_pool_utilization: db_pool_utilization, db_query_duration: db_query_duration_seconds}
  - name: monolith-jobs
    team: web
    kind: worker
    scrape: {targets: ["%(target)s"]}
    metrics: {queue_label: null}
"""
# The sharing tests use only fields every version knows: the old rejection shows, not an unknown field.
SHARED = """\
  - {name: monolith, team: web, kind: http, scrape: {targets: ["%(target)s"]}}
  - {name: monolith-jobs, team: web, kind: worker, scrape: {targets: ["%(target)s"]}, metrics: {queue_label: null}}
"""
REDIS = """\
  - {name: cache, team: web, kind: redis, scrape: {targets: ["redis-exporter:9121"]}}
  - {name: big-cache, team: web, kind: redis, scrape: {targets: ["redis-exporter-2:9121"]}, memory_limit: 1GiB}
"""


def _write(tmp_path: Path, services: str) -> Path:
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD + services)
    return inv


def _rules(model, service: str) -> dict[str, dict]:
    return {a.name: rules_render.rule(model, a) for a in alerting.service_alerts(model, model.service(service))}


def test_database_p95_and_a_single_utilisation_gauge(tmp_path: Path) -> None:
    model = pipeline.load_model(_write(tmp_path, MONOLITH % {"target": "monolith:8080"}))
    rules = _rules(model, "monolith")
    assert rules["DbQueryLatencyP95High"]["expr"] == 'service:db_query_duration_seconds:p95_5m{service="monolith"} > 0.5'
    assert rules["DbQueryLatencyP99High"]["expr"] == 'service:db_query_duration_seconds:p99_5m{service="monolith"} > 1'
    assert rules["DbConnectionPoolSaturated"]["expr"] == (
        'max by (service, team, env, instance) (db_pool_utilization{service="monolith"}) > 0.8')


def test_utilisation_replaces_size_and_available(tmp_path: Path) -> None:
    services = ('  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, metrics: {db_pool_utilization: u, '
                'db_pool_size: s, db_pool_available: a}}\n')
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services))
    assert "db_pool_utilization replaces db_pool_size and db_pool_available" in str(err.value.problems[0])


def test_redis_memory_falls_back_to_the_inventory_limit_and_says_when_there_is_none(tmp_path: Path) -> None:
    model = pipeline.load_model(_write(tmp_path, REDIS))
    plain, big = _rules(model, "cache"), _rules(model, "big-cache")
    assert "RedisMaxmemoryUnset" in plain and "RedisMaxmemoryUnset" not in big
    assert plain["RedisMaxmemoryUnset"]["labels"]["severity"] == "P3"
    assert big["RedisMemoryHigh"]["expr"] == (
        'max by (service, team, env, instance) (redis_memory_used_bytes{service="big-cache"}) / '
        '(max by (service, team, env, instance) (redis_memory_max_bytes{service="big-cache"} > 0) or '
        'max by (service, team, env, instance) (redis_memory_used_bytes{service="big-cache"}) * 0 + 1073741824) > 0.9')
    assert "of maxmemory (or 1GiB while maxmemory is 0)" in big["RedisMemoryHigh"]["annotations"]["description"]


REDIS_LABELS = 'job="big-cache", instance="redis-exporter-2:9121", service="big-cache", team="web", env="production", kind="redis"'
PLAIN_LABELS = 'job="cache", instance="redis-exporter:9121", service="cache", team="web", env="production", kind="redis"'


@needs_promtool
@pytest.mark.integration
def test_promtool_redis_without_maxmemory(tmp_path: Path) -> None:
    """maxmemory 0 and 950MiB used: the 1GiB memory_limit makes RedisMemoryHigh fire; without it RedisMaxmemoryUnset says why not."""
    inv = _write(tmp_path, REDIS)
    for path, data in pipeline.build(inv).files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)

    def rule(file: str, alert: str) -> dict:
        return next(r for g in yaml.safe_load((tmp_path / file).read_text())["groups"] for r in g["rules"] if r.get("alert") == alert)

    def expected(file: str, alert: str, labels: dict, value: float) -> dict:
        r = rule(file, alert)
        return {"exp_labels": {**labels, **r["labels"]}, "exp_annotations": {k: alerttext.expand(v, labels, value) for k, v in r["annotations"].items()}}

    used = 950 * 2**20
    big = {"service": "big-cache", "team": "web", "env": "production", "instance": "redis-exporter-2:9121"}
    plain = {"service": "cache", "team": "web", "env": "production", "instance": "redis-exporter:9121"}
    test = {"rule_files": ["cache.yml", "big-cache.yml"], "evaluation_interval": "1m", "tests": [
        {"name": "maxmemory 0", "interval": "1m", "input_series": [
            {"series": f"redis_memory_max_bytes{{{REDIS_LABELS}}}", "values": "0x90"},
            {"series": f"redis_memory_used_bytes{{{REDIS_LABELS}}}", "values": f"{used}x90"},
            {"series": f"redis_memory_max_bytes{{{PLAIN_LABELS}}}", "values": "0x90"},
            {"series": f"redis_memory_used_bytes{{{PLAIN_LABELS}}}", "values": f"{used}x90"}],
         "alert_rule_test": [
             {"eval_time": "80m", "alertname": "RedisMemoryHigh", "exp_alerts": [expected("big-cache.yml", "RedisMemoryHigh", big, used / 2**30)]},
             {"eval_time": "80m", "alertname": "RedisMaxmemoryUnset", "exp_alerts": [expected("cache.yml", "RedisMaxmemoryUnset", plain, 0)]}]},
    ]}
    (tmp_path / "redis.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "redis.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


# --- one endpoint, two kinds --------------------------------------------------------------------


def test_a_monolith_endpoint_serves_an_http_and_a_worker_service(tmp_path: Path) -> None:
    model = pipeline.load_model(_write(tmp_path, SHARED % {"target": "monolith:8080"}))
    jobs = model.service("monolith-jobs")
    assert jobs.shares_targets_with == "monolith"
    assert jobs.alert("TargetDown") is None and model.service("monolith").alert("TargetDown") is not None  # one outage, one page
    cfg = yaml.safe_load(pipeline.build(tmp_path / "services.yaml").files[names.PROMETHEUS_CONFIG])
    by_job = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert "metric_relabel_configs" not in by_job["monolith"]
    keep = by_job["monolith-jobs"]["metric_relabel_configs"]
    assert keep == [{"source_labels": ["__name__"], "regex": "job_processing_duration_seconds_bucket|jobs_total|queue_depth", "action": "keep"}]


def test_two_services_of_one_kind_on_one_endpoint_stay_an_error(tmp_path: Path) -> None:
    services = ('  - {name: a, team: web, kind: http, scrape: {targets: ["api:80"]}}\n'
                '  - {name: b, team: web, kind: http, scrape: {targets: ["api:80"]}}\n')
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services))
    assert "target api:80/metrics is already scraped by service 'a' of the same kind" in str(err.value.problems[0])


@needs_promtool
@pytest.mark.integration
def test_validate_passes_for_the_new_catalogue_entries(tmp_path: Path) -> None:
    inv = _write(tmp_path, MONOLITH % {"target": "monolith:8080"} + REDIS)
    result = monstack("validate", "--inventory", str(inv), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


METRICS = """\
# TYPE http_requests_total counter
http_requests_total{route="/",status="200"} 120
# TYPE queue_depth gauge
queue_depth 7
# TYPE jobs_total counter
jobs_total{status="completed"} 40
# TYPE cache_hits_total counter
cache_hits_total 5
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (make deps)")
def test_prometheus_scrapes_one_endpoint_for_two_services(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{server.server_address[1]}"
    inv = _write(tmp_path, SHARED % {"target": target})
    cfg = yaml.safe_load(pipeline.build(inv).files[names.PROMETHEUS_CONFIG])
    cfg["scrape_configs"] = [j for j in cfg["scrape_configs"] if j["job_name"] in ("monolith", "monolith-jobs")]
    for j in cfg["scrape_configs"]:
        j["scrape_interval"], j["scrape_timeout"] = "1s", "1s"
    cfg.pop("rule_files", None)
    cfg.pop("alerting", None)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = _port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/query"

    def query(expr: str) -> list:
        return requests.get(url, params={"query": expr}, timeout=5).json()["data"]["result"]

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(query('up{job=~"monolith|monolith-jobs"} == 1')) == 2:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert len(query('up{job=~"monolith|monolith-jobs"} == 1')) == 2, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert sorted(r["metric"]["service"] for r in query("queue_depth")) == ["monolith", "monolith-jobs"]
        assert query('queue_depth{service="monolith-jobs", kind="worker"}')[0]["value"][1] == "7"
        assert query('http_requests_total{service="monolith-jobs"}') == []  # the worker's job keeps only worker metrics
        assert query('cache_hits_total{service="monolith-jobs"}') == []
        assert query('http_requests_total{service="monolith", kind="http"}')
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.shutdown()
