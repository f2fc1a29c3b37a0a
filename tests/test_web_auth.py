"""stack.web_auth: basic auth in front of Prometheus, Alertmanager and VictoriaMetrics, against the real binaries the
native runner starts. A foreign web page (Origin: http://evil.example) can no longer silence alerts or post them, nor
read series; every client of the stack still authenticates: Prometheus' scrapes, alerting and remote write, the
runner's readiness checks, `status`, `silence` and `test-alerts`, and an alert still reaches a receiver end to end.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml
from faultutil import control, inventory
from stackutil import CORE, ROOT, captures, missing, new_stack, wait_for

from generator import names, pipeline, testalerts
from generator.runner.native import NativeStack

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"
VM = "victoria-metrics"
USER = "monstack"
WITH_AUTH = {"stack": {"remote_write": [{"name": VM, "url": f"http://{VM}:8428/api/v1/write"}],
                       "web_auth": {"username": USER, "password_file": "secrets/web_password"}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[NativeStack]:
    if reason := missing(CORE + [VM]):
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("webauth")
    s = new_stack(inventory(folder, WITH_AUTH), folder / "state", first=3500)
    try:
        s.up(timeout=120)
        yield s
    finally:
        s.down(quiet=True)


def _password(stack: NativeStack) -> str:
    return (stack.inventory.parent / "secrets" / "web_password").read_text().strip()


def _creds(stack: NativeStack) -> tuple[str, str]:
    return USER, _password(stack)


def _silence() -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {"matchers": [{"name": "alertname", "value": "Anything", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
            "createdBy": "evil", "comment": "from a web page"}


def _alert() -> list[dict]:
    return [{"labels": {"alertname": "FromAWebPage", names.SEVERITY: "P0", names.SERVICE: "checkout-api"}}]


def test_alertmanager_refuses_a_web_page_without_credentials(stack: NativeStack) -> None:
    am = stack.alertmanager_url
    for path, body in (("/api/v2/silences", _silence()), ("/api/v2/alerts", _alert())):
        # The preflight of a JSON POST: refused before any CORS grant.
        pre = requests.options(am + path, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "content-type"}, timeout=5)
        assert pre.status_code == 401, (path, pre.status_code, dict(pre.headers))
        assert pre.headers.get("Access-Control-Allow-Origin") not in ("*", EVIL)
        # A simple request (no preflight: a form POST) is refused by the server itself.
        r = requests.post(am + path, json=body, headers={"Origin": EVIL}, timeout=5)
        assert r.status_code == 401, (path, r.status_code, r.text)
        wrong = requests.post(am + path, json=body, auth=(USER, "guess"), timeout=5)
        assert wrong.status_code == 401, (path, wrong.status_code)
    listed = requests.get(am + "/api/v2/silences", auth=_creds(stack), timeout=5).json()
    assert not [s for s in listed if s.get("createdBy") == "evil"], "no silence was created"
    # With the credentials the same requests work.
    ok = requests.post(am + "/api/v2/silences", json={**_silence(), "createdBy": "test"}, auth=_creds(stack), timeout=5)
    assert ok.status_code == 200, ok.text
    requests.delete(f"{am}/api/v2/silence/{ok.json()['silenceID']}", auth=_creds(stack), timeout=5).raise_for_status()
    assert requests.post(am + "/api/v2/alerts", json=[{"labels": {"alertname": "AuthProbe", names.SEVERITY: "P3"}}],
                         auth=_creds(stack), timeout=5).status_code == 200


def test_prometheus_and_victoria_metrics_need_credentials(stack: NativeStack) -> None:
    prom, vm = stack.prometheus_url, stack.component_url(VM)
    for url in (f"{prom}/api/v1/query", f"{prom}/-/ready", f"{vm}/api/v1/query", f"{vm}/prometheus/api/v1/query"):
        r = requests.get(url, params={"query": "up"}, headers={"Origin": EVIL}, timeout=5)
        assert r.status_code == 401, (url, r.status_code)
        assert requests.get(url, params={"query": "up"}, auth=_creds(stack), timeout=5).ok, url


def test_the_stack_scrapes_itself_alerts_and_writes_with_the_password(stack: NativeStack) -> None:
    prom = stack.prometheus_url
    jobs = {names.SELF_PROMETHEUS_JOB, names.SELF_ALERTMANAGER_JOB, names.SELF_VICTORIA_METRICS_JOB}

    def self_targets() -> dict[str, str]:
        active = requests.get(f"{prom}/api/v1/targets", auth=_creds(stack), timeout=5).json()["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active if t["labels"]["job"] in jobs}

    wait_for("the self-scrapes up", lambda: (t := self_targets()) and set(t) == jobs and set(t.values()) == {"up"}, timeout=30)
    am = requests.get(f"{prom}/api/v1/alertmanagers", auth=_creds(stack), timeout=5).json()["data"]["activeAlertmanagers"]
    assert [a["url"] for a in am] == [f"{stack.alertmanager_url}/api/v2/alerts"]
    wait_for("remote write into VictoriaMetrics", lambda: requests.get(
        f"{stack.component_url(VM)}/api/v1/query", params={"query": 'up{job="prometheus"}'}, auth=_creds(stack),
        timeout=5).json()["data"]["result"], timeout=30)
    failed = requests.get(f"{prom}/api/v1/query", params={"query": "prometheus_notifications_errors_total"},
                          auth=_creds(stack), timeout=5).json()["data"]["result"]
    assert all(float(s["value"][1]) == 0 for s in failed), failed


def test_a_real_alert_reaches_its_receivers_through_authenticated_alerting(stack: NativeStack) -> None:
    """The fault drives a real alert: Prometheus evaluates it, sends it to Alertmanager with the password, the sink gets it."""
    model = pipeline.load_model(stack.inventory)
    since = __import__("time").time()
    try:
        res = testalerts.run_fault(model, stack.urls(), stack.component_url, None, timeout=60,
                                   control_headers=stack.control_headers())
    finally:
        control(stack, None)
    assert res.level == "P0" and set(res.notified) == {"pagerduty-oncall", "slack-incidents"}, res
    # Email captures (SMTP) name no receiver.
    assert [c for c in captures(stack, since) if c.get("receiver") == "pagerduty-oncall"]


def test_the_cli_talks_to_the_stack_with_the_recorded_credentials(stack: NativeStack) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "generator.cli", *args, "--state-dir", str(stack.state_dir)],
                              capture_output=True, text=True, env=env, timeout=120)

    added = cli("silence", "add", "alertname=CliProbe", "--duration", "10m", "--comment", "web auth")
    assert added.returncode == 0, added.stdout + added.stderr
    listed = cli("silence", "list")
    assert listed.returncode == 0 and "CliProbe" in listed.stdout, listed.stdout + listed.stderr
    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    st = yaml.safe_load(status.stdout)
    assert not st["error"] and st["targets"], st["error"]
    assert all(p["ready"] for p in st["components"]), st["components"]
    sent = cli("test-alerts", "--timeout", "30")
    assert sent.returncode == 0, sent.stdout + sent.stderr


def test_the_password_is_in_no_argv_rendered_file_log_or_state(stack: NativeStack) -> None:
    password = _password(stack)
    assert len(password) >= 24
    for name, p in stack._recorded().items():
        assert password not in Path(f"/proc/{p.pid}/cmdline").read_bytes().decode(errors="replace"), name
    for folder in (stack.config_dir, stack.logs_dir, stack.run_dir):
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), path
    web_config = stack.state_dir / "secrets" / "web_config.yml"
    assert os.stat(web_config).st_mode & 0o077 == 0
    assert password not in web_config.read_text() and "$2b$" in web_config.read_text()
    argv = " ".join(stack._recorded()["alertmanager"].argv)
    assert f"--web.config.file={web_config}" in argv


def test_a_new_password_reaches_every_server_and_client_at_the_next_up(stack: NativeStack) -> None:
    """Last: it changes the password. Prometheus and Alertmanager re-read the web config (its hash rewritten),
    VictoriaMetrics restarts with the new password in its environment, and the clients read the file again."""
    secret = stack.inventory.parent / "secrets" / "web_password"
    old = _password(stack)
    vm_pid = stack._recorded()[VM].pid
    secret.write_text("a-new-password-for-the-stack-42\n")
    stack.up(timeout=120)
    new = _creds(stack)
    assert stack._recorded()[VM].pid != vm_pid, "VictoriaMetrics restarted with the new password"
    for url in (f"{stack.prometheus_url}/api/v1/query", f"{stack.alertmanager_url}/api/v2/status",
                f"{stack.component_url(VM)}/api/v1/query"):
        assert requests.get(url, params={"query": "up"}, auth=(USER, old), timeout=5).status_code == 401, url
        assert requests.get(url, params={"query": "up"}, auth=new, timeout=5).ok, url
    query = f'up{{job=~"{names.SELF_ALERTMANAGER_JOB}|{names.SELF_VICTORIA_METRICS_JOB}"}} == 1'
    wait_for("the self-scrapes up with the new password", lambda: len(requests.get(
        f"{stack.prometheus_url}/api/v1/query", params={"query": query}, auth=new, timeout=5).json()["data"]["result"]) == 2,
        timeout=30)
