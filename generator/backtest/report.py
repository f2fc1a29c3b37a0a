"""Backtest results per alert, side by side (the working tree's rules against the deployed ones): a table and JSON."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from generator import names
from generator.backtest.engine import Outcome, Window
from generator.backtest.state import Episode

SIDES = ("new", "now")  # the working tree's rules, the deployed ones


@dataclass
class Side:
    severities: set[str] = field(default_factory=set)
    fires: int = 0
    firing_seconds: float = 0.0
    pending_only: int = 0  # became pending but cleared before `for` ran out: near misses
    notifications: Counter = field(default_factory=Counter)  # receiver -> messages
    pages: int = 0
    episodes: list[Episode] = field(default_factory=list)
    defined: bool = False

    def to_json(self, window: Window) -> dict[str, Any]:
        return {
            "defined": self.defined,
            "severity": sorted(self.severities),
            "fires": self.fires,
            "firing_seconds": round(self.firing_seconds, 3),
            "pending_only": self.pending_only,
            "notifications": dict(sorted(self.notifications.items())),
            "pages": self.pages,
            "episodes": [{"labels": dict(e.labels), "active_at": e.active_at, "fired_at": e.fired_at, "resolved_at": e.resolved_at}
                         for e in self.episodes],
        }


@dataclass
class Row:
    alert: str
    service: str
    sides: dict[str, Side]

    @property
    def heartbeat(self) -> bool:
        return self.alert == names.WATCHDOG_ALERT

    def active(self) -> bool:
        return any(s.fires or s.pending_only or s.notifications for s in self.sides.values())

    def changed(self) -> bool:
        a, b = self.sides["new"], self.sides["now"]
        return (a.defined != b.defined or a.severities != b.severities or a.fires != b.fires or a.pages != b.pages
                or sum(a.notifications.values()) != sum(b.notifications.values()))


def _overlap(e: Episode, w: Window) -> float:
    assert e.fired_at is not None
    end = e.resolved_at if e.resolved_at is not None else w.end
    return max(0.0, min(end, w.end) - max(e.fired_at, w.start))


def _fires_in(e: Episode, w: Window) -> bool:
    return e.fired_at is not None and e.fired_at <= w.end and (e.resolved_at is None or e.resolved_at > w.start)


def build_rows(outcomes: dict[str, Outcome | None]) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}

    def row(alert: str, service: str) -> Row:
        key = (alert, service)
        if key not in rows:
            rows[key] = Row(alert, service, {s: Side() for s in SIDES})
        return rows[key]

    for side, out in outcomes.items():
        if out is None:
            continue
        w = out.window
        for rep in out.replays:
            s = row(rep.rule.alert, rep.rule.service).sides[side]
            s.defined = True
            if rep.rule.severity:
                s.severities.add(rep.rule.severity)
            for e in rep.episodes:
                if _fires_in(e, w):
                    s.fires += 1
                    s.firing_seconds += _overlap(e, w)
                    s.episodes.append(e)
                elif e.fired_at is None and w.start <= e.active_at <= w.end:
                    s.pending_only += 1
        for n in out.notifications:
            keys = {(dict(a).get("alertname", ""), dict(a).get(names.SERVICE, "")) for a in n.firing + n.resolved}
            for alert, service in keys:
                s = row(alert, service).sides[side]
                s.notifications[n.receiver] += 1
                if n.firing and n.receiver in out.pagers:
                    s.pages += 1
    return sorted(rows.values(), key=lambda r: (r.heartbeat, -max(r.sides[s].pages for s in SIDES),
                                                -max(r.sides[s].fires for s in SIDES), r.alert, r.service))


def totals(rows: list[Row], side: str) -> dict[str, Any]:
    people = [r for r in rows if not r.heartbeat]
    receivers: Counter = Counter()
    for r in people:
        receivers.update(r.sides[side].notifications)
    return {
        "fires": sum(r.sides[side].fires for r in people),
        "firing_seconds": round(sum(r.sides[side].firing_seconds for r in people), 3),
        "pages": sum(r.sides[side].pages for r in people),
        "notifications": sum(receivers.values()),
        "by_receiver": dict(sorted(receivers.items())),
    }


def human(seconds: float) -> str:
    s = int(round(seconds))
    if s == 0:
        return "0"
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s" if s else f"{m}m"
    return f"{s}s"


def _pair(a: Any, b: Any | None) -> str:
    return f"{a}" if b is None else f"{a} / {b}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def table(rows: list[Row], outcomes: dict[str, Outcome | None], window: Window, show_all: bool = False) -> str:
    have_now = outcomes.get("now") is not None
    shown = [r for r in rows if show_all or r.active()]
    header = ("alert", "service", "sev", "fires", "pending", "firing", "notes", "pages")
    widths = [max([len(header[0]) + 2] + [len(r.alert) + 2 for r in shown]), max([len(header[1])] + [len(r.service) for r in shown]),
              5, 9, 9, 17, 11, 9]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip() + ("   (new / deployed)" if have_now else "")]
    changed = False
    for r in shown:
        a, b = r.sides["new"], r.sides["now"] if have_now else None
        sev = "/".join(sorted(a.severities | (b.severities if b else set()))) or "-"
        mark = have_now and r.changed()
        changed |= mark
        cells = [
            r.alert + (" *" if mark else ""), r.service or "-", sev,
            _pair(a.fires if a.defined else "-", (b.fires if b.defined else "-") if b else None),
            _pair(a.pending_only, b.pending_only if b else None),
            _pair(human(a.firing_seconds), human(b.firing_seconds) if b else None),
            _pair(sum(a.notifications.values()), sum(b.notifications.values()) if b else None),
            _pair(a.pages, b.pages if b else None),
        ]
        lines.append(fmt.format(*cells).rstrip() + ("  (heartbeat)" if r.heartbeat else ""))
    silent = len(rows) - len(shown)
    if silent:
        lines.append(f"... and {silent} alert(s) that never became pending")
    lines.append("")
    sides = [("new rules:", "new")] + ([("deployed rules:", "now")] if have_now else [])
    for title, side in sides:
        t = totals(rows, side)
        lines.append(f"{title:<15} {_plural(t['fires'], 'fire')}, {human(t['firing_seconds'])} firing, "
                     f"{_plural(t['notifications'], 'notification')}, {_plural(t['pages'], 'page')}  ({_receivers(t)})")
    if changed:
        lines.append("* differs from the deployed rules")
    lines.append("fires: firing episodes; pending: became pending but cleared before `for` ran out; "
                 "notes: notifications sent (firing and resolved); pages: firing notifications to a paging receiver")
    return "\n".join(lines)


def _receivers(t: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in t["by_receiver"].items()) or "no receiver notified"


def to_json(rows: list[Row], outcomes: dict[str, Outcome | None], window: Window, sources: dict[str, Any]) -> dict[str, Any]:
    return {
        "window": {"start": window.start, "end": window.end, "seconds": window.seconds},
        "sources": sources,
        "totals": {side: totals(rows, side) for side in SIDES if outcomes.get(side) is not None},
        "alerts": [{"alert": r.alert, "service": r.service, "heartbeat": r.heartbeat,
                    **{side: r.sides[side].to_json(window) for side in SIDES if outcomes.get(side) is not None}}
                   for r in rows],
        "queries": {side: out.queries for side, out in outcomes.items() if out is not None},
    }


def pages_by_side(rows: list[Row]) -> dict[str, int]:
    return {side: sum(r.sides[side].pages for r in rows if not r.heartbeat) for side in SIDES}


def grouped_notifications(outcome: Outcome) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for n in outcome.notifications:
        counts[n.receiver] += 1
    return dict(counts)
