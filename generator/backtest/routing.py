"""Alertmanager's notification pipeline, simulated over alert episodes: how many notifications each receiver gets.

A model of Alertmanager 0.25's documented behaviour (and of its dispatch and
notify code where the documentation is silent):
- routing: the route tree with matchers (classic `matchers` and the older
  match/match_re), `continue`, and inheritance of receiver, group_by and the
  three intervals; time intervals are not inherited;
- aggregation groups per route and group_by values: the first flush
  group_wait after the group's first alert arrives, then one every
  group_interval; a group that is empty after a flush is removed at the
  dispatcher's next maintenance pass (every 30s), so an alert arriving before
  that joins it without a new group_wait;
- at each flush, per receiver integration (the notification log's dedup):
  notify when a firing alert is new since the last notification, when every
  alert resolved (a message only where send_resolved), when a resolved alert
  is new and send_resolved is on, or when the last notification is more than
  repeat_interval old (strictly: a flush exactly repeat_interval later does
  not repeat; the log keeps entries 120h);
- inhibition at flush time: a target alert is muted while a firing source
  alert has the same values of the `equal` labels (a source that also matches
  the target side does not count, as in Alertmanager);
- mute_time_intervals / active_time_intervals of the matched route, at flush
  time: a muted flush sends nothing and logs nothing;
- resolved alerts leave the group after the flush that saw them resolved.
Alerts arrive when they start firing (Prometheus sends them at once) and end
when Prometheus resolves them. Silences are not modelled.
"""
from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from generator.durations import parse_duration
from generator.errors import UsageError

MAINTENANCE = 30.0  # seconds between the dispatcher's passes that remove empty groups
NFLOG_RETENTION = 120 * 3600.0  # Alertmanager's --data.retention default
DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 4 * 3600.0}
# Alertmanager's send_resolved default per integration type.
SEND_RESOLVED_DEFAULT = {
    "email_configs": False, "slack_configs": False, "wechat_configs": False, "pagerduty_configs": True, "webhook_configs": True,
    "opsgenie_configs": True, "victorops_configs": True, "pushover_configs": True, "sns_configs": True,
    "telegram_configs": True, "discord_configs": True, "webex_configs": True, "msteams_configs": True,
}
PAGER_INTEGRATIONS = ("pagerduty_configs", "opsgenie_configs", "victorops_configs")

Labels = Mapping[str, str]


# --- matchers ------------------------------------------------------------------------

_MATCHER = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|!=|!~|=)\s*(.*?)\s*$')


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Labels) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        out, i = [], 1
        while i < len(text) - 1:
            c = text[i]
            if c == "\\" and i + 1 < len(text) - 1:
                nxt = text[i + 1]
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(c)
            i += 1
        return "".join(out)
    return text


def parse_matchers(items: Iterable[str] | None) -> list[Matcher]:
    out = []
    for item in items or []:
        text = item.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        for part in _split_commas(text):
            m = _MATCHER.match(part)
            if not m:
                raise UsageError(f"alertmanager.yml: bad matcher {item!r}")
            out.append(Matcher(m.group(1), m.group(2), _unquote(m.group(3))))
    return out


def _split_commas(text: str) -> list[str]:
    parts, cur, quoted, escaped = [], "", False, False
    for c in text:
        if escaped:
            cur += c
            escaped = False
        elif c == "\\":
            cur += c
            escaped = True
        elif c == '"':
            cur += c
            quoted = not quoted
        elif c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def _legacy(match: Mapping[str, str] | None, match_re: Mapping[str, str] | None) -> list[Matcher]:
    return ([Matcher(k, "=", str(v)) for k, v in (match or {}).items()]
            + [Matcher(k, "=~", str(v)) for k, v in (match_re or {}).items()])


def _all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


# --- time intervals ----------------------------------------------------------------------

_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")


