"""Prometheus' alerting state machine, replayed over a range of evaluations.

Mirrors AlertingRule.Eval (rules/alerting.go, Prometheus 2.42 and later) step
by step:
- an alert's identity is the sample's labels without __name__, with the
  rule's labels set over them and alertname added; two samples with the same
  identity make the evaluation fail, and a failed evaluation changes no state;
- a sample with no active alert starts one, pending, active from that
  evaluation;
- a pending alert fires at the first evaluation at least `for` after it became
  active (at once when `for` is 0);
- an alert whose sample is missing: pending ones are dropped; firing ones
  resolve at that evaluation, unless keep_firing_for holds them: they keep
  firing until an evaluation at least keep_firing_for after the first one that
  missed them, and a sample in between resets that clock.
Rule labels are taken literally (monstack renders no templated labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from generator.backtest.rules import AlertRule
from generator.backtest.source import Grid, Labels


@dataclass(frozen=True)
class Episode:
    """One alert from pending to resolved (all times in seconds since the epoch)."""

    labels: Labels  # the alert's labels, alertname included
    active_at: float  # became pending
    fired_at: float | None  # None: cleared while pending, never fired
    resolved_at: float | None  # None: still pending or firing at the end of the range

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


@dataclass
class Replay:
    rule: AlertRule
    grid: Grid
    episodes: list[Episode] = field(default_factory=list)
    failed_steps: list[float] = field(default_factory=list)  # evaluations Prometheus would have failed (duplicate labels)


@dataclass
class _Active:
    active_at: int  # ms
    fired_at: int | None = None  # ms; set once the alert fires
    keep_since: int | None = None

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


def alert_labels(rule: AlertRule, sample: Labels) -> Labels:
    out = {k: v for k, v in sample if k != "__name__"}
    for k, v in rule.labels.items():
        if v == "":
            out.pop(k, None)
        else:
            out[k] = v
    out["alertname"] = rule.alert
    return tuple(sorted(out.items()))


def replay(rule: AlertRule, grid: Grid, series: Mapping[Labels, Mapping[int, float]]) -> Replay:
    """Episodes of `rule` given, per sample label set, the evaluation steps at which the expression returned it."""
    result = Replay(rule, grid)
    hold = int(round(rule.for_ * 1000))
    keep = int(round(rule.keep_firing_for * 1000))
    by_step: dict[int, list[Labels]] = {}
    for sample, points in series.items():
        identity = alert_labels(rule, sample)
        for i in points:
            if 0 <= i < grid.count:
                by_step.setdefault(i, []).append(identity)
    steps = sorted(by_step)
    active: dict[Labels, _Active] = {}
    pos = 0
    i = steps[0] if steps else grid.count
    while i < grid.count:
        ts = int(round(grid.time(i) * 1000))
        present = by_step.get(i, [])
        if len(set(present)) != len(present):
            result.failed_steps.append(ts / 1000)
        else:
            _eval(active, set(present), ts, hold, keep, result)
        while pos < len(steps) and steps[pos] <= i:
            pos += 1
        if active:
            i += 1
        else:
            i = steps[pos] if pos < len(steps) else grid.count
    for identity, a in active.items():
        result.episodes.append(Episode(identity, a.active_at / 1000, a.fired_at / 1000 if a.fired_at is not None else None, None))
    result.episodes.sort(key=lambda e: (e.active_at, e.labels))
    return result


def _eval(active: dict[Labels, _Active], present: set[Labels], ts: int, hold: int, keep: int, out: Replay) -> None:
    for identity in present:
        if identity not in active:
            active[identity] = _Active(active_at=ts)
    for identity, a in list(active.items()):
        if identity not in present:
            keep_firing = False
            if a.firing and keep > 0:
                if a.keep_since is None:
                    a.keep_since = ts
                keep_firing = ts - a.keep_since < keep
            if not keep_firing:
                del active[identity]
                out.episodes.append(Episode(identity, a.active_at / 1000, a.fired_at / 1000 if a.fired_at is not None else None,
                                            ts / 1000))
                continue
        else:
            a.keep_since = None
        if not a.firing and ts - a.active_at >= hold:
            a.fired_at = ts
