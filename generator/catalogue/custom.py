"""Custom (business) rules from the inventory, as AlertDefs: expressions, texts, test cases, checks.

Rule types and the choices behind their PromQL:
- threshold: the expression is recorded (names.custom_record) with the
  service's labels and the alert compares the record. Two kinds of tests:
  the alert's, fed the record, prove threshold, `for`, labels and texts; the
  expression's build input series for every metric it names (the service's
  target labels, the selector's matchers, the labels it groups on), find
  inputs on either side of the threshold with a small evaluator
  (catalogue/evaluate.py) and assert what Prometheus records from them. An
  expression that never crosses its threshold for any such input is an
  inventory error; one the evaluator does not model keeps the first kind only.
- absent: absent(metric{service=...}) for `for`.
- stalled: no increase over the window (`for` is the window; the rule itself
  has `for: 0s`), or no sample at all over it. Both only once Prometheus has
  scraped the service for a whole window (up ... offset window), so a fresh
  Prometheus, or a service added a minute ago, does not fire.
- ratio: sum(rate(numerator)) / sum(rate(denominator)) over the window, both
  scoped to the service; a numerator with no series yet counts as 0, not as
  "no data" (so "conversion < 10%" fires when no order was ever created).
- new_label_value: a label value present now and absent from the lookback
  window that ended NEW_VALUE_FIRING ago, so the alert fires for that long
  (past the notification group_wait) and then resolves. Only after the
  service has been scraped for lookback + NEW_VALUE_FIRING, or every value
  would be "new" on a fresh Prometheus.
- histogram_mean: sum(rate(x_sum)) / sum(rate(x_count)) over the window.
- increase: the events a counter counted over the window, summed per service (and `by`
  labels): increase() for series older than the window, and for a series that appeared within
  it (a labelled counter created at its first increment, e.g. a new error type at 1) its whole
  value, because increase() needs an earlier sample and misses that first event. New series
  count only once Prometheus has scraped the service for the window, or every series would
  look new on a fresh Prometheus.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import promql_parser

from generator import alerttext, lint, names, regex
from generator.catalogue import evaluate
from generator.catalogue import series as S
from generator.catalogue.core import (
    BY,
    BY_TEXT,
    AlertDef,
    Case,
    Ctx,
    Expected,
    aggregated,
    beyond,
    compares,
    eval_time,
    example_value,
    minutes,
    num,
    points,
    round_up_minutes,
    threshold_cases,
)
from generator.durations import Duration, parse_duration
from generator.lint import histogram_quantile_problems
from generator.promql import quote, sel
from generator.textsafety import literal

if TYPE_CHECKING:
    from generator.model import CustomRule, Service

NEW_VALUE_FIRING = "1h"  # how long a new label value keeps its alert firing; longer than any group_wait, short enough to read as "new"
NEW_VALUE_MAX_FOR = "30m"  # a new-value rule's `for` must leave it time to fire within NEW_VALUE_FIRING
NEEDS_SCRAPE = ("absent", "stalled", "ratio", "new_label_value", "histogram_mean", "increase")
OTHER = "monstack-other"

# --- selectors -----------------------------------------------------------------

_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)

    def scoped(self, service: str) -> "Selector":
        if any(label == names.SERVICE for label, _, _ in self.matchers):
            return self
        return Selector(self.name, ((names.SERVICE, "=", service),) + self.matchers)

    def text(self) -> str:
        inner = ", ".join(f"{label}{op}{quote(value)}" for label, op, value in self.matchers)
        return f"{self.name or ''}{{{inner}}}"

    def matches(self, metric: str, labels: dict[str, str]) -> bool:
        if self.name is not None and metric != self.name:
            return False
        for label, op, value in self.matchers:
            have = metric if label == "__name__" else labels.get(label, "")
            ok = {"=": have == value, "!=": have != value, "=~": bool(re.fullmatch(value, have)),
                  "!~": not re.fullmatch(value, have)}[op]
            if not ok:
                return False
        return True

    def example(self, base: dict[str, str]) -> tuple[str, dict[str, str]]:
        """A metric name and labels (starting from base) this selector matches; ValueError if none is found."""
        return next(iter(self.examples(base)))

    def examples(self, base: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """Every (metric, labels) this selector matches that monstack can spell: one per alternative metric name."""
        names_ = [self.name] if self.name else []
        labels = dict(base)
        for label, op, value in self.matchers:
            if label == "__name__":
                if op == "=":
                    names_ = [value]
                elif op == "=~" and not self.name:
                    names_ = [alt for alt in value.split("|") if re.fullmatch(value, alt) and re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", alt)]
                continue
            if op == "=":
                labels[label] = value
            elif op == "=~":
                labels[label] = example_value(value)
            elif op == "!=" and labels.get(label, "") == value or op == "!~" and re.fullmatch(value, labels.get(label, "")):
                labels[label] = OTHER
        found = [(m, labels) for m in names_ if self.matches(m, labels)]
        if not found:
            raise ValueError(f"cannot build a test series matching {self.text()}")
        return found


def parse_selector(text: str) -> Selector:
    node = promql_parser.parse(text)
    assert isinstance(node, promql_parser.VectorSelector), f"not a series selector: {text}"  # the model checks selectors first
    matchers = tuple((m.name, _OPS[str(m.op)], m.value) for m in node.matchers.matchers)
    return Selector(node.name, matchers)


def _outside(sel_: Selector, base: dict[str, str], other: Selector) -> tuple[str, dict[str, str]]:
    """A series sel_ matches and `other` does not; ValueError if monstack cannot find one."""
    for metric, labels in sel_.examples(base):
        if not other.matches(metric, labels):
            return metric, labels
        for label, _op, _value in other.matchers:
            if label in (names.SERVICE, "__name__"):
                continue
            for candidate in (OTHER, ""):
                changed = {k: v for k, v in {**labels, label: candidate}.items() if v != ""}
                if sel_.matches(metric, changed) and not other.matches(metric, changed):
                    return metric, changed
    raise ValueError(f"cannot build a series matching {sel_.text()} but not {other.text()}")


# --- expressions -----------------------------------------------------------------


def _mine(s: "Service") -> dict[str, str]:
    return {names.SERVICE: s.name}


def expr(s: "Service", r: "CustomRule", threshold: float | None) -> str:
    t = num(threshold) if threshold is not None else ""
    if r.type == "threshold":
        return f"{sel(names.custom_record(r.name), _mine(s))} {r.op} {t}"
    if r.type == "absent":
        return f"absent({sel(r.metric or '', _mine(s))})"
    if r.type == "stalled":
        window = r.for_
        m = sel(r.metric or "", _mine(s))
        return (f"(sum by ({BY_TEXT}) (increase({m}[{window}])) == 0 or absent_over_time({m}[{window}])) "
                f"and on () count({sel('up', {'job': names.service_job(s.name)})} offset {window})")
    if r.type == "ratio":
        n = parse_selector(r.numerator or "").scoped(s.name).text()
        d = parse_selector(r.denominator or "").scoped(s.name).text()
        rate_d = f"sum by ({BY_TEXT}) (rate({d}[{r.window}]))"
        return f"(sum by ({BY_TEXT}) (rate({n}[{r.window}])) or {rate_d} * 0) / {rate_d} {r.op} {t}"
    if r.type == "new_label_value":
        label = r.label or ""
        m = sel(r.metric or "", _mine(s), neq={label: ""})
        firing = parse_duration(NEW_VALUE_FIRING)
        scraped = Duration((r.lookback or firing).ms + firing.ms)
        return (f"count by ({BY_TEXT}, {label}) ({m}) unless on ({label}) count by ({label}) "
                f"(present_over_time({m}[{r.lookback}] offset {NEW_VALUE_FIRING})) "
                f"and on () count({sel('up', {'job': names.service_job(s.name)})} offset {scraped})")
    if r.type == "histogram_mean":
        m = r.metric or ""
        return (f"sum by ({BY_TEXT}) (rate({sel(m + '_sum', _mine(s))}[{r.window}])) / "
                f"sum by ({BY_TEXT}) (rate({sel(m + '_count', _mine(s))}[{r.window}])) {r.op} {t}")
    if r.type == "increase":
        return f"{counted(s, r)} > {t}"
    raise AssertionError(r.type)


def counted(s: "Service", r: "CustomRule") -> str:
    """Events an increase rule's counter counted over its window, first appearances included."""
    m = parse_selector(r.metric or "").scoped(s.name).text()
    w = r.window
    by = ", ".join((*BY, *r.by))
    scraped = f"count({sel('up', {'job': names.service_job(s.name)})} offset {w})"
    return f"sum by ({by}) (({m} unless {m} offset {w}) and on () {scraped} or increase({m}[{w}]))"


