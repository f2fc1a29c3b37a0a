"""Section `rules`: what monstack's rule set costs Prometheus, against the same alerts written without recording rules.

Method. The bench fleet (generator.bench.synthetic_inventory) of N services is resolved and its rule
groups planned as `monstack render` writes them. The naive set is written from them: every alert keeps
its group, interval and expression, with each recorded series it reads replaced by the recording
rule's own expression (recursively), and no recording rule. A person writing such an alert by hand
leaves out the `or ... * 0` that makes a recorded failure ratio 0 rather than absent before the first
failure (no alert compares it with 0), so the naive set leaves it out too: the cheaper naive set.

Both sets run against the same data: the fleet's raw series (generator/bench/fleetdata.py) with as
much history as the longest window that reads them, 15 s apart, written as OpenMetrics and imported
with `promtool tsdb create-blocks-from openmetrics` (kept between runs while the series stay the
same), plus the value of every series monstack's recording rules record, at the measured instant
(as a running Prometheus would have recorded it). One Prometheus on 127.0.0.1 serves them.

Every rule of both sets is evaluated as Prometheus evaluates it: an instant query of its expression
at the data's last instant, through /api/v1/query with stats, one at a time, the two sets interleaved
service by service. A warm-up pass, then measured passes; per rule the median engine time
(evalTotalTime) and the samples it read (totalQueryableSamples, the same every pass). A rule group
runs once per interval, so a set's load is the sum of its rules' engine time divided by their group's
interval: engine seconds per second. Serial queries, not the live rule manager: at fleet size on a
shared 2-core machine the naive set cannot keep up with its intervals, and groups that wait for a CPU
report the waiting as their evaluation time.

Head series: the recorded series a set adds (what its recording rules return at that instant),
against the raw series of the fleet (what scraping it puts in the head).
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as P
import requests
import yaml

from generator import alerting, lint, names
from generator.backtest.inline import Inliner
from generator.backtest.promql_text import show
from generator.backtest.rules import RecordingRule, RuleSet
from generator.bench import fleetdata, synthetic_inventory
from generator.bench.common import SCRATCH, Processes, Say, free_port, run_child, table, wait_for, write_section

STACK = "stack"  # owner of the stack's own rules (monstack-meta)


@dataclass(frozen=True)
class Rule:
    kind: str  # "record" or "alert"
    name: str
    expr: str


@dataclass
class Group:
    owner: str  # the service, or STACK
    name: str
    interval: float  # seconds
    rules: list[Rule]

    @property
    def kind(self) -> str:
        """The group's role: fast, recording, alerts, slo... (its name after the service's)."""
        if self.owner == STACK:
            return "meta"
        return self.name[len(self.owner) + 1:] if self.name.startswith(self.owner + ".") else self.name


def monstack_groups(model: Any) -> list[Group]:
    """The rule groups `monstack render` writes, in file order."""
    from generator.render import rules as render_rules

    default = model.stack.evaluation_interval.seconds
    out = []
    for s in model.services:
        for g in alerting.service_groups(model, s):
            out.append(_group(s.name, render_rules.group(model, g), g.interval.seconds if g.interval else default))
    meta = alerting.meta_group(model)
    out.append(_group(STACK, render_rules.group(model, meta), default))
    return out


def _group(owner: str, d: dict[str, Any], interval: float) -> Group:
    rules = [Rule("record", r["record"], r["expr"]) if "record" in r else Rule("alert", r["alert"], r["expr"]) for r in d["rules"]]
    return Group(owner, d["name"], interval, rules)


def _strip_zero_fallback(node: P.Expr) -> P.Expr | None:
    """`a or b * 0` -> a: the fallback only turns "absent" into 0."""
    if isinstance(node, P.BinaryExpr) and str(node.op) == "or":
        rhs = node.rhs
        while isinstance(rhs, P.ParenExpr):
            rhs = rhs.expr
        if isinstance(rhs, P.BinaryExpr) and str(rhs.op) == "*" and isinstance(rhs.rhs, P.NumberLiteral) and rhs.rhs.val == 0:
            return node.lhs
    return None


def inline(expr: str, records: dict[str, str], interval: float) -> str:
    """expr with every recorded series of `records` replaced by its recording rule's expression (itself inlined)."""
    def override(n: P.Expr) -> str | None:
        if isinstance(n, P.VectorSelector) and lint.selector_name(n) in records:
            return f"({_record_text(records[lint.selector_name(n) or ''], records, interval)})"
        if isinstance(n, P.MatrixSelector) and lint.selector_name(n.vector_selector) in records:
            inner = _record_text(records[lint.selector_name(n.vector_selector) or ""], records, interval)
            return f"({inner})[{int(n.range.total_seconds())}s:{int(interval)}s]"
        return None

    return show(P.parse(expr), override)


