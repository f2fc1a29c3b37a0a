"""Local notification sinks (generator.sinks): HTTP, SMTP, combined and CLI, all on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from generator.sinks import HttpSink, Sinks, SmtpSink

REPO = Path(__file__).resolve().parents[1]
USER = "alertmanager"
PASSWORD = "Sup3r-s3cret-Pa55word"


def email_message(subject: str = "[FIRING:1] HighErrorRate demo-web") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "alertmanager@monstack.local"
    msg["To"] = "oncall@example.org"
    msg.set_content("Alert: HighErrorRate\nSeverity: critical\n")
    msg.add_alternative("<html><body><h1>HighErrorRate</h1></body></html>", subtype="html")
    return msg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_sink():
    with HttpSink() as sink:
        yield sink


# --------------------------------------------------------------------------
# HTTP sink
# --------------------------------------------------------------------------


@pytest.mark.integration
def test_slack_capture(http_sink):
    payload = {"channel": "#alerts", "username": "Alertmanager",
               "attachments": [{"title": "[FIRING:1] HighErrorRate", "color": "danger"}]}
    r = requests.post(f"{http_sink.url}/slack/team-web", json=payload, timeout=5)
    assert r.status_code == 200 and r.text == "ok"
    [cap] = http_sink.captured
    assert cap["kind"] == "slack" and cap["receiver"] == "team-web"
    assert cap["path"] == "/slack/team-web"
    assert cap["body"] == payload
    assert cap["headers"]["Content-Type"] == "application/json"
    assert isinstance(cap["time"], float) and abs(cap["time"] - time.time()) < 60
    assert http_sink.slack_url("team-web") == f"{http_sink.url}/slack/team-web"
    assert http_sink.url == f"http://127.0.0.1:{http_sink.port}" and http_sink.port > 0


@pytest.mark.integration
def test_pagerduty_capture(http_sink):
    event = {"routing_key": "0123456789abcdef", "event_action": "trigger",
             "dedup_key": "group-key-1",
             "payload": {"summary": "HighErrorRate", "severity": "critical", "source": "demo"}}
    r = requests.post(http_sink.pagerduty_url("oncall"), json=event, timeout=5)
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed",
                        "dedup_key": "group-key-1"}
    r2 = requests.post(http_sink.pagerduty_url("oncall"),
                       json={"routing_key": "k", "event_action": "trigger"}, timeout=5)
    assert r2.status_code == 202 and r2.json()["dedup_key"]  # generated when absent
    caps = http_sink.wait_for(kind="pagerduty", receiver="oncall", count=2, timeout=2)
    assert caps[0]["body"]["payload"]["summary"] == "HighErrorRate"
    assert caps[0]["path"] == "/pagerduty/oncall/v2/enqueue"


@pytest.mark.integration
def test_webhook_capture_json_and_raw_text(http_sink):
    r = requests.post(f"{http_sink.url}/webhook/audit", json={"version": "4", "alerts": []},
                      headers={"Authorization": "Bearer t0ken"}, timeout=5)
    assert r.status_code == 200
    r = requests.post(f"{http_sink.url}/webhook/audit", data=b"not json at all",
                      headers={"Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 200
    first, second = http_sink.wait_for(kind="webhook", count=2, timeout=2)
    assert first["body"] == {"version": "4", "alerts": []}
    assert first["headers"]["Authorization"] == "Bearer t0ken"
    assert second["body"] == "not json at all"


@pytest.mark.integration
def test_unknown_paths_are_404_and_not_captured(http_sink):
    for path in ("/nope", "/slack/", "/slack/a/b", "/pagerduty/x/v1/enqueue", "/webhook"):
        r = requests.post(http_sink.url + path, json={"x": 1}, timeout=5)
        assert r.status_code == 404, path
    assert requests.get(f"{http_sink.url}/slack/x", timeout=5).status_code == 404
    assert http_sink.captured == []


@pytest.mark.integration
def test_captured_endpoint_and_reset(http_sink):
    for receiver in ("a", "b"):
        requests.post(http_sink.slack_url(receiver), json={"text": receiver}, timeout=5)
    listed = requests.get(f"{http_sink.url}/captured", timeout=5).json()
    assert [c["receiver"] for c in listed] == ["a", "b"]
    only_b = requests.get(f"{http_sink.url}/captured", params={"receiver": "b"}, timeout=5).json()
    assert len(only_b) == 1 and only_b[0]["body"] == {"text": "b"}
    r = requests.post(f"{http_sink.url}/captured/reset", timeout=5)
    assert r.status_code == 200 and r.json() == {"cleared": 2}
    assert requests.get(f"{http_sink.url}/captured", timeout=5).json() == []
    assert http_sink.captured == []
    # the reset itself is not a capture, and clear() works from Python too
    requests.post(http_sink.slack_url("c"), json={}, timeout=5)
    assert http_sink.clear() == 1 and http_sink.captured == []


@pytest.mark.integration
def test_captured_is_a_snapshot(http_sink):
    requests.post(http_sink.slack_url("a"), json={"text": "x"}, timeout=5)
    snapshot = http_sink.captured
    snapshot[0]["body"]["text"] = "mutated"
    snapshot.clear()
    assert http_sink.captured[0]["body"] == {"text": "x"}


@pytest.mark.integration
def test_wait_for_waits_for_a_later_post(http_sink):
    def later():
        time.sleep(0.3)
        requests.post(http_sink.slack_url("late"), json={"text": "hi"}, timeout=5)

    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    caps = http_sink.wait_for(lambda c: c["receiver"] == "late", timeout=5)
    t.join()
    assert caps[0]["body"] == {"text": "hi"} and time.monotonic() - t0 < 4


@pytest.mark.integration
def test_wait_for_timeout_summarises_what_was_captured(http_sink):
    requests.post(http_sink.slack_url("team-a"), json={"text": "x"}, timeout=5)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as exc:
        http_sink.wait_for(kind="pagerduty", timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 2
    message = str(exc.value)
    assert "0 matched, 1 captured" in message and "slack receiver='team-a'" in message


# --------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------


@pytest.mark.integration
def test_smtp_without_auth_captures_subject_text_html():
    with SmtpSink() as sink:
        assert sink.port > 0 and sink.url == f"smtp://127.0.0.1:{sink.port}"
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert not client.has_extn("auth")  # nothing to authenticate against
            client.send_message(email_message(), to_addrs=["oncall@example.org", "b@example.org"])
        [cap] = sink.wait_for(kind="email", timeout=3)
    assert cap["mail_from"] == "alertmanager@monstack.local"
    assert cap["rcpt_tos"] == ["oncall@example.org", "b@example.org"]
    assert cap["subject"] == "[FIRING:1] HighErrorRate demo-web"
    assert cap["text"] == "Alert: HighErrorRate\nSeverity: critical\n"
    assert "<h1>HighErrorRate</h1>" in cap["html"]
    assert cap["headers"]["Subject"] == cap["subject"]
    assert cap["headers"]["Content-Type"].startswith("multipart/alternative")
    assert cap["authenticated_as"] is None


@pytest.mark.integration
def test_smtp_html_only_and_plain_only():
    with SmtpSink() as sink:
        html_only = EmailMessage()
        html_only["Subject"] = "html only"
        html_only.set_content("<p>hi</p>", subtype="html")
        plain_only = EmailMessage()
        plain_only["Subject"] = "plain only"
        plain_only.set_content("just text\n")
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.send_message(html_only, from_addr="a@x", to_addrs=["b@x"])
            client.send_message(plain_only, from_addr="a@x", to_addrs=["b@x"])
        first, second = sink.wait_for(kind="email", count=2, timeout=3)
    assert first["text"] is None and first["html"].strip() == "<p>hi</p>"
    assert second["html"] is None and second["text"] == "just text\n"


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth_accepts_the_configured_pair(mechanism):
    with SmtpSink(username=USER, password=PASSWORD) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            assert {"PLAIN", "LOGIN"} <= set(client.esmtp_features["auth"].split())
            client.user, client.password = USER, PASSWORD
            method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            code, _ = client.auth(mechanism, method, initial_response_ok=(mechanism == "PLAIN"))
            assert code == 235
            client.send_message(email_message())
        [cap] = sink.wait_for(kind="email", timeout=3)
        assert cap["authenticated_as"] == USER
        attempts = sink.auth_attempts
        assert [(a["username"], a["mechanism"], a["success"]) for a in attempts] == \
            [(USER, mechanism, True)]
        everything = json.dumps(sink.captured) + json.dumps(attempts) + repr(sink) + str(vars(sink))
    assert PASSWORD not in everything


@pytest.mark.integration
def test_smtp_auth_login_prompts_match_what_alertmanager_expects():
    """Alertmanager's AUTH LOGIN accepts only the prompts "Username:" and "Password:"
    (compared case-insensitively), and it tries LOGIN first when it is advertised first."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    with SmtpSink(username=USER, password=PASSWORD) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo("alertmanager")
            code, prompt = client.docmd("AUTH", "LOGIN")
            assert code == 334 and base64.b64decode(prompt).lower() == b"username:"
            code, prompt = client.docmd(b64(USER))
            assert code == 334 and base64.b64decode(prompt).lower() == b"password:"
            code, _ = client.docmd(b64(PASSWORD))
            assert code == 235
            client.send_message(email_message())
        assert sink.wait_for(kind="email", timeout=3)[0]["authenticated_as"] == USER


