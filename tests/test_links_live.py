"""No dead links in native mode: every page `up` prints, every link a notification carries and every alert's
dashboard_url answers on the running native stack; the runbooks' silence step works there."""
from __future__ import annotations

import re
import time
import uuid
from typing import Iterator

import pytest
import requests
import yaml
from conftest import monstack
from stackutil import CORE, E2E_INVENTORY, ROOT, assert_torn_down, captures, missing, new_stack, stack_pids, wait_for

from generator import names, pipeline
from generator.runner import commands
from generator.runner.native import NativeStack

URL = re.compile(r"https?://127\.0\.0\.1:\d+[^\s)\]>`'\"|]*")

pytestmark = [pytest.mark.integration, pytest.mark.skipif(bool(missing(CORE)), reason=missing(CORE) or "")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    s = new_stack(E2E_INVENTORY, tmp_path_factory.mktemp("links") / ".monstack", sinks=True, first=8200)
    ports = s.planned_ports()
    try:
        commands.up(E2E_INVENTORY, s.state_dir, "native", True, 90, s.port_offset, lambda m: None, lambda m: None)
        yield s
    finally:
        pids = stack_pids(s)
        s.down()
        assert_torn_down(s, ports, pids)


def _answers(url: str) -> int:
    return requests.get(url, timeout=10, allow_redirects=True).status_code


def test_every_page_up_prints_answers_with_200(stack: NativeStack) -> None:
    text = commands.up_text(stack.ui(), stack.urls(pipeline.load_model(E2E_INVENTORY)))
    urls = URL.findall(text)
    assert len(urls) >= 5, text  # Prometheus, its alerts and targets pages, Alertmanager, a graph, the sinks
    dead = {u: code for u in urls if (code := _answers(u)) != 200}
    assert not dead, f"dead links in the `up` output: {dead}\n{text}"


def test_the_printed_alert_and_target_pages_show_alerts_and_targets(stack: NativeStack) -> None:
    ui = stack.ui()
    assert "TargetDown" in requests.get(ui.alerts, timeout=10).text or "HttpErrorRatio" in requests.get(ui.alerts, timeout=10).text
    assert "checkout-api" in requests.get(ui.targets, timeout=10).text


def test_up_says_when_alertmanager_has_no_web_ui_and_that_is_true(stack: NativeStack) -> None:
    ui = stack.ui()
    page = requests.get(ui.alertmanager + "/", timeout=10).text
    has_ui = "script.js" in page
    assert ui.alertmanager_ui == has_ui
    text = commands.up_text(ui, stack.urls())
    assert ("API only" in text) == (not has_ui)


def test_every_alert_s_dashboard_link_answers(stack: NativeStack) -> None:
    found = set()
    for rules in (stack.config_dir / names.RULES_DIR).glob("*.yml"):
        for group in yaml.safe_load(rules.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.add(rule["annotations"]["dashboard_url"])
    assert found
    dead = {u: code for u in found if (code := _answers(u)) != 200}
    assert not dead, dead


def test_notification_links_lead_to_pages_that_exist(stack: NativeStack) -> None:
    t0 = time.time()
    rule = next(r for g in yaml.safe_load((stack.config_dir / names.rules_file("checkout-api")).read_text())["groups"]
                for r in g["rules"] if r.get("alert") == "HttpErrorRatioHigh")
    marker = uuid.uuid4().hex[:8]
    alert = {"labels": {"alertname": "LinkCheck", "severity": "P1", "service": "checkout-api", "team": "web", "problem": marker},
             "annotations": {"summary": f"link check {marker}", "runbook_url": rule["annotations"]["runbook_url"],
                             "dashboard_url": rule["annotations"]["dashboard_url"]}}
    requests.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
    got = wait_for("the Slack and email notifications of the link check", lambda: (
        lambda cs: cs if {c["kind"] for c in cs} >= {"slack", "email"} else None)(
        [c for c in captures(stack, t0) if marker in str(c)]), timeout=30)
    slack = next(c for c in got if c["kind"] == "slack")["body"]["attachments"][0]
    mail = next(c for c in got if c["kind"] == "email")
    links = [slack["title_link"]] + URL.findall(slack["text"]) + URL.findall(mail["text"]) + URL.findall(mail["html"])
    assert slack["title_link"].startswith("http://127.0.0.1:")
    dead = {u: code for u in set(links) if (code := _answers(u.replace("&amp;", "&"))) != 200}
    assert not dead, f"dead links in notifications: {dead}"


def test_the_runbooks_silence_step_works_in_native_mode(stack: NativeStack) -> None:
    page = (ROOT / names.runbook_file("TargetDown")).read_text()
    command = next(line for line in page.splitlines() if line.startswith("monstack silence add"))
    argv = re.findall(r'(?:[^\s"]+="[^"]*"|[^\s"]+)', command)[1:]  # `silence add alertname=... --comment="..."`
    argv = [a.replace('"', "") if a.startswith("--comment=") else a for a in argv]
    r = monstack(*argv, "--state-dir", str(stack.state_dir))
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    silenced = [s for s in requests.get(f"{stack.alertmanager_url}/api/v2/silences", timeout=10).json() if s["id"] == sid]
    assert silenced and silenced[0]["status"]["state"] == "active"
    assert {m["name"]: m["value"] for m in silenced[0]["matchers"]} == {"alertname": "TargetDown", "service": "checkout-api"}
    # A matching alert is kept but muted.
    alert = {"labels": {"alertname": "TargetDown", "service": "checkout-api", "severity": "P0", "team": "web"}}
    requests.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
    state = wait_for("the alert to show as silenced", lambda: [
        a for a in requests.get(f"{stack.alertmanager_url}/api/v2/alerts", params={"filter": 'alertname="TargetDown"'}, timeout=10).json()
        if sid in a["status"]["silencedBy"]], timeout=15)
    assert state[0]["status"]["state"] == "suppressed"
    listed = monstack("silence", "list", "--json", "--state-dir", str(stack.state_dir))
    assert listed.returncode == 0 and sid in listed.stdout
    assert monstack("silence", "expire", sid, "--state-dir", str(stack.state_dir)).returncode == 0
    after = monstack("silence", "list", "--state-dir", str(stack.state_dir))
    assert sid not in after.stdout


def test_explain_links_into_the_running_stack(stack: NativeStack) -> None:
    r = monstack("explain", "checkout-api", "--inventory", str(E2E_INVENTORY), "--state-dir", str(stack.state_dir))
    assert r.returncode == 0, r.stderr
    urls = URL.findall(r.stdout)
    assert urls and all(_answers(u) == 200 for u in urls), r.stdout
    assert "localhost:9090" not in r.stdout and "localhost:3000" not in r.stdout


def test_every_folder_in_the_state_dir_is_in_the_docs_state_table(stack: NativeStack) -> None:
    table = (ROOT / "docs" / "running.md").read_text()
    entries = sorted(p.name for p in stack.state_dir.iterdir())
    assert entries
    undocumented = [e for e in entries if f"| `{e}/" not in table and f"| `{e}`" not in table]
    assert not undocumented, f"docs/running.md's state table does not describe {undocumented}"
