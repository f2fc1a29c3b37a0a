"""Every PromQL expression monstack renders parses with the grammar of the Prometheus compose deploys.

promtool here is Debian's 2.42 while compose runs Prometheus 3.x; Prometheus 3's own parser
(the Lezer grammar of its web UI, npm @prometheus-io/lezer-promql, released in step with
Prometheus: 0.305.x is 3.5.x) judges every rule expression and every dashboard query
(with Grafana's variables filled in) of every committed inventory.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import INVENTORIES, ROOT

from generator import names, pipeline, versions
from generator.render.dashboards import lint

TOOLS = Path(__file__).resolve().parent / "tools"
INVENTORY_FILES = [ROOT / "services.yaml", *sorted(ROOT.glob("examples/*/services.yaml")), *sorted((INVENTORIES / "good").glob("*.yaml"))]

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="npm/node not installed")]


def grammar_version() -> str:
    """The @prometheus-io/lezer-promql release of the Prometheus image compose pins (3.5.0 -> 0.305.0)."""
    v = versions.deployed("prometheus")[1]
    assert v and v[0] >= 3, f"the pinned Prometheus {v} has no matching lezer-promql release scheme"
    return f"0.{v[0] * 100 + v[1]}.{v[2]}"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    proc = subprocess.run(["bash", str(TOOLS / "promql_grammar.sh"), grammar_version()], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1]) / "node_modules"


def parse(node_modules: Path, exprs: list[str]) -> list[list[dict]]:
    proc = subprocess.run(["node", str(TOOLS / "promql_parse.cjs"), str(node_modules)], input=json.dumps(exprs),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rendered_expressions(inventory: Path) -> dict[str, str]:
    """where -> expression: rule expressions and concrete dashboard queries of one inventory."""
    files = pipeline.build(inventory).files
    out: dict[str, str] = {}
    for path, data in files.items():
        if path.startswith(names.RULES_DIR + "/"):
            for g in yaml.safe_load(data)["groups"]:
                for r in g["rules"]:
                    out[f"{path} {r.get('alert') or r.get('record')}"] = r["expr"]
        elif path.startswith(names.DASHBOARDS_DIR + "/"):
            d = json.loads(data)
            values = lint.variable_values(d)
            for q in lint.queries(d):
                out[f"{path} {q.panel!r} {q.ref_id}"] = lint.concrete(q.expr, values)
    return out


def test_the_grammar_is_a_real_judge(node_modules: Path):
    ok, bad, removed = parse(node_modules, ["sum by (le) (rate(x_bucket[5m]))", "rate(x[5m]) >", "holt_winters(x[5m], 0.5, 0.5)"])
    assert ok == [] and bad and removed  # holt_winters is gone in Prometheus 3 (double_exponential_smoothing, a feature flag)


@pytest.mark.parametrize("inventory", INVENTORY_FILES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_rendered_expression_parses_with_prometheus_3(node_modules: Path, inventory: Path):
    exprs = rendered_expressions(inventory)
    assert exprs
    results = parse(node_modules, list(exprs.values()))
    failures = [f"{where}: {errs[0]['text']!r} in {expr!r}" for (where, expr), errs in zip(exprs.items(), results, strict=True) if errs]
    assert not failures, "\n".join(failures)