def measured(s: "Service", r: "CustomRule") -> str:
    """The value to look at first (runbook): the expression without its comparison."""
    e = expr(s, r, r.threshold)
    if r.type in ("threshold", "ratio", "histogram_mean", "increase"):
        return e.rsplit(f" {r.op} ", 1)[0]
    return e


def recording(s: "Service", r: "CustomRule", env: str) -> dict | None:
    """The recording rule of a threshold rule's expression, labelled like every recorded series of the service."""
    if r.type != "threshold":
        return None
    return {"record": names.custom_record(r.name), "expr": r.expr,
            "labels": {names.SERVICE: s.name, names.TEAM: s.team, names.ENV: env}}


# --- texts ---------------------------------------------------------------------------

UNITS = {"ratio": "ratio"}


def _texts(s: "Service", r: "CustomRule") -> tuple[str, str]:
    op, t = r.op or "", f"{r.threshold:g}" if r.threshold is not None else ""
    if r.type == "threshold":
        summary = f"{s.name}: {r.name} ({{{{ $value | humanize }}}} {op} {t})"
        description = f"The value of {literal(r.expr or '')} is {{{{ $value | humanize }}}} ({op} {t} for {r.for_})."
    elif r.type == "absent":
        summary = f"{s.name}: {r.metric} is missing"
        description = f"{s.name} has exported no {r.metric} series for {r.for_}."
    elif r.type == "stalled":
        summary = f"{s.name}: {r.metric} has not increased for {r.for_}"
        description = f"{r.metric} of {s.name} has not increased (or has not been exported) for {r.for_} while the service is scraped."
    elif r.type == "ratio":
        summary = f"{s.name}: {r.name} at {{{{ $value | humanizePercentage }}}}"
        description = (f"{literal(r.numerator or '')} / {literal(r.denominator or '')} of {s.name} over {r.window} is {{{{ $value | humanizePercentage }}}} "
                       f"({op} {t} for {r.for_}).")
    elif r.type == "new_label_value":
        summary = f"{s.name}: new {r.label} {{{{ $labels.{r.label} }}}} in {r.metric}"
        description = f"{r.metric} of {s.name} shows {r.label}={{{{ $labels.{r.label} }}}}, not seen in the {r.lookback} before."
    elif r.type == "increase":
        per = "".join(f" {{{{ $labels.{label} }}}}" for label in r.by)
        metric = literal(r.metric or "")  # a selector: its matchers' values are the user's text
        summary = f"{s.name}:{per} {metric} counted {{{{ $value | humanize }}}} in {r.window}"
        description = (f"{metric} of {s.name}{per} counted {{{{ $value | humanize }}}} events over the last {r.window} (alert above {t}); "
                       "a series that first appeared in that window counts from 0.")
    else:
        summary = f"{s.name}: mean {r.metric} {{{{ $value | humanize }}}}"
        description = f"The mean of {r.metric} for {s.name} over {r.window} is {{{{ $value | humanize }}}} ({op} {t} for {r.for_})."
    return r.summary or summary, r.description or description


