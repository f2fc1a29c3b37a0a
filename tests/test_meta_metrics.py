"""The metric names the catalogue reads exist in the real binaries, and the meta rules evaluate cleanly on a live Prometheus.

Starts the Debian Prometheus, Alertmanager, node exporter, blackbox exporter
and VictoriaMetrics (Prometheus remote-writes to it, as services.yaml asks)
on free 127.0.0.1 ports, scrapes them, and loads the rendered
monstack-meta.yml into Prometheus. (postgres_exporter and redis_exporter
are not packaged here; their names follow the exporters' documentation.)
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Callable

import promql_parser
import pytest
import requests
import yaml

from generator import alerting, catalogue, components, lint, names, pipeline, targets
from generator.catalogue import series
from generator.render import blackbox, rules as rules_render
from generator.topology import COMPOSE
from conftest import ROOT

BINARIES = ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "prometheus-blackbox-exporter", "victoria-metrics")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(any(shutil.which(b) is None for b in BINARIES), reason="Prometheus/Alertmanager/exporters not installed (make deps)"),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check: Callable[[], object], timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("meta")
    ports = {b: _port() for b in BINARIES}
    model = pipeline.load_model(ROOT / "services.yaml")
    meta = rules_render.render(model, COMPOSE)[names.rules_file(names.META_RULES_GROUP)]
    (tmp / "meta.yml").write_text(yaml.safe_dump(meta))
    (tmp / "blackbox.yml").write_text(yaml.safe_dump(blackbox.config()))
    (tmp / "am.yml").write_text(yaml.safe_dump({"route": {"receiver": "nowhere"}, "receivers": [{"name": "nowhere"}]}))
    self_labels = targets.self_labels(model)
    assert [rw.url for rw in model.stack.remote_write] == [f"http://victoria-metrics:{components.get('victoria-metrics').port}/api/v1/write"]
    scrape = [
        {"job_name": names.SELF_PROMETHEUS_JOB, "static_configs": [{"targets": [f"127.0.0.1:{ports['prometheus']}"], "labels": self_labels}]},
        {"job_name": names.SELF_ALERTMANAGER_JOB,
         "static_configs": [{"targets": [f"127.0.0.1:{ports['prometheus-alertmanager']}"], "labels": self_labels}]},
        {"job_name": names.SELF_BLACKBOX_JOB,
         "static_configs": [{"targets": [f"127.0.0.1:{ports['prometheus-blackbox-exporter']}"], "labels": self_labels}]},
        {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{ports['prometheus-node-exporter']}"]}]},
    ]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['prometheus-alertmanager']}"]}]}]},
        "rule_files": ["meta.yml"],
        "scrape_configs": scrape,
        "remote_write": [{"name": rw.name, "url": f"http://127.0.0.1:{ports['victoria-metrics']}/api/v1/write"}
                         for rw in model.stack.remote_write],
    }))
    argv = {
        "prometheus": ["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                       f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
        "prometheus-alertmanager": ["prometheus-alertmanager", f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'am'}",
                                    f"--web.listen-address=127.0.0.1:{ports['prometheus-alertmanager']}", "--cluster.listen-address="],
        "prometheus-node-exporter": ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{ports['prometheus-node-exporter']}"],
        "prometheus-blackbox-exporter": ["prometheus-blackbox-exporter", f"--config.file={tmp / 'blackbox.yml'}",
                                         f"--web.listen-address=127.0.0.1:{ports['prometheus-blackbox-exporter']}"],
        "victoria-metrics": ["victoria-metrics", f"-storageDataPath={tmp / 'vm'}", f"-httpListenAddr=127.0.0.1:{ports['victoria-metrics']}"],
    }
    procs = []
    try:
        for b in BINARIES:
            log = open(tmp / f"{b}.log", "w")
            procs.append(subprocess.Popen(argv[b], stdout=log, stderr=subprocess.STDOUT, cwd=tmp))
        urls = {b: f"http://127.0.0.1:{p}" for b, p in ports.items()}
        for b in BINARIES:
            _wait(f"{b} /metrics", lambda b=b: requests.get(f"{urls[b]}/metrics", timeout=2).ok)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _query(url: str, expr: str) -> list:
    body = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def _catalogue_names(kind: str) -> set[str]:
    model = pipeline.load_model(ROOT / "services.yaml")
    found = set()
    for a in alerting.all_alerts(model):
        if a.ctx.service is None and kind == "meta" or a.ctx.service is not None and a.ctx.service.kind == kind:
            found |= {lint.selector_name(vs) for vs in lint.selectors(promql_parser.parse(a.definition.expression(a.ctx)))}
    return {n for n in found if n and ":" not in n}


def test_every_meta_metric_exists_in_prometheus_or_alertmanager(stack):
    prom = stack["prometheus"]
    _wait("an Alertmanager discovered", lambda: _query(prom, "prometheus_notifications_alertmanagers_discovered == 1"))
    # Some remote-write series (the newest timestamp sent) exist only once a batch was sent; the
    # remote-write lag alert covers a queue that never sent (tested in its promtool cases).
    _wait("a remote-write batch sent", lambda: _query(prom, "prometheus_remote_storage_sent_batch_duration_seconds_count > 0"))
    have = _names(requests.get(f"{prom}/metrics", timeout=5).text) | _names(requests.get(f"{stack['prometheus-alertmanager']}/metrics", timeout=5).text)
    wanted = _catalogue_names("meta") - {"up"}
    assert wanted and sorted(wanted - have) == []
    _wait("Alertmanager scraped as a stack component", lambda: _query(prom, 'up{job="alertmanager", monstack="self"} == 1'))


def test_samples_reach_the_remote_store_and_the_remote_write_metrics_name_it(stack):
    prom, vm = stack["prometheus"], stack["victoria-metrics"]
    sent = _wait("samples sent to VictoriaMetrics",
                 lambda: _query(prom, 'prometheus_remote_storage_samples_total{remote_name="victoria-metrics"} > 0'))
    assert sent[0]["metric"]["url"].startswith(vm)
    # The store has the series Prometheus scraped, with the labels the rules match on.
    found = _wait("`up` series in VictoriaMetrics", lambda: requests.get(
        f"{vm}/api/v1/series", params={"match[]": f'up{{job="{names.SELF_PROMETHEUS_JOB}"}}'}, timeout=5).json()["data"])
    assert found[0]["monstack"] == "self"
    assert _query(prom, 'prometheus_remote_storage_samples_failed_total{remote_name="victoria-metrics"} > 0') == []
    # What the remote-write alerts measure, on the real metrics: one value per queue, healthy.
    model = pipeline.load_model(ROOT / "services.yaml")
    measured = {a.definition.name: a.definition.query(a.ctx) for a in alerting.meta_alerts(model)}
    lag = _wait("the remote-write lag measured", lambda: _query(prom, measured["PrometheusRemoteWriteBehind"]))
    assert [r["metric"]["remote_name"] for r in lag] == ["victoria-metrics"] and 0 <= float(lag[0]["value"][1]) < 120
    failing = _wait("the remote-write failure ratio measured", lambda: _query(prom, measured["PrometheusRemoteWriteFailing"]))
    assert [float(r["value"][1]) for r in failing] == [0.0]


def test_every_host_metric_exists_in_node_exporter(stack):
    have = _names(requests.get(f"{stack['prometheus-node-exporter']}/metrics", timeout=5).text)
    wanted = _catalogue_names("host") - {"up"}
    assert wanted and sorted(wanted - have) == []


def test_probe_metrics_exist_in_the_blackbox_exporter(stack):
    target = f"{stack['prometheus']}/-/healthy"
    text = requests.get(f"{stack['prometheus-blackbox-exporter']}/probe", params={"target": target, "module": "http_2xx"}, timeout=10).text
    have = _names(text)
    assert {"probe_success", "probe_duration_seconds"} <= have
    assert "probe_success 1" in text


def test_the_meta_rules_evaluate_cleanly_and_the_watchdog_fires(stack):
    prom = stack["prometheus"]

    def watchdog():
        alerts = requests.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == names.WATCHDOG_ALERT and a["state"] == "firing"]

    fired = _wait("the Watchdog firing", watchdog)
    assert fired[0]["labels"]["severity"] == "P3" and fired[0]["labels"]["service"] == names.META_SERVICE
    groups = requests.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == {d.name for d in catalogue.META_ALERTS}
    _wait("every meta rule evaluated", lambda: all(r.get("lastEvaluation", "").startswith("20") for r in rules)
          or requests.get(f"{prom}/api/v1/rules", timeout=5).json())
    rules = [r for g in requests.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"] for r in g["rules"]]
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert firing == {names.WATCHDOG_ALERT}, "a healthy stack fires nothing but the Watchdog"