def _range(text: str, lookup: Sequence[str] | None = None) -> tuple[int, int]:
    def one(p: str) -> int:
        p = p.strip().lower()
        if lookup is not None and p in lookup:
            return lookup.index(p) + (1 if lookup is _MONTHS else 0)
        return int(p)

    parts = str(text).split(":")
    return (one(parts[0]), one(parts[-1]))


def _minutes(text: str) -> int:
    h, m = str(text).split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[tuple[int, int], ...] = ()
    weekdays: tuple[tuple[int, int], ...] = ()
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: tuple[tuple[int, int], ...] = ()
    years: tuple[tuple[int, int], ...] = ()
    location: str | None = None

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> "TimeInterval":
        return cls(
            times=tuple((_minutes(t["start_time"]), _minutes(t["end_time"])) for t in d.get("times") or []),
            weekdays=tuple(_range(w, _WEEKDAYS) for w in d.get("weekdays") or []),
            days_of_month=tuple(_range(x) for x in d.get("days_of_month") or []),
            months=tuple(_range(x, _MONTHS) for x in d.get("months") or []),
            years=tuple(_range(x) for x in d.get("years") or []),
            location=d.get("location"),
        )

    def contains(self, t: float) -> bool:
        loc = self.location
        tz = dt.timezone.utc if loc is None or loc == "UTC" else zoneinfo.ZoneInfo(loc)
        when = dt.datetime.fromtimestamp(t, tz)
        if self.times:
            minute = when.hour * 60 + when.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.days_of_month:
            days = calendar.monthrange(when.year, when.month)[1]
            hit = False
            for begin, end in self.days_of_month:
                b = days + begin + 1 if begin < 0 else begin
                e = days + end + 1 if end < 0 else end
                if b > days:
                    continue
                b, e = max(-days, min(b, days)), max(-days, min(e, days))
                if b <= when.day <= e:
                    hit = True
                    break
            if not hit:
                return False
        if self.months and not any(b <= when.month <= e for b, e in self.months):
            return False
        if self.weekdays:
            weekday = (when.weekday() + 1) % 7  # Python: Monday=0; Go: Sunday=0
            if not any(b <= weekday <= e for b, e in self.weekdays):
                return False
        return not self.years or any(b <= when.year <= e for b, e in self.years)


# --- routes -------------------------------------------------------------------------------


@dataclass
class Route:
    key: str
    receiver: str
    matchers: list[Matcher]
    group_by: tuple[str, ...] | None  # None: every label ('...')
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool = False
    mute: tuple[str, ...] = ()
    active: tuple[str, ...] = ()
    routes: list["Route"] = field(default_factory=list)

    def match(self, labels: Labels) -> list["Route"]:
        if not _all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found += hits
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Labels) -> tuple[tuple[str, str], ...]:
        if self.group_by is None:
            return tuple(sorted(labels.items()))
        return tuple(sorted((k, labels[k]) for k in self.group_by if k in labels))


def _seconds(value: Any, default: float) -> float:
    return parse_duration(str(value)).seconds if value is not None else default


def _route(d: Mapping[str, Any], parent: Route | None, key: str) -> Route:
    group_by = d.get("group_by")
    if group_by is not None:
        gb: tuple[str, ...] | None = None if "..." in group_by else tuple(group_by)
    else:
        gb = parent.group_by if parent else ()
    r = Route(
        key=key,
        receiver=d.get("receiver") or (parent.receiver if parent else ""),
        matchers=parse_matchers(d.get("matchers")) + _legacy(d.get("match"), d.get("match_re")),
        group_by=gb,
        group_wait=_seconds(d.get("group_wait"), parent.group_wait if parent else DEFAULTS["group_wait"]),
        group_interval=_seconds(d.get("group_interval"), parent.group_interval if parent else DEFAULTS["group_interval"]),
        repeat_interval=_seconds(d.get("repeat_interval"), parent.repeat_interval if parent else DEFAULTS["repeat_interval"]),
        continue_=bool(d.get("continue", False)),
        mute=tuple(d.get("mute_time_intervals") or ()),
        active=tuple(d.get("active_time_intervals") or ()),
    )
    r.routes = [_route(c, r, f"{key}/{i}") for i, c in enumerate(d.get("routes") or [])]
    return r


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class Integration:
    kind: str  # e.g. pagerduty_configs
    send_resolved: bool


