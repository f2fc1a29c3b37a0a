"""alertmanager/tests/routing.yml: which receivers each alert must reach, in tree order.

The expectations come from the policy as the model states it (team overrides,
the Watchdog, the catch-all), never from the rendered route tree, so
`amtool config routes test --verify.receivers` (generator/checks.py) judges the
tree against the policy. Time intervals are not part of routing: a muted or
inactive route still matches, it only stays silent; the delivery tests cover that.
"""
from __future__ import annotations

from typing import Any

from generator import names
from generator.model import Model
from generator.topology import Topology

PROBE_ALERT = "MonstackRoutingTest"  # an alert name no catalogue or custom rule uses
OTHER_TEAM = "no-such-team"  # stands for alerts whose team the inventory does not list (e.g. meta alerts)
UNKNOWN_SEVERITY = "P9"


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {names.ROUTING_TESTS: {"tests": cases(model)}}


def _services_of(model: Model) -> dict[str, str]:
    """Team -> a service of the team for its cases: one without a maintenance window of its own (those are cased apart)."""
    scoped = {name for w in model.mute_windows for name in w.services}
    first: dict[str, str] = {}
    free: dict[str, str] = {}
    for s in model.services:
        first.setdefault(s.team, s.name)
        if s.name not in scoped:
            free.setdefault(s.team, s.name)
    return {**first, **free}


def _case(name: str, receivers: tuple[str, ...] | list[str], **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": {"alertname": PROBE_ALERT, **labels}, "receivers": list(receivers)}


def cases(model: Model) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    services = _services_of(model)
    for team in model.teams.values():
        service = services.get(team.name, f"{team.name}-service")
        for level in names.LEVELS:
            out.append(_case(f"{level} of team {team.name}", team.receivers[level],
                             severity=level, team=team.name, service=service))
    for level in names.LEVELS:
        out.append(_case(f"{level} of a team the inventory does not list", model.levels[level].receivers,
                         severity=level, team=OTHER_TEAM, service=f"{OTHER_TEAM}-service"))
    if names.META_TEAM not in model.teams:  # the stack's own alerts follow the policy
        out.append(_case("P1 of the stack itself", model.levels["P1"].receivers,
                         severity="P1", team=names.META_TEAM, service=names.META_SERVICE))
    # Services with a maintenance window of their own have route nodes of their own: same receivers.
    for s in model.services:
        for level in names.LEVELS:
            if any(w.services and w.applies(level, s.team, s.name) for w in model.mute_windows):
                owner = model.teams.get(s.team)
                receivers = owner.receivers[level] if owner else model.levels[level].receivers
                out.append(_case(f"{level} of service {s.name} (its own maintenance window)", receivers,
                                 severity=level, team=s.team, service=s.name))
    heartbeat = model.watchdog.receiver if model.watchdog else names.NULL_RECEIVER
    out.append({"name": "Watchdog reaches the heartbeat receiver only",
                "labels": {"alertname": names.WATCHDOG_ALERT, names.SEVERITY: "P3", names.TEAM: names.META_TEAM, names.SERVICE: names.META_SERVICE},
                "receivers": [heartbeat]})
    # The catch-all, at the top level and inside every team sub-tree.
    first_team = next(iter(model.teams))
    out.append(_case("no severity reaches the catch-all", [model.default_receiver], team=first_team))
    out.append(_case("no labels but alertname reach the catch-all", [model.default_receiver]))
    for team in model.teams.values():
        out.append(_case(f"unknown severity of team {team.name} reaches the catch-all", [model.default_receiver],
                         severity=UNKNOWN_SEVERITY, team=team.name, service=services.get(team.name, f"{team.name}-service")))
    return out
