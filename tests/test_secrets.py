"""Secrets come only from files: planted secret strings appear in no rendered file, no log line, no CLI output.

The one place a secret legitimately travels is to the service it authenticates against:
PagerDuty gets its routing key in the payload, a webhook its bearer token, Slack its own
webhook URL, the SMTP server the password. The sinks stand in for those and see exactly that.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from amrunner import Alertmanager, alert, free_port, now
from conftest import monstack
from generator import names, pipeline
from generator.sinks import Sinks
from generator.topology import COMPOSE, native

INVENTORY = """\
version: 1
stack:
  name: secrets
  remote_write:
    - {{name: victoria, url: "http://victoria-metrics:8428/api/v1/write", basic_auth: {{username: writer, password_file: secrets/remote_write_password}}}}
receivers:
  pagerduty-oncall: {{type: pagerduty, routing_key_file: secrets/pagerduty_routing_key, url: "http://127.0.0.1:{http}/pagerduty/pagerduty-oncall/v2/enqueue"}}
  slack-alerts: {{type: slack, webhook_url_file: secrets/slack_webhook_url, channel: "#alerts"}}
  slack-broken: {{type: slack, webhook_url_file: secrets/slack_broken_url, channel: "#broken"}}
  email-oncall:
    {{type: email, to: [oncall@example.com], from: alerts@example.com, smarthost: "127.0.0.1:{smtp}", require_tls: false,
     auth_username: alerts@example.com, auth_password_file: secrets/smtp_password}}
  tickets: {{type: webhook, url: "http://127.0.0.1:{http}/webhook/tickets", bearer_token_file: secrets/ticket_token}}
severities:
  P0: {{receivers: [pagerduty-oncall, slack-alerts], group_wait: 1s, group_interval: 1s}}
  P1: {{receivers: [slack-alerts, email-oncall], group_wait: 1s, group_interval: 1s}}
  P2: {{receivers: [slack-alerts], group_wait: 1s, group_interval: 1s}}
  P3: {{receivers: [tickets], group_wait: 1s, group_interval: 1s, active_time_intervals: []}}
teams:
  web: {{}}
  broken: {{receivers: {{P2: [slack-broken]}}}}
services:
  - name: api
    team: web
    kind: http
    scrape:
      targets: ["127.0.0.1:9"]
      basic_auth: {{username: scraper, password_file: secrets/scrape_password}}
    health: [{{url: "http://127.0.0.1:9/health"}}]
