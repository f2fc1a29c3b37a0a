r"""PromQL text from a promql_parser AST, with correct string escapes.

promql_parser's own str() prints string literals and matcher values without
escaping them (a regex `0\\.5` comes back as `0\.5`, which Prometheus
rejects), so the backtest prints expressions itself. `show(node, override)`
prints a tree, asking `override(node)` first at every node: returning text
replaces that subtree, None prints it as usual.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Callable

import promql_parser as P

from generator.durations import Duration
from generator.promql import quote

Override = Callable[[P.Expr], "str | None"]

_MATCH_OPS = ((P.MatchOp.Equal, "="), (P.MatchOp.NotEqual, "!="), (P.MatchOp.Re, "=~"), (P.MatchOp.NotRe, "!~"))


def match_op(m: P.Matcher) -> str:
    for op, text in _MATCH_OPS:  # MatchOp is not hashable
        if m.op == op:
            return text
    raise ValueError(f"unknown matcher operator {m.op}")


def label_matches(op: str, value: str, have: str) -> bool:
    """Whether a label value `have` satisfies the matcher `op value` (regexes are anchored, as in PromQL)."""
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    hit = re.fullmatch(value, have) is not None
    return hit if op == "=~" else not hit


def duration(d: dt.timedelta) -> str:
    ms = int(round(d / dt.timedelta(milliseconds=1)))
    return f"-{Duration(-ms)}" if ms < 0 else str(Duration(ms))


def range_of(n: P.MatrixSelector | P.SubqueryExpr) -> dt.timedelta:
    """The range of a range selector or of a subquery (PromQL requires one on both)."""
    # promql_parser's stub declares SubqueryExpr.range Optional, but its binding always sets it from the
    # parser's non-optional range.
    return n.range  # type: ignore[return-value]


def number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def matcher_text(name: str, op: str, value: str) -> str:
    return f"{name}{op}{quote(value)}"


def _matchers(vs: P.VectorSelector) -> str:
    ms = vs.matchers
    if ms.or_matchers:
        return " or ".join(", ".join(matcher_text(m.name, match_op(m), m.value) for m in group) for group in ms.or_matchers)
    return ", ".join(matcher_text(m.name, match_op(m), m.value) for m in ms.matchers)


def modifiers(offset: dt.timedelta | None, at: P.AtModifier | None) -> str:
    out = ""
    if offset:
        out += f" offset {duration(offset)}"
    if at is not None:
        out += f" {at}"  # "@ 1700000000.000", "@ start()", "@ end()"
    return out


def selector(vs: P.VectorSelector, extra: str = "", with_modifiers: bool = True) -> str:
    """name{matchers} (plus `extra` matcher text), then offset and @ unless with_modifiers is False."""
    inner = _matchers(vs)
    if extra:
        inner = f"{inner}, {extra}" if inner else extra
    text = f"{vs.name}" if vs.name and not inner else f"{vs.name or ''}{{{inner}}}"
    return text + (modifiers(vs.offset, vs.at) if with_modifiers else "")


def show(node: P.Expr, override: Override | None = None) -> str:
    def go(n: P.Expr) -> str:
        if override is not None:
            replaced = override(n)
            if replaced is not None:
                return replaced
        if isinstance(n, P.NumberLiteral):
            return number(n.val)
        if isinstance(n, P.StringLiteral):
            return quote(n.val)
        if isinstance(n, P.VectorSelector):
            return selector(n)
        if isinstance(n, P.MatrixSelector):
            vs = n.vector_selector
            return f"{selector(vs, with_modifiers=False)}[{duration(n.range)}]{modifiers(vs.offset, vs.at)}"
        if isinstance(n, P.SubqueryExpr):
            step = duration(n.step) if n.step else ""
            return f"{go(n.expr)}[{duration(range_of(n))}:{step}]{modifiers(n.offset, n.at)}"
        if isinstance(n, P.ParenExpr):
            return f"({go(n.expr)})"
        if isinstance(n, P.UnaryExpr):
            return f"-{go(n.expr)}"
        if isinstance(n, P.BinaryExpr):
            return f"{go(n.lhs)} {n.op}{binary_modifier(n)} {go(n.rhs)}"
        if isinstance(n, P.AggregateExpr):
            mod = f" {aggregate_modifier(n.modifier)}" if n.modifier is not None else ""
            param = f"{go(n.param)}, " if n.param is not None else ""
            return f"{n.op}{mod} ({param}{go(n.expr)})"
        if isinstance(n, P.Call):
            return f"{n.func.name}({', '.join(go(a) for a in n.args)})"
        raise TypeError(f"cannot print PromQL node {type(n).__name__}")

    return go(node)


def binary_modifier(n: P.BinaryExpr) -> str:
    m = n.modifier
    if m is None:
        return ""
    out = " bool" if m.return_bool else ""
    if m.matching is not None:
        kind = "on" if m.matching.type == P.LabelModifierType.Include else "ignoring"
        out += f" {kind} ({', '.join(m.matching.labels)})"
    if m.card == P.VectorMatchCardinality.ManyToOne:
        out += f" group_left ({', '.join(m.group_labels or [])})"
    elif m.card == P.VectorMatchCardinality.OneToMany:
        out += f" group_right ({', '.join(m.group_labels or [])})"
    return out


def aggregate_modifier(m: P.AggModifier) -> str:
    kind = "by" if m.type == P.AggModifierType.By else "without"
    return f"{kind} ({', '.join(m.labels)})"