_MEANING = {
    "threshold": "A custom expression crossed its threshold.",
    "absent": "A metric the service should export is missing: the service, its instrumentation or its scrape broke.",
    "stalled": "A counter that should keep growing stopped: the work it counts is not happening.",
    "ratio": "The ratio of two counters crossed its threshold.",
    "new_label_value": "A label value never seen before appeared (e.g. a new kind of error).",
    "histogram_mean": "The mean of a histogram crossed its threshold.",
    "increase": "A counter counted more events than allowed over its window (a counter's first appearance counts too).",
}


# --- test cases ------------------------------------------------------------------------


def _cases(r: "CustomRule"):
    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        s = ctx.s
        if r.type == "threshold":
            return threshold_cases(ctx, d, lambda v, n: ([S.gauge(names.custom_record(r.name), aggregated(ctx), v, n)], [aggregated(ctx)]),
                                   settle="0s")
        if r.type == "absent":
            at = eval_time("0s", r.for_)
            n = points(at)
            up = S.gauge("up", S.target(ctx.model, s), 1, n)
            return [
                Case(f"{r.name} fires when {r.metric} is missing", (up,), (Expected({names.SERVICE: s.name}, 1),), at),
                Case(f"{r.name} stays silent while {r.metric} is exported", (up, S.gauge(r.metric or "", S.target(ctx.model, s), 1, n)), (), at),
            ]
        if r.type == "stalled":
            return _stalled_cases(ctx, r)
        if r.type == "ratio":
            return threshold_cases(ctx, d, lambda v, n: (_ratio_series(ctx, r, v, n), [aggregated(ctx)]), settle=str(r.window))
        if r.type == "new_label_value":
            return _new_value_cases(ctx, r)
        if r.type == "histogram_mean":
            labels = S.target(ctx.model, s)
            return threshold_cases(ctx, d, lambda v, n: (S.histogram(r.metric or "", labels, 10, [], n, mean=v), [aggregated(ctx)]),
                                   settle=str(r.window))
        if r.type == "increase":
            return _increase_cases(ctx, d, r)
        raise AssertionError(r.type)

    return cases


