"""alertmanager.yml and its templates: accepted by amtool, within Alertmanager 0.25's features, policy-shaped.

amtool (Debian's 0.25) is the judge of syntax and templates; the structure tests pin the
decisions the delivery tests (test_delivery.py) prove against a running Alertmanager.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import INVENTORIES, ROOT
from generator import checks, defaults, names, pipeline
from generator.durations import parse_duration
from generator.errors import InventoryError
from generator.render import alertmanager as am
from generator.topology import COMPOSE, native

AMTOOL = checks.tool("amtool")
EXAMPLES = sorted(ROOT.glob("examples/*/services.yaml"))
ALL_INVENTORIES = [ROOT / "services.yaml", *EXAMPLES, *sorted((INVENTORIES / "good").glob("*.yaml"))]
CLASSIC_MATCHER = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"[^"\\]*"$')

BASE = """\
version: 1
receivers:
  pager: {type: pagerduty, routing_key_file: secrets/pd}
  chat: {type: slack, webhook_url_file: secrets/slack, channel: "#alerts"}
  chat-team: {type: slack, webhook_url_file: secrets/slack_team, channel: "#team"}
  tickets: {type: webhook, url: "http://tickets:8080/hook"}
severities:
  P0: {receivers: [pager, chat]}
  P1: {receivers: [chat]}
  P2: {receivers: [chat]}
  P3: {receivers: [tickets]}
teams:
  web: {}
services:
  - {name: api, team: web, kind: probe, health: [{url: "http://api:3000/health"}]}
"""


def inventory(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


def with_lines(text: str, after: str, *lines: str) -> str:
    """Insert lines after the line starting with `after` (test inventories are built from BASE)."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if line.startswith(after):
            out.extend(lines)
    assert len(out) == len(text.splitlines()) + len(lines), after
    return "\n".join(out) + "\n"


def config_of(path: Path, topo=COMPOSE) -> dict[str, Any]:
    return am.config(pipeline.load_model(path), topo)


