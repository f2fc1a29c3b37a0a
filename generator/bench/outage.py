"""Section `outage`: how long after a service dies the on-call is paged, monstack's defaults against a peer profile.

Each trial runs real processes on 127.0.0.1: a fresh Prometheus and Alertmanager (empty data, so no
alert or notification state carries over), the demo-web sample exporter as the service, and the
blackbox exporter for its health probe. Once the service has been scraped and probed at least three
times, all successfully, the bench waits a random 0-30 s (one full cycle of the 15 s scrapes, 10 s
probes and 5 s evaluations: a random phase; seeded, every delay recorded) and SIGKILLs the exporter.
The page is the first firing notification of any alert that reaches the profile's paging receiver,
timed at its arrival in a local sink, from the kill.

Profiles, measured in the same run against the same killed target:
- monstack: `monstack render` of a one-service inventory with every default (TargetDown and
  HealthProbeFailing in the fast group, P0 group_wait 10s), notifications to the local sinks.
- peer: a popular compose stack's own choices, written from its description: scrape and evaluation
  every 15 s, `up == 0` for 30s, Alertmanager's defaults (group_wait 30s, group_interval 5m) grouped by
  alertname, one webhook receiver.

Blip trials (monstack): the exporter fails exactly one scrape and one health probe (its counted
fail_metrics/fail_health faults); the trial waits until Prometheus has stored both failures and two
good scrapes and probes after them, then checks that no alert fired and nothing was paged.
"""
from __future__ import annotations

import random
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from generator import components, names, pipeline, topology
from generator.bench.common import SCRATCH, Processes, Say, free_port, python, summary, table, wait_for, write_section
from generator.runner.native import ensure_generated_secret, find_binary
from generator.sinks import HttpSink
from generator.testalerts import capture_matches

SERVICE = "web"
KILL_PHASE = 30.0  # seconds: the random wait before the kill spans one full scrape/probe/evaluation cycle
PAGE_TIMEOUT = 300.0  # a trial without a page within this is reported as missed
READY_TIMEOUT = 120.0
ALERTS = ("TargetDown", "HealthProbeFailing")


@dataclass
class Trial:
    profile: str
    lane: int
    number: int
    delay: float  # seconds waited after the steady state before the kill (the random phase)
    page: float | None = None  # seconds from the kill to the first page
    first_alert: str | None = None
    per_alert: dict[str, float] = field(default_factory=dict)  # alertname -> seconds to its first page
    error: str | None = None


@dataclass
class Lane:
    profile: str
    index: int
    root: Path
    sink: HttpSink
    exporter_port: int
    prometheus_port: int
    alertmanager_port: int
    blackbox_port: int = 0

    @property
    def receiver(self) -> str:
        return f"pager-{self.profile}-{self.index}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def exporter(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"


# --- configuration of the two profiles -------------------------------------------------------------------


def monstack_inventory(lane: Lane) -> dict[str, Any]:
    """One HTTP service with a liveness probe and nothing but defaults; P0 pages the lane's PagerDuty receiver."""
    target = f"127.0.0.1:{lane.exporter_port}"
    chat = f"chat-{lane.profile}-{lane.index}"
    return {
        "version": 1,
        "stack": {"name": "outage-bench"},
        "receivers": {lane.receiver: {"type": "pagerduty", "routing_key_file": "secrets/pagerduty"},
                      chat: {"type": "slack", "webhook_url_file": "secrets/slack", "channel": "#alerts"}},
        "severities": {"P0": {"receivers": [lane.receiver, chat]}, "P1": {"receivers": [chat]},
                       "P2": {"receivers": [chat]}, "P3": {"receivers": [chat], "active_time_intervals": []}},
        "teams": {"web": {}},
        "services": [{"name": SERVICE, "team": "web", "kind": "http", "scrape": {"targets": [target]},
                      "health": [{"name": "liveness", "url": f"http://{target}/health"}]}],
    }


