"""`monstack validate` reports as it goes, names the checkers' versions against what compose deploys, and speaks JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, monstack

from generator import checks, pipeline, versions


def test_an_older_checker_is_warned_about_and_a_current_one_is_not():
    old = versions.Checker("promtool", "/usr/bin/promtool", (2, 42, 0), "Prometheus", "prom/prometheus:v3.5.0", (3, 5, 0))
    assert old.older and "older than the Prometheus 3.5.0" in (old.warning() or "")
    same = versions.Checker("amtool", "/usr/bin/amtool", (0, 28, 1), "Alertmanager", "prom/alertmanager:v0.28.1", (0, 28, 1))
    assert not same.older and same.warning() is None
    unknown = versions.Checker("amtool", None, None, "Alertmanager", "prom/alertmanager:latest", None)
    assert unknown.warning() is None and "amtool not found" in unknown.describe()


def test_an_image_override_is_what_the_checkers_are_compared_with():
    image, version = versions.deployed("prometheus", {"prometheus": "registry.example.com/prom/prometheus:v2.53.4"})
    assert (image, version) == ("registry.example.com/prom/prometheus:v2.53.4", (2, 53, 4))


@pytest.mark.integration
def test_each_check_is_reported_before_the_next_one_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    events: list[str] = []
    real_rule_tests = checks.rule_tests

    def rule_tests(root: Path):
        events.append("rule tests start")
        return real_rule_tests(root)

    monkeypatch.setattr(checks, "rule_tests", rule_tests)
    results = pipeline.validate(ROOT / "services.yaml", tmp_path, report=lambda r: events.append(f"reported {r.name}"))
    assert all(r.ok for r in results)
    assert events.index("reported promtool check config") < events.index("rule tests start")
    assert events.index("reported amtool check-config") < events.index("rule tests start")
    assert [e for e in events if e.startswith("reported")] == [f"reported {r.name}" for r in results]


@pytest.mark.integration
def test_validate_prints_checker_versions_and_timings():
    r = monstack("validate")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    found = versions.checkers()
    assert first.startswith("checkers: ") and all(c.describe() in first for c in found)
    for c in found:
        assert (c.warning() is not None) == c.older
        if c.older:
            assert f"warning: {c.tool} {versions.text(c.version)} is older" in r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("ok   promtool test rules") and line.rstrip().endswith("s")]


@pytest.mark.integration
def test_validate_json():
    r = monstack("validate", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["valid"] is True and doc["inventory"] == "services.yaml"
    assert {c["tool"] for c in doc["checkers"]} == {"promtool", "amtool"}
    assert [c["name"] for c in doc["checks"]][:1] == ["promtool check config"]
    assert all(c["ok"] and c["seconds"] >= 0 for c in doc["checks"])
    assert len(doc["warnings"]) == sum(c["older"] for c in doc["checkers"])


@pytest.mark.integration
@pytest.mark.parametrize("interval", ["1s", "2s", "5s"])
def test_validate_passes_at_short_scrape_intervals(tmp_path: Path, interval: str):
    """The hard-down alerts' generated tests hold at any scrape interval: at 1s, a window one second longer than
    two samples held a third, older one, and the run needed more failures than the tests (and the docs) say."""
    text = (ROOT / "tests" / "e2e" / "services.yaml").read_text()
    inventory = tmp_path / "services.yaml"
    inventory.write_text(text.replace("scrape_interval: 1s", f"scrape_interval: {interval}"))
    assert f"scrape_interval: {interval}" in inventory.read_text()
    results = pipeline.validate(inventory, tmp_path / "out")
    assert all(r.ok for r in results), "\n".join(f"{r.name}: {r.output}" for r in results if not r.ok)
