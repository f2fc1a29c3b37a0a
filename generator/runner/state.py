"""The runners' record of what they started: <state>/run/stack.json, read and written in one place.

`up` writes it, `down`, `status` and `test-alerts` read it, whatever mode started the stack.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator import names, webauth


def state_file(state_dir: Path) -> Path:
    return Path(state_dir) / names.STATE_RUN / "stack.json"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(state_file(state_dir).read_text())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        return None
    # Every command that talks to a running stack starts here: from now on its requests carry the credentials
    # the stack asks for (stack.web_auth), read from the password file the record names.
    webauth.from_state(data)
    return data


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Replace the record atomically: a reader sees the old one or the new one."""
    path = state_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def forget(state_dir: Path) -> None:
    state_file(state_dir).unlink(missing_ok=True)