# --- the expression of a threshold rule, on generated input ----------------------------------------

EXPR_TOLERANCE = 1e-9  # relative: float rounding between Prometheus and monstack's evaluator
# Input sizes the search tries, 1e-4 to 1e4 in round steps: test input a person can read.
_GRID = tuple(float(f"{m * 10 ** e:.6g}") for e in range(-4, 4) for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8)) + (1e4,)


@dataclass(frozen=True)
class Source:
    """One generated input: a series (or a histogram's buckets) whose size is the parameter the search varies."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    kind: str  # "counter" (per-second rate), "gauge" (value), "bucket" (a histogram whose every event is at or below the value)

    def inputs(self, p: float) -> list[evaluate.Input]:
        base = {**dict(self.labels), "__name__": self.metric}
        if self.kind == "bucket":
            return [evaluate.Input(evaluate.labels_of({**base, "le": S.le(p)}), True, BUCKET_RATE),
                    evaluate.Input(evaluate.labels_of({**base, "le": "+Inf"}), True, BUCKET_RATE)]
        return [evaluate.Input(evaluate.labels_of(base), self.kind == "counter", p)]

    def series(self, p: float, n: int) -> list[S.Series]:
        if self.kind == "bucket":
            return [S.counter(self.metric, {**dict(self.labels), "le": le}, BUCKET_RATE, n) for le in (S.le(p), "+Inf")]
        if self.kind == "counter":
            return [S.counter(self.metric, dict(self.labels), p, n)]
        return [S.gauge(self.metric, dict(self.labels), p, n)]


BUCKET_RATE = 10.0  # observations per second of a generated histogram


@dataclass(frozen=True)
class ExprCase:
    fires: bool
    sources: tuple[tuple[Source, float], ...]
    outputs: tuple[tuple[tuple[tuple[str, str], ...], float], ...]  # recorded labels and value
    at: Duration

    def series(self) -> list[S.Series]:
        n = self.at.ms // 60_000 + 5
        return [x for src, p in self.sources for x in src.series(p, n)]


def target_labels(s: "Service", env: str) -> dict[str, str]:
    """What the service's scrape attaches to every series (as generator/targets.py does)."""
    assert s.scrape is not None
    extra = dict(sorted(s.scrape.labels.items()))
    return {"job": names.service_job(s.name), "instance": s.scrape.targets[0], **extra,
            names.SERVICE: s.name, names.TEAM: s.team, names.ENV: env, names.KIND: s.kind}


def _sources(s: _Target, r: "CustomRule") -> list[Source]:
    expr_ = r.expr or ""
    grouping = {label: "monstack-test" for label in evaluate.grouping_labels(expr_)}
    base = {**grouping, **dict(s.labels)}
    found: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for vs, how in evaluate.selectors(expr_):
        if vs.matchers.or_matchers:
            raise evaluate.Unsupported("selectors with `or` matchers")
        selector = Selector(vs.name, tuple((m.name, _OPS[str(m.op)], m.value) for m in vs.matchers.matchers))
        metric, labels = selector.example(base)
        kind = "bucket" if how == "bucket" and metric.endswith("_bucket") else ("counter" if how != "gauge" else "gauge")
        labels = {k: v for k, v in labels.items() if k != "le"}
        key = (metric, tuple(sorted(labels.items())))
        if found.get(key) != "counter":
            found[key] = kind if kind != "gauge" or key not in found else found[key]
    if not found:
        raise evaluate.Unsupported("no series selector")
    return [Source(m, lb, kind) for (m, lb), kind in found.items()]


