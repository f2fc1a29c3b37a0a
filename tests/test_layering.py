"""The package's layers, held by its import graph: inventory -> model -> plan -> renderers -> writer -> checks -> runner -> CLI.

Every import of generator/ (top-level and inside functions; not the ones under
`if TYPE_CHECKING:`, which never run) must point to a lower layer, or stay
inside one package of its own layer; the graph has no cycle. A module that is
in no layer fails the test: place it when you add it.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import ROOT

# Lowest first. A string ending in ".*" is a package: its modules may import each other (without cycles).
LAYERS: list[list[str]] = [
    ["generator", "generator.names", "generator.durations", "generator.units", "generator.errors", "generator.promql"],
    ["generator.defaults", "generator.alerttext", "generator.lint", "generator.components", "generator.targets",
     "generator.links", "generator.textsafety", "generator.regex", "generator.webauth"],
    ["generator.topology", "generator.versions"],
    ["generator.inventory.*", "generator.catalogue.*"],  # what users write; what monstack knows about alerts: independent
    ["generator.model"],
    ["generator.recording", "generator.fleet"],
    ["generator.alerting"],  # which rules each service gets: the plan every renderer reads
    ["generator.render.dashboards.builder"],
    ["generator.render.dashboards.lint", "generator.render.dashboards.panels"],
    ["generator.render.dashboards.sli"],
    # Renderers: one per target, none reads another.
    ["generator.render.alertmanager", "generator.render.blackbox", "generator.render.compose", "generator.render.grafana",
     "generator.render.prometheus", "generator.render.routing_tests", "generator.render.rule_tests", "generator.render.rules",
     "generator.render.runbooks", "generator.render.dashboards.business", "generator.render.dashboards.infrastructure",
     "generator.render.dashboards.overview", "generator.render.dashboards.service", "generator.render.dashboards.slo",
     "generator.render.dashboards.stack"],
    ["generator.render.dashboards"],
    ["generator.render"],
    ["generator.writer", "generator.checks"],
    ["generator.kubernetes", "generator.kubecheck"],  # the rendered targets packaged as Prometheus Operator objects, and their checks
    ["generator.pipeline"],
    ["generator.explain", "generator.testalerts", "generator.sinks", "generator.importer.*", "generator.silences"],
    ["generator.runner.*"],
    ["generator.backtest.*"],  # reads the running stack and starts scratch Prometheus processes
    ["generator.quality.*"],  # the alert-quality benchmark runs the backtest engine
    ["generator.bench.*"],  # measurements: start stacks and processes of their own
    ["generator.cli"],
    ["generator.__main__"],
]


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The generator modules `name` imports at run time, at any depth of its code."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("generator"):
                        found.add(resolve(alias.name) or alias.name)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                if base.startswith("generator"):
                    for alias in child.names:
                        full = f"{base}.{alias.name}"
                        found.add(full if full in modules else (resolve(base) or base))
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    found.discard(name)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted((root / "generator").rglob("*.py"))}
    mods = set(files)
    return {name: imports(path, name, mods) for name, path in files.items()}


def placement(module: str) -> tuple[int, str] | None:
    """(layer, unit) of a module: a package entry makes one unit of all its modules."""
    for i, layer in enumerate(LAYERS):
        for entry in layer:
            if entry.endswith(".*"):
                package = entry[:-2]
                if module == package or module.startswith(package + "."):
                    return i, package
            elif module == entry:
                return i, module
    return None


def problems(g: dict[str, set[str]]) -> list[str]:
    out: list[str] = []
    for module, targets in sorted(g.items()):
        here = placement(module)
        if here is None:
            out.append(f"{module} is in no layer of tests/test_layering.py: place it")
            continue
        for target in sorted(targets):
            there = placement(target)
            if there is None:
                continue  # reported for the target itself
            if there[0] < here[0] or there[1] == here[1]:
                continue
            direction = "up" if there[0] > here[0] else "sideways"
            out.append(f"{module} imports {target}: {direction} (layer {here[0]} -> {there[0]})")
    out += [f"import cycle: {' -> '.join(c)}" for c in cycles(g)]
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), as a readable path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in g:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            strong(v)
    return found


def test_every_import_points_down_and_there_is_no_cycle():
    assert problems(graph(ROOT)) == []


def test_renderers_read_the_plan_not_each_other():
    g = graph(ROOT)
    renderers = [m for m in g if m.startswith("generator.render.") and m != "generator.render.dashboards"
                 and not m.startswith("generator.render.dashboards.")]
    for m in renderers:
        assert not {t for t in g[m] if t.startswith("generator.render")}, f"{m} imports another renderer"


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "generator", tmp_path / "generator", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_planted_upward_import_inside_a_function_is_caught(tmp_path):
    root = _copy(tmp_path)
    model = root / "generator" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _planted():\n    from generator.render import rules\n    return rules\n")
    found = problems(graph(root))
    assert found[0] == "generator.model imports generator.render.rules: up (layer 4 -> 10)"
    # The rules renderer reads the model through the plan, so the planted import also closes a cycle.
    assert found[1:] == ["import cycle: generator.alerting -> generator.fleet -> generator.model -> generator.recording -> generator.render.rules"]


def test_a_planted_cycle_and_a_sideways_import_are_caught(tmp_path):
    root = _copy(tmp_path)
    rules = root / "generator" / "render" / "rules.py"
    rules.write_text(rules.read_text() + "\nfrom generator.render import compose  # noqa\n")
    compose = root / "generator" / "render" / "compose.py"
    compose.write_text(compose.read_text() + "\nfrom generator.render import rules  # noqa\n")
    found = problems(graph(root))
    assert "generator.render.rules imports generator.render.compose: sideways (layer 10 -> 10)" in found
    assert "import cycle: generator.render.compose -> generator.render.rules" in found


def test_type_checking_imports_do_not_count(tmp_path):
    root = _copy(tmp_path)
    names = root / "generator" / "names.py"
    names.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from generator.model import Model\n" + names.read_text())
    assert problems(graph(root)) == []
