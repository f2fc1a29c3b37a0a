"""Rendered rule files: labels, annotations and links on every alert, tiers sharing a problem, parseable PromQL."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import promql_parser
import pytest

from generator import catalogue, names, pipeline
from generator.durations import parse_duration
from rules_support import IDS, INVENTORIES, alerts, load, rendered, rule_files, rules  # noqa: F401 (fixture)

LABELS = {"severity", "service", "team", "env", "problem"}
ANNOTATIONS = {"summary", "description", "value", "runbook_url", "dashboard_url"}


@pytest.mark.parametrize("ident", IDS)
def test_every_alert_carries_the_routing_labels_and_the_annotations(ident: str, rendered):
    for a in alerts(rendered[ident]):
        assert LABELS <= set(a["labels"]), a["alert"]
        assert a["labels"]["severity"] in names.LEVELS
        assert set(a["annotations"]) == ANNOTATIONS, a["alert"]
        parse_duration(a["for"])
        promql_parser.parse(a["expr"])


@pytest.mark.parametrize("ident", IDS)
def test_descriptions_show_the_humanized_value_of_every_threshold_alert(ident: str, rendered):
    """State alerts (up == 0, a reload failed) have nothing to show; every alert with a threshold prints its value."""
    for a in alerts(rendered[ident]):
        try:
            d = catalogue.get(a["alert"])
        except KeyError:
            continue  # a custom rule: its text is the user's
        if d.threshold is not None or d.derived_threshold is not None:
            text = a["annotations"]["summary"] + a["annotations"]["description"]
            assert "{{ $value | humanize" in text, a["alert"]


@pytest.mark.parametrize("ident", IDS)
def test_links_point_at_runbooks_and_dashboards_that_are_rendered(ident: str, rendered):
    root = rendered[ident]
    uids = {json.loads(p.read_text())["uid"] for p in (root / names.DASHBOARDS_DIR).rglob("*.json")}
    model = pipeline.load_model(INVENTORIES[IDS.index(ident)])
    bases = {s.name: s.runbook_base for s in model.services}
    # A tier of a catalogue alert has a name of its own and the alert's runbook.
    page = {a.name: a.catalogue_name for s in model.services for a in s.alerts}
    for a in alerts(root):
        runbook = a["annotations"]["runbook_url"]
        base = bases.get(a["labels"]["service"])
        alert_page = page.get(a["alert"], a["alert"])
        if base:
            assert runbook == f"{base}/{alert_page.lower()}"
        else:
            assert runbook == names.runbook_file(alert_page) and (root / runbook).is_file(), runbook
        uid = a["annotations"]["dashboard_url"].rsplit("/d/", 1)[1]
        assert uid in uids, (a["alert"], uid)


@pytest.mark.parametrize("ident", IDS)
def test_tiers_of_one_problem_share_it_and_differ_in_severity(ident: str, rendered):
    by_problem: dict[tuple[str, str], list[dict]] = {}
    for a in alerts(rendered[ident]):
        by_problem.setdefault((a["labels"]["service"], a["labels"]["problem"]), []).append(a)
    tiers = [group for group in by_problem.values() if len({a["alert"] for a in group}) > 1]
    assert tiers or ident == "api-postgres-redis"
    for group in tiers:
        severities = [a["labels"]["severity"] for a in group]
        if group[0]["labels"]["problem"] not in ("ErrorBudgetBurn", "LatencyBudgetBurn"):  # two page pairs, two ticket pairs
            assert len(set(severities)) == len(severities), [(a["alert"], a["labels"]["severity"]) for a in group]


def test_error_ratio_tiers_are_the_same_problem(rendered):
    ix = {a["alert"]: a for a in alerts(rendered["services.yaml"]) if a["labels"]["service"] == "checkout-api"}
    assert ix["HttpErrorRatioCritical"]["labels"]["problem"] == ix["HttpErrorRatioHigh"]["labels"]["problem"] == "HttpErrorRatio"
    assert (ix["HttpErrorRatioCritical"]["labels"]["severity"], ix["HttpErrorRatioHigh"]["labels"]["severity"]) == ("P0", "P1")


@pytest.mark.parametrize("ident", IDS)
def test_rule_names_are_unique_where_prometheus_needs_them(ident: str, rendered):
    root = rendered[ident]
    groups = Counter(g["name"] for f in rule_files(root) for g in load(f)["groups"])
    assert max(groups.values()) == 1
    records = Counter(r["record"] for _, r in rules(root) if "record" in r)
    # One rule per recorded series name and service: two rules writing one series would fight.
    per_service = Counter((r["record"], r["expr"].split('service="', 1)[-1].split('"', 1)[0]) for _, r in rules(root) if "record" in r)
    assert max(per_service.values()) == 1, [k for k, v in per_service.items() if v > 1]
    assert records


def test_slo_rules_live_in_their_own_file_and_groups(rendered):
    """The SLO file holds the SLO group and the slow SLO group (windows of a day and more, and the 2h window only their
    pair reads, every minute); in each, records come before the burn-rate alerts that read them."""
    root = rendered["services.yaml"]
    slo = load(root / names.rules_file(names.slo_group("checkout-api")))
    assert [g["name"] for g in slo["groups"]] == ["checkout-api.slo", "checkout-api.slo-slow"]
    assert "interval" not in slo["groups"][0] and slo["groups"][1]["interval"] == "1m"
    windows = []
    for g in slo["groups"]:
        kinds = [("record" if "record" in r else "alert") for r in g["rules"]]
        assert kinds == sorted(kinds, reverse=True), "SLI records come before the burn-rate alerts that read them"
        windows.append([r["record"].rsplit("ratio_rate", 1)[1] for r in g["rules"] if r.get("record", "").startswith("service:http_errors:")])
    assert windows == [["30m", "1h", "6h"], ["2h", "1d", "3d"]]  # 5m is the recording group's error ratio
    alerts = [[r["alert"] for r in g["rules"] if "alert" in r] for g in slo["groups"]]
    assert [a for a in alerts[1] if "Burn" in a] == ["ErrorBudgetBurn1d", "ErrorBudgetBurn3d", "LatencyBudgetBurn1d", "LatencyBudgetBurn3d"]
    assert not [a for a in alerts[0] if a.endswith(("1d", "3d"))]


def test_meta_rules_watch_the_stack_with_its_own_labels(rendered):
    meta = load(rendered["services.yaml"] / names.rules_file(names.META_RULES_GROUP))
    rules_ = meta["groups"][0]["rules"]
    assert {r["labels"]["service"] for r in rules_} == {names.META_SERVICE}
    watchdog = next(r for r in rules_ if r["alert"] == names.WATCHDOG_ALERT)
    assert watchdog["labels"]["severity"] == "P3" and watchdog["for"] == "0s"
    assert 'job="prometheus"' in watchdog["expr"]


def test_prometheus_config_loads_every_rule_file(rendered):
    root = rendered["services.yaml"]
    cfg = load(root / names.PROMETHEUS_CONFIG)
    assert cfg["rule_files"] == ["rules/*.yml"]
    assert all(Path(f).parent.name == "rules" for f in rule_files(root))
