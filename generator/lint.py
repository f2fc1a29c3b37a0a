"""PromQL checks for the two classic bugs of hand-written rules, on the parsed AST (promql_parser).

1. histogram_quantile over raw buckets. Its argument must be the per-`le`
   rate of buckets: `sum by (le, ...) (rate(x_bucket[w]))` (or `without`
   anything but le), or a recorded series defined that way.
2. "Error rate" as a raw rate of failures. A series of failed requests (jobs)
   may only appear on the left of a division whose right side selects all
   requests (jobs).

The model rejects custom expressions that break rule 1; the test suite runs
both over every rendered rule and dashboard query.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterator, Mapping

import promql_parser as pp

RATE_FUNCS = ("rate", "irate", "increase")
SelectorTest = Callable[[pp.VectorSelector], bool]


def _strip(node):
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def children(node) -> Iterator:
    node_t = type(node)
    if node_t is pp.ParenExpr or node_t is pp.UnaryExpr:
        yield node.expr
    elif node_t is pp.BinaryExpr:
        yield node.lhs
        yield node.rhs
    elif node_t is pp.AggregateExpr:
        if node.param is not None:
            yield node.param
        yield node.expr
    elif node_t is pp.Call:
        yield from node.args
    elif node_t is pp.MatrixSelector:
        yield node.vector_selector
    elif node_t is pp.SubqueryExpr:
        yield node.expr


def walk(node) -> Iterator:
    yield node
    for c in children(node):
        yield from walk(c)


@functools.lru_cache(maxsize=4096)
def range_windows_ms(expr: str) -> tuple[int, ...]:
    """The range windows (`x[30s]`) of a PromQL expression that parses, in milliseconds."""
    return tuple(n.range // timedelta(milliseconds=1) for n in walk(pp.parse(expr)) if isinstance(n, pp.MatrixSelector))


def selectors(node) -> Iterator[pp.VectorSelector]:
    return (n for n in walk(node) if isinstance(n, pp.VectorSelector))


def selector_name(vs: pp.VectorSelector) -> str | None:
    if vs.name:
        return vs.name
    for m in vs.matchers.matchers:
        if m.name == "__name__" and str(m.op) == "MatchOp.Equal":
            return m.value
    return None


def matcher(vs: pp.VectorSelector, label: str) -> tuple[str, str] | None:
    """(op, value) of the selector's matcher on label, e.g. ("=~", "5..")."""
    ops = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
    for m in vs.matchers.matchers:
        if m.name == label:
            return ops[str(m.op)], m.value
    return None


# --- 1. histogram_quantile ------------------------------------------------------------------------


def _is_bucket_rate(node) -> bool:
    node = _strip(node)
    if isinstance(node, pp.Call) and node.func.name in RATE_FUNCS:
        arg = _strip(node.args[0])
        return isinstance(arg, pp.MatrixSelector) and (selector_name(arg.vector_selector) or "").endswith("_bucket")
    return False


def _keeps_le(agg: pp.AggregateExpr) -> bool:
    mod = agg.modifier
    if mod is None:
        return False
    if str(mod.type).endswith("Without"):
        return "le" not in mod.labels
    return "le" in mod.labels


def buckets_problem(node, recorded: Mapping[str, str] | None = None, _seen: tuple[str, ...] = ()) -> str | None:
    """None if node is a valid histogram_quantile argument, else what is wrong with it."""
    node = _strip(node)
    if isinstance(node, pp.AggregateExpr):
        if str(node.op) != "sum":
            return f"aggregates buckets with {node.op}, not sum"
        if not _keeps_le(node):
            return "does not keep the le label (sum by (le, ...))"
        inner = _strip(node.expr)
        if _is_bucket_rate(inner):
            return None
        if isinstance(inner, pp.VectorSelector):
            return _recorded_problem(inner, recorded, _seen, want_rate_only=True)
        return "sums something other than rate(..._bucket[...])"
    if isinstance(node, pp.VectorSelector):
        return _recorded_problem(node, recorded, _seen, want_rate_only=False)
    if _is_bucket_rate(node):
        return "rate of buckets without sum by (le, ...): one quantile per series and instance, not per service"
    return "is not sum by (le, ...) (rate(..._bucket[...]))"


def _recorded_problem(vs: pp.VectorSelector, recorded: Mapping[str, str] | None, seen: tuple[str, ...], want_rate_only: bool) -> str | None:
    name = selector_name(vs) or ""
    if ":" not in name:
        return f"raw buckets {name} without rate() and sum by (le)"
    if recorded is None or name not in recorded or name in seen:
        return f"recorded series {name} is not defined by a recording rule here"
    definition = pp.parse(recorded[name])
    if want_rate_only:
        return None if _is_bucket_rate(definition) else f"recorded series {name} is not a rate of buckets"
    why = buckets_problem(definition, recorded, seen + (name,))
    return None if why is None else f"recorded series {name}: {why}"


def histogram_quantile_problems(expr: str, recorded: Mapping[str, str] | None = None) -> list[str]:
    """Every misuse of histogram_quantile in expr, as messages; [] when fine."""
    out = []
    for node in walk(pp.parse(expr)):
        if isinstance(node, pp.Call) and node.func.name == "histogram_quantile":
            why = buckets_problem(node.args[1], recorded)
            if why:
                out.append(f"histogram_quantile argument {why}: write histogram_quantile(q, sum by (le) (rate(x_bucket[5m])))")
    return out


# --- 2. error rates are ratios -------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSeries:
    """How to tell a selector of failed events from a selector of all events, for one family of metrics."""

    is_errors: SelectorTest
    is_total: SelectorTest


def error_rate_problems(expr: str, families: list[ErrorSeries]) -> list[str]:
    """Selectors of failures that are not the numerator of a ratio over all events."""
    out: list[str] = []

    def visit(node, covered: frozenset[int]) -> None:
        node_t = type(node)
        if node_t is pp.BinaryExpr and str(node.op) == "/":
            rhs = list(selectors(node.rhs))
            newly = frozenset(i for i, f in enumerate(families) if any(f.is_total(vs) for vs in rhs))
            visit(node.lhs, covered | newly)
            visit(node.rhs, covered)
            return
        if node_t is pp.VectorSelector:
            for i, f in enumerate(families):
                if f.is_errors(node) and i not in covered:
                    out.append(f"{node} is a rate of failures, not a ratio: divide it by all requests")
            return
        for c in children(node):
            visit(c, covered)

    visit(pp.parse(expr), frozenset())
    return out