def configure_monstack(lane: Lane, offset: int) -> None:
    root = lane.root
    inventory = root / "services.yaml"
    inventory.write_text(yaml.safe_dump(monstack_inventory(lane), sort_keys=False))
    secrets = {}
    for ref in ("secrets/pagerduty", "secrets/slack"):
        path = root / "sink-secrets" / ref.split("/")[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
        secrets[ref] = str(path)
    topo = topology.native(str(root), sink_http=f"127.0.0.1:{lane.sink.port}", port_offset=offset, secret_overrides=secrets,
                           config_dir=str(root / "config"))
    pipeline.render(inventory, root / "config", topo, run_checks=True)
    lane.prometheus_port = components.get("prometheus").native_port + offset
    lane.alertmanager_port = components.get("alertmanager").native_port + offset
    lane.blackbox_port = components.get("blackbox-exporter").native_port + offset


def configure_peer(lane: Lane) -> None:
    """The peer stack as described: 15 s scrape and evaluation, up == 0 for 30s, Alertmanager defaults by alertname."""
    root = lane.root / "config"
    root.mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{lane.alertmanager_port}"]}]}]},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": SERVICE, "static_configs": [{"targets": [f"127.0.0.1:{lane.exporter_port}"]}]}],
    }, sort_keys=False))
    (root / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "targets", "rules": [
        {"alert": "TargetDown", "expr": "up == 0", "for": "30s", "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.instance }} is down"}}]}]}, sort_keys=False))
    # group_wait, group_interval and repeat_interval left to Alertmanager's defaults (30s, 5m, 4h).
    (root / "alertmanager.yml").write_text(yaml.safe_dump({
        "route": {"receiver": lane.receiver, "group_by": ["alertname"]},
        "receivers": [{"name": lane.receiver, "webhook_configs": [{"url": lane.sink.webhook_url(lane.receiver)}]}],
    }, sort_keys=False))


# --- one trial ------------------------------------------------------------------------------------------


