"""PromQL from the inventory, measured before anything parses it (limits.MAX_PROMQL_*)."""
from __future__ import annotations

import re

from generator.inventory import limits

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.S)
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers: their = and != are not operators
_OPERATOR = re.compile(r"==|!=|>=|<=|[-+*/%^<>]|\b(?:and|or|unless|atan2)\b")


def problem(expr: str) -> str | None:
    """Why expr is too large to parse safely, or None."""
    if len(expr) > limits.MAX_PROMQL_LENGTH:
        return f"longer than {limits.MAX_PROMQL_LENGTH:,} characters ({len(expr):,}): record parts of it in rules of their own"
    text = _STRING.sub('""', expr)
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > limits.MAX_PROMQL_DEPTH:
        return f"nested deeper than {limits.MAX_PROMQL_DEPTH} brackets ({deepest})"
    operators = len(_OPERATOR.findall(_MATCHERS.sub("", text)))
    if operators > limits.MAX_PROMQL_OPERATORS:
        return f"more than {limits.MAX_PROMQL_OPERATORS} operators ({operators}): record parts of it in rules of their own"
    return None
