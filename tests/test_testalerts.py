"""`monstack test-alerts`: synthetic alerts per severity through a real Alertmanager to the real sinks, and real faults.

Unit tests cover the pure parts (labels, time intervals, fault choice); the
integration tests run the native stack from tests/e2e/services.yaml, whose
levels wait 1s instead of minutes.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from generator import names, pipeline, testalerts
from generator.runner.native import NativeStack
from stackutil import E2E_INVENTORY, ROOT, assert_torn_down, captures, new_stack, stack_pids, wait_for

BERLIN = dt.timezone(dt.timedelta(hours=1))  # CET, November


@pytest.fixture(scope="module")
def root_model():
    return pipeline.load_model(ROOT / "services.yaml")


@pytest.fixture(scope="module")
def e2e_model():
    return pipeline.load_model(E2E_INVENTORY)


# --- pure parts ----------------------------------------------------------------------------


def test_each_level_gets_a_synthetic_alert_labelled_as_such_with_its_own_problem(root_model) -> None:
    labels = [testalerts.synthetic_labels(root_model, None, lv) for lv in names.LEVELS]
    assert [lb[names.SEVERITY] for lb in labels] == ["P0", "P1", "P2", "P3"]
    for lb in labels:
        assert lb["alertname"] == names.SYNTHETIC_ALERT and lb[names.SYNTHETIC] == "true"
        assert (lb[names.SERVICE], lb[names.TEAM]) == ("monstack", "monstack")
    # Inhibition mutes lower levels of one problem on one service: each level needs its own problem.
    assert len({lb[names.PROBLEM] for lb in labels}) == 4


def test_with_a_service_the_alerts_carry_its_name_and_team(root_model) -> None:
    lb = testalerts.synthetic_labels(root_model, "checkout-api", "P1")
    assert (lb[names.SERVICE], lb[names.TEAM]) == ("checkout-api", "payments")
    # payments overrides P1: its own receivers, not the policy's.
    assert testalerts.expected_receivers(root_model, "payments", "P1") == ("slack-payments", "email-oncall")
    assert testalerts.expected_receivers(root_model, "monstack", "P1") == ("slack-alerts", "email-oncall")
    with pytest.raises(Exception, match="no service 'nope'"):
        testalerts.synthetic_labels(root_model, "nope", "P0")


@pytest.mark.parametrize("when, held", [
    (dt.datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN), False),   # Monday 10:00 Berlin
    (dt.datetime(2026, 11, 23, 8, 59, tzinfo=BERLIN), True),    # before 09:00
    (dt.datetime(2026, 11, 23, 17, 0, tzinfo=BERLIN), True),    # end_time is exclusive
    (dt.datetime(2026, 11, 23, 16, 59, tzinfo=BERLIN), False),
    (dt.datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN), True),    # Saturday
    (dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.timezone.utc), False),  # 09:30 in Berlin
])
def test_p3_is_held_outside_business_hours_in_the_interval_s_time_zone(root_model, when: dt.datetime, held: bool) -> None:
    reason = testalerts.held_reason(root_model, "P3", "monstack", when)
    assert (reason is not None) == held, reason
    if held:
        assert reason.startswith("held until business-hours")
    assert testalerts.held_reason(root_model, "P0", "monstack", when) is None


@pytest.mark.parametrize("when, opens", [
    (dt.datetime(2026, 11, 23, 8, 59, tzinfo=BERLIN), "opens Mon 2026-11-23 09:00 CET (in 0h 1m)"),
    (dt.datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN), "opens Mon 2026-11-30 09:00 CET (in 2d 16h 0m)"),  # Friday evening
    (dt.datetime(2026, 11, 28, 11, 30, tzinfo=dt.timezone.utc), "opens Mon 2026-11-30 09:00 CET (in 1d 20h 30m)"),
    (dt.datetime(2027, 3, 26, 18, 0, tzinfo=BERLIN), "opens Mon 2027-03-29 09:00 CEST (in 2d 14h 0m)"),  # over the DST change
])
def test_a_held_p3_says_when_its_window_opens(root_model, when: dt.datetime, opens: str) -> None:
    reason = testalerts.held_reason(root_model, "P3", "monstack", when)
    assert reason is not None and reason.endswith(opens), reason
    assert testalerts.next_open(root_model, ("business-hours",), when) > when


def test_a_mute_says_when_it_ends(root_model) -> None:
    reason = testalerts.held_reason(root_model, "P1", "monstack", dt.datetime(2026, 11, 29, 3, 10, tzinfo=BERLIN))
    assert reason == "muted now by time interval sunday-maintenance until Sun 2026-11-29 04:00 CET (in 0h 50m)"


def test_a_maintenance_window_mutes_p1_to_p3_and_never_pages_by_surprise(root_model) -> None:
    sunday_3am = dt.datetime(2026, 11, 29, 3, 0, tzinfo=BERLIN)
    for level in ("P1", "P2", "P3"):
        assert testalerts.held_reason(root_model, level, "monstack", sunday_3am) is not None
    assert testalerts.held_reason(root_model, "P1", "monstack", sunday_3am).startswith("muted now by time interval sunday-maintenance until")
    assert testalerts.held_reason(root_model, "P0", "monstack", sunday_3am) is None


def test_days_of_month_count_back_from_the_month_s_end() -> None:
    from generator.model import TimeInterval

    last_day = TimeInterval(times=(), weekdays=(), days_of_month=("-1",), months=(), years=(), location=None)
    assert testalerts.interval_matches(last_day, dt.datetime(2028, 2, 29, 12, tzinfo=dt.timezone.utc))
    assert not testalerts.interval_matches(last_day, dt.datetime(2028, 2, 28, 12, tzinfo=dt.timezone.utc))
    q1 = TimeInterval(times=(), weekdays=(), days_of_month=(), months=("january:march",), years=("2027",), location="UTC")
    assert testalerts.interval_matches(q1, dt.datetime(2027, 2, 1, tzinfo=dt.timezone.utc))
    assert not testalerts.interval_matches(q1, dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))


def test_the_fault_for_an_http_sample_exporter_is_an_error_ratio_that_pages(root_model) -> None:
    service, exporter, fault, alert = testalerts.fault_plan(root_model, None)
    assert (service.name, exporter, fault, alert) == ("checkout-api", "demo-web", {"error_ratio": 1.0}, "HttpErrorRatioCritical")
    service, exporter, fault, alert = testalerts.fault_plan(root_model, "order-worker")
    # order-worker has a health probe: a hung worker fails both, and the probe is the one page.
    assert (exporter, fault, alert) == ("demo-worker", {"hang": True}, "HealthProbeFailing")
    with pytest.raises(Exception, match="--fault needs a service scraped from a sample exporter"):
        testalerts.fault_plan(root_model, "orders-db")


# --- against a running stack -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    s = new_stack(E2E_INVENTORY, tmp_path_factory.mktemp("testalerts") / ".monstack", sinks=True, first=5500)
    ports = s.planned_ports()
    try:
        s.up(timeout=60)
        yield s
    finally:
        pids = stack_pids(s)
        s.down()
        assert_torn_down(s, ports, pids)


@pytest.mark.integration
def test_every_level_reaches_exactly_its_receivers_then_resolves(stack: NativeStack, e2e_model) -> None:
    t0 = time.time()
    outcomes = testalerts.run(e2e_model, stack.urls(), timeout=30)
    assert [o.level for o in outcomes] == list(names.LEVELS)
    for o in outcomes:
        expected = sorted(e2e_model.levels[o.level].receivers)
        assert o.routed == expected, o.text()
        assert sorted(o.notified) == expected and o.ok, o.text()
        assert not o.held and not o.suppressed
    # The sinks saw each synthetic alert at exactly its level's receivers, with the alert's own words.
    got: dict[str, set[str]] = {}
    for c in captures(stack, t0):
        for level in names.LEVELS:
            if testalerts.capture_matches(c, names.SYNTHETIC_ALERT, level, "firing", "monstack"):
                got.setdefault(level, set()).update(testalerts.capture_receivers(e2e_model, c, e2e_model.levels[level].receivers))
    assert got == {lv: set(e2e_model.levels[lv].receivers) for lv in names.LEVELS}
    # Resolved notifications follow (send_resolved), e.g. Slack #incidents for P0.
    wait_for("the resolved P0 notification in #incidents", lambda: [
        c for c in captures(stack, t0) if c["kind"] == "slack" and c["receiver"] == "slack-incidents"
        and testalerts.capture_matches(c, names.SYNTHETIC_ALERT, "P0", "resolved", "monstack")], timeout=20)


@pytest.mark.integration
def test_the_cli_reports_delivery_per_level_for_a_service(stack: NativeStack) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "generator.cli", "test-alerts", "--state-dir", str(stack.state_dir),
                           "--service", "checkout-api", "--timeout", "30"], capture_output=True, text=True, env=env, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "service=checkout-api, team=web" in proc.stderr
    lines = {line[:2]: line for line in proc.stdout.splitlines() if line[:2] in names.LEVELS}
    assert set(lines) == set(names.LEVELS)
    assert "pagerduty-oncall (+" in lines["P0"] and "slack-incidents (+" in lines["P0"]
    assert "email-oncall (+" in lines["P1"] and "slack-alerts (+" in lines["P1"]
    assert "NOT notified" not in proc.stdout


@pytest.mark.integration
def test_fault_mode_times_the_real_alert_from_the_fault_to_its_receivers(stack: NativeStack, e2e_model) -> None:
    """Last in this module: it leaves checkout-api's error ratio elevated for a while after the reset."""
    def exporter_url(name: str) -> str:
        return stack.component_url(name)

    res = testalerts.run_fault(e2e_model, stack.urls(), exporter_url, None, timeout=60, control_headers=stack.control_headers())
    assert (res.service, res.exporter, res.alert, res.level) == ("checkout-api", "demo-web", "HttpErrorRatioCritical", "P0")
    assert set(res.notified) == {"pagerduty-oncall", "slack-incidents"}
    steps = dict(res.milestones)
    assert 0 < steps["firing in Prometheus"] <= steps["received by Alertmanager"] + 1 <= res.delay + 1
    print(f"fault to notification: {res.delay:.1f}s; milestones {res.milestones}")
    assert testalerts.fault_text(res).startswith("HttpErrorRatioCritical (P0) on checkout-api: fault to notification ")


