"""Sections `render` and `validate`: how the generator's time, memory and output grow with the fleet.

render: for each size, a fresh Python process loads a synthetic inventory, resolves it, renders every
target, serializes and writes the files (no promtool/amtool: that is `validate`), and reports each
phase's seconds, its own peak RSS, and the files and bytes written. validate: `monstack validate`
(every checker and generated test) as a subprocess, timed.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from generator.bench import synthetic_inventory
from generator.bench.common import SCRATCH, Say, python, run_child, table, write_section

TIMEOUT = 600.0  # seconds one size may take before it is reported unfinished


def inventory_file(n: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"services-{n}.yaml"
    path.write_text(yaml.safe_dump(synthetic_inventory(n), sort_keys=False))
    return path


def child(inventory: Path, out: Path) -> dict[str, Any]:
    """One measured render + write, in this process (started fresh by the section), as `monstack render --no-check` does it."""
    from generator import pipeline, writer
    from generator.inventory.loader import load_inventory
    from generator.model import resolve
    from generator.topology import COMPOSE

    t: dict[str, float] = {}
    start = time.perf_counter()
    inv, src = load_inventory(inventory)
    t["load"] = time.perf_counter() - start
    mark = time.perf_counter()
    model = resolve(inv, src)
    t["resolve"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    # Rendering, serializing and writing interleave (one file at a time), in two processes from
    # pipeline.PARALLEL_FROM services on, as in monstack render.
    staging, paths = pipeline.stage(model, COMPOSE, out)
    t["render_write"] = time.perf_counter() - mark
    mark = time.perf_counter()
    writer.commit_staged(staging, paths, out)
    shutil.rmtree(staging, ignore_errors=True)
    t["commit"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    files = [out / p for p in paths]
    return {
        "services": len(model.services),
        "files": len(paths),
        "output_bytes": sum(f.stat().st_size for f in files),
        "seconds": {k: round(v, 3) for k, v in t.items()},
        # CPU time is steadier than wall time on a shared machine: both are reported.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime, 2),
        "peak_rss_mib": round(max(usage.ru_maxrss, children.ru_maxrss) / 1024, 1),  # the largest process
    }


def run(sizes: list[int], out: Say) -> dict[str, Any]:
    folder = SCRATCH / "render"
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for n in sizes:
        inv = inventory_file(n, folder)
        code, seconds, stdout = run_child([python(), "-m", "generator.bench.render", "--child", str(inv), str(folder / f"out-{n}")],
                                          TIMEOUT, folder / f"render-{n}.log")
        shutil.rmtree(folder / f"out-{n}", ignore_errors=True)
        if code != 0:
            why = f"did not finish within {TIMEOUT:g}s" if code is None else f"failed (exit {code}, see {folder / f'render-{n}.log'})"
            results.append({"services": n, "error": why, "seconds": {"total": round(seconds, 1)}})
            rows.append([n, None, None, None, None, None, None, None, why])
            continue
        r = json.loads(stdout)
        r["bytes_per_service"] = round(r["output_bytes"] / n)
        out(f"  {n} services: {r['seconds']['total']}s wall, {r['cpu_seconds']}s CPU, peak RSS {r['peak_rss_mib']} MiB")
        results.append(r)
        s = r["seconds"]
        rows.append([n, r["files"], round(s["load"] + s["resolve"], 2), s["render_write"] + s["commit"], s["total"], r["cpu_seconds"],
                     r["peak_rss_mib"], round(r["bytes_per_service"] / 1024, 1), ""])
    by_size = {r["services"]: r for r in results if "error" not in r}
    ratio = cpu_ratio = None
    if 1000 in by_size and 10000 in by_size:
        ratio = round(by_size[10000]["seconds"]["total"] / by_size[1000]["seconds"]["total"], 2)
        cpu_ratio = round(by_size[10000]["cpu_seconds"] / by_size[1000]["cpu_seconds"], 2)
    out(table(["services", "files", "load s", "render+write s", "total s", "CPU s", "peak RSS MiB", "KiB/service", ""], rows))
    if ratio is not None:
        out(f"time(10k) / time(1k) = {ratio} (wall), {cpu_ratio} (CPU)")
    figures = {"sizes": results, "time_ratio_10k_1k": ratio, "cpu_ratio_10k_1k": cpu_ratio}
    write_section("render", figures)
    return figures


def run_validate(sizes: list[int], out: Say) -> dict[str, Any]:
    folder = SCRATCH / "render"
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for n in sizes:
        inv = inventory_file(n, folder)
        code, seconds, stdout = run_child([python(), "-m", "generator", "validate", "--inventory", str(inv)], TIMEOUT,
                                          folder / f"validate-{n}.log")
        status = "valid" if code == 0 else f"did not finish within {TIMEOUT:g}s" if code is None else f"exit {code}"
        checks = [line for line in stdout.splitlines() if line.startswith(("ok ", "FAIL"))]
        results.append({"services": n, "seconds": round(seconds, 1), "status": status, "checks": checks})
        rows.append([n, round(seconds, 1), status])
    out(table(["services", "validate s", "result"], rows))
    figures = {"sizes": results}
    write_section("validate", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m generator.bench.render")
    parser.add_argument("--child", nargs=2, metavar=("INVENTORY", "OUT"), required=True)
    args = parser.parse_args()
    json.dump(child(Path(args.child[0]), Path(args.child[1])), sys.stdout)
