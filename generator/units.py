"""Sizes as the inventory writes them (512MiB, 10GB): parsed once, in bytes."""
from __future__ import annotations

import re

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def parse_bytes(text: str) -> int:
    m = re.match(r"^([0-9.]+)([A-Za-z]+)$", text)
    assert m, text  # the schema has already checked the spelling
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2)])


# Histogram units: many clients (Node.js prom-client among them) export durations in milliseconds.
# Inventories keep every duration threshold in seconds; recording rules convert once.
DURATION_UNITS = ("seconds", "milliseconds")
_MS_SUFFIXES = ("_ms", "_milliseconds")


def infer_duration_unit(metric: str) -> str:
    """The unit a histogram's name announces: milliseconds for a _ms/_milliseconds suffix, else seconds."""
    return "milliseconds" if metric.endswith(_MS_SUFFIXES) else "seconds"


def duration_scale(unit: str) -> float:
    """Histogram units per second: what a value in seconds is multiplied by to compare with a bucket bound."""
    return 1000.0 if unit == "milliseconds" else 1.0


def duration_bound(ms: int, unit: str) -> float:
    """A duration (in whole milliseconds) as a bucket bound of a histogram in `unit`, without float noise."""
    return float(ms) if unit == "milliseconds" else ms / 1000
