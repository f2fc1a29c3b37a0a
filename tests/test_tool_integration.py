"""Fits the tools users already have: a pre-commit hook, a documented CI example, JSON from validate/check/explain."""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, monstack


def _copy(dest: Path) -> None:
    """The repository's inventory and generated files, without its code, tests, examples and state."""
    skip = {".git", ".venv", ".monstack", "examples", "tests", "generator", "exporters", ".pytest_cache", ".hypothesis"}
    shutil.copytree(ROOT, dest, ignore=lambda folder, entries: [e for e in entries if Path(folder) == ROOT and e in skip])


def _hooks() -> dict[str, dict]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_the_pre_commit_hooks_are_well_formed():
    hooks = _hooks()
    assert {"monstack-check", "monstack-validate"} <= set(hooks)
    for h in hooks.values():
        assert {"id", "name", "entry", "language"} <= set(h) and h["language"] == "python" and h["pass_filenames"] is False
        assert shlex.split(h["entry"])[0] == "monstack"  # the console script pyproject.toml installs


@pytest.mark.parametrize("path, runs", [
    ("services.yaml", True), ("examples/node-backends/services.yaml", True), ("prometheus/rules/checkout-api.yml", True),
    ("grafana/dashboards/monstack/overview.json", True), ("compose.yaml", True), (".monstack-generated", True),
    ("generator/cli.py", False), ("README.md", False),
])
def test_the_check_hook_runs_when_the_inventory_or_a_generated_file_changes(path: str, runs: bool):
    assert bool(re.search(_hooks()["monstack-check"]["files"], path)) == runs


def test_the_check_hook_s_command_passes_on_this_repository_and_fails_on_drift(tmp_path: Path):
    argv = shlex.split(_hooks()["monstack-check"]["entry"])[1:]
    assert monstack(*argv).returncode == 0
    _copy(tmp_path / "repo")
    victim = tmp_path / "repo" / "prometheus" / "rules" / "checkout-api.yml"
    victim.write_text(victim.read_text() + "# edited by hand\n")
    r = monstack(*argv, cwd=tmp_path / "repo")
    assert r.returncode == 1 and "prometheus/rules/checkout-api.yml" in r.stdout


def test_the_ci_guide_s_commands_exist():
    guide = (ROOT / "docs" / "ci.md").read_text()
    for command in set(re.findall(r"monstack (check|validate)( --json)?", guide)):
        assert monstack(command[0], "--help").returncode == 0
    assert "runs-on:" in guide and "monstack check" in guide


def test_check_json():
    r = monstack("check", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"inventory": "services.yaml", "out": ".", "ok": True, "drift": []}


def test_check_json_reports_drift(tmp_path: Path):
    _copy(tmp_path / "repo")
    (tmp_path / "repo" / "compose.yaml").unlink()
    r = monstack("check", "--json", cwd=tmp_path / "repo")
    assert r.returncode == 1
    assert json.loads(r.stdout)["drift"] == [{"path": "compose.yaml", "status": "missing", "message": "compose.yaml is missing (run monstack render)"}]


def test_explain_json():
    r = monstack("explain", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    svc = {s["name"]: s for s in doc["services"]}
    assert set(svc) == {"checkout-api", "order-worker", "sales-insights", "orders-db", "session-cache", "hosts", "payments-provider"}
    p95 = next(a for a in svc["checkout-api"]["alerts"] if a["name"] == "HttpLatencyP95High")
    assert p95["threshold"] == 1.0 and p95["severity"] == "P1" and p95["receivers"] == ["slack-payments", "email-oncall"]
    assert {r["level"] for r in doc["routing"]} == {"P0", "P1", "P2", "P3"}
    dash = json.loads(monstack("explain", "checkout-api", "--dashboards", "--json").stdout)["dashboards"]
    assert len(dash) == 1 and dash[0]["uid"] == "ms-service-checkout-api" and dash[0]["panels"]
