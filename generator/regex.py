"""Regular expressions from the inventory: the part both Prometheus (Go's RE2) and Python read alike.

Prometheus matches label values with RE2; monstack builds its test series with
Python's `re`. A pattern must mean the same to both, so constructs only one of
them has (lookaround, backreferences, possessive or atomic groups, POSIX
classes, verbose mode, \\Z) are refused with a reason, before promtool would.
`example` builds a short value a pattern fully matches, for test series.
"""
from __future__ import annotations

import functools
import importlib
import json
import re
import string
import warnings
from typing import Any

import promql_parser

# The parser Python's re compiles with: walked to find what RE2 lacks and to build examples (moved in Python 3.11).
try:
    P: Any = importlib.import_module("re._parser")
    C: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python 3.10
    P = importlib.import_module("sre_parse")
    C = importlib.import_module("sre_constants")

MAX_LENGTH = 1_000  # characters of one pattern
MAX_SIZE = 10_000  # characters a pattern's repeats may expand to (RE2 refuses large programs)
MAX_EXAMPLE = 64  # characters of a built example; longer ones are not worth a test series
_NOT_RE2 = {
    "ASSERT": "lookahead and lookbehind ((?=, (?!, (?<=, (?<!)",
    "ASSERT_NOT": "lookahead and lookbehind ((?=, (?!, (?<=, (?<!)",
    "GROUPREF": "backreferences (\\1, (?P=name))",
    "GROUPREF_EXISTS": "conditional groups ((?(1)...))",
    "ATOMIC_GROUP": "atomic groups ((?>...))",
    "POSSESSIVE_REPEAT": "possessive quantifiers (*+, ++, ?+)",
}
_POSIX = re.compile(r"\[:\^?[a-z]+:\]")


def problem(pattern: str, matches: str | None = None, misses: str | None = None) -> str | None:
    """None if Prometheus and Python both accept pattern and read it alike, else why not.

    matches/misses: what the generated tests need, a value the pattern fully matches (or one it does not), and the
    words for the alert that would not work without one.
    """
    why = _problem(pattern)
    if why is None and (matches or misses):
        for needed, matching in ((matches, True), (misses, False)):
            if not needed:
                continue
            try:
                example_value(pattern, matching)
            except (ValueError, re.error):
                return (f"{pattern!r} matches no value monstack can build" if matching else f"{pattern!r} matches every value") + f": {needed}"
    return why


@functools.lru_cache(maxsize=1024)  # a fleet's services share a few patterns (error statuses, mountpoints)
def _problem(pattern: str) -> str | None:
    if len(pattern) > MAX_LENGTH:
        return f"regular expression longer than {MAX_LENGTH} characters"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set": reported below in words
            parsed = P.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"invalid regular expression: {exc}"
    if parsed.state.flags & re.VERBOSE:
        return "verbose mode (?x) is not supported by Prometheus (RE2)"
    try:
        size = _size(parsed)
    except _Unsupported as exc:
        return f"{exc} not supported by Prometheus (RE2): rewrite the expression without them"
    if size > MAX_SIZE:
        return f"regular expression expands to over {MAX_SIZE:,} characters (nested repeats); Prometheus refuses such programs"
    if _POSIX.search(pattern):
        return "POSIX classes like [[:alpha:]] mean different things to Python and Prometheus: write [a-zA-Z] instead"
    try:
        promql_parser.parse(f"x{{y=~{json.dumps(pattern, ensure_ascii=False)}}}")
    except (ValueError, TypeError) as exc:
        return f"not a regular expression Prometheus accepts: {exc}"
    return None


class _Unsupported(Exception):
    pass


def _size(items) -> int:
    """Characters the pattern spans at most, unbounded repeats counted once; raises _Unsupported for non-RE2 constructs."""
    total = 0
    for op, av in items:
        name = str(op)
        if name in _NOT_RE2:
            raise _Unsupported(_NOT_RE2[name] + " are")
        if op == C.AT and av == C.AT_END_STRING:
            raise _Unsupported("\\Z is")
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            if lo > 1000 or (hi != C.MAXREPEAT and hi > 1000):
                raise _Unsupported("repeat counts above 1000 are")
            total += max(lo, 1 if hi == C.MAXREPEAT else hi) * _size(sub)
        elif op == C.SUBPATTERN:
            _, add, _, sub = av
            if add & re.VERBOSE:
                raise _Unsupported("verbose mode (?x) is")
            total += _size(sub)
        elif op == C.BRANCH:
            total += max(_size(b) for b in av[1])
        else:
            total += 1
    return total