def _record_text(expr: str, records: dict[str, str], interval: float) -> str:
    def override(n: P.Expr) -> str | None:
        stripped = _strip_zero_fallback(n)
        if stripped is not None:
            return show(stripped, override)
        return None

    return inline(show(P.parse(expr), override), records, interval)


def naive_groups(groups: list[Group]) -> tuple[list[Group], list[str]]:
    """The same alerts in the same groups, each reading raw series only; and the alerts that needed a subquery."""
    records: dict[str, dict[str, str]] = {}
    for g in groups:
        for r in g.rules:
            if r.kind == "record":
                records.setdefault(g.owner, {})[r.name] = r.expr
    out, subqueries = [], []
    for g in groups:
        mine = records.get(g.owner, {})
        alerts = []
        for r in g.rules:
            if r.kind != "alert":
                continue
            text = inline(r.expr, mine, g.interval) if mine else r.expr
            if text != r.expr and any(isinstance(n, P.SubqueryExpr) for n in lint.walk(P.parse(text))):
                subqueries.append(f"{g.name}/{r.name}")
            alerts.append(Rule("alert", r.name, text))
        if alerts:
            out.append(Group(g.owner, g.name, g.interval, alerts))
    return out, subqueries


# --- the section ------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    group: Group
    rule: Rule
    seconds: list[float] = field(default_factory=list)
    samples: int = 0
    result: int = 0  # series returned (a recording rule adds these to the head)
    labels: frozenset = frozenset()

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0


def run(sizes: list[int], passes: int, seed: int, out: Say) -> dict[str, Any]:
    results = [measure(n, passes, seed, out) for n in sizes]
    figures = {"sizes": results}
    write_section("rules", figures)
    return figures


