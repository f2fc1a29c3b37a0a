"""Name references across the inventory (receivers, teams, time intervals, service names).

Checked on the raw YAML data, next to the schema and not after it, so one run
reports a misspelled receiver together with a wrong type elsewhere. Values of
the wrong shape are skipped here: the schema reports those.
"""
from __future__ import annotations

from typing import Any, Iterator

from generator import names
from generator.errors import Problem
from generator.inventory.yamlsource import Source

Path = tuple[Any, ...]


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _names_at(data: dict[str, Any], path: Path, value: Any) -> Iterator[tuple[Path, str]]:
    """(path, name) for a list of names; single strings are yielded too."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield path + (i,), item


def _mute_entries(path: Path, value: Any) -> Iterator[tuple[Path, str, str]]:
    """(path, name, what) of the time intervals and teams a list of mute windows names (a name, or {interval, teams, ...})."""
    for i, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, str):
            yield path + (i,), item, "time interval"
        elif isinstance(item, dict):
            if isinstance(item.get("interval"), str):
                yield path + (i, "interval"), item["interval"], "time interval"
            teams = item.get("teams")
            for j, team in enumerate(teams if isinstance(teams, list) else []):
                if isinstance(team, str):
                    yield path + (i, "teams", j), team, "team"


def problems(src: Source) -> list[Problem]:
    data = src.data
    if not isinstance(data, dict):
        return []
    out: list[Problem] = []
    receivers = set(_mapping(data.get("receivers")))
    intervals = set(_mapping(data.get("time_intervals")))
    teams = _mapping(data.get("teams"))

    # A required collection that is missing or malformed is the schema's to report; checking
    # names against it would only repeat that error once per reference.
    receivers_ok = isinstance(data.get("receivers"), dict)
    teams_ok = isinstance(data.get("teams"), dict)
    intervals_ok = isinstance(data.get("time_intervals", {}), dict)

    def ref(path: Path, name: str, known: set[Any], what: str) -> None:
        usable = {"receiver": receivers_ok, "team": teams_ok, "time interval": intervals_ok}[what]
        if usable and name not in known:
            defined = ", ".join(sorted(map(str, known))) or "none defined"
            out.append(src.problem(path, f"unknown {what} {name!r} (defined: {defined})"))

    severities = data.get("severities")
    if isinstance(severities, dict):
        for level in names.LEVELS:
            if level not in severities:
                out.append(src.problem(("severities",), f"{level} has no route: every level P0-P3 needs receivers"))
        for level, policy in severities.items():
            policy = _mapping(policy)
            for path, name in _names_at(data, ("severities", level, "receivers"), policy.get("receivers")):
                ref(path, name, receivers, "receiver")
            for key in ("active_time_intervals", "mute_time_intervals"):
                for path, name in _names_at(data, ("severities", level, key), policy.get(key)):
                    ref(path, name, intervals, "time interval")
    for path, name, what in _mute_entries(("mute_time_intervals",), data.get("mute_time_intervals")):
        ref(path, name, intervals if what == "time interval" else set(teams), what)
    for key in ("default_receiver",):
        if isinstance(data.get(key), str):
            ref((key,), data[key], receivers, "receiver")
    watchdog = _mapping(data.get("watchdog"))
    if isinstance(watchdog.get("receiver"), str):
        ref(("watchdog", "receiver"), watchdog["receiver"], receivers, "receiver")
    for team, spec in teams.items():
        spec = _mapping(spec)
        for level, rs in _mapping(spec.get("receivers")).items():
            for path, name in _names_at(data, ("teams", team, "receivers", level), rs):
                ref(path, name, receivers, "receiver")
        for path, name, what in _mute_entries(("teams", team, "mute_time_intervals"), spec.get("mute_time_intervals")):
            ref(path, name, intervals if what == "time interval" else set(teams), what)
    services = data.get("services")
    first_seen: dict[str, int] = {}
    for i, svc in enumerate(services if isinstance(services, list) else []):
        svc = _mapping(svc)
        if isinstance(svc.get("team"), str):
            ref(("services", i, "team"), svc["team"], set(teams), "team")
        svc_name = svc.get("name")
        if isinstance(svc_name, str):
            if svc_name in first_seen:
                out.append(src.problem(("services", i, "name"), f"duplicate service {svc_name!r} (also services[{first_seen[svc_name]}])"))
            else:
                first_seen[svc_name] = i
    return out
