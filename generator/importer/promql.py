"""PromQL as the importer reads it: a small term tree, linear normal form, and the user's own text split at its operators.

Terms make shapes comparable however they are spelled: `100 - x * 100 > 80`,
`(1 - x) * 100 > 80` and `x < 0.2` all become (x, "<", 0.2). Text splitting
keeps the user's expression verbatim where it is kept as a custom rule.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import promql_parser

CMP = ("==", "!=", ">", "<", ">=", "<=")
FLIP = {"==": "==", "!=": "!=", ">": "<", "<": ">", ">=": "<=", "<=": ">="}
_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Sel:
    name: Optional[str]
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value), sorted
    range: Optional[float] = None  # seconds, for a range selector
    offset: Optional[float] = None

    def matcher(self, label: str) -> Optional[tuple[str, str]]:
        return next(((op, v) for lb, op, v in self.matchers if lb == label), None)

    def without(self, *labels: str) -> "Sel":
        return Sel(self.name, tuple(m for m in self.matchers if m[0] not in labels), self.range, self.offset)


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Term", ...]


@dataclass(frozen=True)
class Agg:
    op: str
    mode: Optional[str]  # "by", "without" or None
    labels: tuple[str, ...]
    expr: "Term"
    param: Optional["Term"] = None


@dataclass(frozen=True)
class Bin:
    op: str
    lhs: "Term"
    rhs: "Term"
    bool_: bool = False
    matching: str = ""  # on (...) / ignoring (...) / group_left (...), as text


@dataclass(frozen=True)
class Other:
    text: str


Term = Union[Num, Sel, Call, Agg, Bin, Other]


def parse(text: str) -> Term:
    """The term of an expression; ValueError when it does not parse."""
    return _term(promql_parser.parse(text))


def _sel(node: Any, rng: Optional[float] = None) -> Sel:
    matchers = tuple(sorted((m.name, _MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers if m.name != "__name__"))
    offset = node.offset.total_seconds() if node.offset is not None else None
    return Sel(node.name, matchers, rng, offset)


def _fold(op: str, a: float, b: float) -> Optional[float]:
    ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b if b else math.nan, "^": lambda: a ** b}
    try:
        return ops[op]() if op in ops else None
    except (OverflowError, ZeroDivisionError):
        return None


def _term(node: Any) -> Term:
    kind = type(node).__name__
    if kind == "NumberLiteral":
        return Num(float(node.val))
    if kind == "ParenExpr":
        return _term(node.expr)
    if kind == "VectorSelector":
        return _sel(node)
    if kind == "MatrixSelector":
        return _sel(node.vector_selector, node.range.total_seconds())
    if kind == "UnaryExpr":
        inner = _term(node.expr)
        return Num(-inner.value) if isinstance(inner, Num) else Bin("*", Num(-1.0), inner)
    if kind == "Call":
        return Call(node.func.name, tuple(_term(a) for a in node.args))
    if kind == "AggregateExpr":
        mod = node.modifier
        mode = None if mod is None else ("without" if "Without" in str(mod.type) else "by")
        labels = tuple(sorted(mod.labels)) if mod is not None else ()
        param = _term(node.param) if node.param is not None else None
        return Agg(str(node.op), mode, labels, _term(node.expr), param)
    if kind == "BinaryExpr":
        op = str(node.op)
        lhs, rhs = _term(node.lhs), _term(node.rhs)
        mod = node.modifier
        bool_ = bool(mod and mod.return_bool)
        matching = str(mod) if mod is not None and (mod.matching is not None or "group" in str(mod)) else ""
        if isinstance(lhs, Num) and isinstance(rhs, Num) and op in ("+", "-", "*", "/", "^"):
            folded = _fold(op, lhs.value, rhs.value)
            if folded is not None:
                return Num(folded)
        return Bin(op, lhs, rhs, bool_, matching)
    return Other(str(node))


def selectors(t: Term) -> list[Sel]:
    if isinstance(t, Sel):
        return [t]
    if isinstance(t, Call):
        return [s for a in t.args for s in selectors(a)]
    if isinstance(t, Agg):
        return selectors(t.expr) + (selectors(t.param) if t.param is not None else [])
    if isinstance(t, Bin):
        return selectors(t.lhs) + selectors(t.rhs)
    return []


def linear(t: Term) -> tuple[Term, float, float]:
    """(core, a, b) with t == a * core + b, peeling constant arithmetic (and (T - A) / T into 1 - A / T)."""
    if isinstance(t, Bin) and not t.matching and not t.bool_:
        if t.op == "/" and isinstance(t.lhs, Bin) and t.lhs.op == "-" and not t.lhs.matching and t.lhs.lhs == t.rhs:
            return Bin("/", t.lhs.rhs, t.rhs), -1.0, 1.0
        if isinstance(t.rhs, Num):
            core, a, b = linear(t.lhs)
            v = t.rhs.value
            if t.op == "+":
                return core, a, b + v
            if t.op == "-":
                return core, a, b - v
            if t.op == "*":
                return core, a * v, b * v
            if t.op == "/" and v:
                return core, a / v, b / v
        if isinstance(t.lhs, Num):
            core, a, b = linear(t.rhs)
            v = t.lhs.value
            if t.op == "+":
                return core, a, b + v
            if t.op == "-":
                return core, -a, v - b
            if t.op == "*":
                return core, a * v, b * v
    return t, 1.0, 0.0


def clean(value: float) -> float | int:
    """Float noise from peeling (0.1 * 100) rounded away; whole numbers as int (they read better in YAML)."""
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def comparison(t: Term) -> Optional[tuple[Term, str, float]]:
    """`expr OP number` (either side) as (core, op, threshold) with the constant arithmetic solved; None for other shapes."""
    if not (isinstance(t, Bin) and t.op in CMP and not t.bool_ and not t.matching):
        return None
    if isinstance(t.rhs, Num):
        side, op, c = t.lhs, t.op, t.rhs.value
    elif isinstance(t.lhs, Num):
        side, op, c = t.rhs, FLIP[t.op], t.lhs.value
    else:
        return None
    core, a, b = linear(side)
    if a == 0:
        return None
    value = (c - b) / a
    return core, (FLIP[op] if a < 0 else op), clean(value)


# --- the user's text ------------------------------------------------------------------------


def _depth0(text: str) -> list[tuple[int, str]]:
    """Operators at nesting depth 0 (outside (), {}, [] and strings): (position, operator or keyword)."""
    out, depth, i, quote = [], 0, 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            two = text[i:i + 2]
            if two in (">=", "<=", "==", "!="):
                out.append((i, two))
                i += 2
                continue
            if ch in "<>":
                out.append((i, ch))
            m = re.match(r"(and|or|unless)\b", text[i:])
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_:")):
                out.append((i, m.group(1)))
                i += len(m.group(1))
                continue
        i += 1
    return out


def strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def split_threshold(text: str) -> Optional[tuple[str, str, float]]:
    """`EXPR OP NUMBER` in the user's own text: (EXPR as written, OP, NUMBER); `NUMBER OP EXPR` is turned round."""
    text = strip_parens(text)
    ops = [(i, op) for i, op in _depth0(text) if op in CMP]
    logic = [op for _, op in _depth0(text) if op in ("and", "or", "unless")]
    if not ops or logic:
        return None
    i, op = ops[-1]
    left, right = text[:i].strip(), text[i + len(op):].strip()
    for side, other, flipped in ((right, left, False), (left, right, True)):
        try:
            value = parse(side)
        except ValueError:
            continue
        if isinstance(value, Num) and not side.startswith("bool") and other:
            try:
                kept = parse(other)
            except ValueError:
                return None
            if isinstance(kept, Num) or (flipped and len(ops) > 1):
                return None
            return strip_parens(other), (FLIP[op] if flipped else op), value.value
    return None


