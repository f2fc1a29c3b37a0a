"""Run the alert-quality benchmark: simulate, backfill, backtest, score; print tables and merge the figures into bench/results.json."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser as P
import yaml

from generator import names, pipeline
from generator.backtest import engine, routing
from generator.backtest import rules as rules_mod
from generator.backtest.inline import Inliner
from generator.backtest.promql_text import range_of
from generator.backtest.scratch import ScratchPrometheus, backfill, block_windows, write_openmetrics
from generator.backtest.source import Labels, PrometheusAPI
from generator.backtest.state import Episode
from generator.catalogue.core import probe_interval
from generator.quality.faults import FAULTS, KINDS, Fault
from generator.quality.fleet import CADENCE, FLEET
from generator.quality.simulate import Fleet, Key

START = 1_704_067_200  # Monday 2024-01-01 00:00 UTC: the first simulated week
WEEK = 7 * 86400
WARMUP = 86400  # a day of history before the first week, so hour- and day-long windows are filled
# Healthy weeks first, then the faulted week. Rare noise (one failed request at night on a quiet service)
# happens about weekly: one healthy week is too small a sample to count it; each week has its own draws.
HEALTHY_WEEKS = 2
FAULTED = START + HEALTHY_WEEKS * WEEK  # the faulted week's Monday 00:00
END = FAULTED + WEEK
RESULTS = Path("bench/results.json")
KEY = "alert_quality"


@dataclass
class Dataset:
    outcome: engine.Outcome
    samples: int
    series: int


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_fleet(folder: Path) -> tuple[pipeline.Build, rules_mod.RuleSet, routing.Config]:
    inv = folder / "services.yaml"
    inv.write_text(yaml.safe_dump(FLEET, sort_keys=False))
    built = pipeline.build(inv)
    rules = rules_mod.from_files(built.files, "benchmark fleet")
    cfg = rules_mod.routing_from_files(built.files, "benchmark fleet")
    assert cfg is not None
    return built, rules, routing.load(cfg.config)


def write_history(built: pipeline.Build, data: Path, scratch: Path) -> tuple[int, int]:
    """The simulated history as TSDB blocks, one OpenMetrics file per block window; (samples, series).

    promtool backfills one window while the next is simulated (two cores)."""
    fleet = Fleet(built.model, START - WARMUP, END, FAULTS, FAULTED)
    samples = 0
    keys: set[Key] = set()
    om = scratch / "window.om"
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for lo, hi in block_windows(START - WARMUP, END):
            window: dict[Key, list[tuple[float, float]]] = defaultdict(list)
            t = lo
            while t < hi:
                for metric, labels, at, value in fleet.scrape(t):
                    window[(metric, tuple(sorted(labels.items())))].append((at, value))
                t += CADENCE
            if pending is not None:
                pending.result()
            samples += write_openmetrics(om, ((m, dict(lb), pts) for (m, lb), pts in window.items()))
            keys.update(window)
            pending = pool.submit(backfill, om, data)
        if pending is not None:
            pending.result()
    om.unlink()
    return samples, len(keys)


def evaluate(built: pipeline.Build, rules: rules_mod.RuleSet, config: routing.Config, tmp: Path, timings: dict[str, float]) -> Dataset:
    data = tmp / "data"
    t0 = time.perf_counter()
    samples, series = write_history(built, data, tmp)
    timings["history"] = time.perf_counter() - t0
    _say(f"{samples:,} samples in {series} series simulated and backfilled in {timings['history']:.0f}s")
    t0 = time.perf_counter()
    with ScratchPrometheus(tmp / "prometheus", data) as prom:
        evaluator = engine.Evaluator(PrometheusAPI(prom.url), workers=2)
        out = engine.outcome(evaluator, rules, rules.alerts, engine.Window(START, END), config)
    timings["backtest"] = time.perf_counter() - t0
    _say(f"{len(rules.alerts)} alerts backtested over {(END - START) // 86400} days in {timings['backtest']:.0f}s")
    return Dataset(out, samples, series)


# --- scoring -----------------------------------------------------------------------------------


def max_range(expr: str) -> float:
    """The longest range (seconds) the expression reads: its window, recording rules inlined."""
    longest = [0.0]

    def visit(n: P.Expr) -> bool:
        if isinstance(n, (P.MatrixSelector, P.SubqueryExpr)):
            longest[0] = max(longest[0], range_of(n).total_seconds())
        return True

    P.walk(P.parse(expr), pre_visit=visit)
    return longest[0]


def metrics(expr: str) -> set[str]:
    """The metric names the expression selects."""
    found: set[str] = set()

    def visit(n: P.Expr) -> bool:
        if isinstance(n, P.VectorSelector) and n.name:
            found.add(n.name)
        return True

    P.walk(P.parse(expr), pre_visit=visit)
    return found


def sample_interval(inlined: str, built: pipeline.Build, service: str) -> float:
    """Seconds between the samples the rule reads: the probe interval when it reads only probe series, else the scrape cadence."""
    read = metrics(inlined)
    if read and all(m.startswith("probe_") for m in read):
        return probe_interval(built.model, built.model.service(service)).seconds
    return CADENCE


_BURN = re.compile(r">\s*\(([\d.]+)\s*\*\s*([\d.]+)\)")


def bound(rule: rules_mod.AlertRule, inlined: str, magnitude: float | None, interval: float = CADENCE) -> float:
    """Detection bound: the rule's window (for burn-rate alerts, the share of it a step to `magnitude` needs) + for
    + the interval of the samples it reads (scrape or probe) + evaluation."""
    window = max_range(inlined)
    m = _BURN.search(rule.expr)
    if m and magnitude:
        threshold = float(m.group(1)) * float(m.group(2))
        if threshold >= magnitude:
            return math.inf  # this burn rate is never reached
        window *= threshold / magnitude
    return window + rule.for_ + interval + rule.interval


def _service(labels: Labels) -> str:
    return dict(labels).get(names.SERVICE, "")


def _instance_ok(f: Fault, ep: Episode, built: pipeline.Build) -> bool:
    fx = f.effects(0.0)
    if fx.instance is None or f.service != "hosts":
        return True
    scrape = built.model.service("hosts").scrape
    assert scrape is not None, "the fleet's hosts are scraped"
    return ep.label("instance") in ("", scrape.targets[fx.instance])


def score_faults(ds: Dataset, built: pipeline.Build, rules: rules_mod.RuleSet) -> list[dict[str, Any]]:
    """Per fault: the first expected alert that fired, its delay, the designed alert's bound, the first page."""
    inliner = Inliner(rules)
    by_alert: dict[tuple[str, str], list[tuple[float, Episode]]] = defaultdict(list)  # fired episodes with their firing time
    for rep in ds.outcome.replays:
        for e in rep.episodes:
            if e.fired_at is not None:
                by_alert[(rep.rule.alert, rep.rule.service)].append((e.fired_at, e))
    pages = [n for n in ds.outcome.notifications if n.firing and n.receiver in ds.outcome.pagers]
    out = []
    for f in FAULTS:
        start, end = FAULTED + f.start, FAULTED + f.start + f.duration
        candidates = [r for r in rules.alerts if r.service == f.service and r.alert in f.expected]
        inlined = {r.alert: inliner.inline(r.expr) for r in candidates}
        bounds = {r.alert: bound(r, inlined[r.alert], f.magnitude, sample_interval(inlined[r.alert], built, f.service))
                  for r in candidates}
        fault_bound = bounds[f.designed]
        late = max(b for b in bounds.values() if b != math.inf)
        hits = sorted(((at, r.severity, r.alert) for r in candidates for at, e in by_alert[(r.alert, r.service)]
                       if start <= at <= end + late and _instance_ok(f, e, built)))
        first = hits[0] if hits else None
        paged = [n.time for n in pages if start <= n.time <= end + fault_bound + 3600
                 and any(_service(a) == f.service for a in n.firing)]
        out.append({
            "id": f.id, "kind": f.kind, "service": f.service, "what": f.what,
            "start": _day(start), "duration_s": f.duration,
            "designed": f.designed, "detected_by": first[2] if first else None, "severity": first[1] if first else None,
            "delay_s": round(first[0] - start) if first else None, "bound_s": round(fault_bound),
            "within_bound": bool(first and first[0] - start <= fault_bound),
            "first_page_s": round(min(paged) - start) if paged else None,
        })
    return out


