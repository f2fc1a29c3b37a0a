"""Custom rules: counters that appear lazily, and threshold expressions tested on generated input.

- `increase` rules count a labelled counter's first appearance (created at 1) as well as its
  increases; `increase(x[5m]) > 0` misses that first event (promtool shows both).
- A `threshold` rule's expression is evaluated on input series for the metrics it names: the
  generated tests assert what Prometheus records, so a wrong expression fails `validate`, and an
  expression that can never cross its threshold is an inventory error.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import monstack
from generator import alerttext, names, pipeline
from generator.errors import InventoryError
from rules_support import needs_promtool, promtool_test

HEAD = textwrap.dedent("""\
    version: 1
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
      - name: biz
        team: web
        kind: custom
        scrape: {targets: ["biz:80"]}
        rules:
    """)


def _inventory(tmp_path: Path, *rules: str) -> Path:
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD + "".join(f"          - {r}\n" for r in rules))
    return inv


def _rules_into(tmp_path: Path, inv: Path) -> dict[str, dict]:
    for path, data in pipeline.build(inv).files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    return {r.get("alert") or r["record"]: r for g in yaml.safe_load((tmp_path / "biz.yml").read_text())["groups"] for r in g["rules"]}


# --- counters that appear lazily -------------------------------------------------------------------

LAZY = 'job="biz", instance="biz:80", service="biz", team="web", env="production", kind="custom", type="timeout"'


@needs_promtool
@pytest.mark.integration
def test_promtool_the_increase_rule_fires_on_a_counters_first_appearance(tmp_path: Path) -> None:
    """errors_total{type="timeout"} is created at its first error (value 1) at minute 10: `increase > 0` misses it."""
    inv = _inventory(tmp_path, "{name: NewErrors, type: increase, metric: errors_total, by: [type]}",
                     "{name: NaiveErrors, type: threshold, expr: 'sum(increase(errors_total{service=\"biz\"}[5m]))', threshold: 0, for: 0s}")
    rules = _rules_into(tmp_path, inv)
    groups = [g["name"] for g in yaml.safe_load((tmp_path / "biz.yml").read_text())["groups"]]
    labels = {"service": "biz", "team": "web", "env": "production", "type": "timeout"}
    fired = {"exp_labels": {**labels, **rules["NewErrors"]["labels"]},
             "exp_annotations": {k: alerttext.expand(v, labels, 1) for k, v in rules["NewErrors"]["annotations"].items()}}
    up = 'up{job="biz", instance="biz:80", service="biz", team="web", env="production", kind="custom"}'
    test = {"rule_files": ["biz.yml"], "evaluation_interval": "1m", "group_eval_order": groups, "tests": [
        {"name": "a timeout, the first of its kind", "interval": "1m",
         "input_series": [{"series": up, "values": "1x30"}, {"series": f"errors_total{{{LAZY}}}", "values": "_x10 1x20"}],
         "alert_rule_test": [{"eval_time": "12m", "alertname": "NewErrors", "exp_alerts": [fired]},
                             {"eval_time": "12m", "alertname": "NaiveErrors", "exp_alerts": []},
                             {"eval_time": "9m", "alertname": "NewErrors", "exp_alerts": []},
                             {"eval_time": "20m", "alertname": "NewErrors", "exp_alerts": []}]},  # one window later: no news
    ]}
    (tmp_path / "lazy.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "lazy.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.integration
def test_validate_proves_increase_rules(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "{name: PaymentErrors, type: increase, metric: 'payment_errors_total{severity=\"error\"}', by: [type]}",
                     "{name: RefundBurst, type: increase, metric: refunds_total, window: 10m, threshold: 20, for: 2m, severity: P1}")
    result = monstack("validate", "--inventory", str(inv), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(pipeline.build(inv).files[names.rule_tests_file("biz")])
    titles = " ".join(t["name"] for t in tests["tests"])
    assert "PaymentErrors fires when a series of payment_errors_total first appears at 1" in titles
    assert "RefundBurst fires when refunds_total counts 22 in 10m" in titles
    assert "stays silent on a fresh Prometheus" in titles


def test_an_increase_rule_needs_for_shorter_than_its_window(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_inventory(tmp_path, "{name: Slow, type: increase, metric: x_total, window: 5m, for: 5m}"))
    assert "rules[0].for: must be shorter than the window (5m)" in str(err.value.problems[0])


# --- threshold expressions on generated input ----------------------------------------------------

@pytest.mark.parametrize("expr, threshold, says", [
    # by (route) on one side only: the division matches nothing, the rule never fires.
    ("sum by (route) (rate(checkout_failures_total[5m])) / sum(rate(checkout_attempts_total[5m]))", 0.05,
     "returns no sample for the series it selects"),
    # A share above 100%.
    ("sum(rate(a_failed_total[5m])) / (sum(rate(a_failed_total[5m])) + sum(rate(a_ok_total[5m])))", 1.5,
     "never crosses its threshold (> 1.5)"),
])
def test_an_expression_that_cannot_fire_is_an_inventory_error(tmp_path: Path, expr: str, threshold: float, says: str) -> None:
    inv = _inventory(tmp_path, f"{{name: Broken, type: threshold, expr: '{expr}', threshold: {threshold}}}")
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    text = str(err.value.problems[0])
    assert "services[0].rules[0].expr: the expression " in text and says in text, text
    result = monstack("render", "--inventory", str(inv), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and says in result.stderr


def test_a_threshold_expression_range_must_hold_two_scrapes(tmp_path: Path) -> None:
    """rate(x[20s]) at a 15s scrape holds one sample: it never returns anything, in production or in the generated tests."""
    inv = _inventory(tmp_path, "{name: Busy, type: threshold, expr: 'sum(rate(a_total[5m])) + sum(rate(b_total[20s]))', threshold: 5}")
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    assert [str(p) for p in err.value.problems] == [
        f"{inv}:11: services[0].rules[0].expr: the range 20s holds fewer than two samples of the 15s scrape interval, "
        "so rate() and increase() over it find nothing: make it at least 30s"]
    pipeline.load_model(_inventory(tmp_path, "{name: Busy, type: threshold, expr: 'sum(rate(b_total[30s]))', threshold: 5}"))


EXPRESSIONS = [
    "{name: MissShare, type: threshold, expr: 'sum(rate(cache_misses_total[5m])) / (sum(rate(cache_hits_total[5m])) + sum(rate(cache_misses_total[5m])))', threshold: 0.5}",
    "{name: SlowApi, type: threshold, expr: 'histogram_quantile(0.95, sum by (le, api) (rate(external_api_duration_seconds_bucket[5m])))', threshold: 2}",
    "{name: QueuePerWorker, type: threshold, expr: 'max by (queue) (queue_length) / on (queue) group_left count by (queue) (worker_busy)', threshold: 50}",
    "{name: StaleBackup, type: threshold, expr: 'time() - max(backup_last_success_timestamp_seconds)', threshold: 86400}",
    "{name: DiskBudget, type: threshold, op: '<', expr: 'clamp_max(min(storage_free_bytes) / 1e9, 100)', threshold: 5}",
    "{name: ErrorsPerOrder, type: threshold, expr: 'sum(increase(order_errors_total{kind=\"custom\"}[10m])) / sum(increase(orders_total[10m]))', threshold: 0.02}",
]


@needs_promtool
@pytest.mark.integration
def test_validate_evaluates_each_expression_on_generated_input(tmp_path: Path) -> None:
    """Prometheus must record what monstack's evaluator predicts, for each expression, on both sides of the threshold."""
    inv = _inventory(tmp_path, *EXPRESSIONS)
    result = monstack("validate", "--inventory", str(inv), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(pipeline.build(inv).files[names.rule_tests_file("biz")])
    titles = [t["name"] for t in tests["tests"] if "its expression" in t["name"]]
    for rule in ("MissShare", "SlowApi", "QueuePerWorker", "StaleBackup", "DiskBudget", "ErrorsPerOrder"):
        assert any(t.startswith(f"{rule}: its expression crosses") for t in titles), (rule, titles)
        assert any(t.startswith(f"{rule}: its expression stays short of") for t in titles), (rule, titles)


def test_an_expression_the_evaluator_does_not_model_keeps_the_record_fed_test(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "{name: Odd, type: threshold, expr: 'topk(1, x_total)', threshold: 1}")
    tests = yaml.safe_load(pipeline.build(inv).files[names.rule_tests_file("biz")])
    assert not [t for t in tests["tests"] if "its expression" in t["name"]]
    assert any("Odd fires" in t["name"] for t in tests["tests"])
    from generator.catalogue import evaluate

    with pytest.raises(evaluate.Unsupported):
        evaluate.Evaluator([], 600).vector("topk(1, x_total)")


@needs_promtool
@pytest.mark.integration
def test_a_wrong_expression_fails_its_generated_tests(tmp_path: Path) -> None:
    """The miss share written as hits / (hits + misses) in the rendered rules: the expression tests catch it."""
    from rules_support import INVENTORIES
    inv = next(p for p in INVENTORIES if p.parent.name == "node-backends")
    root = tmp_path / "tree"
    for path, data in pipeline.build(inv).files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    rules = root / names.rules_file("reasoning-gateway")
    text = rules.read_text()
    wrong = text.replace('expr: sum(rate(cache_misses_total{service="reasoning-gateway"}[5m])) /',
                         'expr: sum(rate(cache_hits_total{service="reasoning-gateway"}[5m])) /')
    assert wrong != text
    test = names.rule_tests_file("reasoning-gateway").split("/", 1)[1]
    assert promtool_test(root / "prometheus", test).returncode == 0
    rules.write_text(wrong)
    result = promtool_test(root / "prometheus", test)
    assert result.returncode != 0
    assert "service:custom_cache_miss_rate_high:value" in result.stdout + result.stderr
    shutil.rmtree(root)