"""
SECRET_FILES = ("pagerduty_routing_key", "slack_webhook_url", "slack_broken_url", "smtp_password", "ticket_token",
                "remote_write_password", "scrape_password")


class Planted:
    """An inventory folder whose secret files hold unique strings; `values` are what must never leak."""

    def __init__(self, root: Path, http_port: int, smtp_port: int, closed_port: int) -> None:
        self.root = root
        self.http_port, self.smtp_port = http_port, smtp_port
        self.token = {name: f"planted-{name}-{uuid.uuid4().hex}" for name in SECRET_FILES}
        # Slack's webhook URL is the secret: the sink's address with a secret path (or a closed port).
        self.content = dict(self.token)
        self.content["slack_webhook_url"] = f"http://127.0.0.1:{http_port}/slack/{self.token['slack_webhook_url']}"
        self.content["slack_broken_url"] = f"http://127.0.0.1:{closed_port}/slack/{self.token['slack_broken_url']}"
        (root / "secrets").mkdir(parents=True)
        for name, value in self.content.items():
            # Written as `echo` would, with a newline, except the SMTP password: Alertmanager 0.25 trims
            # the other files but sends auth_password_file's content verbatim.
            (root / "secrets" / name).write_text(value if name == "smtp_password" else value + "\n")
        self.inventory = root / "services.yaml"
        self.inventory.write_text(INVENTORY.format(http=http_port, smtp=smtp_port))

    @property
    def values(self) -> list[str]:
        return list(self.token.values())

    def leaks(self, text: str) -> list[str]:
        return [name for name, token in self.token.items() if token in text]


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    return Planted(tmp_path / "inventory", http_port=free_port(), smtp_port=free_port(), closed_port=free_port())


@pytest.mark.integration
def test_rendered_files_reference_secret_files_and_never_hold_secrets(planted: Planted) -> None:
    model = pipeline.load_model(planted.inventory)
    assert {f"secrets/{n}" for n in SECRET_FILES} == set(model.secret_files)
    topologies = {
        "compose": COMPOSE,
        "native": native(str(planted.root)),
        "native with sinks": native(str(planted.root), sink_http="127.0.0.1:1", sink_smtp="127.0.0.1:2"),
    }
    for label, topo in topologies.items():
        files = pipeline.build(planted.inventory, topo).files
        for path, data in files.items():
            assert not planted.leaks(data.decode()), f"{label}: {path} holds {planted.leaks(data.decode())}"
        am = files[names.ALERTMANAGER_CONFIG].decode()
        for key in ("routing_key_file", "auth_password_file", "credentials_file"):
            assert key in am, f"{label}: {key} missing"
        if not topo.sink_http:
            assert "api_url_file" in am
        assert topo.secret("secrets/pagerduty_routing_key") in am


@pytest.mark.integration
def test_cli_output_never_holds_secrets(planted: Planted, tmp_path: Path) -> None:
    runs = [
        monstack("render", "--inventory", str(planted.inventory), "--out", str(tmp_path / "out")),
        monstack("validate", "--inventory", str(planted.inventory)),
        monstack("explain", "--inventory", str(planted.inventory)),
        monstack("check", "--inventory", str(planted.inventory), "--out", str(tmp_path / "out")),
    ]
    for proc in runs:
        assert proc.returncode == 0, proc.args[3:] + [proc.stdout, proc.stderr]
        assert not planted.leaks(proc.stdout + proc.stderr), proc.args
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert not planted.leaks(path.read_text(errors="replace")), path


@pytest.mark.integration
def test_alertmanager_reads_secret_files_and_never_logs_them(planted: Planted, tmp_path: Path) -> None:
    """No sink rewriting: the receivers reach the sinks exactly as the inventory says, secrets read from files."""
    with Sinks(http_port=planted.http_port, smtp_port=planted.smtp_port, smtp_username="alerts@example.com",
               smtp_password=planted.token["smtp_password"]) as sinks:
        out = tmp_path / "out"
        pipeline.render(planted.inventory, out, native(str(planted.root)))
        am = Alertmanager(out / names.ALERTMANAGER_CONFIG, tmp_path, log_level="debug").start()
        try:
            am.post([alert({"alertname": f"Secret{lv}", "severity": lv, "team": "web", "service": "api", "problem": f"Secret{lv}"},
                           {"summary": f"secret test {lv}"}, starts=now()) for lv in names.LEVELS]
                    + [alert({"alertname": "Unreachable", "severity": "P2", "team": "broken", "service": "api"}, starts=now())])
            # P0: pagerduty + slack, P1: slack + email, P2: slack, P3: webhook.
            sinks.wait_for(count=6, timeout=20)
            deadline = time.monotonic() + 20
            while "receiver=slack-broken" not in am.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            status = requests.get(f"{am.url}/api/v2/status", timeout=5).json()
        finally:
            am.stop()
        log = am.log()
        assert "receiver=slack-broken" in log and "Notify attempt failed" in log  # the failure path was logged
        assert "level=debug" in log
        assert not planted.leaks(log), f"Alertmanager logged {planted.leaks(log)}"
        assert not planted.leaks(status["config"]["original"]), "Alertmanager's API shows a secret"

        captured = sinks.captured
        pd = [c for c in captured if c["kind"] == "pagerduty"]
        assert pd and all(c["body"]["routing_key"] == planted.token["pagerduty_routing_key"] for c in pd)
        slack = [c for c in captured if c["kind"] == "slack"]
        assert slack and all(c["receiver"] == planted.token["slack_webhook_url"] for c in slack)
        hooks = [c for c in captured if c["kind"] == "webhook"]
        assert hooks and all(c["headers"]["Authorization"] == f"Bearer {planted.token['ticket_token']}" for c in hooks)
        mails = [c for c in captured if c["kind"] == "email"]
        assert mails and all(c["authenticated_as"] == "alerts@example.com" for c in mails)
        # The sinks keep nothing else secret: the SMTP password never reaches a capture.
        assert planted.token["smtp_password"] not in repr(captured)
