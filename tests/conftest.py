"""Shared fixtures: paths, the monstack CLI, output-tree hashing, and the guard that keeps the unit tier pure.

Two tiers (README, "Tests"):
- unit (`make test-fast`, `pytest -m "not integration"`): no process, no socket, no npm;
  the CLI runs in-process. The guard below fails any unit test that starts a process or
  opens a socket, so the tier stays fast and cannot depend on the machine.
- integration (`@pytest.mark.integration`): real promtool, amtool, Prometheus,
  Alertmanager, exporters, npm, the CLI as a subprocess.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
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


def monstack_process(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would (integration tests)."""
    return subprocess.run([sys.executable, "-m", "generator.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def monstack(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (argv, exit code, stdout and stderr as a subprocess would give them)."""
    from generator import cli

    out, err = io.StringIO(), io.StringIO()
    argv, old_cwd = sys.argv, os.getcwd()
    code = 0
    try:
        os.chdir(cwd)
        sys.argv = ["monstack", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
        os.chdir(old_cwd)
    return subprocess.CompletedProcess(["monstack", *args], code, out.getvalue(), err.getvalue())


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path (to prove nothing changed)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cli():
    return monstack


class TierViolation(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _unit_tier_is_pure(request, monkeypatch):
    """A test without the integration marker may not start a process or open a socket."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    name = request.node.nodeid

    def no_process(*args, **kwargs):
        raise TierViolation(f"{name} starts a process: mark it @pytest.mark.integration (or test in-process)")

    def no_socket(self, *args, **kwargs):
        raise TierViolation(f"{name} opens a network connection: mark it @pytest.mark.integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(os, "fork", no_process)
    monkeypatch.setattr(os, "posix_spawn", no_process)
    monkeypatch.setattr(socket.socket, "connect", no_socket)
    monkeypatch.setattr(socket.socket, "bind", no_socket)
    yield
