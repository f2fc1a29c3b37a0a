"""Fuzzed inventories: whatever a user writes, monstack answers with a model or located problems, never a crash."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import INVENTORIES, ROOT
from generator.errors import InventoryError, Problem
from generator.inventory.loader import load_inventory
from generator.model import resolve

BASES = [yaml.safe_load((INVENTORIES / "good" / "minimal.yaml").read_text()), yaml.safe_load((ROOT / "services.yaml").read_text())]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["15s", "-1m", "P0", "P9", "http", "slack", "#x", "a:1", "sum(", "100"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(root, path, value):
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def mutated(draw):
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        else:
            _set(data, path, draw(values))
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated())
def test_any_mutation_gives_a_model_or_located_problems(data, tmp_path_factory):
    path: Path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        inv, src = load_inventory(path)
        resolve(inv, src)
    except InventoryError as exc:
        assert exc.problems
        for p in exc.problems:
            assert isinstance(p, Problem) and p.file == str(path) and p.line >= 1 and p.message


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(text)
    try:
        load_inventory(path)
    except InventoryError as exc:
        assert exc.problems