class Attribution:
    """Whether an alert of a service firing at t can be the effect of an injected fault: during it, or while the
    service's longest window plus `for` still holds it."""

    def __init__(self, rules: rules_mod.RuleSet, faults: tuple[Fault, ...]):
        inliner = Inliner(rules)
        slack: dict[str, float] = defaultdict(float)
        for r in rules.alerts:
            slack[r.service] = max(slack[r.service], max_range(inliner.inline(r.expr)) + r.for_)
        self.spans = defaultdict(list)
        for f in faults:
            self.spans[f.service].append((FAULTED + f.start, FAULTED + f.start + f.duration + slack[f.service] + 2 * CADENCE))

    def __call__(self, service: str, t: float) -> bool:
        return any(a <= t <= b for a, b in self.spans.get(service, ()))


def false_positives(ds: Dataset, attribution: Attribution, pages_only: bool, lo: float, hi: float) -> dict[str, Any]:
    """Firing notifications sent in [lo, hi) (pages only, or every one but the heartbeat) and how many no injected fault explains."""
    fired: dict[Labels, list[float]] = defaultdict(list)  # alert labels -> when each of its episodes fired
    for rep in ds.outcome.replays:
        for e in rep.episodes:
            if e.fired_at is not None:
                fired[e.labels].append(e.fired_at)
    by_service: Counter = Counter()
    false_by_service: Counter = Counter()
    total = false = 0
    for n in ds.outcome.notifications:
        if not (lo <= n.time < hi) or not n.firing or (pages_only and n.receiver not in ds.outcome.pagers):
            continue
        if any(dict(a).get("alertname") == names.WATCHDOG_ALERT for a in n.firing):
            continue
        total += 1
        services = sorted({_service(a) for a in n.firing})
        by_service.update(services)
        true = False
        for a in n.firing:
            at = max((t for t in fired[a] if t <= n.time), default=None)
            if at is not None and attribution(_service(a), at):
                true = True
        if not true:
            false += 1
            false_by_service.update(services)
    key = "pages" if pages_only else "notifications"
    return {key: total, f"false_{key}": false, "by_service": dict(sorted(by_service.items())),
            "false_by_service": dict(sorted(false_by_service.items())),
            "false_positive_rate": round(false / total, 4) if total else 0.0}


