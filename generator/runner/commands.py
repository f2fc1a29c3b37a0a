"""What `monstack up/apply/down/status/test-alerts` do, behind the thin typer commands in generator/cli.py.

Every command but `status` takes the state folder's lock (runner/lock.py): a second command waits for the
first, up to --lock-wait seconds, then refuses naming it. `test-alerts` holds it only while it reads the
stack's record: a restart during its wait for notifications is what its re-posting is for.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from generator import components, links, names, pipeline, testalerts
from generator.errors import CheckFailed, UsageError
from generator.runner import choose_mode, process, running_stack
from generator.runner import compose as compose_runner
from generator.runner.lock import DEFAULT_WAIT, state_lock
from generator.runner.native import NativeStack, missing_receiver_secrets, stop_strays
from generator.runner.state import read_state, save_state

Echo = Callable[[str], None]


def up(inventory: Path, state_dir: Path, mode: str | None, sinks: bool | None, timeout: float, port_offset: int,
       say: Echo, echo: Echo, lock_wait: float = DEFAULT_WAIT, command: str = "up") -> None:
    with state_lock(state_dir, command, lock_wait, say):
        _up(inventory, state_dir, mode, sinks, timeout, port_offset, say, echo, lock_wait)


def apply(state_dir: Path, timeout: float, say: Echo, echo: Echo, lock_wait: float = DEFAULT_WAIT) -> None:
    """`up` on the running stack, with the settings it was started with (runner/apply.py has the contract)."""
    with state_lock(state_dir, "apply", lock_wait, say):
        state = read_state(state_dir)
        if state is None:
            raise UsageError(f"no stack is recorded in {state_dir}: `monstack up` starts one")
        mode = state.get("mode", "native")
        _up(Path(state["inventory"]), state_dir, mode, state.get("sinks") if mode == "native" else None, timeout,
            state.get("port_offset", 0), say, echo, lock_wait)


def _up(inventory: Path, state_dir: Path, mode: str | None, sinks: bool | None, timeout: float, port_offset: int,
        say: Echo, echo: Echo, lock_wait: float) -> None:
    mode, why = choose_mode(mode)
    say(f"mode: {mode} ({why})")
    if mode == "compose":
        if sinks:
            raise UsageError("--sinks is for native mode: the local sinks do not run in docker compose")
        stack: compose_runner.ComposeStack | NativeStack = compose_runner.ComposeStack(inventory, state_dir, progress=say)
        stack.up(timeout=max(timeout, 300))
        urls, notes = stack.urls(pipeline.load_model(inventory)), stack.notes
        ui = pipeline.load_model(inventory).stack.ui
    else:
        if sinks is None:
            missing = missing_receiver_secrets(pipeline.load_model(inventory), Path(inventory).absolute())
            sinks = bool(missing)
            if missing:
                say("secret files missing (" + ", ".join(sorted(missing)) + "): routing every receiver to local sinks; "
                    "create the files and run `monstack up --no-sinks` to notify the real services")
        stack = NativeStack(inventory, state_dir, sinks=sinks, port_offset=port_offset, progress=say, lock_wait=lock_wait)
        stack.up(timeout=timeout)
        urls, notes = stack.urls(pipeline.load_model(inventory)), stack.notes
        ui = stack.ui()
    state = read_state(state_dir)
    if state is not None:  # `explain`, `silence` and docs read where the pages of the running stack are
        save_state(state_dir, {**state, "ui": ui.to_json()})
    echo(f"monstack is up ({'docker compose' if mode == 'compose' else 'native processes, state in ' + str(state_dir)})")
    echo(up_text(ui, urls))
    for note in notes:
        if not note.startswith("Grafana is not started"):  # said above
            echo(f"  note: {note}")
    echo("next: monstack status | make test-alerts | make down")


def up_text(ui: links.Ui, urls: dict[str, str | None]) -> str:
    """Every page the running stack serves, at the path its version serves it; what has no web UI says so."""
    # URLs stand apart from punctuation, so a terminal's link detection takes them whole.
    lines = [f"  Prometheus    {ui.prometheus}   alerts {ui.alerts}   targets {ui.targets}"]
    if ui.alertmanager_ui:
        lines.append(f"  Alertmanager  {ui.alertmanager}   (alerts and silences)")
    else:
        lines.append(f"  Alertmanager  {ui.alertmanager}   API only, this build has no web UI: silences with "
                     f"`monstack silence add|list|expire`, alerts at {ui.alerts}")
    if ui.grafana:
        lines.append(f"  Grafana       {ui.grafana}   (user admin, password in {names.GRAFANA_ADMIN_PASSWORD_FILE})")
    else:
        lines.append(f"  Grafana       not running (grafana-server is not on PATH): graphs in Prometheus at {ui.graph('up')}")
    if urls.get("victoria-metrics"):
        lines.append(f"  VictoriaMetrics {urls['victoria-metrics']}   long-term store Prometheus remote-writes to; it answers "
                     f"PromQL on the Prometheus API paths of this address")
    if urls.get("sink"):
        lines.append(f"  Sinks         {urls['sink']}/captured   (every Slack/PagerDuty/webhook/email notification; smtp {urls['sink_smtp']})")
    return "\n".join(lines)


def down(state_dir: Path, say: Echo, echo: Echo, lock_wait: float = DEFAULT_WAIT) -> None:
    with state_lock(state_dir, "down", lock_wait, say):
        if read_state(state_dir) is None:
            # No record, but processes of this folder may still run (a command killed before it recorded them).
            stopped = stop_strays(Path(state_dir).absolute(), set(), say)
            echo(f"stopped {len(stopped)} unrecorded process(es) of {state_dir}" if stopped
                 else f"nothing to stop: no stack is recorded in {state_dir}")
            return
        stack = running_stack(state_dir, progress=say)
        stack.down()
    echo("stack stopped; its ports are free" if isinstance(stack, NativeStack) else "stack stopped (docker compose down; volumes kept)")


def status(state_dir: Path, as_json: bool, echo: Echo) -> None:
    if read_state(state_dir) is None:
        strays = process.marked(state_dir)
        if strays:
            raise CheckFailed(f"no stack is recorded in {state_dir}, but {len(strays)} of its processes run "
                              f"(pids {', '.join(str(p.pid) for p in strays)}): `monstack down` stops them")
    st = running_stack(state_dir).status()
    if as_json:
        echo(json.dumps(st, indent=2, sort_keys=True, default=str))
    else:
        echo(status_text(st))
    unhealthy = [c["name"] for c in st["components"] if not c["ready"] or c.get("problems")]
    down_targets = [t for t in st["targets"] or [] if t["health"] != "up"]
    strays = st.get("strays") or []
    if unhealthy or down_targets or strays or st["error"]:
        raise CheckFailed("stack not healthy: " + "; ".join(filter(None, [
            f"components not healthy: {', '.join(unhealthy)}" if unhealthy else None,
            f"{len(down_targets)} target(s) down" if down_targets else None,
            f"{len(strays)} process(es) of this state folder no record lists (`monstack down` stops them)" if strays else None,
            st["error"]])))


def status_text(st: dict[str, Any]) -> str:
    lines = [f"stack ({st['mode']}) from {st.get('inventory')}"]
    urls = st.get("urls", {})
    lines.append("  " + "  ".join(f"{k} {v}" for k, v in urls.items() if v))
    lines.append("components:")
    for c in st["components"]:
        mark = "ready" if c["ready"] else ("running, not ready" if c["running"] else "NOT RUNNING")
        pid = f"pid {c['pid']}" if c.get("pid") else ""
        lines.append(f"  {c['name']:<18} {mark:<20} {c.get('address') or '':<22} {pid}")
        for problem in c.get("problems") or []:
            if problem != "running but not ready" and not problem.startswith("not running"):
                lines.append(f"      PROBLEM: {problem}")
    for s in st.get("strays") or []:
        lines.append(f"  UNRECORDED process pid {s['pid']}: {' '.join(s['argv'])[:100]}")
    if st["targets"] is None:
        lines.append(f"targets: unknown ({st['error']})")
    else:
        up = sum(t["health"] == "up" for t in st["targets"])
        lines.append(f"targets: {up}/{len(st['targets'])} up")
        for t in st["targets"]:
            err = f"  {t['last_error']}" if t["health"] != "up" and t["last_error"] else ""
            lines.append(f"  {t['health']:<7} {t['job']:<24} {t['instance']}{err}")
    if st["alerts"] is not None:
        firing = [a for a in st["alerts"] if a["state"] == "firing" and a["name"] != names.WATCHDOG_ALERT]
        pending = [a for a in st["alerts"] if a["state"] == "pending"]
        lines.append(f"alerts: {len(firing)} firing, {len(pending)} pending (Watchdog not counted)")
        for a in firing + pending:
            lines.append(f"  {a['state']:<8} {a['severity']:<3} {a['name']:<32} {a['service']}  since {a['active_at']}")
    for note in st.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def test_alerts(state_dir: Path, service: str | None, fault: bool, timeout: float | None, say: Echo, echo: Echo,
                lock_wait: float = DEFAULT_WAIT) -> None:
    with state_lock(state_dir, "test-alerts", lock_wait, say):  # not while `up` or `down` is changing the stack
        state = read_state(state_dir)
    if state is None:
        raise UsageError(f"no stack is recorded in {state_dir}: start one with `make up` first")
    model = pipeline.load_model(Path(state["inventory"]))
    urls = state["urls"]
    if fault:
        offset = state.get("port_offset", 0)

        def exporter_url(name: str) -> str:
            return f"http://127.0.0.1:{components.get(name).native_port + offset}"

        token_file = state.get("control_token_file")
        if not token_file or not Path(token_file).is_file():
            raise UsageError(f"the stack in {state_dir} records no control token for its sample exporters: "
                             f"restart it (`monstack down`, then `monstack up`)")
        headers = {names.CONTROL_HEADER: Path(token_file).read_text().strip()}
        res = testalerts.run_fault(model, urls, exporter_url, service, timeout, say, headers)
        echo(testalerts.fault_text(res))
        if res.delay is None:
            raise CheckFailed(f"{res.alert} did not reach {', '.join(testalerts.expected_receivers(model, model.service(res.service).team, res.level))} in time")
        return
    outcomes = testalerts.run(model, urls, service, timeout, say)
    for o in outcomes:
        echo(o.text())
    echo("resolved the synthetic alerts (resolved notifications follow after each level's group_interval)")
    bad = [o.level for o in outcomes if not o.ok]
    if bad:
        raise CheckFailed(f"delivery failed for {', '.join(bad)}")
