"""Bench section `start`: `monstack up` (native) to every target up, from an empty state and as a warm restart.

Each trial runs the real CLI as a user would (`monstack up --native` on the root inventory, its own state
folder and a port offset whose ports are free), timestamps every progress line, and splits the time into
phases: rendering and checks until the processes are started, the processes answering their readiness
endpoints, Prometheus discovering the targets, and the first successful scrape of the last target.
`up` returns only when Prometheus reports every target up, and the section confirms that on the
targets API before it stops the stack. Fresh trials start from nothing (PostgreSQL's throwaway cluster
is created); warm trials run `up` again on the data the previous `down` left.

Prometheus fixes when a target is first scraped: scrape-pool updates are applied at most every 5 s, and
each target is scraped at a fixed phase of its interval (a hash of its labels), so the last of N
targets is first scraped up to one scrape interval after discovery. Those two waits are reported as
their own phases.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from generator.bench.common import SCRATCH, Say, python, summary, table, write_section
from generator.runner import process
from generator.runner.native import NativeStack

INVENTORY = Path("services.yaml")
PHASES = ("started", "ready", "discovered", "all_up")


def _offset(state: Path) -> int:
    for k in range(60):
        offset = 5000 + 100 * k
        if all(process.port_free(p) for p in NativeStack(INVENTORY, state, sinks=True, port_offset=offset).planned_ports()):
            return offset
    raise RuntimeError("no free port range for the start trials")


def _up(state: Path, offset: int, timeout: float = 180) -> dict[str, Any]:
    """One `monstack up`: seconds from launch to each phase, read off its progress lines."""
    argv = [python(), "-m", "generator.cli", "up", "--native", "--sinks", "--inventory", str(INVENTORY), "--state-dir", str(state),
            "--port-offset", str(offset), "--timeout", str(int(timeout))]
    t0 = time.monotonic()
    seen: dict[str, float] = {}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            now = time.monotonic() - t0
            tail = (tail + [line.rstrip()])[-20:]
            text = line.strip()
            if text.startswith("started ") and "process" in text:
                seen.setdefault("started", now)
            elif text.startswith("ready: "):
                done, _, total = text.split()[1].partition("/")
                if done == total:
                    seen.setdefault("ready", now)
            elif text.startswith("targets: "):
                seen.setdefault("discovered", now)
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"monstack up exited with {code}:\n" + "\n".join(tail))
    seen["all_up"] = time.monotonic() - t0
    return seen


def _all_targets_up(state: Path) -> int:
    url = NativeStack.from_state(state).prometheus_url
    active = requests.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=10).json()["data"]["activeTargets"]
    down = [t["labels"].get("job") for t in active if t["health"] != "up"]
    if down:
        raise RuntimeError(f"`up` returned with targets not up: {down}")
    return len(active)


def _down(state: Path) -> None:
    subprocess.run([python(), "-m", "generator.cli", "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=120,
                   check=True)


def run(trials: int, say: Say) -> dict[str, Any]:
    root = SCRATCH / "start"
    shutil.rmtree(root, ignore_errors=True)
    state = (root / "state").absolute()
    offset = _offset(state)
    say(f"{trials} fresh and {trials} warm starts of {INVENTORY} (native, port offset {offset})")
    results: dict[str, list[dict[str, Any]]] = {"fresh": [], "warm": []}
    try:
        for k in range(trials):
            for kind in ("fresh", "warm"):
                if kind == "fresh":
                    shutil.rmtree(state, ignore_errors=True)
                seen = _up(state, offset)
                seen["targets"] = _all_targets_up(state)
                _down(state)
                results[kind].append(seen)
                say(f"  {kind} #{k + 1}: " + ", ".join(f"{p} {seen[p]:.1f}s" for p in PHASES if p in seen) + f" ({seen['targets']} targets)")
    finally:  # a failed trial leaves nothing running (`down` is a no-op when no stack is recorded)
        subprocess.run([python(), "-m", "generator.cli", "down", "--state-dir", str(state)], capture_output=True, timeout=120)
    figures: dict[str, Any] = {"inventory": str(INVENTORY), "trials": trials, "goal_seconds": 15}
    rows = []
    for kind, runs in results.items():
        phases = {p: summary([r[p] for r in runs if p in r]) for p in PHASES}
        # The part Prometheus decides: from the targets being discovered to the last one's first scrape.
        phases["first_scrapes"] = summary([r["all_up"] - r["discovered"] for r in runs if "discovered" in r])
        phases["discovery_throttle"] = summary([r["discovered"] - r["ready"] for r in runs if "discovered" in r and "ready" in r])
        figures[kind] = phases
        rows.append([kind, *(phases[p].get("median") for p in PHASES), phases["first_scrapes"].get("median")])
    say(table(["start", "processes started s", "all ready s", "targets discovered s", "every target up s", "first scrapes s"], rows))
    write_section("start", figures)
    return figures
