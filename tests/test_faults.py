"""Faults injected on purpose into the native stack, as a user (or bad luck) would: restarts, reloads, crashes,
concurrent commands, interrupted renders, lost state, a receiver outage. Each scenario counts the notifications
the sinks got against what a correct stack sends, and records them for docs/reliability.md (`make test-faults`).

Real Prometheus, Alertmanager, demo exporter and sinks on 127.0.0.1, from tests/e2e/services.yaml (seconds,
not minutes) with per-scenario changes. Scenarios marked `slow` run in `make test-faults` only.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from conftest import monstack, tree_hash
from faultutil import (
    MODEL,
    P0_RECEIVERS,
    P1_RECEIVERS,
    SERVICE,
    Figures,
    captured,
    control,
    figures,
    inventory,
    kill,
    of,
    record,
    wait_notified,
)
from stackutil import CORE, ROOT, assert_torn_down, missing, new_stack, stack_pids, wait_for

from generator import names, testalerts, writer
from generator.runner import api, process
from generator.runner.native import STOP_SIGNALS, NativeStack, Spec
from generator.runner.state import read_state

pytestmark = [pytest.mark.integration, pytest.mark.fault]

CRITICAL, HIGH = "HttpErrorRatioCritical", "HttpErrorRatioHigh"  # P0 and P1 tiers of one problem: the P0 inhibits the P1
ERRORS = {"error_ratio": 1.0}
DOWN = "TargetDown"  # P0; fires and resolves within seconds of the fault, unlike a ratio over 5 minutes
HANG = {"hang": True}
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CLI = [sys.executable, "-m", "generator.cli"]


def service(**alerts: Any) -> dict[str, Any]:
    """checkout-api as tests/e2e/services.yaml has it, with these alert settings on top of its own."""
    base = {DOWN: {"for": "1s"}, "HealthProbeFailing": {"disabled": True}, CRITICAL: {"for": "1s"}, HIGH: {"for": "1s"}}
    return {"name": SERVICE, "team": "web", "kind": "http", "scrape": {"targets": ["demo-web:8080"]},
            "health": [{"name": "liveness", "url": "http://demo-web:8080/health"}], "alerts": {**base, **alerts}}


@contextlib.contextmanager
def running(tmp_path: Path, changes: dict[str, Any] | None = None, first: int = 1000, timeout: float = 90) -> Iterator[NativeStack]:
    reason = missing(CORE)
    if reason:
        pytest.skip(reason)
    inv = inventory(tmp_path / "inventory", changes)
    stack = new_stack(inv, tmp_path / ".monstack", first=first)
    ports = stack.planned_ports()
    try:
        stack.up(timeout=timeout)
        yield stack
    finally:
        pids = stack_pids(stack)
        stack.down()
        assert_torn_down(stack, ports, pids)


def cli(stack: NativeStack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--state-dir", str(stack.state_dir)], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def up_cmd(stack: NativeStack) -> list[str]:
    return [*CLI, "up", "--native", "--inventory", str(stack.inventory), "--port-offset", str(stack.port_offset),
            "--timeout", "90", "--state-dir", str(stack.state_dir)]


def alert_in_prometheus(stack: NativeStack, alert: str, url: str | None = None) -> dict[str, Any] | None:
    r = requests.get(f"{url or stack.prometheus_url}/api/v1/alerts", timeout=5)
    found = [a for a in r.json()["data"]["alerts"] if a["labels"].get("alertname") == alert and a["labels"].get("service") == SERVICE]
    return found[0] if found else None


def am_alert(url: str, alert: str) -> dict[str, Any] | None:
    r = requests.get(f"{url}/api/v2/alerts", params=[("filter", f'alertname="{alert}"')], timeout=5)
    found = r.json()
    return found[0] if found else None


def metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in {url}/metrics")


def counter(url: str, name: str) -> float:
    """A counter summed over its labels (say, alertmanager_notifications_total over every integration)."""
    return sum(float(line.split()[-1]) for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines()
               if line.startswith((name + " ", name + "{")))


def restart(stack: NativeStack, component: str, sig: int = signal.SIGTERM) -> None:
    """Stop a component (SIGTERM: `systemctl restart`, a reboot; SIGKILL: a crash) and start the same command again,
    as a supervisor would."""
    rec = read_state(stack.state_dir)["processes"][component]
    kill(stack, component, sig)
    stack._start(Spec(component, tuple(rec["argv"]), tuple(rec["ports"]), rec["ready_url"]))
    wait_for(f"{component} ready again", lambda: api.ready(rec["ready_url"]), timeout=60, interval=0.2)


def hold(seconds: float, bad: Any = None) -> None:
    """Keep a fault on for a scenario's stated duration, failing early when `bad()` reports what must not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = bad() if bad else None
        assert not found, found
        time.sleep(1)


def stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- 1. Prometheus restarts while a P0 fires ---------------------------------------------------


def test_a_prometheus_restart_keeps_a_firing_alert_firing(tmp_path: Path) -> None:
    """Prometheus restores the alert it had firing at its first evaluations instead of starting its `for` again
    (--rules.alert.for-grace-period below every `for`). Here `for` is 30s, so the old behaviour (pending again
    for 30s) cannot pass for a slow restore."""
    with running(tmp_path, {"services": [service(**{DOWN: {"for": "30s"}})]}, first=1100) as stack:
        control(stack, HANG)
        before = wait_for("TargetDown firing", lambda: (a := alert_in_prometheus(stack, DOWN)) and
                          a["state"] == "firing" and a, timeout=120)
        restart(stack, "prometheus")
        ready = time.monotonic()
        after = wait_for("TargetDown firing again with its first activeAt", lambda: (
            a := alert_in_prometheus(stack, DOWN)) and a["state"] == "firing" and a, timeout=20)
        took = time.monotonic() - ready
        assert int(stamp(after["activeAt"])) == int(stamp(before["activeAt"])), (before, after)
        assert took < 20
        print(f"firing again {took:.1f}s after the restarted Prometheus was ready")


@pytest.mark.slow
@pytest.mark.parametrize("for_", ["5m", "0s"])
def test_a_prometheus_restart_while_a_p0_fires_sends_no_resolve_and_no_second_page(tmp_path: Path, for_: str) -> None:
    """for 5m (a catalogue `for` below Prometheus' default grace period): without restored state it went back to
    pending for 5 minutes, Alertmanager timed it out (Prometheus' endsAt is 4 resend delays, 4m) and sent "resolved",
    then a second page came when it fired again. Observed until well past the time that second page came.

    for 0s (TargetDown's default: two failed scrapes in a row, in the fast group): the restarted Prometheus may
    evaluate before it has two scrapes of the target again and has no alert for a moment; Alertmanager keeps the
    one it has until the endsAt of its last delivery, long after the restarted Prometheus sends it again. Observed
    past that endsAt, when a false "resolved" would come."""
    slow_for = for_ != "0s"
    with running(tmp_path, {"services": [service(**{DOWN: {"for": for_}})]}, first=1200 if slow_for else 2700) as stack:
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=420)
        ends_before = stamp(am_alert(stack.alertmanager_url, DOWN)["endsAt"])
        restart(stack, "prometheus")
        t_restart = time.time()

        def wrong() -> list[str]:
            caps = captured(stack, t0)
            return [f"{r}: {len(of(caps, r, DOWN, 'P0', s))} {s}" for r in P0_RECEIVERS for s in ("firing", "resolved")
                    if len(of(caps, r, DOWN, "P0", s)) > (1 if s == "firing" else 0)]

        if slow_for:
            hold(5 * 60 + 40 - (time.time() - t_restart), wrong)  # past `for` after the restart, when the old second page came
        else:
            # Past the endsAt Alertmanager had before the restart, plus a group_interval and a margin.
            hold(ends_before + 20 - time.time(), wrong)
            assert stamp(am_alert(stack.alertmanager_url, DOWN)["endsAt"]) > ends_before, "the restarted Prometheus never sent it"
        t_clear = time.time()
        control(stack, None)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "resolved", t_clear, timeout=120)
        hold(4)
        what = ("a P0 (for: 5m) fires" if slow_for
                else "a fast P0 fires (TargetDown: two failed scrapes in a row, for: 0s)")
        fig = figures(1, f"Prometheus restarted while {what}", "1 restart (SIGTERM, same command again)",
                      captured(stack, t0), {(r, DOWN, "P0", s): 1 for r in P0_RECEIVERS for s in ("firing", "resolved")},
                      note="the resolves counted are the real ones, after the fault was cleared")
        assert fig.lost == 0 and fig.duplicated == 0, fig


# --- 2. Apply only what changed: an inhibited alert stays inhibited --------------------------------


