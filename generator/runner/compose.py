"""`monstack up --compose`: the rendered compose.yaml driven through the `docker compose` CLI.

compose.yaml is rendered beside the inventory (like `monstack render`), so its
relative paths (./prometheus, ./secrets/...) are the inventory's folder. Config
changes reach a running stack by SIGHUP (`docker compose kill -s SIGHUP <service>`).
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from generator import checks, components, names, pipeline, webauth
from generator.errors import CheckFailed, ToolMissing
from generator.render import compose as compose_render
from generator.runner import api, apply, process
from generator.runner.native import ensure_generated_secret
from generator.runner.state import forget, read_state, save_state
from generator.topology import COMPOSE

Say = Callable[[str], None]


def docker() -> str | None:
    return shutil.which("docker")


def available() -> tuple[bool, str]:
    """(usable, why): `docker compose version` works and a Docker daemon answers `docker info`."""
    exe = docker()
    if exe is None:
        return False, "docker is not on PATH"
    try:
        version = subprocess.run([exe, "compose", "version", "--short"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`docker compose version` failed: {exc}"
    if version.returncode != 0:
        first = (version.stderr or version.stdout).strip().splitlines()[:1]
        said = first[0] if first else ""
        if not_a_plugin(said):
            return False, "the Docker Compose plugin is not installed (`docker compose` is not a docker command here)"
        return False, "`docker compose version` failed" + (f": {said}" if said else "")
    try:
        info = subprocess.run([exe, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"no Docker daemon answers (`docker info`: {exc})"
    if info.returncode != 0:
        return False, "no Docker daemon answers (`docker info` failed)"
    return True, f"docker compose {version.stdout.strip()}, Docker engine {info.stdout.strip()}"


def not_a_plugin(message: str) -> bool:
    """What docker says when `compose` is no plugin of it: newer CLIs name the command, older ones trip over the next flag."""
    text = message.lower()
    return "is not a docker command" in text or "unknown flag" in text or "unknown shorthand flag" in text


def stream(argv: list[str], env: Mapping[str, str], say: Say, prefix: str = "  ") -> tuple[int, str]:
    """Run argv with its output (stdout and stderr) passed to say line by line as it comes; (exit code, last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=60)
    with subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                say(prefix + line)
        code = proc.wait()
    return code, "\n".join(tail)


