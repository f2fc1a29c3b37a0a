"""Custom (business) rules from the inventory, as AlertDefs: expressions, texts, test cases, checks.

Rule types and the choices behind their PromQL:
- threshold: the expression is recorded (names.custom_record) with the
  service's labels and the alert compares the record. Tests feed the record:
  they prove threshold, `for` and labels; the expression itself is only
  parsed (and linted) because monstack cannot invent inputs for arbitrary
  PromQL.
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
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import promql_parser

from generator import alerttext, names
from generator.catalogue import series as S
from generator.catalogue.core import BY, BY_TEXT, AlertDef, Case, Ctx, Expected, eval_time, example_value, num, points, threshold_cases
from generator.durations import Duration, parse_duration
from generator.lint import histogram_quantile_problems
from generator.promql import quote, sel
from generator.textsafety import literal

if TYPE_CHECKING:
    from generator.model import AlertSetting, CustomRule, Service

NEW_VALUE_FIRING = "1h"  # how long a new label value keeps its alert firing; longer than any group_wait, short enough to read as "new"
NEW_VALUE_MAX_FOR = "30m"  # a new-value rule's `for` must leave it time to fire within NEW_VALUE_FIRING
NEEDS_SCRAPE = ("absent", "stalled", "ratio", "new_label_value", "histogram_mean")
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
            elif op == "!=" and labels.get(label, "") == value:
                labels[label] = OTHER
            elif op == "!~" and re.fullmatch(value, labels.get(label, "")):
                labels[label] = OTHER
        found = [(m, labels) for m in names_ if self.matches(m, labels)]
        if not found:
            raise ValueError(f"cannot build a test series matching {self.text()}")
        return found


def parse_selector(text: str) -> Selector:
    node = promql_parser.parse(text)
    matchers = tuple((m.name, _OPS[str(m.op)], m.value) for m in node.matchers.matchers)
    return Selector(node.name, matchers)


def _outside(sel_: Selector, base: dict[str, str], other: Selector) -> tuple[str, dict[str, str]]:
    """A series sel_ matches and `other` does not; ValueError if monstack cannot find one."""
    for metric, labels in sel_.examples(base):
        if not other.matches(metric, labels):
            return metric, labels
        for label, op, value in other.matchers:
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
    raise AssertionError(r.type)


def measured(s: "Service", r: "CustomRule") -> str:
    """The value to look at first (runbook): the expression without its comparison."""
    e = expr(s, r, r.threshold)
    if r.type in ("threshold", "ratio", "histogram_mean"):
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
}


# --- test cases ------------------------------------------------------------------------


def _aggregated(ctx: Ctx) -> dict[str, str]:
    return {names.SERVICE: ctx.s.name, names.TEAM: ctx.s.team, names.ENV: ctx.env}


def _cases(r: "CustomRule"):
    def cases(ctx: Ctx) -> list[Case]:
        d = ctx_def(ctx)
        s = ctx.s
        if r.type == "threshold":
            return threshold_cases(ctx, d, lambda v, n: ([S.gauge(names.custom_record(r.name), _aggregated(ctx), v, n)], [_aggregated(ctx)]),
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
            return threshold_cases(ctx, d, lambda v, n: (_ratio_series(ctx, r, v, n), [_aggregated(ctx)]), settle=str(r.window))
        if r.type == "new_label_value":
            return _new_value_cases(ctx, r)
        if r.type == "histogram_mean":
            labels = S.target(ctx.model, s)
            return threshold_cases(ctx, d, lambda v, n: (S.histogram(r.metric or "", labels, 10, [], n, mean=v), [_aggregated(ctx)]),
                                   settle=str(r.window))
        raise AssertionError(r.type)

    return cases


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
        Case(f"{r.name} fires when {r.metric} stays flat for {window}", (up, flat), (Expected(_aggregated(ctx), 0),), at),
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
    expected = Expected({**_aggregated(ctx), label: "brand-new"}, 1)
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
        expr=lambda c, r=r: expr(c.s, r, c.setting.threshold),
        query=lambda c, r=r: measured(c.s, r),
        cases=_cases(r),
        meaning=_MEANING[r.type],
        causes=(),
        problem=r.problem,
    )


def ctx_def(ctx: Ctx) -> AlertDef:
    return definition(ctx.s, next(r for r in ctx.s.rules if r.name == ctx.setting.name))


def setting(r: "CustomRule") -> "AlertSetting":
    from generator.model import AlertSetting

    return AlertSetting(name=r.name, severity=r.severity, threshold=r.threshold, for_=r.for_ if r.type != "stalled" else Duration(0))


# --- checks (the model reports these with the rule's path) --------------------------------------


def problems(s: "Service", r: "CustomRule") -> list[tuple[str, str]]:
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
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    kind = type(node).__name__
    if kind in ("MatrixSelector", "SubqueryExpr"):
        return "returns a range vector, which a rule cannot record: wrap it in a function such as rate(...) or max_over_time(...)"
    if kind == "StringLiteral":
        return "returns a string: an alert needs a number per series"
    if not _reads_series(node):
        return "reads no series: a constant expression would always or never fire"
    if made := _makes_series(node):
        return (f"{made}() makes a series of its own when nothing matches, which the generated tests cannot tell from the "
                f"recorded value" + ("; for a missing metric use a rule of type absent" if made.startswith("absent") else ""))
    return None


def _children(node) -> list:
    out = []
    for attr in ("expr", "lhs", "rhs", "param", "args", "vector_selector"):
        child = getattr(node, attr, None)
        out += child if isinstance(child, list) else [child] if child is not None else []
    return out


def _reads_series(node) -> bool:
    return type(node).__name__ == "VectorSelector" or any(_reads_series(c) for c in _children(node))


def _makes_series(node) -> str | None:
    """The first function in node that returns a series without reading one (absent, absent_over_time, vector)."""
    if type(node).__name__ == "Call" and node.func.name in ("absent", "absent_over_time", "vector"):
        return node.func.name
    return next((made for c in _children(node) if (made := _makes_series(c))), None)


def _selectors(*exprs: str) -> bool:
    """Numerators and denominators that are not plain selectors are reported by the model already."""
    try:
        return all(type(promql_parser.parse(e)).__name__ == "VectorSelector" for e in exprs)
    except (ValueError, TypeError):
        return False


def sample_labels(r: "CustomRule") -> frozenset[str] | None:
    """The labels an alert of rule r carries before its rule labels ($labels in its texts); None when the expression decides."""
    if r.type == "absent":
        return frozenset({names.SERVICE})
    if r.type == "new_label_value":
        return frozenset(BY) | {r.label or ""}
    if r.type != "threshold":
        return frozenset(BY)
    try:
        node = promql_parser.parse(r.expr or "")
    except (ValueError, TypeError):
        return None
    while True:
        kind = type(node).__name__
        if kind == "ParenExpr":
            node = node.expr
        elif kind == "BinaryExpr" and type(node.rhs).__name__ == "NumberLiteral":
            node = node.lhs
        elif kind == "BinaryExpr" and type(node.lhs).__name__ == "NumberLiteral":
            node = node.rhs
        else:
            break
    if type(node).__name__ != "AggregateExpr":
        return None  # the series' own labels pass through: monstack cannot know them
    modifier = node.modifier
    if modifier is None:
        return frozenset(BY)
    if str(modifier.type).endswith("By"):
        return frozenset(BY) | set(modifier.labels)
    return None


def _parses(*exprs: str) -> bool:
    """Expressions that do not parse are reported by the model already; skip the deeper checks."""
    try:
        for e in exprs:
            promql_parser.parse(e)
    except (ValueError, TypeError):
        return False
    return True