def test_up_on_a_running_stack_reloads_nothing_unchanged_and_an_inhibited_p1_stays_inhibited(tmp_path: Path) -> None:
    with running(tmp_path, {"services": [service()]}, first=1300) as stack:
        am = stack.alertmanager_url
        t0 = time.time()
        control(stack, ERRORS)
        wait_notified(stack, P0_RECEIVERS, CRITICAL, "P0", "firing", t0, timeout=120)
        wait_for("HttpErrorRatioHigh inhibited by the P0", lambda: (a := am_alert(am, HIGH)) and a["status"]["inhibitedBy"],
                 timeout=60)
        p1_before = {r: len(of(captured(stack, t0), r, HIGH, "P1", "firing")) for r in P1_RECEIVERS}
        am_reload = metric(am, "alertmanager_config_last_reload_success_timestamp_seconds")
        prom_reload = metric(stack.prometheus_url, "prometheus_config_last_reload_success_timestamp_seconds")
        runs = 3

        def leaked() -> list[str]:
            return [r for r in P1_RECEIVERS if len(of(captured(stack, t0), r, HIGH, "P1", "firing")) > p1_before[r]]

        outputs = []
        for _ in range(runs):
            again = subprocess.run(up_cmd(stack), capture_output=True, text=True, env=ENV, timeout=180)
            assert again.returncode == 0, again.stderr
            outputs.append(again.stderr)
            hold(5, leaked)  # long enough for a leaked P1 to be sent: group_wait, a group_interval and a margin
        assert metric(am, "alertmanager_config_last_reload_success_timestamp_seconds") == am_reload, "Alertmanager was reloaded"
        assert all("nothing changed" in out for out in outputs), outputs
        # A change that only Prometheus loads (a rule's `for`) reloads Prometheus, not Alertmanager.
        changed = inventory(stack.inventory.parent, {"services": [service(HealthProbeFailing={"for": "2s"})]})
        assert changed == stack.inventory
        applied = cli(stack, "apply")
        assert applied.returncode == 0, applied.stderr
        reloading = [part for part in applied.stderr.replace("\n", "; ").split("; ") if part.startswith("reloading")]
        assert reloading == ["reloading (configuration changed): prometheus"], applied.stderr
        assert metric(stack.prometheus_url, "prometheus_config_last_reload_success_timestamp_seconds") > prom_reload
        assert metric(am, "alertmanager_config_last_reload_success_timestamp_seconds") == am_reload, "Alertmanager was reloaded"
        hold(5, leaked)
        assert (a := am_alert(am, HIGH)) and a["status"]["inhibitedBy"]
        caps = captured(stack, t0)
        expected = {(r, CRITICAL, "P0", "firing"): 1 for r in P0_RECEIVERS}
        expected |= {(r, HIGH, "P1", "firing"): p1_before[r] for r in P1_RECEIVERS}
        fig = figures(2, "`up` x3 and a Prometheus-only `apply` while a P0 inhibits a P1", f"{runs} `up` + 1 `apply`", caps,
                      expected, note="a P1 sent before its P0 fired counts as expected")
        assert fig.lost == 0 and fig.duplicated == 0, fig


# --- 3. Safe apply with rollback -------------------------------------------------------------------


def _tls_inventory(folder: Path, ca: str) -> Path:
    """checkout-api scraped with a TLS CA file (the scrape is plain HTTP, but Prometheus loads the CA for the job)."""
    svc = service()
    svc["scrape"] = {"targets": ["demo-web:8080"], "tls": {"ca_file": ca}}
    return inventory(folder, {"services": [svc]})


def test_a_ca_file_that_is_no_certificate_is_refused_before_anything_changes(tmp_path: Path) -> None:
    with running(tmp_path, first=1400) as stack:
        config_before = tree_hash(stack.config_dir)
        reloaded = metric(stack.prometheus_url, "prometheus_config_last_reload_success_timestamp_seconds")
        (stack.inventory.parent / "secrets").mkdir()
        (stack.inventory.parent / "secrets" / "ca.pem").write_text("not a certificate\n")
        _tls_inventory(stack.inventory.parent, "secrets/ca.pem")
        result = subprocess.run(up_cmd(stack), capture_output=True, text=True, env=ENV, timeout=180)  # `up` on a running stack
        assert result.returncode == 1, result.stderr
        assert "services[0] (checkout-api) scrape.tls.ca_file: secrets/ca.pem holds no PEM certificate" in result.stderr
        assert "nothing changed" in result.stderr
        assert tree_hash(stack.config_dir) == config_before
        assert metric(stack.prometheus_url, "prometheus_config_last_reload_success_timestamp_seconds") == reloaded
        status = cli(stack, "status")
        assert status.returncode == 0, status.stdout + status.stderr  # still running exactly what it rendered last


