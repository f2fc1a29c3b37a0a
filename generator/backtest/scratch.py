"""A throwaway Prometheus over history written as OpenMetrics: backfilled with promtool, served on a free 127.0.0.1 port.

Synthetic history (tests, the alert-quality benchmark) is written as
OpenMetrics text, turned into TSDB blocks by `promtool tsdb create-blocks-from
openmetrics`, and read by a Prometheus started on that data directory with no
scrape jobs (optionally with rule files, which its rules API then serves).
"""
from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import requests
import yaml

from generator import checks
from generator.errors import CheckFailed, ToolMissing
from generator.runner import process

# promtool (2.42) cuts 2h blocks and re-reads its whole input once per block: long histories are
# written as one file per 2h window (block_windows). Prometheus gets the same bound so it does
# not compact the backfilled blocks while we query.
BLOCK_SECONDS = 2 * 3600
RETENTION = "100y"  # the history is as old as it is; nothing may be deleted under the queries


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if v != int(v) or abs(v) >= 1e15 else str(int(v))


def series_line_prefix(name: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}} " if inner else f"{name} "


def write_openmetrics(path: Path, series: Iterable[tuple[str, Mapping[str, str], Sequence[tuple[float, float]]]]) -> int:
    """One sample per line (`name{labels} value timestamp`), each series' samples in time order; returns the sample count."""
    count = 0
    with open(path, "w") as out:
        for name, labels, samples in series:
            prefix = series_line_prefix(name, labels)
            out.write("".join(f"{prefix}{_number(v)} {t:.3f}\n" for t, v in samples))
            count += len(samples)
        out.write("# EOF\n")
    return count


def block_windows(start: float, end: float) -> list[tuple[float, float]]:
    """[start, end) cut at promtool's block boundaries: one OpenMetrics file per window keeps backfilling linear."""
    out, t = [], start
    while t < end:
        edge = min(end, (math.floor(t / BLOCK_SECONDS) + 1) * BLOCK_SECONDS)
        out.append((t, edge))
        t = edge
    return out


def promtool() -> str:
    if not checks.available("promtool"):
        raise ToolMissing("promtool is not installed (make deps installs the Debian package prometheus)")
    return checks.tool("promtool")


def backfill(openmetrics: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([promtool(), "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics), str(data_dir)],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise CheckFailed(f"promtool could not backfill {openmetrics}:\n{r.stderr.strip() or r.stdout.strip()}")


def backfill_rules(prometheus_url: str, rule_files: Sequence[Path], start: float, end: float, interval: float, data_dir: Path) -> None:
    """Evaluate recording rules over [start, end] through a Prometheus and write the results as blocks (promtool)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([promtool(), "tsdb", "create-blocks-from", "rules", f"--url={prometheus_url}", f"--start={int(start)}",
                        f"--end={int(end)}", f"--eval-interval={int(interval)}s", f"--output-dir={data_dir}", *map(str, rule_files)],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise CheckFailed(f"promtool could not backfill the rules:\n{r.stderr.strip() or r.stdout.strip()}")


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise ToolMissing("prometheus is not installed (make deps installs the Debian package prometheus)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScratchPrometheus:
    """One Prometheus on data_dir, no scrape jobs; stop() (or the with-block) ends it."""

    def __init__(self, workdir: Path, data_dir: Path | None = None, rule_files: Sequence[Path] = (),
                 evaluation_interval: str = "15s"):
        self.workdir = workdir
        self.data_dir = data_dir or workdir / "data"
        self.rule_files = list(rule_files)
        self.evaluation_interval = evaluation_interval
        self.port = 0
        self.started: process.Started | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self, timeout: float = 60.0, attempts: int = 3) -> "ScratchPrometheus":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"evaluation_interval": self.evaluation_interval},
                                          "rule_files": [str(p) for p in self.rule_files]}, sort_keys=False))
        for _ in range(attempts):
            # A port free now may be taken before Prometheus binds it: another port then.
            self.port = _free_port()
            argv = [_prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
                    f"--storage.tsdb.retention.time={RETENTION}", f"--storage.tsdb.max-block-duration={BLOCK_SECONDS // 3600}h",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
            self.started, self.proc = process.spawn("prometheus", argv, self.log, self.workdir)
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise CheckFailed(f"scratch Prometheus did not become ready:\n{process.log_tail(self.log)}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.started is not None:
            process.stop(self.started, self.proc)
        self.started = self.proc = None

    def __enter__(self) -> "ScratchPrometheus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
