"""demo-worker: a background job processor with two queues.

Jobs arrive at a steady (Poisson) rate and are processed by a fixed number of
worker slots per queue in real time, so latency faults reduce throughput and
let queues grow, the way a real worker pool behaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from prometheus_client import Counter, Gauge, Histogram

from .common import Exporter, poisson, weighted_choice

JOB_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60)

#: A ``queue_backlog`` at least this large stalls processing entirely
#: (no job starts or completes) until the backlog is cleared.
STALL_BACKLOG = 100

#: Cap on genuinely queued jobs, so a long stall cannot eat memory or CPU.
MAX_QUEUE_DEPTH = 1_000_000


@dataclass
class QueueSpec:
    arrivals_per_second: float
    workers: int
    median_seconds: float
    failure_reasons: Dict[str, float]


QUEUES: Dict[str, QueueSpec] = {
    "default": QueueSpec(6.0, 8, 0.6, {"timeout": 0.4, "upstream_error": 0.4,
                                       "invalid_payload": 0.2}),
    "emails": QueueSpec(3.0, 4, 0.3, {"smtp_error": 0.5, "bounced": 0.3, "timeout": 0.2}),
}


@dataclass
class _Slot:
    started: float = 0.0
    busy_until: Optional[float] = None


@dataclass
class _Queue:
    spec: QueueSpec
    depth: int = 0
    slots: List[_Slot] = field(default_factory=list)


class DemoWorker(Exporter):
    name = "demo-worker"
    description = "job-queue worker: queue depth, throughput, failures and job durations"
    tick_interval = 0.1

    def setup_metrics(self) -> None:
        r = self.registry
        self.queue_depth = Gauge(
            "queue_depth", "Jobs waiting to be processed.", ["queue"], registry=r)
        self.jobs = Counter(
            "jobs_total", "Jobs finished, by queue and status (completed or failed).",
            ["queue", "status"], registry=r)
        self.job_duration = Histogram(
            "job_processing_duration_seconds", "Time spent processing one job in seconds.",
            ["queue"], buckets=JOB_BUCKETS, registry=r)
        self.job_failures = Counter(
            "job_failures_total", "Failed jobs, by queue and failure reason.",
            ["queue", "reason"], registry=r)
        self.in_progress = Gauge(
            "jobs_in_progress", "Jobs currently being processed.", ["queue"], registry=r)
        self.last_completed = Gauge(
            "job_last_completed_timestamp_seconds",
            "Unix time of the last job that finished (completed or failed).",
            ["queue"], registry=r)

        self.state: Dict[str, _Queue] = {}
        for name, spec in QUEUES.items():
            # --activity scales arrivals and worker count together, keeping utilisation.
            workers = max(1, math.ceil(spec.workers * self.activity))
            self.state[name] = _Queue(spec=spec, slots=[_Slot() for _ in range(workers)])
            self.queue_depth.labels(name).set(0)
            self.in_progress.labels(name).set(0)
            self.last_completed.labels(name).set(self.started_at)
            self.job_duration.labels(name)
            for status in ("completed", "failed"):
                self.jobs.labels(name, status)
            for reason in spec.failure_reasons:
                self.job_failures.labels(name, reason)

    def tick(self, now: float, dt: float) -> None:
        faults = self.faults.snapshot()
        backlog = faults["queue_backlog"]
        stalled = backlog >= STALL_BACKLOG
        for name, q in self.state.items():
            spec = q.spec
            q.depth = min(MAX_QUEUE_DEPTH,
                          q.depth + poisson(self.rng, spec.arrivals_per_second * self.activity * dt))
            busy = 0
            for slot in q.slots:
                if slot.busy_until is not None and not stalled and now >= slot.busy_until:
                    self._finish(name, q, slot, now, faults["error_ratio"])
                if slot.busy_until is None and not stalled and q.depth > 0:
                    q.depth -= 1
                    seconds = spec.median_seconds * math.exp(self.rng.gauss(0.0, 0.6))
                    slot.started = now
                    slot.busy_until = now + seconds + faults["latency_seconds"]
                if slot.busy_until is not None:
                    busy += 1
            self.in_progress.labels(name).set(busy)
            extra = backlog if name == "default" else 0
            self.queue_depth.labels(name).set(q.depth + extra)

    def _finish(self, name: str, q: _Queue, slot: _Slot, now: float, error_ratio: float) -> None:
        self.job_duration.labels(name).observe(max(0.0, now - slot.started))
        if self.rng.random() < error_ratio:
            self.jobs.labels(name, "failed").inc()
            reason = weighted_choice(self.rng, q.spec.failure_reasons)
            self.job_failures.labels(name, reason).inc()
        else:
            self.jobs.labels(name, "completed").inc()
        self.last_completed.labels(name).set(now)
        slot.busy_until = None
