"""python -m generator.bench [--only SECTIONS] [--sizes N,...]: run the bench sections, print their tables, merge bench/results.json."""
from __future__ import annotations

import argparse
import signal
import sys
import time

from generator.bench import common

SECTIONS = ("render", "validate", "dashboards", "rules", "outage", "quality", "start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--sizes", default="100,1000,10000", help="render: comma-separated service counts")
    parser.add_argument("--validate-sizes", default="1000", help="validate: comma-separated service counts")
    parser.add_argument("--dashboard-services", type=int, default=1000, help="dashboards: fleet size of the synthetic history")
    parser.add_argument("--rules-sizes", default="100",
                        help="rules: comma-separated service counts (1000, the goal's size, takes about 23 minutes alone)")
    parser.add_argument("--rules-passes", type=int, default=2, help="rules: measured passes over every rule (after a warm-up)")
    parser.add_argument("--trials", type=int, default=10, help="outage: trials per profile")
    parser.add_argument("--start-trials", type=int, default=3, help="start: fresh and warm starts each")
    parser.add_argument("--seed", type=int, default=15, help="outage and dashboards: seed of every random choice")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    say = common.say
    info = common.commit()
    say(f"monstack bench at {info['commit'] or 'an unknown commit'}{' (with uncommitted changes)' if info['dirty'] else ''}; "
        f"{common.machine()['cpus']} CPUs, load average {common.machine()['load_average']} (the machine is shared: figures vary)")
    start = time.monotonic()
    # SIGTERM ends the bench like Ctrl-C: every finally runs and every started process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        _sections(args, only, say)
    finally:
        common.stop_everything()
    say(f"\nbench finished in {time.monotonic() - start:.0f}s; figures merged into {common.RESULTS}")
    return 0


def _sections(args: argparse.Namespace, only: list[str], say: common.Say) -> None:
    for section in SECTIONS:
        if section not in only:
            continue
        say(f"\n== {section} ==")
        t = time.monotonic()
        if section == "render":
            from generator.bench import render

            render.run([int(s) for s in args.sizes.split(",") if s], say)
        elif section == "validate":
            from generator.bench import render

            render.run_validate([int(s) for s in args.validate_sizes.split(",") if s], say)
        elif section == "dashboards":
            from generator.bench.dashboards import run as run_dashboards

            run_dashboards(args.dashboard_services, args.seed, say)
        elif section == "rules":
            from generator.bench.rules import run as run_rules

            run_rules([int(s) for s in args.rules_sizes.split(",") if s], args.rules_passes, args.seed, say)
        elif section == "outage":
            from generator.bench.outage import run as run_outage

            run_outage(args.trials, args.seed, say)
        elif section == "quality":
            from generator.quality import run as quality

            quality.run(common.RESULTS)
        elif section == "start":
            from generator.bench.start import run as run_start

            run_start(args.start_trials, say)
        say(f"({section}: {time.monotonic() - t:.0f}s)")


if __name__ == "__main__":
    sys.exit(main())