@dataclass
class Config:
    route: Route
    inhibit: list[InhibitRule]
    receivers: dict[str, tuple[Integration, ...]]
    intervals: dict[str, tuple[TimeInterval, ...]]

    @classmethod
    def parse(cls, cfg: Mapping[str, Any]) -> "Config":
        receivers = {}
        for r in cfg.get("receivers") or []:
            integrations = []
            for kind, items in r.items():
                if kind.endswith("_configs"):
                    for item in items or []:
                        integrations.append(Integration(kind, bool(item.get("send_resolved", SEND_RESOLVED_DEFAULT.get(kind, True)))))
            receivers[r["name"]] = tuple(integrations)
        intervals = {}
        for block in ("time_intervals", "mute_time_intervals"):
            for ti in cfg.get(block) or []:
                intervals[ti["name"]] = tuple(TimeInterval.parse(x) for x in ti.get("time_intervals") or [])
        inhibit = [InhibitRule(tuple(parse_matchers(i.get("source_matchers")) + _legacy(i.get("source_match"), i.get("source_match_re"))),
                               tuple(parse_matchers(i.get("target_matchers")) + _legacy(i.get("target_match"), i.get("target_match_re"))),
                               tuple(i.get("equal") or ())) for i in cfg.get("inhibit_rules") or []]
        return cls(_route(cfg.get("route") or {}, None, "root"), inhibit, receivers, intervals)

    def in_intervals(self, names: Iterable[str], t: float) -> bool:
        return any(ti.contains(t) for n in names for ti in self.intervals.get(n, ()))

    def pagers(self) -> set[str]:
        """Receivers that page: those with a PagerDuty (Opsgenie, VictorOps) integration."""
        return {name for name, ints in self.receivers.items() if any(i.kind in PAGER_INTEGRATIONS for i in ints)}


# --- simulation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertEpisode:
    labels: tuple[tuple[str, str], ...]
    start: float
    end: float  # math.inf: still firing when the history ends


@dataclass(frozen=True)
class Notification:
    time: float
    receiver: str
    integration: str
    route: str
    group: tuple[tuple[str, str], ...]
    firing: tuple[tuple[tuple[str, str], ...], ...]  # labels of the firing alerts in the message
    resolved: tuple[tuple[tuple[str, str], ...], ...]

    @property
    def kind(self) -> str:
        return "firing" if self.firing else "resolved"


@dataclass
class _Entry:
    firing: frozenset
    resolved: frozenset
    time: float


class _Inhibitor:
    def __init__(self, rules: list[InhibitRule], episodes: Sequence[AlertEpisode]):
        self.rules = []
        for rule in rules:
            sources: dict[tuple[str, ...], list[tuple[float, float, bool]]] = {}
            for ep in episodes:
                labels = dict(ep.labels)
                if _all(rule.source, labels):
                    key = tuple(labels.get(n, "") for n in rule.equal)
                    sources.setdefault(key, []).append((ep.start, ep.end, _all(rule.target, labels)))
            self.rules.append((rule, sources))

    def mutes(self, labels: Labels, t: float) -> bool:
        for rule, sources in self.rules:
            if not _all(rule.target, labels):
                continue
            two_sided = _all(rule.source, labels)
            for start, end, source_is_target in sources.get(tuple(labels.get(n, "") for n in rule.equal), ()):
                if start <= t < end and not (two_sided and source_is_target):
                    return True
        return False


