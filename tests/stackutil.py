"""Helpers for tests that run the native stack (generator/runner/native.py) on 127.0.0.1.

Not a test module: test_native.py, test_testalerts.py and test_e2e.py import it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import requests

from generator.runner import process
from generator.runner.native import NativeStack, find_binary, missing_binaries

ROOT = Path(__file__).resolve().parent.parent
E2E_INVENTORY = Path(__file__).resolve().parent / "e2e" / "services.yaml"
CORE = ["prometheus", "alertmanager", "blackbox-exporter"]


def missing(components: list[str]) -> str | None:
    """A skip reason naming the Debian packages when a binary is not installed (make deps installs them)."""
    gone = missing_binaries(components)
    if not gone:
        return None
    return "not installed (make deps): " + ", ".join(f"{exe} ({pkg})" for _, exe, pkg in gone)


def free_offset(inventory: Path, state_dir: Path, sinks: bool, first: int) -> int:
    """A port_offset at which every port the stack would use is free; clear of the user's stack (offset 0)."""
    salt = (os.getpid() % 40) * 100  # parallel test runs on one machine start their search apart
    for k in range(60):
        offset = first + ((salt + k * 100) % 6000)
        stack = NativeStack(inventory, state_dir, sinks=sinks, port_offset=offset)
        if all(process.port_free(p) for p in stack.planned_ports()):
            return offset
    raise RuntimeError("no free port range for a test stack")


def new_stack(inventory: Path, state_dir: Path, sinks: bool = True, first: int = 1000) -> NativeStack:
    offset = free_offset(inventory, state_dir, sinks, first)
    return NativeStack(inventory, state_dir, sinks=sinks, port_offset=offset)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll check() until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, KeyError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def captures(stack: NativeStack, since: float = 0.0) -> list[dict[str, Any]]:
    assert stack.sink_url
    return [c for c in requests.get(f"{stack.sink_url}/captured", timeout=5).json() if c.get("time", 0) >= since]


def assert_torn_down(stack: NativeStack, ports: list[int], pids: list[int]) -> None:
    """No process the stack started is left, and no port it used is bound."""
    alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}") and process._stat(pid) and process._stat(pid)[0] != "Z"]
    assert not alive, f"processes left behind: {[(pid, process.cmdline(pid)) for pid in alive]}"
    bound = [p for p in ports if not process.port_free(p)]
    assert not bound, f"ports left bound: {[(p, process.who_listens(p)) for p in bound]}"


def stack_pids(stack: NativeStack) -> list[int]:
    return [p.pid for p in stack._recorded().values()]


__all__ = ["ROOT", "E2E_INVENTORY", "CORE", "missing", "free_offset", "new_stack", "wait_for", "captures",
           "assert_torn_down", "stack_pids", "find_binary"]