@pytest.mark.integration
def test_smtp_wrong_password_and_no_auth_are_refused():
    with SmtpSink(username=USER, password=PASSWORD) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
                client.login(USER, "wrong-password")
            assert exc.value.smtp_code == 535
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("someone-else", PASSWORD)
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.send_message(email_message())  # no AUTH at all
            assert refused.value.smtp_code == 530
        assert sink.captured == []
        assert sink.auth_attempts and not any(a["success"] for a in sink.auth_attempts)
        assert PASSWORD not in json.dumps(sink.auth_attempts)


def test_smtp_sink_requires_both_credentials():
    with pytest.raises(ValueError):
        SmtpSink(username=USER)


# --------------------------------------------------------------------------
# Combined sinks and the CLI
# --------------------------------------------------------------------------


@pytest.mark.integration
def test_sinks_combined_list_and_jsonl(tmp_path, capfd):
    jsonl = tmp_path / "captures.jsonl"
    with Sinks(smtp_username=USER, smtp_password=PASSWORD, jsonl_path=str(jsonl)) as sinks:
        requests.post(sinks.http.slack_url("team-web"), json={"text": "firing"}, timeout=5)
        with smtplib.SMTP(sinks.smtp.host, sinks.smtp.port, timeout=5) as client:
            client.login(USER, PASSWORD)
            client.send_message(email_message("[FIRING:1] Combined"))
        sinks.wait_for(kind="email", timeout=3)
        combined = sinks.captured
        served = requests.get(f"{sinks.http.url}/captured", timeout=5).json()
        assert [c["kind"] for c in combined] == ["slack", "email"]
        assert served == combined  # emails are served by the HTTP sink too
        assert requests.post(f"{sinks.http.url}/captured/reset", timeout=5).json() == {"cleared": 2}
        assert sinks.captured == [] and sinks.smtp.captured == []

    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [c["kind"] for c in lines] == ["slack", "email"]
    assert lines[1]["subject"] == "[FIRING:1] Combined" and lines[1]["authenticated_as"] == USER
    out, err = capfd.readouterr()
    assert PASSWORD not in jsonl.read_text() + out + err


