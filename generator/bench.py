"""`make bench`: how render time and memory grow with the inventory (100 to 10,000 services).

Prints a table and writes JSON (default .monstack/bench.json). Numbers, not
pass/fail: speed goals are read here, never asserted in unit tests.
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import yaml

from generator import writer
from generator.inventory.loader import load_inventory
from generator.model import resolve
from generator.render import render_all
from generator.topology import COMPOSE

KINDS = ("http", "http", "http", "worker", "postgres", "redis", "custom")


def synthetic_inventory(n: int) -> dict[str, Any]:
    """n services over n/20 teams, mixing kinds, probes, SLOs and custom rules like a real fleet."""
    teams: dict[str, dict[str, Any]] = {f"team-{t}": {} for t in range(max(1, n // 20))}
    team_names = list(teams)
    services = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        svc: dict[str, Any] = {"name": f"svc-{i}", "team": team_names[i % len(team_names)], "kind": kind,
                               "scrape": {"targets": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9100"]}}
        if kind == "http":
            svc["health"] = [{"name": "liveness", "url": f"http://svc-{i}.internal:8080/health"}]
            svc["slo"] = {"availability": 99.9, "latency": {"threshold": "500ms", "percentile": 95}}
        if kind == "custom":
            svc["rules"] = [{"name": "ThingsStalled", "type": "stalled", "metric": "things_processed_total", "for": "15m"}]
        services.append(svc)
    return {
        "version": 1,
        "stack": {"retention": {"time": "30d"}},  # the 30-day SLO windows need 30 days of samples
        "receivers": {"slack": {"type": "slack", "webhook_url_file": "secrets/slack", "channel": "#alerts"},
                      "pager": {"type": "pagerduty", "routing_key_file": "secrets/pd"}},
        "severities": {"P0": {"receivers": ["pager", "slack"]}, "P1": {"receivers": ["slack"]},
                       "P2": {"receivers": ["slack"]}, "P3": {"receivers": ["slack"]}},
        "teams": teams,
        "services": services,
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run_size(n: int, folder: Path) -> dict[str, Any]:
    path = folder / f"services-{n}.yaml"
    path.write_text(yaml.safe_dump(synthetic_inventory(n), sort_keys=False))
    gc.collect()
    (inv, src), t_load = _timed(lambda: load_inventory(path))
    model, t_resolve = _timed(lambda: resolve(inv, src))
    outputs, t_render = _timed(lambda: render_all(model, COMPOSE))
    files, t_serialize = _timed(lambda: writer.serialize_all(outputs, "services.yaml"))
    inv = src = model = outputs = None  # let the timed pass's objects go before measuring memory
    gc.collect()
    # A second, untimed pass under tracemalloc (which slows Python down) for the peak.
    tracemalloc.start()
    inv, src = load_inventory(path)
    writer.serialize_all(render_all(resolve(inv, src), COMPOSE), "services.yaml")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = t_load + t_resolve + t_render + t_serialize
    return {
        "services": n,
        "inventory_bytes": path.stat().st_size,
        "files": len(files),
        "output_bytes": sum(len(b) for b in files.values()),
        "seconds": {"load": round(t_load, 4), "resolve": round(t_resolve, 4), "render": round(t_render, 4),
                    "serialize": round(t_serialize, 4), "total": round(total, 4)},
        "services_per_second": round(n / total, 1),
        "peak_python_memory_mib": round(peak / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.bench", description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated service counts")
    parser.add_argument("--json", type=Path, default=Path(".monstack/bench.json"), help="where to write the results")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    print(f"{'services':>9} {'files':>7} {'load s':>8} {'resolve s':>9} {'render s':>9} {'write s':>8} {'total s':>8} {'svc/s':>8} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory(prefix="monstack-bench-") as tmp:
        for n in sizes:
            r = run_size(n, Path(tmp))
            s = r["seconds"]
            print(f"{n:>9} {r['files']:>7} {s['load']:>8.3f} {s['resolve']:>9.3f} {s['render']:>9.3f} {s['serialize']:>8.3f} "
                  f"{s['total']:>8.3f} {r['services_per_second']:>8.0f} {r['peak_python_memory_mib']:>9.1f}")
            results.append(r)
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"max RSS {report['max_rss_mib']} MiB; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
