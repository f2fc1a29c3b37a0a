"""Delivery policies that would silently stop paging: errors, or loud warnings where a user may mean it.

Errors (the inventory is rejected):
- a mute time interval that always matches, muting P0, a team or every level
  (unless stack.allow_always_muted: then a warning);
- one time interval both active and muted on a level: that level is never notified;
- an SLO burn-rate alert that can never fire (more than 90% of requests would
  have to fail), or that fires on a single bad request (threshold 0 or below).

Warnings (printed with file and line; the inventory is accepted):
- an always-matching mute interval on P1, P2 or P3: that level is switched off;
- P0 notifying only inside active_time_intervals: nobody is paged outside them;
- a P0 burn-rate alert with a threshold below 1: it pages while the SLO is still met
  (an SLO window shorter than 5 days does this with the default windows).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from generator import catalogue, names
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


def problems(inv: schema.Inventory, intervals: Mapping[str, tuple[Any, ...]], levels: Mapping[str, Any],
             services: tuple[Any, ...]) -> Iterator[Finding]:
    allowed = inv.stack.allow_always_muted
    hint = " (set stack.allow_always_muted: true if you mean it)"

    def always_on(name: str) -> bool:
        return name in intervals and any(always(e) for e in intervals[name])

    for i, name in enumerate(inv.mute_time_intervals):
        if always_on(name):
            yield (("mute_time_intervals", i), f"time interval {name!r} always matches: it mutes every level, P0 included, "
                                               f"so nobody is ever notified" + ("" if allowed else hint), not allowed)
    for team, spec in inv.teams.items():
        for i, name in enumerate(spec.mute_time_intervals):
            if always_on(name):
                yield (("teams", team, "mute_time_intervals", i), f"time interval {name!r} always matches: it mutes every "
                       f"alert of team {team}, P0 included" + ("" if allowed else hint), not allowed)
    for level, policy in inv.severities.items():
        for i, name in enumerate(policy.mute_time_intervals):
            if always_on(name):
                fatal = level == "P0" and not allowed
                yield (("severities", level, "mute_time_intervals", i), f"time interval {name!r} always matches: {level} "
                       f"alerts never notify anyone" + (hint if fatal else ""), fatal)
    for level, resolved in levels.items():
        base = ("severities", level)
        global_mutes = set(inv.mute_time_intervals) | set(resolved.mute_time_intervals)
        for i, name in enumerate(resolved.active_time_intervals):
            path = base + ("active_time_intervals", i) if inv.severities[level].active_time_intervals is not None else base
            if name in global_mutes:
                yield (path, f"time interval {name!r} is both active and muted on {level}: {level} alerts would never notify", True)
            for team, spec in inv.teams.items():
                if name in spec.mute_time_intervals:
                    yield (("teams", team, "mute_time_intervals", spec.mute_time_intervals.index(name)),
                           f"time interval {name!r} is active on {level} and muted for team {team}: the team's {level} "
                           "alerts would never notify", True)
        if level == "P0" and resolved.active_time_intervals:
            yield (base + ("active_time_intervals",), f"P0 notifies only inside {', '.join(resolved.active_time_intervals)}: "
                                                      "outside it nobody is paged", False)
    yield from _slo_problems(inv, services)


def _slo_problems(inv: schema.Inventory, services: tuple[Any, ...]) -> Iterator[Finding]:
    burns = {a.name: a for a in catalogue.slo.ALERTS if a.problem in ("ErrorBudgetBurn", "LatencyBudgetBurn")}
    for i, s in enumerate(services):
        if s.slo is None:
            continue
        for setting in s.alerts:
            d = burns.get(setting.name)
            if d is None or setting.threshold is None:
                continue
            budget = s.slo.error_budget if d.problem == "ErrorBudgetBurn" else s.slo.latency_budget
            override = inv.services[i].alerts.get(setting.name)
            path = (("services", i, "alerts", setting.name, "threshold") if override and override.threshold is not None
                    else ("services", i, "slo", "window"))
            if setting.threshold <= 0:
                yield (path, f"{setting.name} would fire on a single bad request (burn-rate threshold {setting.threshold:g})", True)
            elif budget is not None and setting.threshold * budget >= NEVER_FIRES:
                yield (path, f"{setting.name} can never fire: at {setting.threshold:g} times a {budget:.6g} budget, "
                             f"{setting.threshold * budget:.0%} of requests would have to fail; shorten slo.window, lower "
                             f"the threshold, or disable it (alerts: {{{setting.name}: {{disabled: true}}}})", True)
            elif setting.severity == names.LEVELS[0] and setting.threshold < 1:
                yield (path, f"{setting.name} pages at a burn rate of {setting.threshold:g}, below 1: it pages while the "
                             "service still meets its SLO (a window of 5 days or more keeps the default factors at 1 or above)", False)
