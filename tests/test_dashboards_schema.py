"""Every generated dashboard validates against Grafana's published dashboard schema.

The schema is @grafana/schema (npm), turned into JSON Schema by tests/tools/grafana_schema.sh:
the classic dashboard model, and the options and field config of each panel plugin monstack
uses. The script runs here when the schema is missing and npm is available. In CI (CI set) a
missing schema fails the run; elsewhere the tests skip and say how to fetch it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT
from dashboard_support import ident, inventories, render
from generator.render.dashboards import lint

SCRIPT = ROOT / "tests" / "tools" / "grafana_schema.sh"


def _schema_dir() -> Path:
    """The script's own default, read from it so the two never disagree."""
    if os.environ.get("MONSTACK_GRAFANA_SCHEMA_DIR"):
        return Path(os.environ["MONSTACK_GRAFANA_SCHEMA_DIR"])
    version = next(line.split("=", 1)[1].split()[0] for line in SCRIPT.read_text().splitlines()
                   if line.startswith("GRAFANA_SCHEMA_VERSION="))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "monstack" / f"grafana-schema-{version}"


class Schemas:
    def __init__(self, folder: Path):
        self.folder = folder
        self.dashboard = jsonschema.Draft7Validator(json.loads((folder / "dashboard.json").read_text()))
        self.panels = {p.name.removesuffix(".json"): jsonschema.Draft7Validator(json.loads(p.read_text()))
                       for p in sorted((folder / "panels").glob("*.json"))}

    def errors(self, d: dict) -> list[str]:
        out = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self.dashboard.iter_errors(d)]
        for p in lint.panels(d):
            kind = p["type"]
            options = self.panels.get(f"{kind}.options")
            if options is None:
                out.append(f"panel {p['title']!r}: no published schema for panel type {kind!r}")
                continue
            out += [f"panel {p['title']!r} options: {e.message}" for e in options.iter_errors(p.get("options", {}))]
            custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom")
            field_schema = self.panels.get(f"{kind}.fieldconfig")
            if custom is not None and field_schema is not None:
                out += [f"panel {p['title']!r} fieldConfig.defaults.custom: {e.message}" for e in field_schema.iter_errors(custom)]
        return out


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    folder = _schema_dir()
    note = ""
    if not (folder / "VERSIONS").is_file() and shutil.which("npm"):
        proc = subprocess.run(["bash", str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=300)
        note = (proc.stdout + proc.stderr).strip()
    if not (folder / "VERSIONS").is_file():
        message = f"Grafana's dashboard schema is not in {folder}: run {SCRIPT.relative_to(ROOT)} (needs npm)" + (f"\n{note}" if note else "")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Schemas(folder)


@pytest.mark.parametrize("inventory", inventories(), ids=ident)
def test_dashboards_match_grafanas_schema(schemas, inventory):
    r = render(inventory)
    errors = {path: schemas.errors(d) for path, d in r.dashboards.items()}
    assert {path: e for path, e in errors.items() if e} == {}


def test_the_schema_rejects_what_grafana_would(schemas):
    """Validation is strict: an unknown key, a wrong type and an incomplete stat panel all fail."""
    d = json.loads(json.dumps(render(inventories()[0]).by_uid("ms-overview")))
    assert schemas.errors(d) == []
    d["refreshh"] = "30s"
    d["panels"][1]["gridPos"]["w"] = "wide"
    stat = next(p for p in lint.panels(d) if p["type"] == "stat")
    del stat["options"]["reduceOptions"]
    found = "\n".join(schemas.errors(d))
    assert "'refreshh' was unexpected" in found
    assert "'reduceOptions' is a required property" in found
    assert "panels/1" in found


def test_every_panel_type_used_has_a_published_schema(schemas):
    used = {p["type"] for inv in inventories() for d in render(inv).dashboards.values() for p in lint.panels(d)}
    assert used <= {name.split(".")[0] for name in schemas.panels}
