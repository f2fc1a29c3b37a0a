"""Section `dashboards`: how long the overview's and the service dashboards' queries take at fleet size.

Method. A synthetic fleet (generator.bench.synthetic_inventory) is rendered; its dashboards say which
series exist: every selector of the overview and of each service's dashboard gets series with the
labels a real scrape gives them, and every recorded series the rules produce gets the labels the
rules give it (the generated rule tests' standard traffic mix, generator/render/rule_tests.py, knows
both for HTTP and worker services); a selector naming a recorded series adds no scraped copy of it.
The history is written as OpenMetrics, turned into TSDB blocks by
`promtool tsdb create-blocks-from openmetrics`, and served by a scratch Prometheus on 127.0.0.1.

Density: every series the overview reads (for all services) and every series of the sampled services
(a few of each kind, seeded) has a sample every scrape interval of its job (15 s; 10 s for the health
probes), a recorded series one every evaluation interval of its rule group (15 s; a minute for the
slow SLO group's windows of a day and more); the other services' remaining series have one sample
every 10 minutes, so the index is as big as the fleet's while the history stays writable in minutes.
The range is 6 h, with 1 h more history before it.

Queries run as Grafana runs them: variables at All (their allValue; env at its one value), range
queries over the last 6 h with the step Grafana derives from the panel's width (at least the scrape
interval or the panel's own interval; $__rate_interval = max(step + scrape interval, 4 x scrape
interval)), stat and table panels as instant queries. One warm-up pass, then PASSES measured passes,
one query at a time; a query's latency is the median wall time of its HTTP requests.
"""
from __future__ import annotations

import contextlib
import math
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import promql_parser as pp
import requests
import yaml

from generator import alerting, lint, names
from generator.bench import synthetic_inventory
from generator.bench.common import SCRATCH, Processes, Say, free_port, percentile, run_child, summary, table, wait_for, write_section
from generator.catalogue import series as S
from generator.catalogue.core import example_value, probe_interval
from generator.model import HttpMetrics, Model, Service, WorkerMetrics
from generator.runner.native import find_binary

RANGE = 6 * 3600  # seconds shown by the dashboards
LEAD = 3600  # history before the range, so windows at its start have data
DENSE = 15  # seconds between samples of the series that are read
SPARSE = 600  # seconds between samples of the rest
SCRAPE = 15  # the datasource's timeInterval (the stack's scrape interval)
WIDTH_PX = 1800  # a dashboard 24 columns wide on a common screen
BLOCK = 2 * 3600  # promtool writes one block per aligned 2 h: one input file per block parses each once
PER_KIND = 3  # sampled services of each kind
PASSES = 5  # measured passes; a query's latency is the median of its passes (the machine may be shared)


# --- what Grafana sends -------------------------------------------------------------------------------


def _round_interval(seconds: float) -> float:
    """Grafana's roundInterval: the step it uses for a raw interval (ms thresholds in its source)."""
    table_ = [(0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5), (1.5, 1), (3.5, 2),
              (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (450, 300), (900, 600), (1350, 900),
              (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600), (86400, 43200)]
    for limit, value in table_:
        if seconds < limit:
            return value
    return 86400


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", text))


@dataclass(frozen=True)
class Query:
    dashboard: str  # "overview" or the service's name
    panel: str
    expr: str  # variables substituted
    instant: bool
    step: float


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # a collapsed row carries its panels


def queries(dashboard: dict[str, Any], name: str, service: str | None = None) -> list[Query]:
    """The dashboard's queries; service: the service chosen on a fleet's shared dashboard (else All)."""
    out = []
    alls = all_values(dashboard)
    for p in panels(dashboard):
        w = p.get("gridPos", {}).get("w", 24)
        minimum = max(SCRAPE, _duration(p["interval"]) if p.get("interval") else 0)
        step = max(minimum, _round_interval(RANGE / (WIDTH_PX * w / 24)))
        rate = max(step + SCRAPE, 4 * SCRAPE)
        for t in p.get("targets", []):
            expr = substitute(t["expr"], step, rate, service, alls)
            out.append(Query(name, p.get("title", ""), expr, bool(t.get("instant")), step))
    return out


def all_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """What each variable sends at All: its allValue (Grafana sends the regex of every value without one)."""
    return {v["name"]: v["allValue"] for v in dashboard.get("templating", {}).get("list", []) if v.get("includeAll") and v.get("allValue")}


def substitute(expr: str, step: float, rate: float, service: str | None = None, alls: dict[str, str] | None = None) -> str:
    """Template variables as Grafana fills them: All is the variable's allValue, env its one value."""
    values = {"team": ".+", "service": ".+", "instance": ".+", **(alls or {}),
              "__rate_interval": f"{int(rate)}s", "__interval": f"{int(step)}s", "__range": f"{RANGE}s", "env": "production"}
    if service:
        values["service"] = service
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)