def test_a_configuration_a_component_rejects_is_rolled_back_and_status_fails_until_it_is_fixed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the checks (here: switched off, standing for a failure they cannot foresee) Prometheus itself rejects
    the file. The last good configuration comes back, Prometheus reloads it, `apply` exits 1 naming Prometheus and
    its log line, and `status` fails while the inventory's configuration is not the one running."""
    from generator.runner import apply as apply_mod

    monkeypatch.setattr(apply_mod, "preflight", lambda model, topo: [])
    with running(tmp_path, first=1500) as stack:
        original = stack.inventory.read_text()
        good = tree_hash(stack.config_dir)
        (stack.inventory.parent / "secrets").mkdir()
        (stack.inventory.parent / "secrets" / "ca.pem").write_text("not a certificate\n")
        _tls_inventory(stack.inventory.parent, "secrets/ca.pem")
        result = monstack("up", "--native", "--inventory", str(stack.inventory), "--port-offset", str(stack.port_offset),
                          "--state-dir", str(stack.state_dir))
        assert result.returncode == 1, result.stderr
        assert "prometheus rejected the new configuration" in result.stderr
        assert "level=error" in result.stderr and "restored the last good configuration" in result.stderr
        assert tree_hash(stack.config_dir) == good, "the last good configuration is not back in place"
        assert metric(stack.prometheus_url, "prometheus_config_last_reload_successful") == 1  # runs it again, whole
        status = cli(stack, "status")
        assert status.returncode == 1 and "runs a configuration other than the one rendered" in status.stdout, status.stdout
        # A later restart (a reboot, a supervisor) loads the good file: every scrape pool is there, none dropped.
        restart(stack, "prometheus")
        wait_for("every scrape pool after the restart", lambda: {SERVICE, f"probe-{SERVICE}"} <= {
            t.job for t in api.targets(stack.prometheus_url)}, timeout=60)
        # Applied again unchanged: rejected again, rolled back again.
        again = monstack("apply", "--state-dir", str(stack.state_dir))
        assert again.returncode == 1 and "prometheus rejected the new configuration" in again.stderr, again.stderr
        assert tree_hash(stack.config_dir) == good
        # Fixed inventory, applied: status is healthy again.
        stack.inventory.write_text(original)
        fixed = cli(stack, "apply")
        assert fixed.returncode == 0, fixed.stderr
        status = cli(stack, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        record(Figures(3, "Apply of a configuration Prometheus rejects at run time", "1 rejected reload, 1 restart",
                       0, 0, 0, 0, note="rolled back; no notification involved"))


# --- 4. Alertmanager cluster and Prometheus HA pair --------------------------------------------------


@pytest.mark.slow
def test_two_alertmanagers_notify_once_and_survive_the_sender_being_killed(tmp_path: Path) -> None:
    with running(tmp_path, {"stack": {"replicas": {"alertmanager": 2}}, "services": [service()]}, first=1600) as stack:
        procs = stack._recorded()
        assert {"alertmanager", "alertmanager-2"} <= set(procs), sorted(procs)
        ams = [stack.component_url("alertmanager"), stack.component_url("alertmanager-2")]
        assert metric(stack.prometheus_url, "prometheus_notifications_alertmanagers_discovered") == 2
        for url in ams:
            wait_for(f"{url} in a cluster of 2", lambda url=url: len(requests.get(f"{url}/api/v2/status", timeout=5).json()
                     ["cluster"]["peers"]) == 2, timeout=60)
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        # The other replica waits --cluster.peer-timeout (15s) before it would notify: give it that and more.
        hold(20, lambda: [r for r in P0_RECEIVERS if len(of(captured(stack, t0), r, DOWN, "P0", "firing")) > 1])
        sent = [counter(url, "alertmanager_notifications_total") for url in ams]
        assert sorted(sent)[0] == 0 < sorted(sent)[1], f"notifications sent per replica: {sent}"
        victim = ["alertmanager", "alertmanager-2"][sent.index(max(sent))]
        kill(stack, victim)  # kill -9 the replica that sent
        # The next notification, the resolve, comes from the survivor; and the next page too.
        t1 = time.time()
        control(stack, None)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "resolved", t1, timeout=120)
        t2 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t2, timeout=120)
        stack.up(timeout=90)  # restarts the killed replica: it learns the notification log from its peer
        hold(20, lambda: [r for r in P0_RECEIVERS if len(of(captured(stack, t2), r, DOWN, "P0", "firing")) > 1])
        caps = captured(stack, t0)
        expected = {(r, DOWN, "P0", "firing"): 2 for r in P0_RECEIVERS} | {(r, DOWN, "P0", "resolved"): 1 for r in P0_RECEIVERS}
        fig = figures(4, "2 Alertmanagers: kill -9 the one that sent, resolve, page again, restart it",
                      "1 kill -9, 1 restart", caps, expected)
        assert fig.lost == 0 and fig.duplicated == 0, fig