def walk(route: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, route
    for child in route.get("routes", []):
        yield from walk(child, depth + 1)


def amtool_check(tmp_path: Path, files: dict[str, bytes]) -> subprocess.CompletedProcess[str]:
    for path, data in files.items():
        if path.startswith("alertmanager/"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_bytes(data)
    return subprocess.run([AMTOOL, "check-config", str(tmp_path / names.ALERTMANAGER_CONFIG)], capture_output=True, text=True)


# --- amtool accepts what every inventory renders ----------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("inv", ALL_INVENTORIES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("topology", ["compose", "native"])
def test_amtool_accepts_the_config_of_every_inventory(inv: Path, topology: str, tmp_path: Path) -> None:
    topo = COMPOSE if topology == "compose" else native(str(inv.parent))
    proc = amtool_check(tmp_path, pipeline.build(inv, topo).files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("inv", ALL_INVENTORIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_stays_within_what_alertmanager_0_25_knows(inv: Path) -> None:
    cfg = config_of(inv, native(str(inv.parent), sink_http="127.0.0.1:1", sink_smtp="127.0.0.1:2"))
    text = json.dumps(cfg)
    assert "url_file" not in text.replace("api_url_file", "")  # webhook url_file arrived after 0.25
    matchers = [m for _, r in walk(cfg["route"]) for m in r.get("matchers", [])]
    matchers += [m for rule in cfg["inhibit_rules"] for key in ("source_matchers", "target_matchers") for m in rule[key]]
    assert matchers
    for m in matchers:
        assert CLASSIC_MATCHER.match(m), f"not a classic matcher: {m}"
    assert not any(k in text for k in ('"match":', '"match_re":', '"source_match"', '"target_match"'))  # deprecated forms


def test_rendering_is_deterministic() -> None:
    inv = ROOT / "services.yaml"
    assert pipeline.build(inv).files == pipeline.build(inv).files


# --- route tree -----------------------------------------------------------------------


def test_level_routes_fan_out_in_policy_order_and_every_leaf_carries_its_windows(tmp_path: Path) -> None:
    text = with_lines(BASE, "teams:", "  quiet: {mute_time_intervals: [freeze]}")
    text = with_lines(text, "teams:", "  payments: {receivers: {P0: [pager, chat-team]}}")
    text = text.replace("P0: {receivers: [pager, chat]}", "P0: {receivers: [pager, chat], mute_time_intervals: [nights]}")
    text += ("time_intervals:\n  freeze: [{months: [december]}]\n  nights: [{times: [{start_time: '00:00', end_time: '06:00'}]}]\n"
             "  upkeep: [{weekdays: [sunday]}]\nmute_time_intervals: [upkeep]\n")
    cfg = config_of(inventory(tmp_path, text))
    routes = cfg["route"]["routes"]
    assert routes[0]["matchers"] == ['alertname="Watchdog"']
    team_nodes = {r["matchers"][0]: r for r in routes if r["matchers"][0].startswith("team=")}
    assert set(team_nodes) == {'team="quiet"', 'team="payments"'}  # web follows the policy: no sub-tree
    level_nodes = [r for r in routes if r["matchers"][0].startswith("severity=")]
    assert [r["matchers"] for r in level_nodes] == [[f'severity="{lv}"'] for lv in names.LEVELS]

    def leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
        return node["routes"]

    p0 = leaves(level_nodes[0])
    assert [leaf["receiver"] for leaf in p0] == ["pager", "chat"]
    assert [leaf.get("continue", False) for leaf in p0] == [True, False]
    # Alertmanager does not inherit time intervals from a parent route: every leaf has them. A window named
    # without levels (the global upkeep, the quiet team's freeze) mutes P1-P3 only; P0's own nights mute P0.
    assert all(leaf["mute_time_intervals"] == ["nights"] for leaf in p0)
    assert all(leaf["mute_time_intervals"] == ["upkeep"] for leaf in leaves(level_nodes[1]))
    assert all("mute_time_intervals" not in node for node in level_nodes)
    quiet_p0 = leaves(team_nodes['team="quiet"']["routes"][0])
    assert all(leaf["mute_time_intervals"] == ["nights"] for leaf in quiet_p0)
    quiet_p1 = leaves(team_nodes['team="quiet"']["routes"][1])
    assert all(leaf["mute_time_intervals"] == ["upkeep", "freeze"] for leaf in quiet_p1)
    payments_p0 = leaves(team_nodes['team="payments"']["routes"][0])
    assert [leaf["receiver"] for leaf in payments_p0] == ["pager", "chat-team"]
    assert team_nodes['team="payments"']["receiver"] == cfg["route"]["receiver"]  # unknown severity: catch-all
    p3 = leaves(level_nodes[3])
    assert p3 == [{"receiver": "tickets", "mute_time_intervals": ["upkeep"], "active_time_intervals": [names.BUSINESS_HOURS]}]


def test_level_timing_and_grouping(tmp_path: Path) -> None:
    text = BASE.replace("P2: {receivers: [chat]}", "P2: {receivers: [chat], group_by: [alertname, service, instance], repeat_interval: 8h}")
    cfg = config_of(inventory(tmp_path, text))
    nodes = {r["matchers"][0]: r for r in cfg["route"]["routes"]}
    assert cfg["route"]["group_by"] == list(defaults.GROUP_BY)
    for lv in names.LEVELS:
        node = nodes[f'severity="{lv}"']
        for key, default in defaults.LEVEL_TIMING[lv].items():
            want = "8h" if (lv, key) == ("P2", "repeat_interval") else default
            assert parse_duration(node[key]) == parse_duration(want), (lv, key)
        assert ("group_by" in node) == (lv == "P2")
    assert nodes['severity="P2"']["group_by"] == ["alertname", "service", "instance"]
    assert nodes['severity="P2"']["repeat_interval"] == "8h"


def test_watchdog_has_its_own_cadence_and_is_never_muted(tmp_path: Path) -> None:
    text = BASE + "watchdog: {receiver: tickets, repeat_interval: 2m}\ntime_intervals: {upkeep: [{weekdays: [sunday]}]}\nmute_time_intervals: [upkeep]\n"
    route = config_of(inventory(tmp_path, text))["route"]["routes"][0]
    assert route == {"receiver": "tickets", "matchers": ['alertname="Watchdog"'], "group_wait": "0s",
                     "group_interval": "1m", "repeat_interval": "2m"}


def test_without_a_heartbeat_receiver_the_watchdog_is_swallowed(tmp_path: Path) -> None:
    cfg = config_of(inventory(tmp_path))
    assert cfg["route"]["routes"][0]["receiver"] == names.NULL_RECEIVER
    assert {"name": names.NULL_RECEIVER} in cfg["receivers"]


# --- P3 business hours ---------------------------------------------------------------


def test_p3_defaults_to_built_in_business_hours_in_the_stack_time_zone(tmp_path: Path) -> None:
    text = BASE.replace("version: 1\n", "version: 1\nstack: {timezone: America/New_York}\n")
    cfg = config_of(inventory(tmp_path, text))
    assert cfg["time_intervals"] == [{"name": names.BUSINESS_HOURS, "time_intervals": [
        {"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"], "location": "America/New_York"}]}]
    p3 = next(r for r in cfg["route"]["routes"] if r["matchers"] == ['severity="P3"'])
    assert p3["routes"][0]["active_time_intervals"] == [names.BUSINESS_HOURS]
    others = [r for r in cfg["route"]["routes"] if r["matchers"][0].startswith("severity=") and r is not p3]
    assert all("active_time_intervals" not in leaf for r in others for leaf in r["routes"])


def test_an_inventory_business_hours_interval_replaces_the_built_in(tmp_path: Path) -> None:
    text = BASE + "time_intervals:\n  business-hours: [{weekdays: ['monday:thursday'], location: Europe/Berlin}]\n"
    cfg = config_of(inventory(tmp_path, text))
    assert cfg["time_intervals"] == [{"name": "business-hours", "time_intervals": [{"weekdays": ["monday:thursday"], "location": "Europe/Berlin"}]}]


def test_empty_active_time_intervals_means_always(tmp_path: Path) -> None:
    text = BASE.replace("P3: {receivers: [tickets]}", "P3: {receivers: [tickets], active_time_intervals: []}")
    cfg = config_of(inventory(tmp_path, text))
    assert "time_intervals" not in cfg
    assert not any("active_time_intervals" in r for _, r in walk(cfg["route"]))


def test_a_receiver_listed_twice_is_an_inventory_error(tmp_path: Path) -> None:
    text = BASE.replace("P1: {receivers: [chat]}", "P1: {receivers: [chat, chat]}")
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inventory(tmp_path, text))
    assert "severities.P1.receivers[1]: receiver 'chat' is listed twice" in str(err.value.problems[0])


@pytest.mark.parametrize("spec, ok", [
    ('weekdays: ["sunday:saturday"]', True), ('weekdays: ["monday:sunday"]', False), ('weekdays: ["saturday:monday"]', False),
    ('months: ["march:december"]', True), ('months: ["december:january"]', False), ('months: ["11:2"]', False),
    ('days_of_month: ["1:-1"]', True), ('days_of_month: ["-7:-1"]', True), ('days_of_month: ["-1:1"]', False),
    ('days_of_month: ["25:3"]', False), ('years: ["2027:2026"]', False),
    ('times: [{start_time: "09:00", end_time: "17:00"}]', True), ('times: [{start_time: "17:00", end_time: "09:00"}]', False),
    ('times: [{start_time: "10:00", end_time: "10:00"}]', False), ('times: [{start_time: "22:00", end_time: "24:00"}]', True),
])
@pytest.mark.integration
def test_the_schema_accepts_exactly_the_time_ranges_amtool_accepts(spec: str, ok: bool, tmp_path: Path) -> None:
    text = BASE.replace("P3: {receivers: [tickets]}", "P3: {receivers: [tickets], active_time_intervals: [window]}")
    text += f"time_intervals:\n  window: [{{{spec}}}]\n"
    raw = {"route": {"receiver": "x"}, "receivers": [{"name": "x"}],
           "time_intervals": [{"name": "w", "time_intervals": [yaml.safe_load("{" + spec + "}")]}]}
    (tmp_path / "raw.yml").write_text(yaml.safe_dump(raw))
    amtool_ok = subprocess.run([AMTOOL, "check-config", str(tmp_path / "raw.yml")], capture_output=True).returncode == 0
    assert amtool_ok == ok
    if ok:
        pipeline.load_model(inventory(tmp_path, text))
    else:
        with pytest.raises(InventoryError):
            pipeline.load_model(inventory(tmp_path, text))


# --- inhibition -----------------------------------------------------------------------


def test_inhibition_sources_must_carry_the_labels_they_are_compared_on() -> None:
    rules = am.inhibit_rules()
    instance, service, *levels = rules
    assert instance["equal"] == [names.SERVICE, "instance"] and service["equal"] == [names.SERVICE]
    for r in (instance, service):
        assert 'service=~".+"' in r["source_matchers"]
    assert 'instance=~".+"' in instance["source_matchers"]
    assert [r["source_matchers"][0] for r in levels] == ['severity="P0"', 'severity="P1"', 'severity="P2"']
    assert [r["target_matchers"] for r in levels] == [['severity=~"P1|P2|P3"'], ['severity=~"P2|P3"'], ['severity=~"P3"']]
    for r in levels:
        assert r["equal"] == [names.SERVICE, names.PROBLEM]
        assert {'service=~".+"', 'problem=~".+"'} <= set(r["source_matchers"])


# --- receivers and templates ------------------------------------------------------------


def test_receivers_read_every_secret_from_a_file(tmp_path: Path) -> None:
    text = BASE.replace("tickets: {type: webhook, url: \"http://tickets:8080/hook\"}",
                        "tickets: {type: webhook, url: \"http://tickets:8080/hook\", bearer_token_file: secrets/token}\n"
                        "  mail: {type: email, to: [a@example.com], from: b@example.com, smarthost: \"smtp:587\", "
                        "auth_username: b@example.com, auth_password_file: secrets/smtp}")
    by_name = {r["name"]: r for r in config_of(inventory(tmp_path, text))["receivers"]}
    assert by_name["pager"]["pagerduty_configs"][0]["routing_key_file"] == "/run/secrets/secrets_pd"
    assert by_name["chat"]["slack_configs"][0]["api_url_file"] == "/run/secrets/secrets_slack"
    assert by_name["mail"]["email_configs"][0]["auth_password_file"] == "/run/secrets/secrets_smtp"
    assert by_name["tickets"]["webhook_configs"][0]["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": "/run/secrets/secrets_token"}}
    mail = by_name["mail"]["email_configs"][0]
    assert mail["require_tls"] is True and "html" in mail and "text" in mail
    slack = by_name["chat"]["slack_configs"][0]
    assert slack["channel"] == "#alerts" and slack["send_resolved"] is True


def _render_template(tmp_path: Path, name: str, data: dict[str, Any], kind: str = "text") -> str:
    tdir = tmp_path / "templates"
    tdir.mkdir(exist_ok=True)
    files = pipeline.build(inventory(tmp_path)).files  # the template exactly as written, header included
    for path, body in files.items():
        if path.startswith(names.ALERTMANAGER_TEMPLATES_DIR + "/"):
            (tdir / path.rsplit("/", 1)[-1]).write_bytes(body)
    (tmp_path / "data.json").write_text(json.dumps(data))
    proc = subprocess.run([AMTOOL, "template", "render", f"--template.glob={tdir}/*.tmpl", f"--template.data={tmp_path / 'data.json'}",
                           f"--template.type={kind}", f'--template.text={{{{ template "{name}" . }}}}'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _data(severity: str | None, status: str = "firing", **annotations: str) -> dict[str, Any]:
    labels = {"alertname": "HttpErrorRatioHigh", "service": "checkout-api", "team": "payments", "instance": "10.0.0.1:3000"}
    if severity:
        labels["severity"] = severity
    a = {"status": status, "labels": labels, "annotations": annotations, "startsAt": "2026-01-05T10:00:00Z",
         "endsAt": "2026-01-05T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f"}
    common = {k: v for k, v in labels.items() if k != "instance"}
    return {"receiver": "slack-alerts", "status": status, "alerts": [a], "groupLabels": {}, "commonLabels": common,
            "commonAnnotations": annotations, "externalURL": "http://am.example.com:9093"}


@pytest.mark.integration
@pytest.mark.parametrize("severity, expected", [*am.PAGERDUTY_SEVERITY.items(), (None, "info"), ("P9", "info")])
def test_pagerduty_severity_follows_the_mapping(severity: str | None, expected: str, tmp_path: Path) -> None:
    assert _render_template(tmp_path, "monstack.pagerduty.severity", _data(severity)) == expected


@pytest.mark.integration
def test_messages_carry_severity_service_summary_value_and_links(tmp_path: Path) -> None:
    ann = {"summary": "checkout-api: 2% of requests fail", "description": "More than 1% fail.", "value": "0.02",
           "runbook_url": "https://runbooks.example.com/httperrorratiohigh", "dashboard_url": "https://grafana.example.com/d/x"}
    data = _data("P1", **ann)
    assert _render_template(tmp_path, "monstack.slack.title", data) == "[FIRING:1] P1 HttpErrorRatioHigh on checkout-api"
    text = _render_template(tmp_path, "monstack.slack.text", data)
    for part in ("*P1*", ann["summary"], "`checkout-api`", "*value* `0.02`", f"<{ann['runbook_url']}|Runbook>",
                 f"<{ann['dashboard_url']}|Dashboard>", "`10.0.0.1:3000`"):
        assert part in text
    html = _render_template(tmp_path, "monstack.email.html", _data("P1", **dict(ann, summary="<b>x</b> & y")), "html")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html  # html/template escapes annotation text
    assert f'<a href="{ann["runbook_url"]}">Runbook</a>' in html
    resolved = _data("P1", status="resolved", **ann)
    assert _render_template(tmp_path, "monstack.email.subject", resolved) == "[RESOLVED] P1 HttpErrorRatioHigh on checkout-api"
    assert "resolved: 2026-01-05 10:05:00 UTC" in _render_template(tmp_path, "monstack.email.text", resolved)


@pytest.mark.integration
def test_links_fall_back_to_alertmanager_when_an_alert_has_none(tmp_path: Path) -> None:
    data = _data("P0", runbook_url="docs/runbooks/x.md")  # a repository path, not a URL
    assert _render_template(tmp_path, "monstack.runbook.href", data) == "http://am.example.com:9093/#/alerts?receiver=slack-alerts"
    assert _render_template(tmp_path, "monstack.runbook.text", data) == "Alertmanager"
    assert _render_template(tmp_path, "monstack.pagerduty.description", _data(None)) == "HttpErrorRatioHigh on checkout-api: HttpErrorRatioHigh"
