"""Real deliveries: a real Alertmanager, rendered by monstack, sends to local Slack/PagerDuty/webhook/SMTP sinks.

One alert of each severity per team is posted to Alertmanager's v2 API; each must reach exactly
the receivers the policy names, with the payload each service expects. Inhibited and muted
alerts reach nobody; resolving sends resolved notifications to the same receivers.

Time of day never matters: the test inventory defines business-hours as every day, all day
(so P3's default "only during business hours" is open), and a second run defines it as a year
long past to prove P3 stays silent outside business hours.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from amrunner import Alertmanager, alert, now, render, resolved
from generator.sinks import Sinks
from generator.topology import native

pytestmark = pytest.mark.integration

PD_KEY = "pd-routing-key-5f1c0e"
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-password-93ab7d"
TICKET_TOKEN = "ticket-token-2c77e1"

INVENTORY = """\
version: 1
stack: {{name: delivery, timezone: UTC, allow_always_muted: true}}  # team quiet: muted all the time, on purpose
receivers:
  pagerduty-oncall: {{type: pagerduty, routing_key_file: secrets/pagerduty_routing_key}}
  slack-incidents: {{type: slack, webhook_url_file: secrets/slack_incidents, channel: "#incidents"}}
  slack-alerts: {{type: slack, webhook_url_file: secrets/slack_alerts, channel: "#alerts"}}
  slack-engineering: {{type: slack, webhook_url_file: secrets/slack_engineering, channel: "#engineering"}}
  slack-payments: {{type: slack, webhook_url_file: secrets/slack_payments, channel: "#payments-alerts"}}
  email-oncall:
    {{type: email, to: [oncall@example.com], from: alerts@example.com, smarthost: "smtp.example.com:587",
     auth_username: {user}, auth_password_file: secrets/smtp_password}}
  ticket-inbox:
    {{type: email, to: [tickets@example.com], from: alerts@example.com, smarthost: "smtp.example.com:587",
     auth_username: {user}, auth_password_file: secrets/smtp_password}}
  tickets: {{type: webhook, url: "http://tickets.internal:8080/hook", bearer_token_file: secrets/ticket_token}}
  heartbeat: {{type: webhook, url: "http://heartbeat.internal:8080/ping", send_resolved: false}}
severities:
  P0: {{receivers: [pagerduty-oncall, slack-incidents], {timing}}}
  P1: {{receivers: [slack-alerts, email-oncall], {timing}}}
  P2: {{receivers: [slack-engineering], {timing}}}
  P3: {{receivers: [tickets], {timing}}}
time_intervals:
  business-hours: [{business_hours}]
  always: [{{weekdays: ["sunday:saturday"]}}]
watchdog: {{receiver: heartbeat, repeat_interval: 1h}}
teams:
  platform: {{}}
  payments:
    receivers:
      P1: [slack-payments, email-oncall]
      P3: [ticket-inbox]
  quiet: {{mute_time_intervals: [always]}}
services:
  - {{name: platform-svc, team: platform, kind: custom, scrape: {{targets: ["127.0.0.1:9"]}}}}