@pytest.mark.integration
def test_cli_runs_both_sinks_until_sigterm(tmp_path):
    jsonl = tmp_path / "cli.jsonl"
    http_port, smtp_port = free_port(), free_port()
    env = dict(os.environ, MONSTACK_SINK_SMTP_PASSWORD=PASSWORD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator.sinks", "--http", f"127.0.0.1:{http_port}",
         "--smtp", f"127.0.0.1:{smtp_port}", "--jsonl", str(jsonl), "--smtp-username", USER],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["http"] == f"http://127.0.0.1:{http_port}"
        assert ready["smtp"] == f"127.0.0.1:{smtp_port}" and ready["smtp_auth"] is True
        base = ready["http"]

        assert requests.post(f"{base}/slack/team-a", json={"text": "x"}, timeout=5).status_code == 200
        pd = requests.post(f"{base}/pagerduty/oncall/v2/enqueue",
                           json={"routing_key": "k", "event_action": "trigger"}, timeout=5)
        assert pd.status_code == 202
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client:
            client.login(USER, PASSWORD)
            client.send_message(email_message("[FIRING:2] From CLI"))

        deadline = time.monotonic() + 5
        while True:
            captured = requests.get(f"{base}/captured", timeout=5).json()
            if len(captured) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sorted(c["kind"] for c in captured) == ["email", "pagerduty", "slack"]
        mail = next(c for c in captured if c["kind"] == "email")
        assert mail["subject"] == "[FIRING:2] From CLI" and mail["authenticated_as"] == USER
        assert requests.post(f"{base}/captured/reset", timeout=5).json() == {"cleared": 3}
        assert requests.get(f"{base}/captured", timeout=5).json() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        out, err = proc.communicate()
    assert rc == 0, err
    text = jsonl.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [c["kind"] for c in lines] == ["slack", "pagerduty", "email"]
    assert lines[2]["subject"] == "[FIRING:2] From CLI"
    assert PASSWORD not in text + out + err


@pytest.mark.integration
def test_cli_refuses_username_without_password(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MONSTACK_SINK_SMTP_PASSWORD"}
    r = subprocess.run([sys.executable, "-m", "generator.sinks", "--smtp", "127.0.0.1:0",
                        "--smtp-username", USER], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "password" in r.stderr
    r = subprocess.run([sys.executable, "-m", "generator.sinks"], cwd=REPO,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2


@pytest.mark.integration
def test_cli_password_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator.sinks", "--smtp", "127.0.0.1:0",
         "--smtp-username", USER, "--smtp-password-file", str(secret)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["http"] is None
        host, port = ready["smtp"].rsplit(":", 1)
        with smtplib.SMTP(host, int(port), timeout=5) as client:
            assert client.login(USER, PASSWORD)[0] == 235
    finally:
        proc.terminate()
        rc = proc.wait(timeout=5)
    assert rc == 0