def _eval_time(expr_: str) -> Duration:
    longest = 0.0
    for vs, _ in evaluate.selectors(expr_):
        longest = max(longest, evaluate._secs(vs.offset))
    for node in lint.walk(promql_parser.parse(expr_)):
        if isinstance(node, promql_parser.MatrixSelector):
            longest = max(longest, node.range.total_seconds() + evaluate._secs(node.vector_selector.offset))
    return round_up_minutes(Duration(int(max(longest + 120, 600) * 1000)))


def _outputs(s: _Target, env: str, expr_: str, sources: list[Source], params: list[float], at: Duration):
    inputs = [i for src, p in zip(sources, params, strict=True) for i in src.inputs(p)]
    own = {names.SERVICE: s.name, names.TEAM: s.team, names.ENV: env}
    out = []
    for lb, v in evaluate.Evaluator(inputs, at.ms / 1000).vector(expr_):
        labels = {k: x for k, x in lb if k != "__name__"}
        out.append((tuple(sorted({**labels, **own}.items())), v))
    return out


def expression_cases(s: "Service", r: "CustomRule", env: str) -> tuple[ExprCase, ExprCase]:
    """A firing and a silent input for a threshold rule's expression; Unsupported or ValueError (why no input crosses)."""
    return _expression_cases(_Target(s.name, s.team, s.kind, tuple(target_labels(s, env).items())), r, env)


@dataclass(frozen=True)
class _Target:
    """What the search needs of a service, hashable: the model checks a rule and the test renderer tests it, one search."""

    name: str
    team: str
    kind: str
    labels: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=1024)
def _expression_cases(s: _Target, r: "CustomRule", env: str) -> tuple[ExprCase, ExprCase]:
    expr_, op, t = r.expr or "", r.op or ">", r.threshold or 0.0
    sources = _sources(s, r)
    at = _eval_time(expr_)
    # Sizes around 1, and around every number the expression states (its threshold, a 1e9 it divides by, time()).
    scales = {1.0} | {abs(x) for x in _numbers(expr_) + [t, at.ms / 1000] if x and math.isfinite(x)}
    trials: list[list[float]] = [[1.0] * len(sources)]
    for i, src in enumerate(sources):
        sizes = sorted({float(f"{g * k:.6g}") for g in _GRID for k in scales} | {0.0})
        values = sizes + ([-g for g in sizes if g] if src.kind == "gauge" else [])
        for g in values:
            if src.kind == "bucket" and g <= 0:
                continue
            trials.append([g if k == i else 1.0 for k in range(len(sources))])
        for j in range(i + 1, len(sources)):
            for g in _GRID:
                trials.append([g if k == i else 1 / g if k == j else 1.0 for k in range(len(sources))])
    fire: tuple[float, list[float], list] | None = None
    silent: tuple[float, list[float], list] | None = None
    returned = False
    for params in trials:
        outputs = _outputs(s, env, expr_, sources, params, at)
        if not outputs or not all(math.isfinite(v) for _, v in outputs):
            continue
        returned = True
        hits = [compares(v, op, t) for _, v in outputs]
        score = min(_score(v, t) for _, v in outputs)
        if any(hits) and (fire is None or score < fire[0]):
            fire = (score, params, outputs)
        if not any(hits) and (silent is None or score < silent[0]):
            silent = (score, params, outputs)
    if not returned:
        raise ValueError("returns no sample for the series it selects (check the label matching of its binary operations: "
                         "on/ignoring, group_left, and by() of both sides)")
    if fire is None or silent is None:
        side = "crosses" if fire is None else "stays on the safe side of"
        raise ValueError(f"never {side} its threshold ({op} {t:g}) for any input monstack can build: check the expression and the "
                         "threshold (a ratio cannot exceed 1, a count cannot be negative)")
    return tuple(ExprCase(fires, tuple(zip(sources, params, strict=True)), tuple(outputs), at)  # type: ignore[return-value]
                 for fires, (_, params, outputs) in ((True, fire), (False, silent)))


