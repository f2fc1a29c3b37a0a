"""The generated promtool tests: every alert fires in one and stays silent in another, every record is checked, and they bite.

promtool runs them in tests/test_examples.py (monstack validate, for every
inventory); here: coverage, and proof that a wrong rule fails them.
"""
from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from generator import names
from rules_support import IDS, alerts, load, needs_promtool, promtool_test, rendered, rule_test_files, rules  # noqa: F401 (fixture)


def _assertions(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    fires: dict[str, int] = defaultdict(int)
    silent: dict[str, int] = defaultdict(int)
    for f in rule_test_files(root):
        for t in load(f)["tests"]:
            for a in t.get("alert_rule_test", []):
                (fires if a["exp_alerts"] else silent)[a["alertname"]] += 1
    return fires, silent


@pytest.mark.parametrize("ident", IDS)
def test_every_alert_has_a_firing_and_a_silent_case(ident: str, rendered):
    root = rendered[ident]
    names_ = {a["alert"] for a in alerts(root)}
    fires, silent = _assertions(root)
    assert names_, "no alerts rendered"
    assert sorted(names_ - set(fires)) == [], "alerts no test makes fire"
    assert sorted(names_ - set(silent)) == [], "alerts no test proves silent"
    assert set(fires) | set(silent) <= names_, "tests for alerts that do not exist"


@pytest.mark.parametrize("ident", IDS)
def test_every_recording_rule_has_an_expression_test(ident: str, rendered):
    root = rendered[ident]
    records = {r["record"] for _, r in rules(root) if "record" in r}
    # A custom threshold rule records the user's expression: it is tested on generated input (catalogue/custom.py).
    tested = set()
    for f in rule_test_files(root):
        for t in load(f)["tests"]:
            for e in t.get("promql_expr_test", []):
                tested |= set(re.findall(r"[a-z_]+:[a-z_0-9]+:[a-z_0-9]+", e["expr"]))
    assert sorted(records - tested) == []


@pytest.mark.parametrize("ident", IDS)
def test_test_files_point_at_rule_files_that_exist(ident: str, rendered):
    root = rendered[ident]
    for f in rule_test_files(root):
        doc = load(f)
        for rf in doc["rule_files"]:
            assert (f.parent / rf).resolve().is_file(), (f.name, rf)
        groups = {g["name"] for rf in doc["rule_files"] for g in load(f.parent / rf)["groups"]}
        assert set(doc["group_eval_order"]) == groups, f.name


def test_firing_cases_carry_every_label_and_annotation(rendered):
    """exp_labels hold the rule's labels (severity, service, team, env, problem) and annotations are spelled out."""
    root = rendered["services.yaml"]
    seen = 0
    for f in rule_test_files(root):
        for t in load(f)["tests"]:
            for a in t.get("alert_rule_test", []):
                for e in a["exp_alerts"]:
                    assert {"severity", "service", "team", "env", "problem"} <= set(e["exp_labels"]), a["alertname"]
                    assert set(e["exp_annotations"]) == {"summary", "description", "value", "runbook_url", "dashboard_url"}
                    assert "{{" not in "".join(e["exp_annotations"].values()), "template left unexpanded"
                    seen += 1
    assert seen > 50


def test_the_error_ratio_is_zero_not_absent_before_the_first_failure(rendered):
    """A recording test feeds traffic without any 5xx series and expects failure rates and ratios of 0, every window."""
    exprs = []
    for stem in ("checkout-api", names.slo_group("checkout-api")):  # the recording group's tests, the SLO group's
        doc = load(rendered["services.yaml"] / names.rule_tests_file(stem))
        quiet = [t for t in doc["tests"] if t["name"].endswith("before the first failure")]
        assert len(quiet) == 1, stem
        assert not any('status="5' in x["series"] for x in quiet[0]["input_series"])
        exprs += [e["expr"] for e in quiet[0]["promql_expr_test"]]
    for record in ("service:http_errors:rate5m", "service:http_errors:ratio_rate5m", "service:http_errors:ratio_rate1h",
                   "service:http_errors:ratio_rate3d"):
        assert any(e.startswith(f"abs({record}{{") and " - 0) <=" in e for e in exprs), (record, exprs)


def _mutated(rendered_root: Path, tmp_path: Path, rule_file: str, old: str, new: str) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(rendered_root, root)
    path = root / names.rules_file(rule_file)
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return root


MUTATIONS = [
    # A threshold one tier off: the firing case at 5.5% no longer fires.
    ("checkout-api", 'service:http_errors:ratio_rate5m{service="checkout-api"} > 0.05', 'service:http_errors:ratio_rate5m{service="checkout-api"} > 0.06',
     "HttpErrorRatioCritical"),
    # `for` shortened: the alert fires before it should.
    ("checkout-api", "    for: 10m\n    labels:\n      severity: P1\n      service: checkout-api\n      team: payments\n      env: production\n      problem: HttpLatencyP95\n",
     "    for: 1m\n    labels:\n      severity: P1\n      service: checkout-api\n      team: payments\n      env: production\n      problem: HttpLatencyP95\n",
     "HttpLatencyP95High"),
    # A wrong severity label.
    ("orders-db", "      severity: P0\n      service: orders-db\n      team: platform\n      env: production\n      problem: PostgresDown\n",
     "      severity: P1\n      service: orders-db\n      team: platform\n      env: production\n      problem: PostgresDown\n", "PostgresDown"),
    # The classic bug: an "error rate" that is not a ratio fires on any traffic with errors.
    ("checkout-api", 'record: service:http_errors:ratio_rate5m\n    expr: service:http_errors:rate5m{service="checkout-api"} / service:http_requests:rate5m{service="checkout-api"}',
     'record: service:http_errors:ratio_rate5m\n    expr: service:http_errors:rate5m{service="checkout-api"}', "HttpErrorRatio"),
    # p95 computed over raw buckets: the recording test catches the wrong value.
    ("checkout-api", "expr: histogram_quantile(0.95, service:http_request_duration_seconds_bucket:rate5m{service=\"checkout-api\"})",
     "expr: histogram_quantile(0.95, http_request_duration_seconds_bucket{service=\"checkout-api\"})", "http_request_duration_seconds:p95_5m"),
    # The stalled rule without its start-up guard fires on a fresh Prometheus.
    ("sales-insights", ' and on () count(up{job="sales-insights"} offset 15m)', "", "SalesSyncStalled"),
]


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("rule_file, old, new, culprit", MUTATIONS, ids=[m[3] for m in MUTATIONS])
def test_a_wrong_rule_fails_its_generated_tests(rule_file: str, old: str, new: str, culprit: str, rendered, tmp_path: Path):
    original = rendered["services.yaml"]  # passes its tests: tests/test_examples.py validates it
    test = names.rule_tests_file(rule_file).split("/", 1)[1]
    root = _mutated(original, tmp_path, rule_file, old, new)
    result = promtool_test(root / "prometheus", test)
    assert result.returncode != 0
    assert culprit in result.stdout + result.stderr
