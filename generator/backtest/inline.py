"""Recording rules inlined into the alert expressions that read them.

A backtest evaluates the working tree's rules against history recorded under
the rules that were deployed then: a recorded series the new rules define is
missing from that history, or was recorded by a different expression. So
every selector of a recorded series is replaced by the recording rule's own
expression (recursively), and the query Prometheus evaluates reads only raw
series. The alternative, evaluating the recording rules over the range and
backfilling them into a scratch TSDB (`promtool tsdb create-blocks-from
rules`), needs a second Prometheus reading both stores and a copy of the
range; inlining needs one query per alert.

Exactness:
- A recording rule writes, at each evaluation, its expression's result with
  __name__ set to the record and its own labels set over the result's. The
  inlined form is `label_replace(...)` of the expression for each of those, so
  the series carry the same labels as the recorded ones.
- The selector's label matchers must select the same series from the inlined
  expression as from the recorded one. A matcher on a label the rule sets is
  decided statically (the rule is dropped when it cannot match). A matcher on
  a label that passes through the expression unchanged (aggregated by it,
  matched on by binary operators, kept by functions) is pushed down into the
  expression's selectors, where a contradiction (service="a" and
  service="b") drops the whole rule statically: this is what keeps a query
  about one service from computing every service's recorded series. Any other
  matcher filters the inlined result with label_replace and `and on`.
- A record defined by several rules (one per service) becomes the `or` of
  the rules that can match.
- A range selector over a recorded series becomes a subquery at the
  recording group's interval.
- Timing: Prometheus evaluates a recording rule in its own group, up to one
  interval before an alert of another group reads it; the inlined expression
  is evaluated at the alert's own timestamp. Rules of one group (monstack's
  SLO groups) share the timestamp, so there the result is identical.
"""
from __future__ import annotations

import re
from typing import Sequence

import promql_parser as P

from generator import names
from generator.backtest.promql_text import duration, label_matches, match_op, matcher_text, modifiers, selector, show
from generator.backtest.rules import RecordingRule, RuleSet
from generator.durations import Duration
from generator.errors import UsageError
from generator.promql import quote

EMPTY = "(vector(1) < 0)"  # an instant vector with no series
FILTER_LABEL = names.BACKTEST_FILTER_LABEL  # scratch label of the generic filter; removed again
Matcher = tuple[str, str, str]  # (label, op, value)

# Functions whose output series keep the labels of their (first) vector or range-vector argument.
_KEEPS_LABELS = frozenset({
    "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "round", "clamp", "clamp_min", "clamp_max", "sgn",
    "sort", "sort_desc", "timestamp", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
    "tan", "tanh", "deg", "rad", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "changes", "resets", "holt_winters",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time", "mad_over_time",
    "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction", "histogram_stddev", "histogram_stdvar",
})
_LABEL_PRESERVING_AGGREGATIONS = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
_SCALAR_FUNCTIONS = frozenset({"scalar", "time", "pi"})


class CannotPush(Exception):
    """The matcher's label does not pass through this expression unchanged."""


def _is_scalar(n: P.Expr) -> bool:
    if isinstance(n, (P.NumberLiteral, P.StringLiteral)):
        return True
    if isinstance(n, (P.ParenExpr, P.UnaryExpr)):
        return _is_scalar(n.expr)
    if isinstance(n, P.BinaryExpr):
        return _is_scalar(n.lhs) and _is_scalar(n.rhs)
    if isinstance(n, P.Call):
        return n.func.name in _SCALAR_FUNCTIONS
    return False


def _contradicts(vs: P.VectorSelector, m: Matcher) -> bool:
    """True when no series can satisfy both the selector's own matchers and m (decided on equality matchers)."""
    label, op, value = m
    if label == "__name__" and vs.name:
        return not label_matches(op, value, vs.name)
    for own in vs.matchers.matchers:
        if own.name != label:
            continue
        own_op = match_op(own)
        if own_op == "=" and not label_matches(op, value, own.value):
            return True
        if op == "=" and not label_matches(own_op, own.value, value):
            return True
    return False


def _has(vs: P.VectorSelector, m: Matcher) -> bool:
    return any((own.name, match_op(own), own.value) == m for own in vs.matchers.matchers)


class _Empty(Exception):
    """The pushed-down matcher selects nothing from this subtree."""


def _labels(mod) -> set[str]:
    return set(mod.labels) if mod is not None else set()