@pytest.mark.slow
def test_a_prometheus_pair_pages_once(tmp_path: Path) -> None:
    with running(tmp_path, {"stack": {"replicas": {"prometheus": 2, "alertmanager": 2}}, "services": [service()]},
                 first=1700) as stack:
        procs = stack._recorded()
        assert {"prometheus", "prometheus-2", "alertmanager", "alertmanager-2"} <= set(procs), sorted(procs)
        second = stack.component_url("prometheus-2")
        t0 = time.time()
        control(stack, HANG)
        for url in (stack.prometheus_url, second):
            wait_for(f"{DOWN} firing in {url}", lambda url=url: (a := alert_in_prometheus(stack, DOWN, url)) and
                     a["state"] == "firing", timeout=120)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        hold(20, lambda: [r for r in P0_RECEIVERS if len(of(captured(stack, t0), r, DOWN, "P0", "firing")) > 1])
        am = requests.get(f"{stack.alertmanager_url}/api/v2/alerts", params=[("filter", f'alertname="{DOWN}"')], timeout=5).json()
        assert len(am) == 1, am  # both Prometheus sent it; without the replica label it is one alert
        assert names.PROMETHEUS_REPLICA_LABEL not in am[0]["labels"]
        t1 = time.time()
        control(stack, None)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "resolved", t1, timeout=120)
        hold(4)
        caps = captured(stack, t0)
        fig = figures(4, "A Prometheus pair (and 2 Alertmanagers) page for one fault", "2 Prometheus evaluating one fault", caps,
                      {(r, DOWN, "P0", s): 1 for r in P0_RECEIVERS for s in ("firing", "resolved")})
        assert fig.lost == 0 and fig.duplicated == 0, fig


# --- 5. Alertmanager killed ----------------------------------------------------------------------------

SLOW_GROUPS = {"severities": {lv: {"group_wait": "10s", "group_interval": "10s"} for lv in names.LEVELS}}
LEVEL_RECEIVERS = {"P0": P0_RECEIVERS, "P1": P1_RECEIVERS, "P2": ("slack-engineering",), "P3": ("tickets",)}