def measure(n: int, passes: int, seed: int, out: Say) -> dict[str, Any]:
    from generator.inventory.loader import load_inventory
    from generator.model import resolve
    from generator.runner.native import find_binary

    root = SCRATCH / "rules" / str(n)
    root.mkdir(parents=True, exist_ok=True)
    inv = root / "services.yaml"
    inv.write_text(yaml.safe_dump(synthetic_inventory(n), sort_keys=False))
    model = resolve(*load_inventory(inv))
    ours = monstack_groups(model)
    naive, subqueries = naive_groups(ours)
    out(f"  {n} services: monstack {_count(ours, 'record')} recording rules and {_count(ours, 'alert')} alerts in {len(ours)} groups; "
        f"naive {_count(naive, 'alert')} alerts in {len(naive)} groups" + (f" ({len(subqueries)} with a subquery)" if subqueries else ""))

    fleet = fleetdata.fleet(model, random.Random(seed))
    exprs: dict[str, list[str]] = {}
    for g in ours + naive:
        exprs.setdefault(g.owner, []).extend(r.expr for r in g.rules)
    invented = fleetdata.assign_history(fleet, model, exprs, STACK)
    fleetdata.add_exporter_rest(fleet, model)
    promtool, prometheus = _binaries(find_binary)
    end = _end()
    key = fleetdata.spec_key(fleet, 0)
    raw_dir = root / f"raw-{key}"
    history = fleetdata.cached(raw_dir)
    if history is None:
        for old in root.glob("raw-*"):
            shutil.rmtree(old, ignore_errors=True)
        history = fleetdata.build(fleet, raw_dir, end, promtool, out, seed, workers=2)
    else:
        out(f"  history: {history.series} series, {history.samples / 1e6:.1f}M samples, kept from an earlier run (ends {history.end})")
    at = history.end

    data = root / "tsdb"
    shutil.rmtree(data, ignore_errors=True)
    _link_blocks(history.blocks, data)
    config = root / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\n")
    logs = root / "logs"
    procs = Processes(logs)
    try:
        url = _start(procs, prometheus, config, data, "recorded-inputs")
        t = time.monotonic()
        recorded = _recorded(url, ours, at)
        procs.stop_all()
        _import_recorded(recorded, at, promtool, root, data)
        out(f"  {len(recorded)} recorded series at the measured instant, computed from the raw series in {time.monotonic() - t:.0f}s")
        url = _start(procs, prometheus, config, data, "measure")
        ours_m = [Measured(g, r) for g in ours for r in g.rules]
        naive_m = [Measured(g, r) for g in naive for r in g.rules]
        session = requests.Session()
        t = time.monotonic()
        for p in range(passes + 1):
            for m in _interleave(ours_m, naive_m, flip=p % 2 == 1):
                seconds, samples, labels = _query(session, url, m.rule.expr, at)
                if p == 0:
                    m.samples, m.result, m.labels = samples, len(labels), labels
                else:
                    m.seconds.append(seconds)
            out(f"    pass {p}{' (warm-up)' if p == 0 else ''}: {time.monotonic() - t:.0f}s")
            t = time.monotonic()
    finally:
        procs.stop_all()
        shutil.rmtree(data, ignore_errors=True)

    base = sum(fleet.base_by_kind.values())
    a, b = _totals(ours_m), _totals(naive_m)
    mismatched = _compare(ours_m, naive_m)
    rows = [["monstack", a["recording_rules"], a["alerts"], a["engine_ms_per_round"], a["engine_ms_per_second"], a["samples_per_second"],
             a["head_series_added"], f"{100 * a['head_series_added'] / base:.1f}%"],
            ["naive", b["recording_rules"], b["alerts"], b["engine_ms_per_round"], b["engine_ms_per_second"], b["samples_per_second"],
             b["head_series_added"], f"{100 * b['head_series_added'] / base:.1f}%"]]
    out(table(["rule set", "recording", "alerts", "engine ms/round", "engine ms/s", "samples/s", "head series added", "of raw"], rows))
    ratio = round(a["engine_ms_per_second"] / b["engine_ms_per_second"], 3) if b["engine_ms_per_second"] else None
    ratio_round = round(a["engine_ms_per_round"] / b["engine_ms_per_round"], 3) if b["engine_ms_per_round"] else None
    ratio_samples = round(a["samples_per_second"] / b["samples_per_second"], 3) if b["samples_per_second"] else None
    out(f"  monstack / naive: engine time per second {ratio}, per round {ratio_round}, samples read per second {ratio_samples}; "
        f"head series added {a['head_series_added']} = {100 * a['head_series_added'] / base:.1f}% of {base} raw series")
    kinds = sorted({m.group.kind for m in ours_m + naive_m})
    by_kind = {k: {"monstack_ms_per_second": _per_second([m for m in ours_m if m.group.kind == k]),
                   "naive_ms_per_second": _per_second([m for m in naive_m if m.group.kind == k])} for k in kinds}
    out(table(["groups", "monstack ms/s", "naive ms/s"], [[k, v["monstack_ms_per_second"], v["naive_ms_per_second"]] for k, v in by_kind.items()]))
    top = sorted(ours_m, key=lambda m: -m.median / m.group.interval)[:8]
    for m in top:
        out(f"    monstack: {1000 * m.median / m.group.interval:7.3f} ms/s  {m.group.name} / {m.rule.name}")
    if mismatched:
        out(f"  {len(mismatched)} alerts return other series than their naive form, e.g. {mismatched[0]}")
    return {
        "services": n, "seed": seed, "passes": passes, "history": {"end": history.end, "series": history.series,
                                                                   "samples": history.samples, "build_seconds": history.seconds},
        "raw_series": base, "raw_series_by_kind": dict(sorted(fleet.base_by_kind.items())), "invented_selectors": len(invented),
        "monstack": a, "naive": b, "by_group_kind": by_kind,
        "ratio_engine_per_second": ratio, "ratio_engine_per_round": ratio_round, "ratio_samples_per_second": ratio_samples,
        "head_series_added_share": round(a["head_series_added"] / base, 4),
        "naive_subqueries": subqueries, "alerts_differing_from_naive": mismatched[:20],
        "costliest_monstack_rules": [{"group": m.group.name, "rule": m.rule.name, "ms_per_second": round(1000 * m.median / m.group.interval, 3),
                                      "samples": m.samples} for m in top],
    }


