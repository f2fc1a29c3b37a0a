"""The shape of a catalogue alert and the helpers every kind module shares.

An AlertDef knows four things about one alert: its defaults (severity,
threshold, `for`), its PromQL, its texts, and how to prove it: `cases` builds
promtool input series from the model (the same metric names, labels and
thresholds the rule uses) for a firing case and a silent one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from generator import names
from generator.durations import Duration, parse_duration
from generator.promql import sel

if TYPE_CHECKING:
    from generator.model import AlertSetting, Model, Service

# How far from the threshold the generated test values sit: far enough that
# float noise in rate()/histogram_quantile() cannot flip a comparison, close
# enough that an off-by-a-tier threshold (2 instead of 1) would fail a test.
MARGIN = 0.1

BY = (names.SERVICE, names.TEAM, names.ENV)  # the labels recorded and aggregated series keep
BY_TEXT = ", ".join(BY)


@dataclass(frozen=True)
class Ctx:
    """What an expression or a test case is built from: the stack, the service (None for meta alerts), the settings."""

    model: "Model"
    service: "Service | None"
    setting: "AlertSetting"

    @property
    def s(self) -> "Service":
        assert self.service is not None
        return self.service

    @property
    def threshold(self) -> float:
        assert self.setting.threshold is not None, self.setting.name
        return self.setting.threshold

    @property
    def env(self) -> str:
        return self.model.stack.environment

    def mine(self, **extra: str) -> dict[str, str]:
        """Matchers selecting this service's series."""
        return {names.SERVICE: self.s.name, **extra}


@dataclass(frozen=True)
class Series:
    """One promtool input series: `values` in promtool's expanding notation (0+60x30, 1x30, _x5 ...)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    values: str

    def text(self) -> str:
        return sel(self.metric, dict(self.labels))


@dataclass(frozen=True)
class Expected:
    """One alert a case expects: the labels of the alerting sample (before rule labels) and its $value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Case:
    title: str
    series: tuple[Series, ...]
    alerts: tuple[Expected, ...]  # empty: the alert must stay silent
    at: Duration  # eval time, from the start of the series
    step: int = 1  # minutes between samples and between evaluations; coarser for day-long windows

    @property
    def fires(self) -> bool:
        return bool(self.alerts)


Text = Callable[[Ctx], Mapping[str, str]]  # extra placeholder values for summary/description


@dataclass(frozen=True)
class AlertDef:
    name: str
    kinds: tuple[str, ...]  # service kinds; ("meta",) for the stack's own alerts
    severity: str
    for_: str
    threshold: float | None
    unit: str  # "ratio", "seconds", "bytes", "count", "days", "hours", "none": how values and thresholds read
    summary: str  # Go template text plus {service}/{threshold}/{for} placeholders filled at render time
    description: str
    query: Callable[[Ctx], str]  # the value an on-call engineer looks at first (runbook)
    cases: Callable[[Ctx], list[Case]]
    meaning: str
    causes: tuple[str, ...] = ()
    op: str = ">"  # how the measured value compares with the threshold
    expr: Callable[[Ctx], str] | None = None  # only where the alert is not `query op threshold`
    applies: Callable[["Service"], bool] = field(default=lambda s: True)
    requires: str = ""  # why it may not apply, for error messages
    derived_threshold: Callable[["Service"], float | None] | None = None
    problem: str | None = None  # shared by tiers of one problem (P0/P1 error ratio); defaults to the name
    placeholders: Text | None = None

    @property
    def problem_label(self) -> str:
        return self.problem or self.name

    def expression(self, ctx: Ctx) -> str:
        """The alerting PromQL: `expr` where given, otherwise the query compared with the threshold."""
        if self.expr is not None:
            return self.expr(ctx)
        return f"{self.query(ctx)} {self.op} {num(ctx.threshold)}"

    def threshold_for(self, service: "Service") -> float | None:
        if self.derived_threshold is not None:
            return self.derived_threshold(service)
        return self.threshold


# --- numbers and texts ---------------------------------------------------------


