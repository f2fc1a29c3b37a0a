"""What every bench section shares: the results file, the commit, the machine, tables, and processes that never outlive a run."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

RESULTS = Path("bench/results.json")  # committed: the figures of the commit it names
SCRATCH = Path("bench/results")  # git-ignored: logs, rendered trees, TSDBs of the last run

Say = Callable[[str], None]


def say(msg: str) -> None:
    print(msg, flush=True)


def commit() -> dict[str, Any]:
    """The commit the figures come from; dirty when files other than the results differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout

    # Porcelain lines are "XY path": the leading space of " M" is part of the status.
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD").strip() or None,
            "dirty": any(p != str(RESULTS) for p in changed)}


def machine() -> dict[str, Any]:
    """Where it ran: the machine is shared, so the load next to every figure says how busy it was."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def write_section(key: str, figures: dict[str, Any], path: Path = RESULTS) -> None:
    """Read, merge, write: the section's key is replaced, every other key is kept as it was."""
    current: dict[str, Any] = {}
    if path.is_file():
        current = json.loads(path.read_text())
    current[key] = {**commit(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine_at_end": machine(), **figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
    tmp.replace(path)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, right-aligned numbers."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and range (and p95 when there are enough values): the machine is shared, single figures mislead."""
    if not values:
        return {"n": 0}
    s = sorted(values)
    out = {"n": len(s), "median": round(statistics.median(s), 4), "min": round(s[0], 4), "max": round(s[-1], 4)}
    if len(s) >= 5:
        out["p95"] = round(percentile(s, 95), 4)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll until condition() returns something true; TimeoutError naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g}s")
        time.sleep(every)


_LIVE: list["Processes"] = []  # every Processes not yet stopped: stop_everything() ends them all
_STOPPING = threading.Event()


def stop_everything() -> None:
    """Stop every process any section started (on SIGTERM, Ctrl-C or an error); no new one starts after this."""
    _STOPPING.set()
    for ps in list(_LIVE):
        ps.stop_all()


@dataclass
class Processes:
    """Children in their own process groups, all stopped (TERM, then KILL) when the block ends, however it ends."""

    logs: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        if _STOPPING.is_set():
            raise RuntimeError("the bench is stopping: no new process")
        if self not in _LIVE:
            _LIVE.append(self)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one child's whole group (SIGKILL: a hard crash) and collect it."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
        for name in reversed(list(self.procs)):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            # Anything the child left in its group (a grandchild) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    ps = Processes(logs)
    try:
        yield ps
    finally:
        ps.stop_all()


def run_child(argv: Sequence[str], timeout: float, log: Path) -> tuple[int | None, float, str]:
    """Run a command in its own group: (exit code, or None when killed at the timeout; seconds; stdout). Stderr goes to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the command and whatever it started, still unreaped
            proc.communicate()
            code, out = None, b""
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
    return code, time.monotonic() - start, out.decode(errors="replace")


def python() -> str:
    return sys.executable