def notification_counts(ds: Dataset, lo: float, hi: float) -> dict[str, Any]:
    """Firing notifications sent in [lo, hi) by severity and service, tickets, and how often each alert fired."""
    by_severity: Counter = Counter()
    by_service_severity: dict[str, Counter] = defaultdict(Counter)
    tickets = 0
    for n in ds.outcome.notifications:
        if not (lo <= n.time < hi) or not n.firing:
            continue
        if any(dict(a).get("alertname") == names.WATCHDOG_ALERT for a in n.firing):
            continue
        tickets += n.receiver == "tickets"
        for sev in {dict(a).get(names.SEVERITY, "") for a in n.firing}:
            by_severity[sev] += 1
        for service, sev in {(_service(a), dict(a).get(names.SEVERITY, "")) for a in n.firing}:
            by_service_severity[service][sev] += 1
    fires: Counter = Counter()
    for rep in ds.outcome.replays:
        k = sum(1 for e in rep.episodes if e.fired_at is not None and lo <= e.fired_at < hi)
        if k:
            fires[f"{rep.rule.alert} {rep.rule.service} {rep.rule.severity}"] += k
    return {"firing_notifications_by_severity": dict(sorted(by_severity.items())),
            "by_service": {s: dict(sorted(c.items())) for s, c in sorted(by_service_severity.items())},
            "tickets": tickets, "fires": dict(fires.most_common())}


def _day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%a %H:%M")


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --- output --------------------------------------------------------------------------------------


