"""The docker compose path before and while compose runs: the port plan, its preflight, compose's output streamed,
and cAdvisor left out of the native stack.

The preflight is tested against real listeners: Debian's prometheus, prometheus-alertmanager, redis-server and
PostgreSQL started on their packages' default ports on 127.0.0.1, as those packages' system services would hold
them on a Debian or Ubuntu host.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from compose_support import compose_binary
from conftest import ROOT, monstack
from generator import components, names, pipeline, topology
from generator.errors import CheckFailed
from generator.runner import compose as compose_runner
from generator.runner import process
from generator.runner.native import NativeStack, find_binary, missing_binaries
from stackutil import wait_for

DEBIAN_DEFAULTS = {"prometheus": 9090, "alertmanager": 9093, "redis": 6379, "postgres": 5432}


# --- the plan ------------------------------------------------------------------------------------

def test_the_port_plan_is_every_published_port_and_the_host_network_ones() -> None:
    plan = compose_runner.port_plan(yaml.safe_load((ROOT / names.COMPOSE_FILE).read_text()))
    assert plan == [(3000, "grafana"), (8080, "cadvisor"), (9090, "prometheus"), (9093, "alertmanager"),
                    (9100, "node-exporter"), (18081, "demo-web"), (18082, "demo-worker"), (18083, "demo-business")]
    # The databases stay on the compose network: a host's PostgreSQL and Redis services do not collide with them.
    assert not {5432, 6379} & {port for port, _ in plan}


def test_ports_the_running_project_holds_are_its_own() -> None:
    rows = compose_runner.ps_rows(
        '{"Service":"prometheus","State":"running","Publishers":[{"URL":"127.0.0.1","TargetPort":9090,"PublishedPort":9090}]}\n'
        '{"Service":"node-exporter","State":"running","Publishers":[]}\n'
        '{"Service":"grafana","State":"exited","Publishers":[{"URL":"127.0.0.1","TargetPort":3000,"PublishedPort":3000}]}\n')
    assert compose_runner.own_ports(rows) == {9090, 9100}  # an exited container holds nothing
    assert compose_runner.ps_rows('[{"Service":"redis","State":"running"}]') == [{"Service": "redis", "State": "running"}]
    assert compose_runner.ps_rows("") == []


# --- the preflight against real listeners ------------------------------------------------------------

def _stand_in_secrets(inventory: Path) -> None:
    model = pipeline.load_model(inventory)
    for ref in model.receiver_secret_files() + components.prometheus_secrets(model):
        path = inventory.parent / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stand-in\n")
        path.chmod(0o644)


class Listeners:
    """Debian's binaries on their packages' default ports; stopped (and their files removed) by stop()."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}
        self.scratch: list[Path] = []

    def start(self, name: str, argv: list[str], user: str | None = None) -> None:
        log = open(self.work / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, user=user, cwd="/")
        log.close()
        port = DEBIAN_DEFAULTS[name]
        proc = self.procs[name]

        def listening() -> bool:
            assert proc.poll() is None, f"{name} exited: {(self.work / f'{name}.log').read_text()[-2000:]}"
            return not process.port_free(port)

        wait_for(f"{name} listening on 127.0.0.1:{port}", listening, timeout=60, interval=0.2)

    def stop(self, *names_: str) -> None:
        for name in names_ or list(self.procs):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            os.killpg(proc.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if not self.procs:
            for path in self.scratch:
                shutil.rmtree(path, ignore_errors=True)

    def postgres(self) -> None:
        """PostgreSQL refuses root: as root its cluster belongs to the postgres account, in a folder that account can reach."""
        user = "postgres" if os.geteuid() == 0 else None
        data = Path(tempfile.mkdtemp(prefix="monstack-test-pg-"))
        self.scratch.append(data)
        if user:
            shutil.chown(data, user)
        initdb, postgres = find_binary("initdb"), find_binary("postgres")
        assert initdb and postgres
        subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"], check=True, capture_output=True,
                       user=user, cwd="/", timeout=120)
        self.start("postgres", [postgres, "-D", str(data), "-p", "5432", "-c", "listen_addresses=127.0.0.1",
                                "-c", "unix_socket_directories=", "-c", "logging_collector=off"], user=user)


