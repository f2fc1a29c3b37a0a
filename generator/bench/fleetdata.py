"""A synthetic fleet's raw series and their history as TSDB blocks, for the `rules` bench.

Every service exports what an instance of its kind exports (one target each, as the bench
inventory has), shaped like monstack's own sample exporters and Debian's exporters:

- every target: `up` and the four `scrape_*` series Prometheus adds;
- http (shaped like exporters/demo_web.py): `http_requests_total` for four method/route pairs with three
  status codes each (12 series) and `http_request_duration_seconds` per method/route with the demo's 11
  bucket bounds (4 x 14 series), plus the Python client's 16 default process and GC series; its health
  probe's 17 blackbox `probe_*` series (and the probe job's 5 of its own);
- worker: `jobs_total` for two queues and two outcomes, `job_processing_duration_seconds` per queue,
  the queue depth per queue, the client's defaults;
- postgres and redis: the number of series Debian's postgres_exporter 0.11.1 (501) and redis_exporter
  1.45 (207) print for a fresh server; the ones the rules read by name, the rest as other series;
- custom: its counter and the client's defaults.

A series gets as much history as the longest window any rule of either rule set reads it with
(range plus offset; an instant read looks back 5 minutes), and never less than RECENT: history is
what makes a window cost what it costs in production, and a series no rule reads over a long window
needs none to be in the index. Samples are 15 s apart (the stack's scrape interval), aligned; counters
grow at their own rate with a deterministic wobble (one shared by the series of a histogram, so its
buckets stay cumulative) and never reset.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import promql_parser as pp

from generator import lint
from generator.backtest.promql_text import match_op
from generator.bench.common import run_child
from generator.catalogue import series as S
from generator.catalogue.core import example_value
from generator.catalogue.worker import ok_value as worker_ok_value
from generator.model import HttpMetrics, Model, Service, WorkerMetrics

STEP = 15  # seconds between samples: the stack's scrape interval
RECENT = 10 * 60  # the least history a series gets
LOOKBACK = 5 * 60  # Prometheus' lookback of an instant selector
BLOCK = 2 * 3600  # promtool writes one block per aligned 2 h; one input file per block parses each sample once

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)  # exporters/demo_web.py
# Share of requests at or below each bound: a healthy service, p95 about 0.3 s, 97% under 500ms.
HTTP_SHARES = (0.02, 0.06, 0.2, 0.45, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999, 0.9995)
JOB_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60)
JOB_SHARES = (0.2, 0.6, 0.8, 0.97, 0.99, 0.999, 0.9999)
ROUTES = (("GET", "/api/orders", ("200", "404", "500")), ("POST", "/api/orders", ("201", "400", "500")),
          ("GET", "/api/users", ("200", "404", "500")), ("GET", "/api/search", ("200", "404", "500")))
CLIENT_DEFAULTS = ("process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_virtual_memory_bytes",
                   "process_resident_memory_bytes", "process_start_time_seconds", "python_info") + tuple(
    f"python_gc_{m}{{generation=\"{g}\"}}" for m in ("objects_collected_total", "objects_uncollectable_total", "collections_total")
    for g in (0, 1, 2))
SCRAPE_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added")
PROBE_SERIES = ("probe_dns_lookup_time_seconds", "probe_duration_seconds", "probe_failed_due_to_regex", "probe_http_content_length",
                "probe_http_redirects", "probe_http_ssl", "probe_http_status_code", "probe_http_uncompressed_body_length",
                "probe_http_version", "probe_ip_addr_hash", "probe_ip_protocol", "probe_success") + tuple(
    f"probe_http_duration_seconds{{phase=\"{p}\"}}" for p in ("resolve", "connect", "tls", "processing", "transfer"))
EXPORTER_SERIES = {"postgres": 501, "redis": 207}  # Debian's exporters against a fresh server, measured once
ERROR_SHARE = 0.0005  # of a route's requests answered 5xx: a healthy service under a 99.9% objective
CLIENT_SHARE = 0.02  # answered 4xx

WOBBLE = 1009  # length of the deterministic wobble cycle (a prime: series phases do not line up)


@dataclass
class Series:
    metric: str
    labels: dict[str, str]
    counter: bool
    value: float  # gauge value, or counter increase per second
    group: int = 0  # series of one histogram (or one route's statuses) share a wobble phase
    history: int = RECENT  # seconds of samples before the end

    def text(self) -> str:
        inner = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}}"


def escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Fleet:
    series: list[Series] = field(default_factory=list)
    by_service: dict[str, list[Series]] = field(default_factory=dict)
    base_by_kind: dict[str, int] = field(default_factory=dict)  # raw series per kind (what a scrape puts in the head)

    def add(self, owner: str, kind: str, x: Series) -> None:
        self.series.append(x)
        self.by_service.setdefault(owner, []).append(x)
        self.base_by_kind[kind] = self.base_by_kind.get(kind, 0) + 1


def _split(name: str) -> tuple[str, dict[str, str]]:
    """'m{a="b"}' -> ('m', {'a': 'b'}) for the fixed names above."""
    if "{" not in name:
        return name, {}
    metric, rest = name.split("{", 1)
    k, v = rest.rstrip("}").split("=", 1)
    return metric, {k: v.strip('"')}


def fleet(model: Model, rng: random.Random) -> Fleet:
    """The raw series of every service (and of the stack itself, as far as its rules read them)."""
    f = Fleet()
    group = 0
    for s in model.services:
        if s.scrape is None:
            continue
        base = S.target(model, s)
        group += 1
        for name in SCRAPE_SERIES:
            f.add(s.name, s.kind, Series(name, dict(base), False, 1.0 if name == "up" else 100.0, group))
        for p in s.probes:
            pb = S.probe(model, s, p)
            for name in SCRAPE_SERIES:
                f.add(s.name, s.kind, Series(name, dict(pb), False, 1.0 if name == "up" else 20.0, group))
            for name in PROBE_SERIES:
                metric, extra = _split(name)
                value = 1.0 if metric in ("probe_success", "probe_http_ssl") else 200.0 if metric == "probe_http_status_code" else 0.01
                f.add(s.name, s.kind, Series(metric, {**pb, **extra}, False, value, group))
        if s.kind in ("http", "worker", "custom"):
            for name in CLIENT_DEFAULTS:
                metric, extra = _split(name)
                f.add(s.name, s.kind, Series(metric, {**base, **extra}, metric.endswith("_total"), 1.0, group))
        if isinstance(s.metrics, HttpMetrics):
            group = _http(f, model, s, s.metrics, rng, group)
        elif isinstance(s.metrics, WorkerMetrics):
            group = _worker(f, model, s, s.metrics, rng, group)
    return f


def _histogram(f: Fleet, s: Service, metric: str, labels: dict[str, str], per_second: float, bounds: Sequence[float],
               shares: Sequence[float], mean: float, group: int) -> None:
    for bound, share in list(zip(bounds, shares, strict=True)) + [(float("inf"), 1.0)]:
        f.add(s.name, s.kind, Series(f"{metric}_bucket", {**labels, "le": S.le(bound)}, True, per_second * share, group))
    f.add(s.name, s.kind, Series(f"{metric}_count", dict(labels), True, per_second, group))
    f.add(s.name, s.kind, Series(f"{metric}_sum", dict(labels), True, per_second * mean, group))


def _http(f: Fleet, model: Model, s: Service, m: HttpMetrics, rng: random.Random, group: int) -> int:
    for method, route, statuses in ROUTES:
        group += 1
        labels = S.target(model, s, method=method, **{m.route_label: route})
        per_second = round(rng.uniform(2, 40), 2)
        ok, client, server = statuses
        for status, share in ((ok, 1 - CLIENT_SHARE - ERROR_SHARE), (client, CLIENT_SHARE), (server, ERROR_SHARE)):
            f.add(s.name, s.kind, Series(m.requests, {**labels, m.status_label: status}, True, per_second * share, group))
        _histogram(f, s, m.duration, labels, per_second, HTTP_BUCKETS, HTTP_SHARES, 0.08, group)
    return group


def _worker(f: Fleet, model: Model, s: Service, m: WorkerMetrics, rng: random.Random, group: int) -> int:
    for queue in ("default", "mail"):
        group += 1
        labels = S.target(model, s, **({m.queue_label: queue} if m.queue_label else {}))
        per_second = round(rng.uniform(0.5, 10), 2)
        f.add(s.name, s.kind, Series(m.jobs, {**labels, m.status_label: worker_ok_value(m)}, True, per_second * 0.999, group))
        f.add(s.name, s.kind, Series(m.jobs, {**labels, m.status_label: m.failed_value}, True, per_second * 0.001, group))
        _histogram(f, s, m.duration, labels, per_second, JOB_BUCKETS, JOB_SHARES, 0.6, group)
        f.add(s.name, s.kind, Series(m.queue_depth, dict(labels), False, 5.0, group))
    return group


# --- what the rules read ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """One selector of a rule and how far back it reads."""

    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value), __name__ excluded
    seconds: int


def reads(expr: str) -> list[Read]:
    """Every selector of the expression with its look-back: range (or lookback) plus offset."""
    out = []

    def visit(node, outer: int) -> None:
        if isinstance(node, pp.MatrixSelector):
            vs = node.vector_selector
            out.append(_read(vs, int(node.range.total_seconds()) + _offset(vs) + outer))
            return
        if isinstance(node, pp.VectorSelector):
            out.append(_read(node, LOOKBACK + _offset(node) + outer))
            return
        if isinstance(node, pp.SubqueryExpr):
            extra = int(node.range.total_seconds()) + (int(node.offset.total_seconds()) if node.offset else 0)  # type: ignore[union-attr]
            visit(node.expr, outer + extra)
            return
        for c in lint.children(node):
            visit(c, outer)

    visit(pp.parse(expr), 0)
    return out


def _offset(vs: pp.VectorSelector) -> int:
    return int(vs.offset.total_seconds()) if vs.offset else 0


def _read(vs: pp.VectorSelector, seconds: int) -> Read:
    ms = tuple((m.name, match_op(m), m.value) for m in vs.matchers.matchers if m.name != "__name__")
    return Read(lint.selector_name(vs), ms, seconds)


def _match(op: str, value: str, have: str) -> bool:
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    hit = re.fullmatch(value, have) is not None
    return hit if op == "=~" else not hit


def matches(r: Read, x: Series) -> bool:
    if r.name is not None and r.name != x.metric:
        return False
    return all(_match(op, value, x.labels.get(label, "")) for label, op, value in r.matchers)


def assign_history(f: Fleet, model: Model, exprs_by_owner: Mapping[str, Iterable[str]], self_owner: str) -> list[str]:
    """Give every series the longest look-back of the rules reading it; add one series per selector nothing matches.

    exprs_by_owner: the rule expressions of each service (and of self_owner: the stack's own rules, which may
    read any service's series). Returns the selectors (as text) that matched no modelled series and got one.
    """
    invented: list[str] = []
    by_name: dict[str, dict[str, list[Series]]] = {}
    for owner, xs in f.by_service.items():
        for x in xs:
            by_name.setdefault(owner, {}).setdefault(x.metric, []).append(x)
    everything: dict[str, list[Series]] = {}
    for x in f.series:
        everything.setdefault(x.metric, []).append(x)
    services = {s.name: s for s in model.services}
    for owner, exprs in exprs_by_owner.items():
        seen: set[Read] = set()
        for e in exprs:
            for r in reads(e):
                if r in seen:
                    continue
                seen.add(r)
                pool = everything if owner == self_owner else by_name.get(owner, {})
                candidates = pool.get(r.name, []) if r.name else [x for xs in pool.values() for x in xs]
                hit = False
                for x in candidates:
                    if matches(r, x):
                        hit = True
                        x.history = max(x.history, r.seconds + STEP)
                if not hit and r.name and not r.name.startswith("ALERTS") and ":" not in r.name:
                    made = _invent(model, services.get(owner), r)
                    if made is not None:
                        made.history = max(made.history, r.seconds + STEP)
                        f.add(owner, services[owner].kind if owner in services else "stack", made)
                        by_name.setdefault(owner, {}).setdefault(made.metric, []).append(made)
                        everything.setdefault(made.metric, []).append(made)
                        invented.append(f"{owner}: {r.name}")
    return invented


def _invent(model: Model, s: Service | None, r: Read) -> Series | None:
    """A series the rule reads that no modelled exporter series is: the target's labels plus the selector's."""
    if s is not None and s.scrape is not None:
        labels = S.target(model, s)
    else:
        labels = S.self_target(model, "prometheus", "localhost:9090")
    for label, op, value in r.matchers:
        if op == "=":
            labels[label] = value
        elif op == "=~" and "$" not in value:
            try:
                labels[label] = example_value(value)
            except ValueError:
                return None
    assert r.name is not None
    return Series(r.name, labels, r.name.endswith(("_total", "_count", "_sum", "_bucket")), 1.0)


def add_exporter_rest(f: Fleet, model: Model) -> None:
    """Postgres and redis exporters print far more than the rules read: the rest, so the head holds what it would."""
    for s in model.services:
        total = EXPORTER_SERIES.get(s.kind)
        if not total or s.scrape is None:
            continue
        have = sum(1 for x in f.by_service.get(s.name, []) if x.metric not in SCRAPE_SERIES)
        base = S.target(model, s)
        prefix = "pg_settings_other" if s.kind == "postgres" else "redis_other"
        for i in range(max(0, total - have)):
            f.add(s.name, s.kind, Series(f"{prefix}_{i}", dict(base), False, 1.0))


# --- writing the history ----------------------------------------------------------------------------------------


def _wobble(seed: int) -> tuple[list[float], float]:
    """Prefix sums of a fixed wobble around 1 (0.7..1.3), twice the cycle long, and the cycle's total."""
    rng = random.Random(seed)
    w = [0.7 + 0.6 * rng.random() for _ in range(WOBBLE)]
    prefix = [0.0]
    for v in w + w:
        prefix.append(prefix[-1] + v)
    return prefix, prefix[WOBBLE]


@dataclass(frozen=True)
class History:
    """Where the blocks of a fleet's history are, and what they hold."""

    blocks: Path
    end: int  # unix seconds of the last sample
    series: int
    samples: int
    seconds: float  # to write and import, when it was made


def spec_key(f: Fleet, end_rule: int) -> str:
    """A digest of every series, its value and history: the same digest, the same blocks."""
    h = hashlib.sha256()
    h.update(f"{end_rule}|{STEP}|{WOBBLE}".encode())
    for x in f.series:
        h.update(f"{x.text()}|{x.counter}|{x.value}|{x.group}|{x.history}\n".encode())
    return h.hexdigest()[:16]


def build(f: Fleet, folder: Path, end: int, promtool: str, say: Callable[[str], None], seed: int = 15,
          workers: int = 1) -> History:
    """Write the history ending at `end` as OpenMetrics, one file per aligned 2 h, and import it with promtool."""
    import time

    started = time.monotonic()
    blocks = folder / "blocks"
    shutil.rmtree(folder, ignore_errors=True)
    blocks.mkdir(parents=True)
    prefix, cycle = _wobble(seed)
    longest = max(x.history for x in f.series)
    start = (end - longest) // STEP * STEP
    ordered = sorted(f.series, key=lambda x: (x.metric, x.text()))
    texts = [x.text() + " " for x in ordered]
    firsts = [end - (x.history // STEP) * STEP for x in ordered]
    samples = 0
    files: list[Path] = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    pending: list[concurrent.futures.Future] = []
    try:
        for block_start in range(start // BLOCK * BLOCK, end + 1, BLOCK):
            lo, hi = max(start, block_start), min(end, block_start + BLOCK - 1)
            path = folder / f"history-{block_start}.om"
            n = 0
            with open(path, "w") as out:
                for x, text, first in zip(ordered, texts, firsts, strict=True):
                    a = max(lo, first)
                    if a > hi:
                        continue
                    a = -(-a // STEP) * STEP
                    times = range(a, hi + 1, STEP)
                    n += len(times)
                    out.write(_lines(x, text, times, start, prefix, cycle))
                out.write("# EOF\n")
            samples += n
            files.append(path)
            out_dir = folder / f"import-{block_start}"
            pending.append(pool.submit(_import, promtool, path, out_dir, blocks, folder / "promtool.log"))
            # Bounded: at most two files waiting on disk beside the one being written.
            while sum(1 for p in pending if not p.done()) > workers + 1:
                concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for p in [p for p in pending if p.done()]:
                p.result()
                pending.remove(p)
        for p in pending:
            p.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.monotonic() - started
    meta = {"end": end, "series": len(f.series), "samples": samples, "seconds": round(seconds, 1)}
    (folder / "history.json").write_text(json.dumps(meta))
    say(f"  history: {len(f.series)} series, {samples / 1e6:.1f}M samples ({(end - start) / 86400:.1f} days), "
        f"written and imported in {seconds:.0f}s")
    return History(blocks, end, len(f.series), samples, seconds)


def cached(folder: Path) -> History | None:
    meta = folder / "history.json"
    if not meta.is_file() or not (folder / "blocks").is_dir():
        return None
    m = json.loads(meta.read_text())
    return History(folder / "blocks", int(m["end"]), int(m["series"]), int(m["samples"]), float(m["seconds"]))


def _import(promtool: str, path: Path, out_dir: Path, blocks: Path, log: Path) -> None:
    code, _, _ = run_child([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(out_dir)], 3600,
                           log.with_name(f"promtool-{path.stem}.log"))
    if code != 0:
        raise RuntimeError(f"promtool could not import {path} (see {log.with_name(f'promtool-{path.stem}.log')})")
    path.unlink()
    for b in out_dir.iterdir():
        if b.is_dir():
            b.rename(blocks / b.name)
    shutil.rmtree(out_dir, ignore_errors=True)


def _lines(x: Series, text: str, times: range, start: int, prefix: list[float], cycle: float) -> str:
    ts = [f" {t}\n" for t in times]
    if not x.counter:
        if x.value in (0.0, 1.0):
            v = f"{x.value:g}"
            return "".join(text + v + t for t in ts)
        phase = x.group % WOBBLE
        vals = [x.value * (prefix[phase + (k % WOBBLE) + 1] - prefix[phase + (k % WOBBLE)])
                for k in ((t - start) // STEP for t in times)]
        return "".join(f"{text}{v:.4g}{t}" for v, t in zip(vals, ts, strict=True))
    # A counter: its increase per step is value * STEP * wobble; the series of one group share the wobble.
    phase = x.group % WOBBLE
    m = x.value * STEP
    base = prefix[phase]
    out = []
    for t, s in zip(times, ts, strict=True):
        k = (t - start) // STEP + 1
        q, r = divmod(k, WOBBLE)
        cum = q * cycle + prefix[phase + r] - base
        out.append(f"{text}{int(m * cum)}{s}")
    return "".join(out)


def summary(f: Fleet) -> dict[str, Any]:
    long = sum(1 for x in f.series if x.history > 3600)
    return {"series": len(f.series), "series_with_more_than_1h": long, "raw_by_kind": dict(sorted(f.base_by_kind.items()))}