"""
TIMING = "group_wait: 1s, group_interval: 1s, repeat_interval: 1h"
OPEN_ALL_DAY = '{weekdays: ["sunday:saturday"]}'
LONG_PAST = '{years: ["1999"]}'

# The policy of the inventory above, written out: (team, level) -> receivers in delivery order.
POLICY = {
    ("platform", "P0"): ["pagerduty-oncall", "slack-incidents"],
    ("platform", "P1"): ["slack-alerts", "email-oncall"],
    ("platform", "P2"): ["slack-engineering"],
    ("platform", "P3"): ["tickets"],
    ("payments", "P0"): ["pagerduty-oncall", "slack-incidents"],
    ("payments", "P1"): ["slack-payments", "email-oncall"],
    ("payments", "P2"): ["slack-engineering"],
    ("payments", "P3"): ["ticket-inbox"],
}
CHANNELS = {"slack-incidents": "#incidents", "slack-alerts": "#alerts", "slack-engineering": "#engineering",
            "slack-payments": "#payments-alerts"}
MAILBOXES = {"oncall@example.com": "email-oncall", "tickets@example.com": "ticket-inbox"}
PD_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
SETTLE = 2.5  # seconds after the last expected capture during which nothing else may arrive (> group_wait + group_interval)


def write_inventory(root: Path, business_hours: str) -> Path:
    secrets = root / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "pagerduty_routing_key").write_text(PD_KEY + "\n")
    for channel in ("incidents", "alerts", "engineering", "payments"):
        (secrets / f"slack_{channel}").write_text("https://hooks.slack.com/services/T0/B0/not-used-with-sinks\n")
    (secrets / "smtp_password").write_text(SMTP_PASSWORD)
    (secrets / "ticket_token").write_text(TICKET_TOKEN + "\n")
    inv = root / "services.yaml"
    inv.write_text(INVENTORY.format(user=SMTP_USER, timing=TIMING, business_hours=business_hours))
    return inv


@pytest.fixture
def sinks():
    with Sinks(smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD) as s:
        yield s


def start(tmp_path: Path, sinks: Sinks, business_hours: str) -> Alertmanager:
    inv = write_inventory(tmp_path / "inventory", business_hours)
    topo = native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost)
    config = render(inv, tmp_path / "out", topo)
    return Alertmanager(config, tmp_path).start()


def annotations(name: str, service: str) -> dict[str, str]:
    return {
        "summary": f"{service}: {name} summary",
        "description": f"{name} on {service} for the delivery test.",
        "runbook_url": f"https://runbooks.example.com/{name.lower()}",
        "dashboard_url": f"https://grafana.example.com/d/{service}",
        "value": "0.42",
    }


def make(name: str, severity: str | None, team: str, service: str, problem: str | None = None, **extra: str) -> dict[str, Any]:
    labels = {"alertname": name, "team": team, "service": service, **extra}
    if severity:
        labels["severity"] = severity
    if problem:
        labels["problem"] = problem
    return alert(labels, annotations(name, service), starts=now())


# --- what the sinks got, as (receiver, alertname, service, status) -----------------------

_HEADLINE = re.compile(r"^\[(FIRING:\d+|RESOLVED)\] (?:P\d )?(\S+) on (\S+)$")


def _headline(text: str) -> tuple[str, str, str]:
    m = _HEADLINE.match(text)
    assert m, f"unexpected headline {text!r}"
    return m.group(2), m.group(3), "resolved" if m.group(1) == "RESOLVED" else "firing"


def delivery(c: dict[str, Any]) -> tuple[str, str, str, str]:
    if c["kind"] == "slack":
        name, service, status = _headline(c["body"]["attachments"][0]["title"])
        return c["receiver"], name, service, status
    if c["kind"] == "pagerduty":
        d = c["body"]["payload"]["custom_details"]
        return c["receiver"], d["alertname"], d["service"], "resolved" if c["body"]["event_action"] == "resolve" else "firing"
    if c["kind"] == "webhook":
        (a,) = c["body"]["alerts"]  # one alert per group in this test
        return c["receiver"], a["labels"]["alertname"], a["labels"]["service"], c["body"]["status"]
    assert c["kind"] == "email"
    (rcpt,) = c["rcpt_tos"]
    name, service, status = _headline(c["subject"])
    return MAILBOXES[rcpt], name, service, status


def collect(sinks: Sinks, expected: Counter) -> Counter:
    """Wait for the expected number of captures, then a settling period; every capture, counted."""
    total = sum(expected.values())
    if total:
        try:
            sinks.wait_for(count=total, timeout=20)
        except TimeoutError:
            pass  # the comparison below names what is missing
    time.sleep(SETTLE)
    return Counter(delivery(c) for c in sinks.captured)


# --- the test ---------------------------------------------------------------------


def test_each_severity_reaches_exactly_its_receivers_and_resolves(tmp_path: Path, sinks: Sinks) -> None:
    am = start(tmp_path, sinks, OPEN_ALL_DAY)
    try:
        run_delivery(am, sinks)
    except BaseException:
        print(am.log())
        raise
    finally:
        am.stop()


def run_delivery(am: Alertmanager, sinks: Sinks) -> None:
    by_team_level = {(team, lv): make(f"Delivery{lv}", lv, team, f"{team}-svc", problem=f"Delivery{lv}")
                     for team, lv in POLICY}
    watchdog = alert({"alertname": "Watchdog", "severity": "P3", "team": "monstack", "service": "monstack", "problem": "Watchdog"},
                     {"summary": "alive"}, starts=now())
    unknown = make("Unclassified", "P9", "platform", "odd-svc")
    no_severity = make("NoSeverity", None, "payments", "odd-svc")
    muted = make("MaintenanceP1", "P1", "quiet", "quiet-svc", problem="MaintenanceP1")  # a window by name mutes P1-P3
    # Inhibition: the source fires, the target reaches nobody; controls prove the rules are narrow.
    down = make("TargetDown", "P0", "platform", "down-svc", problem="TargetDown", instance="down-1:80")
    down_symptom = make("ProcessMemoryHigh", "P1", "platform", "down-svc", problem="ProcessMemory", instance="down-1:80")
    down_service_wide = make("HttpErrorRatioHigh", "P1", "platform", "down-svc", problem="HttpErrorRatio")  # not explained by one target
    tier_high = make("HttpErrorRatioCritical", "P0", "platform", "tier-svc", problem="HttpErrorRatio")
    tier_low = make("HttpErrorRatioHigh", "P1", "platform", "tier-svc", problem="HttpErrorRatio")
    tier_other_problem = make("HttpLatencyP95High", "P2", "platform", "tier-svc", problem="HttpLatency")
    same_problem_other_service = make("HttpErrorRatioHigh", "P1", "platform", "calm-svc", problem="HttpErrorRatio")

    posted = [*by_team_level.values(), watchdog, unknown, no_severity, muted, down, down_symptom, down_service_wide, tier_high, tier_low,
              tier_other_problem, same_problem_other_service]
    am.post(posted)

    def key(a: dict[str, Any]) -> tuple[str, str]:
        return a["labels"]["alertname"], a["labels"]["service"]

    expected: Counter = Counter()
    for (team, lv), a in by_team_level.items():
        expected.update((r, *key(a), "firing") for r in POLICY[(team, lv)])
    expected[("heartbeat", "Watchdog", "monstack", "firing")] += 1
    expected[("slack-alerts", *key(unknown), "firing")] += 1  # the catch-all: default receiver = first P1 receiver
    expected[("slack-alerts", *key(no_severity), "firing")] += 1
    for a, team, lv in ((down, "platform", "P0"), (down_service_wide, "platform", "P1"), (tier_high, "platform", "P0"),
                        (tier_other_problem, "platform", "P2"), (same_problem_other_service, "platform", "P1")):
        expected.update((r, *key(a), "firing") for r in POLICY[(team, lv)])

    got = collect(sinks, expected)
    assert got == expected, f"missing: {expected - got}\nunexpected: {got - expected}"

    # Alertmanager itself reports the two inhibited alerts as inhibited, and only those.
    status = {key(a): a["status"] for a in am.alerts()}
    assert status[key(down_symptom)]["inhibitedBy"] and status[key(tier_low)]["inhibitedBy"]
    assert status[key(down_symptom)]["state"] == "suppressed"
    for a in (down, down_service_wide, tier_high, tier_other_problem, same_problem_other_service, by_team_level[("platform", "P1")]):
        assert not status[key(a)]["inhibitedBy"], key(a)

    check_payloads(sinks)

    # Resolving: the same receivers hear about it (except the heartbeat, which never sends resolved).
    sinks.clear()
    am.post(resolved([a for a in posted if a is not watchdog]))
    expected_resolved = Counter({(r, n, s, "resolved"): c for (r, n, s, _), c in expected.items() if r != "heartbeat"})
    got = collect(sinks, expected_resolved)
    assert got == expected_resolved, f"missing: {expected_resolved - got}\nunexpected: {got - expected_resolved}"
    for c in sinks.captured:
        if c["kind"] == "pagerduty":
            assert c["body"]["event_action"] == "resolve"
            assert c["body"]["routing_key"] == PD_KEY


def check_payloads(sinks: Sinks) -> None:
    """What each service receives, field by field."""
    captured = sinks.captured
    slack = [c for c in captured if c["kind"] == "slack"]
    pagerduty = [c for c in captured if c["kind"] == "pagerduty"]
    webhooks = [c for c in captured if c["kind"] == "webhook"]
    mails = [c for c in captured if c["kind"] == "email"]
    assert slack and pagerduty and webhooks and mails

    for c in slack:
        body = c["body"]
        assert body["channel"] == CHANNELS[c["receiver"]]
        att = body["attachments"][0]
        name, service, _ = _headline(att["title"])
        if name == "Watchdog":
            continue
        severity = re.search(r"\*(P\d)\*", att["text"])
        text = att["text"]
        if name.startswith("Delivery"):
            assert severity and severity.group(1) == name[-2:]
            assert "*value* `0.42`" in text
        assert f"{service}: {name} summary" in text
        assert f"`{service}`" in text
        assert f"<https://runbooks.example.com/{name.lower()}|Runbook>" in text
        assert f"<https://grafana.example.com/d/{service}|Dashboard>" in text
        assert att["title_link"] == f"https://grafana.example.com/d/{service}"

    for c in pagerduty:
        body = c["body"]
        assert body["routing_key"] == PD_KEY
        assert body["event_action"] == "trigger"
        d = body["payload"]["custom_details"]
        assert body["payload"]["severity"] == PD_SEVERITY[d["severity"]]
        assert body["payload"]["summary"] == f"{d['severity']} {d['alertname']} on {d['service']}: {d['service']}: {d['alertname']} summary"
        assert body["payload"]["component"] == d["service"] and body["payload"]["class"] == d["alertname"]
        assert body["payload"]["group"] == d["team"]
        assert body["client"] == "monstack"
        assert {"href": f"https://runbooks.example.com/{d['alertname'].lower()}", "text": "Runbook"} in body["links"]
        assert {"href": f"https://grafana.example.com/d/{d['service']}", "text": "Dashboard"} in body["links"]
        assert d["runbook"] == f"https://runbooks.example.com/{d['alertname'].lower()}"
        assert d["value"] == "0.42"
        assert d["summary"] in d["firing"]
    assert {c["body"]["payload"]["severity"] for c in pagerduty} == {"critical"}  # only P0 pages

    for c in webhooks:
        body = c["body"]
        assert body["version"] == "4" and body["status"] == "firing"
        if c["receiver"] == "tickets":
            assert c["headers"]["Authorization"] == f"Bearer {TICKET_TOKEN}"
        else:
            assert "Authorization" not in c["headers"]

    for c in mails:
        assert c["authenticated_as"] == SMTP_USER  # Alertmanager read the password file and the sink accepted it
        assert c["mail_from"] == "alerts@example.com"
        name, service, _ = _headline(c["subject"])
        assert f"{service}: {name} summary" in c["text"]
        assert f"Runbook: https://runbooks.example.com/{name.lower()}" in c["text"]
        assert f'<a href="https://runbooks.example.com/{name.lower()}">Runbook</a>' in c["html"]
        assert f'<a href="https://grafana.example.com/d/{service}">Dashboard</a>' in c["html"]


def test_p3_stays_silent_outside_business_hours(tmp_path: Path, sinks: Sinks) -> None:
    """business-hours defined as 1999: P3 (which notifies only in business hours by default) reaches nobody."""
    am = start(tmp_path, sinks, LONG_PAST)
    try:
        p2 = make("OutsideP2", "P2", "platform", "platform-svc", problem="OutsideP2")
        p3 = make("OutsideP3", "P3", "platform", "platform-svc", problem="OutsideP3")
        p3_team = make("OutsideP3", "P3", "payments", "payments-svc", problem="OutsideP3")
        am.post([p2, p3, p3_team])
        expected = Counter({("slack-engineering", "OutsideP2", "platform-svc", "firing"): 1})
        got = collect(sinks, expected)
        assert got == expected, f"missing: {expected - got}\nunexpected: {got - expected}"
    except BaseException:
        print(am.log())
        raise
    finally:
        am.stop()
