"""End to end: the native stack with its receivers on local sinks; real faults page the right people, then resolve.

tests/e2e/services.yaml is the default severity policy with seconds instead of
minutes. Real Prometheus, Alertmanager, blackbox exporter, demo-web and sinks.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from generator import names, testalerts
from generator.runner import api
from generator.runner.native import PLACEHOLDER_SECRET
from stackutil import CORE, E2E_INVENTORY, assert_torn_down, captures, missing, new_stack, stack_pids, wait_for

SERVICE = "checkout-api"


def _for(kind: str, receiver: str | None, alert: str, level: str, status: str, since: float):
    def found(stack):
        return [c for c in captures(stack, since) if c["kind"] == kind and (receiver is None or c.get("receiver") == receiver)
                and testalerts.capture_matches(c, alert, level, status, SERVICE)]
    return found


@pytest.mark.integration
def test_real_faults_reach_the_expected_sinks_then_resolve_and_teardown_leaves_nothing(tmp_path: Path) -> None:
    reason = missing(CORE)
    if reason:
        pytest.skip(reason)
    stack = new_stack(E2E_INVENTORY, tmp_path / ".monstack", sinks=True, first=7000)
    ports = stack.planned_ports()
    timings: dict[str, float] = {}
    try:
        stack.up(timeout=60)
        web = stack.component_url("demo-web")

        # 1. 3% of requests fail: above the P1 threshold (1%), below P0's (5%). Slack #alerts and an email to on-call.
        t0 = time.time()
        assert requests.post(f"{web}/control", json={"error_ratio": 0.03}, headers=stack.control_headers(), timeout=5).status_code == 200
        mail = wait_for("HttpErrorRatioHigh by email", lambda: _for("email", None, "HttpErrorRatioHigh", "P1", "firing", t0)(stack),
                        timeout=60)[0]
        wait_for("HttpErrorRatioHigh in #alerts", lambda: _for(
            "slack", "slack-alerts", "HttpErrorRatioHigh", "P1", "firing", t0)(stack), timeout=30)
        timings["3% errors -> P1 email"] = mail["time"] - t0
        assert mail["rcpt_tos"] == ["oncall@example.com"] and mail["mail_from"] == "alerts@example.com"
        assert SERVICE in mail["text"]
        assert not _for("pagerduty", None, "HttpErrorRatioCritical", "P0", "firing", t0)(stack), "3% must not page"

        # 2. A quarter of requests fail: above the P0 threshold, so HttpErrorRatioCritical pages.
        t1 = time.time()
        assert requests.post(f"{web}/control", json={"error_ratio": 0.25}, headers=stack.control_headers(), timeout=5).status_code == 200
        pd = wait_for("HttpErrorRatioCritical at PagerDuty", lambda: _for(
            "pagerduty", "pagerduty-oncall", "HttpErrorRatioCritical", "P0", "firing", t1)(stack), timeout=60)[0]
        slack = wait_for("HttpErrorRatioCritical in #incidents", lambda: _for(
            "slack", "slack-incidents", "HttpErrorRatioCritical", "P0", "firing", t1)(stack), timeout=30)[0]
        timings["25% errors -> P0 page"] = pd["time"] - t1
        payload = pd["body"]["payload"]
        assert payload["severity"] == "critical"
        assert SERVICE in payload["summary"] and "HttpErrorRatioCritical" in payload["summary"]
        assert pd["body"]["routing_key"] == PLACEHOLDER_SECRET.strip()  # a stand-in: no real key reaches a sink
        attachment = slack["body"]["attachments"][0]
        assert slack["body"]["channel"] == "#incidents"
        assert attachment["color"] == "danger"
        assert "of requests fail" in attachment["text"] and SERVICE in attachment["text"]
        # Nothing of this problem went to the P2/P3 receivers.
        stray = [c for c in captures(stack, t0) if c.get("receiver") in ("slack-engineering", "tickets")
                 and "HttpErrorRatio" in str(c.get("body"))]
        assert not stray, stray

        # 3. Reset: the ratio falls under the threshold and both receivers hear that it resolved.
        t2 = time.time()
        assert requests.post(f"{web}/control/reset", headers=stack.control_headers(), timeout=5).status_code == 200
        wait_for("the resolved message in #incidents", lambda: _for(
            "slack", "slack-incidents", "HttpErrorRatioCritical", "P0", "resolved", t2)(stack), timeout=90)
        resolve = wait_for("the PagerDuty resolve event", lambda: [
            c for c in captures(stack, t2) if c["kind"] == "pagerduty" and c["body"].get("event_action") == "resolve"
            and c["body"].get("dedup_key") == pd["body"]["dedup_key"]], timeout=30)[0]
        timings["reset -> resolved"] = resolve["time"] - t2

        # 4. Kill the target: demo-web exits, its scrape and its health probe fail. One outage, one page:
        # HealthProbeFailing pages, TargetDown steps aside (its expression is silent while a probe of the service fails).
        t3 = time.time()
        requests.post(f"{web}/control", json={"exit": True}, headers=stack.control_headers(), timeout=5)
        down_pd = wait_for("HealthProbeFailing at PagerDuty", lambda: _for(
            "pagerduty", "pagerduty-oncall", "HealthProbeFailing", "P0", "firing", t3)(stack), timeout=60)[0]
        wait_for("HealthProbeFailing in #incidents", lambda: _for(
            "slack", "slack-incidents", "HealthProbeFailing", "P0", "firing", t3)(stack), timeout=30)
        timings["exit -> one P0 page"] = down_pd["time"] - t3
        states = {(a.name, a.state) for a in api.alerts(stack.prometheus_url)}
        assert ("HealthProbeFailing", "firing") in states
        assert not {s for s in states if s[0] == "TargetDown"}, states  # not even pending
        pages = [c for c in captures(stack, t3) if c["kind"] == "pagerduty" and c["body"].get("event_action") == "trigger"]
        assert [c["body"]["payload"]["custom_details"]["alertname"] for c in pages] == ["HealthProbeFailing"], pages
        print("e2e timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    finally:
        pids = stack_pids(stack)
        stack.down()
    assert_torn_down(stack, ports, pids)
    assert not (stack.state_dir / names.STATE_RUN / "stack.json").exists()
