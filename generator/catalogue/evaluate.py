"""A small PromQL evaluator for generated test input: what an expression returns at one instant.

Custom `threshold` rules are arbitrary PromQL. To test the expression itself (not only the
value it records), monstack builds input series for the metrics it names and needs to know
what Prometheus will compute from them. The inputs are simple on purpose: a counter grows
linearly from 0 at time 0 (`rate` is its slope), a gauge is constant, sampled every minute;
over such data Prometheus' range functions have closed forms, as long as every range lies
within the data (the caller evaluates late enough).

What is evaluated: numbers, instant and range selectors (with offset), rate, irate, increase,
delta, deriv and the *_over_time functions of gauges, sum/avg/min/max/count/group by or
without, arithmetic, comparisons (filtering or bool), and/or/unless, on/ignoring,
group_left/group_right, histogram_quantile, abs, ceil, floor, round, sqrt, exp, ln, log2,
log10, clamp, clamp_min, clamp_max, scalar, vector, time. Anything else raises Unsupported and
the caller falls back to testing the recorded value only. The generated promtool test is the
judge: it compares what Prometheus records with what this module predicts.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import promql_parser as pp

from generator.lint import selector_name

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs, __name__ included for raw series
STEP = 60.0  # seconds between generated samples


class Unsupported(Exception):
    """The expression uses something this evaluator does not model."""


@dataclass(frozen=True)
class Input:
    """One generated series: a counter growing at `value` per second from 0 at time 0, or a constant gauge."""

    labels: Labels
    counter: bool
    value: float

    def at(self, t: float) -> float | None:
        if t < 0:
            return None
        return self.value * t if self.counter else self.value


Sample = tuple[Labels, float]
_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def labels_of(d: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in d.items() if v != ""))


def matches(vs: pp.VectorSelector, labels: Labels) -> bool:
    have = dict(labels)
    if vs.name and have.get("__name__") != vs.name:
        return False
    if vs.matchers.or_matchers:
        raise Unsupported("selectors with `or` matchers")
    for m in vs.matchers.matchers:
        op, value, got = _OPS[str(m.op)], m.value, have.get(m.name, "")
        ok = {"=": got == value, "!=": got != value, "=~": re.fullmatch(value, got) is not None,
              "!~": re.fullmatch(value, got) is None}[op]
        if not ok:
            return False
    return True


def _drop_name(labels: Labels) -> Labels:
    return tuple(kv for kv in labels if kv[0] != "__name__")


def _secs(td) -> float:
    return td.total_seconds() if td is not None else 0.0


_MATH: dict[str, Callable[[float], float]] = {
    "abs": abs, "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan, "exp": math.exp,
    "ln": lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log2": lambda v: math.log2(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log10": lambda v: math.log10(v) if v > 0 else (-math.inf if v == 0 else math.nan),
}


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _div,
    "%": lambda a, b: math.fmod(a, b) if b != 0 else math.nan, "^": lambda a, b: a ** b,
}
_CMP: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


class Evaluator:
    def __init__(self, inputs: list[Input], at: float):
        self.inputs = inputs
        self.t = at

    # --- entry ------------------------------------------------------------------------

    def vector(self, expr: str) -> list[Sample]:
        out = self.eval(pp.parse(expr))
        if isinstance(out, float):
            return [((), out)]
        return out

    def eval(self, node) -> list[Sample] | float:
        t = type(node)
        if t is pp.NumberLiteral:
            return float(node.val)
        if t is pp.ParenExpr:
            return self.eval(node.expr)
        if t is pp.UnaryExpr:
            inner = self.eval(node.expr)
            return -inner if isinstance(inner, float) else [(_drop_name(lb), -v) for lb, v in inner]
        if t is pp.VectorSelector:
            return self.select(node, self.t - _secs(node.offset))
        if t is pp.AggregateExpr:
            return self.aggregate(node)
        if t is pp.BinaryExpr:
            return self.binary(node)
        if t is pp.Call:
            return self.call(node)
        raise Unsupported(type(node).__name__)

    # --- selectors -------------------------------------------------------------------------

    def select(self, vs: pp.VectorSelector, at: float) -> list[Sample]:
        if vs.at is not None:
            raise Unsupported("@ modifier")
        out = []
        for i in self.inputs:
            value = i.at(at)
            if value is not None and matches(vs, i.labels):
                out.append((i.labels, value))
        return out

    def _range(self, node) -> tuple[list[Input], float]:
        if type(node) is not pp.MatrixSelector:
            raise Unsupported("a range function over something other than a range selector")
        vs = node.vector_selector
        if vs.at is not None:
            raise Unsupported("@ modifier")
        end = self.t - _secs(vs.offset)
        width = _secs(node.range)
        if end - width < 0:
            raise Unsupported("a range reaching before the generated data starts")
        return [i for i in self.inputs if matches(vs, i.labels)], width

    # --- functions ---------------------------------------------------------------------------

    def call(self, node: pp.Call) -> list[Sample] | float:
        name = node.func.name
        args = node.args
        if name == "time":
            return self.t
        if name in ("rate", "irate", "increase", "delta", "deriv"):
            series, width = self._range(args[0])
            out = []
            for i in series:
                if name in ("delta", "deriv") and i.counter:
                    raise Unsupported(f"{name} of a counter")
                slope = i.value if i.counter else 0.0
                out.append((_drop_name(i.labels), slope * width if name == "increase" else slope))
            return out
        if name.endswith("_over_time"):
            series, width = self._range(args[0])
            if any(i.counter for i in series):
                raise Unsupported(f"{name} of a counter")
            kinds = {"avg_over_time": 1, "min_over_time": 1, "max_over_time": 1, "last_over_time": 1, "present_over_time": 0}
            if name not in kinds:
                raise Unsupported(name)
            return [(_drop_name(i.labels), i.value if kinds[name] else 1.0) for i in series]
        if name == "histogram_quantile":
            q = self.eval(args[0])
            vec = self.eval(args[1])
            if not isinstance(q, float) or isinstance(vec, float):
                raise Unsupported("histogram_quantile arguments")
            return _histogram_quantile(q, vec)
        if name in _MATH:
            return self._each(args[0], _MATH[name])
        if name in ("clamp_min", "clamp_max", "clamp"):
            bounds: list[float] = []
            for a in args[1:]:
                b = self.eval(a)
                if not isinstance(b, float):
                    raise Unsupported(f"{name} bounds")
                bounds.append(b)
            lo = bounds[0] if name in ("clamp_min", "clamp") else -math.inf
            hi = bounds[-1] if name in ("clamp_max", "clamp") else math.inf
            return self._each(args[0], lambda v: max(lo, min(hi, v)))
        if name == "round" and len(args) == 1:
            return self._each(args[0], lambda v: float(math.floor(v + 0.5)))
        if name == "scalar":
            vec = self.eval(args[0])
            return vec if isinstance(vec, float) else (vec[0][1] if len(vec) == 1 else math.nan)
        if name == "vector":
            s = self.eval(args[0])
            if not isinstance(s, float):
                raise Unsupported("vector() of a vector")
            return [((), s)]
        raise Unsupported(f"function {name}")

    def _each(self, arg, f: Callable[[float], float]) -> list[Sample]:
        vec = self.eval(arg)
        if isinstance(vec, float):
            raise Unsupported("a function of a scalar")
        return [(_drop_name(lb), f(v)) for lb, v in vec]

    # --- aggregation -------------------------------------------------------------------------

    def aggregate(self, node: pp.AggregateExpr) -> list[Sample]:
        op = str(node.op)
        if node.param is not None or op not in ("sum", "avg", "min", "max", "count", "group"):
            raise Unsupported(f"aggregation {op}")
        vec = self.eval(node.expr)
        if isinstance(vec, float):
            raise Unsupported("aggregating a scalar")
        groups: dict[Labels, list[float]] = {}
        mod = node.modifier
        for lb, v in vec:
            d = dict(lb)
            if mod is None:
                key: Labels = ()
            elif str(mod.type).endswith("By"):
                key = labels_of({k: d.get(k, "") for k in mod.labels})
            else:
                key = labels_of({k: x for k, x in d.items() if k not in mod.labels and k != "__name__"})
            groups.setdefault(key, []).append(v)
        fold: dict[str, Callable[[list[float]], float]] = {
            "sum": lambda xs: sum(xs), "avg": lambda xs: sum(xs) / len(xs), "min": min, "max": max,
            "count": lambda xs: float(len(xs)), "group": lambda xs: 1.0}
        return [(k, fold[op](vs)) for k, vs in groups.items()]

    # --- binary operators ------------------------------------------------------------------------

    def binary(self, node: pp.BinaryExpr) -> list[Sample] | float:
        op = str(node.op).strip()
        mod = node.modifier
        return_bool = bool(mod and mod.return_bool)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if op in ("and", "or", "unless"):
            if isinstance(lhs, float) or isinstance(rhs, float):
                raise Unsupported("set operators need vectors")
            return self._set(op, lhs, rhs, mod)
        if isinstance(lhs, float) and isinstance(rhs, float):
            if op in _CMP:
                if not return_bool:
                    raise Unsupported("comparing scalars without bool")
                return 1.0 if _CMP[op](lhs, rhs) else 0.0
            return _ARITH[op](lhs, rhs)
        if isinstance(lhs, float) or isinstance(rhs, float):
            scalar_left = isinstance(lhs, float)
            vec = rhs if scalar_left else lhs
            s = lhs if scalar_left else rhs
            assert isinstance(vec, list) and isinstance(s, float)
            out = []
            for lb, v in vec:
                a, b = (s, v) if scalar_left else (v, s)
                if op in _CMP:
                    hit = _CMP[op](a, b)
                    if return_bool:
                        out.append((_drop_name(lb), 1.0 if hit else 0.0))
                    elif hit:
                        out.append((lb, v))
                else:
                    out.append((_drop_name(lb), _ARITH[op](a, b)))
            return out
        assert isinstance(lhs, list) and isinstance(rhs, list)
        return self._vector_op(op, lhs, rhs, mod, return_bool)

    @staticmethod
    def _signature(lb: Labels, mod) -> Labels:
        d = dict(_drop_name(lb))
        matching = mod.matching if mod is not None else None
        if matching is None:
            return labels_of(d)
        if str(matching.type).endswith("Include"):
            return labels_of({k: d.get(k, "") for k in matching.labels})
        return labels_of({k: v for k, v in d.items() if k not in matching.labels})

    def _set(self, op: str, lhs: list[Sample], rhs: list[Sample], mod) -> list[Sample]:
        right = {self._signature(lb, mod) for lb, _ in rhs}
        if op == "and":
            return [(lb, v) for lb, v in lhs if self._signature(lb, mod) in right]
        if op == "unless":
            return [(lb, v) for lb, v in lhs if self._signature(lb, mod) not in right]
        left = {self._signature(lb, mod) for lb, _ in lhs}
        return lhs + [(lb, v) for lb, v in rhs if self._signature(lb, mod) not in left]

    def _vector_op(self, op: str, lhs: list[Sample], rhs: list[Sample], mod, return_bool: bool) -> list[Sample]:
        card = str(mod.card) if mod is not None else "OneToOne"
        many_left = card.endswith("ManyToOne")
        many_right = card.endswith("OneToMany")
        one, many = (rhs, lhs) if not many_right else (lhs, rhs)
        index: dict[Labels, Sample] = {}
        for lb, v in one:
            sig = self._signature(lb, mod)
            if sig in index:
                raise Unsupported("many-to-many matching (Prometheus fails the rule)")
            index[sig] = (lb, v)
        if not (many_left or many_right):
            seen: set[Labels] = set()
            for lb, _ in lhs:
                sig = self._signature(lb, mod)
                if sig in seen and sig in index:
                    raise Unsupported("many-to-one matching without group_left (Prometheus fails the rule)")
                seen.add(sig)
        include = list(mod.group_labels) if mod is not None and mod.group_labels else []
        matching = mod.matching if mod is not None else None
        out = []
        for lb, v in many:
            match = index.get(self._signature(lb, mod))
            if match is None:
                continue
            other_lb, other_v = match
            a, b = (v, other_v) if not many_right else (other_v, v)
            d = dict(lb) if op in _CMP else dict(_drop_name(lb))
            if not (many_left or many_right) and matching is not None:
                # Prometheus' resultMetric: one-to-one keeps only the on() labels, or drops the ignoring() ones.
                if str(matching.type).endswith("Include"):
                    d = {k: x for k, x in d.items() if k in matching.labels}
                else:
                    d = {k: x for k, x in d.items() if k not in matching.labels}
            od = dict(other_lb)
            for k in include:
                d[k] = od.get(k, "")
            result_lb = labels_of(d)
            if op in _CMP:
                hit = _CMP[op](a, b)
                if return_bool:
                    out.append((_drop_name(result_lb), 1.0 if hit else 0.0))
                elif hit:
                    out.append((result_lb, a))
            else:
                out.append((result_lb, _ARITH[op](a, b)))
        return out


def _histogram_quantile(q: float, vec: list[Sample]) -> list[Sample]:
    """Prometheus' histogram_quantile (promql/quantile.go) over per-le samples."""
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for lb, v in vec:
        d = dict(_drop_name(lb))
        if "le" not in d:
            continue
        le = math.inf if d["le"] == "+Inf" else float(d["le"])
        groups.setdefault(labels_of({k: x for k, x in d.items() if k != "le"}), []).append((le, v))
    out = []
    for key, buckets in groups.items():
        buckets.sort()
        out.append((key, bucket_quantile(q, buckets)))
    return out


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not buckets or buckets[-1][0] != math.inf or len(buckets) < 2:
        return math.nan
    # Cumulative counts must not decrease (Prometheus repairs float noise the same way).
    fixed, top = [], -math.inf
    for le, c in buckets:
        top = max(top, c)
        fixed.append((le, top))
    observations = fixed[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, (_, c) in enumerate(fixed) if c >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, end, count = 0.0, fixed[b][0], fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * (rank / count)


def selectors(expr: str) -> list[tuple[pp.VectorSelector, str]]:
    """Every selector of expr with how it is read: "counter" (under rate/increase), "bucket" (under histogram_quantile), "gauge"."""
    out: list[tuple[pp.VectorSelector, str]] = []

    def visit(node, how: str) -> None:
        t = type(node)
        if t is pp.VectorSelector:
            out.append((node, how))
            return
        if t is pp.MatrixSelector:
            visit(node.vector_selector, how)
            return
        if t is pp.Call:
            name = node.func.name
            if name == "histogram_quantile":
                for a in node.args:
                    visit(a, "bucket")
                return
            if name in ("rate", "irate", "increase"):
                for a in node.args:
                    visit(a, "bucket" if how == "bucket" else "counter")
                return
            for a in node.args:
                visit(a, how)
            return
        for child in _children(node):
            visit(child, how)

    visit(pp.parse(expr), "gauge")
    return out


def _children(node):
    t = type(node)
    if t in (pp.ParenExpr, pp.UnaryExpr):
        return [node.expr]
    if t is pp.BinaryExpr:
        return [node.lhs, node.rhs]
    if t is pp.AggregateExpr:
        return [node.expr] + ([node.param] if node.param is not None else [])
    if t is pp.SubqueryExpr:
        raise Unsupported("subqueries")
    return []


def grouping_labels(expr: str) -> set[str]:
    """Labels an expression groups or matches on (by, on, group_left ...): generated series carry them so they flow through."""
    found: set[str] = set()

    def visit(node) -> None:
        t = type(node)
        if t is pp.AggregateExpr and node.modifier is not None and str(node.modifier.type).endswith("By"):
            found.update(node.modifier.labels)
        if t is pp.BinaryExpr and node.modifier is not None:
            if node.modifier.matching is not None and str(node.modifier.matching.type).endswith("Include"):
                found.update(node.modifier.matching.labels)
            found.update(node.modifier.group_labels or [])
        if t is pp.MatrixSelector:
            return
        if t is pp.Call:
            for a in node.args:
                visit(a)
            return
        for c in _children(node):
            visit(c)

    visit(pp.parse(expr))
    return found - {"le", "__name__"}


def name_of(vs: pp.VectorSelector) -> str | None:
    return selector_name(vs)