def num(value: float) -> str:
    """A number as PromQL and promtool read it: integers without .0, otherwise the shortest exact spelling."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def nice(value: float) -> float:
    """Six significant digits, so generated test values read like numbers people write."""
    return float(f"{value:.6g}")


def show(value: float, unit: str) -> str:
    """A threshold as people read it in summaries and runbooks."""
    if unit == "ratio":
        return f"{nice(value * 100):g}%"
    if unit == "seconds":
        return str(Duration(int(round(value * 1000)))) if value >= 0.001 else f"{value:g}s"
    if unit == "bytes":
        for size, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if value >= size:
                return f"{nice(value / size):g}{suffix}"
        return f"{value:g}B"
    if unit == "days":
        return f"{value:g} days"
    if unit == "hours":
        return f"{value:g}h"
    return f"{value:g}"


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace {service}-style placeholders; Go template actions ({{ ... }}) are left alone."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"unknown placeholder {{{key}}} in {text!r}")
        return values[key]

    return _PLACEHOLDER.sub(sub, text)


def text_values(d: AlertDef, ctx: Ctx) -> dict[str, str]:
    values = {"for": str(ctx.setting.for_), "severity": ctx.setting.severity}
    if ctx.service is not None:
        values["service"] = ctx.service.name
    if ctx.setting.threshold is not None:
        values["threshold"] = show(ctx.setting.threshold, d.unit)
    if d.placeholders is not None:
        values.update(d.placeholders(ctx))
    return values


# --- test values -----------------------------------------------------------------


def beyond(threshold: float, op: str, unit: str, fire: bool) -> float:
    """A value on the firing (or the silent) side of `value OP threshold`, MARGIN away from it.

    A silent value for a strict comparison with a zero threshold sits exactly
    on the threshold (0 errors must not fire `> 0`).
    """
    step = abs(threshold) * MARGIN or 1.0
    if unit == "ratio":
        step = min(step, (1 - threshold) / 2) if threshold < 1 and op in (">", ">=") and fire else step
    up = op in (">", ">=")
    if op in ("==", "!="):
        on = op == "=="
        return nice(threshold if fire == on else threshold + step)
    if fire == up:
        return nice(threshold + step)
    if threshold == 0 and op in (">", "<"):
        return 0.0
    return nice(threshold - step)


def round_up_minutes(d: Duration) -> Duration:
    minutes = -(-d.ms // 60_000)
    return Duration(minutes * 60_000)


def eval_time(settle: Duration | str, for_: Duration) -> Duration:
    """When a case is checked: the condition has held for `for` plus two evaluation steps."""
    settle = parse_duration(settle) if isinstance(settle, str) else settle
    return round_up_minutes(Duration(settle.ms + for_.ms + 2 * 60_000))


Build = Callable[[float, int], tuple[Sequence[Series], Sequence[Mapping[str, str]]]]


def points(at: Duration) -> int:
    """Samples a case's series need: past its eval time, so nothing goes stale early."""
    return at.ms // 60_000 + 5


def threshold_cases(ctx: Ctx, d: AlertDef, build: Build, settle: str = "5m",
                    shown: Callable[[float], float] | None = None) -> list[Case]:
    """The standard pair: the measured value just past the threshold fires, just short of it stays silent.

    build(value, points) returns the input series (`points` samples each)
    making the measured value equal `value`, and the labels of each alerting
    sample; `shown` maps the measured value to the alert's $value when they differ.
    """
    at = eval_time(settle, ctx.setting.for_)
    out = []
    for fire in (True, False):
        value = beyond(ctx.threshold, d.op, d.unit, fire)
        series, labels = build(value, points(at))
        verb = "fires" if fire else "stays silent"
        title = f"{d.name} {verb} at {show(value, d.unit)} ({d.op} {show(ctx.threshold, d.unit)})"
        shown_value = shown(value) if shown else value
        alerts = tuple(Expected(dict(lb), shown_value) for lb in labels) if fire else ()
        out.append(Case(title, tuple(series), alerts, at))
    return out


def minutes(d: Duration) -> int:
    return d.ms // 60_000


_MATCHING = ("500", "503", "failed", "error", "errors", "5xx", "timeout", "true", "1")
_NOT_MATCHING = ("200", "204", "ok", "success", "completed", "false", "0", "monstack-other", "#", "~ ~")
# Inventory text tried as a value is kept short: Python's backtracking matcher is exponential on some patterns.
_MAX_CANDIDATE = 16


def example_value(regex: str, matching: bool = True) -> str:
    """A label value that (does not) fully match regex, for test series; ValueError when none is found."""
    from generator.inventory.regex import example

    pattern = re.compile(regex)
    own = tuple(c for c in (*regex.split("|"), regex) if len(c) <= _MAX_CANDIDATE)
    candidates = _MATCHING + own if matching else _NOT_MATCHING
    for c in candidates:
        if bool(pattern.fullmatch(c)) == matching:
            return c
    built = example(regex) if matching else None
    if built is not None:
        return built
    raise ValueError(f"cannot find a label value {'matching' if matching else 'not matching'} {regex!r}")