@pytest.mark.integration
def test_compose_up_names_the_ports_debian_services_hold_before_compose_starts(tmp_path: Path) -> None:
    gone = missing_binaries(["prometheus", "alertmanager", "redis", "postgres", "initdb"])
    if gone:
        pytest.skip("not installed (make deps): " + ", ".join(f"{exe} ({pkg})" for _, exe, pkg in gone))
    held = {port: process.who_listens(port) for port in DEBIAN_DEFAULTS.values() if not process.port_free(port)}
    if held:
        pytest.skip(f"the Debian default ports are taken already: {held}")
    inventory = tmp_path / "services.yaml"
    shutil.copy(ROOT / "services.yaml", inventory)
    _stand_in_secrets(inventory)
    (tmp_path / "prom.yml").write_text("global: {}\n")
    (tmp_path / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    on = Listeners(tmp_path)
    try:
        on.start("prometheus", [find_binary("prometheus"), f"--config.file={tmp_path / 'prom.yml'}",  # type: ignore[list-item]
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.listen-address=127.0.0.1:9090"])
        on.start("alertmanager", [find_binary("alertmanager"), f"--config.file={tmp_path / 'am.yml'}",  # type: ignore[list-item]
                                  f"--storage.path={tmp_path / 'am'}", "--web.listen-address=127.0.0.1:9093", "--cluster.listen-address="])
        on.start("redis", [find_binary("redis"), "--port", "6379", "--bind", "127.0.0.1", "--save", "",  # type: ignore[list-item]
                           "--appendonly", "no", "--dir", str(tmp_path)])
        on.postgres()

        r = monstack("up", "--compose", "--inventory", str(inventory), "--state-dir", str(tmp_path / ".monstack"))
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "cannot start the docker compose stack, ports taken on 127.0.0.1:" in r.stderr
        for name, component in (("prometheus", "prometheus"), ("alertmanager", "alertmanager")):
            port, pid = DEBIAN_DEFAULTS[name], on.procs[name].pid
            assert f"127.0.0.1:{port} ({component}) is in use by pid {pid} (" in r.stderr, r.stderr
        # Redis and PostgreSQL run beside the compose stack without trouble: compose publishes neither port.
        assert ":6379" not in r.stderr and ":5432" not in r.stderr
        assert "systemctl disable --now prometheus" in r.stderr and "monstack up --native" in r.stderr
        assert "compose:" not in r.stderr  # compose never ran
        assert "ports: grafana 3000, cadvisor 8080, prometheus 9090, alertmanager 9093, node-exporter 9100" in r.stderr

        on.stop("prometheus", "alertmanager")
        again = monstack("up", "--compose", "--inventory", str(inventory), "--state-dir", str(tmp_path / ".monstack"))
        assert again.returncode != 0  # no Docker engine here: it stops at compose (or at another taken port)
        assert "127.0.0.1:9090" not in again.stderr and "127.0.0.1:9093" not in again.stderr, again.stderr
    finally:
        on.stop()
    assert all(process.port_free(port) for port in DEBIAN_DEFAULTS.values())


# --- compose's output, line by line ------------------------------------------------------------------

@pytest.mark.integration
def test_output_is_passed_on_line_by_line_while_the_command_runs(tmp_path: Path) -> None:
    """The child prints a line, then waits until the line has been passed on: buffered until exit, it would time out."""
    seen = tmp_path / "seen"
    child = ("import pathlib, sys, time\n"
             "print('pulling prom/prometheus', flush=True)\n"
             f"deadline = time.monotonic() + 60\n"
             f"while not pathlib.Path({str(seen)!r}).exists():\n"
             "    if time.monotonic() > deadline: sys.exit('the first line was not passed on while the command ran')\n"
             "    time.sleep(0.05)\n"
             "print('pulled', file=sys.stderr, flush=True)\n"
             "sys.exit(3)\n")
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        seen.touch()

    code, tail = compose_runner.stream([sys.executable, "-c", child], os.environ, say, prefix="  compose: ")
    assert (code, lines) == (3, ["  compose: pulling prom/prometheus", "  compose: pulled"])
    assert tail == "pulling prom/prometheus\npulled"


@pytest.mark.integration
def test_compose_up_streams_what_the_real_compose_binary_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`docker compose` is the real Docker Compose v2 binary behind a docker CLI stand-in; with no engine here it says so,
    and that line reaches the progress output as it is printed and ends up in the error."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f'#!/bin/sh\n[ "$1" = compose ] || exit 1\nshift\nexec {compose_binary()} "$@"\n')
    (bin_dir / "docker").chmod(0o755)
    inventory = tmp_path / "services.yaml"
    shutil.copy(ROOT / "tests" / "inventories" / "good" / "minimal.yaml", inventory)
    plan = compose_runner.port_plan(yaml.safe_load(pipeline.build(inventory).files[names.COMPOSE_FILE]))
    taken = [(port, service) for port, service in plan if not process.port_free(port)]
    if taken:
        pytest.skip(f"ports the minimal compose stack publishes are taken here: {taken}")
    _stand_in_secrets(inventory)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    lines: list[str] = []
    stack = compose_runner.ComposeStack(inventory, tmp_path / ".monstack", progress=lines.append)
    with pytest.raises(CheckFailed) as failed:
        stack.up(timeout=30)
    said = [line for line in lines if line.startswith("  compose: ")]
    assert any("no-docker.sock" in line for line in said), lines
    assert "docker compose up failed (exit 1)" in str(failed.value) and "no-docker.sock" in str(failed.value)
    preflight = next(i for i, line in enumerate(lines) if line.startswith("ports: "))
    assert preflight < lines.index(said[0])  # the port plan is checked before compose starts


# --- natively there is no cAdvisor --------------------------------------------------------------------

def test_cadvisor_is_compose_only_and_the_native_stack_leaves_it_out(tmp_path: Path) -> None:
    c = components.get("cadvisor")
    assert (c.native, c.binaries, c.package, c.always) == (False, (), None, True)
    model = pipeline.load_model(ROOT / "services.yaml")
    assert "cadvisor" in components.needed_components(model, compose=True)
    assert "cadvisor" not in components.needed_components(model)
    native = NativeStack(ROOT / "services.yaml", tmp_path / ".monstack")
    assert "cadvisor" not in native.components(model)
    assert not [m for m in missing_binaries(native.components(model)) if m[0] == "cadvisor"]
    topo = topology.native(str(ROOT), port_offset=100)
    assert "cadvisor:8080" not in topo.rewrites
    config = yaml.safe_load(pipeline.build(ROOT / "services.yaml", topo).files[names.PROMETHEUS_CONFIG])
    assert names.SELF_CADVISOR_JOB not in {job["job_name"] for job in config["scrape_configs"]}
    dashboards = pipeline.build(ROOT / "services.yaml", topo).files
    infra = dashboards[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_INFRASTRUCTURE)].decode()
    assert "container_cpu_usage_seconds_total" not in infra
    composed = pipeline.build(ROOT / "services.yaml").files
    assert "container_cpu_usage_seconds_total" in composed[names.dashboard_file(names.GRAFANA_STACK_FOLDER,
                                                                               names.DASHBOARD_INFRASTRUCTURE)].decode()