def _count(groups: list[Group], kind: str) -> int:
    return sum(1 for g in groups for r in g.rules if r.kind == kind)


def _per_second(ms: list[Measured]) -> float:
    return round(1000 * sum(m.median / m.group.interval for m in ms), 1)


def _totals(ms: list[Measured]) -> dict[str, Any]:
    return {
        "groups": len({m.group.name for m in ms}),
        "recording_rules": sum(1 for m in ms if m.rule.kind == "record"),
        "alerts": sum(1 for m in ms if m.rule.kind == "alert"),
        "engine_ms_per_round": round(1000 * sum(m.median for m in ms), 1),
        "engine_ms_per_second": _per_second(ms),
        "samples_per_round": sum(m.samples for m in ms),
        "samples_per_second": round(sum(m.samples / m.group.interval for m in ms)),
        "head_series_added": sum(m.result for m in ms if m.rule.kind == "record"),
    }


def _compare(ours: list[Measured], naive: list[Measured]) -> list[str]:
    """Alerts whose naive form returns other series at the measured instant (both sets must mean the same)."""
    alerts = [m for m in ours if m.rule.kind == "alert"]
    assert len(alerts) == len(naive), "the naive set has one alert per alert, in the same order"
    return [f"{m.group.name}/{m.rule.name}" for m, other in zip(alerts, naive, strict=True) if m.labels != other.labels]


def _interleave(ours: list[Measured], naive: list[Measured], flip: bool) -> list[Measured]:
    """Service by service, one set's rules then the other's, the first set alternating from service to service (and
    from pass to pass): a change in the machine's load hits both alike, and neither always finds the caches warmed
    by the other's identical rules (the fast groups are the same in both)."""
    owners: list[str] = []
    by_owner: dict[str, tuple[list[Measured], list[Measured]]] = {}
    for i, ms in enumerate((ours, naive)):
        for m in ms:
            if m.group.owner not in by_owner:
                owners.append(m.group.owner)
                by_owner[m.group.owner] = ([], [])
            by_owner[m.group.owner][i].append(m)
    out: list[Measured] = []
    for k, o in enumerate(owners):
        first, second = by_owner[o]
        if (k % 2 == 1) != flip:
            first, second = second, first
        out += first + second
    return out


def _query(session: requests.Session, url: str, expr: str, at: int) -> tuple[float, int, frozenset]:
    r = session.post(f"{url}/api/v1/query", data={"query": expr, "time": at, "stats": "all"}, timeout=600)
    body = r.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {body.get('error')}: {expr[:200]}")
    stats = body["data"]["stats"]
    labels = frozenset(tuple(sorted((k, v) for k, v in x["metric"].items() if k != "__name__")) for x in body["data"]["result"])
    return float(stats["timings"]["evalTotalTime"]), int(stats["samples"]["totalQueryableSamples"]), labels


