"""`monstack silence add|list|expire`: Alertmanager silences through its v2 API.

Works whatever runs the stack: Debian's Alertmanager has no web UI to silence from, and
amtool needs the URL spelled out; this finds the running stack's Alertmanager in its state
file (or takes --alertmanager-url) and speaks the API every release since 0.16 serves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from generator import webauth
from generator.durations import parse_duration
from generator.errors import CheckFailed, UsageError

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')
TIMEOUT = 10.0


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # =, !=, =~, !~
    value: str

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.op in ("=~", "!~"), "isEqual": self.op in ("=", "=~")}

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """alertname=TargetDown, service!="a b", instance=~"10\\..*" (quotes optional)."""
    m = _MATCHER.match(text)
    if not m:
        raise UsageError(f"not a matcher: {text!r} (write label=value, label!=value, label=~regex or label!~regex)")
    name, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise UsageError(f"{text!r}: not a regular expression ({exc})") from None
    return Matcher(name, op, value)


def _from_api(m: dict[str, Any]) -> Matcher:
    equal = m.get("isEqual", True)
    op = ("=~" if equal else "!~") if m.get("isRegex") else ("=" if equal else "!=")
    return Matcher(m["name"], op, m["value"])


@dataclass(frozen=True)
class Silence:
    id: str
    state: str  # active, pending, expired
    matchers: tuple[Matcher, ...]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "matchers": [str(m) for m in self.matchers], "starts_at": self.starts_at,
                "ends_at": self.ends_at, "created_by": self.created_by, "comment": self.comment}


def _request(method: str, url: str, **kw: Any) -> requests.Response:
    try:
        r = requests.request(method, url, timeout=TIMEOUT, auth=webauth.auth(url), **kw)
    except requests.RequestException as exc:
        raise CheckFailed(f"Alertmanager at {url.split('/api/')[0]} did not answer: {exc}") from None
    if r.status_code >= 400:
        raise CheckFailed(f"Alertmanager refused {method} {url}: HTTP {r.status_code} {r.text.strip()[:300]}")
    return r


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def add(alertmanager: str, matchers: list[Matcher], duration: str, comment: str, author: str,
        now: datetime | None = None) -> tuple[str, str]:
    """Create a silence; (id, end time)."""
    if not matchers:
        raise UsageError("give at least one matcher, e.g. alertname=TargetDown service=checkout-api")
    if all(m.op in ("!=", "!~") or (m.op == "=~" and re.fullmatch(m.value, "")) for m in matchers):
        raise UsageError("these matchers would silence every alert: give at least one label=value")
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"--duration {exc}") from None
    if length.ms <= 0:
        raise UsageError("--duration must be longer than 0s")
    start = now or datetime.now(timezone.utc)
    end = start + timedelta(milliseconds=length.ms)
    body = {"matchers": [m.to_api() for m in matchers], "startsAt": _iso(start), "endsAt": _iso(end),
            "createdBy": author, "comment": comment}
    r = _request("POST", f"{alertmanager}/api/v2/silences", json=body)
    return str(r.json()["silenceID"]), _iso(end)


def list_(alertmanager: str, include_expired: bool = False) -> list[Silence]:
    r = _request("GET", f"{alertmanager}/api/v2/silences")
    out = []
    for s in r.json():
        state = s.get("status", {}).get("state", "")
        if state == "expired" and not include_expired:
            continue
        out.append(Silence(s["id"], state, tuple(_from_api(m) for m in s.get("matchers", [])), s.get("startsAt", ""),
                           s.get("endsAt", ""), s.get("createdBy", ""), s.get("comment", "")))
    order = {"active": 0, "pending": 1, "expired": 2}
    return sorted(out, key=lambda s: (order.get(s.state, 3), s.ends_at, s.id))


def expire(alertmanager: str, silence_id: str) -> None:
    if not re.fullmatch(r"[0-9a-fA-F-]{8,}", silence_id):
        raise UsageError(f"not a silence id: {silence_id!r} (monstack silence list shows them)")
    _request("DELETE", f"{alertmanager}/api/v2/silence/{silence_id}")


def table(silences: list[Silence]) -> str:
    if not silences:
        return "no silences"
    lines = [f"{'ID':<36}  {'STATE':<8}  {'ENDS':<20}  {'BY':<12}  MATCHERS / COMMENT"]
    for s in silences:
        lines.append(f"{s.id:<36}  {s.state:<8}  {s.ends_at[:19].replace('T', ' '):<20}  {s.created_by[:12]:<12}  "
                     f"{' '.join(map(str, s.matchers))}  # {s.comment}")
    return "\n".join(lines)