@pytest.mark.integration
def test_without_sinks_failed_deliveries_are_reported_from_alertmanager_counters(tmp_path: Path, e2e_model) -> None:
    """tests/e2e has no secret files: with sinks off Slack and PagerDuty cannot be notified, and the report says so."""
    s = new_stack(E2E_INVENTORY, tmp_path / ".monstack", sinks=False, first=6000)
    ports = s.planned_ports()
    try:
        s.up(timeout=60)
        assert any("will fail to notify" in n for n in s.notes)
        outcomes = testalerts.run(e2e_model, s.urls(), timeout=8)
        p0 = outcomes[0]
        assert p0.level == "P0" and not p0.ok
        assert p0.evidence == "alertmanager counters"
        assert "pagerduty" in p0.failed and "slack" in p0.failed, p0.text()
        assert "NOT notified: pagerduty-oncall, slack-incidents" in p0.text()
    finally:
        pids = stack_pids(s)
        s.down()
    assert_torn_down(s, ports, pids)


def test_fault_report_leads_with_the_first_page_of_any_alert():
    """A hang fails the health probe before the scrape: the first page is HealthProbeFailing's, whichever alert was expected."""
    res = testalerts.FaultResult("web", "demo-web", {"hang": True}, "TargetDown", "P0",
                                 notified={"pager": 41.0},
                                 pages=[(41.0, "TargetDown", "P0", "pager"), (23.5, "HealthProbeFailing", "P0", "pager"),
                                        (12.0, "HttpLatencyHigh", "P2", "chat")])
    assert res.first_page == (23.5, "HealthProbeFailing", "P0", "pager")
    text = testalerts.fault_text(res)
    assert text.splitlines()[0].startswith("TargetDown (P0) on web: fault to notification 41.0s")
    assert "first page: HealthProbeFailing (P0) to pager after 23.5s" in text
    assert "also notified: HealthProbeFailing (P0), HttpLatencyHigh (P2)" in text
