"""The part of Prometheus' alert templating that monstack's annotations use, done in Python.

promtool compares annotations exactly, so a generated rule test must know
what Prometheus will print. Annotations may use `{{ $labels.NAME }}`,
`{{ $value }}` and `{{ $value | FUNC }}` with FUNC one of humanize,
humanize1024, humanizePercentage, humanizeDuration; `check` rejects anything
else with a message naming what is allowed. The humanize functions follow
Prometheus 2.x (template/template.go); tests/test_alerttext.py holds them
against promtool itself.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Mapping

FUNCS = ("humanize", "humanize1024", "humanizePercentage", "humanizeDuration")
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_LABEL = re.compile(r"^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$")
_VALUE = re.compile(r"^\$value(?:\s*\|\s*([A-Za-z0-9]+))?$")
_SPACE = " \t\r\n"  # what Go's trim markers remove
_LITERAL_OPEN = '"{{"'  # {{ "{{" }} prints a literal {{ (generator/textsafety.py writes it)
ALLOWED = "{{ $labels.NAME }}, {{ $value }} and {{ $value | humanize }} (or humanize1024, humanizePercentage, humanizeDuration)"


def check(text: str, labels: frozenset[str] | None = None) -> str | None:
    """None if every template action in text is one monstack can render, else why not.

    labels: the labels the alert carries, when known; `$labels.X` of another label would always print nothing.
    """
    for m in _ACTION.finditer(text):
        action = m.group(1)
        whole = m.group(0)
        if whole.startswith("{{-") and whole[3:4] not in _SPACE or whole.endswith("-}}") and whole[-4:-3] not in _SPACE:
            return f"a trim marker needs a space: write {{{{- ... -}}}}, not {whole!r}"
        if action == _LITERAL_OPEN:
            continue
        if lm := _LABEL.match(action):
            if labels is not None and lm.group(1) not in labels:
                return (f"{m.group(0)!r}: this alert has no label {lm.group(1)!r}, so it would always print nothing "
                        f"(its labels: {', '.join(sorted(labels))})")
            continue
        v = _VALUE.match(action)
        if v and (v.group(1) is None or v.group(1) in FUNCS):
            continue
        return f"unsupported template action {m.group(0)!r}: use only {ALLOWED}"
    if "{{" in _ACTION.sub("", text):
        return f"unbalanced '{{{{' in {text!r}"
    return None


def expand(text: str, labels: Mapping[str, str], value: float) -> str:
    """What Prometheus prints for text, given the alerting sample's labels and value."""

    def action(m: re.Match[str]) -> str:
        body = m.group(1)
        if body == _LITERAL_OPEN:
            return "{{"
        lm = _LABEL.match(body)
        if lm:
            return labels.get(lm.group(1), "")  # Prometheus templates run with missingkey=zero
        vm = _VALUE.match(body)
        assert vm, body
        func = vm.group(1)
        if func is None:
            return go_float(value)
        return {"humanize": humanize, "humanize1024": humanize1024, "humanizePercentage": humanize_percentage,
                "humanizeDuration": humanize_duration}[func](value)

    out: list[str] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(text):
        before = text[pos:m.start()]
        if trim_next:
            before = before.lstrip(_SPACE)
        if m.group(0).startswith("{{-"):  # Go's trim markers eat the white space next to the action
            before = before.rstrip(_SPACE)
        out += [before, action(m)]
        trim_next, pos = m.group(0).endswith("-}}"), m.end()
    rest = text[pos:]
    out.append(rest.lstrip(_SPACE) if trim_next else rest)
    return "".join(out)


# --- Go's number formatting ---------------------------------------------------------


def go_g(value: float, precision: int = 4) -> str:
    """fmt.Sprintf("%.<precision>g", value) in Go."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.{precision}g}"


def go_float(value: float) -> str:
    """How Go prints a float64 with %v (strconv 'g', shortest): exponent outside [1e-4, 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    d = Decimal(repr(value))
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)  # a letter exponent means NaN or infinity, handled above
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exp  # decimal exponent of the first digit, plus one
    x = point - 1
    s = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{s}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{s}0.{'0' * -point}{text}"
    if point >= len(text):
        return s + text + "0" * (point - len(text))
    return f"{s}{text[:point]}.{text[point:]}"


def _scale(value: float, base: float, prefixes: tuple[str, ...], up: bool) -> str:
    """Divide (or multiply) by base while the value is outside [1, base), naming the step with a prefix."""
    prefix = ""
    for p in prefixes:
        if (abs(value) < base) if up else (abs(value) >= 1):
            break
        prefix = p
        value = value / base if up else value * base
    return go_g(value) + prefix


def humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return go_g(value)
    if abs(value) >= 1:
        return _scale(value, 1000, ("k", "M", "G", "T", "P", "E", "Z", "Y"), up=True)
    return _scale(value, 1000, ("m", "u", "n", "p", "f", "a", "z", "y"), up=False)


def humanize1024(value: float) -> str:
    if abs(value) <= 1 or math.isnan(value) or math.isinf(value):
        return go_g(value)
    return _scale(value, 1024, ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"), up=True)


def humanize_percentage(value: float) -> str:
    return go_g(value * 100) + "%"


def humanize_duration(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return go_g(value)
    if value == 0:
        return go_g(value) + "s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        v = abs(value)
        whole = int(v)
        seconds = whole % 60
        minutes = (whole // 60) % 60
        hours = (whole // 3600) % 24
        days = whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{go_g(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = p
        value *= 1000
    return f"{go_g(value)}{prefix}s"
