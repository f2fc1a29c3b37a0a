"""load -> validate -> model -> render -> serialize -> stage -> check -> write. Commands call these."""
from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from generator import checks, names, writer
from generator.errors import CheckFailed, InventoryError, Problem
from generator.inventory import handwritten
from generator.inventory.loader import parse, read_source
from generator.model import Model, raw_problems, resolve
from generator.render import PARTS, iter_render, render_all
from generator.topology import COMPOSE, SERVICE_NAMES, Topology


def load_model(inventory: Path) -> Model:
    """The inventory and rules.d/ beside it, resolved; every problem of both at once."""
    problems = []
    src = read_source(inventory)
    inv = None
    try:
        inv = parse(src)
    except InventoryError as exc:  # add what resolving would find on names, so one run reports all
        problems += exc.problems + raw_problems(src)
    try:
        rules = handwritten.load_folder(inventory)
    except InventoryError as exc:
        problems += exc.problems
    if problems or inv is None:
        raise InventoryError(problems)
    model = resolve(inv, src, rules)
    for w in model.warnings:  # accepted, but a policy a reader should see (generator/inventory/policy.py)
        print(f"warning: {w}", file=sys.stderr)
    return model


def for_mode(model: Model, topo: Topology) -> Model:
    """Links in rules, notifications and docs point where this mode serves its pages."""
    return replace(model, stack=replace(model.stack, ui_override=topo.ui)) if topo.ui is not None else model


@dataclass(frozen=True)
class Build:
    model: Model
    files: dict[str, bytes]


def build(inventory: Path, topo: Topology = COMPOSE) -> Build:
    """Every file in memory (drift checks, tests); `render` streams them to disk instead."""
    model = for_mode(load_model(inventory), topo)
    return Build(model, writer.serialize_all(render_all(model, topo), model.source))


def render(inventory: Path, out_dir: Path, topo: Topology = COMPOSE, run_checks: bool = True,
           full: bool = False) -> tuple[writer.WriteResult, list[checks.CheckResult]]:
    """Render, check the staged tree with promtool/amtool, then replace the output files.

    Nothing in out_dir changes unless every check passed; then it changes all at once (writer.commit).
    """
    model = for_mode(load_model(inventory), topo)
    with writer.locked(out_dir):
        recovered = writer.recover(out_dir)
        staging, paths = stage(model, topo, out_dir)
        try:
            writer.check_tree(paths, out_dir)
            if unmanaged := writer.unmanaged_rules(paths, out_dir):
                raise CheckFailed("rule files monstack did not write would be loaded by Prometheus unchecked; nothing was written:\n"
                                  + "\n".join(f"  {p}: move it to {handwritten.FOLDER}/ beside the inventory (checked and tested there)"
                                               for p in unmanaged))
            results: list[checks.CheckResult] = []
            if run_checks:
                results = checks.all_checks(staging) if full else checks.static_checks(staging)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise CheckFailed("generated configuration rejected; nothing was written:\n" + "\n".join(str(r) for r in failed))
            result = writer.commit_staged(staging, paths, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    result.recovered = recovered
    return result, results


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
    staging = Path(tempfile.mkdtemp(prefix=writer.STAGING_PREFIX, dir=parent))
    try:
        global _FORKED
        _FORKED = (model, topo, staging)  # the forked workers inherit it: nothing is pickled
        # The model's objects live as long as the workers: frozen, the collector's full passes in each worker skip them
        # (and so do not touch, and copy, every page the fork shares).
        gc.freeze()
        try:
            with multiprocessing.get_context("fork").Pool(len(PARTS)) as pool:
                parts = pool.map(_stage_part, range(len(PARTS)))
        finally:
            gc.unfreeze()
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


@dataclass(frozen=True)
class KubeBuild:
    model: Model
    files: dict[str, bytes]  # relative to names.KUBERNETES_DIR
    compose: dict[str, bytes]  # what the objects package, with the generated tests that prove it


def build_kubernetes(inventory: Path) -> KubeBuild:
    from generator import kubernetes

    model = load_model(inventory)
    # stack.web_auth guards the Prometheus, Alertmanager and VictoriaMetrics monstack runs; the Operator's own objects
    # carry no web config of monstack's, so their clients need no credentials.
    model = replace(model, stack=replace(model.stack, web_auth=None))
    outputs = render_all(model, SERVICE_NAMES)
    return KubeBuild(model, writer.serialize_all(kubernetes.render(model, outputs), model.source), writer.serialize_all(outputs, model.source))


def kube_checks(b: KubeBuild, work_dir: Path, full: bool) -> list[checks.CheckResult]:
    """The tools' checks on the content of the objects: rules from the PrometheusRules, the config from its Secret."""
    from generator import kubecheck

    staging = writer.stage(kubecheck.extract(b.files, b.compose), work_dir)
    try:
        return kubecheck.all_checks(staging) if full else kubecheck.static_checks(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render_kubernetes(inventory: Path, out_dir: Path, run_checks: bool = True, full: bool = False) -> tuple[writer.WriteResult, list[checks.CheckResult]]:
    """Like render, for the Kubernetes tree under out_dir/kubernetes (its own manifest)."""
    b = build_kubernetes(inventory)
    root = kubernetes_root(out_dir)
    # The checks stage beside the output, so a render of out_dir must not sweep them away meanwhile.
    with writer.locked(out_dir), writer.locked(root):
        recovered = writer.recover(root)
        staging = writer.stage(b.files, root)
        try:
            writer.check_tree(b.files, root)
            results: list[checks.CheckResult] = []
            if run_checks:
                results = kube_checks(b, out_dir, full)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise CheckFailed("generated configuration rejected; nothing was written:\n" + "\n".join(str(r) for r in failed))
            result = writer.commit(staging, b.files, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    result.recovered = recovered
    return result, results


def kubernetes_root(out_dir: Path) -> Path:
    """out_dir/kubernetes, the Kubernetes tree's own root; InventoryError (exit 2) when it leads out of out_dir (a symlink)."""
    if why := writer.outside(out_dir, f"{names.KUBERNETES_DIR}/{names.MANIFEST}"):
        raise InventoryError([Problem(str(out_dir / names.KUBERNETES_DIR), 0, "", why)])
    return out_dir / names.KUBERNETES_DIR


def validate_kubernetes(inventory: Path, work_dir: Path) -> list[checks.CheckResult]:
    return kube_checks(build_kubernetes(inventory), work_dir, full=True)


def drift_kubernetes(inventory: Path, out_dir: Path) -> list[writer.Drift]:
    found = writer.drift(build_kubernetes(inventory).files, kubernetes_root(out_dir))
    return [writer.Drift(f"{names.KUBERNETES_DIR}/{d.path}", d.status) for d in found]


def has_kubernetes(out_dir: Path) -> bool:
    """A Kubernetes tree was rendered (and so is kept current) under out_dir."""
    return (out_dir / names.KUBERNETES_DIR / names.MANIFEST).is_file()


def validate(inventory: Path, work_dir: Path,
             report: Callable[[checks.CheckResult], None] | None = None) -> list[checks.CheckResult]:
    """Render into a scratch folder and run every checker and generated test there; writes nothing else."""
    model = load_model(inventory)
    staging, _ = stage(model, COMPOSE, work_dir)
    try:
        return checks.all_checks(staging, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def drift(inventory: Path, out_dir: Path) -> list[writer.Drift]:
    return writer.drift(build(inventory).files, out_dir)
