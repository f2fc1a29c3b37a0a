"""A simulated fleet, sampled at the cadence the rendered config scrapes and probes it: healthy but realistic traffic, and the same traffic with faults.

Every series is what the real exporters expose, with the labels a real
scrape gives them (generator/catalogue/series.py), at the times a real
scrape writes it:
- a target's series (`up`, pg_up, redis_up and every exporter metric) every
  CADENCE seconds, the scrape interval the fleet renders for every target
  (Fleet refuses a target scraped at another interval);
- a health probe's series (the blackbox job's `up`, probe_success,
  probe_duration_seconds, the certificate expiry) at the probe interval the
  rendered probe job uses (10s by default), so HealthProbeFailing's
  two-probe window and TargetDown's "a probe failed lately" see what they
  would see live.
Healthy traffic has:
- daily cycles (quietest at 04:00 UTC, busiest at 16:00) and quieter weekends;
  the back-office API sees a request every minute or so at night;
- bursts: a few times a day a service gets 2-4x its traffic for minutes;
- deploy restarts on weekdays during office hours: the process is down for
  RESTART_SECONDS from a scrape, so that scrape fails (only `up` is recorded,
  0) and so does the one probe inside the restart; its counters start again
  from zero, its memory drops, a handful of requests fail;
- slow requests in the tail (0.2-0.3% take 1-5 s), GC pauses in probes,
  occasional long analytics queries, a nightly batch for the worker, slow disk
  growth.
Draws come from per-service generators with fixed seeds. Faults never consume
those generators (they have their own), so the faulted run's traffic is the
healthy run's traffic plus the faults.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from generator.catalogue import series as S
from generator.catalogue.core import probe_interval
from generator.model import Model, Service
from generator.quality.faults import NONE, Effects, Fault, effects_at
from generator.quality.fleet import CADENCE

SEED = 20240101
# A deploy restart: the process stops at a scrape and answers again this many seconds later. Shorter than the
# default probe interval, so one probe fails, as one scrape does: a restart that keeps the health URL failing
# for two probes in a row is an outage of 10s or more to users, and pages by design.
RESTART_SECONDS = 8
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # client defaults
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Key = tuple[str, tuple[tuple[str, str], ...]]  # (metric, sorted labels)
Emit = Callable[[str, Mapping[str, str], float], None]


# --- random numbers ---------------------------------------------------------------------


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth below 12, PTRS (Hoermann 1993) above."""
    if lam <= 0:
        return 0
    if lam < 12:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1):
            return k


def binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n < 40:
        return sum(rng.random() < p for _ in range(n))
    if n * min(p, 1 - p) < 15:
        k = min(n, poisson(rng, n * min(p, 1 - p)))
        return k if p <= 0.5 else n - k
    x = round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))
    return max(0, min(n, x))


def multinomial(rng: random.Random, n: int, probs: list[float]) -> list[int]:
    out, left, mass = [], n, 1.0
    for p in probs[:-1]:
        k = binomial(rng, left, min(1.0, p / mass)) if mass > 0 else 0
        out.append(k)
        left -= k
        mass -= p
    out.append(left)
    return out


def lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2)))) if x > 0 else 0.0


@dataclass(frozen=True)
class Latency:
    """A lognormal body and a uniform slow tail."""

    median: float
    sigma: float
    tail: float  # share of requests in the tail
    tail_range: tuple[float, float]

    def cdf(self, x: float) -> float:
        lo, hi = self.tail_range
        tail = 0.0 if x <= lo else 1.0 if x >= hi else (x - lo) / (hi - lo)
        return (1 - self.tail) * lognormal_cdf(x, self.median, self.sigma) + self.tail * tail

    def bucket_probs(self, bounds: tuple[float, ...]) -> list[float]:
        cum = [self.cdf(b) for b in bounds] + [1.0]
        return [cum[0]] + [cum[i] - cum[i - 1] for i in range(1, len(cum))]

    def mean(self) -> float:
        body = self.median * math.exp(self.sigma ** 2 / 2)
        return (1 - self.tail) * body + self.tail * sum(self.tail_range) / 2


