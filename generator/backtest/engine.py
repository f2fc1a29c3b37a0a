"""Evaluate a rule set's alerts over a window of history and simulate the notifications they would have sent."""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from generator.backtest import routing
from generator.backtest.inline import Inliner
from generator.backtest.rules import AlertRule, RuleSet
from generator.backtest.source import Grid, Labels, PrometheusAPI
from generator.backtest.state import Episode, Replay, replay

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Window:
    start: float  # seconds since the epoch
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Outcome:
    """What one rule set (with one routing) would have done over a window."""

    rules: RuleSet
    window: Window
    replays: list[Replay]
    notifications: list[routing.Notification]
    pagers: set[str]
    queries: dict[str, str] = field(default_factory=dict)  # alert key -> the PromQL evaluated

    def firing(self) -> list[Episode]:
        return [e for r in self.replays for e in r.episodes if e.fired]


def warmup(rule: AlertRule) -> float:
    """How far before the window evaluation starts so `for` and keep_firing_for states are settled at its start."""
    return rule.for_ + rule.keep_firing_for + rule.interval


class Evaluator:
    """Runs range queries (deduplicated across rule sets, two at a time) and replays each alert's state."""

    def __init__(self, api: PrometheusAPI, workers: int = 2, progress: Progress | None = None, phase: float = 0.0):
        self.api = api
        self.phase = phase  # seconds past each multiple of the interval at which evaluations happen
        self.workers = workers
        self.progress = progress or (lambda msg: None)
        self._cache: dict[tuple[str, float, float, float], dict[Labels, dict[int, float]]] = {}
        self._lock = threading.Lock()

    def _query(self, expr: str, grid: Grid) -> dict[Labels, dict[int, float]]:
        key = (expr, grid.start, grid.end, grid.step)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        result = self.api.query_range(expr, grid)
        with self._lock:
            self._cache[key] = result
        return result

    def evaluate(self, rules: RuleSet, alerts: Sequence[AlertRule], window: Window) -> tuple[list[Replay], dict[str, str]]:
        inliner = Inliner(rules)
        jobs = []
        for rule in alerts:
            grid = Grid.aligned(window.start - warmup(rule), window.end, rule.interval, self.phase)
            jobs.append((rule, grid, inliner.inline(rule.expr)))
        done = [0]

        def run(job):
            rule, grid, expr = job
            series = self._query(expr, grid)
            with self._lock:
                done[0] += 1
                self.progress(f"  [{done[0]}/{len(jobs)}] {rule.alert} {rule.service}")
            return replay(rule, grid, series)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            replays = list(pool.map(run, jobs))
        return replays, {alert_key(rule): expr for rule, _, expr in jobs}


def alert_key(rule: AlertRule) -> str:
    return f"{rule.alert}/{rule.service}/{rule.group}"


def episodes_for_routing(replays: Iterable[Replay]) -> list[routing.AlertEpisode]:
    out = []
    for r in replays:
        for e in r.episodes:
            if e.fired_at is not None:
                out.append(routing.AlertEpisode(e.labels, e.fired_at, e.resolved_at if e.resolved_at is not None else math.inf))
    return out


def outcome(evaluator: Evaluator, rules: RuleSet, alerts: Sequence[AlertRule], window: Window,
            config: routing.Config | None) -> Outcome:
    replays, queries = evaluator.evaluate(rules, alerts, window)
    notes: list[routing.Notification] = []
    pagers: set[str] = set()
    if config is not None:
        notes = [n for n in routing.simulate(config, episodes_for_routing(replays), window.end) if n.time >= window.start]
        pagers = config.pagers()
    return Outcome(rules, window, replays, notes, pagers, queries)
