"""Small helpers to build PromQL text safely (quoting), shared by rules and dashboards."""
from __future__ import annotations

import functools
import json
import re
from typing import Mapping

# Text json.dumps would return unchanged between the quotes: most label values. Quoting is the
# generator's most frequent call (hundreds of thousands at fleet scale), so these skip the encoder.
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*\Z')


@functools.lru_cache(maxsize=1 << 16)  # service names and label values, quoted again for every rule that selects them
def quote(value: str) -> str:
    """A PromQL string literal (double-quoted, Go escapes; json.dumps matches for printable text)."""
    if _PLAIN.match(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def matchers(eq: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
             neq: Mapping[str, str] | None = None, nregex: Mapping[str, str] | None = None) -> str:
    parts = [f"{k}={quote(v)}" for k, v in eq.items()] if eq else []
    if regex:
        parts += [f"{k}=~{quote(v)}" for k, v in regex.items()]
    if neq:
        parts += [f"{k}!={quote(v)}" for k, v in neq.items()]
    if nregex:
        parts += [f"{k}!~{quote(v)}" for k, v in nregex.items()]
    return ", ".join(parts)


def sel(metric: str, eq: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
        neq: Mapping[str, str] | None = None, nregex: Mapping[str, str] | None = None) -> str:
    inner = matchers(eq, regex, neq, nregex)
    return f"{metric}{{{inner}}}" if inner else metric


def num(value: float) -> str:
    """A number as PromQL and promtool read it: integers without .0, otherwise the shortest exact spelling."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