def _binaries(find_binary: Any) -> tuple[str, str]:
    promtool = shutil.which("promtool")
    prometheus = find_binary("prometheus")
    if not promtool or not prometheus:
        raise FileNotFoundError("prometheus and promtool are needed (make deps)")
    return promtool, prometheus


def _end() -> int:
    """The last instant of a new history: the end of the last whole 2 h block (promtool's block boundaries)."""
    return int(time.time()) // fleetdata.BLOCK * fleetdata.BLOCK - fleetdata.STEP


def _link_blocks(blocks: Path, data: Path) -> None:
    """The kept blocks, hard-linked (Prometheus never changes a block's files; compaction is off)."""
    for src in blocks.rglob("*"):
        dst = data / src.relative_to(blocks)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)


def _start(procs: Processes, binary: str, config: Path, data: Path, name: str) -> str:
    port = free_port()
    # min = max block duration: no compaction, so the blocks stay what promtool wrote (and stay linked).
    procs.start(name, [binary, f"--config.file={config}", f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=10y",
                       "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
                       f"--web.listen-address=127.0.0.1:{port}", "--query.timeout=10m", "--query.max-samples=500000000"])
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(url), 600, f"the scratch Prometheus ({name}) to load the blocks")
    return url


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).ok
    except requests.RequestException:
        return False


def _recorded(url: str, groups: list[Group], at: int) -> list[tuple[dict[str, str], float]]:
    """Every series monstack's recording rules record, and its value at `at`, computed from the raw series.

    Each service's recording rules are inlined into the selector of each record (recording rules that read
    other recorded series included), so one query per rule gives what Prometheus would have recorded.
    """
    session = requests.Session()
    out: list[tuple[dict[str, str], float]] = []
    by_owner: dict[str, list[tuple[Group, Rule]]] = {}
    for g in groups:
        for r in g.rules:
            if r.kind == "record":
                by_owner.setdefault(g.owner, []).append((g, r))
    for owner, rules in by_owner.items():
        recording: dict[str, list[RecordingRule]] = {}
        for g, r in rules:
            recording.setdefault(r.name, []).append(RecordingRule(r.name, r.expr, {}, g.name, g.interval))
        inliner = Inliner(RuleSet({k: tuple(v) for k, v in recording.items()}, (), "bench"))
        for name in recording:
            expr = inliner.inline(f'{name}{{{names.SERVICE}="{owner}"}}') if owner != STACK else inliner.inline(name)
            r = session.post(f"{url}/api/v1/query", data={"query": expr, "time": at}, timeout=600).json()
            if r.get("status") != "success":
                raise RuntimeError(f"recorded series {name} of {owner}: {r.get('error')}")
            for x in r["data"]["result"]:
                out.append(({**x["metric"], "__name__": name}, float(x["value"][1])))
    return out


def _import_recorded(recorded: list[tuple[dict[str, str], float]], at: int, promtool: str, root: Path, data: Path) -> None:
    """The recorded series as the last three evaluations would have left them (what alerts read at `at`)."""
    path = root / "recorded.om"
    with open(path, "w") as f:
        for labels, value in sorted(recorded, key=lambda lv: lv[0]["__name__"]):
            name = labels["__name__"]
            inner = ",".join(f'{k}="{fleetdata.escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
            v = "NaN" if value != value else f"{value:.10g}"
            for t in (at - 2 * fleetdata.STEP, at - fleetdata.STEP, at):
                f.write(f"{name}{{{inner}}} {v} {t}\n")
        f.write("# EOF\n")
    out_dir = root / "recorded-blocks"
    shutil.rmtree(out_dir, ignore_errors=True)
    code, _, _ = run_child([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(out_dir)], 600,
                           root / "promtool-recorded.log")
    if code != 0:
        raise RuntimeError(f"promtool could not import the recorded series (see {root / 'promtool-recorded.log'})")
    for b in out_dir.iterdir():
        if b.is_dir():
            b.rename(data / b.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    path.unlink()
