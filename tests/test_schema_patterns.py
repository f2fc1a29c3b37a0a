"""The editor schema (services.schema.json) rejects what monstack rejects: durations, names, URLs and times of day
carry patterns, so `for: 5 minutes` is flagged in the editor, not only by `monstack render`."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import INVENTORIES, ROOT

from generator.durations import parse_duration
from generator.inventory import schema

SCHEMA = json.loads((ROOT / "services.schema.json").read_text())
GOOD = [ROOT / "services.yaml", *sorted(ROOT.glob("examples/*/services.yaml")), *sorted((INVENTORIES / "good").glob("*.yaml"))]


def _errors(data: dict) -> list[str]:
    v = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(data)]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_good_inventory_satisfies_the_editor_schema(path: Path):
    assert _errors(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("where, value", [
    (("services", 0, "alerts", "HttpLatencyP95High", "for"), "5 minutes"),
    (("services", 0, "scrape", "interval"), "15 s"),
    (("stack", "scrape_interval"), "1h1h"),
    (("services", 0, "name"), "Checkout API"),
    (("services", 0, "scrape", "targets", 0), "demo-web"),
    (("stack", "urls", "grafana"), "grafana:3000"),
    (("time_intervals", "business-hours", 0, "times", 0, "end_time"), "5pm"),
    (("time_intervals", "business-hours", 0, "times", 0, "end_time"), 1020),  # an unquoted 17:00
])
def test_the_editor_schema_flags_what_monstack_rejects(where, value):
    data = copy.deepcopy(yaml.safe_load((ROOT / "services.yaml").read_text()))
    node = data
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    assert _errors(data), f"{'/'.join(map(str, where))}: {value!r} passes the editor schema"


@pytest.mark.parametrize("text", ["5m", "1h30m", "0s", "15d", "90ms", "1y2w3d4h5m6s7ms", "5 minutes", "", "0", "5", "1h1h",
                                  "5M", "-5m", "1.5h", "m"])
def test_the_duration_pattern_agrees_with_the_parser(text):
    try:
        parse_duration(text)
        valid = True
    except ValueError:
        valid = False
    assert bool(re.match(schema.DURATION_PATTERN, text)) == valid


def test_durations_names_and_urls_carry_patterns():
    defs = SCHEMA["$defs"]
    assert defs["AlertOverride"]["properties"]["for"]["anyOf"][0]["pattern"] == schema.DURATION_PATTERN
    assert "pattern" in defs["TimeRange"]["properties"]["end_time"]
    assert "pattern" in defs["HttpService"]["properties"]["name"]
    assert "pattern" in defs["StackUrls"]["properties"]["grafana"]
