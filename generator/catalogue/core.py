"""The shape of a catalogue alert and the helpers every kind module shares.

An AlertDef knows four things about one alert: its defaults (severity,
threshold, `for`), its PromQL, its texts, and how to prove it: `cases` builds
promtool input series from the model (the same metric names, labels and
thresholds the rule uses) for a firing case and a silent one.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from generator import alerttext, defaults, names
from generator.catalogue import series as S
from generator.catalogue.series import Series
from generator.durations import Duration, parse_duration
from generator.promql import num
from generator.regex import example_value  # noqa: F401  (the catalogue's test builders import it from here)

if TYPE_CHECKING:
    from generator.model import AlertSetting, HttpMetrics, Model, Service, Slo, WorkerMetrics

# How far from the threshold the generated test values sit: far enough that
# float noise in rate()/histogram_quantile() cannot flip a comparison, close
# enough that an off-by-a-tier threshold (2 instead of 1) would fail a test.
MARGIN = 0.1

BY = (names.SERVICE, names.TEAM, names.ENV)  # the labels recorded and aggregated series keep
BY_TEXT = ", ".join(BY)
WINDOW = "5m"  # the rate window of recorded series and of every alert that does not say otherwise


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
    def http(self) -> "HttpMetrics":
        return self.s.http_metrics

    @property
    def worker(self) -> "WorkerMetrics":
        return self.s.worker_metrics

    @property
    def metrics(self) -> "HttpMetrics | WorkerMetrics":
        """The metrics of an http or worker service (what both kinds share: duration, status_label)."""
        assert self.s.metrics is not None, f"{self.s.name}: a {self.s.kind} service has no application metrics"
        return self.s.metrics

    @property
    def slo(self) -> "Slo":
        return slo_of(self.s)

    @property
    def latency_threshold(self) -> Duration:
        """The latency objective's threshold: alerts that read it need a latency SLO."""
        threshold = self.slo.latency_threshold
        assert threshold is not None, f"{self.s.name}: the SLO has no latency objective"
        return threshold

    @property
    def threshold(self) -> float:
        assert self.setting.threshold is not None, self.setting.name
        return self.setting.threshold

    @property
    def window(self) -> str:
        """The rate window of the alert's expression: the inventory's `window:`, else the catalogue's (5m unless it says)."""
        return str(self.setting.window) if self.setting.window is not None else WINDOW

    @property
    def recorded(self) -> bool:
        """Whether the alert may read the recorded 5m series (its window is theirs)."""
        return self.window == WINDOW

    @property
    def min_rate(self) -> float:
        """Events per second below which a ratio alert stays silent (0: no guard)."""
        return self.setting.min_rate or 0.0

    @property
    def env(self) -> str:
        return self.model.stack.environment

    def mine(self, **extra: str) -> dict[str, str]:
        """Matchers selecting this service's series."""
        return {names.SERVICE: self.s.name, **extra}


def slo_of(s: "Service") -> "Slo":
    """The SLO of a service that has one: SLO alerts apply only there."""
    assert s.slo is not None, f"{s.name}: the service has no SLO"
    return s.slo


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
    interval: Duration | None = None  # between samples: fast alerts (evaluated at the fast group's interval), windows under a minute
    silent_at: tuple[Duration, ...] = ()  # further eval times at which the alert must not be firing

    @property
    def fires(self) -> bool:
        return bool(self.alerts)


Text = Callable[[Ctx], Mapping[str, str]]  # extra placeholder values for summary/description


@dataclass(frozen=True)
class Needs:
    """When an alert applies to a service, and what the error says to a user who overrides it where it does not."""

    test: Callable[["Service"], bool]
    requires: str  # why it may not apply, e.g. "the service has no scrape targets"


