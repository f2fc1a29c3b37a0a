"""validate runs promtool once per test file that differs beyond its service's names; the others are the same test."""
from __future__ import annotations

from pathlib import Path

import yaml

from generator import checks, pipeline, writer
from generator.bench import synthetic_inventory


def _staged(tmp_path: Path, inventory: dict) -> tuple[Path, list[str]]:
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    root = writer.stage(pipeline.build(path).files, tmp_path / "out")
    return root, checks._files(root, "prometheus/tests/*.test.yml")


def test_services_alike_share_one_run_and_a_different_one_runs_on_its_own(tmp_path: Path):
    inv = synthetic_inventory(21)  # three of each kind's position in the mix
    inv["services"][7]["alerts"] = {"HttpErrorRatioCritical": {"threshold": 0.2}}  # one http service differs
    root, tests = _staged(tmp_path, inv)
    groups = checks.distinct_tests(root, tests)
    assert sorted(m for ms in groups.values() for m in ms) == sorted(tests)
    by_file = {m: rep for rep, ms in groups.items() for m in ms}
    # svc-0 and svc-14 are http services with every default: one run covers both.
    assert by_file["prometheus/tests/svc-14.test.yml"] == by_file["prometheus/tests/svc-0.test.yml"]
    assert by_file["prometheus/tests/svc-14.slo.test.yml"] == by_file["prometheus/tests/svc-0.slo.test.yml"]
    # svc-7's threshold makes its rules and tests its own.
    assert groups[by_file["prometheus/tests/svc-7.test.yml"]] == ["prometheus/tests/svc-7.test.yml"]
    assert len(groups) < len(tests) / 2


def test_a_regex_on_a_service_label_always_runs_on_its_own():
    plain = 'up{job="a", service="a"} == 0\nrule_files: x'
    assert checks._shape([plain]) == checks._shape([plain.replace('"a"', '"b"')])
    assert checks._shape(['up{service=~"a"} == 0']) is None
    assert checks._shape(['label_replace(up, "x", "$1", "service", "(.*)")']) is None


def test_names_inside_longer_names_are_not_renamed():
    one = 'x{service="svc-1"} and y{job="probe-svc-1"} and z{service="svc-10"}'
    other = 'x{service="svc-2"} and y{job="probe-svc-2"} and z{service="svc-10"}'
    assert checks._shape([one]) == checks._shape([other])
    assert checks._shape([one]) != checks._shape(['x{service="svc-1"} and y{job="probe-svc-1"} and z{service="svc-1"}'])


def test_a_fleet_tests_services_alike_once_and_validate_checks_the_others_are_alike(tmp_path: Path):
    from generator import names

    inv = synthetic_inventory(105)
    inv["services"][7]["alerts"] = {"HttpErrorRatioCritical": {"threshold": 0.2}}
    root, tests = _staged(tmp_path, inv)
    assert "prometheus/tests/svc-14.test.yml" not in tests  # tested through svc-0
    assert "prometheus/tests/svc-7.test.yml" in tests  # its own threshold: its own tests
    listed = yaml.safe_load((root / names.RULE_TESTS_SHARED).read_text())["tested_once"]
    assert "prometheus/rules/svc-14.yml" in listed["prometheus/rules/svc-0.yml"]
    assert "prometheus/rules/svc-14.slo.yml" in listed["prometheus/rules/svc-0.slo.yml"]
    assert not any("svc-7.yml" in m for ms in listed.values() for m in ms)
    result = checks.shared_rule_files(root)
    assert result is not None and result.ok, result
    # A member whose rules drifted from its representative's is reported, not silently trusted.
    victim = root / "prometheus/rules/svc-14.yml"
    victim.write_text(victim.read_text().replace("for: 0s", "for: 1m", 1))
    result = checks.shared_rule_files(root)
    assert result is not None and not result.ok
    assert "prometheus/rules/svc-14.yml is not prometheus/rules/svc-0.yml up to names" in result.output
