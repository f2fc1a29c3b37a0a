"""The injected faults: 24 of them over the simulated week, of every kind the catalogue covers.

Each fault names the service it hits, when (from Monday 00:00 UTC) and for
how long, what it does to the exporters' series, and which alerts count as
detecting it. `magnitude` is the fault's bad-event ratio where a rule compares
a windowed ratio with a threshold (error and latency budgets): a step to
ratio m crosses threshold t after t/m of the window, which tightens the
detection bound of burn-rate alerts (windows of hours). The bound of a fault
is that of the alert designed to catch it (`designed`); any expected alert
firing counts as detection. Faults are steps (the harm starts at `start`),
except the disk filling up, whose designed alert is the trend one.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable

H, M = 3600, 60
DAY = 24 * H


@dataclass(frozen=True)
class Effects:
    down: bool = False  # the process is down: its scrape fails
    probe_fail: bool = False  # its health URL fails
    error_ratio: float = 0.0  # share of requests answered with a 5xx
    slow_share: float = 0.0  # share of requests moved into slow_range (seconds)
    slow_range: tuple[float, float] = (0.0, 0.0)
    memory: float | None = None  # share of the memory limit (maxmemory for Redis) in use
    pool_use: float | None = None  # share of the database pool in use
    cpu: float | None = None  # share of CPU busy
    disk_free: float | None = None  # share of the filesystem free
    instance: int | None = None  # host faults: which host (index), None for all
    stalled: bool = False  # no work finishes
    capacity: float | None = None  # share of the usual work the worker finishes
    enqueue: int = 0  # jobs enqueued at once when the fault starts
    job_failures: float = 0.0  # extra share of jobs failing
    db_down: bool = False  # the exporter cannot reach its database
    connections: float | None = None  # share of max_connections in use
    cert_days: float | None = None  # days until the served certificate expires


NONE = Effects()
Ramp = Callable[[float], Effects]  # progress 0..1 -> effects


@dataclass(frozen=True)
class Fault:
    id: int
    kind: str  # outage, error spike, latency, saturation, queue stall, database down, certificate expiry, SLO burn
    service: str
    start: float  # seconds after the week's start
    duration: float
    what: str
    effect: Effects | Ramp
    expected: tuple[str, ...]  # alerts that count as detecting it
    magnitude: float | None = None
    restart_after: bool = False  # the process is restarted (down for one scrape) when the fault ends
    bound_by: str | None = None  # the alert designed to catch it, whose window + for bound the delay; default expected[0]

    @property
    def designed(self) -> str:
        return self.bound_by or self.expected[0]

    def effects(self, progress: float) -> Effects:
        return self.effect(progress) if callable(self.effect) else self.effect


def _at(day: int, hour: int, minute: int = 0) -> float:
    return day * DAY + hour * H + minute * M


ERROR_ALERTS = ("HttpErrorRatioCritical", "HttpErrorRatioHigh", "ErrorBudgetBurn1h", "ErrorBudgetBurn6h")
LATENCY_ALERTS = ("HttpLatencyP95High", "HttpLatencyP95Warning", "HttpLatencyP99High", "HttpLatencyP99Warning",
                  "LatencyBudgetBurn1h", "LatencyBudgetBurn6h")
DOWN_ALERTS = ("TargetDown", "HealthProbeFailing")
# The page of an outage of a probed service: TargetDown steps aside once a health probe of the service fails.
DOWN_PAGE = "HealthProbeFailing"

FAULTS: tuple[Fault, ...] = (
    Fault(1, "outage", "storefront", _at(1, 10, 20), 20 * M, "process down, health URL unreachable",
          Effects(down=True, probe_fail=True), DOWN_ALERTS, bound_by=DOWN_PAGE),
    Fault(2, "outage", "backoffice-api", _at(2, 3, 10), 12 * M, "process down at night (low traffic)",
          Effects(down=True, probe_fail=True), DOWN_ALERTS, bound_by=DOWN_PAGE),
    Fault(3, "outage", "payments-api", _at(3, 14, 5), 10 * M, "health URL answers 503, process still scraped",
          Effects(probe_fail=True), DOWN_ALERTS, bound_by=DOWN_PAGE),
    Fault(4, "error spike", "storefront", _at(0, 18, 30), 15 * M, "8% of requests fail",
          Effects(error_ratio=0.08), ERROR_ALERTS, magnitude=0.08, bound_by="HttpErrorRatioCritical"),
    Fault(5, "error spike", "backoffice-api", _at(2, 22, 40), 20 * M, "30% of requests fail in the evening",
          Effects(error_ratio=0.30), ERROR_ALERTS, magnitude=0.30, bound_by="HttpErrorRatioCritical"),
    Fault(6, "error spike", "payments-api", _at(4, 11, 0), 30 * M, "2.5% of requests fail",
          Effects(error_ratio=0.025), ERROR_ALERTS, magnitude=0.025, bound_by="HttpErrorRatioHigh"),
    Fault(7, "error spike", "order-worker", _at(5, 9, 15), 25 * M, "12% of jobs fail (a bad payload)",
          Effects(job_failures=0.12), ("WorkerJobFailureRatioHigh", "WorkerJobFailureRatioWarning")),
    Fault(8, "latency", "storefront", _at(1, 16, 0), 30 * M, "slow database: 40% of requests take 2-6 s",
          Effects(slow_share=0.4, slow_range=(2.0, 6.0)), LATENCY_ALERTS + ("DbQueryLatencyP99High",), magnitude=0.4),
    Fault(9, "latency", "payments-api", _at(3, 9, 30), 25 * M, "a slow dependency: 3% of requests take 3.5-6 s",
          Effects(slow_share=0.03, slow_range=(3.5, 6.0)), LATENCY_ALERTS, magnitude=0.03, bound_by="HttpLatencyP99High"),
    Fault(10, "saturation", "storefront", _at(5, 20, 0), 40 * M, "an unbounded cache: 94% of the memory limit, then OOM-killed",
          Effects(memory=0.94), ("ProcessMemoryHigh", "ProcessMemoryWarning"), restart_after=True),
    Fault(11, "saturation", "storefront", _at(2, 12, 10), 20 * M, "database pool 92% in use",
          Effects(pool_use=0.92), ("DbConnectionPoolSaturated",)),
    Fault(12, "saturation", "hosts", _at(3, 3, 0), 45 * M, "a runaway process: host 1 at 97% CPU",
          Effects(cpu=0.97, instance=0), ("HostCpuHigh",)),
    Fault(13, "saturation", "hosts", _at(4, 2, 0), 7 * H, "log flood: host 2's disk from 45% to 7% free in 4h, cleaned at 09:00",
          lambda p: Effects(disk_free=max(0.07, 0.45 - 0.38 * p * 7 / 4), instance=1),
          ("HostDiskFillsWithin24h", "HostDiskSpaceWarning", "HostDiskSpaceLow"), bound_by="HostDiskFillsWithin24h"),
    Fault(14, "saturation", "session-cache", _at(6, 15, 0), 20 * M, "Redis at 96% of maxmemory",
          Effects(memory=0.96), ("RedisMemoryHigh",)),
    Fault(15, "saturation", "orders-db", _at(0, 12, 30), 15 * M, "92% of max_connections in use",
          Effects(connections=0.92), ("PostgresConnectionsHigh",)),
    Fault(16, "queue stall", "order-worker", _at(1, 21, 0), 30 * M, "the worker hangs: nothing finishes, jobs pile up",
          Effects(stalled=True), ("WorkerStalled", "WorkerQueueDepthHigh")),
    Fault(17, "queue stall", "order-worker", _at(3, 19, 0), 40 * M, "an import enqueues 5000 jobs while the consumer runs at a tenth of its speed",
          Effects(capacity=0.1, enqueue=5000), ("WorkerQueueDepthHigh", "WorkerStalled")),
    Fault(18, "queue stall", "catalog-sync", _at(6, 4, 0), 45 * M, "the catalog sync stops",
          Effects(stalled=True), ("CatalogSyncStalled",)),
    Fault(19, "database down", "orders-db", _at(2, 8, 45), 6 * M, "PostgreSQL down",
          Effects(db_down=True), ("PostgresDown",)),
    Fault(20, "database down", "session-cache", _at(4, 20, 30), 5 * M, "Redis down",
          Effects(db_down=True), ("RedisDown",)),
    Fault(21, "certificate expiry", "payments-api", _at(0, 9, 0), 6 * H, "a renewal deployed the old certificate: 2 days left",
          Effects(cert_days=2.0), ("TlsCertificateExpiringSoon", "TlsCertificateExpiring")),
    Fault(22, "certificate expiry", "payments-api", _at(5, 10, 0), 8 * H, "automatic renewal failing: 10 days left",
          Effects(cert_days=10.0), ("TlsCertificateExpiring",)),
    Fault(23, "SLO burn", "storefront", _at(6, 8, 0), 8 * H, "a slow error burn: 0.9% of requests fail, under every ratio alert",
          Effects(error_ratio=0.009), ("ErrorBudgetBurn6h", "ErrorBudgetBurn1h", "ErrorBudgetBurn1d", "ErrorBudgetBurn3d"),
          magnitude=0.009, bound_by="ErrorBudgetBurn6h"),
    Fault(24, "SLO burn", "storefront", _at(5, 13, 0), 5 * H, "40% of requests take 0.6-0.9 s: slower than the SLO, under the latency alerts",
          Effects(slow_share=0.4, slow_range=(0.6, 0.9)), ("LatencyBudgetBurn6h", "LatencyBudgetBurn1h", "LatencyBudgetBurn1d",
                                                           "LatencyBudgetBurn3d"), magnitude=0.4, bound_by="LatencyBudgetBurn6h"),
)

KINDS = ("outage", "error spike", "latency", "saturation", "queue stall", "database down", "certificate expiry", "SLO burn")


def _merge(a: Effects, b: Effects) -> Effects:
    changes = {}
    for f in fields(Effects):
        value = getattr(b, f.name)
        if value != getattr(NONE, f.name):
            changes[f.name] = value
    return replace(a, **changes) if changes else a


def effects_at(faults: tuple[Fault, ...], service: str, t_offset: float) -> Effects:
    """The effects of every fault on `service` at t_offset seconds after the week's start."""
    out = NONE
    for f in faults:
        if f.service != service:
            continue
        if f.start <= t_offset < f.start + f.duration:
            fx = f.effects((t_offset - f.start) / f.duration)
            if fx.enqueue and t_offset != f.start:
                fx = replace(fx, enqueue=0)  # once, at the start
            out = _merge(out, fx)
        elif f.restart_after and t_offset == f.start + f.duration:
            out = _merge(out, Effects(down=True))
    return out