def tables(result: dict[str, Any], services: list[str]) -> str:
    h, f = result["healthy"], result["faulted"]
    weeks = result["history"]["healthy_weeks"]
    lines = [f"alert quality: {result['fleet']['services']} services, {result['fleet']['alerts']} alerts at the default thresholds, "
             f"{weeks} healthy week(s) then one with {f['total']} faults ({result['history']['samples']:,} samples, "
             f"scrape and evaluation every {result['fleet']['cadence_s']}s, health probes every "
             f"{'/'.join(f'{x:g}' for x in result['fleet']['probe_s'])}s)", "",
             f"healthy traffic, firing notifications per week (over {weeks} weeks):",
             f"  {'service':<16} {'pages':>6} {'P1':>6} {'P2':>6} {'tickets':>7}"]
    per = lambda n: f"{n / weeks:g}"
    for s in services:
        c = h["notifications"]["by_service"].get(s, {})
        lines.append(f"  {s:<16} {per(h['pages']['by_service'].get(s, 0)):>6} {per(c.get('P1', 0)):>6} {per(c.get('P2', 0)):>6} "
                     f"{per(c.get('P3', 0)):>7}")
    sev = h["notifications"]["firing_notifications_by_severity"]
    lines.append(f"  {'total':<16} {per(h['pages']['pages']):>6} {per(sev.get('P1', 0)):>6} {per(sev.get('P2', 0)):>6} "
                 f"{per(h['notifications']['tickets']):>7}")
    if h["notifications"]["fires"]:
        lines.append("  alerts that fired: " + ", ".join(f"{k} x{v}" for k, v in h["notifications"]["fires"].items()))
    a = f["all_notifications"]
    lines += ["", f"faulted week: {f['detected']}/{f['total']} faults detected within their bound; "
                  f"{f['pages']['pages']} pages, {f['pages']['false_pages']} false (false-positive rate {f['pages']['false_positive_rate']:.0%}); "
                  f"{a['notifications']} notifications of any severity, {a['false_notifications']} false ({a['false_positive_rate']:.0%})",
              f"  {'#':>2} {'kind':<18} {'service':<15} {'start':<9} {'detected by':<27} {'sev':<3} {'delay':>7} {'bound':>7} {'page':>7}"]
    for x in f["faults"]:
        mark = "" if x["within_bound"] else (f"  LATE (designed: {x['designed']})" if x["detected_by"] else "  MISSED")
        lines.append(f"  {x['id']:>2} {x['kind']:<18} {x['service']:<15} {x['start']:<9} {x['detected_by'] or '-':<27} "
                     f"{x['severity'] or '-':<3} {_human(x['delay_s']):>7} {_human(x['bound_s']):>7} {_human(x['first_page_s']):>7}{mark}")
    return "\n".join(lines)


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "generator"], capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def merge_results(path: Path, value: dict[str, Any]) -> None:
    """Set our key in the results file, keeping every other key."""
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc[KEY] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def run(results: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monstack-quality-") as tmp_name:
        tmp = Path(tmp_name)
        built, rules, config = build_fleet(tmp)
        ds = evaluate(built, rules, config, tmp, timings)
    timings["total"] = time.perf_counter() - t_all
    faults = score_faults(ds, built, rules)
    nothing, injected = Attribution(rules, ()), Attribution(rules, FAULTS)
    result = {
        "commit": git_commit(),
        "python": platform.python_version(),
        "fleet": {"services": len(built.model.services), "alerts": len(rules.alerts), "cadence_s": CADENCE,
                  "probe_s": sorted({probe_interval(built.model, s).seconds for s in built.model.services if s.probes})},
        "history": {"start": START - WARMUP, "healthy_weeks": HEALTHY_WEEKS, "faulted_week": FAULTED, "end": END,
                    "samples": ds.samples, "series": ds.series},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "healthy": {"pages": false_positives(ds, nothing, True, START, FAULTED), "notifications": notification_counts(ds, START, FAULTED)},
        "faulted": {"faults": faults, "total": len(faults), "detected": sum(x["within_bound"] for x in faults),
                    "kinds": {k: sum(1 for x in faults if x["kind"] == k) for k in KINDS},
                    "pages": false_positives(ds, injected, True, FAULTED, END),
                    "all_notifications": false_positives(ds, injected, False, FAULTED, END),
                    "notifications": notification_counts(ds, FAULTED, END)},
    }
    merge_results(results, result)
    print(tables(result, [s.name for s in built.model.services]))
    print(f"\n{timings['total']:.0f}s; wrote {results} ({KEY}, commit {result['commit']})")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.quality", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to merge the figures into (under its own key)")
    args = parser.parse_args(argv)
    run(args.results)
    return 0