def _push(n: P.Expr, m: Matcher) -> str:
    """n's text with matcher m applied to every series it reads, when that equals filtering n's output by m.

    Raises CannotPush when it does not, _Empty when the result is statically empty.
    """
    label = m[0]
    if isinstance(n, P.VectorSelector):
        if n.matchers.or_matchers:
            raise CannotPush
        if _contradicts(n, m):
            raise _Empty
        if _has(n, m):
            return selector(n)
        return selector(n, matcher_text(*m))
    if isinstance(n, P.MatrixSelector):
        vs = n.vector_selector
        if vs.matchers.or_matchers:
            raise CannotPush
        if _contradicts(vs, m):
            raise _Empty
        if _has(vs, m):
            return show(n)
        return f"{selector(vs, matcher_text(*m), with_modifiers=False)}[{duration(n.range)}]{modifiers(vs.offset, vs.at)}"
    if isinstance(n, P.ParenExpr):
        return f"({_push(n.expr, m)})"
    if isinstance(n, P.UnaryExpr):
        return f"-{_push(n.expr, m)}"
    if isinstance(n, P.SubqueryExpr):
        inner = _push(n.expr, m)
        return show(n, lambda x: inner if x is n.expr else None)
    if isinstance(n, P.Call):
        name = n.func.name
        if name in ("label_replace", "label_join"):
            if isinstance(n.args[1], P.StringLiteral) and n.args[1].val != label:
                first = _push(n.args[0], m)
                return show(n, lambda x: first if x is n.args[0] else None)
            raise CannotPush
        if name in _KEEPS_LABELS and not (name.startswith("histogram_") and label == "le"):
            targets = [a for a in n.args if not _is_scalar(a)]
            if len(targets) != 1:
                raise CannotPush
            pushed = _push(targets[0], m)
            return show(n, lambda x: pushed if x is targets[0] else None)
        raise CannotPush
    if isinstance(n, P.AggregateExpr):
        op = str(n.op)
        if op in _LABEL_PRESERVING_AGGREGATIONS:
            kept = True
        elif op == "count_values" and isinstance(n.param, P.StringLiteral) and n.param.val == label:
            raise CannotPush
        elif n.modifier is None:
            kept = False
        elif n.modifier.type == P.AggModifierType.By:
            kept = label in n.modifier.labels
        else:
            kept = label not in n.modifier.labels
        if not kept:
            # The aggregation removes the label: every output series has it empty.
            if label_matches(m[1], m[2], ""):
                return show(n)
            raise _Empty
        inner = _push(n.expr, m)
        return show(n, lambda x: inner if x is n.expr else None)
    if isinstance(n, P.BinaryExpr):
        return _push_binary(n, m)
    raise CannotPush


def _push_binary(n: P.BinaryExpr, m: Matcher) -> str:
    label = m[0]
    op = str(n.op)
    lhs_scalar, rhs_scalar = _is_scalar(n.lhs), _is_scalar(n.rhs)
    if lhs_scalar and rhs_scalar:
        raise CannotPush
    if lhs_scalar or rhs_scalar:
        side = n.rhs if lhs_scalar else n.lhs
        pushed = _push(side, m)
        return show(n, lambda x: pushed if x is side else None)
    mod = n.modifier
    matching = mod.matching if mod is not None else None
    if matching is None:
        in_signature = True
    elif matching.type == P.LabelModifierType.Include:
        in_signature = label in matching.labels
    else:
        in_signature = label not in matching.labels

    def both() -> str:
        left, right = _try(n.lhs, m), _try(n.rhs, m)
        if op == "or":
            if left is None and right is None:
                raise _Empty
            if left is None:
                return f"({right})"
            if right is None:
                return f"({left})"
        elif left is None or right is None:
            raise _Empty
        return show(n, lambda x: left if x is n.lhs else right if x is n.rhs else None)

    def lhs_only() -> str:
        left = _push(n.lhs, m)
        return show(n, lambda x: left if x is n.lhs else None)

    if op in ("and", "unless"):
        return both() if in_signature and op == "and" else lhs_only()
    if op == "or":
        if not in_signature:
            raise CannotPush
        return both()
    if mod is None or mod.card == P.VectorMatchCardinality.OneToOne:
        if in_signature:
            return both()
        # on() without the label, or ignoring() it: the result has the label empty.
        if label_matches(m[1], m[2], ""):
            return show(n)
        raise _Empty
    if in_signature:
        return both()
    if label in (mod.group_labels or []):
        raise CannotPush
    # group_left: the result's other labels come from the left side (group_right: from the right).
    if mod.card == P.VectorMatchCardinality.ManyToOne:
        return lhs_only()
    right = _push(n.rhs, m)
    return show(n, lambda x: right if x is n.rhs else None)


