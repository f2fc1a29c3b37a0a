"""One outage, one page; a down target mutes what it explains, nothing more.

- When a service dies, its scrape (TargetDown) and its health probe (HealthProbeFailing) both
  fail. HealthProbeFailing is the page: TargetDown's expression steps aside while a probe of the
  service fails, whichever noticed first (promtool proves it).
- A target that is down mutes the other alerts of its instance (equal: service, instance): not
  the service's other instances, not its service-wide SLO burn-rate alerts (a real Alertmanager
  proves it, and amtool accepts the config).
"""
from __future__ import annotations

import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from amrunner import Alertmanager, alert, now, render
from generator import alerttext, names, pipeline
from generator.render import alertmanager as am
from generator.sinks import Sinks
from generator.topology import native
from rules_support import needs_promtool, promtool_test

INVENTORY = textwrap.dedent("""\
    version: 1
    stack: {name: outage, environment: production, retention: {time: 30d}}
    receivers:
      pager: {type: pagerduty, routing_key_file: secrets/pd}
      chat: {type: webhook, url: "http://chat.internal/hook"}
    severities:
      P0: {receivers: [pager], group_wait: 1s, group_interval: 1s}
      P1: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P2: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P3: {receivers: [chat], group_wait: 1s, group_interval: 1s, active_time_intervals: []}
    teams: {web: {}}
    services:
      - name: api
        team: web
        kind: http
        scrape: {targets: ["api-1:8080", "api-2:8080"]}
        health: [{name: liveness, url: "http://api:8080/health"}]
        slo: {availability: 99.9}
        metrics: {db_pool_size: db_connection_pool_size, db_pool_available: db_connection_pool_available}
    """)
UP = 'up{job="api", instance="api-1:8080", service="api", team="web", env="production", kind="http"}'
PROBE = ('probe_success{job="probe-api", instance="http://api:8080/health", service="api", team="web", env="production", '
         'kind="http", probe="liveness"}')


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "services.yaml").write_text(INVENTORY)
    for path, data in pipeline.build(tmp_path / "services.yaml").files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    return tmp_path


def _rule(root: Path, alert_name: str) -> dict:
    for g in yaml.safe_load((root / "api.yml").read_text())["groups"]:
        for r in g["rules"]:
            if r.get("alert") == alert_name:
                return r
    raise AssertionError(alert_name)


def _expected(root: Path, alert_name: str, sample: str, value: float) -> dict:
    labels = dict(kv.split("=", 1) for kv in sample[sample.index("{") + 1:-1].replace('"', "").split(", "))
    r = _rule(root, alert_name)
    return {"exp_labels": {**labels, **r["labels"]},
            "exp_annotations": {k: alerttext.expand(v, labels, value) for k, v in r["annotations"].items()}}


