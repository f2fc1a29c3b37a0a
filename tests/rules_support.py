"""Shared by the rule, rule-test, lint and example tests: every inventory, rendered once per session."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import ROOT
from generator import checks, names, pipeline, writer

EXAMPLES = sorted((ROOT / "examples").glob("*/services.yaml"))
INVENTORIES = [ROOT / "services.yaml"] + EXAMPLES
IDS = ["services.yaml" if p.parent == ROOT else p.parent.name for p in INVENTORIES]

needs_promtool = pytest.mark.skipif(not checks.available("promtool"), reason="promtool not installed (make deps)")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """id -> folder holding everything the inventory renders (compose topology, as committed)."""
    out = {}
    for inv, ident in zip(INVENTORIES, IDS):
        b = pipeline.build(inv)
        root = tmp_path_factory.mktemp(ident.replace(".", "-"))
        for path, data in b.files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out[ident] = root
    return out


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_files(root: Path) -> list[Path]:
    return sorted((root / names.RULES_DIR).glob("*.yml"))


def rule_test_files(root: Path) -> list[Path]:
    return sorted((root / names.RULE_TESTS_DIR).glob("*.test.yml"))


def rules(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group name, rule) for every rule of every rule file."""
    for f in rule_files(root):
        for g in load(f)["groups"]:
            for r in g["rules"]:
                yield g["name"], r


def alerts(root: Path) -> list[dict[str, Any]]:
    return [r for _, r in rules(root) if "alert" in r]


def promtool_test(root: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([checks.tool("promtool"), "test", "rules", *files], cwd=root, capture_output=True, text=True, timeout=300)


def write_tree(files: dict[str, bytes], root: Path) -> Path:
    staging = writer.stage(files, root)
    return staging