def test_test_alerts_reposts_so_an_alertmanager_killed_before_group_wait_loses_nothing(tmp_path: Path) -> None:
    with running(tmp_path, SLOW_GROUPS, first=1800) as stack:
        t0 = time.time()
        run = subprocess.Popen([*CLI, "test-alerts", "--timeout", "60", "--state-dir", str(stack.state_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        try:
            wait_for("the synthetic alerts in Alertmanager", lambda: am_alert(stack.alertmanager_url, names.SYNTHETIC_ALERT),
                     timeout=30, interval=0.1)
            assert not captured(stack, t0), "notified before group_wait: the kill would come too late"
            kill(stack, "alertmanager")  # before group_wait (10s): what it had is gone
            stack.up(timeout=90)  # restarts it (what `monstack up` does for a component that died)
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        assert run.returncode == 0, out + err
        caps = captured(stack, t0)
        expected = {(r, names.SYNTHETIC_ALERT, lv, "firing"): 1 for lv, rs in LEVEL_RECEIVERS.items() for r in rs}
        got = {k: len([c for c in caps if _synthetic(c, *k)]) for k in expected}
        fig = record(Figures(5, "Alertmanager killed (-9) before group_wait during `test-alerts`", "1 kill -9, 1 restart",
                             sum(expected.values()), sum(got.values()), sum(max(0, n - 1) for n in got.values()),
                             sum(1 for n in got.values() if n == 0)))
        assert fig.lost == 0 and fig.duplicated == 0, (fig, got)


def _synthetic(c: dict[str, Any], receiver: str, alert: str, level: str, status: str) -> bool:
    return receiver in testalerts.capture_receivers(MODEL, c, (receiver,)) and testalerts.capture_matches(
        c, alert, level, status, "monstack")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["down", "kill -9"])
def test_alertmanager_stopped_after_it_notified(tmp_path: Path, how: str) -> None:
    """`down` stops Alertmanager with SIGTERM: it saves its notification log and, started again, does not page again.
    kill -9 loses what it logged since its last snapshot (every 15 minutes): a single Alertmanager pages again,
    once per receiver at most (an upstream limit, docs/reliability.md; a cluster keeps the log on the other replica)."""
    with running(tmp_path, {"services": [service()]}, first=1900 if how == "down" else 2000) as stack:
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        assert STOP_SIGNALS.get("alertmanager", signal.SIGTERM) == signal.SIGTERM  # what `down` sends it
        restart(stack, "alertmanager", signal.SIGTERM if how == "down" else signal.SIGKILL)
        # Prometheus sends the firing alert again within its resend delay (1m); then group_wait and a margin.
        wait_for("the alert back in Alertmanager", lambda: am_alert(stack.alertmanager_url, DOWN), timeout=90)
        hold(8)
        caps = captured(stack, t0)
        fig = figures(5, f"Alertmanager stopped by {'`down` (SIGTERM)' if how == 'down' else 'kill -9'} after it notified",
                      f"1 {'SIGTERM' if how == 'down' else 'kill -9'}, 1 restart", caps,
                      {(r, DOWN, "P0", "firing"): 1 for r in P0_RECEIVERS},
                      note="" if how == "down" else "upstream limit: the notification log is saved at shutdown and every "
                      "--data.maintenance-interval, not at each notification")
        assert fig.lost == 0, fig
        assert fig.duplicated <= (0 if how == "down" else len(P0_RECEIVERS)), fig


# --- 6. Concurrent commands ----------------------------------------------------------------------------


def _of_state_dir(state_dir: Path) -> list[int]:
    """Processes working in state_dir (the runner starts every process there), found without any record."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if os.readlink(entry / "cwd") == str(state_dir):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def test_two_ups_at_once_give_one_stack_that_down_stops_completely(tmp_path: Path) -> None:
    reason = missing(CORE)
    if reason:
        pytest.skip(reason)
    inv = inventory(tmp_path / "inventory", {"services": [service()]})
    stack = new_stack(inv, tmp_path / ".monstack", first=2100)
    ports = stack.planned_ports()
    try:
        both = [subprocess.Popen(up_cmd(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
        results = [(p.wait(timeout=240), *p.communicate()) for p in both]
        assert all(rc == 0 for rc, _, _ in results), results
        planned = len(stack._recorded())
        assert planned == 5, sorted(stack._recorded())  # sinks, blackbox, demo-web, alertmanager, prometheus
        assert len(process.marked(stack.state_dir)) == planned, "processes beyond the recorded ones"
        status = cli(stack, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        hold(4)
        fig = figures(6, "Two `monstack up` at once, then a P0", "2 concurrent `up`", captured(stack, t0),
                      {(r, DOWN, "P0", "firing"): 1 for r in P0_RECEIVERS})
        assert fig.lost == 0 and fig.duplicated == 0, fig
    finally:
        down = cli(stack, "down")
    assert down.returncode == 0, down.stderr
    assert not _of_state_dir(stack.state_dir), [(pid, process.cmdline(pid)) for pid in _of_state_dir(stack.state_dir)]
    assert_torn_down(stack, ports, [])


def test_a_second_command_waits_for_the_first_then_refuses_naming_it(tmp_path: Path) -> None:
    reason = missing(CORE)
    if reason:
        pytest.skip(reason)
    stack = new_stack(inventory(tmp_path / "inventory"), tmp_path / ".monstack", first=2200)
    ports = stack.planned_ports()
    first = subprocess.Popen(up_cmd(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        lock = stack.state_dir / names.STATE_RUN / "lock"
        wait_for("the first `up` to hold the state folder", lambda: lock.exists() and f'"pid": {first.pid}' in lock.read_text(),
                 timeout=60, interval=0.05)
        t = time.monotonic()
        second = cli(stack, "down", "--lock-wait", "1")
        waited = time.monotonic() - t
        assert second.returncode == 1, second.stderr
        assert f"is in use by pid {first.pid} (monstack up, since" in second.stderr, second.stderr
        assert waited >= 1
        assert first.wait(timeout=180) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
        down = cli(stack, "down")
    assert down.returncode == 0, down.stderr
    assert_torn_down(stack, ports, [])


def test_down_stops_everything_an_up_killed_half_way_had_started(tmp_path: Path) -> None:
    reason = missing(CORE)
    if reason:
        pytest.skip(reason)
    stack = new_stack(inventory(tmp_path / "inventory"), tmp_path / ".monstack", first=2300)
    ports = stack.planned_ports()
    up = subprocess.Popen(up_cmd(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for("`up` to have started some processes", lambda: len(_of_state_dir(stack.state_dir)) >= 2, timeout=60, interval=0.02)
        up.kill()
        up.wait()
        wait_for("what it started to be running", lambda: _of_state_dir(stack.state_dir), timeout=10)
        status = cli(stack, "status")
        assert status.returncode == 1, status.stdout + status.stderr
    finally:
        if up.poll() is None:
            up.kill()
        up.communicate()
        down = cli(stack, "down")
    assert down.returncode == 0, down.stderr
    assert not _of_state_dir(stack.state_dir), [(pid, process.cmdline(pid)) for pid in _of_state_dir(stack.state_dir)]
    assert_torn_down(stack, ports, [])


# --- 7. Interrupted render ------------------------------------------------------------------------------

# Runs `monstack render` with a signal sent to itself at the k-th call of os.replace in the writer (the commit),
# or of Path.write_bytes (staging): the real signal at an exact point, not a timer.
DRIVER = """
import os, signal, sys
from pathlib import Path
from generator import writer
kind, k, sig = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3])
# As a terminal would start it: a test runner may hand down SIGINT ignored or blocked, which exec keeps.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
calls = [0]
def hit():
    calls[0] += 1
    if calls[0] == k:
        os.kill(os.getpid(), sig)
