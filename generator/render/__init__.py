"""Pure renderers, one module per target: model (+ topology) -> {relative path: data}.

No I/O here. The writer (generator/writer.py) turns data into bytes.
"""
from __future__ import annotations

from typing import Any

from generator.model import Model
from generator.topology import Topology

Outputs = dict[str, Any]


def render_all(model: Model, topo: Topology) -> Outputs:
    from generator.render import (
        alertmanager,
        blackbox,
        compose,
        dashboards,
        grafana,
        prometheus,
        routing_tests,
        rule_tests,
        rules,
        runbooks,
    )

    out: Outputs = {}
    for module in (prometheus, blackbox, rules, rule_tests, runbooks, alertmanager, routing_tests, grafana, dashboards, compose):
        part = module.render(model, topo)
        clash = out.keys() & part.keys()
        assert not clash, f"two renderers produce {sorted(clash)}"
        out.update(part)
    return dict(sorted(out.items()))
