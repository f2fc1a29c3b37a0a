"""What docs/prometheus-versions.md promises about the rendered files holds for every committed inventory."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from generator import names

ROOTS = [ROOT, *sorted(p.parent for p in ROOT.glob("examples/*/services.yaml"))]
IDS = [str(r.relative_to(ROOT)) or "." for r in ROOTS]


def _texts(root: Path) -> list[str]:
    return [p.read_text() for pattern in (f"{names.RULES_DIR}/*.yml", f"{names.DASHBOARDS_DIR}/*/*.json") for p in root.glob(pattern)]


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_le_matchers_accept_both_spellings_of_a_whole_bound(root: Path):
    seen = 0
    for text in _texts(root):
        assert not re.search(r'\ble="\d+"', text), "an exact le=\"N\" stops matching on Prometheus 3 (stored as N.0)"
        for alternatives in re.findall(r'\ble=~\\?"([^"\\]*(?:\\\\.[^"\\]*)*)\\?"', text):
            seen += 1
            whole = [a for a in alternatives.split("|") if a.isdigit()]
            assert all(f"{a}\\\\.0" in alternatives or f"{a}\\.0" in alternatives for a in whole), alternatives
    assert seen or root != ROOT  # services.yaml has latency SLOs: the check above ran


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_no_function_prometheus_3_removed(root: Path):
    assert not [t for t in _texts(root) if "holt_winters" in t]


@pytest.mark.parametrize("root", ROOTS, ids=IDS)
def test_alertmanager_is_addressed_through_the_v2_api(root: Path):
    cfg = yaml.safe_load((root / names.PROMETHEUS_CONFIG).read_text())
    assert all(am.get("api_version") == "v2" for am in cfg["alerting"]["alertmanagers"])
