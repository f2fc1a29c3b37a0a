"""grafana/dashboards/<folder>/*.json: dashboards generated from the inventory, as data.

The stack-wide dashboards (overview, SLOs, infrastructure, business, the stack itself) go to
the stack's folder, each service's dashboard to its team's folder (see render/grafana.py for
the providers). A dashboard with nothing to show for an inventory (no SLOs, no hosts, no
custom rules) is not generated.
"""
from __future__ import annotations

from typing import Any

from generator import names
from generator.model import Model
from generator.render.dashboards import business, infrastructure, overview, service, slo, stack
from generator.topology import Topology

STACK_DASHBOARDS = (overview, slo, infrastructure, business, stack)


def render(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module in STACK_DASHBOARDS:
        d = infrastructure.render(model, containers=topo.containers) if module is infrastructure else module.render(model)
        if d is not None:
            out[names.dashboard_file(names.GRAFANA_STACK_FOLDER, module.NAME)] = d
    for path, d in service.render(model).items():
        assert path not in out, f"dashboard file {path} produced twice (a team named {names.GRAFANA_STACK_FOLDER!r}?)"
        out[path] = d
    return out
