"""The docs keep up with the code: every inventory field is documented, the README's commands exist."""
from __future__ import annotations

import re

from conftest import ROOT
from generator.inventory import schema
from generator.inventory.loader import _field_names


def test_every_inventory_field_is_documented():
    doc = (ROOT / "docs" / "inventory.md").read_text()
    missing = sorted(f for f in _field_names(schema.Inventory, set()) if f"`{f}" not in doc and f"{f}:" not in doc and f".{f}`" not in doc)
    assert not missing, f"docs/inventory.md does not mention: {missing}"


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"make ([a-z][a-z-]+)", (ROOT / "README.md").read_text()))
    assert {"up", "test"} <= named
    assert named <= targets, f"README names targets the Makefile lacks: {sorted(named - targets)}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