ANY = Needs(lambda s: True, "")
SCRAPED = Needs(lambda s: s.scrape is not None, "the service has no scrape targets")
PROBED = Needs(lambda s: bool(s.probes), "the service has no health URLs")


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
    cases: Callable[["AlertDef", Ctx], list[Case]]  # given the definition, so shared builders need no lookup by name
    meaning: str
    causes: tuple[str, ...] = ()
    op: str = ">"  # how the measured value compares with the threshold
    expr: Callable[[Ctx], str] | None = None  # only where the alert is not `query op threshold`
    needs: Needs = ANY
    derived_threshold: Callable[["Service"], float | None] | None = None
    problem: str | None = None  # shared by tiers of one problem (P0/P1 error ratio); defaults to the name
    placeholders: Text | None = None
    window: str | None = None  # the rate window `window:` may override; None: the expression has none (a gauge, a state)
    window_fixed: bool = False  # the window is part of the definition (burn-rate pairs): no override
    min_rate: float | None = None  # ratio alerts: default events/s the service must see before it may fire
    fast: bool = False  # evaluated in the service's fast rule group (alerting.fast_interval): hard-down alerts

    def applies(self, service: "Service") -> bool:
        return self.needs.test(service)

    @property
    def requires(self) -> str:
        return self.needs.requires

    @property
    def problem_label(self) -> str:
        return self.problem or self.name

    def expression(self, ctx: Ctx) -> str:
        """The alerting PromQL: `expr` where given, otherwise the query compared with the threshold."""
        if self.expr is not None:
            return self.expr(ctx)
        return f"{self.query(ctx)} {self.op} {num(ctx.threshold)}"

    def test_cases(self, ctx: Ctx) -> list[Case]:
        """promtool cases proving the alert: a firing one and a silent one at least."""
        return self.cases(self, ctx)

    def threshold_for(self, service: "Service") -> float | None:
        if self.derived_threshold is not None:
            return self.derived_threshold(service)
        return self.threshold


# --- numbers and texts ---------------------------------------------------------


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


