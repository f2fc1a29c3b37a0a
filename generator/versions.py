"""Versions: of the binaries on this machine (promtool, amtool, prometheus, ...) and of the images compose deploys.

`monstack validate` checks with the local promtool/amtool while compose runs newer
Prometheus and Alertmanager images; it prints both and warns when the checkers are
older. The native runner asks the binaries it starts which web pages they serve.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import components

Version = tuple[int, int, int]
_VERSION = re.compile(r"\bversion\s+v?(\d+)\.(\d+)\.(\d+)")
_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def text(v: Version | None) -> str:
    return ".".join(map(str, v)) if v else "unknown"


def of_output(output: str) -> Version | None:
    """'promtool, version 2.42.0+ds (branch: ...)' -> (2, 42, 0)."""
    m = _VERSION.search(output)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def of_binary(exe: str) -> Version | None:
    """What `exe --version` says (the Prometheus tools print it on stdout or stderr, by release)."""
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return of_output(proc.stdout + proc.stderr)


def of_image(image: str) -> Version | None:
    """'prom/prometheus:v3.5.0' -> (3, 5, 0); None for a tag that is no version (latest, a digest)."""
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    m = _TAG.match(last.rsplit(":", 1)[1])
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def deployed(component: str, overrides: dict[str, str] | None = None) -> tuple[str, Version | None]:
    """(image, version) compose runs for a component: the inventory's override or the pin in generator/images/Dockerfile."""
    image = (overrides or {}).get(component) or components.IMAGES[component]
    return image, of_image(image)


def alertmanager_has_ui(exe: str) -> bool:
    """Debian builds Alertmanager without its web UI and serves a placeholder from --web.ui-path unless the UI is put there;
    upstream builds embed the UI and have no such flag."""
    try:
        proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    m = re.search(r'--web\.ui-path="([^"]*)"', proc.stdout + proc.stderr)
    if not m:
        return True
    return (Path(m.group(1)) / "script.js").is_file()


@dataclass(frozen=True)
class Checker:
    """A local checker (promtool, amtool) beside the release compose deploys of what it checks."""

    tool: str
    path: str | None
    version: Version | None
    checks: str  # what it checks: Prometheus, Alertmanager
    image: str
    deployed: Version | None

    @property
    def older(self) -> bool:
        return bool(self.version and self.deployed and self.version < self.deployed)

    def describe(self) -> str:
        found = f"{self.tool} {text(self.version)}" if self.path else f"{self.tool} not found"
        return f"{found} (compose runs {self.checks} {text(self.deployed)}, {self.image})"

    def warning(self) -> str | None:
        if not self.older:
            return None
        return (f"{self.tool} {text(self.version)} is older than the {self.checks} {text(self.deployed)} compose deploys: "
                f"what changed after {text(self.version)} is not checked here (docs/prometheus-versions.md lists what "
                f"matters for the rendered files and how the tests cover it)")

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "path": self.path, "version": text(self.version) if self.version else None, "checks": self.checks,
                "deployed_image": self.image, "deployed_version": text(self.deployed) if self.deployed else None, "older": self.older}


def checkers(images: dict[str, str] | None = None) -> list[Checker]:
    out = []
    for tool, component, label in (("promtool", "prometheus", "Prometheus"), ("amtool", "alertmanager", "Alertmanager")):
        path = shutil.which(tool)
        image, deployed_version = deployed(component, images)
        out.append(Checker(tool, path, of_binary(path) if path else None, label, image, deployed_version))
    return out
