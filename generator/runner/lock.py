"""One command at a time on a state folder: `up`, `apply`, `down` and the start of `test-alerts` hold its lock.

The lock is an flock on <state>/run/lock, released by the kernel when its holder
exits, however it exits (a killed command never leaves the folder locked). The
holder writes its pid, command and start time into the file, so a command that
finds the folder busy can say who holds it: it waits up to a bounded time, then
refuses with that holder's name.

Re-entrant within one process: `up` failing half-way calls `down` under the
lock it already holds.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from generator import names
from generator.errors import CheckFailed

DEFAULT_WAIT = 30.0  # seconds a command waits for another one on the same state folder
LOCK_FILE = "lock"

_held: dict[str, list[int]] = {}  # lock path -> [fd, depth] of the locks this process holds


def lock_path(state_dir: Path) -> Path:
    return Path(state_dir).absolute() / names.STATE_RUN / LOCK_FILE


def holder(state_dir: Path) -> dict | None:
    """Who holds (or last held) the lock: {pid, command, since}, None when unknown."""
    try:
        data = json.loads(lock_path(state_dir).read_text() or "null")
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(h: dict | None) -> str:
    if not h:
        return "another monstack command"
    since = time.strftime("%H:%M:%S", time.localtime(h.get("since", 0)))
    return f"pid {h.get('pid')} (monstack {h.get('command')}, since {since})"


@contextlib.contextmanager
def state_lock(state_dir: Path, command: str, wait: float = DEFAULT_WAIT,
               say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the state folder's lock for the block; wait up to `wait` seconds for another holder, then refuse."""
    path = lock_path(state_dir)
    key = str(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the processes `up` starts (O_CLOEXEC)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = describe(holder(state_dir))
                if time.monotonic() >= deadline:
                    raise CheckFailed(f"{Path(state_dir)} is in use by {who}; not running `monstack {command}` beside it. "
                                      f"Try again when it has finished (or give --lock-wait SECONDS to wait longer)") from None
                if not told and say:
                    say(f"waiting up to {wait:g}s for {who} to finish with {Path(state_dir)}")
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time(),
                                  "argv": sys.argv[1:]}).encode(), 0)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            del _held[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
