"""Generated routing tests (alertmanager/tests/routing.yml) and `monstack explain`'s routing table, judged by amtool.

The expectations are generated from the policy; amtool evaluates the rendered route tree.
A tree that disagrees with the policy must fail them: the tampering tests prove they bite.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import INVENTORIES, ROOT, monstack
from generator import checks, explain, names, pipeline, writer
from generator.render import routing_tests

AMTOOL = checks.tool("amtool")
EXAMPLES = sorted(ROOT.glob("examples/*/services.yaml"))
ALL_INVENTORIES = [ROOT / "services.yaml", *EXAMPLES, *sorted((INVENTORIES / "good").glob("*.yaml"))]


def staged(inv: Path, tmp_path: Path) -> Path:
    """The rendered tree in a scratch folder, as `monstack validate` checks it."""
    return writer.stage(pipeline.build(inv).files, tmp_path)


def amtool_receivers(root: Path, **labels: str) -> list[str]:
    proc = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={names.ALERTMANAGER_CONFIG}",
                           *(f"{k}={v}" for k, v in labels.items())], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(",")


@pytest.mark.integration
@pytest.mark.parametrize("inv", ALL_INVENTORIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_routing_tests_pass(inv: Path, tmp_path: Path) -> None:
    root = staged(inv, tmp_path)
    (result,) = checks.routing_tests(root)
    assert result.ok, result.output
    model = pipeline.load_model(inv)
    cases = yaml.safe_load((root / names.ROUTING_TESTS).read_text())["tests"]
    # every severity x team, every level of an unlisted team, the stack itself, the Watchdog, the catch-all (top and per team),
    # and every level of a service with a maintenance window of its own
    own_windows = sum(1 for s in model.services for lv in names.LEVELS
                      if any(w.services and w.applies(lv, s.team, s.name) for w in model.mute_windows))
    assert len(cases) == 4 * len(model.teams) + 4 + (names.META_TEAM not in model.teams) + 1 + 2 + len(model.teams) + own_windows
    assert f"({len(cases)} cases)" in result.name
    covered = {(c["labels"].get("team"), c["labels"].get("severity")) for c in cases}
    assert {(t, lv) for t in model.teams for lv in names.LEVELS} <= covered


def test_routing_cases_follow_the_policy() -> None:
    model = pipeline.load_model(ROOT / "services.yaml")
    by_name = {c["name"]: c for c in routing_tests.cases(model)}
    assert by_name["P1 of team payments"]["receivers"] == ["slack-payments", "email-oncall"]
    assert by_name["P1 of team platform"]["receivers"] == ["slack-alerts", "email-oncall"]
    assert by_name["P0 of team payments"]["receivers"] == ["pagerduty-oncall", "slack-incidents"]
    assert by_name["Watchdog reaches the heartbeat receiver only"]["receivers"] == ["deadmans-switch"]
    assert by_name["no severity reaches the catch-all"]["receivers"] == ["slack-alerts"]
    assert "severity" not in by_name["no severity reaches the catch-all"]["labels"]


def _failed_cases(root: Path, output: str) -> set[str]:
    cases = yaml.safe_load((root / names.ROUTING_TESTS).read_text())["tests"]
    return {c["name"] for c in cases if f"{c['name']}: expected " in output}


def _tamper(root: Path, change) -> None:
    path = root / names.ALERTMANAGER_CONFIG
    cfg = yaml.safe_load(path.read_text())
    change(cfg["route"])
    path.write_text(yaml.safe_dump(cfg))


@pytest.mark.integration
def test_a_tree_with_receivers_out_of_order_fails_the_routing_tests(tmp_path: Path) -> None:
    root = staged(ROOT / "services.yaml", tmp_path)

    def swap_p0(route: dict) -> None:
        p0 = next(r for r in route["routes"] if r.get("matchers") == ['severity="P0"'])
        first, second = [leaf for leaf in p0["routes"] if "matchers" not in leaf]  # orders-db's own node comes first
        first["receiver"], second["receiver"] = second["receiver"], first["receiver"]

    _tamper(root, swap_p0)
    (result,) = checks.routing_tests(root)
    assert not result.ok
    assert _failed_cases(root, result.output) == {"P0 of team platform", "P0 of team growth",
                                                  "P0 of a team the inventory does not list"}  # payments has its own sub-tree


@pytest.mark.integration
def test_a_tree_missing_a_team_override_fails_the_routing_tests(tmp_path: Path) -> None:
    root = staged(ROOT / "services.yaml", tmp_path)
    _tamper(root, lambda route: route.__setitem__("routes", [r for r in route["routes"] if r.get("matchers") != ['team="payments"']]))
    (result,) = checks.routing_tests(root)
    assert not result.ok
    assert _failed_cases(root, result.output) == {"P1 of team payments", "P2 of team payments"}


@pytest.mark.integration
@pytest.mark.parametrize("inv", ALL_INVENTORIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_explain_routing_table_agrees_with_amtool(inv: Path, tmp_path: Path) -> None:
    model = pipeline.load_model(inv)
    root = staged(inv, tmp_path)
    rows = explain.routing_rows(model)
    assert len(rows) == 4 * (len(model.teams) + 1)
    for row in rows:
        labels = {"alertname": "ExplainCheck", "severity": row.level, "team": row.team or "unlisted-team", "service": "svc"}
        assert amtool_receivers(root, **labels) == list(row.receivers), row
    table = explain.routing_table(model)
    heartbeat = model.watchdog.receiver if model.watchdog else names.NULL_RECEIVER
    assert amtool_receivers(root, alertname="Watchdog", severity="P3", team=names.META_TEAM, service=names.META_SERVICE) == [heartbeat]
    assert f"Watchdog                    -> {heartbeat}" in table
    assert amtool_receivers(root, alertname="ExplainCheck", severity="P7") == [model.default_receiver]
    assert f"no or unknown severity      -> {model.default_receiver} (catch-all)" in table


def test_monstack_explain_prints_the_routing_table() -> None:
    proc = monstack("explain", "--inventory", str(ROOT / "services.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "routing (severity x team -> receivers" in proc.stdout
    assert "P1 team=payments" in proc.stdout and "slack-payments, email-oncall (team override)" in proc.stdout
    assert "inhibition" in proc.stdout


@pytest.mark.integration
def test_monstack_validate_runs_the_routing_tests() -> None:
    inv = INVENTORIES / "good" / "minimal.yaml"  # small: validate also runs every promtool rule test
    proc = monstack("validate", "--inventory", str(inv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = len(routing_tests.cases(pipeline.load_model(inv)))
    assert f"ok   amtool routing tests ({cases} cases)" in proc.stdout