def _numbers(expr_: str) -> list[float]:
    return [float(n.val) for n in lint.walk(promql_parser.parse(expr_)) if isinstance(n, promql_parser.NumberLiteral)]


def _score(v: float, t: float) -> float:
    """How well a value shows a threshold: about 10% from it is best, closer than 2% (float noise, rounding) is poor."""
    margin = abs(v - t) / (abs(t) if t else 1.0)
    return abs(math.log10(max(margin, 1e-12) / 0.1)) + (100 if margin < 0.02 else 0)


def _ratio_series(ctx: Ctx, r: "CustomRule", v: float, n: int) -> list:
    base = S.target(ctx.model, ctx.s)
    num_sel = parse_selector(r.numerator or "").scoped(ctx.s.name)
    den_sel = parse_selector(r.denominator or "").scoped(ctx.s.name)
    n_metric, n_labels = num_sel.example(base)
    d_metric, d_labels = _outside(den_sel, base, num_sel)
    total = 10.0
    inside = den_sel.matches(n_metric, n_labels)
    other = total * (1 - v) if inside else total
    if other < 0:
        raise ValueError(f"{r.name}: the numerator is part of the denominator, so the ratio cannot exceed 1")
    return [S.counter(n_metric, n_labels, total * v, n), S.counter(d_metric, d_labels, other, n)]


