"""History to evaluate against: a Prometheus HTTP API (the running Prometheus, a scratch one, or any compatible URL).

A range query at the evaluation interval returns exactly the series of
instant evaluations a rule group would have made at those timestamps.
Prometheus refuses more than 11,000 points per series, so long ranges are
cut into chunks that continue the same step grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import requests

from generator import webauth
from generator.errors import CheckFailed

MAX_POINTS = 10_000  # per query; Prometheus' limit is 11,000
TIMEOUT = 600.0  # seconds per chunk: day-long windows over a week take a while

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs


def labels_key(metric: Mapping[str, str]) -> Labels:
    return tuple(sorted(metric.items()))


@dataclass(frozen=True)
class Grid:
    """Evaluation timestamps start, start + step, ... <= end (seconds since the epoch; start a multiple of step)."""

    start: float
    end: float
    step: float

    @classmethod
    def aligned(cls, start: float, end: float, step: float, phase: float = 0.0) -> "Grid":
        """Timestamps phase + k * step within [start, end]; Prometheus evaluates each rule group at a phase of its own."""
        first = math.ceil((start - phase) / step) * step + phase
        return cls(first, first + math.floor((end - first) / step) * step, step)

    @property
    def count(self) -> int:
        return int(round((self.end - self.start) / self.step)) + 1 if self.end >= self.start else 0

    def index(self, t: float) -> int:
        return int(round((t - self.start) / self.step))

    def time(self, i: int) -> float:
        return self.start + i * self.step


class QueryError(CheckFailed):
    pass


class PrometheusAPI:
    """Read-only client of a Prometheus HTTP API (GET/POST /api/v1/...)."""

    def __init__(self, url: str, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        if session is None:
            session = requests.Session()
            session.auth = webauth.auth(self.url)  # the running stack's basic auth (stack.web_auth), when on
        self.session = session

    def _get(self, path: str, **params: Any) -> Any:
        try:
            r = self.session.get(f"{self.url}{path}", params=params, timeout=30)
        except requests.RequestException as exc:
            raise QueryError(f"{self.url} does not answer ({exc.__class__.__name__}): is the stack up (`make up`)?") from None
        return self._data(r, path)

    def _data(self, r: requests.Response, what: str) -> Any:
        try:
            body = r.json()
        except ValueError:
            raise QueryError(f"{self.url}{what}: HTTP {r.status_code}: {r.text[:300]}") from None
        if body.get("status") != "success":
            raise QueryError(f"{self.url}{what}: {body.get('errorType', r.status_code)}: {body.get('error', r.text[:300])}")
        return body["data"]

    def rules(self) -> Mapping[str, Any]:
        return self._get("/api/v1/rules")

    def config_yaml(self) -> str:
        return self._get("/api/v1/status/config")["yaml"]

    def query_range(self, expr: str, grid: Grid) -> dict[Labels, dict[int, float]]:
        """{labels: {step index: value}} over the grid, chunked under the points limit."""
        out: dict[Labels, dict[int, float]] = {}
        first = 0
        while first < grid.count:
            last = min(grid.count - 1, first + MAX_POINTS - 1)
            data = self._range_chunk(expr, grid.time(first), grid.time(last), grid.step)
            for series in data:
                points = out.setdefault(labels_key(series["metric"]), {})
                for t, v in series["values"]:
                    points[grid.index(float(t))] = float(v)
            first = last + 1
        return out

    def _range_chunk(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        form = {"query": expr, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        try:
            # POST: inlined expressions outgrow URL length limits.
            r = self.session.post(f"{self.url}/api/v1/query_range", data=form, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise QueryError(f"{self.url} does not answer ({exc.__class__.__name__}): is the stack up (`make up`)?") from None
        data = self._data(r, "/api/v1/query_range")
        if data.get("resultType") != "matrix":
            raise QueryError(f"query_range returned {data.get('resultType')}, not a matrix: {expr[:200]}")
        return data["result"]


def _ts(value: float) -> str:
    return f"{value:.3f}"
