"""Golden cases: a few lines of inventory per feature, and the exact files they must render.

Each folder of tests/golden holds services.yaml, golden.txt (the output paths the case is
about, one per line, globs allowed) and expected/ (those files as they must render). The big
examples prove breadth; these show in one small diff what a change does to one feature.

After an intended change, rewrite the expected files and review the diff:

    MONSTACK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py   (or: make golden)
"""
from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

import pytest

from generator import pipeline

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "services.yaml").is_file())
UPDATE = os.environ.get("MONSTACK_UPDATE_GOLDEN") == "1"


def _selected(case: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    patterns = [line.strip() for line in (case / "golden.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    chosen = {path: data for path, data in files.items() if any(fnmatch.fnmatchcase(path, p) for p in patterns)}
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(path, p) for path in files)]
    assert not unmatched, f"{case.name}/golden.txt names files the case does not render: {unmatched}"
    return chosen


def test_every_case_is_complete():
    assert CASES, "no golden cases"
    for name in CASES:
        assert (GOLDEN / name / "golden.txt").is_file(), f"{name}: golden.txt missing"
        assert (GOLDEN / name / "expected").is_dir() or UPDATE, f"{name}: expected/ missing (run make golden)"


@pytest.mark.parametrize("name", CASES)
def test_case_renders_exactly_its_expected_files(name: str):
    case = GOLDEN / name
    files = _selected(case, pipeline.build(case / "services.yaml").files)
    expected_dir = case / "expected"
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for path, data in files.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_bytes(data)
    expected = {str(p.relative_to(expected_dir)): p.read_bytes() for p in sorted(expected_dir.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(expected), f"{name}: rendered files differ from expected/ (run make golden after an intended change)"
    for path, data in files.items():
        assert data.decode() == expected[path].decode(), f"{name}: {path} differs from tests/golden/{name}/expected/{path}"
