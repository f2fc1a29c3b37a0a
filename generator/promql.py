"""Small helpers to build PromQL text safely (quoting), shared by rules and dashboards."""
from __future__ import annotations

import json
from typing import Mapping


def quote(value: str) -> str:
    """A PromQL string literal (double-quoted, Go escapes; json.dumps matches for printable text)."""
    return json.dumps(value, ensure_ascii=False)


def matchers(eq: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
             neq: Mapping[str, str] | None = None, nregex: Mapping[str, str] | None = None) -> str:
    parts = [f"{k}={quote(v)}" for k, v in (eq or {}).items()]
    parts += [f"{k}=~{quote(v)}" for k, v in (regex or {}).items()]
    parts += [f"{k}!={quote(v)}" for k, v in (neq or {}).items()]
    parts += [f"{k}!~{quote(v)}" for k, v in (nregex or {}).items()]
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
