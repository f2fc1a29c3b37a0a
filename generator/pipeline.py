"""load -> validate -> model -> render -> serialize -> stage -> check -> write. Commands call these."""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from generator import checks, writer
from generator.errors import CheckFailed
from generator.inventory.loader import load_inventory
from generator.model import Model, resolve
from generator.render import render_all
from generator.topology import COMPOSE, Topology


def load_model(inventory: Path) -> Model:
    inv, src = load_inventory(inventory)
    model = resolve(inv, src)
    for w in model.warnings:  # accepted, but a policy a reader should see (generator/inventory/policy.py)
        print(f"warning: {w}", file=sys.stderr)
    return model


@dataclass(frozen=True)
class Build:
    model: Model
    files: dict[str, bytes]


def build(inventory: Path, topo: Topology = COMPOSE) -> Build:
    model = load_model(inventory)
    return Build(model, writer.serialize_all(render_all(model, topo), model.source))


def render(inventory: Path, out_dir: Path, topo: Topology = COMPOSE, run_checks: bool = True,
           full: bool = False) -> tuple[writer.WriteResult, list[checks.CheckResult]]:
    """Render, check the staged tree with promtool/amtool, then replace the output files.

    Nothing in out_dir changes unless every check passed.
    """
    b = build(inventory, topo)
    staging = writer.stage(b.files, out_dir)
    try:
        results: list[checks.CheckResult] = []
        if run_checks:
            results = checks.all_checks(staging) if full else checks.static_checks(staging)
            failed = [r for r in results if not r.ok]
            if failed:
                raise CheckFailed("generated configuration rejected; nothing was written:\n" + "\n".join(str(r) for r in failed))
        return writer.commit(staging, b.files, out_dir), results
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate(inventory: Path, work_dir: Path) -> list[checks.CheckResult]:
    """Render into a scratch folder and run every checker and generated test there; writes nothing else."""
    b = build(inventory)
    staging = writer.stage(b.files, work_dir)
    try:
        return checks.all_checks(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def drift(inventory: Path, out_dir: Path) -> list[writer.Drift]:
    return writer.drift(build(inventory).files, out_dir)
