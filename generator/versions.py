"""Versions: of the binaries on this machine (promtool, amtool, prometheus, ...) and of the images compose deploys.

`monstack validate` checks with the local promtool/amtool while compose runs newer
Prometheus and Alertmanager images; it prints both and warns when the checkers are
older. The native runner asks the binaries it starts which web pages they serve.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

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
