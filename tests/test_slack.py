"""Slack as real Slack works: an app's incoming webhook posts to the one channel it was created for.

`channel:` is ignored by such webhooks, so receivers of different channels sharing one webhook
file would all land in one channel: that is an inventory error now. Each channel gets its own
webhook file, or one bot token posts to every channel with chat.postMessage. A real Alertmanager
proves that each receiver reads its own webhook file, and that the bot token travels as a
Bearer header read from its file.
"""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml

from amrunner import Alertmanager, alert, now, render
from conftest import monstack
from generator import names, pipeline
from generator.errors import InventoryError
from generator.render import alertmanager as am
from generator.sinks import Sinks
from generator.topology import COMPOSE, native

TAIL = textwrap.dedent("""\
    severities:
      P0: {receivers: [slack-incidents], group_wait: 1s, group_interval: 1s}
      P1: {receivers: [slack-alerts], group_wait: 1s, group_interval: 1s}
      P2: {receivers: [slack-alerts], group_wait: 1s, group_interval: 1s}
      P3: {receivers: [slack-alerts], group_wait: 1s, group_interval: 1s, active_time_intervals: []}
    teams: {web: {}}
    services:
      - {name: api, team: web, kind: probe, health: [{url: "http://api:3000/health"}]}
    """)


def _inventory(root: Path, receivers: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    inv = root / "services.yaml"
    inv.write_text("version: 1\nreceivers:\n" + textwrap.indent(textwrap.dedent(receivers), "  ") + TAIL)
    return inv


SHARED = """\
    slack-incidents: {type: slack, webhook_url_file: secrets/slack_webhook_url, channel: "#incidents"}
    slack-alerts: {type: slack, webhook_url_file: secrets/slack_webhook_url, channel: "#alerts"}
    """
PER_CHANNEL = """\
    slack-incidents: {type: slack, webhook_url_file: secrets/slack_incidents, channel: "#incidents"}
    slack-alerts: {type: slack, webhook_url_file: secrets/slack_alerts, channel: "#alerts"}
    """
BOT = """\
    slack-incidents: {type: slack, bot_token_file: secrets/slack_bot_token, channel: "#incidents"}
    slack-alerts: {type: slack, bot_token_file: secrets/slack_bot_token, channel: "#alerts"}
    """


def test_receivers_of_different_channels_may_not_share_a_webhook(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, SHARED)
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    (problem,) = err.value.problems
    assert problem.line == 4 and problem.path == "receivers.slack-alerts.webhook_url_file", problem
    assert "secrets/slack_webhook_url is also the webhook of slack-incidents (#incidents)" in problem.message
    assert "ignores channel" in problem.message and "bot_token_file" in problem.message
    result = monstack("render", "--inventory", str(inv), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    # One channel on one webhook stays fine (prototype-slos sends every level to #prototype-alerts).
    pipeline.load_model(_inventory(tmp_path / "one", SHARED.replace('"#alerts"', '"#incidents"')))


def test_a_bot_token_posts_with_chat_post_message_and_stays_in_its_file(tmp_path: Path) -> None:
    model = pipeline.load_model(_inventory(tmp_path, BOT))
    by_name = {r["name"]: r for r in am.config(model, COMPOSE)["receivers"]}
    cfg = by_name["slack-alerts"]["slack_configs"][0]
    assert cfg["api_url"] == "https://slack.com/api/chat.postMessage" and cfg["channel"] == "#alerts"
    assert cfg["http_config"] == {"authorization": {"type": "Bearer", "credentials_file": "/run/secrets/secrets_slack_bot_token"}}
    assert model.receiver_secret_files() == ["secrets/slack_bot_token"]


@pytest.mark.parametrize("fields, says", [
    ("webhook_url_file: secrets/a, bot_token_file: secrets/b", "set webhook_url_file"),
    ("", "set webhook_url_file"),
    ("bot_token: xoxb-123", "bot_token_file"),
])
def test_one_way_into_slack(tmp_path: Path, fields: str, says: str) -> None:
    inv = _inventory(tmp_path, f'slack-incidents: {{type: slack, {fields}, channel: "#incidents"}}\n'.replace("{type: slack, , ", "{type: slack, ")
                     + 'slack-alerts: {type: slack, webhook_url_file: secrets/x, channel: "#alerts"}\n')
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    assert says in str(err.value.problems[0])


def _wait(sinks: Sinks, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(sinks.captured) < count:
        time.sleep(0.1)
    time.sleep(2.5)  # > group_wait + group_interval: anything else would have arrived


def _post(manager: Alertmanager) -> None:
    manager.post([alert({"alertname": "Down", "severity": "P0", "service": "api", "team": "web", "problem": "Down"}, starts=now()),
                  alert({"alertname": "Slow", "severity": "P1", "service": "api", "team": "web", "problem": "Slow"}, starts=now())])


@pytest.mark.integration
def test_alertmanager_each_channel_through_its_own_webhook(tmp_path: Path) -> None:
    """No sink override: Alertmanager reads each receiver's file; the files hold two different webhook URLs (of a local sink)."""
    inv = _inventory(tmp_path / "inventory", PER_CHANNEL)
    with Sinks() as sinks:
        (inv.parent / "secrets").mkdir()
        for channel in ("incidents", "alerts"):
            (inv.parent / "secrets" / f"slack_{channel}").write_text(f"http://127.0.0.1:{sinks.http.port}/slack/webhook-of-{channel}\n")
        config = render(inv, tmp_path / "out", native(str(inv.parent)))
        assert "api_url_file" in (tmp_path / "out" / names.ALERTMANAGER_CONFIG).read_text()
        with Alertmanager(config, tmp_path) as manager:
            _post(manager)
            _wait(sinks, 2)
        got = sorted((c["receiver"], c["body"]["attachments"][0]["title"].split()[2]) for c in sinks.captured)
    assert got == [("webhook-of-alerts", "Slow"), ("webhook-of-incidents", "Down")], got


@pytest.mark.integration
def test_alertmanager_a_bot_token_travels_as_a_bearer_header(tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "inventory", BOT)
    (inv.parent / "secrets").mkdir()
    (inv.parent / "secrets" / "slack_bot_token").write_text("xoxb-test-token-4f2a")
    with Sinks() as sinks:
        topo = native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost)
        config = render(inv, tmp_path / "out", topo)
        rendered = (tmp_path / "out" / names.ALERTMANAGER_CONFIG).read_text()
        assert "xoxb-test-token-4f2a" not in rendered and yaml.safe_load(rendered)
        with Alertmanager(config, tmp_path) as manager:
            _post(manager)
            _wait(sinks, 2)
        got = sorted((c["receiver"], c["body"]["channel"], c["headers"].get("Authorization")) for c in sinks.captured)
    assert got == [("slack-alerts", "#alerts", "Bearer xoxb-test-token-4f2a"),
                   ("slack-incidents", "#incidents", "Bearer xoxb-test-token-4f2a")], got
