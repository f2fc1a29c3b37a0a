"""Shared by the dashboard and Grafana tests: which inventories to render, and rendering them."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from generator import names, pipeline
from generator.model import Model
from generator.render import dashboards, grafana, render_all
from generator.topology import COMPOSE

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = Path(__file__).resolve().parent / "inventories"


def inventories() -> list[Path]:
    """services.yaml, every example, the good fixtures, the dashboard edge cases and the live test's stack."""
    found = [ROOT / "services.yaml"]
    found += sorted((ROOT / "examples").glob("*/services.yaml"))
    found += sorted((INVENTORIES / "good").glob("*.yaml"))
    found += sorted((INVENTORIES / "dashboards").glob("*.yaml"))
    found += sorted((INVENTORIES / "live").glob("*.yaml"))
    return found


def ident(path: Path) -> str:
    """A test id: the example's folder, else the file's stem."""
    return path.parent.name if path.name == "services.yaml" and path.parent != ROOT else path.stem


@dataclass(frozen=True)
class Rendered:
    model: Model
    dashboards: dict[str, dict[str, Any]]  # file -> dashboard
    outputs: dict[str, Any]  # everything render_all produces (rules, provisioning, ...)

    @property
    def provisioned_uids(self) -> set[str]:
        return {ds["uid"] for ds in self.outputs[names.GRAFANA_DATASOURCES]["datasources"]}

    @property
    def uids(self) -> set[str]:
        return {d["uid"] for d in self.dashboards.values()}

    def by_uid(self, uid: str) -> dict[str, Any]:
        return next(d for d in self.dashboards.values() if d["uid"] == uid)


@lru_cache(maxsize=None)
def render(inventory: Path) -> Rendered:
    model = pipeline.load_model(inventory)
    outputs = render_all(model, COMPOSE)
    found = {path: data for path, data in outputs.items() if path.startswith(names.DASHBOARDS_DIR + "/")}
    assert found == dashboards.render(model, COMPOSE)
    assert grafana.render(model, COMPOSE).keys() <= outputs.keys()
    return Rendered(model, found, outputs)
