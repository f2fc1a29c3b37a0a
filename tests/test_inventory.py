"""Loader and resolver details: durations, YAML corner cases, defaults, references."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import INVENTORIES
from generator.durations import Duration, parse_duration
from generator.errors import InventoryError
from generator.inventory.loader import load_inventory
from generator.model import resolve

MINIMAL = INVENTORIES / "good" / "minimal.yaml"


@pytest.mark.parametrize("text, ms, canonical", [
    ("15s", 15_000, "15s"), ("90s", 90_000, "1m30s"), ("1h30m", 5_400_000, "1h30m"), ("30d", 2_592_000_000, "30d"),
    ("50ms", 50, "50ms"), ("0s", 0, "0s"), ("1w", 604_800_000, "7d"), ("2y", 63_072_000_000, "730d"),
])
def test_durations_parse_and_print_as_prometheus_does(text: str, ms: int, canonical: str):
    assert parse_duration(text) == Duration(ms)
    assert str(parse_duration(text)) == canonical


@pytest.mark.parametrize("bad", ["", "5", "5 m", "-5m", "1.5h", "5M", "m5", "1h1d"])
def test_bad_durations_are_refused_with_an_example(bad: str):
    with pytest.raises(ValueError, match="like 30s, 5m"):
        parse_duration(bad)


def _load(tmp_path: Path, data_or_text) -> object:
    path = tmp_path / "services.yaml"
    path.write_text(data_or_text if isinstance(data_or_text, str) else yaml.safe_dump(data_or_text, sort_keys=False))
    inv, src = load_inventory(path)
    return resolve(inv, src)


def test_yaml_merge_keys_are_refused_not_silently_expanded(tmp_path: Path):
    text = MINIMAL.read_text().replace("teams:\n  web: {}", "base: &b {}\nteams:\n  web:\n    <<: *b")
    with pytest.raises(InventoryError) as err:
        _load(tmp_path, text)
    assert any("merge keys" in p.message for p in err.value.problems)


def test_defaults_are_resolved(tmp_path: Path):
    model = _load(tmp_path, MINIMAL.read_text())
    assert str(model.stack.scrape_interval) == "15s"
    assert str(model.levels["P0"].repeat_interval) == "30m"
    assert str(model.levels["P3"].repeat_interval) == "1d"
    assert model.default_receiver == "slack"
    api = model.service("api")
    assert api.scrape.path == "/metrics" and str(api.scrape.timeout) == "10s"
    assert [a.name for a in api.alerts][:1] == ["TargetDown"]


def test_team_overrides_replace_only_their_levels(tmp_path: Path):
    data = yaml.safe_load(MINIMAL.read_text())
    data["receivers"]["web-slack"] = {"type": "slack", "webhook_url_file": "secrets/s", "channel": "#web"}
    data["teams"]["web"] = {"receivers": {"P1": ["web-slack", "slack"]}}
    model = _load(tmp_path, data)
    team = model.teams["web"]
    assert team.receivers["P1"] == ("web-slack", "slack")
    assert team.receivers["P0"] == ("slack",)
    assert team.overridden == frozenset({"P1"})


def test_alert_overrides_apply(tmp_path: Path):
    data = yaml.safe_load(MINIMAL.read_text())
    data["services"][0]["alerts"] = {"HttpErrorRatioHigh": {"threshold": 0.02, "for": "10m", "severity": "P2"},
                                     "HttpLatencyP95High": {"disabled": True}}
    api = _load(tmp_path, data).service("api")
    high = api.alert("HttpErrorRatioHigh")
    assert (high.threshold, str(high.for_), high.severity) == (0.02, "10m", "P2")
    assert api.alert("HttpLatencyP95High") is None and "HttpLatencyP95High" in api.disabled_alerts


def test_a_receiver_secret_file_is_listed_but_never_read(tmp_path: Path):
    model = _load(tmp_path, MINIMAL.read_text())
    assert model.secret_files == ("secrets/slack_webhook_url",)
    assert not (tmp_path / "secrets").exists()
