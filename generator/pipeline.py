"""load -> validate -> model -> render -> serialize -> stage -> check -> write. Commands call these."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from generator import checks, writer
from generator.errors import CheckFailed, InventoryError
from generator.inventory.loader import parse, read_source
from generator.model import Model, raw_problems, resolve
from generator.render import render_all
from generator.topology import COMPOSE, Topology


def load_model(inventory: Path) -> Model:
    src = read_source(inventory)
    try:
        inv = parse(src)
    except InventoryError as exc:  # add what resolving would find on names, so one run reports all
        raise InventoryError(exc.problems + raw_problems(src)) from None
    return resolve(inv, src)


@dataclass(frozen=True)
class Build:
    model: Model
    files: dict[str, bytes]


def build(inventory: Path, topo: Topology = COMPOSE) -> Build:
    model = load_model(inventory)
    if topo.ui is not None:  # links in rules, notifications and docs point where this mode serves its pages
        model = replace(model, stack=replace(model.stack, ui_override=topo.ui))
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


def validate(inventory: Path, work_dir: Path,
             report: Callable[[checks.CheckResult], None] | None = None) -> list[checks.CheckResult]:
    """Render into a scratch folder and run every checker and generated test there; writes nothing else."""
    b = build(inventory)
    staging = writer.stage(b.files, work_dir)
    try:
        return checks.all_checks(staging, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def drift(inventory: Path, out_dir: Path) -> list[writer.Drift]:
    return writer.drift(build(inventory).files, out_dir)