# --- examples ---------------------------------------------------------------------------------

_MATCHING = ("500", "503", "failed", "error", "errors", "5xx", "timeout", "true", "1")
_NOT_MATCHING = ("200", "204", "ok", "success", "completed", "false", "0", "monstack-other", "#", "~ ~")
# Inventory text tried as a value is kept short: Python's backtracking matcher is exponential on some patterns.
_MAX_CANDIDATE = 16


def example_value(regex: str, matching: bool = True) -> str:
    """A label value that (does not) fully match regex, for test series; ValueError when none is found."""
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



_PRINTABLE = string.ascii_lowercase + string.digits + string.ascii_uppercase + "-_./: "


def example(pattern: str) -> str | None:
    """A short value pattern fully matches (checked with Python's re), or None when this simple search finds none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = re.compile(pattern)
            parsed = P.parse(pattern)
        if _size(parsed) > MAX_EXAMPLE:
            return None
        text = _build(parsed)
    except (re.error, _NoExample, _Unsupported, RecursionError, OverflowError):
        return None
    return text if text is not None and compiled.fullmatch(text) else None


class _NoExample(Exception):
    pass


def _build(items) -> str:
    out = []
    for op, av in items:
        if op == C.LITERAL:
            out.append(chr(av))
        elif op == C.NOT_LITERAL:
            out.append(next(c for c in _PRINTABLE if ord(c) != av))
        elif op == C.ANY:
            out.append("a")
        elif op == C.IN:
            out.append(_in(av))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, _, sub = av
            out.append(_build(sub) * lo)
        elif op == C.SUBPATTERN:
            out.append(_build(av[3]))
        elif op == C.BRANCH:
            out.append(_first(av[1]))
        elif op == C.AT:
            continue
        else:
            raise _NoExample(str(op))
    return "".join(out)


def _first(branches) -> str:
    for b in branches:
        try:
            return _build(b)
        except _NoExample:
            continue
    raise _NoExample("alternatives")


def _in(items) -> str:
    negate = bool(items) and items[0][0] == C.NEGATE
    for c in _PRINTABLE:
        if _in_class(items, c) != negate:
            return c
    raise _NoExample("character class")


_CATEGORIES = {
    C.CATEGORY_DIGIT: lambda c: c.isdigit(),
    C.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    C.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    C.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    C.CATEGORY_SPACE: lambda c: c.isspace(),
    C.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
}


def _in_class(items, c: str) -> bool:
    code = ord(c)
    for op, av in items:
        if op == C.LITERAL and av == code or op == C.RANGE and av[0] <= code <= av[1]:
            return True
        if op == C.CATEGORY and _CATEGORIES.get(av, lambda c: False)(c):
            return True
    return False


# --- regexes inside PromQL ----------------------------------------------------------------------


def in_promql(node) -> list[str]:
    """Every regex a parsed PromQL expression holds: =~ and !~ matchers, and label_replace's pattern."""
    found: list[str] = []
    kind = type(node).__name__
    if kind == "VectorSelector":
        found += [m.value for m in node.matchers.matchers if str(m.op) in ("MatchOp.Re", "MatchOp.NotRe")]
    if kind == "Call" and node.func.name == "label_replace" and len(node.args) == 5 and type(node.args[4]).__name__ == "StringLiteral":
        found.append(node.args[4].val)
    for attr in ("expr", "lhs", "rhs", "param", "args", "vector_selector"):
        child = getattr(node, attr, None)
        for c in child if isinstance(child, list) else [child] if child is not None else []:
            found += in_promql(c)
    return found


def promql_problem(expr: str) -> str | None:
    """Why a regex in a PromQL expression (that parses) would not work in Prometheus, or None."""
    try:
        node = promql_parser.parse(expr)
    except (ValueError, TypeError):
        return None  # reported as a parse error
    for pattern in in_promql(node):
        if why := _problem(pattern):
            return f"regex {pattern!r}: {why}"
    return None
