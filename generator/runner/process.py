"""Detached processes we can find again and stop exactly: spawn, verify, stop, port checks.

A process is ours only while its start time is the one we recorded and it runs
the argv we started (or, for servers that rewrite their process title such as
redis-server, the same executable): a recycled pid is never signalled.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    argv: tuple[str, ...]
    start_ticks: int  # field 22 of /proc/<pid>/stat: tells a recycled pid apart

    def to_json(self) -> dict:
        return {"pid": self.pid, "argv": list(self.argv), "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, name: str, data: Mapping) -> "Started":
        return cls(name, int(data["pid"]), tuple(data["argv"]), int(data["start_ticks"]))


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def alive(p: Started) -> bool:
    """The process we started is still running (not a zombie, not a recycled pid)."""
    fields = _stat(p.pid)
    if fields is None or fields[0] in ("Z", "X") or int(fields[19]) != p.start_ticks:
        return False
    return cmdline(p.pid) == p.argv or _exe(p.pid) == os.path.realpath(p.argv[0])


def spawn(name: str, argv: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str] | None = None,
          user: str | None = None) -> tuple[Started, subprocess.Popen]:
    """Start argv in its own session (so it outlives this command and can be stopped as a group)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} monstack starts {name}\n".encode())
        out.flush()
        kwargs: dict = {}
        if user is not None:
            kwargs.update(user=user, group=_primary_group(user), extra_groups=[])
        proc = subprocess.Popen(list(argv), cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
    ticks = None
    for _ in range(100):  # /proc/<pid>/cmdline is the child's own only after exec
        ticks = start_ticks(proc.pid)
        if proc.poll() is not None or (ticks is not None and cmdline(proc.pid) == tuple(argv)):
            break
        time.sleep(0.01)
    return Started(name, proc.pid, tuple(argv), ticks or 0), proc


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def _group_members(pgid: int) -> list[int]:
    """Processes of the session we created (sid == pgid == the leader's pid)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and int(fields[2]) == pgid and int(fields[3]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def stop(p: Started, proc: subprocess.Popen | None = None, grace: float = 10.0, sig: int = signal.SIGTERM) -> str:
    """`sig` (SIGTERM) to the process group, SIGKILL what is left after `grace` seconds. Returns what happened."""
    if not alive(p):
        fields = _stat(p.pid)
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) != p.start_ticks:
            return f"not running (pid {p.pid} now belongs to another process; left alone)"
        _reap(p, proc)
        # The kernel does not hand out a pid still in use as a session id: members of the
        # session of a leader that is gone are the leader's own children.
        leftovers = _group_members(p.pid)
        if not leftovers:
            return "not running"
    else:
        leftovers = []
    try:
        if alive(p):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:  # not a group leader (a stray child whose leader is gone)
                os.kill(p.pid, sig)
        else:
            for pid in leftovers:
                os.kill(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(p, proc)
        if not alive(p) and not _group_members(p.pid):
            _collect(proc)
            return "stopped"
        time.sleep(0.05)
    for pid in ([p.pid] if alive(p) else []) + _group_members(p.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(p, proc)
        if not alive(p) and not _group_members(p.pid):
            break
        time.sleep(0.05)
    return f"killed (did not stop within {grace:g}s of {signal.Signals(sig).name})"


def _collect(proc: subprocess.Popen | None) -> None:
    """The process is gone or a zombie: wait for its status (it may have died after the last poll)."""
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)


def _reap(p: Started, proc: subprocess.Popen | None) -> None:
    """Collect the exit status of a child of this process, so it does not linger as a zombie."""
    if proc is not None:
        proc.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(p.pid, os.WNOHANG)


# --- processes of a state folder, recorded or not ------------------------------

# In the environment of every process `up` starts: the state folder it belongs to. It finds processes a
# command started but could not record (killed between spawning and recording, two commands at once).
MARKER = "MONSTACK_STATE_DIR"


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def environ_differs(pid: int, env: Mapping[str, str]) -> bool:
    """A running process was started with other values for these variables; False when its environment cannot be read."""
    try:
        entries = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return False
    return any(f"{k}={v}".encode() not in entries for k, v in env.items())


def marked(state_dir: Path) -> list[Started]:
    """Every running process started for state_dir, as the leaders of their sessions (one per process `up` started)."""
    entry = f"{MARKER}={Path(state_dir).absolute()}".encode()
    found: dict[int, Started] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        fields = _stat(pid)
        if pid == os.getpid() or fields is None or fields[0] in ("Z", "X") or not _environ_has(pid, entry):
            continue
        sid = int(fields[3])
        leader = sid if sid != pid and _stat(sid) is not None and _environ_has(sid, entry) else pid
        if leader not in found:
            argv = cmdline(leader) or ()
            found[leader] = Started(Path(argv[0]).name if argv else str(leader), leader, argv, start_ticks(leader) or 0)
    return [found[pid] for pid in sorted(found)]


# --- ports -------------------------------------------------------------------


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port now (SO_REUSEADDR, as the servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def who_listens(port: int) -> str | None:
    """'pid 123 (prometheus --config.file …)' for the process listening on a TCP port, when we may look."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except (PermissionError, FileNotFoundError, ProcessLookupError):
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    argv = cmdline(int(entry.name)) or ("?",)
                    text = " ".join(argv)
                    return f"pid {entry.name} ({text[:120]}{'…' if len(text) > 120 else ''})"
            except OSError:
                continue
    return "another user's process"


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    tail = text.rstrip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (log is empty)"