@needs_promtool
@pytest.mark.integration
def test_promtool_a_dead_service_pages_once(rules_dir: Path) -> None:
    """Scrape and probe fail together for 5 minutes: HealthProbeFailing fires, TargetDown does not."""
    groups = [g["name"] for g in yaml.safe_load((rules_dir / "api.yml").read_text())["groups"]]
    test = {"rule_files": ["api.yml"], "evaluation_interval": "15s", "group_eval_order": groups, "tests": [
        {"name": "the process died: scrape and probe fail", "interval": "15s",
         "input_series": [{"series": UP, "values": "1x4 0x20"}, {"series": PROBE, "values": "1x5 0x20"}],
         "alert_rule_test": [
             {"eval_time": "5m", "alertname": "HealthProbeFailing", "exp_alerts": [_expected(rules_dir, "HealthProbeFailing", PROBE, 0)]},
             {"eval_time": "5m", "alertname": "TargetDown", "exp_alerts": []}]},
        {"name": "only the metrics endpoint is down: TargetDown pages", "interval": "15s",
         "input_series": [{"series": UP, "values": "1x4 0x20"}, {"series": PROBE, "values": "1x25"}],
         "alert_rule_test": [
             {"eval_time": "5m", "alertname": "TargetDown", "exp_alerts": [_expected(rules_dir, "TargetDown", UP, 0)]},
             {"eval_time": "5m", "alertname": "HealthProbeFailing", "exp_alerts": []}]},
    ]}
    (rules_dir / "outage.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(rules_dir, "outage.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.integration
def test_promtool_with_health_probe_failing_disabled_target_down_is_the_page(tmp_path: Path) -> None:
    """Without HealthProbeFailing nothing else pages for a dead service: TargetDown must not step aside for the probe."""
    inv = yaml.safe_load(INVENTORY)
    inv["services"][0]["alerts"] = {"HealthProbeFailing": {"disabled": True}}
    (tmp_path / "services.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    for path, data in pipeline.build(tmp_path / "services.yaml").files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    assert "probe_success" not in _rule(tmp_path, "TargetDown")["expr"]
    groups = [g["name"] for g in yaml.safe_load((tmp_path / "api.yml").read_text())["groups"]]
    test = {"rule_files": ["api.yml"], "evaluation_interval": "15s", "group_eval_order": groups, "tests": [
        {"name": "the process died: scrape and probe fail", "interval": "15s",
         "input_series": [{"series": UP, "values": "1x4 0x20"}, {"series": PROBE, "values": "1x5 0x20"}],
         "alert_rule_test": [
             {"eval_time": "5m", "alertname": "TargetDown", "exp_alerts": [_expected(tmp_path, "TargetDown", UP, 0)]}]},
    ]}
    (tmp_path / "outage.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "outage.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_down_targets_are_compared_on_service_and_instance() -> None:
    instance_rule, service_rule, *levels = am.inhibit_rules()
    assert instance_rule["equal"] == ["service", "instance"]
    assert 'instance=~".+"' in instance_rule["source_matchers"] and 'instance=~".+"' in instance_rule["target_matchers"]
    assert instance_rule["source_matchers"][0] == 'alertname=~"TargetDown|PostgresDown|RedisDown"'
    assert service_rule["source_matchers"][0] == 'alertname=~"HealthProbeFailing"' and service_rule["equal"] == ["service"]
    assert len(levels) == 3


def _alert(name: str, severity: str, problem: str, **labels: str) -> dict:
    return alert({"alertname": name, "severity": severity, "service": "api", "team": "web", "env": "production", "problem": problem,
                  **labels}, {"summary": f"{name} {labels.get('instance', '')}"}, starts=now())


@pytest.mark.integration
def test_alertmanager_one_instance_down_mutes_only_that_instance(tmp_path: Path) -> None:
    inv = tmp_path / "inventory" / "services.yaml"
    inv.parent.mkdir()
    (inv.parent / "secrets").mkdir()
    (inv.parent / "secrets" / "pd").write_text("routing-key\n")
    inv.write_text(INVENTORY)
    with Sinks() as sinks:
        topo = native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost)
        config = render(inv, tmp_path / "out", topo)
        with Alertmanager(config, tmp_path) as manager:
            down = _alert("TargetDown", "P0", "TargetDown", instance="api-1:8080", job="api")
            same_instance = _alert("DbConnectionPoolSaturated", "P2", "DbConnectionPoolSaturated", instance="api-1:8080")
            other_instance = _alert("DbConnectionPoolSaturated", "P2", "DbConnectionPoolSaturated", instance="api-2:8080")
            burn = _alert("ErrorBudgetBurn1h", "P0", "ErrorBudgetBurn")
            manager.post([down, same_instance, other_instance, burn])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(sinks.captured) < 3:
                time.sleep(0.1)
            time.sleep(2.5)  # > group_wait + group_interval: anything else would have arrived
            got = Counter()
            for c in sinks.captured:
                for a in c["body"].get("alerts", []) if c["kind"] == "webhook" else [{"labels": c["body"]["payload"]["custom_details"]}]:
                    got[(a["labels"]["alertname"], a["labels"].get("instance", ""))] += 1
            status = {(a["labels"]["alertname"], a["labels"].get("instance", "")): a["status"] for a in manager.alerts()}
    # Webhook payloads list every alert of the group; PagerDuty payloads name the group's common labels.
    assert ("DbConnectionPoolSaturated", "api-2:8080") in got, got
    assert ("DbConnectionPoolSaturated", "api-1:8080") not in got, got
    assert status[("DbConnectionPoolSaturated", "api-1:8080")]["state"] == "suppressed"
    assert not status[("DbConnectionPoolSaturated", "api-2:8080")]["inhibitedBy"]
    assert not status[("ErrorBudgetBurn1h", "")]["inhibitedBy"], "one instance down must not mute the SLO burn alert"
    assert {c["body"]["payload"]["custom_details"]["alertname"] for c in sinks.captured if c["kind"] == "pagerduty"} == {
        "TargetDown", "ErrorBudgetBurn1h"}
