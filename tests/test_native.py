"""The native runner: real processes on 127.0.0.1, started from the binaries on PATH and stopped exactly.

Unit tests drive the process helpers with real throwaway processes (sleep, a
listening socket); integration tests bring whole stacks up and down.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from generator import components, names, pipeline
from generator.errors import CheckFailed, ToolMissing
from generator.runner import process
from generator.runner.native import NativeStack
from generator.runner.state import read_state
from stackutil import E2E_INVENTORY, ROOT, assert_torn_down, missing, new_stack, stack_pids, wait_for

ROOT_COMPONENTS = ["prometheus", "alertmanager", "blackbox-exporter", "node-exporter", "postgres-exporter",
                   "redis-exporter", "redis", "postgres", "initdb", "victoria-metrics"]


# --- process helpers, on real processes -------------------------------------------------


@pytest.mark.integration
def test_a_process_group_is_stopped_with_its_children() -> None:
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"monstack-test-{os.getpid()}.log"
    started, proc = process.spawn("two-sleeps", ["/bin/sh", "-c", "sleep 60 & sleep 60; wait"], log, Path("/"))
    try:
        time.sleep(0.3)
        members = process._group_members(started.pid)
        assert len(members) >= 3, members  # the shell and both sleeps, in the session we created
        assert process.alive(started)
        assert process.stop(started, proc, grace=5) == "stopped"
        assert not process._group_members(started.pid)
        assert proc.returncode is not None
    finally:
        log.unlink(missing_ok=True)


@pytest.mark.integration
def test_a_recycled_or_foreign_pid_is_never_signalled(tmp_path: Path) -> None:
    """down() only stops a pid whose start time and command are the ones recorded."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # Popen returns once the child is forked; its command line is sleep's only after exec.
        wait_for("the child to exec sleep", lambda: process.cmdline(sleeper.pid) == ("sleep", "60"), timeout=10, interval=0.01)
        real = process.Started("stranger", sleeper.pid, ("sleep", "60"), process.start_ticks(sleeper.pid) or 0)
        assert process.alive(real)
        forged = process.Started("demo-web", sleeper.pid, ("sleep", "60"), real.start_ticks + 1)
        state = {"mode": "native", "inventory": str(E2E_INVENTORY), "sinks": False, "port_offset": 0,
                 "components": ["demo-web"], "processes": {"demo-web": {**forged.to_json(), "ports": [1], "ready_url": ""}}}
        run = tmp_path / names.STATE_RUN
        run.mkdir(parents=True)
        (run / "stack.json").write_text(json.dumps(state))
        NativeStack.from_state(tmp_path).down(quiet=True)
        assert sleeper.poll() is None, "down() signalled a process it did not start"
        assert read_state(tmp_path) is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.integration
def test_a_taken_port_is_named_with_the_process_holding_it(tmp_path: Path) -> None:
    stack = NativeStack(E2E_INVENTORY, tmp_path, sinks=True, port_offset=2500)
    port = stack.port("prometheus")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip(f"port {port} is in use by something else already")
        s.listen()
        assert process.who_listens(port).startswith(f"pid {os.getpid()} ")
        with pytest.raises(CheckFailed) as exc:
            stack.up(timeout=10)
    text = str(exc.value)
    assert f"127.0.0.1:{port} (prometheus) is in use by pid {os.getpid()}" in text
    assert "--port-offset" in text
    assert read_state(tmp_path) is None, "nothing may be recorded (or started) when a port is taken"


def test_a_missing_binary_names_the_debian_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolMissing) as exc:
        NativeStack(ROOT / "services.yaml", tmp_path / "state", sinks=True, port_offset=2600).up(timeout=5)
    text = str(exc.value)
    for package in ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "prometheus-blackbox-exporter",
                    "prometheus-postgres-exporter", "prometheus-redis-exporter", "redis-server"):
        assert package in text
    assert "make deps" in text