if kind == "replace":
    real = os.replace
    def replace(*a, **kw):
        hit()
        return real(*a, **kw)
    writer.os.replace = replace
else:
    real_wb = Path.write_bytes
    def write_bytes(self, data):
        hit()
        return real_wb(self, data)
    Path.write_bytes = write_bytes
sys.argv = ["monstack", "render", "--no-check", *sys.argv[4:]]
from generator.cli import main
main()
"""


LEFTOVERS = (".monstack-staging-", ".monstack-commit")  # writer.STAGING_PREFIX, writer.JOURNAL (and its .tmp)


def _render(tmp_path: Path, kind: str, k: int, sig: str, inv: Path, out: Path) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    return subprocess.run([sys.executable, str(driver), kind, str(k), sig, "--inventory", str(inv), "--out", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=120)


def _trees(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict[str, str]]:
    old_inv = inventory(tmp_path / "old")
    new_inv = inventory(tmp_path / "new", {"stack": {"environment": "staging"}, "services": [service(**{DOWN: {"for": "2s"}})]})
    trees = []
    for inv in (old_inv, new_inv):
        ref = tmp_path / f"ref-{inv.parent.name}"
        assert monstack("render", "--no-check", "--inventory", str(inv), "--out", str(ref)).returncode == 0
        trees.append(tree_hash(ref))
    return old_inv, new_inv, trees[0], trees[1]


def _moved(old: dict[str, str], new: dict[str, str]) -> int:
    """Files a commit moves into place (the manifest last, after them)."""
    return sum(1 for path in new if path != names.MANIFEST and old.get(path) != new[path])


def _fresh(tmp_path: Path, old_inv: Path, name: str) -> Path:
    out = tmp_path / name
    assert monstack("render", "--no-check", "--inventory", str(old_inv), "--out", str(out)).returncode == 0
    return out


def test_a_render_interrupted_at_any_point_exits_130_and_leaves_the_old_or_the_new_tree(tmp_path: Path) -> None:
    old_inv, new_inv, old, new = _trees(tmp_path)
    moved = _moved(old, new)
    assert moved >= 5, "the two inventories must differ in many files for the test to mean something"
    outcomes = {}
    # Every step of the commit (the journal, each file moved, the manifest), and a few points while staging.
    points = [("replace", k) for k in range(1, moved + 3)] + [("write_bytes", k) for k in (1, moved // 2, moved)]
    for kind, k in points:
        out = _fresh(tmp_path, old_inv, f"out-{kind}-{k}")
        result = _render(tmp_path, kind, k, "SIGINT", new_inv, out)
        assert result.returncode == 130, (kind, k, result.returncode, result.stderr[-2000:])
        assert "interrupted" in result.stderr
        leftovers = [p.name for p in out.iterdir() if p.name.startswith(LEFTOVERS)]
        assert not leftovers, (kind, k, leftovers)
        got = tree_hash(out)
        assert got in (old, new), (kind, k, sorted(p for p in set(got) | set(new) if got.get(p) not in (old.get(p), new.get(p))))
        outcomes[(kind, k)] = "new" if got == new else "old"
    assert "old" in outcomes.values() and "new" in outcomes.values(), outcomes
    record(Figures(7, "Ctrl-C (SIGINT) at every step of a render's commit and while staging",
                   f"{len(points)} interrupted renders", 0, 0, 0, 0,
                   note=f"exit 130 every time; {sum(v == 'old' for v in outcomes.values())} left the old tree, "
                        f"{sum(v == 'new' for v in outcomes.values())} the new one, none a mix; no notification involved"))


def test_a_render_killed_during_its_commit_is_completed_by_the_next_run(tmp_path: Path) -> None:
    old_inv, new_inv, old, new = _trees(tmp_path)
    # From the command line: killed mid-commit, the next render finishes it, says so, cleans up, then does its own work.
    out = _fresh(tmp_path, old_inv, "out-cli")
    assert _render(tmp_path, "replace", 3, "SIGKILL", new_inv, out).returncode == -signal.SIGKILL
    again = monstack("render", "--no-check", "--inventory", str(new_inv), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(LEFTOVERS)]
    assert "finished an interrupted render" in again.stderr, again.stderr
    assert tree_hash(out) == new
    # Killed at every step of the commit: what the next run does first leaves the old tree or the new one.
    results = {}
    for k in range(1, _moved(old, new) + 3):
        out = _fresh(tmp_path, old_inv, f"out-{k}")
        result = _render(tmp_path, "replace", k, "SIGKILL", new_inv, out)
        assert result.returncode == -signal.SIGKILL, (k, result.returncode, result.stderr[-2000:])
        note = writer.recover(out)  # the first thing every render (and `up`) does
        got = tree_hash(out)
        assert got in (old, new), (k, note)
        assert not [p for p in out.iterdir() if p.name.startswith(LEFTOVERS)]
        results[k] = "new" if got == new else "old"
    assert set(results.values()) == {"old", "new"}, results
    assert (writer.STAGING_PREFIX, writer.JOURNAL) == LEFTOVERS
    record(Figures(7, "SIGKILL at every step of a render's commit", f"{len(results)} killed renders", 0, 0, 0, 0,
                   note=f"the next run finished or discarded each: {sum(v == 'old' for v in results.values())} old tree, "
                        f"{sum(v == 'new' for v in results.values())} new tree, none a mix"))


# --- 8. State loss and crashes --------------------------------------------------------------------------


def test_a_deleted_data_folder_is_reported_by_status_and_repaired_by_up(tmp_path: Path) -> None:
    import shutil

    with running(tmp_path, {"services": [service()]}, first=2400) as stack:
        shutil.rmtree(stack.data_dir)
        status = cli(stack, "status")
        assert status.returncode == 1, status.stdout + status.stderr
        for c in ("prometheus", "alertmanager"):
            assert any(line.strip().startswith("PROBLEM: its data folder") and f"/data/{c} is gone" in line
                       for line in status.stdout.splitlines()), status.stdout
        before = {n: p.pid for n, p in stack._recorded().items()}
        repaired = subprocess.run(up_cmd(stack), capture_output=True, text=True, env=ENV, timeout=180)
        assert repaired.returncode == 0, repaired.stderr
        after = {n: p.pid for n, p in stack._recorded().items()}
        assert after["prometheus"] != before["prometheus"] and after["alertmanager"] != before["alertmanager"]
        assert after["demo-web"] == before["demo-web"]
        assert (stack.data_dir / "prometheus").is_dir()
        status = cli(stack, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        hold(4)
        fig = figures(8, "Data folder deleted while running; `status`, `up`, then a P0", "rm -rf .monstack/data",
                      captured(stack, t0), {(r, DOWN, "P0", "firing"): 1 for r in P0_RECEIVERS})
        assert fig.lost == 0 and fig.duplicated == 0, fig


def test_a_crashed_component_is_reported_then_restarted_by_up(tmp_path: Path) -> None:
    with running(tmp_path, {"services": [service()]}, first=2500) as stack:
        kill(stack, "alertmanager")
        status = cli(stack, "status")
        assert status.returncode == 1 and "alertmanager" in status.stderr, status.stdout + status.stderr
        assert any(line.split()[:2] == ["alertmanager", "NOT"] for line in status.stdout.splitlines()), status.stdout
        restarted = subprocess.run(up_cmd(stack), capture_output=True, text=True, env=ENV, timeout=180)
        assert restarted.returncode == 0, restarted.stderr
        assert cli(stack, "status").returncode == 0
        t0 = time.time()
        control(stack, HANG)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        hold(4)
        fig = figures(8, "Alertmanager crashed (kill -9); `status`, `up`, then a P0", "1 kill -9",
                      captured(stack, t0), {(r, DOWN, "P0", "firing"): 1 for r in P0_RECEIVERS})
        assert fig.lost == 0 and fig.duplicated == 0, fig


# --- 9. A receiver outage ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_receiver_down_for_60s_during_a_p0_gets_it_once_it_is_back(tmp_path: Path) -> None:
    with running(tmp_path, {"services": [service()]}, first=2600) as stack:
        am = stack.alertmanager_url
        rec = read_state(stack.state_dir)["processes"]["sinks"]
        kill(stack, "sinks")
        t_down = time.monotonic()
        t0 = time.time()
        control(stack, HANG)
        wait_for("Alertmanager failing to notify the receivers", lambda: counter(am, "alertmanager_notifications_failed_total") > 0,
                 timeout=120)
        hold(60 - (time.monotonic() - t_down))  # the outage: 60 seconds
        stack._start(Spec("sinks", tuple(rec["argv"]), tuple(rec["ports"]), rec["ready_url"]))  # the receivers are back
        wait_for("the sinks answering again", lambda: api.ready(rec["ready_url"]), timeout=60)
        wait_notified(stack, P0_RECEIVERS, DOWN, "P0", "firing", t0, timeout=120)
        hold(6)
        fig = figures(9, "Receivers down for 60 s while a P0 fires", "sinks killed for 60 s", captured(stack, t0),
                      {(r, DOWN, "P0", "firing"): 1 for r in P0_RECEIVERS},
                      note="Alertmanager tries again every group_interval until the receiver answers")
        assert fig.lost == 0 and fig.duplicated == 0, fig
