"""`monstack test-alerts`: prove that each severity reaches its receivers, on the running stack.

Synthetic mode posts one alert per level P0-P3 to Alertmanager's v2 API
(alertname MonstackSyntheticTest, synthetic="true"), waits for the notifications
and reports, per alert, which receivers were notified, then resolves them.
Like Prometheus, it posts to every Alertmanager replica and posts again every
few seconds until the alert's receivers are notified: an Alertmanager that is
restarted (or killed) before it notified forgets the alert, and only a re-post
brings it back.
Evidence comes from the local sinks when the stack runs them (exact: receiver,
content, time) and otherwise from Alertmanager's own counters
(alertmanager_notifications_total / _failed_total, per receiver when the
release labels them so, else per integration).

Fault mode (--fault) injects a real fault into a sample exporter and measures
how long the real alert takes to reach its receivers. It watches every alert of
the service, not only the one the fault is meant to raise: the report leads with
the first page of any of them (the first notification at the expected alert's
severity), which is what the on-call feels.
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import requests
from prometheus_client.parser import text_string_to_metric_families

from generator import alerting, names, webauth
from generator.components import SAMPLE_EXPORTERS, hostport
from generator.errors import CheckFailed, UsageError
from generator.model import EmailReceiver, Model, PagerDutyReceiver, Service, SlackReceiver, TimeInterval

Say = Callable[[str], None]
SYNTHETIC_SERVICE = "monstack"  # service and team of synthetic alerts without --service: the policy's own routes
MARGIN = 20.0  # seconds beyond group_wait before a notification counts as missing
REPOST_EVERY = 5.0  # seconds between posts of an alert not yet confirmed (Prometheus re-sends every --rules.alert.resend-delay)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")


# --- time intervals (Alertmanager's semantics) --------------------------------------


def _ranges(items: tuple[str, ...], parse: Callable[[str], int]) -> list[tuple[int, int]]:
    out = []
    for item in items:
        a, _, b = item.partition(":")
        out.append((parse(a), parse(b or a)))
    return out


def _in(value: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


def interval_matches(t: TimeInterval, when: dt.datetime) -> bool:
    """Whether the instant `when` (aware) lies in one Alertmanager time_interval entry."""
    local = when.astimezone(zoneinfo.ZoneInfo(t.location) if t.location and t.location != "Local" else dt.timezone.utc)
    if t.times:
        minute = local.hour * 60 + local.minute
        spans = [(int(r.start_time[:2]) * 60 + int(r.start_time[3:]), int(r.end_time[:2]) * 60 + int(r.end_time[3:])) for r in t.times]
        if not any(start <= minute < end for start, end in spans):  # end is exclusive
            return False
    if t.weekdays and not _in(local.weekday(), _ranges(t.weekdays, WEEKDAYS.index)):
        return False
    if t.days_of_month:
        days_in_month = ((local.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)).day
        spans = [(lo + days_in_month + 1 if lo < 0 else lo, hi + days_in_month + 1 if hi < 0 else hi)
                 for lo, hi in _ranges(t.days_of_month, int)]
        if not _in(local.day, spans):
            return False
    if t.months:
        month = lambda m: int(m) if m.isdigit() else MONTHS.index(m) + 1
        if not _in(local.month, _ranges(t.months, month)):
            return False
    return not (t.years and not _in(local.year, _ranges(t.years, int)))


def active(model: Model, interval: str, when: dt.datetime) -> bool:
    return any(interval_matches(t, when) for t in model.time_intervals.get(interval, ()))


def _zone(t: TimeInterval) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(t.location) if t.location and t.location != "Local" else dt.timezone.utc


def next_open(model: Model, intervals: tuple[str, ...], when: dt.datetime, days: int = 400) -> dt.datetime | None:
    """The first instant after `when` inside any of the named intervals: a window opens at one of its start times
    (or at midnight when it names no times) on some day, so those are the only instants to try."""
    found: list[dt.datetime] = []
    for name in intervals:
        for t in model.time_intervals.get(name, ()):
            zone = _zone(t)
            day = when.astimezone(zone).date()
            starts = sorted({(int(r.start_time[:2]), int(r.start_time[3:])) for r in t.times if r.start_time != "24:00"}) or [(0, 0)]
            for d in range(days):
                date = day + dt.timedelta(days=d)
                hits = [c for h, m in starts if (c := dt.datetime(date.year, date.month, date.day, h, m, tzinfo=zone)) > when
                        and interval_matches(t, c)]
                if hits:
                    found.append(min(hits))
                    break
    return min(found) if found else None


def mute_ends(model: Model, interval: str, when: dt.datetime, days: int = 8) -> dt.datetime | None:
    """The first minute after `when` outside the interval (maintenance windows are minutes to hours long)."""
    t = when.replace(second=0, microsecond=0)
    for _ in range(days * 24 * 60):
        t += dt.timedelta(minutes=1)
        if not active(model, interval, t):
            return t
    return None


def _at(instant: dt.datetime, zone: dt.tzinfo, now: dt.datetime) -> str:
    left = int((instant - now).total_seconds() // 60)
    span = f"{left // 1440}d {left % 1440 // 60}h {left % 60}m" if left >= 1440 else f"{left // 60}h {left % 60}m"
    return f"{instant.astimezone(zone):%a %Y-%m-%d %H:%M %Z} (in {span})"


def held_reason(model: Model, level: str, team: str | None, when: dt.datetime) -> str | None:
    """Why Alertmanager would not notify now (outside the active intervals, inside a mute), and until when; or None."""
    policy = model.levels[level]
    if policy.active_time_intervals and not any(active(model, i, when) for i in policy.active_time_intervals):
        names_ = ", ".join(policy.active_time_intervals)
        opens = next_open(model, policy.active_time_intervals, when)
        zone = next((_zone(t) for i in policy.active_time_intervals for t in model.time_intervals.get(i, ())), dt.timezone.utc)
        when_text = f": opens {_at(opens, zone, when)}" if opens else ""
        return f"held until {names_} (notifies only inside {names_}){when_text}"
    for m in model.mutes(level, team):
        if active(model, m, when):
            ends = mute_ends(model, m, when)
            zone = next((_zone(t) for t in model.time_intervals.get(m, ())), dt.timezone.utc)
            return f"muted now by time interval {m}" + (f" until {_at(ends, zone, when)}" if ends else "")
    return None


# --- the synthetic alerts --------------------------------------------------------


def synthetic_labels(model: Model, service: str | None, level: str) -> dict[str, str]:
    s = _service(model, service) if service else None
    return {
        "alertname": names.SYNTHETIC_ALERT,
        names.SEVERITY: level,
        names.SERVICE: s.name if s else SYNTHETIC_SERVICE,
        names.TEAM: s.team if s else SYNTHETIC_SERVICE,
        names.SYNTHETIC: "true",
        # One problem per level: otherwise the P0 test alert would inhibit the P1-P3 ones.
        names.PROBLEM: f"{names.SYNTHETIC_ALERT}{level}",
    }


def synthetic_alert(model: Model, service: str | None, level: str, starts: dt.datetime, ends: dt.datetime) -> dict[str, Any]:
    return {
        "labels": synthetic_labels(model, service, level),
        "annotations": {
            "summary": f"Synthetic {level} test alert from monstack test-alerts: not a real problem",
            "description": "Posted by `monstack test-alerts` to prove delivery; it resolves itself in a minute.",
        },
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": ends.isoformat().replace("+00:00", "Z"),
        "generatorURL": "monstack://test-alerts",
    }


def _service(model: Model, name: str) -> Service:
    for s in model.services:
        if s.name == name:
            return s
    raise UsageError(f"no service {name!r} in {model.source} (services: {', '.join(s.name for s in model.services)})")


def expected_receivers(model: Model, team: str, level: str) -> tuple[str, ...]:
    return model.teams[team].receivers[level] if team in model.teams else model.levels[level].receivers


def integration(model: Model, receiver: str) -> str:
    r = model.receivers.get(receiver)
    if isinstance(r, SlackReceiver):
        return "slack"
    if isinstance(r, PagerDutyReceiver):
        return "pagerduty"
    if isinstance(r, EmailReceiver):
        return "email"
    return "webhook"


# --- evidence: sinks and Alertmanager's counters -------------------------------------


def capture_matches(capture: Mapping[str, Any], alertname: str, level: str, status: str = "firing",
                    service: str | None = None) -> bool:
    """Whether a sink capture is the notification of `alertname` at `level` in `status`."""
    kind, body = capture.get("kind"), capture.get("body")
    word = "FIRING" if status == "firing" else "RESOLVED"
    head = f"{level} {alertname}" + (f" on {service}" if service else "")
    if kind == "webhook" and isinstance(body, dict):
        return any(a.get("status") == status and a.get("labels", {}).get("alertname") == alertname
                   and a.get("labels", {}).get(names.SEVERITY) == level
                   and (service is None or a.get("labels", {}).get(names.SERVICE) == service)
                   for a in body.get("alerts", []))
    if kind == "slack" and isinstance(body, dict):
        titles = [a.get("title", "") for a in body.get("attachments", [])] + [body.get("text") or ""]
        return any(f"[{word}" in t and head in t for t in titles)
    if kind == "pagerduty" and isinstance(body, dict):
        action = "trigger" if status == "firing" else "resolve"
        summary = (body.get("payload") or {}).get("summary", "") or body.get("description", "")
        # PagerDuty resolve events carry no payload: match them by the trigger's dedup key elsewhere.
        return body.get("event_action") == action and (action == "resolve" or head in summary)
    if kind == "email":
        subject = capture.get("subject") or ""
        return f"[{word}" in subject and head in subject
    return False


def capture_receivers(model: Model, capture: Mapping[str, Any], candidates: tuple[str, ...]) -> list[str]:
    """The receiver(s) a capture was sent for: by URL path, or for email by the recipients."""
    if capture.get("kind") != "email":
        return [capture["receiver"]] if capture.get("receiver") else []
    rcpts = {r.lower() for r in capture.get("rcpt_tos", [])}
    return [c for c in candidates if isinstance(rec := model.receivers.get(c), EmailReceiver)
            and {t.lower() for t in rec.to} == rcpts]


def captured(sink_url: str) -> list[dict[str, Any]]:
    r = requests.get(f"{sink_url}/captured", timeout=5)
    r.raise_for_status()
    return r.json()


def notification_counts(alertmanager_url: str) -> dict[tuple[str, str, str], float]:
    """{(metric, integration, receiver or ''): value} from Alertmanager's /metrics."""
    text = requests.get(f"{alertmanager_url}/metrics", timeout=5, auth=webauth.auth(alertmanager_url)).text
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("alertmanager_notifications", "alertmanager_notifications_failed"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (family.name, sample.labels.get("integration", ""), sample.labels.get("receiver_name", ""))
                out[key] = out.get(key, 0.0) + sample.value
    return out


def _delta(now: Mapping, before: Mapping, metric: str, integ: str, receiver: str = "") -> float:
    def total(m: Mapping) -> float:
        return sum(v for (name, i, r), v in m.items() if name == metric and i == integ and (not receiver or r == receiver))
    return total(now) - total(before)


# --- posting --------------------------------------------------------------------


def post_alerts(alertmanager_url: str, alerts: list[dict[str, Any]]) -> None:
    r = requests.post(f"{alertmanager_url}/api/v2/alerts", json=alerts, timeout=10, auth=webauth.auth(alertmanager_url))
    if r.status_code >= 300:
        raise CheckFailed(f"Alertmanager refused the test alerts ({r.status_code}): {r.text.strip()}")


def post_everywhere(alertmanager_urls: list[str], alerts: list[dict[str, Any]]) -> list[str]:
    """Post to every replica, as Prometheus does; the replicas that took them. An unreachable one is skipped
    (it gets the alerts again at the next post), a refusal is an error."""
    took = []
    for url in alertmanager_urls:
        try:
            post_alerts(url, alerts)
        except requests.RequestException:
            continue
        took.append(url)
    return took


def am_alerts(alertmanager_url: str, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
    r = requests.get(f"{alertmanager_url}/api/v2/alerts", params=params, timeout=5, auth=webauth.auth(alertmanager_url))
    r.raise_for_status()
    return r.json()


@dataclass
class Outcome:
    """What happened to one alert: where Alertmanager routed it, who got it, who did not."""

    level: str
    labels: dict[str, str]
    routed: list[str] = field(default_factory=list)
    notified: dict[str, float] = field(default_factory=dict)  # receiver -> seconds after posting
    failed: dict[str, str] = field(default_factory=dict)  # receiver (or integration) -> why
    held: str | None = None
    suppressed: str | None = None
    evidence: str = "sinks"

    @property
    def ok(self) -> bool:
        return bool(self.held or self.suppressed) or (bool(self.routed) and set(self.routed) <= set(self.notified))

    def text(self) -> str:
        if self.held:
            return f"{self.level}  {self.held}; routed to {', '.join(self.routed) or '-'}"
        if self.suppressed:
            return f"{self.level}  {self.suppressed}; routed to {', '.join(self.routed) or '-'}"
        parts = [f"{r} (+{self.notified[r]:.1f}s)" for r in self.routed if r in self.notified]
        line = f"{self.level}  notified: {', '.join(parts) or 'nobody'}"
        missing = [r for r in self.routed if r not in self.notified]
        if missing:
            line += f"; NOT notified: {', '.join(missing)}"
        for who, why in self.failed.items():
            line += f"\n      {who}: {why}"
        return line


def _route_info(alertmanager_urls: list[str], labels: Mapping[str, str], outcome: Outcome) -> None:
    for url in alertmanager_urls:
        try:
            found = am_alerts(url, {k: labels[k] for k in ("alertname", names.SEVERITY, names.SERVICE, names.SYNTHETIC)})
        except requests.RequestException:
            continue
        if not found:
            continue
        a = found[0]
        outcome.routed = sorted(r["name"] for r in a.get("receivers", []))
        st = a.get("status", {})
        if st.get("inhibitedBy"):
            outcome.suppressed = f"inhibited by another firing alert ({', '.join(st['inhibitedBy'])})"
        elif st.get("silencedBy"):
            outcome.suppressed = f"silenced ({', '.join(st['silencedBy'])})"
        return


def run(model: Model, urls: Mapping[str, Any], service: str | None = None, timeout: float | None = None,
        say: Say = lambda m: None, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> list[Outcome]:
    am, sink = urls["alertmanager"], urls.get("sink")
    assert am
    ams: list[str] = list(urls.get("alertmanagers") or [am])
    team = _service(model, service).team if service else SYNTHETIC_SERVICE
    t_post = now()
    longest = max(model.levels[lv].group_wait.seconds for lv in names.LEVELS) + MARGIN
    ends = t_post + dt.timedelta(seconds=(timeout or longest) + 120)
    alerts = [synthetic_alert(model, service, lv, t_post, ends) for lv in names.LEVELS]
    outcomes = [Outcome(lv, a["labels"], held=held_reason(model, lv, team, t_post)) for lv, a in zip(names.LEVELS, alerts, strict=True)]
    before = _counts(ams)
    if not post_everywhere(ams, alerts):
        raise CheckFailed(f"no Alertmanager took the test alerts ({', '.join(ams)} did not answer)")
    start = last_post = time.monotonic()
    posts = 1
    time.sleep(0.5)
    for o in outcomes:
        _route_info(ams, o.labels, o)
        if not o.routed:
            o.routed = list(expected_receivers(model, team, o.level))
    waits = [model.levels[o.level].group_wait.seconds + MARGIN for o in outcomes if not o.held]
    deadline = start + (timeout if timeout is not None else max(waits, default=0.0))
    say(f"posted {len(alerts)} synthetic alerts ({names.SYNTHETIC}=\"true\", service={alerts[0]['labels'][names.SERVICE]}, "
        f"team={team}) to {', '.join(ams)}; evidence from {'the sinks at ' + sink if sink else 'Alertmanager notification counters'}")
    for o in outcomes:
        note = o.held or o.suppressed or f"group_wait {model.levels[o.level].group_wait}"
        say(f"  {o.level} -> {', '.join(o.routed)} ({note})")
    pending = [o for o in outcomes if not o.held and not o.suppressed]
    try:
        while pending and time.monotonic() < deadline:
            time.sleep(1.0)
            elapsed = time.monotonic() - start
            if sink:
                _collect_sinks(model, sink, t_post, outcomes)
            else:
                _collect_counters(model, ams, before, outcomes, elapsed)
            pending = [o for o in pending if not set(o.routed) <= set(o.notified)]
            if pending and time.monotonic() - last_post >= REPOST_EVERY:
                # Not confirmed yet: post again (same labels and start, so a replica that has it merges it).
                post_everywhere(ams, [a for a, o in zip(alerts, outcomes, strict=True) if o in pending])
                last_post = time.monotonic()
                posts += 1
    finally:
        resolved = [dict(a, endsAt=now().isoformat().replace("+00:00", "Z")) for a in alerts]
        post_everywhere(ams, resolved)
    if posts > 1:
        say(f"posted the unconfirmed alerts {posts} times in all (every {REPOST_EVERY:g}s until notified)")
    if not sink:
        after = _counts(ams)
        for o in pending:
            for integ in sorted({integration(model, r) for r in o.routed if r not in o.notified}):
                failed = _delta(after, before, "alertmanager_notifications_failed", integ)
                if failed:
                    o.failed[integ] = f"{failed:g} failed notification(s) via {integ} during the test (see the Alertmanager log)"
    for o in pending:
        for r in o.routed:
            if r not in o.notified and r not in o.failed and integration(model, r) not in o.failed:
                o.failed[r] = f"nothing arrived within {deadline - start:.0f}s"
    return outcomes


def _counts(alertmanager_urls: list[str]) -> dict[tuple[str, str, str], float]:
    """Notification counters summed over the replicas that answer."""
    total: dict[tuple[str, str, str], float] = {}
    for url in alertmanager_urls:
        try:
            counts = notification_counts(url)
        except requests.RequestException:
            continue
        for key, value in counts.items():
            total[key] = total.get(key, 0.0) + value
    return total


def _collect_sinks(model: Model, sink: str, since: dt.datetime, outcomes: list[Outcome]) -> None:
    t0 = since.timestamp() - 1
    for c in captured(sink):
        if c.get("time", 0) < t0:
            continue
        for o in outcomes:
            if o.held or o.suppressed:
                continue
            if capture_matches(c, names.SYNTHETIC_ALERT, o.level, "firing", o.labels[names.SERVICE]):
                for r in capture_receivers(model, c, tuple(o.routed)):
                    if r in o.routed:
                        o.notified.setdefault(r, round(c["time"] - since.timestamp(), 1))


def _collect_counters(model: Model, ams: list[str], before: Mapping, outcomes: list[Outcome], elapsed: float) -> None:
    """Without sinks: a receiver counts as notified when its notifications counter grew (per integration on
    releases that do not label receivers, which cannot tell two receivers of one integration apart)."""
    now = _counts(ams)
    by_receiver = any(r for (_, _, r) in now)
    used: dict[str, float] = {}
    for o in outcomes:
        if o.held or o.suppressed:
            o.evidence = "alertmanager counters"
            continue
        o.evidence = "alertmanager counters"
        for r in o.routed:
            if r in o.notified:
                continue
            integ = integration(model, r)
            if by_receiver:
                sent = _delta(now, before, "alertmanager_notifications", integ, r)
                failed = _delta(now, before, "alertmanager_notifications_failed", integ, r)
            else:
                sent = _delta(now, before, "alertmanager_notifications", integ) - used.get(integ, 0)
                failed = _delta(now, before, "alertmanager_notifications_failed", integ)
            if sent - failed >= 1:
                o.notified[r] = round(elapsed, 1)
                used[integ] = used.get(integ, 0) + 1


# --- fault mode ----------------------------------------------------------------------


@dataclass
class FaultResult:
    service: str
    exporter: str
    fault: dict[str, Any]
    alert: str
    level: str
    milestones: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds after the fault)
    notified: dict[str, float] = field(default_factory=dict)  # receiver -> seconds, for `alert`
    # Every firing notification of any alert of the service (sinks only): (seconds, alert, level, receiver).
    pages: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def delay(self) -> float | None:
        return max(self.notified.values()) if self.notified else None

    @property
    def first_page(self) -> tuple[float, str, str, str] | None:
        """The earliest notification at the expected severity, of whichever alert of the service sent it."""
        found = [p for p in self.pages if p[2] == self.level]
        return min(found) if found else None


def fault_plan(model: Model, service: str | None) -> tuple[Service, str, dict[str, Any], str]:
    """(service, sample exporter, fault, alert it should raise)."""
    candidates = [_service(model, service)] if service else list(model.services)
    for s in candidates:
        exporter = next((h for h, _ in (hostport(t) for t in (s.scrape.targets if s.scrape else ())) if h in SAMPLE_EXPORTERS), None)
        if exporter is None:
            continue
        if s.alert("HttpErrorRatioCritical"):
            return s, exporter, {"error_ratio": 1.0}, "HttpErrorRatioCritical"
        if s.alert("TargetDown"):
            # A hung process fails its scrape and its health probes: with a probe, HealthProbeFailing is the one page.
            down = "HealthProbeFailing" if s.probes and s.alert("HealthProbeFailing") else "TargetDown"
            return s, exporter, {"hang": True}, down
    where = f"service {service}" if service else model.source
    raise UsageError(f"--fault needs a service scraped from a sample exporter ({', '.join(SAMPLE_EXPORTERS)}) "
                     f"with HttpErrorRatioCritical or TargetDown enabled; none in {where}")


def run_fault(model: Model, urls: Mapping[str, str | None], exporter_url: Callable[[str], str], service: str | None = None,
              timeout: float | None = None, say: Say = lambda m: None,
              control_headers: Mapping[str, str] | None = None) -> FaultResult:
    """control_headers: what the exporter's /control asks of a request (names.CONTROL_HEADER with the stack's token)."""
    s, exporter, fault, alertname = fault_plan(model, service)
    setting = s.alert(alertname)
    assert setting is not None
    level = setting.severity
    expected = (setting.for_.seconds + model.stack.evaluation_interval.seconds + (s.scrape.interval.seconds if s.scrape else 0)
                + model.levels[level].group_wait.seconds)
    budget = timeout if timeout is not None else expected + 120
    control = exporter_url(exporter) + "/control"
    result = FaultResult(s.name, exporter, fault, alertname, level)
    prom, am, sink = urls["prometheus"], urls["alertmanager"], urls.get("sink")
    assert am is not None, "the stack state has no Alertmanager URL"
    receivers = expected_receivers(model, s.team, level)
    say(f"injecting {fault} into {exporter} ({control}); expecting {alertname} ({level}) on {s.name} -> "
        f"{', '.join(receivers)} in about {expected:.0f}s (for {setting.for_}, group_wait {model.levels[level].group_wait})")
    # Any alert of the service may page first (a failing health probe before the error ratio, say).
    candidates = sorted({(a.name, a.ctx.setting.severity) for a in alerting.service_alerts(model, s)})
    all_receivers = tuple(dict.fromkeys(r for lv in names.LEVELS for r in expected_receivers(model, s.team, lv)))
    before = notification_counts(am)
    headers = dict(control_headers or {})
    r = requests.post(control, json=fault, headers=headers, timeout=5)
    if r.status_code != 200:
        raise CheckFailed(f"{exporter} refused the fault {fault}: {r.status_code} {r.text.strip()}")
    t0_wall, t0 = time.time(), time.monotonic()
    seen: set[str] = set()

    def mark(what: str) -> None:
        if what not in seen:
            seen.add(what)
            result.milestones.append((what, round(time.monotonic() - t0, 1)))
            say(f"  +{time.monotonic() - t0:6.1f}s {what}")

    try:
        while time.monotonic() - t0 < budget:
            time.sleep(1.0)
            for a in requests.get(f"{prom}/api/v1/alerts", timeout=5, auth=webauth.auth(str(prom))).json()["data"]["alerts"]:
                if a["labels"].get(names.SERVICE) == s.name and a["labels"].get("alertname") != names.WATCHDOG_ALERT:
                    name = a["labels"].get("alertname")
                    mark(f"{a['state']} in Prometheus" if name == alertname else f"{name} {a['state']} in Prometheus")
            if am_alerts(am, {"alertname": alertname, names.SERVICE: s.name}):
                mark("received by Alertmanager")
            if sink:
                seen_pages = {(p[1], p[3]) for p in result.pages}
                for c in captured(sink):
                    if c.get("time", 0) < t0_wall:
                        continue
                    for name, lv in candidates:
                        if not capture_matches(c, name, lv, "firing", s.name):
                            continue
                        for rcv in capture_receivers(model, c, all_receivers):
                            if (name, rcv) not in seen_pages:
                                seen_pages.add((name, rcv))
                                result.pages.append((round(c["time"] - t0_wall, 1), name, lv, rcv))
                                if name != alertname:
                                    mark(f"{name} ({lv}) notified {rcv}")
                            if name == alertname and rcv in receivers and rcv not in result.notified:
                                result.notified[rcv] = round(c["time"] - t0_wall, 1)
                                mark(f"notified {rcv}")
            else:
                now = notification_counts(am)
                for rcv in receivers:
                    integ = integration(model, rcv)
                    if rcv not in result.notified and _delta(now, before, "alertmanager_notifications", integ) - \
                            _delta(now, before, "alertmanager_notifications_failed", integ) >= 1:
                        result.notified[rcv] = round(time.monotonic() - t0, 1)
                        mark(f"notified {rcv} (Alertmanager counter for {integ})")
            if set(receivers) <= set(result.notified):
                break
    finally:
        requests.post(f"{control}/reset", headers=headers, timeout=5)
        say(f"reset {exporter}'s faults; {alertname} resolves once the condition clears")
    return result


def _pretty(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:04.1f}s" if m else f"{s:.1f}s"


def fault_text(res: FaultResult) -> str:
    if res.delay is None:
        text = f"{res.alert} ({res.level}) on {res.service}: not delivered in time"
    else:
        text = (f"{res.alert} ({res.level}) on {res.service}: fault to notification {_pretty(res.delay)} "
                f"({', '.join(f'{r} +{_pretty(t)}' for r, t in sorted(res.notified.items()))})")
    first = res.first_page
    if first is not None:
        t, name, level, receiver = first
        text += f"\nfirst page: {name} ({level}) to {receiver} after {_pretty(t)}"
        others = sorted({(p[1], p[2]) for p in res.pages} - {(res.alert, res.level)})
        if others:
            text += f"\nalso notified: {', '.join(f'{n} ({lv})' for n, lv in others)}"
    return text


