"""load -> validate -> model -> render -> serialize -> stage -> check -> write. Commands call these."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator import checks, writer
from generator.errors import CheckFailed
from generator.inventory.loader import load_inventory
from generator.model import Model, resolve
from generator.render import PARTS, iter_render, render_all
from generator.topology import COMPOSE, Topology


def load_model(inventory: Path) -> Model:
    inv, src = load_inventory(inventory)
    return resolve(inv, src)


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
    model = load_model(inventory)
    staging, paths = stage(model, topo, out_dir)
    try:
        results: list[checks.CheckResult] = []
        if run_checks:
            results = checks.all_checks(staging) if full else checks.static_checks(staging)
            failed = [r for r in results if not r.ok]
            if failed:
                raise CheckFailed("generated configuration rejected; nothing was written:\n" + "\n".join(str(r) for r in failed))
        return writer.commit_staged(staging, paths, out_dir), results
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# From this many services, rendering in two processes (render.PARTS) pays for starting the second.
PARALLEL_FROM = 500


def stage(model: Model, topo: Topology, parent: Path) -> tuple[Path, list[str]]:
    """Render, serialize and write every file into a fresh staging directory under parent; (directory, paths).

    A large inventory is rendered in two forked processes, one share of the renderers each: the
    files and the manifest are the same bytes either way.
    """
    if len(model.services) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return writer.stage_iter(iter_render(model, topo), model.source, parent)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".monstack-staging-", dir=parent))
    try:
        global _FORKED
        _FORKED = (model, topo, staging)  # the forked workers inherit it: nothing is pickled
        with multiprocessing.get_context("fork").Pool(len(PARTS)) as pool:
            parts = pool.map(_stage_part, range(len(PARTS)))
        digests: dict[str, str] = {}
        for part in parts:
            clash = digests.keys() & part.keys()
            assert not clash, f"two renderers produce {sorted(clash)}"
            digests.update(part)
        return staging, writer.finish_staging(staging, digests)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _FORKED = None


_FORKED: tuple[Model, Topology, Path] | None = None


def _stage_part(part: int) -> dict[str, str]:
    assert _FORKED is not None
    model, topo, staging = _FORKED
    return writer.write_into(staging, iter_render(model, topo, part), model.source)


def validate(inventory: Path, work_dir: Path) -> list[checks.CheckResult]:
    """Render into a scratch folder and run every checker and generated test there; writes nothing else."""
    model = load_model(inventory)
    staging, _ = stage(model, COMPOSE, work_dir)
    try:
        return checks.all_checks(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def drift(inventory: Path, out_dir: Path) -> list[writer.Drift]:
    return writer.drift(build(inventory).files, out_dir)