def port_plan(doc: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(port, service) for every port the compose stack takes on this machine's 127.0.0.1: published ports, and the
    ports of the services in the host's network namespace (they listen there themselves)."""
    plan = []
    for name, svc in doc["services"].items():
        for spec in svc.get("ports", []):
            _, _, rest = str(spec).partition(":")  # 127.0.0.1:HOST:CONTAINER
            plan.append((int(rest.split(":", 1)[0]), name))
        if svc.get("network_mode") == "host":
            plan.append((components.get(name).port, name))
    return sorted(plan)


def own_ports(rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """Ports the compose project's running containers hold already (rows of `docker compose ps --format json`):
    a second `up` finds its own stack on them, not a collision."""
    held: set[int] = set()
    for row in rows:
        if row.get("State") != "running":
            continue
        held.update(p["PublishedPort"] for p in row.get("Publishers") or [] if p.get("PublishedPort"))
        service = row.get("Service")
        if service in components.BY_NAME and components.get(service).host_network:
            held.add(components.get(service).port)
    return held


def ps_rows(text: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: older releases print one JSON array, newer ones one object per line."""
    text = text.strip()
    if not text:
        return []
    return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]


def taken_ports(plan: list[tuple[int, str]], own: set[int]) -> list[str]:
    """A line for each planned port something else listens on, naming the holder when /proc tells."""
    lines = []
    for port, service in plan:
        if port in own or process.port_free(port):
            continue
        holder = process.who_listens(port)
        lines.append(f"  127.0.0.1:{port} ({service}) is in use" + (f" by {holder}" if holder else ""))
    return lines


def host_gateway() -> str | None:
    """The gateway of Docker's default bridge: where host.docker.internal (host-gateway) leads by default."""
    exe = docker()
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = [a for a in proc.stdout.split() if "." in a] if proc.returncode == 0 else []
    return found[0] if found else None


class ComposeStack:
    def __init__(self, inventory: Path, state_dir: Path = Path(names.STATE_DIR), *, progress: Say | None = None):
        self.inventory = Path(inventory).absolute()
        self.out_dir = self.inventory.parent
        self.state_dir = Path(state_dir).absolute()
        self._say: Say = progress or (lambda msg: None)
        self.notes: list[str] = []

    @property
    def compose_file(self) -> Path:
        return self.out_dir / names.COMPOSE_FILE

    def _hangup(self, service: str) -> Callable[[], None]:
        """Reload a service's configuration by SIGHUP (Prometheus serves no HTTP reload: no --web.enable-lifecycle)."""
        def send() -> None:
            proc = subprocess.run(self._cmd("kill", "-s", "SIGHUP", service), env=self._env(), capture_output=True,
                                  text=True, timeout=60)
            if proc.returncode != 0:
                raise OSError(f"docker compose kill -s SIGHUP {service}: {proc.stderr.strip()[-500:]}")
        return send

    def _cmd(self, *args: str) -> list[str]:
        exe = docker()
        if exe is None:
            raise ToolMissing("docker is not on PATH")
        return [exe, "compose", "--file", str(self.compose_file), "--project-directory", str(self.out_dir), *args]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Plain progress lines (pulls, builds, starts) through a pipe, without colour codes; older releases ignore these.
        env.setdefault("COMPOSE_PROGRESS", "plain")
        env.setdefault("COMPOSE_ANSI", "never")
        if not (self.out_dir / "exporters" / "Dockerfile").is_file():
            # Rendered outside the repository (an example's folder): build the sample exporters from the package's checkout.
            import exporters

            env["MONSTACK_BUILD_CONTEXT"] = str(Path(exporters.__file__).resolve().parent.parent)
        return env

    def _ui_urls(self, model: Any) -> dict[str, str]:
        ports = {c: compose_render.ui_port(getattr(model.stack, f"{c}_url"), components.get(c).port)
                 for c in ("prometheus", "alertmanager", "grafana")}
        return {c: f"http://127.0.0.1:{p}" for c, p in ports.items()}

    def web_auth_urls(self, model: Any) -> list[str]:
        """Where this host reaches the servers behind stack.web_auth: Prometheus and Alertmanager, each replica."""
        ui = self._ui_urls(model)
        return [ui[family] if c.replica == 1 else f"http://127.0.0.1:{c.native_port}"
                for family in ("prometheus", "alertmanager")
                for c in map(components.get, components.replica_names(components.get(family), model.stack))]

    def urls(self, model: Any) -> dict[str, str | None]:
        return self._ui_urls(model) | {"sink": None, "sink_smtp": None}

    def up(self, timeout: float = 300.0) -> None:
        model = pipeline.load_model(self.inventory)
        self._say(f"rendering {self.inventory.name} into {self.out_dir} (compose.yaml and every config)")
        run_checks = checks.available("promtool") and checks.available("amtool")
        result, _ = pipeline.render(self.inventory, self.out_dir, COMPOSE, run_checks=run_checks)
        changed = result.written + result.removed
        secrets_dir = self.out_dir / "secrets"
        for generated in (names.GRAFANA_ADMIN_PASSWORD_FILE, names.POSTGRES_PASSWORD_FILE, names.CONTROL_TOKEN_FILE,
                          names.VICTORIA_METRICS_AUTH_KEY_FILE):
            # Containers run as their own users and read file secrets through a bind mount: the file must be
            # readable by them (0644), the secrets folder keeps everyone else out (0700).
            if ensure_generated_secret(self.out_dir / generated, mode=0o644):
                self._say(f"created {generated} (random)")
        auth = model.stack.web_auth
        if auth:
            # stack.web_auth: the password (random when its file does not exist) and the web config holding its hash.
            password = Path(auth.password_file) if os.path.isabs(auth.password_file) else self.out_dir / auth.password_file
            if ensure_generated_secret(password, mode=0o644):
                self._say(f"created {auth.password_file} (random; user {auth.username})")
            webauth.write_web_config(self.out_dir / names.WEB_CONFIG_FILE, auth.username, password, mode=0o644)
            webauth.remember(self.web_auth_urls(model), auth.username, password)
        if secrets_dir.is_dir():
            os.chmod(secrets_dir, 0o700)
        missing = [ref for ref in sorted(set(model.receiver_secret_files() + components.prometheus_secrets(model)))
                   if not (Path(ref) if os.path.isabs(ref) else self.out_dir / ref).is_file()]
        if missing:
            raise ToolMissing("docker compose needs every secret file the inventory names; missing:\n" +
                              "\n".join(f"  {ref}" for ref in missing) +
                              "\ncreate them (see secrets/README.md), or run `monstack up --native`, which routes receivers "
                              "without secrets to local sinks")
        for ref in model.receiver_secret_files() + components.prometheus_secrets(model):
            path = Path(ref) if os.path.isabs(ref) else self.out_dir / ref
            if not path.stat().st_mode & stat.S_IROTH:
                self.notes.append(f"{ref} is not readable by the containers' users: chmod 644 it (keep secrets/ itself 700)")
        self.preflight(model)
        env = self._env()
        if names.HOST_GATEWAY_ENV not in env and (gateway := host_gateway()):
            env[names.HOST_GATEWAY_ENV] = gateway
        self._say("docker compose up (pulls the images and builds the sample exporters on first run, waits for every healthcheck):")
        code, tail = stream(self._cmd("up", "--detach", "--build", "--remove-orphans", "--wait", "--wait-timeout", str(int(timeout))),
                            env, self._say, prefix="  compose: ")
        if code != 0:
            raise CheckFailed(f"docker compose up failed (exit {code}):\n{tail[-3000:]}")
        ui = self._ui_urls(model)
        # Containers that kept running still have the previous configuration: reload those whose files changed
        # (only those: an Alertmanager reload recreates its inhibitions, docs/reliability.md).
        for family in ("prometheus", "alertmanager"):
            for name in components.replica_names(components.get(family), model.stack):
                c = components.get(name)
                if any(apply.loads(c, path) for path in changed):
                    url = ui[family] if c.replica == 1 else f"http://127.0.0.1:{c.native_port}"
                    try:
                        apply.reload(url, name, Path(os.devnull), self._hangup(name))
                    except apply.Rejected as exc:
                        raise CheckFailed(f"{name} rejected the new configuration: {exc.detail} "
                                          f"(docker compose logs {name})") from None
        state = {"mode": "compose", "inventory": str(self.inventory), "compose_file": str(self.compose_file),
                 "project": compose_render.project_name(model), "urls": self.urls(model), "notes": self.notes,
                 "control_token_file": str(self.out_dir / names.CONTROL_TOKEN_FILE),
                 "sinks": False, "port_offset": 0}
        if auth:  # what `status`, `test-alerts` and `silence` authenticate with: the password's file, not the password
            state["web_auth"] = {"username": auth.username, "password_file": str(password), "urls": self.web_auth_urls(model)}
        save_state(self.state_dir, state)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ts = api.targets(ui["prometheus"])
            if ts and all(t.health != "unknown" for t in ts):
                break
            time.sleep(1)

    def preflight(self, model: Any) -> None:
        """Before compose starts anything: every port the stack takes on 127.0.0.1 is free (or held by this stack already).
        Debian's prometheus, prometheus-alertmanager and exporter packages start system services on the same default
        ports, and compose would fail half-way with a bare "address already in use"."""
        plan = port_plan(compose_render.config(model))
        own: set[int] = set()
        if docker() is not None:
            try:
                ps = subprocess.run(self._cmd("ps", "--format", "json"), env=self._env(), capture_output=True, text=True, timeout=60)
                own = own_ports(ps_rows(ps.stdout)) if ps.returncode == 0 else set()
            except (OSError, subprocess.TimeoutExpired, ValueError):
                own = set()
        self._say("ports: " + ", ".join(f"{service} {port}" for port, service in plan))
        taken = taken_ports(plan, own)
        if taken:
            raise CheckFailed("cannot start the docker compose stack, ports taken on 127.0.0.1:\n" + "\n".join(taken) +
                              "\nstop what holds them (a Debian package's system service: `systemctl disable --now prometheus`, "
                              "...), or move a UI with stack.prometheus_url / alertmanager_url / grafana_url in the inventory, "
                              "or run `monstack up --native`, whose ports stay clear of those services")

    def down(self) -> None:
        code, tail = stream(self._cmd("down", "--remove-orphans"), self._env(), self._say, prefix="  compose: ")
        if code != 0:
            raise CheckFailed(f"docker compose down failed (exit {code}):\n{tail[-3000:]}")
        forget(self.state_dir)

    def status(self) -> dict[str, Any]:
        state = read_state(self.state_dir) or {}
        urls = state.get("urls", {})
        proc = subprocess.run(self._cmd("ps", "--all", "--format", "json"), env=self._env(), text=True, capture_output=True)
        components = []
        if proc.returncode == 0:
            for row in ps_rows(proc.stdout):
                running = row.get("State") == "running"
                components.append({"name": row.get("Service"), "pid": None, "running": running,
                                   "ready": running and row.get("Health", "healthy") in ("healthy", ""),
                                   "address": row.get("Publishers") and ",".join(
                                       f"{p.get('URL')}:{p.get('PublishedPort')}" for p in row["Publishers"] if p.get("PublishedPort")) or "",
                                   "log": f"docker compose logs {row.get('Service')}"})
        out: dict[str, Any] = {"mode": "compose", "state_dir": str(self.state_dir), "inventory": state.get("inventory"),
                               "urls": urls, "notes": state.get("notes", []), "components": components,
                               "targets": None, "alerts": None, "error": None if proc.returncode == 0 else proc.stderr.strip()}
        try:
            out["targets"] = [t.__dict__ | {"address": t.address} for t in api.targets(urls["prometheus"])]
            out["alerts"] = [a.__dict__ for a in api.alerts(urls["prometheus"])]
        except Exception as exc:
            out["error"] = f"Prometheus at {urls.get('prometheus')} did not answer: {exc}"
        return out