def _try(n: P.Expr, m: Matcher) -> str | None:
    try:
        return _push(n, m)
    except _Empty:
        return None


def filter_labels(text: str, matchers: Sequence[Matcher]) -> str:
    """Keep the series of `text` whose labels satisfy every matcher, in PromQL (for what cannot be pushed down)."""
    for label, op, value in matchers:
        regex = re.escape(value) if op in ("=", "!=") else value
        keep = "and" if op in ("=", "=~") else "unless"
        marked = f"label_replace({text}, {quote(FILTER_LABEL)}, \"1\", {quote(label)}, {quote(regex)})"
        one = f"label_replace(vector(1), {quote(FILTER_LABEL)}, \"1\", \"\", \"\")"
        text = f"label_replace({marked} {keep} on ({FILTER_LABEL}) {one}, {quote(FILTER_LABEL)}, \"\", \"\", \"\")"
    return text


class Inliner:
    """Inlines a rule set's recording rules into expressions; see the module docstring."""

    def __init__(self, rules: RuleSet):
        self.rules = rules

    def inline(self, expr: str) -> str:
        """The expression with every recorded series it reads replaced by its recording; unchanged text when it reads none."""
        node = P.parse(expr)
        if not self._reads_records(node):
            return expr
        return self._inline(node, ())

    def _reads_records(self, node: P.Expr) -> bool:
        found = []

        def visit(n):
            vs = n.vector_selector if isinstance(n, P.MatrixSelector) else n
            if isinstance(vs, P.VectorSelector) and self._record_name(vs) in self.rules.recording:
                found.append(vs)
                return False
            return True

        P.walk(node, pre_visit=visit)
        return bool(found)

    @staticmethod
    def _record_name(vs: P.VectorSelector) -> str | None:
        if vs.name:
            return vs.name
        for m in vs.matchers.matchers:
            if m.name == "__name__" and match_op(m) == "=":
                return m.value
        return None

    def _inline(self, node: P.Expr, stack: tuple[str, ...]) -> str:
        def override(n: P.Expr) -> str | None:
            if isinstance(n, P.VectorSelector):
                name = self._record_name(n)
                if name is not None and name in self.rules.recording:
                    return self._reference(n, name, stack)
            if isinstance(n, P.MatrixSelector):
                vs = n.vector_selector
                name = self._record_name(vs)
                if name is not None and name in self.rules.recording:
                    if vs.offset or vs.at is not None:
                        raise UsageError(f"backtest cannot inline {show(n)}: offset and @ on a recorded series are not supported")
                    plain = P.parse(selector(vs, with_modifiers=False))
                    assert isinstance(plain, P.VectorSelector), "a selector's text parses back to a selector"
                    inner = self._reference(plain, name, stack)
                    step = min(r.interval for r in self.rules.recording[name])
                    return f"{inner}[{duration(n.range)}:{Duration(int(step * 1000))}]"
            return None

        return show(node, override)

    def _reference(self, vs: P.VectorSelector, name: str, stack: tuple[str, ...]) -> str:
        if name in stack:
            raise UsageError(f"recording rules refer to each other in a cycle: {' -> '.join(stack + (name,))}")
        if vs.offset or vs.at is not None or vs.matchers.or_matchers:
            raise UsageError(f"backtest cannot inline {show(vs)}: offset, @ and `or` matchers on a recorded series are not supported")
        matchers = [(m.name, match_op(m), m.value) for m in vs.matchers.matchers if m.name != "__name__"]
        parts = [p for p in (self._one(r, matchers, stack + (name,)) for r in self.rules.recording[name]) if p is not None]
        if not parts:
            return EMPTY
        return f"({' or '.join(parts)})" if len(parts) > 1 else f"({parts[0]})"

    def _one(self, r: RecordingRule, matchers: list[Matcher], stack: tuple[str, ...]) -> str | None:
        """The rule's expression, inlined, restricted to `matchers`, labelled as its recorded series; None if it cannot match."""
        rest = []
        for label, op, value in matchers:
            if label in r.labels:
                if not label_matches(op, value, r.labels[label]):
                    return None
            else:
                rest.append((label, op, value))
        text = r.expr
        unpushed = []
        for m in rest:
            try:
                text = _push(P.parse(text), m)
            except _Empty:
                return None
            except CannotPush:
                unpushed.append(m)
        text = self._inline(P.parse(text), stack)
        for label, value in sorted(r.labels.items()):
            text = f"label_replace({text}, {quote(label)}, {quote(value)}, \"\", \"\")"
        text = f"label_replace({text}, \"__name__\", {quote(r.record)}, \"\", \"\")"
        return filter_labels(text, unpushed) if unpushed else text