def _increase_cases(ctx: Ctx, d: AlertDef, r: "CustomRule") -> list[Case]:
    s = ctx.s
    w = r.window or parse_duration("5m")
    threshold = r.threshold or 0.0
    at = eval_time(w, ctx.setting.for_)
    n = points(at)
    up = S.gauge("up", S.target(ctx.model, s), 1, n)
    selector = parse_selector(r.metric or "").scoped(s.name)
    by = {label: "monstack-test" for label in r.by}
    metric, labels = selector.example(S.target(ctx.model, s, **by))
    expected = {**aggregated(ctx), **{label: labels[label] for label in r.by}}
    over = beyond(threshold, ">", "count", True)
    under = beyond(threshold, ">", "count", False)
    per_second = over / w.seconds
    # The series appears once the scrape guard is satisfied and is checked while still younger than the window.
    appears = -(-w.ms // 60_000)
    seen_at = Duration((appears + minutes(round_up_minutes(ctx.setting.for_)) + 1) * 60_000)
    late = S.late(S.gauge(metric, labels, over, n - appears), appears)
    return [
        Case(f"{r.name} fires when a series of {metric} first appears at {over:g} (created at its first events)", (up, late),
             (Expected(expected, over),), seen_at),
        Case(f"{r.name} fires when {metric} counts {over:g} in {w}", (up, S.counter(metric, labels, per_second, n, start=7)),
             (Expected(expected, over),), at),
        Case(f"{r.name} stays silent at {under:g} in {w}", (up, S.counter(metric, labels, under / w.seconds, n, start=7)), (), at),
        Case(f"{r.name} stays silent on a fresh Prometheus (the counter is at {over:g} already)",
             (up, S.gauge(metric, labels, over, n)), (), Duration(w.ms - 60_000) if w.ms > 60_000 else w),
    ]


def _stalled_cases(ctx: Ctx, r: "CustomRule") -> list[Case]:
    s = ctx.s
    window = r.for_
    at = eval_time(window, Duration(0))
    n = points(at)
    up = S.gauge("up", S.target(ctx.model, s), 1, n)
    labels = S.target(ctx.model, s)
    flat = S.counter(r.metric or "", labels, 0, n, start=42)
    growing = S.counter(r.metric or "", labels, 1 / 600, n, start=42)  # one increment per ten minutes: slow but alive
    early = Duration(window.ms - 60_000)
    return [
        Case(f"{r.name} fires when {r.metric} stays flat for {window}", (up, flat), (Expected(aggregated(ctx), 0),), at),
        Case(f"{r.name} fires when {r.metric} is not exported at all for {window}", (up,), (Expected({names.SERVICE: s.name}, 1),), at),
        Case(f"{r.name} stays silent while {r.metric} grows, however slowly", (up, growing), (), at),
        Case(f"{r.name} stays silent during the first {window} of scraping (a fresh Prometheus)", (up, flat), (), early),
    ]


def _new_value_cases(ctx: Ctx, r: "CustomRule") -> list[Case]:
    s = ctx.s
    label = r.label or ""
    lookback = r.lookback or parse_duration("1d")
    firing = parse_duration(NEW_VALUE_FIRING)
    horizon = Duration(lookback.ms + firing.ms)
    # Day-long windows at one sample a minute cost promtool seconds per case; five minutes keep the same shape.
    step = 5 if horizon.ms >= 6 * 3_600_000 else 1
    step_ms = step * 60_000
    wait = -(-r.for_.ms // step_ms) + 2  # steps the new value exists before the check: `for`, plus two
    at = Duration((-(-horizon.ms // step_ms) + wait) * step_ms)
    n = at.ms // step_ms + 5

    def counter(value: str, missing: int = 0):
        c = S.counter(r.metric or "", S.target(ctx.model, s, **{label: value}), 0.1, n - missing, step=step * 60)
        return S.late(c, missing) if missing else c

    up = S.gauge("up", S.target(ctx.model, s), 1, n)
    appears = at.ms // step_ms - wait
    fresh_at = Duration((8 + wait) * step_ms)
    expected = Expected({**aggregated(ctx), label: "brand-new"}, 1)
    return [
        Case(f"{r.name} fires when {label}=brand-new appears", (up, counter("known"), counter("brand-new", appears)), (expected,), at, step),
        Case(f"{r.name} stays silent while only known values occur", (up, counter("known")), (), at, step),
        Case(f"{r.name} stays silent on a fresh Prometheus (no {lookback} of history yet)",
             (up, counter("known"), counter("brand-new", 8)), (), fresh_at, step),
    ]


# --- definitions ------------------------------------------------------------------------------

def definition(s: "Service", r: "CustomRule") -> AlertDef:
    """The AlertDef of one custom rule of one service."""
    summary, description = _texts(s, r)
    return AlertDef(
        name=r.name,
        kinds=(s.kind,),
        severity=r.severity,
        for_=str(r.for_) if r.type != "stalled" else "0s",
        threshold=r.threshold,
        unit="ratio" if r.type == "ratio" else "none",
        op=r.op or ">",
        summary=summary,
        description=description,
        expr=lambda c: expr(c.s, r, c.setting.threshold),
        query=lambda c: measured(c.s, r),
        cases=_cases(r),
        meaning=_MEANING[r.type],
        causes=(),
        problem=r.problem,
    )


# --- checks (the model reports these with the rule's path) --------------------------------------


def problems(s: "Service", r: "CustomRule", env: str = "production") -> list[tuple[str, str]]:
    """(field, message) for a rule monstack cannot render or test faithfully."""
    out: list[tuple[str, str]] = []
    known = sample_labels(r)
    for key in ("summary", "description"):
        text = getattr(r, key)
        if text and (why := alerttext.check(text, known)):
            out.append((key, why))
    if r.type == "new_label_value" and r.for_ >= parse_duration(NEW_VALUE_MAX_FOR):
        out.append(("for", f"must be under {NEW_VALUE_MAX_FOR}: a value counts as new for {NEW_VALUE_FIRING} only (got {r.for_})"))
    if r.type in NEEDS_SCRAPE and s.scrape is None:
        out.append(("type", f"a {r.type} rule reads the service's own series: the service needs scrape.targets"))
    if r.type == "threshold" and r.expr and _parses(r.expr):
        if why := _shape(r.expr):
            out.append(("expr", why))
        for why in histogram_quantile_problems(r.expr):
            out.append(("expr", why))
        if s.scrape is not None and not out:
            try:
                expression_cases(s, r, env)
            except evaluate.Unsupported:
                pass  # tested through its recorded value only (docs/inventory.md)
            except (ValueError, re.error) as exc:
                out.append(("expr", f"the expression {exc}"))
    if r.type == "increase" and r.window is not None and Duration(r.for_.ms + 60_000) >= r.window:
        out.append(("for", f"must be shorter than the window ({r.window}) by a minute at least: a burst counts for one window only "
                           f"(got {r.for_})"))
    if r.type == "increase" and s.scrape is not None and r.metric and _selectors(r.metric):
        try:
            sel_ = parse_selector(r.metric).scoped(s.name)
            if any(label == "__name__" and op != "=" for label, op, _ in sel_.matchers):
                out.append(("metric", "must select one counter by name"))
            else:
                sel_.example({label: "monstack-test" for label in r.by})
        except (ValueError, re.error) as exc:
            out.append(("metric", f"{exc}: use = matchers or simple alternatives (a|b) so tests can be generated"))
    if r.type == "ratio" and s.scrape is not None and r.numerator and r.denominator and _selectors(r.numerator, r.denominator):
        try:
            num_sel = parse_selector(r.numerator).scoped(s.name)
            den_sel = parse_selector(r.denominator).scoped(s.name)
            for key, sel_ in (("numerator", num_sel), ("denominator", den_sel)):
                if any(label == names.SERVICE and (op, value) != ("=", s.name) for label, op, value in sel_.matchers):
                    out.append((key, f"must not select another service's series: monstack scopes it to "
                                     f"{names.SERVICE}={quote(s.name)}; drop the {names.SERVICE} matcher"))
                    return out
                if any(label == "__name__" and op != "=" for label, op, _ in sel_.matchers):
                    out.append((key, "must select one metric name: rate() over several names fails with 'vector cannot contain "
                                     "metrics with the same labelset'; write a threshold rule that sums each metric instead"))
                    return out
            num_sel.example({})
            _outside(den_sel, {}, num_sel)
        except (ValueError, re.error) as exc:
            out.append(("numerator", f"{exc}: use = matchers or simple alternatives (a|b) so tests can be generated"))
    return out


def _shape(expr: str) -> str | None:
    """Why a threshold rule's expression cannot be recorded and alerted on, or None."""
    node = promql_parser.parse(expr)
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)):
        return "returns a range vector, which a rule cannot record: wrap it in a function such as rate(...) or max_over_time(...)"
    if isinstance(node, promql_parser.StringLiteral):
        return "returns a string: an alert needs a number per series"
    if not any(isinstance(n, promql_parser.VectorSelector) for n in lint.walk(node)):
        return "reads no series: a constant expression would always or never fire"
    if made := _makes_series(node):
        return (f"{made}() makes a series of its own when nothing matches, which the generated tests cannot tell from the "
                f"recorded value" + ("; for a missing metric use a rule of type absent" if made.startswith("absent") else ""))
    return None


def _makes_series(node: promql_parser.Expr) -> str | None:
    """The first function in node that returns a series without reading one (absent, absent_over_time, vector)."""
    return next((n.func.name for n in lint.walk(node)
                 if isinstance(n, promql_parser.Call) and n.func.name in ("absent", "absent_over_time", "vector")), None)


def sample_labels(r: "CustomRule") -> frozenset[str] | None:
    """The labels an alert of rule r carries before its rule labels ($labels in its texts); None when the expression decides."""
    if r.type == "absent":
        return frozenset({names.SERVICE})
    if r.type == "new_label_value":
        return frozenset(BY) | {r.label or ""}
    if r.type == "increase":
        return frozenset(BY) | set(r.by)
    if r.type != "threshold":
        return frozenset(BY)
    try:
        node = promql_parser.parse(r.expr or "")
    except (ValueError, TypeError):
        return None
    while True:
        if isinstance(node, promql_parser.ParenExpr):
            node = node.expr
        elif isinstance(node, promql_parser.BinaryExpr) and isinstance(node.rhs, promql_parser.NumberLiteral):
            node = node.lhs
        elif isinstance(node, promql_parser.BinaryExpr) and isinstance(node.lhs, promql_parser.NumberLiteral):
            node = node.rhs
        else:
            break
    if not isinstance(node, promql_parser.AggregateExpr):
        return None  # the series' own labels pass through: monstack cannot know them
    modifier = node.modifier
    if modifier is None:
        return frozenset(BY)
    if str(modifier.type).endswith("By"):
        return frozenset(BY) | set(modifier.labels)
    return None


def _parses(*exprs: str) -> bool:
    """Expressions that do not parse, or hold a regex Prometheus reads otherwise, are reported by the model already;
    skip the deeper checks."""
    try:
        for e in exprs:
            promql_parser.parse(e)
    except (ValueError, TypeError):
        return False
    return not any(regex.promql_problem(e) for e in exprs)


def _selectors(*exprs: str) -> bool:
    """Plain series selectors; anything else the model reports already."""
    return _parses(*exprs) and all(isinstance(promql_parser.parse(e), promql_parser.VectorSelector) for e in exprs)
