"""Helpers for tests that run the real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1.

Not a test module: test_delivery.py and test_secrets.py import it.
"""
from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from generator import names, pipeline
from generator.topology import Topology

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(inventory: Path, out: Path, topo: Topology) -> Path:
    """Render through the real pipeline (promtool/amtool checks included); the Alertmanager config path."""
    pipeline.render(inventory, out, topo)
    return out / names.ALERTMANAGER_CONFIG


class Alertmanager:
    """One Alertmanager process: clustering off, its own storage, stderr kept for inspection."""

    def __init__(self, config: Path, workdir: Path, log_level: str = "info") -> None:
        assert ALERTMANAGER, "prometheus-alertmanager is not installed (make deps)"
        self.config = config
        self.workdir = workdir
        self.log_level = log_level
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> "Alertmanager":
        # A port picked by free_port() can be taken before Alertmanager binds it: retry on a new one.
        for _ in range(attempts):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [ALERTMANAGER, f"--config.file={self.config}", f"--storage.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url=http://127.0.0.1:{self.port}",
                 "--cluster.listen-address=", f"--log.level={self.log_level}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
            log.close()
            if self._wait_ready(15):
                return self
            self.stop()
        raise RuntimeError(f"Alertmanager did not become ready:\n{self.log()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "Alertmanager":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- API v2 ----------------------------------------------------------------

    def post(self, alerts: list[dict[str, Any]]) -> None:
        r = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert r.status_code == 200, r.text

    def alerts(self) -> list[dict[str, Any]]:
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert(labels: dict[str, str], annotations: dict[str, str] | None = None, starts: dt.datetime | None = None,
          ends: dt.datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"labels": labels, "annotations": annotations or {}, "generatorURL": "http://127.0.0.1:19090/graph"}
    if starts is not None:
        body["startsAt"] = stamp(starts)
    if ends is not None:
        body["endsAt"] = stamp(ends)
    return body


def resolved(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same alerts, ended a second ago: Alertmanager sends the resolved notifications."""
    ended = now() - dt.timedelta(seconds=1)
    return [{**a, "endsAt": stamp(ended)} for a in alerts]

