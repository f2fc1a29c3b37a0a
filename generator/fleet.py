"""Fleets: above defaults.FLEET_DASHBOARDS_ABOVE services, dashboards are per shape of service, not per service.

A per-service dashboard costs about 40 KB and a file Grafana provisions, and the stack-wide dashboards
(overview, SLOs, business) grow a query or a section per service: at a thousand services that is
40 MB of JSON and panels of a thousand queries. Above the threshold, services that would get the same
dashboard up to their name and team (same kind, metrics, probes, objectives, alert settings, custom
rules) share one, with a `service` variable listing its members; the overview aggregates instead of
asking per service, and the SLO and business panels live on those dashboards.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from generator import defaults, names
from generator.model import Model, Service


@dataclass(frozen=True)
class Shape:
    """Services sharing one dashboard: its uid and file, and a stand-in service named after the variable."""

    kind: str
    index: int  # 1, 2, ... among the shapes of its kind, in inventory order
    members: tuple[str, ...]
    representative: Service  # the first member
    template: Service  # the representative renamed "$service": every query it builds selects the chosen member

    @property
    def name(self) -> str:
        return f"services-{self.kind}-{self.index}"

    @property
    def uid(self) -> str:
        return names.dashboard_uid("fleet", self.kind, str(self.index))

    @property
    def file(self) -> str:
        return names.dashboard_file(names.GRAFANA_STACK_FOLDER, self.name)


SERVICE_VARIABLE = "$service"


def enabled(model: Model) -> bool:
    return len(model.services) > defaults.FLEET_DASHBOARDS_ABOVE


def _key(s: Service, keep_labels: bool = False) -> str:
    """Everything a service dashboard reads from the service, without what names it (name, team, targets, URLs)."""
    blank = dataclasses.replace(
        s, name="", team="", description=None, labels=s.labels if keep_labels else {}, dashboard_url=None,
        scrape=dataclasses.replace(s.scrape, targets=()) if s.scrape else None,
        probes=tuple(dataclasses.replace(p, url=p.url.split("://", 1)[0]) for p in s.probes))
    return repr(blank)


_MEMO: dict[int, tuple[Model, dict[str, Shape], list[Shape]]] = {}


def _memo(model: Model) -> tuple[Model, dict[str, Shape], list[Shape]]:
    found = _MEMO.get(id(model))
    if found is None or found[0] is not model:
        groups: dict[str, list[Service]] = {}
        for s in model.services:
            groups.setdefault(_key(s), []).append(s)
        counts: dict[str, int] = {}
        shapes: list[Shape] = []
        by_service: dict[str, Shape] = {}
        for members in groups.values():
            rep = members[0]
            counts[rep.kind] = counts.get(rep.kind, 0) + 1
            shape = Shape(rep.kind, counts[rep.kind], tuple(m.name for m in members), rep,
                          dataclasses.replace(rep, name=SERVICE_VARIABLE, description=None))
            shapes.append(shape)
            for m in members:
                by_service[m.name] = shape
        _MEMO.clear()
        found = _MEMO[id(model)] = (model, by_service, shapes)
    return found


def test_groups(model: Model) -> list[list[Service]]:
    """Services whose rules are the same up to their names (the alert labels they add too): a fleet tests one of each.

    validate checks that each member's rule files are its representative's with the names changed
    (checks.rule_tests), so the representative's promtool tests prove them.
    """
    groups: dict[str, list[Service]] = {}
    for s in model.services:
        key = _key(s, keep_labels=True) if enabled(model) and not _user_promql(s) else s.name
        groups.setdefault(key, []).append(s)
    return list(groups.values())


def _user_promql(s: Service) -> bool:
    """Custom rules with PromQL of the user's own (threshold, ratio): such a service is always tested on its own."""
    return any(r.type in ("threshold", "ratio") for r in s.rules)


def shapes(model: Model) -> list[Shape]:
    """Every shape, in inventory order of their first member."""
    return _memo(model)[2]


def shape_of(model: Model, service: str) -> Shape:
    return _memo(model)[1][service]