# --- the synthetic history -------------------------------------------------------------------------------


@dataclass
class Series:
    metric: str
    labels: dict[str, str]
    counter: bool
    value: float  # gauge value, or counter increase per second
    dense: bool = False
    every: int = DENSE  # seconds between samples when dense: its job's scrape interval, or its recording group's interval

    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, tuple(sorted(self.labels.items()))


_MATCH = {"MatchOp.Equal": lambda v, x: v == x, "MatchOp.NotEqual": lambda v, x: v != x,
          "MatchOp.Re": lambda v, x: re.fullmatch(x, v) is not None, "MatchOp.NotRe": lambda v, x: re.fullmatch(x, v) is None}


def selectors(exprs: Iterable[str]) -> list[tuple[str | None, list[tuple[str, str, str]]]]:
    """(metric name, [(label, op, value)]) of every selector in the expressions."""
    out = []
    for e in exprs:
        for vs in lint.selectors(pp.parse(e)):
            ms = [(m.name, str(m.op), m.value) for m in vs.matchers.matchers if m.name != "__name__"]
            out.append((lint.selector_name(vs), ms))
    return out


def matches(sel: tuple[str | None, list[tuple[str, str, str]]], s: Series) -> bool:
    name, ms = sel
    if name is not None and name != s.metric:
        return False
    return all(_MATCH[op](s.labels.get(label, ""), value) for label, op, value in ms)


def _rate_of(values: str) -> tuple[bool, float]:
    """(counter?, per-second increase or gauge value) of a promtool series notation such as 0+480x15 or 1x20."""
    m = re.match(r"^_x\d+ (.*)$", values)
    values = m.group(1) if m else values
    m = re.match(r"^([-\d.e+]+)\+([-\d.e+]+)x\d+$", values)
    if m:
        return True, float(m.group(2)) / S.STEP_SECONDS
    m = re.match(r"^([-\d.e+]+)x\d+$", values)
    return (False, float(m.group(1))) if m else (False, 1.0)


