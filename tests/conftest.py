"""Shared fixtures: paths, the monstack CLI as users run it, output-tree hashing."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same examples every run (no seed, no example database): a test that passes, passes. `make fuzz`
# (tests/fuzz.py) is where random exploration happens.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = Path(__file__).resolve().parent / "inventories"


def monstack(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "generator.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path (to prove nothing changed)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cli():
    return monstack
