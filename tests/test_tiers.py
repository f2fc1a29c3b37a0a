"""Tiers of one alert, rate windows per alert, and the minimum traffic of ratio alerts.

- tiers: `alerts: {HostDiskSpaceLow: {tiers: [...]}}` renders one rule per tier sharing the
  alert's problem (a firing higher tier mutes the lower in Alertmanager); thresholds must rise
  with severity and no tier may repeat another (a located error, exit 2), built-in pairs included;
- windows: `window: 1m` makes "more than N evictions a minute" expressible;
- low traffic: error-ratio alerts need min_rate events per second before they fire.
promtool judges the rendered rules; docs/alerts.md states each alert's worst-case detection delay.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import monstack
from generator import alerting, alerttext, names, pipeline
from generator.errors import InventoryError
from generator.render import rules as rules_render
from rules_support import needs_promtool, promtool_test

HEAD = textwrap.dedent("""\
    version: 1
    stack: {retention: {time: 30d}}
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
    """)

DISK_TIERS = """\
  - name: hosts
    team: web
    kind: host
    scrape: {targets: ["node:9100"]}
    alerts:
      HostDiskSpaceWarning: {disabled: true}
      HostDiskSpaceLow:
        tiers:
          - {threshold: 0.2, severity: P2}
          - {threshold: 0.1, severity: P1}
          - {threshold: 0.05, severity: P0, for: 2m}