def service_series(model: Model, s: Service, exprs: list[str]) -> dict[tuple, Series]:
    """The series of one service: its recording rules' inputs and outputs, and one per dashboard selector."""
    from generator.render import rule_tests

    out: dict[tuple, Series] = {}

    def add(x: Series) -> None:
        out.setdefault(x.key(), x)

    # A recorded series carries the labels its rule gives it (no instance, job, kind) and is written at its
    # group's interval: only the rules make it, so a dashboard selector naming it adds no scraped copy.
    evaluation = int(model.stack.evaluation_interval.seconds)
    recorded = {r["record"]: int(g.interval.seconds) if g.interval else evaluation
                for g in alerting.service_groups(model, s) for r in g.records}
    scrape = int(s.scrape.interval.seconds) if s.scrape else SCRAPE
    probe = int(probe_interval(model, s).seconds)  # the probe job's own interval (render/prometheus.py)

    def every(name: str) -> int:
        return probe if name.startswith("probe_") else scrape
    if s.scrape and isinstance(s.metrics, (HttpMetrics, WorkerMetrics)):
        t = rule_tests._Traffic(model, s)
        if isinstance(s.metrics, HttpMetrics):
            rule_tests._http_traffic(t, s.metrics)
        else:
            rule_tests._worker_traffic(t, s.metrics)
        for raw in t.series:
            counter, value = _rate_of(raw.values)
            add(Series(raw.metric, dict(raw.labels), counter, value, every=every(raw.metric)))
        for record, found in t.expected.items():
            for labels, value in found:
                add(Series(record, dict(labels), False, value if math.isfinite(value) else 0.0, every=recorded.get(record, evaluation)))
    for name, ms in selectors(exprs):
        if not name or name == "ALERTS" or name in recorded:
            continue  # ALERTS exist only while something fires: a healthy fleet has none
        if name.startswith("probe_"):
            bases = [S.probe(model, s, p) for p in s.probes]
        elif s.scrape:
            bases = [S.target(model, s)]
        else:
            bases = []
        for base in bases:
            labels = dict(base)
            for label, op, text in ms:
                if op == "MatchOp.Equal" and not text.startswith("$"):
                    if text:
                        labels[label] = text
                    else:
                        labels.pop(label, None)
                elif op == "MatchOp.Re" and label not in labels and "$" not in text:
                    with contextlib.suppress(ValueError):  # no value of ours matches: the selector's other labels do
                        labels[label] = example_value(text)
            counter = name.endswith(("_total", "_count", "_sum", "_bucket"))
            add(Series(name, labels, counter, 1.0, every=every(name)))
    return out


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_history(series: list[Series], end: int, folder: Path) -> list[Path]:
    """One OpenMetrics file per aligned 2 h block (promtool parses each file once per block it spans)."""
    start = end - RANGE - LEAD
    files = []
    for block_start in range(start // BLOCK * BLOCK, end + 1, BLOCK):
        lo, hi = max(start, block_start), min(end, block_start + BLOCK - 1)
        if lo > hi:
            continue
        path = folder / f"history-{block_start}.om"
        with open(path, "w") as f:
            for x in sorted(series, key=lambda x: x.metric):
                every = x.every if x.dense else SPARSE
                prefix = x.metric + "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(x.labels.items())) + "} "
                first = -(-lo // every) * every
                if x.counter:
                    rate = x.value
                    f.write("".join(f"{prefix}{rate * (t - start):.6g} {t}\n" for t in range(first, hi + 1, every)))
                else:
                    v = f"{x.value:.6g}"
                    f.write("".join(f"{prefix}{v} {t}\n" for t in range(first, hi + 1, every)))
            f.write("# EOF\n")
        files.append(path)
    return files


# --- the section ---------------------------------------------------------------------------------------------


def run(n: int, seed: int, out: Say) -> dict[str, Any]:
    from generator.inventory.loader import load_inventory
    from generator.model import resolve
    from generator.render import dashboards as render_dashboards
    from generator.topology import COMPOSE

    root = SCRATCH / "dashboards"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.monotonic()
    inv = root / "services.yaml"
    inv.write_text(yaml.safe_dump(synthetic_inventory(n), sort_keys=False))
    model = resolve(*load_inventory(inv))
    boards = render_dashboards.render(model, COMPOSE)
    overview = boards[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_OVERVIEW)]
    rng = random.Random(seed)
    by_kind: dict[str, list[Service]] = {}
    for s in model.services:
        by_kind.setdefault(s.kind, []).append(s)
    sampled = {s.name for kind in sorted(by_kind) for s in rng.sample(by_kind[kind], min(PER_KIND, len(by_kind[kind])))}
    service_board = {s.name: _service_dashboard(boards, model, s) for s in model.services}

    over_q = queries(overview, "overview")
    over_sel = selectors(q.expr for q in over_q)
    per_q = [q for name in sorted(sampled) for q in queries(service_board[name] or {}, name, name)]
    all_series: dict[tuple, Series] = {}
    for s in model.services:
        board = service_board[s.name]
        exprs = [q.expr for q in queries(board, s.name, s.name)] if board else []
        for key, x in service_series(model, s, exprs).items():
            x.dense = s.name in sampled or any(matches(sel, x) for sel in over_sel)
            all_series.setdefault(key, x)
    series = list(all_series.values())
    dense = sum(x.dense for x in series)
    end = int(time.time()) // 60 * 60
    files = write_history(series, end, root)
    samples = sum((RANGE + LEAD) // (x.every if x.dense else SPARSE) for x in series)
    t_history = time.monotonic() - t0
    out(f"  {len(series)} series ({dense} dense), about {samples / 1e6:.1f}M samples, "
        f"{sum(f.stat().st_size for f in files) / 2**20:.0f} MiB of OpenMetrics in {t_history:.0f}s")

    tsdb = root / "tsdb"
    t1 = time.monotonic()
    promtool = find_binary("prometheus") and shutil.which("promtool")
    if not promtool:
        raise FileNotFoundError("promtool is not installed (make deps)")
    for f in files:
        code, _, _ = run_child([promtool, "tsdb", "create-blocks-from", "openmetrics", str(f), str(tsdb)], 1200, root / "promtool.log")
        if code != 0:
            raise RuntimeError(f"promtool could not import {f} (see {root / 'promtool.log'})")
        f.unlink()
    t_blocks = time.monotonic() - t1
    out(f"  blocks written by promtool in {t_blocks:.0f}s")

    port = free_port()
    (root / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    results: list[dict[str, Any]] = []
    with_procs = Processes(root / "logs")
    try:
        binary = find_binary("prometheus")
        assert binary, "prometheus"
        with_procs.start("prometheus", [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
                                        "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{port}"])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), 300, "the scratch Prometheus to load the blocks")
        for q in over_q + per_q:  # warm-up: the page cache and Prometheus' own caches, as a dashboard already open
            _run(url, q, end)
        runs: list[list[tuple[float, int, str | None]]] = [[] for _ in over_q + per_q]
        for _ in range(PASSES):  # whole passes: a burst of load elsewhere slows one pass of a query, not all of them
            for i, q in enumerate(over_q + per_q):
                runs[i].append(_run(url, q, end))
        for q, got in zip(over_q + per_q, runs, strict=True):
            times = sorted(t for t, _, _ in got)
            results.append({"dashboard": q.dashboard, "panel": q.panel, "expr": q.expr, "instant": q.instant,
                            "step": q.step, "seconds": round(times[len(times) // 2], 4), "min_seconds": round(times[0], 4),
                            "series": got[-1][1], "error": next((e for _, _, e in got if e), None)})
    finally:
        with_procs.stop_all()
        shutil.rmtree(tsdb, ignore_errors=True)
    over = [r["seconds"] for r in results if r["dashboard"] == "overview"]
    per = [r["seconds"] for r in results if r["dashboard"] != "overview"]
    errors = [r for r in results if r["error"]]
    slowest = sorted(results, key=lambda r: -r["seconds"])[:5]
    rows = [["overview", len(over), _ms(percentile(over, 50)), _ms(percentile(over, 95)), _ms(max(over))],
            [f"service ({len(sampled)} sampled)", len(per), _ms(percentile(per, 50)), _ms(percentile(per, 95)), _ms(max(per))]]
    out(table(["dashboards", "queries", "p50 ms", "p95 ms", "max ms"], rows))
    for r in slowest:
        out(f"  slow: {r['seconds'] * 1000:7.1f} ms  {r['dashboard']} / {r['panel']}: {r['expr'][:110]}")
    if errors:
        out(f"  {len(errors)} queries failed, e.g. {errors[0]['expr'][:100]}: {errors[0]['error']}")
    figures = {
        "services": n, "seed": seed, "range_hours": RANGE / 3600, "passes": PASSES, "sampled_services": sorted(sampled),
        "series": len(series), "dense_series": dense, "samples": samples,
        "history_seconds": round(t_history, 1), "blocks_seconds": round(t_blocks, 1),
        "overview_ms": {k: (round(v * 1000, 1) if isinstance(v, float) else v) for k, v in summary(over).items()},
        "service_ms": {k: (round(v * 1000, 1) if isinstance(v, float) else v) for k, v in summary(per).items()},
        "failed_queries": len(errors), "slowest": slowest,
    }
    write_section("dashboards", figures)
    return figures


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _service_dashboard(boards: dict[str, Any], model: Model, s: Service) -> dict[str, Any] | None:
    from generator.render.dashboards import service

    return boards.get(service.file_of(model, s))


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).ok
    except requests.RequestException:
        return False


def _run(url: str, q: Query, end: int) -> tuple[float, int, str | None]:
    if q.instant:
        params: dict[str, Any] = {"query": q.expr, "time": end}
        path = "query"
    else:
        step = int(q.step)
        params = {"query": q.expr, "start": (end - RANGE) // step * step, "end": end // step * step, "step": step}
        path = "query_range"
    start = time.perf_counter()
    r = requests.post(f"{url}/api/v1/{path}", data=params, timeout=120)
    seconds = time.perf_counter() - start
    body = r.json()
    if body.get("status") != "success":
        return seconds, 0, body.get("error", r.text[:200])
    return seconds, len(body["data"]["result"]), None
