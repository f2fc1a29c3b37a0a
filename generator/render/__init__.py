"""Pure renderers, one module per target: model (+ topology) -> {relative path: data}.

No I/O here. The writer (generator/writer.py) turns data into bytes.
"""
from __future__ import annotations

from typing import Any, Iterator

from generator.model import Model
from generator.topology import Topology

Outputs = dict[str, Any]


def render_all(model: Model, topo: Topology) -> Outputs:
    return dict(sorted(iter_render(model, topo)))


# Two shares of the work, about even on a large fleet (the rules and their tests; the runbooks and the
# rest): `monstack render` renders them in two processes when the inventory is big enough to gain.
PARTS = (("rules", "rule_tests"),
         ("prometheus", "blackbox", "runbooks", "alertmanager", "routing_tests", "grafana", "dashboards", "compose"))


def iter_render(model: Model, topo: Topology, part: int | None = None) -> Iterator[tuple[str, Any]]:
    """(path, data) of every output (of one of PARTS), renderer by renderer; the big ones (rules, tests) file by file."""
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

    seen: set[str] = set()
    for module in (prometheus, blackbox, rules, rule_tests, runbooks, alertmanager, routing_tests, grafana, dashboards, compose):
        if part is not None and module.__name__.rsplit(".", 1)[-1] not in PARTS[part]:
            continue
        lazy = getattr(module, "iter_render", None)
        for path, data in (lazy(model, topo) if lazy else module.render(model, topo).items()):
            assert path not in seen, f"two renderers produce {path}"
            seen.add(path)
            yield path, data