def split_logic(text: str) -> Optional[tuple[str, str, str]]:
    """`A and|unless B` at the top: (A, the operator with its matching modifier, B) in the user's text."""
    text = strip_parens(text)
    found = [(i, op) for i, op in _depth0(text) if op in ("and", "or", "unless")]
    if not found:
        return None
    i, op = found[-1]  # left-associative: the last one is the top
    left, rest = text[:i].strip(), text[i + len(op):].strip()
    m = re.match(r"((?:on|ignoring)\s*\([^)]*\))?\s*", rest)
    modifier = (m.group(1) or "") if m else ""
    right = rest[m.end():] if m else rest
    return left, (f"{op} {modifier}".strip()), right


def rename_job(text: str, old: str, new: str) -> str:
    """The expression with job="old" (and != / regex alternatives equal to old) naming the renamed job."""
    if old == new:
        return text

    def sub(m: re.Match[str]) -> str:
        op, value = m.group(2), m.group(4)
        if op in ("=", "!="):
            return m.group(0) if value != old else f"{m.group(1)}{op}{m.group(3)}{new}{m.group(3)}"
        parts = [new if p == old else p for p in value.split("|")]
        return f"{m.group(1)}{op}{m.group(3)}{'|'.join(parts)}{m.group(3)}"

    return re.sub(r"(\bjob\s*)(=~|!~|!=|=)\s*([\"'])([^\"']*)\3", sub, text)
