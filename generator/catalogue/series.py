"""Input series for generated promtool tests, built from the model.

Series carry the labels a real scrape gives them (job, instance and the static
labels of generator/targets.py), so a test proves the rule matches what
Prometheus will actually store. Generated tests sample every minute
(STEP); counters are given a per-second rate and grow linearly. A case whose
range window is shorter than a minute is sampled more often (finer()).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from generator import names
from generator.promql import num, sel
from generator.targets import probe_labels, probe_target, scrape_labels, self_labels

if TYPE_CHECKING:
    from generator.model import Model, Probe, Service

@dataclass(frozen=True)
class Series:
    """One promtool input series: `values` in promtool's expanding notation (0+60x30, 1x30, _x5 ...)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    values: str

    def text(self) -> str:
        return sel(self.metric, dict(self.labels))



STEP_SECONDS = 60  # input interval and evaluation interval of generated tests


def target(model: "Model", s: "Service", **extra: str) -> dict[str, str]:
    """Labels of a series scraped from the service's first target."""
    assert s.scrape is not None, s.name
    return {"job": names.service_job(s.name), "instance": s.scrape.targets[0], **scrape_labels(model, s), **extra}


def self_target(model: "Model", job: str, instance: str, **extra: str) -> dict[str, str]:
    """Labels of a series scraped from one of the stack's own components."""
    return {"job": job, "instance": instance, **self_labels(model), **extra}


def _labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def counter(metric: str, labels: Mapping[str, str], per_second: float, points: int, start: float = 0, step: int = STEP_SECONDS) -> Series:
    return Series(metric, _labels(labels), f"{num(start)}+{num(per_second * step)}x{points}")


def gauge(metric: str, labels: Mapping[str, str], value: float, points: int) -> Series:
    return Series(metric, _labels(labels), f"{num(value)}x{points}")


def late(series: Series, missing: int) -> Series:
    """The same series, absent for its first `missing` steps (it appears later)."""
    return Series(series.metric, series.labels, f"_x{missing} {series.values}")


# One token of promtool's expanding notation: `_`, `_xN`, `V`, `VxN`, `V+DxN`, `V-DxN`.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"(?:(?P<blank>_)|(?P<start>{_NUMBER})(?:(?P<sign>[-+])(?P<delta>{_NUMBER}))?)(?:x(?P<times>\d+))?")


def finer(series: Series, factor: int) -> Series:
    """The same series sampled `factor` times as often: each sample slot is split into `factor` slots.

    A run `V+DxN` (a counter) continues its slope through the new slots, up to the slot where the next
    run starts; a constant run holds its value; a missing sample stays missing for the whole slot. The
    value at every original sample time is unchanged, so a case's eval times, expected values and
    `for` read the same, while a short range window now holds several samples.
    """
    if factor == 1:
        return series
    out = []
    for token in series.values.split():
        m = _TOKEN.fullmatch(token)
        if m is None:
            raise ValueError(f"{series.text()}: cannot resample {token!r} of {series.values!r}")
        # `_xN` is N samples; `VxN` and `V+DxN` are N + 1 (promtool's expanding notation); a bare token one.
        times = int(m["times"]) if m["times"] is not None else None
        slots = (times if m["blank"] else times + 1) if times is not None else 1
        if m["blank"]:
            out.append(f"_x{slots * factor}")
            continue
        # Twelve significant digits: 3300/4 reads 825, not 825.0000000000001; the error (< 1e-12) is far
        # below what the test values keep from the text edges (catalogue.core.NOISE).
        delta = float(f"{float(m['delta']) / factor:.12g}") if m["delta"] else 0.0
        slope = f"{m['sign']}{num(delta)}" if delta else ""
        out.append(f"{m['start']}{slope}x{slots * factor - 1}")
    return Series(series.metric, series.labels, " ".join(out))


def le(bound: float) -> str:
    """A bucket bound as the Python client prints it (2.0, 0.5, +Inf)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def histogram(base: str, labels: Mapping[str, str], per_second: float, buckets: Sequence[tuple[float, float]],
              points: int, mean: float) -> list[Series]:
    """A histogram observing `per_second` events; buckets are (upper bound, share of events at or below it)."""
    out = []
    for bound, share in list(buckets) + [(float("inf"), 1.0)]:
        out.append(counter(f"{base}_bucket", {**labels, "le": le(bound)}, per_second * share, points))
    out.append(counter(f"{base}_count", labels, per_second, points))
    out.append(counter(f"{base}_sum", labels, per_second * mean, points))
    return out


def quantile_histogram(base: str, labels: Mapping[str, str], q: float, value: float, points: int,
                       per_second: float = 10) -> list[Series]:
    """A histogram whose q-quantile is `value`: every event in one bucket [0, value/q], interpolated linearly."""
    bound = float(f"{value / q:.12g}")
    return histogram(base, labels, per_second, [(bound, 1.0)], points, mean=bound / 2)


def union(*groups: Iterable[Series]) -> list[Series]:
    out: list[Series] = []
    for g in groups:
        out.extend(g)
    return out


def probe(model: "Model", s: "Service", p: "Probe") -> dict[str, str]:
    """Labels of a series the probe job scrapes for probe p."""
    return {"job": names.probe_job(s.name), "instance": probe_target(p.url), **probe_labels(model, s, p.name)}