def mix(base: Latency, slow_share: float, slow: tuple[float, float]) -> Callable[[float], float]:
    """CDF of base with slow_share of the requests moved uniformly into `slow`."""
    lo, hi = slow

    def cdf(x: float) -> float:
        s = 0.0 if x <= lo else 1.0 if x >= hi else (x - lo) / (hi - lo)
        return (1 - slow_share) * base.cdf(x) + slow_share * s

    return cdf


def probs_from(cdf: Callable[[float], float], bounds: tuple[float, ...]) -> list[float]:
    cum = [cdf(b) for b in bounds] + [1.0]
    return [cum[0]] + [cum[i] - cum[i - 1] for i in range(1, len(cum))]


# --- calendar ---------------------------------------------------------------------------


def load(t: float, floor: float) -> float:
    """Share of peak traffic at t: a daily cycle (low at 04:00, high at 16:00 UTC), weekends at 60%."""
    day = t / 86400
    hour = (day % 1) * 24
    weekday = (int(day) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    shape = 0.5 * (1 - math.cos(2 * math.pi * (hour - 4) / 24))
    level = floor + (1 - floor) * shape ** 1.5
    return level * (0.6 if weekday >= 5 else 1.0)


def _weekday(t: float) -> int:
    return (int(t // 86400) + 3) % 7


@dataclass
class Calendar:
    """Bursts and deploy restarts of one service, drawn once from its own generator."""

    bursts: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, factor)
    deploys: list[float] = field(default_factory=list)  # scrape times at which the target is down

    @classmethod
    def draw(cls, rng: random.Random, start: float, end: float, bursts_per_day: float, deploys: bool) -> "Calendar":
        cal = cls()
        t = start
        while bursts_per_day > 0:
            t += rng.expovariate(bursts_per_day / 86400)
            if t >= end:
                break
            cal.bursts.append((t, t + rng.uniform(120, 600), rng.uniform(2, 4)))
        day = start - start % 86400
        while deploys and day < end:
            if _weekday(day) < 5:
                for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                    at = day + rng.uniform(9 * 3600, 18 * 3600)
                    cal.deploys.append(at - at % CADENCE)
            day += 86400
        cal.deploys.sort()
        return cal

    def burst(self, t: float) -> float:
        return max((f for a, b, f in self.bursts if a <= t < b), default=1.0)

    def deploying(self, t: float) -> bool:
        i = bisect.bisect_left(self.deploys, t)
        return i < len(self.deploys) and self.deploys[i] == t

    def restarting(self, t: float) -> bool:
        """The process is down at t: within RESTART_SECONDS of a deploy's start."""
        i = bisect.bisect_right(self.deploys, t)
        return i > 0 and t < self.deploys[i - 1] + RESTART_SECONDS

    def since_deploy(self, t: float, start: float) -> float:
        i = bisect.bisect_right(self.deploys, t)
        return t - (self.deploys[i - 1] if i else start - 2 * 86400)


# --- services -----------------------------------------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.values: dict[Key, float] = {}

    def add(self, metric: str, labels: Mapping[str, str], inc: float) -> float:
        key = (metric, tuple(sorted(labels.items())))
        self.values[key] = self.values.get(key, 0.0) + inc
        return self.values[key]

    def reset(self) -> None:
        self.values.clear()


class Sim:
    """One service's exporter(s) and probes; step() emits every sample of one scrape, probe() of one probe round."""

    def __init__(self, model: Model, service: Service, start: float, end: float, params: dict):
        self.model, self.s, self.p = model, service, params
        self.rng = random.Random(f"{SEED}/{service.name}")
        self.frng = random.Random(f"{SEED}/{service.name}/faults")
        self.start = start
        self.cal = Calendar.draw(self.rng, start, end, params.get("bursts_per_day", 0), params.get("deploys", False))
        self.counters = Counters()
        self.probe_labels = [(p, S.probe(model, service, p)) for p in service.probes]
        self.probe_every = probe_interval(model, service).seconds  # what the rendered probe job uses

    def labels(self, **extra: str) -> dict[str, str]:
        return S.target(self.model, self.s, **extra)

    @property
    def targets(self) -> tuple[str, ...]:
        """The service's scrape targets: none for a service that is only probed."""
        return self.s.scrape.targets if self.s.scrape else ()

    def step(self, t: float, fx: Effects, emit: Emit) -> None:
        deploy = self.cal.deploying(t)
        down = deploy or fx.down
        # Draw every value even when the scrape fails, so the generator's stream does not depend on faults.
        values: list[tuple[str, Mapping[str, str], float]] = []
        self.scrape(t, fx, deploy, lambda m, lb, v: values.append((m, lb, v)))
        for target in self.targets:
            emit("up", {**S.target(self.model, self.s), "instance": target}, 0.0 if down else 1.0)
        if not down:
            for m, lb, v in values:
                emit(m, lb, v)
        else:
            self.counters.reset()  # the process restarts: its counters begin again

    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        raise NotImplementedError

    def probe(self, t: float, fx: Effects, emit: Emit) -> None:
        """One round of the service's health probes at t (every probe_every seconds)."""
        failing = fx.down or fx.probe_fail or self.cal.restarting(t)
        for p, lb in self.probe_labels:
            emit("up", lb, 1.0)  # the probe's own scrape (of the blackbox exporter) succeeds
            gc = self.rng.random() < 0.01  # a garbage-collection pause or a slow dependency check
            base = 0.008 if p.name == "liveness" else 0.04
            duration = self.rng.lognormvariate(math.log(base), 0.4) + (self.rng.uniform(0.1, 0.3) if gc else 0.0)
            emit("probe_success", lb, 0.0 if failing else 1.0)
            emit("probe_duration_seconds", lb, duration)
            if p.url.startswith("https://"):
                expiry = fx.cert_days * 86400 + t if fx.cert_days is not None else self.start + 60 * 86400
                emit("probe_ssl_earliest_cert_expiry", lb, float(int(expiry)))


class HttpSim(Sim):
    ROUTES = (("/api/products", 0.7), ("/api/orders", 0.3))

    def __init__(self, *args):
        super().__init__(*args)
        self.latency: Latency = self.p["latency"]
        self.base_probs = self.latency.bucket_probs(HTTP_BUCKETS)
        self.db = Latency(0.005, 0.8, 0.001, (0.3, 1.5))
        self.db_probs = self.db.bucket_probs(HTTP_BUCKETS)

    def rate(self, t: float) -> float:
        return self.p["peak_rps"] * load(t, self.p["floor"]) * self.cal.burst(t)

    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        m = self.s.http_metrics
        lam = self.rate(t) * CADENCE
        after_deploy = self.cal.deploying(t - CADENCE)
        p_err = self.p["error_ratio"] + (0.004 if after_deploy else 0.0)  # connections reset by the restart
        total_requests = 0
        for route, weight in self.ROUTES:
            base = self.labels(method="GET", **{m.route_label: route})
            ok = poisson(self.rng, lam * weight * (1 - p_err - 0.01))
            not_found = poisson(self.rng, lam * weight * 0.01)
            failed = poisson(self.rng, lam * weight * p_err)
            if fx.error_ratio:
                moved = binomial(self.frng, ok, fx.error_ratio)
                ok, failed = ok - moved, failed + moved
            n = ok + not_found + failed
            total_requests += n
            counts = multinomial(self.rng, n, self.base_probs)
            mean = self.latency.mean()
            if fx.slow_share:
                cdf = mix(self.latency, fx.slow_share, fx.slow_range)
                counts = multinomial(self.frng, n, probs_from(cdf, HTTP_BUCKETS))
                mean = (1 - fx.slow_share) * mean + fx.slow_share * sum(fx.slow_range) / 2
            for status, k in (("200", ok), ("404", not_found), ("500", failed)):
                lb = {**base, m.status_label: status}
                emit(m.requests, lb, self.counters.add(m.requests, lb, k))
            cum = 0
            for le, k in zip(HTTP_BUCKETS + (math.inf,), counts, strict=True):
                cum += k
                lb = {**base, "le": S.le(le)}
                emit(f"{m.duration}_bucket", lb, self.counters.add(f"{m.duration}_bucket", lb, cum))
            emit(f"{m.duration}_count", base, self.counters.add(f"{m.duration}_count", base, n))
            emit(f"{m.duration}_sum", base, self.counters.add(f"{m.duration}_sum", base, n * mean))
        since = self.cal.since_deploy(t, self.start)
        limit = self.s.memory_limit_bytes or 0
        if limit:
            share = 0.45 + 0.05 * min(since, 5 * 86400) / 86400 + self.rng.gauss(0, 0.01)
            if fx.memory is not None:
                share = fx.memory
            emit("process_resident_memory_bytes", self.labels(), float(int(limit * share)))
        if m.db_pool_size:
            size = 40
            in_use = min(size, poisson(self.rng, 2 + 6 * self.rate(t) / self.p["peak_rps"]))
            if fx.pool_use is not None:
                in_use = round(size * fx.pool_use)
            emit(m.db_pool_size, self.labels(), float(size))
            emit(m.db_pool_available or "", self.labels(), float(size - in_use))
        if m.db_query_duration:
            queries = poisson(self.rng, 3 * lam)
            counts = multinomial(self.rng, queries, self.db_probs)
            lb = self.labels(operation="select", table="orders")
            cum = 0
            for le, k in zip(HTTP_BUCKETS + (math.inf,), counts, strict=True):
                cum += k
                emit(f"{m.db_query_duration}_bucket", {**lb, "le": S.le(le)},
                     self.counters.add(f"{m.db_query_duration}_bucket", {**lb, "le": S.le(le)}, cum))
            emit(f"{m.db_query_duration}_count", lb, self.counters.add(f"{m.db_query_duration}_count", lb, queries))
            emit(f"{m.db_query_duration}_sum", lb, self.counters.add(f"{m.db_query_duration}_sum", lb, queries * self.db.mean()))


class WorkerSim(Sim):
    def __init__(self, *args):
        super().__init__(*args)
        self.probs = Latency(0.4, 0.7, 0.002, (10.0, 40.0)).bucket_probs(JOB_BUCKETS)
        self.backlog = 0.0

    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        m = self.s.worker_metrics
        q = {m.queue_label: "default"} if m.queue_label else {}
        arriving = poisson(self.rng, self.p["peak_rps"] * load(t, self.p["floor"]) * CADENCE)
        nightly = 3000 if (t % 86400) == 2 * 3600 else 0  # the nightly re-index batch at 02:00
        self.backlog += arriving + nightly + fx.enqueue
        capacity = poisson(self.rng, 15 * CADENCE)  # jobs the worker can finish in one interval
        if fx.stalled:
            capacity = 0
        elif fx.capacity is not None:
            capacity = int(capacity * fx.capacity)
        done = int(min(self.backlog, capacity))
        self.backlog -= done
        failed = binomial(self.rng, done, 0.003)
        if fx.job_failures:
            failed += binomial(self.frng, done - failed, fx.job_failures)
        waiting = self.backlog + poisson(self.rng, 3)  # jobs reserved but not started
        emit(m.queue_depth, self.labels(**q), float(int(waiting)))
        for status, k in (("completed", done - failed), (m.failed_value, failed)):
            lb = self.labels(**q, **{m.status_label: status})
            emit(m.jobs, lb, self.counters.add(m.jobs, lb, k))
        counts = multinomial(self.rng, done, self.probs)
        lb = self.labels(**q)
        cum = 0
        for le, k in zip(JOB_BUCKETS + (math.inf,), counts, strict=True):
            cum += k
            emit(f"{m.duration}_bucket", {**lb, "le": S.le(le)}, self.counters.add(f"{m.duration}_bucket", {**lb, "le": S.le(le)}, cum))
        emit(f"{m.duration}_count", lb, self.counters.add(f"{m.duration}_count", lb, done))
        emit(f"{m.duration}_sum", lb, self.counters.add(f"{m.duration}_sum", lb, done * 0.6))


class PostgresSim(Sim):
    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        busy = load(t, 0.1)
        emit("pg_up", self.labels(), 0.0 if fx.db_down else 1.0)
        if fx.db_down:
            return  # the exporter exports only pg_up while it cannot connect
        active = poisson(self.rng, 4 + 16 * busy)
        if fx.connections is not None:
            active = round(100 * fx.connections) - 10
        emit("pg_stat_activity_count", self.labels(datname="shop", state="active"), float(active))
        emit("pg_stat_activity_count", self.labels(datname="shop", state="idle"), 10.0)
        emit("pg_settings_max_connections", self.labels(), 100.0)
        longest = self.rng.lognormvariate(math.log(0.05), 1.0)
        if self.rng.random() < 0.002:
            longest = self.rng.uniform(10, 45)  # an analytics query
        emit("pg_stat_activity_max_tx_duration", self.labels(datname="shop", state="active"), longest)
        emit("pg_replication_lag_seconds", self.labels(), max(0.0, self.rng.gauss(0.4, 0.2)))


class RedisSim(Sim):
    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        emit("redis_up", self.labels(), 0.0 if fx.db_down else 1.0)
        if fx.db_down:
            return
        limit = 2 * 1024 ** 3
        share = fx.memory if fx.memory is not None else 0.55 + 0.1 * load(t, 0.2) + self.rng.gauss(0, 0.01)
        emit("redis_memory_used_bytes", self.labels(), float(int(limit * share)))
        emit("redis_memory_max_bytes", self.labels(), float(limit))
        lookups = poisson(self.rng, 300 * load(t, 0.05) * CADENCE)
        hits = binomial(self.rng, lookups, 0.9)
        for metric, inc in (("redis_keyspace_hits_total", hits), ("redis_keyspace_misses_total", lookups - hits),
                            ("redis_evicted_keys_total", 0), ("redis_rejected_connections_total", 0)):
            emit(metric, self.labels(), self.counters.add(metric, {}, inc))


class HostSim(Sim):
    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        for i, target in enumerate(self.targets):
            inst = {"instance": target}
            busy = min(0.99, 0.15 + 0.45 * load(t, 0.1) + self.rng.gauss(0, 0.03))
            if fx.cpu is not None and fx.instance in (None, i):
                busy = fx.cpu
            for cpu in ("0", "1"):
                for mode, share in (("idle", 1 - busy), ("user", busy * 0.8), ("system", busy * 0.2)):
                    lb = self.labels(**inst, cpu=cpu, mode=mode)
                    emit("node_cpu_seconds_total", lb, self.counters.add("node_cpu_seconds_total", lb, share * CADENCE))
            total = 16 * 1024 ** 3
            emit("node_memory_MemTotal_bytes", self.labels(**inst), float(total))
            emit("node_memory_MemAvailable_bytes", self.labels(**inst), float(int(total * (0.5 + 0.05 * self.rng.random()))))
            fs = self.labels(**inst, device="/dev/vda1", fstype="ext4", mountpoint="/")
            size = 100 * 1024 ** 3
            free = 0.48 - 0.003 * (t - self.start) / 86400 + self.rng.gauss(0, 0.0005)
            if fx.disk_free is not None and fx.instance in (None, i):
                free = fx.disk_free
            emit("node_filesystem_size_bytes", fs, float(size))
            emit("node_filesystem_avail_bytes", fs, float(int(size * free)))
            emit("node_filesystem_readonly", fs, 0.0)
            io = 0.1 + 0.25 * load(t, 0.1) + (0.55 if (t % 86400) // 60 in range(60, 80) else 0.0)  # nightly backup 01:00-01:20
            lb = self.labels(**inst, device="vda")
            emit("node_disk_io_time_seconds_total", lb, self.counters.add("node_disk_io_time_seconds_total", lb, min(1.0, io) * CADENCE))
            nic = self.labels(**inst, device="eth0")
            packets = poisson(self.rng, 2000 * load(t, 0.05) * CADENCE)
            for metric, inc in (("node_network_receive_packets_total", packets), ("node_network_transmit_packets_total", packets),
                                ("node_network_receive_errs_total", 1 if self.rng.random() < 0.001 else 0),
                                ("node_network_transmit_errs_total", 0)):
                emit(metric, nic, self.counters.add(metric, nic, inc))
            emit("node_timex_offset_seconds", self.labels(**inst), self.rng.gauss(0, 0.002))

    def step(self, t: float, fx: Effects, emit: Emit) -> None:
        # Two node exporters: `up` per instance, both always scraped.
        values: list[tuple[str, Mapping[str, str], float]] = []
        self.scrape(t, fx, False, lambda m, lb, v: values.append((m, lb, v)))
        for target in self.targets:
            emit("up", {**S.target(self.model, self.s), "instance": target}, 1.0)
        for m, lb, v in values:
            emit(m, lb, v)


class SyncSim(Sim):
    def scrape(self, t: float, fx: Effects, deploy: bool, emit: Emit) -> None:
        synced = 0
        if (t % 300) == 0:  # the sync runs every five minutes
            synced = poisson(self.rng, 350)
            if fx.stalled:
                synced = 0
        emit("catalog_items_synced_total", self.labels(), self.counters.add("catalog_items_synced_total", {}, synced))


PARAMS = {
    "storefront": (HttpSim, {"peak_rps": 40.0, "floor": 0.08, "error_ratio": 0.0003, "bursts_per_day": 3, "deploys": True,
                             "latency": Latency(0.09, 0.6, 0.003, (1.0, 5.0))}),
    "payments-api": (HttpSim, {"peak_rps": 8.0, "floor": 0.05, "error_ratio": 0.0002, "bursts_per_day": 2, "deploys": True,
                               "latency": Latency(0.06, 0.45, 0.002, (1.0, 4.0))}),
    "backoffice-api": (HttpSim, {"peak_rps": 0.6, "floor": 0.03, "error_ratio": 0.0005, "bursts_per_day": 1, "deploys": True,
                                 "latency": Latency(0.15, 0.6, 0.003, (1.5, 5.0))}),
    "order-worker": (WorkerSim, {"peak_rps": 4.0, "floor": 0.08, "deploys": True}),
    "orders-db": (PostgresSim, {}),
    "session-cache": (RedisSim, {}),
    "hosts": (HostSim, {}),
    "catalog-sync": (SyncSim, {}),
}


class Fleet:
    """Every service's simulator; scrape(t) yields every sample of the fleet in [t, t + CADENCE) with its time."""

    def __init__(self, model: Model, start: float, end: float, faults: tuple[Fault, ...], week_start: float):
        self.faults = faults
        self.week_start = week_start
        self.sims: list[Sim] = []
        for s in model.services:
            if s.scrape and s.scrape.interval.seconds != CADENCE:
                raise ValueError(f"{s.name}: scraped every {s.scrape.interval}, the simulation scrapes every {CADENCE}s")
            cls, params = PARAMS[s.name]
            sim = cls(model, s, start, end, params)
            if sim.probe_labels and CADENCE % sim.probe_every:
                raise ValueError(f"{s.name}: probed every {sim.probe_every:g}s, which does not divide the {CADENCE}s cadence")
            self.sims.append(sim)

    def effects(self, sim: Sim, t: float) -> Effects:
        return effects_at(self.faults, sim.s.name, t - self.week_start) if self.faults else NONE

    def scrape(self, t: float) -> Iterator[tuple[str, Mapping[str, str], float, float]]:
        out: list[tuple[str, Mapping[str, str], float, float]] = []

        def at(when: float) -> Emit:
            return lambda m, lb, v: out.append((m, lb, when, v))

        for sim in self.sims:
            sim.step(t, self.effects(sim, t), at(t))
            if not sim.probe_labels:
                continue
            tp = t
            while tp < t + CADENCE:
                sim.probe(tp, self.effects(sim, tp), at(tp))
                tp += sim.probe_every
        return iter(out)