def simulate(config: Config, episodes: Sequence[AlertEpisode], until: float) -> list[Notification]:
    """Every notification Alertmanager would send for these alert episodes, up to `until`."""
    inhibitor = _Inhibitor(config.inhibit, episodes)
    groups: dict[tuple[str, tuple], tuple[Route, list[AlertEpisode]]] = {}
    for ep in sorted(episodes, key=lambda e: (e.start, e.labels)):
        labels = dict(ep.labels)
        for route in config.route.match(labels):
            key = (route.key, route.group_labels(labels))
            groups.setdefault(key, (route, []))[1].append(ep)
    nflog: dict[tuple, _Entry] = {}
    out: list[Notification] = []
    for (_route_key, group), (route, arrivals) in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out += _group(config, route, group, arrivals, inhibitor, nflog, until)
    out.sort(key=lambda n: (n.time, n.receiver, n.route, n.group))
    return out


def _next_maintenance(t: float) -> float:
    return (math.floor(t / MAINTENANCE) + 1) * MAINTENANCE


def _group(config: Config, route: Route, group: tuple, arrivals: list[AlertEpisode], inhibitor: _Inhibitor,
           nflog: dict[tuple, _Entry], until: float) -> list[Notification]:
    out: list[Notification] = []
    integrations = config.receivers.get(route.receiver, ())
    n, i = len(arrivals), 0
    while i < n and arrivals[i].start <= until:
        store: dict[tuple, AlertEpisode] = {}
        flush_at = arrivals[i].start + route.group_wait
        while True:
            while i < n and arrivals[i].start <= flush_at:
                store[arrivals[i].labels] = arrivals[i]
                i += 1
            if flush_at > until:
                return out
            if store:
                out += _flush(config, route, group, integrations, store, flush_at, inhibitor, nflog)
            if not store:
                # Removed at the next maintenance pass unless an alert arrives before it.
                if i >= n or arrivals[i].start > _next_maintenance(flush_at):
                    break
                # Joins the existing group: its timer keeps ticking every group_interval.
                ticks = math.ceil((arrivals[i].start - flush_at) / route.group_interval)
                flush_at += max(1, ticks) * route.group_interval
                continue
            flush_at += route.group_interval
    return out


def _flush(config: Config, route: Route, group: tuple, integrations: tuple[Integration, ...], store: dict[tuple, AlertEpisode],
           now: float, inhibitor: _Inhibitor, nflog: dict[tuple, _Entry]) -> list[Notification]:
    out: list[Notification] = []
    resolved_now = [k for k, ep in store.items() if ep.end <= now]
    time_muted = (route.mute and config.in_intervals(route.mute, now)) or (route.active and not config.in_intervals(route.active, now))
    if not time_muted:
        visible = {k: ep for k, ep in store.items() if not inhibitor.mutes(dict(k), now)}
        if visible:
            firing = frozenset(k for k, ep in visible.items() if ep.end > now)
            resolved = frozenset(k for k, ep in visible.items() if ep.end <= now)
            for idx, integ in enumerate(integrations):
                log_key = (route.receiver, idx, route.key, group)
                entry = nflog.get(log_key)
                if entry is not None and entry.time < now - NFLOG_RETENTION:
                    entry = None
                if not _needs_update(entry, firing, resolved, integ.send_resolved, route.repeat_interval, now):
                    continue
                if firing or integ.send_resolved:
                    out.append(Notification(now, route.receiver, integ.kind, route.key, group, tuple(sorted(firing)),
                                            tuple(sorted(resolved)) if integ.send_resolved else ()))
                nflog[log_key] = _Entry(firing, resolved, now)
    for k in resolved_now:
        del store[k]
    return out


def _needs_update(entry: _Entry | None, firing: frozenset, resolved: frozenset, send_resolved: bool, repeat: float, now: float) -> bool:
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.time < now - repeat


def load(cfg: Mapping[str, Any]) -> Config:
    return Config.parse(cfg)
