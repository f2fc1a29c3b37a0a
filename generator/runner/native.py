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

`up` on a running stack applies the inventory (generator/runner/apply.py): it
reloads only components whose configuration changed, restarts those whose
command line changed, whose data folder is gone or that died, and puts the
last good configuration back when a component rejects the new one. Every
process carries the state folder in its environment (process.MARKER), so
`down` also stops what an interrupted or concurrent command started but never
recorded. One command at a time holds the state folder (runner/lock.py).
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

from generator import checks, components, links, names, pipeline, topology, webauth
from generator.components import SAMPLE_EXPORTERS, needed_components
from generator.errors import CheckFailed, ToolMissing, UsageError
from generator.model import Model
from generator.runner import api, apply, process
from generator.runner.lock import DEFAULT_WAIT, state_lock
from generator.runner.state import read_state, save_state, state_file
from generator.runner.ui import native as native_ui

# Executables beside the components' own: PostgreSQL's cluster setup.
HELPERS: dict[str, tuple[tuple[str, ...], str | None]] = {"initdb": (("initdb",), "postgresql")}
# Fast shutdown: PostgreSQL's SIGTERM waits for clients (the exporter) to disconnect.
STOP_SIGNALS = {"postgres": signal.SIGINT}
SINKS = "sinks"
# Keys monstack makes for the stack itself, one set per state folder (<state>/secrets), created before anything starts.
GENERATED_SECRETS = (names.CONTROL_TOKEN_FILE, names.VICTORIA_METRICS_AUTH_KEY_FILE)
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
                 port_offset: int = 0, progress: Say | None = None, lock_wait: float = DEFAULT_WAIT):
        self.inventory = Path(inventory).absolute()
        self.state_dir = Path(state_dir).absolute()
        self.sinks = sinks
        self.port_offset = port_offset
        self.lock_wait = lock_wait
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
    def good_dir(self) -> Path:
        return self.state_dir / names.STATE_CONFIG_GOOD

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

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

    def alertmanager_urls(self, model: Model) -> list[str]:
        """Every Alertmanager replica: Prometheus (and test-alerts) send each alert to all of them."""
        return [self.component_url(r) for r in components.replica_names(components.get("alertmanager"), model.stack)]

    @classmethod
    def from_state(cls, state_dir: Path = Path(names.STATE_DIR), progress: Say | None = None,
                   lock_wait: float = DEFAULT_WAIT) -> "NativeStack":
        """The stack a previous `up` started in state_dir."""
        state = read_state(Path(state_dir))
        if state is None or state.get("mode") != "native":
            raise UsageError(f"no native stack recorded in {Path(state_dir) / names.STATE_RUN / 'stack.json'}")
        return cls(Path(state["inventory"]), Path(state_dir), sinks=state["sinks"], port_offset=state["port_offset"],
                   progress=progress, lock_wait=lock_wait)

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
        ports = (port,) + ((place.cluster_port(c),) if c.cluster_port and c.count(model.stack) > 1 else ())
        return Spec(component, exe + tuple(args), ports, ready, env, user=self._pg_user() if component == "postgres" else None)

    def planned_ports(self) -> list[int]:
        """Every 127.0.0.1 port `up` would listen on for this inventory (tests pick a port_offset where all are free)."""
        model = pipeline.load_model(self.inventory)
        return sorted({port for c in self.components(model) if c == SINKS or c in SAMPLE_EXPORTERS or find_binary(c)
                       for port in self.spec(c, model).ports})

    @property
    def _pg_password_file(self) -> Path:
        return self.state_dir / "secrets" / "postgres_password"

    def generated_secret(self, ref: str) -> Path:
        """Where a key of GENERATED_SECRETS lives for this state folder; made on first use."""
        path = self.state_dir / "secrets" / Path(ref).name
        ensure_generated_secret(path)
        return path

    @property
    def web_config_file(self) -> Path:
        return self.state_dir / "secrets" / Path(names.WEB_CONFIG_FILE).name

    def _web_auth(self, model: Model) -> None:
        """stack.web_auth: the password (made when its file does not exist yet), the web config with its hash, and
        the credentials this command's own requests to the stack carry."""
        auth = model.stack.web_auth
        if auth is None:
            webauth.forget(self.web_auth_urls(model))
            return
        created = not Path(self.topology(model).secret(auth.password_file)).is_file()
        password = Path(self.place(model).secret(auth.password_file))  # made when it does not exist
        if created:
            self.notes.append(f"stack.web_auth: generated a password into {auth.password_file} (user {auth.username})")
        webauth.write_web_config(self.web_config_file, auth.username, password)
        webauth.remember(self.web_auth_urls(model), auth.username, password)

    def web_auth_urls(self, model: Model) -> list[str]:
        """Every server behind stack.web_auth: Prometheus and Alertmanager (each replica), VictoriaMetrics."""
        servers = ["prometheus", "alertmanager"] + (["victoria-metrics"] if "victoria-metrics" in needed_components(model) else [])
        return [self.component_url(r) for name in servers for r in components.replica_names(components.get(name), model.stack)]

    def control_headers(self) -> dict[str, str]:
        """What a request to a sample exporter's fault-injection API (/control) must carry."""
        return {names.CONTROL_HEADER: self.generated_secret(names.CONTROL_TOKEN_FILE).read_text().strip()}

    # --- up ---------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> None:
        """Start the stack, or apply the inventory to the running one; raise with the component's log line on failure.

        Holds the state folder's lock (a second command waits, then refuses)."""
        with state_lock(self.state_dir, "up", self.lock_wait, self._say):
            self._up(timeout)

    def _up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        model = pipeline.load_model(self.inventory)
        self.notes = self.plan_notes(model)
        recorded = self._recorded()
        running = {name for name, p in recorded.items() if process.alive(p)}
        if running:
            state = read_state(self.state_dir) or {}
            if (state.get("sinks"), state.get("port_offset"), state.get("inventory")) != (self.sinks, self.port_offset, str(self.inventory)):
                raise UsageError(f"a stack started with other settings is running from {self.state_dir} "
                                 f"({', '.join(sorted(running))}): run `monstack down` first")
        wanted = self.components(model)
        self._check_binaries(wanted)
        missing = missing_receiver_secrets(model, self.inventory)
        if missing and not self.sinks:
            for ref, receivers in sorted(missing.items()):
                self.notes.append(f"receivers {', '.join(receivers)} will fail to notify: {ref} does not exist")
        elif self.sinks:
            self.notes.append(f"every receiver notifies the local sinks at {self.sink_url} (email: smtp {self.sink_smtp}); "
                              f"nothing leaves this machine")
        topo = self.topology(model, self.ui())
        self._web_auth(model)
        problems = apply.preflight(model, topo)
        if problems:
            raise CheckFailed("not applied, nothing changed: files the configuration refers to cannot be used:\n"
                              + "\n".join(f"  {self.inventory.name}: {p}" for p in problems))
        self._stop_strays(recorded)
        specs = {c: self.spec(c, model) for c in wanted}
        restart = {c: why for c in wanted if c in running and (why := self._restart_reason(c, specs[c], recorded[c]))}
        retire = [c for c in recorded if c in running and c not in wanted]
        to_start = [c for c in wanted if c not in running or c in restart]
        self._check_ports([specs[c] for c in to_start if c not in restart])  # a restarted one frees its own ports first

        self._say(f"rendering {self.inventory.name} for native processes into {self._rel(self.config_dir)}")
        for path in topo.secret_overrides.values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _write_private(Path(path), PLACEHOLDER_SECRET)
        run_checks = checks.available("promtool") and checks.available("amtool")
        # What to go back to when a component rejects the new configuration: the last one every component confirmed,
        # else (a stack started before monstack kept one) the one they were started with.
        good = (apply.tree(self.good_dir) or apply.tree(self.config_dir)) if running else {}
        pipeline.render(self.inventory, self.config_dir, topo, run_checks=run_checks)
        files = apply.tree(self.config_dir)
        rendered = {c: d for c in wanted if c != SINKS and (d := apply.digest(files, c))}

        for folder in (self.data_dir, self.logs_dir, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        applied = (read_state(self.state_dir) or {}).get("applied", {}) if running else {}
        reload = [c for c in wanted if c in running and c not in restart and c in rendered and applied.get(c) != rendered[c]]
        self._write_state(model, wanted, rendered=rendered, applied=applied)
        if running:
            self._say(self._plan_text(wanted, running, reload, restart, retire, to_start))
        reloaded: list[str] = []
        try:
            for c in reload:
                reloaded.append(c)
                apply.reload(self.component_url(c), c, self.log(c), self._hangup(c))
                apply.confirm(self.component_url(c), c, files, self.log(c))
                self._set_applied(c, rendered[c])
        except apply.Rejected as exc:
            self._roll_back(exc, good, reloaded, [], model)
        started: list[str] = []
        try:
            for c in retire + list(restart):
                why = restart.get(c, "the inventory no longer runs it")
                self._say(f"{c}: stopping ({why})")
                self._stop_one(c, recorded[c])
            for c in to_start:
                if c not in (SINKS, "postgres") and not (self.data_dir / c).exists():
                    (self.data_dir / c).mkdir()  # a file in its way is its own error to report
            if "grafana" in to_start:
                ensure_generated_secret(grafana_password_file(self.inventory))
            # PostgreSQL's first start creates its cluster (initdb: seconds). What does not need it starts first,
            # so that Prometheus' discovery delay and first scrapes run meanwhile.
            after_db = [c for c in to_start if "postgres" in to_start and c != SINKS and (c == "postgres" or "postgres" in components.get(c).depends)]
            for c in [c for c in to_start if c not in after_db]:
                self._start(specs[c])
                started.append(c)
            if after_db:
                self._prepare_postgres()
                specs["postgres"] = self.spec("postgres", model)  # its data folder is chosen by _prepare_postgres
            for c in after_db:
                self._start(specs[c])
                started.append(c)
            if started:
                self._say(f"started {len(started)} process(es): " + ", ".join(f"{c} ({specs[c].ports[0]})" for c in started))
            # A running stack is not held hostage by a component this command did not touch (a target with a
            # fault, say): it waits for what it started, and `status` reports the rest.
            self._wait_ready([specs[c] for c in (started if running else wanted)], deadline)
            self._wait_targets(deadline, set(started) if running else None)
            for c in started:
                if c in rendered:
                    apply.confirm(self.component_url(c), c, files, self.log(c))
                    self._set_applied(c, rendered[c])
        except apply.Rejected as exc:
            if not running or not good:
                self._say("start failed: stopping what was started")
                self.down(quiet=True)
                raise CheckFailed(f"{exc.component} did not load the rendered configuration: {exc.detail}\n"
                                  f"(its log: {self._rel(self.log(exc.component))})") from None
            self._roll_back(exc, good, reloaded, started, model)
        except BaseException:
            if running:
                # The rest of the stack keeps running; a restarted component stays for `status` to show with its log.
                fresh = [c for c in started if c not in restart]
                self._say("start failed" + (f": stopping what this command started ({', '.join(fresh)})" if fresh else ""))
                for c in reversed(fresh):
                    self._stop_one(c, self._recorded().get(c))
            else:
                self._say("start failed: stopping what was started")
                self.down(quiet=True)
            raise
        apply.save_good(files, self.good_dir)

    def _plan_text(self, wanted: list[str], running: set[str], reload: list[str], restart: dict[str, str],
                   retire: list[str], to_start: list[str]) -> str:
        parts = [f"already running: {', '.join(c for c in wanted if c in running)}"]
        if reload:
            parts.append(f"reloading (configuration changed): {', '.join(reload)}")
        for c, why in restart.items():
            parts.append(f"restarting {c} ({why})")
        if retire:
            parts.append(f"stopping (no longer in the inventory): {', '.join(retire)}")
        fresh = [c for c in to_start if c not in restart]
        if fresh:
            parts.append(f"starting: {', '.join(fresh)}")
        if len(parts) == 1:
            parts.append("nothing changed: no component reloaded or restarted")
        return "; ".join(parts)

    def _restart_reason(self, name: str, spec: Spec, recorded: process.Started) -> str | None:
        if tuple(spec.argv) != recorded.argv:
            return "its command line changed"
        if process.environ_differs(recorded.pid, spec.env):
            return "its environment changed"  # e.g. VictoriaMetrics' basic auth password (stack.web_auth)
        return self._data_problem(name)

    def _data_problem(self, name: str) -> str | None:
        """Whether the data folder a running component was started on is gone or was replaced since."""
        state = read_state(self.state_dir) or {}
        data = state.get("processes", {}).get(name, {}).get("data")
        if not data:
            return None
        try:
            st = os.stat(data["path"])
        except FileNotFoundError:
            return f"its data folder {self._rel(Path(data['path']))} is gone"
        if (st.st_dev, st.st_ino) != (data["dev"], data["ino"]):
            return f"its data folder {self._rel(Path(data['path']))} was replaced"
        return None

    def _roll_back(self, exc: apply.Rejected, good: dict[str, bytes], reloaded: list[str], started: list[str],
                   model: Model) -> None:
        """A component rejected the new configuration: put the last good one back, load it again, and fail naming it."""
        self._record_rejection(exc)
        if not good:
            raise CheckFailed(f"{exc.component} rejected the new configuration: {exc.detail}\n"
                              f"there is no earlier configuration to go back to (its log: {self._rel(self.log(exc.component))})") from None
        self._say(f"{exc.component} rejected the new configuration; restoring the last good configuration")
        apply.restore(good, self.config_dir)
        back: list[str] = []
        for c in reloaded:
            try:
                apply.reload(self.component_url(c), c, self.log(c), self._hangup(c))
                back.append(c)
            except apply.Rejected as again:
                self._say(f"{c}: reloading the last good configuration failed too: {again.detail}")
        for c in started:
            self._stop_one(c, self._recorded().get(c))
            self._start(self.spec(c, model))
            back.append(c)
        if started:
            try:
                self._wait_ready([self.spec(c, model) for c in started], time.monotonic() + 60)
            except CheckFailed as again:
                self._say(f"restarting on the last good configuration failed too: {again}")
        raise CheckFailed(f"{exc.component} rejected the new configuration: {exc.detail}\n"
                          f"restored the last good configuration and loaded it again ({', '.join(back) or 'nothing to reload'}); "
                          f"`monstack status` fails until the inventory renders a configuration {exc.component} accepts "
                          f"(its log: {self._rel(self.log(exc.component))})") from None

    def _hangup(self, name: str) -> Callable[[], None]:
        """Ask a running component to reload its configuration: SIGHUP to the process this stack started (and only
        to it: a pid whose start time or argv differ is not ours)."""
        def send() -> None:
            p = self._recorded().get(name)
            if p is None or not process.alive(p):
                raise OSError(f"{name} is not running")
            os.kill(p.pid, signal.SIGHUP)
        return send

    def _record_rejection(self, exc: apply.Rejected) -> None:
        state = read_state(self.state_dir) or {}
        state.setdefault("rejected", {})[exc.component] = {"detail": exc.detail, "at": time.time()}
        self._save_state(state)

    def _set_applied(self, component: str, digest: str) -> None:
        state = read_state(self.state_dir) or {}
        state.setdefault("applied", {})[component] = digest
        state.get("rejected", {}).pop(component, None)
        self._save_state(state)

    def _stop_one(self, name: str, p: process.Started | None) -> None:
        if p is not None:
            process.stop(p, self._procs.pop(name, None), sig=STOP_SIGNALS.get(name, signal.SIGTERM))
        (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        state = read_state(self.state_dir) or {}
        ports = state.get("processes", {}).pop(name, {}).get("ports", [])
        self._save_state(state)
        deadline = time.monotonic() + 10
        while any(not process.port_free(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _stop_strays(self, recorded: dict[str, process.Started]) -> list[str]:
        known = {p.pid for p in recorded.values() if process.alive(p)}
        return stop_strays(self.state_dir, known, self._say, self._rel(self.state_dir))

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
        env = {**spec.env, process.MARKER: str(self.state_dir)}
        started, proc = process.spawn(spec.name, spec.argv, self.log(spec.name), self.state_dir, env, user=spec.user)
        self._procs[spec.name] = proc
        (self.run_dir / f"{spec.name}.pid").write_text(f"{started.pid}\n")
        state = read_state(self.state_dir) or {}
        record: dict[str, Any] = {**started.to_json(), "ports": list(spec.ports), "ready_url": spec.ready_url}
        data = self._data_folder(spec)
        if data is not None:
            st = os.stat(data)
            record["data"] = {"path": str(data), "dev": st.st_dev, "ino": st.st_ino}
        state.setdefault("processes", {})[spec.name] = record
        self._save_state(state)

    def _data_folder(self, spec: Spec) -> Path | None:
        """The data folder a process works in, when its command line or environment names one."""
        if spec.name == SINKS:
            return None
        folder = self._pg_data() if spec.name == "postgres" else self.data_dir / spec.name
        named = str(folder)
        if folder.is_dir() and any(named in part for part in (*spec.argv, *spec.env.values())):
            return folder
        return None

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

    def managed_addresses(self, only: set[str] | None = None) -> set[str]:
        state = read_state(self.state_dir) or {}
        return {f"127.0.0.1:{p['ports'][0]}" for name, p in state.get("processes", {}).items() if only is None or name in only}

    def _wait_targets(self, deadline: float, only: set[str] | None = None) -> None:
        """Every target scraped once; the targets of the components started (all, or `only` these) up."""
        ours = self.managed_addresses(only)
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
                every = self.managed_addresses()
                for t in others:
                    if t.health != "up":
                        who = "left running as it was" if t.address in every else "not started by monstack"
                        self.notes.append(f"target {t.instance} of {t.job} ({who}) is down: {t.last_error}")
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
    def _write_state(self, model: Model, components: list[str], rendered: dict[str, str] | None = None,
                     applied: dict[str, str] | None = None) -> None:
        state = read_state(self.state_dir) or {}
        state.update({
            "mode": "native",
            "inventory": str(self.inventory),
            "sinks": self.sinks,
            "port_offset": self.port_offset,
            "components": components,
            "urls": self.urls(model),
            "control_token_file": str(self.generated_secret(names.CONTROL_TOKEN_FILE)),
            "notes": self.notes,
            # sha256 of the files each component loads: what the inventory rendered, and what each confirmed loading
            "rendered": rendered or {},
            "applied": {c: d for c, d in (applied or {}).items() if c in components},
        })
        auth = model.stack.web_auth
        if auth:  # what `status`, `test-alerts` and `silence` authenticate with: the password's file, not the password
            state["web_auth"] = {"username": auth.username, "password_file": self.place(model).secret(auth.password_file),
                                 "urls": self.web_auth_urls(model)}
        else:
            state.pop("web_auth", None)
        state.setdefault("processes", {})
        self._save_state(state)

    def urls(self, model: Model | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"prometheus": self.prometheus_url, "alertmanager": self.alertmanager_url,
                               "grafana": self.grafana_url, "sink": self.sink_url, "sink_smtp": self.sink_smtp}
        if model is not None:
            out["alertmanagers"] = self.alertmanager_urls(model)
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
        """Stop exactly the processes this state dir records, in reverse start order, and any process of this state
        folder no record lists; then check their ports are free."""
        with state_lock(self.state_dir, "down", self.lock_wait, self._say):
            self._down(quiet)

    def _down(self, quiet: bool) -> None:
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
        self._stop_strays({})
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
        """Every component the stack should run, with what is wrong with it: died, not ready, data folder gone,
        a configuration other than the rendered one; processes of this state folder that no record lists."""
        state = read_state(self.state_dir) or {}
        recorded = self._recorded()
        planned = list(state.get("components", []))
        components = []
        for name in planned + [n for n in recorded if n not in planned]:
            p = recorded.get(name)
            record = state.get("processes", {}).get(name, {})
            running = p is not None and process.alive(p)
            ready = running and api.ready(record.get("ready_url", ""))
            problems = []
            if p is None:
                problems.append("not running: no process recorded (`monstack up` starts it)")
            elif not running:
                problems.append("not running: it exited or was killed (`monstack up` restarts it; its log says why)")
            elif not ready:
                problems.append("running but not ready")
            data = self._data_problem(name) if running else None
            if data:
                problems.append(f"{data} while it runs (`monstack up` restarts it on a new one)")
            problems += self._config_problems(name, state, ready)
            components.append({"name": name, "pid": p.pid if p else None, "running": running, "ready": ready,
                               "address": f"127.0.0.1:{record['ports'][0]}" if record.get("ports") else "",
                               "log": str(self.log(name)), "problems": problems})
        known = {p.pid for p in recorded.values() if process.alive(p)}
        strays = [{"pid": p.pid, "argv": list(p.argv)} for p in process.marked(self.state_dir) if p.pid not in known]
        out: dict[str, Any] = {"mode": "native", "state_dir": str(self.state_dir), "inventory": state.get("inventory"),
                               "urls": state.get("urls", self.urls()), "notes": state.get("notes", []),
                               "components": components, "strays": strays, "targets": None, "alerts": None, "error": None}
        try:
            out["targets"] = [t.__dict__ | {"address": t.address} for t in api.targets(self.prometheus_url)]
            out["alerts"] = [a.__dict__ for a in api.alerts(self.prometheus_url)]
        except Exception as exc:
            out["error"] = f"Prometheus at {self.prometheus_url} did not answer: {exc}"
        return out

    def _config_problems(self, name: str, state: dict[str, Any], ready: bool) -> list[str]:
        rendered = state.get("rendered", {}).get(name)
        if rendered is None:
            return []
        problems = []
        if state.get("applied", {}).get(name) != rendered:
            rejected = state.get("rejected", {}).get(name)
            why = f": it rejected that one ({rejected['detail']})" if rejected else ""
            problems.append(f"runs a configuration other than the one rendered from the inventory{why}")
        if ready:
            try:
                if apply.loaded_ok(self.component_url(name), name) is False:
                    problems.append(f"its last configuration reload failed ({apply.reload_metric(name)} is 0; see its log)")
            except Exception as exc:  # it answered /-/ready a moment ago; say what went wrong rather than fail status
                problems.append(f"could not read its metrics: {exc}")
        return problems


def stop_strays(state_dir: Path, known: set[int], say: Say, where: str | None = None) -> list[str]:
    """Stop processes of this state folder that no record lists (an interrupted or concurrent command started them)."""
    out = []
    for p in process.marked(state_dir):
        if p.pid not in known:
            out.append(f"pid {p.pid} ({' '.join(p.argv)[:80]}): {process.stop(p)}")
    if out:
        say(f"{len(out)} process(es) of {where or state_dir} that no record listed "
            f"(left by an interrupted or concurrent command):\n" + "\n".join("  " + line for line in out))
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

    def cluster_port(self, c: components.Component) -> int:
        return c.native_cluster_port + self._stack.port_offset

    def cluster_listen(self, c: components.Component) -> str:
        return f"127.0.0.1:{self.cluster_port(c)}"

    def cluster_address(self, name: str) -> str:
        return self.cluster_listen(components.get(name))

    def external_url(self, c: components.Component) -> str:
        return f"http://{self.listen(c)}"

    def config(self, c: components.Component, rel: str) -> str:
        return str(self._stack.config_dir / rel)

    def data(self, c: components.Component) -> str:
        return str(self._stack._pg_data()) if c.name == "postgres" else str(self._stack.data_dir / c.name)

    def secret(self, ref: str) -> str:
        if ref == names.POSTGRES_PASSWORD_FILE:
            return str(self._stack._pg_password_file)  # generated per state folder
        if ref in GENERATED_SECRETS:
            return str(self._stack.generated_secret(ref))
        if ref == names.WEB_CONFIG_FILE:
            return str(self._stack.web_config_file)  # written by `up` (NativeStack._web_auth)
        path = ref if os.path.isabs(ref) else str(self._stack.inventory.parent / ref)
        if self.stack.web_auth and ref == self.stack.web_auth.password_file:
            ensure_generated_secret(Path(path))  # made on first use, like the stack's own keys
        return path

    def secret_value(self, ref: str) -> str:
        return Path(self.secret(ref)).read_text().strip()

    def logs(self) -> str:
        return str(self._stack.logs_dir)

    def binary(self, c: components.Component) -> str:
        found = find_binary(c.name)
        assert found, c.name
        return found
