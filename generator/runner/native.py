"""`monstack up --native`: the stack as local processes, from the binaries on PATH.

The inventory is rendered with the native topology (127.0.0.1, ports from
names.COMPONENTS shifted by port_offset) into <state>/config and checked by
promtool/amtool before anything starts. Every process runs in its own session
with its log in <state>/logs/<name>.log and its pid in <state>/run/<name>.pid;
<state>/run/stack.json records exactly what was started, so `down` stops those
processes and nothing else.

PostgreSQL refuses to run as root: when monstack runs as root, the throwaway
cluster runs as the `postgres` account (Debian's postgresql package creates it),
or `nobody` when there is none. When that account cannot reach the state dir (a
private parent such as /root), the cluster lives in the system temp folder
instead, and `down` removes it. Its password is generated into <state>/secrets.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets as secrets_mod
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from generator import checks, components, links, names, pipeline, topology
from generator.components import SAMPLE_EXPORTERS, needed_components
from generator.errors import CheckFailed, ToolMissing, UsageError
from generator.model import Model
from generator.runner import api, process
from generator.runner.state import read_state, save_state, state_file
from generator.runner.ui import native as native_ui

# Executables beside the components' own: PostgreSQL's cluster setup.
HELPERS: dict[str, tuple[tuple[str, ...], str | None]] = {"initdb": (("initdb",), "postgresql")}
# Fast shutdown: PostgreSQL's SIGTERM waits for clients (the exporter) to disconnect.
STOP_SIGNALS = {"postgres": signal.SIGINT}
SINKS = "sinks"
PLACEHOLDER_SECRET = "monstack-local-sink-placeholder\n"

Say = Callable[[str], None]


def _binaries(name: str) -> tuple[tuple[str, ...], str | None]:
    """(executables to look for, Debian package that ships the first) of a component or helper."""
    if name in HELPERS:
        return HELPERS[name]
    c = components.get(name)
    return c.binaries, c.package


def find_binary(component: str) -> str | None:
    candidates, _ = _binaries(component)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    if component in ("postgres", "initdb"):
        # Debian keeps the server binaries off PATH, one folder per major version.
        versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{candidates[0]}"),
                          key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
        if versions:
            return versions[-1]
    return None


def missing_binaries(wanted: list[str]) -> list[tuple[str, str, str | None]]:
    """(component, executable, Debian package) for every component whose binary is not found."""
    out = []
    for c in wanted:
        if (c in HELPERS or not components.get(c).sample) and find_binary(c) is None:
            candidates, package = _binaries(c)
            out.append((c, candidates[0], package))
    return out


@dataclass(frozen=True)
class Spec:
    """One process to start."""

    name: str
    argv: tuple[str, ...]
    ports: tuple[int, ...]  # every port it listens on; the first is the one Prometheus scrapes
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None


def missing_receiver_secrets(model: Model, inventory: Path) -> dict[str, list[str]]:
    """Secret file reference -> receivers that need it, for every referenced file that does not exist."""
    root = inventory.parent
    needs: dict[str, list[str]] = {}
    for r in model.receivers.values():
        for attr in ("webhook_url_file", "bot_token_file", "routing_key_file", "auth_password_file", "bearer_token_file"):
            ref = getattr(r, attr, None)
            if ref and not (Path(ref) if os.path.isabs(ref) else root / ref).is_file():
                needs.setdefault(ref, []).append(r.name)
    return needs


class NativeStack:
    """The stack as local processes; see the module docstring."""

    def __init__(self, inventory: Path, state_dir: Path = Path(names.STATE_DIR), *, sinks: bool = False,
                 port_offset: int = 0, progress: Say | None = None):
        self.inventory = Path(inventory).absolute()
        self.state_dir = Path(state_dir).absolute()
        self.sinks = sinks
        self.port_offset = port_offset
        self._say: Say = progress or (lambda msg: None)
        self._procs: dict[str, subprocess.Popen] = {}  # children of this Python process, reaped on down()
        self.notes: list[str] = []  # what the user should know (a component not started, receivers on sinks)

    # --- where things are -----------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return self.state_dir / names.STATE_CONFIG

    @property
    def data_dir(self) -> Path:
        return self.state_dir / names.STATE_DATA

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / names.STATE_LOGS

    @property
    def run_dir(self) -> Path:
        return self.state_dir / names.STATE_RUN

    @property
    def state_file(self) -> Path:
        return state_file(self.state_dir)

    def port(self, component: str) -> int:
        return components.get(component).native_port + self.port_offset

    @property
    def sink_ports(self) -> tuple[int, int]:
        return names.NATIVE_SINK_HTTP_PORT + self.port_offset, names.NATIVE_SINK_SMTP_PORT + self.port_offset

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.port('prometheus')}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.port('alertmanager')}"

    @property
    def grafana_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port('grafana')}" if find_binary("grafana") else None

    @property
    def sink_url(self) -> str | None:
        return f"http://127.0.0.1:{self.sink_ports[0]}" if self.sinks else None

    @property
    def sink_smtp(self) -> str | None:
        return f"127.0.0.1:{self.sink_ports[1]}" if self.sinks else None

    def component_url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.port(component)}"

    @classmethod
    def from_state(cls, state_dir: Path = Path(names.STATE_DIR), progress: Say | None = None) -> "NativeStack":
        """The stack a previous `up` started in state_dir."""
        state = read_state(Path(state_dir))
        if state is None or state.get("mode") != "native":
            raise UsageError(f"no native stack recorded in {Path(state_dir) / names.STATE_RUN / 'stack.json'}")
        return cls(Path(state["inventory"]), Path(state_dir), sinks=state["sinks"], port_offset=state["port_offset"],
                   progress=progress)

    # --- plan -------------------------------------------------------------------
    def topology(self, model: Model, ui: links.Ui | None = None) -> topology.Topology:
        overrides = {}
        if self.sinks:
            # Alertmanager still reads e.g. routing_key_file before notifying a sink, and sends the key
            # along: stand-ins for every receiver secret, so no real one lands in a sink's capture log.
            for ref in model.receiver_secret_files():
                overrides[ref] = str(self.state_dir / "sink-secrets" / names.secret_name(ref))
        return topology.native(str(self.inventory.parent), sink_http=self.sink_url and self.sink_url[len("http://"):],
                               sink_smtp=self.sink_smtp, port_offset=self.port_offset, secret_overrides=overrides,
                               config_dir=str(self.config_dir), ui=ui)

    def ui(self) -> links.Ui:
        """Where this stack's pages are and which the binaries serve (links in rules, notifications, `up`)."""
        return native_ui(self.port_offset)

    def plan_notes(self, model: Model) -> list[str]:
        """What the inventory asks for that does not run natively here."""
        if "grafana" in needed_components(model) and find_binary("grafana") is None:
            return [f"Grafana is not started: grafana-server is not on PATH (install Grafana, or use docker compose); "
                    f"graphs, alerts and targets are in the Prometheus UI at {self.prometheus_url}"]
        return []

    def components(self, model: Model) -> list[str]:
        """What runs, in start order: sinks and databases first, Prometheus after what it scrapes, Grafana last."""
        wanted = sorted(needed_components(model), key=lambda name: components.get(name).stage)
        out = [SINKS] if self.sinks else []
        out += [c for c in wanted if not (c == "grafana" and find_binary("grafana") is None)]
        return out

    def _pg_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        for account in ("postgres", "nobody"):
            try:
                pwd.getpwnam(account)
                return account
            except KeyError:
                continue
        raise ToolMissing("PostgreSQL refuses to run as root and there is no postgres or nobody account to run it as")

    def place(self, model: Model) -> "NativePlace":
        return NativePlace(self, model)

    def spec(self, component: str, model: Model) -> Spec:
        """How to start one component: a loop-free read of its row in the component table."""
        if component == SINKS:
            http_port, smtp_port = self.sink_ports
            return Spec(SINKS, (sys.executable, "-m", "generator.sinks", "--http", f"127.0.0.1:{http_port}", "--smtp",
                                f"127.0.0.1:{smtp_port}", "--jsonl", str(self.logs_dir / "sinks.jsonl")),
                        (http_port, smtp_port), f"http://127.0.0.1:{http_port}/health", {"PYTHONUNBUFFERED": "1"})
        c = components.get(component)
        place = self.place(model)
        args = c.args(c, place) or []
        env = dict(c.env(c, place))
        if c.module:
            exe: tuple[str, ...] = (sys.executable, "-m", c.module)
            env["PYTHONUNBUFFERED"] = "1"
        else:
            binary = find_binary(component)
            assert binary, component  # checked before planning
            exe = (binary,)
        port = self.port(component)
        ready = f"tcp://127.0.0.1:{port}" if c.health == "tcp" else f"http://127.0.0.1:{port}{c.health}"
        return Spec(component, exe + tuple(args), (port,), ready, env, user=self._pg_user() if component == "postgres" else None)

    def planned_ports(self) -> list[int]:
        """Every 127.0.0.1 port `up` would listen on for this inventory (tests pick a port_offset where all are free)."""
        model = pipeline.load_model(self.inventory)
        return sorted({port for c in self.components(model) if c == SINKS or c in SAMPLE_EXPORTERS or find_binary(c)
                       for port in self.spec(c, model).ports})

    @property
    def _pg_password_file(self) -> Path:
        return self.state_dir / "secrets" / "postgres_password"

    # --- up ---------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> None:
        """Render, check, start every component, wait for readiness and every target up; raise with the log tail on failure."""
        deadline = time.monotonic() + timeout
        model = pipeline.load_model(self.inventory)
        self.notes = self.plan_notes(model)
        running = self._recorded_running()
        if running:
            state = read_state(self.state_dir) or {}
            if (state.get("sinks"), state.get("port_offset"), state.get("inventory")) != (self.sinks, self.port_offset, str(self.inventory)):
                raise UsageError(f"a stack started with other settings is running from {self.state_dir} "
                                 f"({', '.join(sorted(running))}): run `monstack down` first")
        components = self.components(model)
        self._check_binaries(components)
        missing = missing_receiver_secrets(model, self.inventory)
        if missing and not self.sinks:
            for ref, receivers in sorted(missing.items()):
                self.notes.append(f"receivers {', '.join(receivers)} will fail to notify: {ref} does not exist")
        elif self.sinks:
            self.notes.append(f"every receiver notifies the local sinks at {self.sink_url} (email: smtp {self.sink_smtp}); "
                              f"nothing leaves this machine")
        to_start = [c for c in components if c not in running]
        self._check_ports([self.spec(c, model) for c in to_start])

        self._say(f"rendering {self.inventory.name} for native processes into {self._rel(self.config_dir)}")
        topo = self.topology(model, self.ui())
        for path in topo.secret_overrides.values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _write_private(Path(path), PLACEHOLDER_SECRET)
        run_checks = checks.available("promtool") and checks.available("amtool")
        pipeline.render(self.inventory, self.config_dir, topo, run_checks=run_checks)

        for d in (self.data_dir, self.logs_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        for c in to_start:
            if c not in (SINKS, "postgres") and not (self.data_dir / c).exists():
                (self.data_dir / c).mkdir()  # a component's data folder (a file in its way is its own error to report)
        if running:
            self._say(f"already running: {', '.join(c for c in components if c in running)}; reloading their configuration")
            for c in ("prometheus", "alertmanager"):
                if c in running:
                    api.reload(self.component_url(c))
        self._write_state(model, components)
        try:
            if "postgres" in to_start:
                self._prepare_postgres()
            if "grafana" in to_start:
                ensure_generated_secret(grafana_password_file(self.inventory))
            specs = [self.spec(c, model) for c in to_start]
            for spec in specs:
                self._start(spec)
            self._say(f"started {len(specs)} process(es): " + ", ".join(f"{s.name} ({s.ports[0]})" for s in specs))
            self._wait_ready([self.spec(c, model) for c in components], deadline)
            self._wait_targets(deadline)
        except BaseException:
            self._say("start failed: stopping what was started")
            self.down(quiet=True)
            raise

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def _check_binaries(self, components: list[str]) -> None:
        wanted = list(components) + (["initdb"] if "postgres" in components else [])
        missing = missing_binaries([c for c in wanted if c != SINKS])
        if missing:
            packages = sorted({pkg for _, _, pkg in missing if pkg})
            lines = [f"  {c}: {exe} not found" + (f" (Debian package {pkg})" if pkg else "") for c, exe, pkg in missing]
            raise ToolMissing("cannot start the native stack, binaries missing:\n" + "\n".join(lines) +
                              (f"\ninstall them: make deps, or apt-get install {' '.join(packages)}" if packages else ""))

    def _check_ports(self, specs: list[Spec]) -> None:
        taken = []
        for spec in specs:
            for port in spec.ports:
                if not process.port_free(port):
                    holder = process.who_listens(port)
                    taken.append(f"  127.0.0.1:{port} ({spec.name}) is in use" + (f" by {holder}" if holder else ""))
        if taken:
            raise CheckFailed("cannot start the native stack, ports taken:\n" + "\n".join(taken) +
                              "\nstop what holds them (`monstack down` if it is an earlier stack), or start with --port-offset N")

    def _pg_data(self) -> Path:
        state = read_state(self.state_dir) or {}
        return Path(state.get("postgres_data") or self.data_dir / "postgres")

    def _reachable(self, user: str, folder: Path) -> bool:
        return subprocess.run(["/bin/sh", "-c", 'cd "$1"', "sh", str(folder)], user=user, capture_output=True).returncode == 0

    def _prepare_postgres(self) -> None:
        user = self._pg_user()
        data = self.data_dir / "postgres"
        if user and not self._reachable(user, self.data_dir):
            # A parent of the state dir is private (e.g. /root): the cluster lives in the system's temp
            # folder instead, one per state dir, recorded so later runs use it again.
            import hashlib
            import tempfile

            digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
            data = Path(tempfile.gettempdir()) / f"monstack-postgres-{digest}"
            self.notes.append(f"PostgreSQL data is in {data}: {user} (PostgreSQL refuses root) cannot reach {self.data_dir}")
        state = read_state(self.state_dir) or {}
        state["postgres_data"] = str(data)
        self._save_state(state)
        pw = self._pg_password_file
        if not pw.is_file():
            pw.parent.mkdir(parents=True, exist_ok=True)
            _write_private(pw, secrets_mod.token_urlsafe(24))
        if (data / "PG_VERSION").is_file():
            return
        if data.exists():
            shutil.rmtree(data)  # a half-made cluster from an interrupted initdb
        data.mkdir(parents=True)
        pwcopy = data.parent / f".{data.name}-initdb-pwfile"  # where the cluster's owner can read it
        _write_private(pwcopy, pw.read_text())
        if user:
            entry = pwd.getpwnam(user)
            os.chown(data, entry.pw_uid, entry.pw_gid)
            os.chmod(data, 0o700)
            os.chown(pwcopy, entry.pw_uid, entry.pw_gid)
            if not self._reachable(user, data):
                raise CheckFailed(f"PostgreSQL runs as {user} (it refuses root) but {user} cannot reach {data}: "
                                  f"a parent folder is not searchable by others (chmod o+x it, or use another --state-dir)")
        initdb = find_binary("initdb")
        assert initdb, "initdb"  # checked with the other binaries before start
        self._say(f"creating a throwaway PostgreSQL cluster in {self._rel(data)}" + (f" (runs as {user})" if user else ""))
        try:
            proc = subprocess.run([initdb, "-D", str(data), "-U", "postgres", f"--pwfile={pwcopy}", "--auth=scram-sha-256",
                                   "-E", "UTF8", "--locale=C", "--no-instructions"],
                                  user=user, capture_output=True, text=True, timeout=120)
        finally:
            pwcopy.unlink(missing_ok=True)
        (self.logs_dir / "initdb.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise CheckFailed(f"initdb failed (log: {self.logs_dir / 'initdb.log'}):\n{(proc.stdout + proc.stderr).strip()[-2000:]}")

    def _start(self, spec: Spec) -> None:
        started, proc = process.spawn(spec.name, spec.argv, self.logs_dir / f"{spec.name}.log", self.state_dir, spec.env,
                                      user=spec.user)
        self._procs[spec.name] = proc
        (self.run_dir / f"{spec.name}.pid").write_text(f"{started.pid}\n")
        state = read_state(self.state_dir) or {}
        state.setdefault("processes", {})[spec.name] = {**started.to_json(), "ports": list(spec.ports),
                                                       "ready_url": spec.ready_url}
        self._save_state(state)

    def _wait_ready(self, specs: list[Spec], deadline: float) -> None:
        waiting = {s.name: s for s in specs}
        procs = self._recorded()
        last = None
        while waiting:
            for name in list(waiting):
                p = procs.get(name)
                if p is None or not process.alive(p):
                    raise CheckFailed(f"{name} exited during start-up; the end of {self._rel(self.logs_dir / (name + '.log'))}:\n"
                                      + process.log_tail(self.logs_dir / f"{name}.log"))
                if api.ready(waiting[name].ready_url):
                    del waiting[name]
            line = f"ready: {len(specs) - len(waiting)}/{len(specs)}" + (f" (waiting for {', '.join(waiting)})" if waiting else "")
            if line != last:
                self._say(line)
                last = line
            if not waiting:
                return
            if time.monotonic() > deadline:
                name = next(iter(waiting))
                raise CheckFailed(f"not ready in time: {', '.join(waiting)}; the end of {self._rel(self.logs_dir / (name + '.log'))}:\n"
                                  + process.log_tail(self.logs_dir / f"{name}.log"))
            time.sleep(0.2)

    def managed_addresses(self) -> set[str]:
        state = read_state(self.state_dir) or {}
        return {f"127.0.0.1:{p['ports'][0]}" for p in state.get("processes", {}).values()}

    def _wait_targets(self, deadline: float) -> None:
        ours = self.managed_addresses()
        last = None
        while True:
            try:
                ts = api.targets(self.prometheus_url)
            except Exception as exc:  # Prometheus answered /-/ready; a hiccup here is worth a retry
                ts, last = [], f"asking Prometheus for targets: {exc}"
            mine = [t for t in ts if t.address in ours]
            others = [t for t in ts if t.address not in ours]
            up = sum(t.health == "up" for t in ts)
            pending = [t for t in mine if t.health != "up"] + [t for t in others if t.health == "unknown"]
            line = f"targets: {up}/{len(ts)} up" + (f" (waiting for {', '.join(sorted({t.job for t in pending}))})" if pending else "")
            if line != last and ts:
                self._say(line)
                last = line
            if ts and not pending:
                for t in others:
                    if t.health != "up":
                        self.notes.append(f"target {t.instance} of {t.job} (not started by monstack) is down: {t.last_error}")
                return
            if time.monotonic() > deadline:
                bad = [t for t in mine if t.health != "up"]
                detail = "\n".join(f"  {t.job} {t.instance}: {t.health} {t.last_error}" for t in bad or pending)
                component = self._component_of(bad[0]) if bad else None
                tail = ""
                if component:
                    tail = f"\nthe end of {self._rel(self.logs_dir / (component + '.log'))}:\n" + process.log_tail(self.logs_dir / f"{component}.log")
                raise CheckFailed(f"targets not up in time:\n{detail}{tail}")
            time.sleep(0.5)

    def _component_of(self, target: api.Target) -> str | None:
        state = read_state(self.state_dir) or {}
        for name, p in state.get("processes", {}).items():
            if target.address == f"127.0.0.1:{p['ports'][0]}":
                return name
        return None

    # --- state ------------------------------------------------------------------
    def _write_state(self, model: Model, components: list[str]) -> None:
        state = read_state(self.state_dir) or {}
        state.update({
            "mode": "native",
            "inventory": str(self.inventory),
            "sinks": self.sinks,
            "port_offset": self.port_offset,
            "components": components,
            "urls": self.urls(model),
            "notes": self.notes,
        })
        state.setdefault("processes", {})
        self._save_state(state)

    def urls(self, model: Model | None = None) -> dict[str, str | None]:
        out = {"prometheus": self.prometheus_url, "alertmanager": self.alertmanager_url,
               "grafana": self.grafana_url, "sink": self.sink_url, "sink_smtp": self.sink_smtp}
        if model is not None and "victoria-metrics" in needed_components(model):
            out["victoria-metrics"] = f"http://127.0.0.1:{self.port('victoria-metrics')}"
        return out

    def _save_state(self, state: dict) -> None:
        save_state(self.state_dir, state)

    def _recorded(self) -> dict[str, process.Started]:
        """The processes this state dir records, in start order."""
        state = read_state(self.state_dir) or {}
        procs = state.get("processes", {})
        order = [c for c in state.get("components", []) if c in procs] + [c for c in procs if c not in state.get("components", [])]
        return {name: process.Started.from_json(name, procs[name]) for name in order}

    def _recorded_running(self) -> set[str]:
        return {name for name, p in self._recorded().items() if process.alive(p)}

    # --- down -------------------------------------------------------------------
    def down(self, quiet: bool = False) -> None:
        """Stop exactly the processes this state dir records, in reverse start order; then check their ports are free."""
        state = read_state(self.state_dir) or {}
        recorded = self._recorded()
        ports = [port for p in state.get("processes", {}).values() for port in p.get("ports", [])]
        for name in reversed(list(recorded)):
            p = recorded[name]
            what = process.stop(p, self._procs.get(name), sig=STOP_SIGNALS.get(name, signal.SIGTERM))
            if not quiet:
                self._say(f"{name}: {what}")
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        self._procs.clear()
        pg_data = Path(state.get("postgres_data") or self.data_dir / "postgres")
        if not pg_data.is_relative_to(self.state_dir) and (pg_data / "PG_VERSION").is_file():
            shutil.rmtree(pg_data, ignore_errors=True)  # the throwaway cluster that could not live in the state dir
        if state:
            state["processes"] = {}
            self._save_state(state)
            self.state_file.unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        busy = ports
        while busy and time.monotonic() < deadline:
            busy = [port for port in ports if not process.port_free(port)]
            if busy:
                time.sleep(0.1)
        if busy:
            raise CheckFailed("stopped, but ports still bound: " + ", ".join(
                f"127.0.0.1:{port} by {process.who_listens(port) or 'unknown'}" for port in busy))

    # --- status -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        state = read_state(self.state_dir) or {}
        components = []
        for name, p in self._recorded().items():
            running = process.alive(p)
            url = state["processes"][name].get("ready_url", "")
            components.append({"name": name, "pid": p.pid, "running": running, "ready": running and api.ready(url),
                               "address": f"127.0.0.1:{state['processes'][name]['ports'][0]}",
                               "log": str(self.logs_dir / f"{name}.log")})
        out: dict[str, Any] = {"mode": "native", "state_dir": str(self.state_dir), "inventory": state.get("inventory"),
                               "urls": state.get("urls", self.urls()), "notes": state.get("notes", []),
                               "components": components, "targets": None, "alerts": None, "error": None}
        try:
            out["targets"] = [t.__dict__ | {"address": t.address} for t in api.targets(self.prometheus_url)]
            out["alerts"] = [a.__dict__ for a in api.alerts(self.prometheus_url)]
        except Exception as exc:
            out["error"] = f"Prometheus at {self.prometheus_url} did not answer: {exc}"
        return out


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read, created with that mode (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def grafana_password_file(inventory: Path) -> Path:
    return Path(inventory).absolute().parent / names.GRAFANA_ADMIN_PASSWORD_FILE


def ensure_generated_secret(path: Path, mode: int = 0o600) -> bool:
    """Create a random secret at path when there is none (never 'admin'). True when created."""
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(secrets_mod.token_urlsafe(24))
    os.chmod(path, mode)
    return True


class NativePlace(components.Place):
    """127.0.0.1 on the stack's shifted ports, paths in its state folder."""

    mode = "native"

    def __init__(self, stack: NativeStack, model: Model):
        self._stack = stack
        self.stack = model.stack

    def port(self, c: components.Component) -> int:
        return self._stack.port(c.name)

    def listen(self, c: components.Component) -> str:
        return f"127.0.0.1:{self.port(c)}"

    bind = listen

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self._stack.port(name)}"

    def external_url(self, c: components.Component) -> str:
        return f"http://{self.listen(c)}"

    def config(self, c: components.Component, rel: str) -> str:
        return str(self._stack.config_dir / rel)

    def data(self, c: components.Component) -> str:
        return str(self._stack._pg_data()) if c.name == "postgres" else str(self._stack.data_dir / c.name)

    def secret(self, ref: str) -> str:
        if ref == names.POSTGRES_PASSWORD_FILE:
            return str(self._stack._pg_password_file)  # generated per state folder
        return ref if os.path.isabs(ref) else str(self._stack.inventory.parent / ref)

    def logs(self) -> str:
        return str(self._stack.logs_dir)

    def binary(self, c: components.Component) -> str:
        found = find_binary(c.name)
        assert found, c.name
        return found
