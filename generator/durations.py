"""Prometheus durations: parse once, print canonically."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001))
_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


@dataclass(frozen=True, order=True)
class Duration:
    """A duration in milliseconds; str() is canonical (90s -> 1m30s), in days at most so 30d stays 30d."""

    ms: int

    @property
    def seconds(self) -> float:
        return self.ms / 1000

    def __str__(self) -> str:
        return _text(self.ms)

    def __mul__(self, k: float) -> "Duration":
        return Duration(int(round(self.ms * k)))

    __rmul__ = __mul__


@functools.lru_cache(maxsize=4096)  # a handful of distinct durations are printed hundreds of thousands of times
def _text(ms: int) -> str:
    if ms == 0:
        return "0s"
    out, rest = "", ms
    for unit, secs in _UNITS[2:]:
        size = int(secs * 1000)
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def victoria_metrics_retention(d: Duration) -> str:
    """VictoriaMetrics' -retentionPeriod: whole hours or days only, one day at least (it refuses less)."""
    hours = max(24, -(-d.ms // 3_600_000))
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def parse_duration(text: str) -> Duration:
    """'1h30m' -> Duration; ValueError naming valid examples otherwise."""
    if isinstance(text, str):
        return _parse(text)
    raise ValueError(f"must be a duration like 30s, 5m, 1h30m or 15d (got {text!r})")


@functools.lru_cache(maxsize=4096)  # a fleet's services repeat a few durations hundreds of thousands of times
def _parse(text: str) -> Duration:
    m = _RE.match(text)
    if not m or not text:
        raise ValueError(f"must be a duration like 30s, 5m, 1h30m or 15d (got {text!r})")
    ms = 0
    for value, (_, secs) in zip(m.groups(), _UNITS, strict=True):
        if value:
            ms += int(value) * int(secs * 1000)
    return Duration(ms)