def _query(lane: Lane, expr: str) -> list[dict[str, Any]]:
    r = requests.get(f"{lane.prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def _scalar(lane: Lane, expr: str) -> float | None:
    try:
        found = _query(lane, expr)
    except requests.RequestException:
        return None
    return float(found[0]["value"][1]) if found else None


def _steady(lane: Lane, jobs: list[tuple[str, str]], at_least: int = 3) -> bool:
    """Every job has at least `at_least` samples in the last minute and all of them succeeded."""
    for job, metric in jobs:
        n = _scalar(lane, f'count_over_time({metric}{{job="{job}"}}[1m])')
        low = _scalar(lane, f'min_over_time({metric}{{job="{job}"}}[1m])')
        if n is None or n < at_least or low != 1:
            return False
    return True


def _jobs(lane: Lane) -> list[tuple[str, str]]:
    if lane.profile == "peer":
        return [(SERVICE, "up")]
    return [(SERVICE, "up"), (f"probe-{SERVICE}", "probe_success")]


def _start(lane: Lane, ps: Processes, data: Path) -> None:
    cfg = lane.root / "config"
    am = ["--config.file=" + str(cfg / ("alertmanager.yml" if lane.profile == "peer" else "alertmanager/alertmanager.yml")),
          f"--storage.path={data / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{lane.alertmanager_port}",
          "--cluster.listen-address="]
    prom = ["--config.file=" + str(cfg / ("prometheus.yml" if lane.profile == "peer" else "prometheus/prometheus.yml")),
            f"--storage.tsdb.path={data / 'prometheus'}", f"--web.listen-address=127.0.0.1:{lane.prometheus_port}"]
    token = lane.root / "control-token"  # the blip trial injects its failures through /control, which asks for it
    ensure_generated_secret(token)
    ps.start("exporter", [python(), "-m", "exporters", "demo-web", "--listen", f"127.0.0.1:{lane.exporter_port}", "--seed",
                          str(lane.index), "--control-token-file", str(token)])
    ps.start("alertmanager", [_binary("alertmanager"), *am])
    ps.start("prometheus", [_binary("prometheus"), *prom])


def _alive(ps: Processes) -> bool:
    """True while every process of the trial runs; one that exited (a port taken, a bad flag) ends the wait with its log."""
    for name, proc in ps.procs.items():
        if proc.poll() is not None:
            log = ps.logs / f"{name}.log"
            tail = log.read_text(errors="replace")[-600:] if log.is_file() else ""
            raise OSError(f"{name} exited with {proc.returncode} during start-up: {tail.strip()}")
    return True


def _binary(component: str) -> str:
    found = find_binary(component)
    if found is None:
        raise FileNotFoundError(f"{component} is not installed (make deps)")
    return found


def _pages(lane: Lane, since: float) -> list[tuple[float, str]]:
    """(arrival, alertname) of every firing notification to the lane's paging receiver since `since`."""
    out = []
    for c in lane.sink.all_captured():
        if c.get("receiver") != lane.receiver or c.get("time", 0) < since:
            continue
        if lane.profile == "peer":
            for a in (c.get("body") or {}).get("alerts", []):
                if a.get("status") == "firing":
                    out.append((c["time"], a.get("labels", {}).get("alertname", "?")))
        else:
            found = [name for name in ALERTS if capture_matches(c, name, "P0", "firing", SERVICE)]
            if c.get("kind") == "pagerduty" and (c.get("body") or {}).get("event_action") == "trigger":
                out.append((c["time"], found[0] if found else "other"))
    return sorted(out)


def kill_trial(lane: Lane, number: int, rng: random.Random | None, logs: Path) -> Trial:
    """Kill the service after a random phase (none without rng) and time its first page."""
    delay = round(rng.uniform(0, KILL_PHASE), 3) if rng else 0.0
    trial = Trial(lane.profile, lane.index, number, delay)
    data = lane.root / f"data-{number}"
    shutil.rmtree(data, ignore_errors=True)
    ps = Processes(logs / f"{lane.profile}-{lane.index}-{number}")
    try:
        _start(lane, ps, data)
        wait_for(lambda: _alive(ps) and _steady(lane, _jobs(lane)), READY_TIMEOUT, f"{lane.profile} lane {lane.index}: steady scrapes")
        time.sleep(delay)  # the random phase (recorded); the bench waits on conditions otherwise
        t_kill = time.time()
        ps.kill("exporter")
        pages = wait_for(lambda: _pages(lane, t_kill), PAGE_TIMEOUT, f"{lane.profile} lane {lane.index}: a page", every=0.1)
        trial.page = round(pages[0][0] - t_kill, 2)
        trial.first_alert = pages[0][1]
        # One outage, one page: the other hard-down alert is muted by the one that fired (no wait for it).
        for t, name in _pages(lane, t_kill):
            trial.per_alert.setdefault(name, round(t - t_kill, 2))
    except (TimeoutError, requests.RequestException, OSError) as exc:
        trial.error = str(exc)
    finally:
        ps.stop_all()
        shutil.rmtree(data, ignore_errors=True)
    return trial


def blip_trial(lane: Lane, number: int, logs: Path) -> dict[str, Any]:
    """Exactly one failed scrape and one failed probe: no alert may fire and nothing may be paged."""
    data = lane.root / f"blip-{number}"
    shutil.rmtree(data, ignore_errors=True)
    ps = Processes(logs / f"blip-{lane.index}-{number}")
    out: dict[str, Any] = {"lane": lane.index, "number": number}
    try:
        _start(lane, ps, data)
        wait_for(lambda: _alive(ps) and _steady(lane, _jobs(lane)), READY_TIMEOUT, "steady scrapes")
        t0 = time.time()
        headers = {names.CONTROL_HEADER: (lane.root / "control-token").read_text().strip()}
        requests.post(f"{lane.exporter}/control", json={"fail_metrics": 1, "fail_health": 1}, headers=headers,
                      timeout=5).raise_for_status()
        # Both failures stored, then two good scrapes and probes after them (counted from the failure on): the
        # hard-down rules need two failures in a row, so once a good sample follows the failure no alert can start.
        wait_for(lambda: _scalar(lane, f'min_over_time(up{{job="{SERVICE}"}}[2m])') == 0
                 and _scalar(lane, f'min_over_time(probe_success{{job="probe-{SERVICE}"}}[2m])') == 0, 120, "the failures stored")
        failed_at = time.time()
        wait_for(lambda: (_scalar(lane, f'sum_over_time(up{{job="{SERVICE}"}}[{int(time.time() - failed_at) + 1}s])') or 0) >= 2
                 and (_scalar(lane, f'sum_over_time(probe_success{{job="probe-{SERVICE}"}}[{int(time.time() - failed_at) + 1}s])') or 0) >= 2,
                 120, "two good scrapes and probes after the failures")
        fired = _query(lane, f'max_over_time(ALERTS{{service="{SERVICE}", alertstate="firing"}}[{int(time.time() - t0) + 5}s])')
        out.update({"failed_scrapes": 1, "failed_probes": 1, "alerts_fired": sorted(a["metric"].get("alertname", "") for a in fired),
                    "pages": len(_pages(lane, t0)), "ok": not fired and not _pages(lane, t0)})
    except (TimeoutError, requests.RequestException, OSError) as exc:
        out.update({"ok": False, "error": str(exc)})
    finally:
        ps.stop_all()
        shutil.rmtree(data, ignore_errors=True)
    return out


# --- the section -----------------------------------------------------------------------------------------


def run(trials: int, seed: int, out: Say, lanes: int = 5, blips: int = 3) -> dict[str, Any]:
    root = SCRATCH / "outage"
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    sink = HttpSink("127.0.0.1", 0).start()
    results: dict[str, list[Trial]] = {"monstack": [], "peer": []}
    blip_results: list[dict[str, Any]] = []
    errors: list[str] = []
    threads = []
    lock = threading.Lock()
    try:
        all_lanes = []
        for profile in ("monstack", "peer"):
            for i in range(min(lanes, trials)):
                lane = Lane(profile, i, root / f"{profile}-{i}", sink, free_port(), free_port(), free_port())
                lane.root.mkdir(parents=True, exist_ok=True)
                if profile == "monstack":
                    configure_monstack(lane, _offset(i))
                else:
                    configure_peer(lane)
                all_lanes.append(lane)
        blackboxes = Processes(logs / "blackbox")
        try:
            for lane in all_lanes:
                if lane.profile == "monstack":
                    blackboxes.start(f"blackbox-{lane.index}", [
                        _binary("blackbox-exporter"), f"--config.file={lane.root / 'config/prometheus/blackbox.yml'}",
                        f"--web.listen-address=127.0.0.1:{lane.blackbox_port}"])

            def work(lane: Lane) -> None:
                try:
                    trials_of(lane)
                except Exception as exc:  # a broken lane is reported, the others go on
                    out(f"  {lane.profile} lane {lane.index} broke: {exc!r}")
                    with lock:
                        errors.append(f"{lane.profile} lane {lane.index}: {exc!r}")

            def trials_of(lane: Lane) -> None:
                rng = random.Random(f"{seed}-{lane.profile}-{lane.index}")
                mine = [n for n in range(trials) if n % len([x for x in all_lanes if x.profile == lane.profile]) == lane.index]
                for n in mine:
                    t = kill_trial(lane, n, rng, logs)
                    with lock:
                        results[lane.profile].append(t)
                    out(f"  {t.profile:8} trial {t.number:2} (lane {t.lane}, kill after {t.delay:5.1f}s): "
                        + (f"paged after {t.page:6.1f}s by {t.first_alert}" if t.page is not None else f"NO PAGE: {t.error}"))
                if lane.profile == "monstack":
                    for n in range(lane.index, blips, len([x for x in all_lanes if x.profile == "monstack"])):
                        b = blip_trial(lane, n, logs)
                        with lock:
                            blip_results.append(b)
                        out(f"  monstack blip {n} (one failed scrape and probe): "
                            + ("no alert, no page" if b.get("ok") else f"FAILED: {b}"))

            for lane in all_lanes:
                th = threading.Thread(target=work, args=(lane,), name=f"{lane.profile}-{lane.index}")
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
        finally:
            blackboxes.stop_all()
    finally:
        sink.stop()
    figures = _figures(results, blip_results, seed, trials)
    figures["lane_errors"] = errors
    rows = []
    for profile in ("monstack", "peer"):
        s = figures[profile]["page_seconds"]
        rows.append([profile, f"{s.get('n', 0)}/{trials}", s.get("median"), s.get("min"), s.get("max"),
                     figures[profile]["description"]])
    out(table(["profile", "paged", "median s", "min s", "max s", "settings"], rows))
    for name, s in figures["monstack"]["per_alert_seconds"].items():
        out(f"  monstack {name}: median {s.get('median')} s over {s.get('n')} trials")
    out(f"ratio monstack/peer (medians): {figures['ratio']}; blips paged: {figures['blips']['paged']} of {figures['blips']['n']}")
    write_section("outage", figures)
    return figures


def free_offset(start: int) -> int:
    """A port offset at which Prometheus', Alertmanager's and the blackbox exporter's native ports are all free."""
    from generator.runner import process

    bases = [components.get(c).native_port for c in ("prometheus", "alertmanager", "blackbox-exporter")]
    for offset in range(start, start + 5000, 7):
        if all(process.port_free(b + offset) for b in bases):
            return offset
    raise RuntimeError(f"no free port offset from {start} on")


def _offset(lane: int) -> int:
    return free_offset(21000 + 100 * lane)


def _figures(results: dict[str, list[Trial]], blips: list[dict[str, Any]], seed: int, trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "trials_per_profile": trials, "kill_phase_seconds": KILL_PHASE}
    descriptions = {
        "monstack": "defaults: TargetDown/HealthProbeFailing after 2 failed scrapes (15s) / probes (10s), fast group every 5s, P0 group_wait 10s",
        "peer": "scrape/eval 15s, up == 0 for 30s, Alertmanager defaults (group_wait 30s) by alertname",
    }
    for profile, ts in results.items():
        ts = sorted(ts, key=lambda t: t.number)
        pages = [t.page for t in ts if t.page is not None]
        per_alert: dict[str, list[float]] = {}
        for t in ts:
            for name, v in t.per_alert.items():
                per_alert.setdefault(name, []).append(v)
        out[profile] = {"description": descriptions[profile], "page_seconds": summary(pages),
                        "per_alert_seconds": {k: summary(v) for k, v in sorted(per_alert.items())},
                        "trials": [t.__dict__ for t in ts]}
    m, p = out["monstack"]["page_seconds"], out["peer"]["page_seconds"]
    out["ratio"] = round(m["median"] / p["median"], 3) if m.get("median") and p.get("median") else None
    out["blips"] = {"n": len(blips), "paged": sum(1 for b in blips if not b.get("ok")), "trials": blips}
    out["mean_delay_check"] = round(statistics.mean(t.delay for ts in results.values() for t in ts), 2) if any(results.values()) else None
    return out
