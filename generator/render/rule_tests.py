"""prometheus/tests/*.test.yml: promtool unit tests for every generated alert (see issue: rule tests)."""
from __future__ import annotations

from typing import Any

from generator.model import Model
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {}