def test_the_native_topology_shifts_every_port_and_routes_receivers_to_the_sinks(tmp_path: Path) -> None:
    stack = NativeStack(E2E_INVENTORY, tmp_path, sinks=True, port_offset=1234)

    model = pipeline.load_model(E2E_INVENTORY)
    topo = stack.topology(model)
    assert topo.component("prometheus") == f"127.0.0.1:{components.get('prometheus').native_port + 1234}"
    assert topo.address("demo-web:8080") == f"127.0.0.1:{components.get('demo-web').native_port + 1234}"
    assert topo.sink_http == f"127.0.0.1:{names.NATIVE_SINK_HTTP_PORT + 1234}"
    # Every receiver secret is a stand-in under the state dir: no real key can reach a sink's capture log.
    assert set(topo.secret_overrides) == {"secrets/pagerduty_routing_key", "secrets/slack_incidents_webhook_url", "secrets/slack_alerts_webhook_url",
                                          "secrets/slack_engineering_webhook_url", "secrets/smtp_password"}
    assert all(p.startswith(str(tmp_path)) for p in topo.secret_overrides.values())
    assert stack.planned_ports() == sorted({names.NATIVE_SINK_HTTP_PORT + 1234, names.NATIVE_SINK_SMTP_PORT + 1234} | {
        components.get(c).native_port + 1234 for c in ("prometheus", "alertmanager", "blackbox-exporter", "demo-web")})


# --- whole stacks --------------------------------------------------------------------


@pytest.mark.integration
def test_the_root_inventory_comes_up_natively_with_every_target_up_and_goes_down_without_a_trace(tmp_path: Path) -> None:
    """The issue's "done when": `make up` brings services.yaml up natively, status shows every target up, down leaves nothing."""
    reason = missing(ROOT_COMPONENTS)
    if reason:
        pytest.skip(reason)
    stack = new_stack(ROOT / "services.yaml", tmp_path / ".monstack", sinks=True, first=3000)
    ports = stack.planned_ports()
    t0 = time.monotonic()
    try:
        stack.up(timeout=90)
        took = time.monotonic() - t0
        st = stack.status()
        assert st["error"] is None
        assert {c["name"] for c in st["components"]} == {
            "sinks", "postgres", "redis", "demo-web", "demo-worker", "demo-business", "node-exporter",
            "postgres-exporter", "redis-exporter", "blackbox-exporter", "victoria-metrics", "alertmanager", "prometheus"}
        assert all(c["running"] and c["ready"] for c in st["components"]), st["components"]
        down = [t for t in st["targets"] if t["health"] != "up"]
        assert not down, down
        assert len(st["targets"]) == 14  # the stack (4 with VictoriaMetrics), 6 service jobs, 4 probes
        # The exporters watch real databases: PostgreSQL and Redis answer them.
        pg = requests.get(f"http://127.0.0.1:{stack.port('postgres-exporter')}/metrics", timeout=10).text
        assert "\npg_up 1" in pg
        redis = requests.get(f"http://127.0.0.1:{stack.port('redis-exporter')}/metrics", timeout=10).text
        assert "\nredis_up 1" in redis
        # Prometheus remote-writes to the native VictoriaMetrics: the store has the stack's series.
        vm = stack.urls(pipeline.load_model(ROOT / "services.yaml"))["victoria-metrics"]
        assert vm == f"http://127.0.0.1:{stack.port('victoria-metrics')}"
        stored = wait_for("samples in VictoriaMetrics", lambda: requests.get(
            f"{vm}/api/v1/series", params={"match[]": 'up{job="checkout-api"}'}, timeout=5).json()["data"], timeout=30)
        assert stored[0]["env"] == "production" and stored[0]["region"] == "eu-central"  # external labels travel along
        print(f"root inventory up natively in {took:.1f}s")
    finally:
        pids = stack_pids(stack)
        pg_data = stack._pg_data()
        stack.down()
    assert_torn_down(stack, ports, pids)
    # pytest's tmp dirs are private, so the cluster ran from the temp folder; down() removed it.
    assert pg_data.is_relative_to(tmp_path) or not pg_data.exists()