def spoken(d: Duration) -> str:
    """A window as a sentence says it: 5 minutes, 1 hour, 90s."""
    for size, word in ((86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute")):
        if d.ms and d.ms % size == 0:
            n = d.ms // size
            return f"{n} {word}" + ("s" if n != 1 else "")
    return str(d)


def text_values(d: AlertDef, ctx: Ctx) -> dict[str, str]:
    values = {"for": str(ctx.setting.for_), "severity": ctx.setting.severity, "window": spoken(parse_duration(ctx.window))}
    if ctx.service is not None:
        values["service"] = ctx.service.name
    if ctx.setting.threshold is not None:
        values["threshold"] = show(ctx.setting.threshold, d.unit)
    if d.placeholders is not None:
        values.update(d.placeholders(ctx))
    return values


# --- expressions over a window ----------------------------------------------------


def rate_sum(selector: str, window: str, by: str = BY_TEXT) -> str:
    return f"sum by ({by}) (rate({selector}[{window}]))"


def ratio_over(failed: str, total: str, window: str) -> str:
    """Share of failed events over window, 0 (not absent) before the first failure: what the recorded ratios compute."""
    return f"({rate_sum(failed, window)} or {rate_sum(total, window)} * 0) / {rate_sum(total, window)}"


def quantile_over(q: float, buckets: str, window: str, scale: float) -> str:
    """The q-quantile in seconds of a histogram's buckets (selector) over window; scale: histogram units per second."""
    per = f" / {num(scale)}" if scale != 1 else ""
    return f"histogram_quantile({q}, sum by ({BY_TEXT}, le) (rate({buckets}[{window}]))){per}"


def guarded(ctx: Ctx, compared: str, rate: str) -> str:
    """`compared` only where the service sees at least ctx.min_rate events per second (rate: their per-second rate)."""
    if not ctx.min_rate:
        return compared
    return f"{compared} and on ({BY_TEXT}) {rate} >= {num(ctx.min_rate)}"


# --- test values -----------------------------------------------------------------


# Prometheus computes a test's value through rate(), histogram_quantile() and division, so it may
# end 1e-12 away from the value written here; humanizeDuration truncates to whole seconds and the
# others round to 4 digits, so a value on such an edge (1100 s, printed 18m 20s or 18m 19s) would make
# the expected annotation a coin toss. Test values are moved off those edges.
NOISE = 1e-9  # relative: far above float noise, far below anything a person reads
_TEXTS = (alerttext.humanize, alerttext.humanize1024, alerttext.humanize_percentage, alerttext.humanize_duration)


def steady(value: float) -> bool:
    """Every humanize function prints value exactly as it prints value off by float noise."""
    for text in _TEXTS:
        t = text(value)
        if text(value * (1 - NOISE)) != t or text(value * (1 + NOISE)) != t:
            return False
    return True


def compares(value: float, op: str, threshold: float) -> bool:
    return {">": value > threshold, ">=": value >= threshold, "<": value < threshold, "<=": value <= threshold,
            "==": value == threshold, "!=": value != threshold}[op]


def off_the_edges(value: float, keep: Callable[[float], bool], shown: Callable[[float], float] | None = None) -> float:
    """value, or a value near it (at most 5% away) that keeps `keep` true and whose shown value prints steadily.

    Candidates step by 0.1% and add odd fractions of their sixth significant digit: round numbers
    (whole seconds, x.xxx5) are exactly where the humanize functions truncate or round.
    """
    shown = shown or (lambda v: v)
    for k in range(51):
        for base in ((value,) if k == 0 else (value * (1 + k * 1e-3), value * (1 - k * 1e-3))):
            b = nice(base)
            digit = min(10 ** (math.floor(math.log10(abs(b))) - 5), 0.1) if b else 0.0
            for frac in (0.0, 0.37, 0.61, 0.13, 0.89):
                c = float(f"{b + frac * digit:.12g}")
                if keep(c) and steady(shown(c)):
                    return c
    return value


def beyond(threshold: float, op: str, unit: str, fire: bool) -> float:
    """A value on the firing (or the silent) side of `value OP threshold`, MARGIN away from it and off the text edges.

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
        value = nice(threshold + step)
    elif threshold == 0 and op in (">", "<"):
        return 0.0
    else:
        value = nice(threshold - step)
    ceiling = 1.0 if unit == "ratio" and value <= 1 else math.inf
    return off_the_edges(value, lambda c: compares(c, op, threshold) == fire and c <= ceiling and (c >= 0 or value < 0))


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


_STEP_MS = S.STEP_SECONDS * 1000
_FINEST_MS = 1000  # the finest sampling of a generated case
_DIVISORS = tuple(d for d in range(_FINEST_MS, _STEP_MS + 1, 1000) if _STEP_MS % d == 0)  # 1s, 2s, 3s ... 30s, 1m


def sample_interval(window: Duration) -> Duration | None:
    """How often a case must sample so that `window` holds two samples at every evaluation; None: once a minute does.

    promtool 2.x ranges include their start, so a window of a minute or more holds two samples a minute
    apart (the compact tests of every default window). A shorter one (an override such as 30s, which
    the inventory allows at two scrapes) holds one: rate() and increase() over it return nothing and
    the expected alert never fires. Such a case samples at the longest whole-second divisor of a
    minute no longer than half the window: two samples in it whichever side of its edges a sample
    falls, and every minute (every eval time) still on a sample. Never below a second: a `for` of
    hours sampled every millisecond would not fit in promtool (only a sub-second scrape interval
    allows windows that short).
    """
    if window.ms >= _STEP_MS:
        return None
    return Duration(max(d for d in _DIVISORS if d <= max(_FINEST_MS, window.ms // 2)))


def sampled_every(case: Case, interval: Duration) -> Case:
    """The case with its series sampled every `interval` (a divisor of its minute step), the same values at every minute."""
    assert case.interval is None and case.step == 1 and _STEP_MS % interval.ms == 0, (case.title, interval)
    factor = _STEP_MS // interval.ms
    return replace(case, series=tuple(S.finer(x, factor) for x in case.series), interval=interval)


def _side(op: str, threshold: float, fire: bool) -> Callable[[float], bool]:
    return lambda c: compares(c, op, threshold) == fire


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
        if shown is not None:
            value = off_the_edges(value, _side(d.op, ctx.threshold, fire), shown)
        series, labels = build(value, points(at))
        verb = "fires" if fire else "stays silent"
        title = f"{d.name} {verb} at {show(value, d.unit)} ({d.op} {show(ctx.threshold, d.unit)})"
        shown_value = shown(value) if shown else value
        alerts = tuple(Expected(dict(lb), shown_value) for lb in labels) if fire else ()
        out.append(Case(title, tuple(series), alerts, at))
    return out


def aggregated(ctx: Ctx, **extra: str) -> dict[str, str]:
    """Labels of a series aggregated per service (BY), as recording rules and `sum by` expressions keep them."""
    return {names.SERVICE: ctx.s.name, names.TEAM: ctx.s.team, names.ENV: ctx.env, **extra}


def instance(ctx: Ctx, **extra: str) -> dict[str, str]:
    """Labels of a series aggregated per service and instance (the service's first scrape target in tests)."""
    return aggregated(ctx, instance=S.target(ctx.model, ctx.s)["instance"], **extra)


def down_cases(d: AlertDef, ctx: Ctx, metric: str, labels: Mapping[str, str], down: str, up: str) -> list[Case]:
    """A 0/1 health gauge (up, pg_up, probe_success ...): 0 for `for` fires with the sample's labels, 1 stays silent."""
    at = eval_time("0s", ctx.setting.for_)
    n = points(at)
    return [Case(f"{d.name} fires {down}", (S.gauge(metric, labels, 0, n),), (Expected(dict(labels), 0),), at),
            Case(f"{d.name} stays silent {up}", (S.gauge(metric, labels, 1, n),), (), at)]


_FAST = parse_duration(defaults.FAST_EVALUATION_INTERVAL)
_PROBE_INTERVAL = parse_duration(defaults.PROBE_INTERVAL)


def probe_every(scrape: Duration) -> Duration:
    """How often health URLs are probed at a scrape interval: defaults.PROBE_INTERVAL, or the scrape interval when shorter."""
    return min(scrape, _PROBE_INTERVAL)


def probe_interval(model: "Model", s: "Service") -> Duration:
    """How often the service's health URLs are probed (probe_every of its scrape interval)."""
    return probe_every(s.scrape.interval if s.scrape else model.stack.scrape_interval)


def probe_timeout(model: "Model", s: "Service") -> Duration:
    """A probe's scrape timeout: the service's scrape timeout, never longer than the probe interval."""
    timeout = s.scrape.timeout if s.scrape else model.stack.scrape_timeout
    return min(timeout, probe_interval(model, s))


def fast_interval(model: "Model") -> Duration:
    """The evaluation interval of every service's fast rule group (never slower than the stack's)."""
    return min(model.stack.evaluation_interval, _FAST)


_SLOW = parse_duration(defaults.SLOW_EVALUATION_INTERVAL)


def slow_interval(model: "Model") -> Duration:
    """The evaluation interval of every service's slow SLO group (never faster than the stack's)."""
    return max(model.stack.evaluation_interval, _SLOW)


# A window one second longer than `failures` samples: a sample a few milliseconds late cannot leave a
# steady outage with one sample in the window (which would resolve the alert for an evaluation).
MARGIN_MS = 1000


def consecutive_failures(metric: str, matchers: Mapping[str, str], interval: Duration, failures: int) -> str:
    """Every sample of the last `failures` scrapes is 0, and there are that many: a run of failures, not one.

    Between a failed scrape and the next one's result the window holds one sample, so the count keeps a
    single failure from firing even when the next scrape is slow.
    """
    from generator.promql import sel

    window = Duration(failures * interval.ms + MARGIN_MS)
    s = sel(metric, matchers)
    return f"max_over_time({s}[{window}]) == 0 and count_over_time({s}[{window}]) >= {failures}"


def still_failing(expr: str, ctx: Ctx, metric: str, matchers: Mapping[str, str], on: Sequence[str]) -> str:
    """`expr`, or: the alert is already pending or firing and the latest sample still failed. Only with a `for`.

    A restarted Prometheus restores the `for` of an alert only when the alert is active at its second
    evaluation (--rules.alert.for-grace-period=0s, generator/components.py). By then it may not have
    scraped the failing target twice, and the failures it scraped before the restart may have left the
    short window of `expr`: the alert started its `for` again after the restart, and with a `for` of
    minutes Alertmanager timed the firing alert out (a false "resolved") and paged again when it fired.
    The alert's state series (ALERTS_FOR_STATE, written at every evaluation while it is active) and the
    latest sample outlive the restart, so with this clause the alert is active at once and its `for` is
    restored. It never makes a single failure fire: the alert must be active already. Without a `for`
    nothing needs restoring: the alert fires again two scrapes after the restart, long before
    Alertmanager times out the one it holds (the end Prometheus stamps on it, four resend delays ahead).
    """
    from generator.promql import sel

    if ctx.setting.for_.ms == 0:
        return expr
    state = sel("ALERTS_FOR_STATE", {"alertname": ctx.setting.name, names.SEVERITY: ctx.setting.severity, **matchers})
    return f"({expr}) or ({sel(metric, matchers)} == 0 and on ({', '.join(on)}) {state})"


def _ceil(ms: int, step: Duration) -> Duration:
    return Duration(-(-ms // step.ms) * step.ms)


def consecutive_cases(d: "AlertDef", ctx: Ctx, metric: str, labels: Sequence[Mapping[str, str]], interval: Duration,
                      failures: int, what: str) -> list[Case]:
    """Cases of a `consecutive_failures` alert, sampled every `interval` and evaluated every fast interval.

    It fires once `failures` samples in a row are 0 (plus `for`), is silent one evaluation earlier, and a
    run one failure shorter (one failed scrape, for two) never fires at any evaluation around it.
    """
    step = fast_interval(ctx.model)
    lead = 3  # samples up before the failures start
    for_ = ctx.setting.for_
    # The first evaluation that sees the run: its window starts after the last good sample (Prometheus 2.x
    # ranges include their start, so an evaluation exactly one window after that sample still holds it).
    visible = _ceil((lead + failures - 1) * interval.ms + MARGIN_MS + 1, step)
    at = _ceil(visible.ms + for_.ms, step)
    n = at.ms // interval.ms + failures + 3
    down = " ".join(["1"] * lead + ["0"] * (n - lead))
    fires = Case(f"{d.name} fires after {failures} {what} in a row", tuple(S.Series(metric, tuple(lb.items()), down) for lb in labels),
                 tuple(Expected(dict(lb), 0) for lb in labels), at, interval=interval,
                 silent_at=(Duration(visible.ms - step.ms),) if for_.ms == 0 else ())
    short = ["1"] * lead + ["0"] * (failures - 1) + ["1"] * (n - lead - failures + 1)
    first, last = lead * interval.ms, (lead + failures + 2) * interval.ms
    times = tuple(Duration(t) for t in range(_ceil(first, step).ms, last + 1, step.ms))
    blip = Case(f"{d.name} stays silent at every evaluation around a run one short of {failures} {what}",
                tuple(S.Series(metric, tuple(lb.items()), " ".join(short)) for lb in labels), (), times[-1], interval=interval,
                silent_at=times[:-1])
    steady = Case(f"{d.name} stays silent while every sample succeeds",
                  tuple(S.Series(metric, tuple(lb.items()), " ".join(["1"] * n)) for lb in labels), (), at, interval=interval)
    if for_.ms == 0:
        return [fires, blip, steady]
    # With a `for` (still_failing): firing, then no sample for longer than the window, as across a Prometheus
    # restart; at an evaluation whose window holds no sample it is still firing.
    last = -(-at.ms // interval.ms)  # the last sample before the gap, at or after the alert fired
    gap = failures + 2
    inside = _ceil(last * interval.ms + failures * interval.ms + MARGIN_MS + 1, step)
    assert inside.ms < (last + gap + 1) * interval.ms, "no evaluation falls inside the gap"
    held = " ".join(["1"] * lead + ["0"] * (last + 1 - lead) + ["_"] * gap + ["0"] * 3)
    through = Case(f"{d.name} stays firing through a gap in the samples longer than its window (a Prometheus restart)",
                   tuple(S.Series(metric, tuple(lb.items()), held) for lb in labels), tuple(Expected(dict(lb), 0) for lb in labels),
                   inside, interval=interval)
    return [fires, blip, steady, through]


def minutes(d: Duration) -> int:
    return d.ms // 60_000


