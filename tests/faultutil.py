"""Helpers for the fault scenarios (tests/test_faults.py): inventories, faults, and the notification figures.

Not a test module. Every scenario counts what the sinks captured (their JSON-lines log, which survives a
sink restart) against what a correct stack sends, and records one row of figures: faults injected,
notifications expected, received, duplicated (every notification beyond the expected ones: a repeated
page, a false "resolved") and lost. `make test-faults` collects the rows into a table
(tests/tools/faults_table.py) for docs/reliability.md.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import requests
import yaml
from stackutil import E2E_INVENTORY, ROOT, wait_for

from generator import names, pipeline, testalerts
from generator.runner import process
from generator.runner.native import NativeStack

SERVICE = "checkout-api"
P0_RECEIVERS = ("pagerduty-oncall", "slack-incidents")  # tests/e2e/services.yaml's P0 policy
P1_RECEIVERS = ("slack-alerts", "email-oncall")
MODEL = pipeline.load_model(E2E_INVENTORY)  # receivers are the same in every variant the scenarios use
FIGURES = Path(os.environ.get("MONSTACK_FAULT_FIGURES", str(ROOT / ".monstack" / "fault-figures.json")))


# --- inventories ---------------------------------------------------------------------------------

def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def inventory(folder: Path, changes: dict[str, Any] | None = None, name: str = "services.yaml") -> Path:
    """tests/e2e/services.yaml with `changes` merged in, written to folder/name (no secrets/ there: receivers go to sinks)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = _merge(yaml.safe_load(E2E_INVENTORY.read_text()), changes or {})
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- faults --------------------------------------------------------------------------------------

def control(stack: NativeStack, fault: dict[str, Any] | None) -> None:
    """Set (or with None, clear) a fault in the sample exporter behind checkout-api."""
    url = stack.component_url("demo-web") + ("/control" if fault else "/control/reset")
    r = requests.post(url, json=fault or {}, headers=stack.control_headers(), timeout=5)
    assert r.status_code == 200, r.text


def kill(stack: NativeStack, component: str, sig: int = signal.SIGKILL) -> int:
    """Signal one component's process group and wait until it is gone; its pid."""
    p = stack._recorded()[component]
    os.killpg(p.pid, sig)
    wait_for(f"{component} to exit after {signal.Signals(sig).name}", lambda: not process.alive(p), timeout=30, interval=0.1)
    return p.pid


# --- what the sinks captured ---------------------------------------------------------------------

def captured(stack: NativeStack, since: float) -> list[dict[str, Any]]:
    """Every notification the sinks took since `since`, from their log (kept across a sink restart)."""
    log = stack.logs_dir / "sinks.jsonl"
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        if line.strip():
            c = json.loads(line)
            if c.get("time", 0) >= since:
                out.append(c)
    return out


def of(caps: Iterable[dict[str, Any]], receiver: str, alert: str, level: str, status: str,
       service: str = SERVICE, triggers: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The notifications `receiver` got about `alert` in `status`. A PagerDuty resolve names no alert: it is matched by
    the dedup key of a trigger for the alert, among `caps` and `triggers` (say, every capture of the stack)."""
    caps = list(caps)
    mine = [c for c in caps if receiver in testalerts.capture_receivers(MODEL, c, (receiver,))]
    if status == "resolved" and any(c["kind"] == "pagerduty" for c in mine):
        keys = {c["body"].get("dedup_key") for c in [*caps, *triggers] if c.get("receiver") == receiver
                and testalerts.capture_matches(c, alert, level, "firing", service)}
        return [c for c in mine if c["kind"] == "pagerduty" and c["body"].get("event_action") == "resolve"
                and c["body"].get("dedup_key") in keys]
    return [c for c in mine if testalerts.capture_matches(c, alert, level, status, service)]


def wait_notified(stack: NativeStack, receivers: Iterable[str], alert: str, level: str, status: str, since: float,
                  timeout: float) -> None:
    receivers = list(receivers)
    wait_for(f"{alert} {status} at {', '.join(receivers)}", lambda: all(
        of(captured(stack, since), r, alert, level, status, triggers=captured(stack, 0)) for r in receivers), timeout=timeout)


# --- figures -------------------------------------------------------------------------------------

@dataclass
class Figures:
    item: int
    scenario: str
    faults: str
    expected: int
    received: int
    duplicated: int
    lost: int
    note: str = ""


def tally(caps: list[dict[str, Any]], expected: dict[tuple[str, str, str, str], int]) -> tuple[int, int, int, int]:
    """(expected, received, duplicated, lost) for {(receiver, alert, level, status): how many a correct stack sends};
    a key expected 0 times counts every arrival as a duplicate (a leak, a false resolve)."""
    exp = received = dup = lost = 0
    for (receiver, alert, level, status), n in expected.items():
        got = len(of(caps, receiver, alert, level, status))
        exp += n
        received += got
        dup += max(0, got - n)
        lost += max(0, n - got)
    return exp, received, dup, lost


def record(fig: Figures) -> Figures:
    """Keep one scenario's row for `make test-faults` (tests/tools/faults_table.py prints and writes the table)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    rows[fig.scenario] = asdict(fig) | {"recorded_at": time.time()}
    tmp = FIGURES.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    tmp.replace(FIGURES)
    print(f"figures: {fig}")
    return fig


def figures(item: int, scenario: str, faults: str, caps: list[dict[str, Any]],
            expected: dict[tuple[str, str, str, str], int], note: str = "") -> Figures:
    exp, received, dup, lost = tally(caps, expected)
    return record(Figures(item, scenario, faults, exp, received, dup, lost, note))


__all__ = ["SERVICE", "P0_RECEIVERS", "P1_RECEIVERS", "FIGURES", "inventory", "control", "kill", "captured", "of",
           "wait_notified", "Figures", "tally", "record", "figures", "names"]
