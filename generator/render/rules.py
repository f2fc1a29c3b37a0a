"""prometheus/rules/*.yml: one file per service (recording, alert and SLO groups) and one for the stack itself.

Which rules go where is decided beside the model (generator/alerting.py); this
module only writes them in Prometheus' rule-file shape.
"""
from __future__ import annotations

from typing import Any, Iterator

from generator import alerting, names
from generator.model import Model
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return dict(iter_render(model, topo))


def iter_render(model: Model, topo: Topology) -> Iterator[tuple[str, Any]]:
    """The rule files one at a time, so a large fleet's rules need not be in memory at once."""
    for stem, groups in alerting.rule_files(model).items():
        yield names.rules_file(stem), {"groups": [group(model, g) for g in groups]}
    # rules.d/ beside the inventory: as written, checked by promtool with the rest.
    for f in model.handwritten:
        yield names.handwritten_rules_file(f.name), {"groups": list(f.groups)}


def group(model: Model, g: alerting.RuleGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"name": g.name}
    if g.interval is not None:
        out["interval"] = str(g.interval)
    out["rules"] = [*g.records, *(rule(model, a) for a in g.alerts)]
    return out


def rule(model: Model, a: alerting.Alert) -> dict[str, Any]:
    return {
        "alert": a.name,
        "expr": a.definition.expression(a.ctx),
        "for": str(a.ctx.setting.for_),
        "labels": alerting.labels(model, a),
        "annotations": alerting.alert_annotations(model, a),
    }
