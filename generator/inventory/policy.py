"""Delivery policies that would silently stop paging: errors, or loud warnings where a user may mean it.

Errors (the inventory is rejected):
- a maintenance window (mute_time_intervals of the inventory, a team or P0) that
  always matches and mutes P0: nobody in its scope is ever paged (unless
  stack.allow_always_muted: then a warning);
- one time interval both active and muted on a level (for everyone, or for the
  teams and services a window names): those alerts are never notified;
- an SLO burn-rate alert that can never fire (more than 90% of requests would
  have to fail), or that fires on a single bad request (threshold 0 or below).

Warnings (printed with file and line; the inventory is accepted):
- an always-matching maintenance window on P1, P2 or P3 only: those levels are switched off in its scope;
- P0 notifying only inside active_time_intervals: nobody is paged outside them;
- a P0 burn-rate alert with a threshold below 1: it pages while the SLO is still met
  (an SLO window shorter than 5 days does this with the default windows).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence, cast

from generator import names
from generator.inventory import schema

Path = tuple[Any, ...]
Finding = tuple[Path, str, bool]  # path, message, is an error (else a warning)

_WEEK = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")
NEVER_FIRES = 0.9  # a burn alert whose threshold times the budget reaches this share of failing requests never fires in practice


# --- time intervals -----------------------------------------------------------------------


def _minutes(clock: str) -> int:
    h, m = clock.split(":")
    return int(h) * 60 + int(m)


def _covers_day(times: tuple[Any, ...]) -> bool:
    covered = [False] * (24 * 60)
    for r in times:
        for minute in range(_minutes(r.start_time), _minutes(r.end_time)):
            covered[minute] = True
    return all(covered)


def _covers_week(weekdays: tuple[str, ...]) -> bool:
    days: set[int] = set()
    for spec in weekdays:
        a, _, b = spec.partition(":")
        days |= set(range(_WEEK.index(a), _WEEK.index(b or a) + 1))
    return days == set(range(7))


def _covers_months(months: tuple[str, ...]) -> bool:
    found: set[int] = set()
    for spec in months:
        nums = [int(p) if p.isdigit() else _MONTHS.index(p) + 1 for p in spec.split(":")]
        found |= set(range(nums[0], nums[-1] + 1))
    return found == set(range(1, 13))


def _covers_month_days(days_of_month: tuple[str, ...]) -> bool:
    """Every day of every month length matches (Alertmanager counts negative days from the month's end)."""
    for length in (28, 29, 30, 31):
        for day in range(1, length + 1):
            if not any(_day_in(spec, day, length) for spec in days_of_month):
                return False
    return True


def _day_in(spec: str, day: int, length: int) -> bool:
    nums = [int(p) for p in spec.split(":")]
    begin, end = nums[0], nums[-1]
    begin = length + begin + 1 if begin < 0 else begin
    end = length + end + 1 if end < 0 else end
    if begin > length:
        return False
    return max(begin, -length) <= day <= min(end, length)


def _covers_years(years: tuple[str, ...]) -> bool:
    found: set[int] = set()
    for spec in years:
        nums = [int(p) for p in spec.split(":")]
        found |= set(range(nums[0], nums[-1] + 1))
    return set(range(1970, 10000)) <= found


def always(entry: Any) -> bool:
    """An Alertmanager time interval entry that matches every moment (each field empty or covering its whole range)."""
    return ((not entry.times or _covers_day(entry.times)) and (not entry.weekdays or _covers_week(entry.weekdays))
            and (not entry.days_of_month or _covers_month_days(entry.days_of_month))
            and (not entry.months or _covers_months(entry.months)) and (not entry.years or _covers_years(entry.years)))


# --- the checks ------------------------------------------------------------------------------


def _scope(w: Any) -> str:
    """Whose alerts a maintenance window holds back, in words."""
    parts = []
    if w.teams:
        parts.append(("team " if len(w.teams) == 1 else "teams ") + ", ".join(w.teams))
    if w.services:
        parts.append(("service " if len(w.services) == 1 else "services ") + ", ".join(w.services))
    return " and ".join(parts) if parts else "every team"


def problems(inv: schema.Inventory, intervals: Mapping[str, tuple[Any, ...]], levels: Mapping[str, Any],
             services: tuple[Any, ...], windows: Sequence[tuple[Path, Any]], burns: Mapping[str, str]) -> Iterator[Finding]:
    """windows: (where it is written, the resolved window: interval, levels, teams, services) of every maintenance window;
    burns: the catalogue's burn-rate alerts, name -> problem (ErrorBudgetBurn or LatencyBudgetBurn)."""
    allowed = inv.stack.allow_always_muted
    hint = " (set stack.allow_always_muted: true if you mean it)"

    def always_on(name: str) -> bool:
        return name in intervals and any(always(e) for e in intervals[name])

    for path, w in windows:
        if not always_on(w.interval):
            continue
        if names.LEVELS[0] in w.levels:
            yield (path, f"time interval {w.interval!r} always matches and mutes {', '.join(w.levels)} of {_scope(w)}: "
                         f"nobody is ever paged for them" + ("" if allowed else hint), not allowed)
        else:
            yield (path, f"time interval {w.interval!r} always matches: {', '.join(w.levels)} alerts of {_scope(w)} never "
                         "notify anyone", False)
    for muted, spec in inv.severities.items():
        for i, name in enumerate(spec.mute_time_intervals):
            if always_on(name):
                fatal = muted == names.LEVELS[0] and not allowed
                yield (("severities", muted, "mute_time_intervals", i), f"time interval {name!r} always matches: {muted} "
                       f"alerts never notify anyone" + (hint if fatal else ""), fatal)
    for level, resolved in levels.items():
        base = ("severities", level)
        for i, name in enumerate(resolved.active_time_intervals):
            written = inv.severities.get(cast(schema.Level, level))
            path = base + ("active_time_intervals", i) if written is not None and written.active_time_intervals is not None else base
            if name in resolved.mute_time_intervals:
                yield (path, f"time interval {name!r} is both active and muted on {level}: {level} alerts would never notify", True)
            for where, w in windows:
                if w.interval != name or level not in w.levels:
                    continue
                if not w.teams and not w.services:
                    yield (path, f"time interval {name!r} is both active and muted on {level}: {level} alerts would never notify", True)
                else:
                    yield (where, f"time interval {name!r} is active on {level} and muted for {_scope(w)}: their {level} "
                                  "alerts would never notify", True)
        if level == names.LEVELS[0] and resolved.active_time_intervals:
            yield (base + ("active_time_intervals",), f"P0 notifies only inside {', '.join(resolved.active_time_intervals)}: "
                                                      "outside it nobody is paged", False)
    yield from _slo_problems(inv, services, burns)


def _slo_problems(inv: schema.Inventory, services: tuple[Any, ...], burns: Mapping[str, str]) -> Iterator[Finding]:
    for i, s in enumerate(services):
        if s.slo is None:
            continue
        for setting in s.alerts:
            name = setting.catalogue_name  # a tier's rule has a name of its own
            problem = burns.get(name)
            if problem is None or setting.threshold is None:
                continue
            budget = s.slo.error_budget if problem == "ErrorBudgetBurn" else s.slo.latency_budget
            override = inv.services[i].alerts.get(name)
            path: Path = ("services", i, "slo", "window")
            if override and override.tiers:
                path = ("services", i, "alerts", name, "tiers", next(
                    (j for j, t in enumerate(override.tiers) if t.threshold == setting.threshold and t.severity == setting.severity), 0))
            elif override and override.threshold is not None:
                path = ("services", i, "alerts", name, "threshold")
            if setting.threshold <= 0:
                yield (path, f"{setting.name} would fire on a single bad request (burn-rate threshold {setting.threshold:g})", True)
            elif budget is not None and setting.threshold * budget >= NEVER_FIRES:
                yield (path, f"{setting.name} can never fire: at {setting.threshold:g} times a {budget:.6g} budget, "
                             f"{setting.threshold * budget:.0%} of requests would have to fail; shorten slo.window, lower "
                             f"the threshold, or disable it (alerts: {{{setting.name}: {{disabled: true}}}})", True)
            elif setting.severity == names.LEVELS[0] and setting.threshold < 1:
                yield (path, f"{setting.name} pages at a burn rate of {setting.threshold:g}, below 1: it pages while the "
                             "service still meets its SLO (a window of 5 days or more keeps the default factors at 1 or above)", False)