@pytest.mark.integration
def test_a_component_that_dies_at_start_up_fails_up_with_its_log_and_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / ".monstack"
    stack = new_stack(E2E_INVENTORY, state, first=3500)
    ports = stack.planned_ports()
    # Prometheus cannot open its TSDB where a file stands in the way.
    (state / names.STATE_DATA).mkdir(parents=True)
    (state / names.STATE_DATA / "prometheus").write_text("not a directory\n")
    with pytest.raises(CheckFailed) as exc:
        stack.up(timeout=30)
    text = str(exc.value)
    assert "prometheus exited during start-up" in text
    assert "monstack starts prometheus" in text  # the log tail is in the message
    assert read_state(state) is None
    assert_torn_down(stack, ports, [])


@pytest.mark.integration
def test_the_cli_runs_up_status_up_again_and_down_against_one_state_dir(tmp_path: Path) -> None:
    """A second `up` on a running stack restarts only what died, and reloads nothing whose configuration is unchanged."""
    state = tmp_path / ".monstack"
    stack = new_stack(E2E_INVENTORY, state, first=4500)
    ports = stack.planned_ports()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "generator.cli"]
    common = ["--state-dir", str(state)]
    up_cmd = cli + ["up", "--native", "--inventory", str(E2E_INVENTORY), "--port-offset", str(stack.port_offset), "--timeout", "60", *common]

    def reloaded_at() -> float:
        metrics = requests.get(f"{stack.prometheus_url}/metrics", timeout=5).text.splitlines()
        return float(next(line.split()[-1] for line in metrics if line.startswith("prometheus_config_last_reload_success_timestamp_seconds")))

    try:
        up = subprocess.run(up_cmd, capture_output=True, text=True, env=env, timeout=120)
        assert up.returncode == 0, up.stderr
        assert "mode: native (--native given)" in up.stderr
        assert "secret files missing" in up.stderr  # tests/e2e has no secrets/: receivers go to the sinks
        assert f"Prometheus    {stack.prometheus_url}" in up.stdout
        assert "grafana-server is not on PATH" in up.stdout or "Grafana       http://" in up.stdout
        status = subprocess.run(cli + ["status", *common], capture_output=True, text=True, env=env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        counts = re.search(r"targets: (\d+)/(\d+) up", status.stdout)
        assert counts and counts.group(1) == counts.group(2) != "0", status.stdout

        before = {p.name: p.pid for p in stack._recorded().values()}
        requests.post(f"{stack.component_url('demo-web')}/control", json={"exit": True}, headers=stack.control_headers(), timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "demo-web" in stack._recorded_running():
            time.sleep(0.1)
        first_reload = reloaded_at()
        again = subprocess.run(up_cmd, capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
        after = {p.name: p.pid for p in stack._recorded().values()}
        assert after["demo-web"] != before["demo-web"]
        assert {k: v for k, v in after.items() if k != "demo-web"} == {k: v for k, v in before.items() if k != "demo-web"}
        assert "nothing changed" not in again.stderr and "restarting demo-web" not in again.stderr  # it died: started
        assert reloaded_at() == first_reload, "Prometheus was reloaded although its configuration did not change"

        as_json = json.loads(subprocess.run(cli + ["status", "--json", *common], capture_output=True, text=True, env=env,
                                            timeout=60).stdout)
        assert all(c["ready"] for c in as_json["components"])
    finally:
        pids = stack_pids(stack)
        down = subprocess.run(cli + ["down", *common], capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "its ports are free" in down.stdout
    assert_torn_down(stack, ports, pids)
    gone = subprocess.run(cli + ["status", *common], capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 2 and "no stack is recorded" in gone.stderr