"""


def _write(tmp_path: Path, services: str) -> Path:
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD + services)
    return inv


def _rules(tmp_path: Path, services: str, service: str) -> dict[str, dict]:
    model = pipeline.load_model(_write(tmp_path, services))
    return {a.name: rules_render.rule(model, a) for a in alerting.service_alerts(model, model.service(service))}


# --- tiers -----------------------------------------------------------------------------------


def test_each_tier_is_a_rule_of_the_same_problem(tmp_path: Path) -> None:
    rules = _rules(tmp_path, DISK_TIERS, "hosts")
    tiers = {n: r for n, r in rules.items() if n.startswith("HostDiskSpaceLow")}
    assert sorted(tiers) == ["HostDiskSpaceLowP0", "HostDiskSpaceLowP1", "HostDiskSpaceLowP2"]
    assert "HostDiskSpaceWarning" not in rules
    assert {r["labels"]["problem"] for r in tiers.values()} == {"HostDiskSpace"}
    assert [(n, r["labels"]["severity"], r["expr"].rsplit(" ", 1)[1], r["for"]) for n, r in sorted(tiers.items())] == [
        ("HostDiskSpaceLowP0", "P0", "0.05", "2m"), ("HostDiskSpaceLowP1", "P1", "0.1", "5m"), ("HostDiskSpaceLowP2", "P2", "0.2", "5m")]
    # One runbook page for the alert; the tiers link to it.
    assert {r["annotations"]["runbook_url"] for r in tiers.values()} == {names.runbook_file("HostDiskSpaceLow")}


@pytest.mark.parametrize("alerts, where, says", [
    # The root inventory's old mistake: the P1 latency threshold equal to the P2 default.
    ("HttpLatencyP95High: {threshold: 1.0}", "services[0].alerts.HttpLatencyP95High.threshold",
     "the P1 threshold 1 repeats the threshold of the lower tier HttpLatencyP95Warning (P2, threshold 1)"),
    ("HttpLatencyP95Warning: {threshold: 2.5}", "services[0].alerts.HttpLatencyP95Warning.threshold",
     "the P1 threshold 2 is below the threshold of the lower tier HttpLatencyP95Warning (P2, threshold 2.5)"),
    ("HttpErrorRatioHigh: {tiers: [{threshold: 0.02, severity: P2}, {threshold: 0.01, severity: P1}]}",
     "services[0].alerts.HttpErrorRatioHigh.tiers[1].threshold", "the P1 threshold 0.01 is below the threshold of the lower tier"),
    ("HttpErrorRatioHigh: {tiers: [{threshold: 0.02, severity: P1}, {threshold: 0.03, severity: P1, name: HttpErrorRatioHigher}]}",
     "services[0].alerts.HttpErrorRatioHigh.tiers", "repeats the P1 tier"),
])
def test_tiers_must_rise_with_severity_and_not_repeat(tmp_path: Path, alerts: str, where: str, says: str) -> None:
    services = ('  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, alerts: {' + alerts + "}}\n")
    inv = _write(tmp_path, services)
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"services.yaml:7: {where}" in text and says in text, text
    result = monstack("render", "--inventory", str(inv), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "out").exists(), result.stderr


@pytest.mark.parametrize("threshold, fires", [(0, False), (-0.1, False), (0.001, True)])
def test_a_below_threshold_a_ratio_cannot_cross_is_refused(tmp_path: Path, threshold: float, fires: bool) -> None:
    """Free disk space is never below 0 %: a tier at `< 0` could never fire, and its generated test would fail (make fuzz)."""
    services = DISK_TIERS.replace("threshold: 0.05", f"threshold: {threshold}")
    assert f"threshold: {threshold}," in services
    if fires:
        assert "HostDiskSpaceLowP0" in _rules(tmp_path, services, "hosts")
        return
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services))
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path / 'services.yaml'}:17: services[0].alerts.HostDiskSpaceLow.tiers[2].threshold: HostDiskSpaceLow can never fire: "
        f"it fires when its ratio is < {threshold:g}, and a ratio is never negative; raise the threshold, or disable the alert"]


@pytest.mark.parametrize("extra, where, says", [
    ("alerts: {RedisCacheHitRatioLow: {threshold: 0}}", "services[0].alerts.RedisCacheHitRatioLow.threshold",
     "RedisCacheHitRatioLow can never fire: it fires when its ratio is < 0"),
    ("rules: [{name: HitsVanish, type: ratio, numerator: 'redis_keyspace_hits_total', denominator: 'redis_commands_processed_total', "
     "op: '<=', threshold: -0.5}]", "services[0].rules[0].threshold", "HitsVanish can never fire: it fires when its ratio is <= -0.5"),
])
def test_an_overridden_threshold_below_zero_is_refused(tmp_path: Path, extra: str, where: str, says: str) -> None:
    services = '  - {name: cache, team: web, kind: redis, scrape: {targets: ["redis-exporter:9121"]}, ' + extra + "}\n"
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services))
    assert [p.path for p in err.value.problems] == [where] and says in str(err.value.problems[0]), [str(p) for p in err.value.problems]
    pipeline.load_model(_write(tmp_path, services.replace("threshold: 0}", "threshold: 0.1}").replace("threshold: -0.5", "threshold: 0.5")))


def test_tiers_replace_threshold_and_severity(tmp_path: Path) -> None:
    for alerts, says in (("HttpErrorRatioHigh: {threshold: 0.02, tiers: [{threshold: 0.03, severity: P1}]}",
                          "services[0].alerts.HttpErrorRatioHigh: tiers replace threshold and severity"),
                         ("TargetDown: {tiers: [{threshold: 1, severity: P1}]}",
                          "services[0].alerts.TargetDown.tiers: TargetDown has no threshold to tier")):
        services = '  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, alerts: {' + alerts + '}}\n'
        with pytest.raises(InventoryError) as err:
            pipeline.load_model(_write(tmp_path, services))
        assert says in "\n".join(str(p) for p in err.value.problems)


@needs_promtool
@pytest.mark.integration
def test_validate_proves_every_tier(tmp_path: Path) -> None:
    inv = _write(tmp_path, DISK_TIERS)
    result = monstack("validate", "--inventory", str(inv), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(pipeline.build(inv).files[names.rule_tests_file("hosts")])
    fired = {a["alertname"] for t in tests["tests"] for a in t["alert_rule_test"] if a["exp_alerts"]}
    assert {"HostDiskSpaceLowP0", "HostDiskSpaceLowP1", "HostDiskSpaceLowP2"} <= fired


# --- windows ------------------------------------------------------------------------------------

REDIS = '  - {name: cache, team: web, kind: redis, scrape: {targets: ["redis-exporter:9121"]}, alerts: {%s}}\n'


def test_a_window_turns_five_minutes_into_a_minute(tmp_path: Path) -> None:
    rules = _rules(tmp_path, REDIS % "RedisEvictions: {window: 1m, threshold: 10}, RedisRejectedConnections: {window: 2m}", "cache")
    ev = rules["RedisEvictions"]
    assert ev["expr"] == 'sum by (service, team, env, instance) (increase(redis_evicted_keys_total{service="cache"}[1m])) > 10'
    assert ev["annotations"]["summary"].endswith("keys in 1 minute")
    assert "[2m]" in rules["RedisRejectedConnections"]["expr"]
    assert "[5m]" in rules["RedisCacheHitRatioLow"]["expr"]  # the others keep the catalogue's window


def test_ratio_and_latency_alerts_with_another_window_read_the_raw_series(tmp_path: Path) -> None:
    services = ('  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, '
                'alerts: {HttpErrorRatioHigh: {window: 1m}, HttpLatencyP99High: {window: 10m}}}\n')
    rules = _rules(tmp_path, services, "api")
    high = rules["HttpErrorRatioHigh"]["expr"]
    assert 'rate(http_requests_total{service="api", status=~"5.."}[1m])' in high and "ratio_rate5m" not in high
    assert 'sum by (service, team, env) (rate(http_requests_total{service="api"}[1m])) >= 1' in high
    assert rules["HttpLatencyP99High"]["expr"].startswith(
        'histogram_quantile(0.99, sum by (service, team, env, le) (rate(http_request_duration_seconds_bucket{service="api"}[10m])))')
    assert ("over the last 1 minute (alert above 1% for 5m, at 1 or more requests per second)"
            in rules["HttpErrorRatioHigh"]["annotations"]["description"])
    assert rules["HttpErrorRatioCritical"]["expr"].startswith('service:http_errors:ratio_rate5m{service="api"} > 0.05')


@pytest.mark.parametrize("alerts, says", [
    ("TargetDown: {window: 1m}", "services[0].alerts.TargetDown.window: TargetDown reads no rate window"),
    ("ErrorBudgetBurn1h: {window: 2h}", "ErrorBudgetBurn1h's window is part of its definition"),
    ("HttpErrorRatioHigh: {window: 20s}", "must hold two scrapes at least (2 x 15s scrape interval)"),
    ("TargetDown: {min_rate: 1}", "TargetDown is not a ratio of events"),
])
def test_windows_and_minimum_rates_only_where_they_mean_something(tmp_path: Path, alerts: str, says: str) -> None:
    services = ('  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, slo: {availability: 99.9}, alerts: {'
                + alerts + "}}\n")
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services))
    assert any(says in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]


def test_a_probe_only_window_must_hold_two_probes(tmp_path: Path) -> None:
    """A service without a scrape has only probe alerts: their windows are checked against the probe interval (10s)."""
    services = ('  - {name: edge, team: web, kind: probe, health: [{name: home, url: "https://edge.example.com/", max_duration: 300ms}], '
                'alerts: {HealthProbeSlow: {window: %s}}}\n')
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, services % "15s"))
    assert [p.path for p in err.value.problems] == ["services[0].alerts.HealthProbeSlow.window"], [str(p) for p in err.value.problems]
    assert "must hold two probes at least (2 x 10s probe interval)" in str(err.value.problems[0])
    pipeline.load_model(_write(tmp_path, services % "20s"))


def test_alerts_md_states_window_and_worst_case_detection(tmp_path: Path) -> None:
    inv = _write(tmp_path, REDIS % "RedisEvictions: {window: 1m, threshold: 10, for: 0s}" + DISK_TIERS)
    doc = pipeline.build(inv).files[names.ALERTS_DOC].decode()
    assert "| window | for | worst-case detection |" in doc
    # scrape 15s + window 1m + for 0s + evaluation 15s
    assert re.search(r"\| \[RedisEvictions\]\(runbooks/redisevictions\.md\) \| cache \| P2 \| `[^`]+\[1m\]\)\) > 10` \| 1m \| 0s \| 1m30s \|", doc)
    # a gauge: no window; scrape 15s + for 2m + evaluation 15s
    assert re.search(r"\| \[HostDiskSpaceLowP0\]\(runbooks/hostdiskspacelow\.md\) \| hosts \| P0 \| `[^`]+` \| — \| 2m \| 2m30s \|", doc)
    # two failed scrapes in a row (a 31s window), evaluated in the fast group every 5s: scrape 15s + 31s + for 0s + 5s
    assert re.search(r"\| \[TargetDown\]\(runbooks/targetdown\.md\) \| cache \| P0 \| `[^`]+` \| 31s \| 0s \| 51s \|", doc)


BURST = 'job="cache", instance="redis-exporter:9121", service="cache", team="web", env="production", kind="redis"'


@needs_promtool
@pytest.mark.integration
def test_promtool_more_than_ten_evictions_a_minute(tmp_path: Path) -> None:
    """12 evictions within one minute fire the 1m rule; 8 a minute for ever (40 per 5 minutes) do not."""
    inv = _write(tmp_path, REDIS % "RedisEvictions: {window: 1m, threshold: 10, for: 0s}")
    for path, data in pipeline.build(inv).files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    rule = next(r for g in yaml.safe_load((tmp_path / "cache.yml").read_text())["groups"] for r in g["rules"] if r["alert"] == "RedisEvictions")
    labels = {"service": "cache", "team": "web", "env": "production", "instance": "redis-exporter:9121"}
    fired = {"exp_labels": {**labels, **rule["labels"]},
             "exp_annotations": {k: alerttext.expand(v, labels, 12) for k, v in rule["annotations"].items()}}
    test = {"rule_files": ["cache.yml"], "evaluation_interval": "15s", "tests": [
        {"name": "a burst of 12 in a minute", "interval": "15s",
         "input_series": [{"series": f"redis_evicted_keys_total{{{BURST}}}", "values": "0x20 3x0 6x0 9x0 12x20"}],
         "alert_rule_test": [{"eval_time": "6m", "alertname": "RedisEvictions", "exp_alerts": [fired]},
                             {"eval_time": "4m", "alertname": "RedisEvictions", "exp_alerts": []}]},
        {"name": "8 a minute, steadily", "interval": "15s",
         "input_series": [{"series": f"redis_evicted_keys_total{{{BURST}}}", "values": "0+2x80"}],
         "alert_rule_test": [{"eval_time": "15m", "alertname": "RedisEvictions", "exp_alerts": []}]},
    ]}
    (tmp_path / "window.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "window.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


# --- low traffic ---------------------------------------------------------------------------------

API = '  - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}%s}\n'
LABELS = 'job="api", instance="api:80", service="api", team="web", env="production", kind="http", method="GET", route="/"'


def _traffic_test(tmp_path: Path, services: str, ok: str, failed: str, fires: bool) -> str:
    inv = _write(tmp_path, services)
    for path, data in pipeline.build(inv).files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    groups = [g["name"] for g in yaml.safe_load((tmp_path / "api.yml").read_text())["groups"]]
    rule = next(r for g in yaml.safe_load((tmp_path / "api.yml").read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "HttpErrorRatioCritical")
    labels = {"service": "api", "team": "web", "env": "production"}
    exp = [{"exp_labels": {**labels, **rule["labels"]},
            "exp_annotations": {k: alerttext.expand(v, labels, 0.5) for k, v in rule["annotations"].items()}}] if fires else []
    test = {"rule_files": ["api.yml"], "evaluation_interval": "1m", "group_eval_order": groups, "tests": [
        {"name": "a trickle: a request or two every five minutes, one failed", "interval": "1m",
         "input_series": [{"series": f'http_requests_total{{{LABELS}, status="200"}}', "values": ok},
                          {"series": f'http_requests_total{{{LABELS}, status="500"}}', "values": failed}],
         "alert_rule_test": [{"eval_time": "20m", "alertname": "HttpErrorRatioCritical", "exp_alerts": exp}]}]}
    (tmp_path / "traffic.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "traffic.test.yml")
    return result.stdout + result.stderr if result.returncode else ""


# A trickle: about one successful and one failed request every five minutes (a 50% "error ratio" of 0.007 requests/s).
TRICKLE_OK, TRICKLE_FAILED = "0 0 0 1 1 1 2 2 2 2 2 3 3 3 4 4 4 4 4 5 5 5 6 6 6", "0 0 0 0 0 1 1 1 1 1 2 2 2 2 2 3 3 3 3 3 4 4 4 4 4"


@needs_promtool
@pytest.mark.integration
def test_promtool_a_trickle_of_requests_does_not_page(tmp_path: Path) -> None:
    assert _traffic_test(tmp_path, API % "", TRICKLE_OK, TRICKLE_FAILED, fires=False) == ""


@needs_promtool
@pytest.mark.integration
def test_promtool_min_rate_0_turns_the_guard_off(tmp_path: Path) -> None:
    services = API % ", alerts: {HttpErrorRatioCritical: {min_rate: 0}}"
    assert _traffic_test(tmp_path, services, TRICKLE_OK, TRICKLE_FAILED, fires=True) == ""


def test_generated_tests_prove_the_guard(tmp_path: Path) -> None:
    inv = _write(tmp_path, API % ", alerts: {HttpErrorRatioHigh: {min_rate: 5}}")
    tests = yaml.safe_load(pipeline.build(inv).files[names.rule_tests_file("api")])
    titles = [t["name"] for t in tests["tests"]]
    assert any("HttpErrorRatioHigh stays silent at 50% failures below the minimum traffic (2.5/s < 5/s)" in t for t in titles), titles
    assert any("HttpErrorRatioCritical stays silent at 50% failures below the minimum traffic (0.5/s < 1/s)" in t for t in titles), titles


def test_the_demo_fails_exactly_its_error_ratio_so_3_percent_never_looks_like_5() -> None:
    """The end-to-end test injects 3% errors and asserts the 5% tier never pages: demo-web spreads failures evenly."""
    from exporters.demo_web import DemoWeb

    web = DemoWeb(activity=0, seed=1)
    web.faults.update({"error_ratio": 0.03})
    statuses = [web.handle_api("GET", "/api/orders", {}, None, simulated=False)[0] for _ in range(3000)]
    failed = [s == 500 for s in statuses]
    assert sum(failed) == 90
    # Every run of n consecutive requests holds at most ceil(3% of n) failures: 50 requests never show 5%.
    for n in (34, 50, 100, 300):
        worst = max(sum(failed[i:i + n]) for i in range(len(failed) - n))
        assert worst <= -(-3 * n // 100), (n, worst)
    assert max(sum(failed[i:i + 300]) for i in range(2700)) / 300 < 0.034
