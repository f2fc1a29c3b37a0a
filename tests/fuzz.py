"""`make fuzz`: the long fuzzing run, with figures (docs/reliability.md).

Draws inventories at random from the strategies of tests/test_fuzz_inventory.py
(mutated inventories, YAML-level edits of them, arbitrary text), loads and
resolves every one, and counts: rejected with located problems, accepted,
tracebacks, hangs. Accepted inventories are rendered (every --render-every-th),
checked with promtool and amtool (every --check-every-th rendered one) and run
through their generated rule and routing tests (every --validate-every-th).
Nothing stops at the first failure: each one is counted and its input saved
under the report's folder, so one run gives the whole picture.

    python tests/fuzz.py --examples 100000 --jobs 2     # make fuzz

With --jobs N the examples are shared among N processes, each drawing with a
seed of its own; their reports are summed into one.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_fuzz_inventory import mutated, outcome, plausible, rendered, yaml_text  # noqa: E402

from generator import checks, writer  # noqa: E402
from generator.errors import InventoryError  # noqa: E402
from generator.model import Model  # noqa: E402

HANG = 60  # seconds one inventory may take to load and resolve before it counts as a hang


class _Hang(Exception):
    pass


def _alarm(*_):
    raise _Hang()


def _verbatim_only(model: Model, bad: list, work: Path) -> bool:
    """promtool refused only the scrape jobs extra_scrape_configs copies into prometheus.yml as written: the same model
    without them renders a configuration promtool accepts."""
    if not model.extra_scrape_configs or any(r.name != "promtool check config" for r in bad):
        return False
    staging = writer.stage(rendered(dataclasses.replace(model, extra_scrape_configs=())), work / "out")
    try:
        return all(r.ok for r in checks.static_checks(staging))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def inputs():
    """Half plausible edits (so that many are accepted and rendered), the rest hostile: values, YAML edits, any text."""
    dump = lambda d: yaml.safe_dump(d, sort_keys=False, allow_unicode=True)  # noqa: E731
    good, bad = plausible().map(dump), mutated().map(dump)
    return st.one_of(good, good, good, good, good, bad, bad, bad, yaml_text(), st.text(max_size=300))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/fuzz.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--render-every", type=int, default=10, help="render every n-th accepted inventory")
    parser.add_argument("--check-every", type=int, default=10, help="run promtool/amtool on every n-th rendered inventory")
    parser.add_argument("--validate-every", type=int, default=10, help="run the generated tests of every n-th checked inventory")
    parser.add_argument("--report", type=Path, default=Path(".monstack/fuzz/report.json"))
    parser.add_argument("--jobs", type=int, default=1, help="processes sharing the examples (one core each)")
    args = parser.parse_args(argv)
    if args.jobs > 1:
        return _parallel(args)
    failures = args.report.parent / "failures"
    shutil.rmtree(failures, ignore_errors=True)
    failures.mkdir(parents=True)
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    work = Path(tempfile.mkdtemp(prefix="monstack-fuzz-"))
    path = work / "services.yaml"
    tools = checks.available("promtool") and checks.available("amtool")
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)

    def failed(kind: str, text: str, detail: str) -> None:
        counts[kind] += 1
        n = counts[kind]
        if n <= 20:  # enough to debug; the count says how many
            stem = failures / f"{kind.replace('/', '-').replace(' ', '-')}-{n:02d}"
            stem.with_suffix(".yaml").write_text(text, encoding="utf-8", errors="replace")
            stem.with_suffix(".txt").write_text(detail)
        examples.setdefault(kind, []).append(detail.strip().splitlines()[-1][:300] if detail.strip() else kind)

    @settings(max_examples=args.examples, database=None, derandomize=False, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(text=inputs())
    def one(text: str) -> None:
        counts["tried"] += 1
        if counts["tried"] % 1000 == 0:
            print(f"{counts['tried']:>7} tried  {dict(sorted(counts.items()))}  {time.monotonic() - start:.0f}s", flush=True)
        path.write_text(text, encoding="utf-8")
        signal.alarm(HANG)
        try:
            result = outcome(path)
        except _Hang:
            return failed("hang", text, f"no answer within {HANG}s")
        except Exception:  # noqa: BLE001 - every other exception is what this run counts
            return failed("traceback", text, traceback.format_exc())
        finally:
            signal.alarm(0)
        if isinstance(result, InventoryError):
            counts["rejected"] += 1
            return
        assert isinstance(result, Model)
        counts["accepted"] += 1
        if counts["accepted"] % args.render_every:
            return
        try:
            files = rendered(result)
        except Exception:  # noqa: BLE001
            return failed("render traceback", text, traceback.format_exc())
        counts["rendered"] += 1
        if not tools or counts["rendered"] % args.check_every:
            return
        staging = writer.stage(files, work / "out")
        try:
            deep = (counts["checked"] + 1) % args.validate_every == 0
            results = checks.all_checks(staging) if deep else checks.static_checks(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        counts["checked"] += 1
        counts["validated"] += deep
        bad = [r for r in results if not r.ok]
        if bad and _verbatim_only(result, bad, work):
            counts["promtool rejected extra_scrape_configs"] += 1  # copied as written by design: render refuses, writes nothing
            examples.setdefault("promtool rejected extra_scrape_configs", []).append(bad[0].output.strip().splitlines()[-1][:300])
        elif bad:
            failed("promtool/amtool rejected", text, "\n".join(str(r) for r in bad))

    one()
    seconds = time.monotonic() - start
    shutil.rmtree(work, ignore_errors=True)
    report = {
        "examples_requested": args.examples,
        "counts": dict(sorted(counts.items())),
        "sampling": {"render_every_accepted": args.render_every, "check_every_rendered": args.check_every,
                     "validate_every_checked": args.validate_every, "promtool_amtool_available": tools},
        "seconds": round(seconds),
        "python": platform.python_version(),
        "failures": {k: v[:20] for k, v in examples.items()},
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    return _summary(counts, seconds, args.report, failures if any(examples) else None)


def _summary(c: Counter[str], seconds: float, report: Path, failures: Path | None) -> int:
    print(f"\ntried {c['tried']:,}: rejected with located problems {c['rejected']:,}, accepted {c['accepted']:,}, "
          f"tracebacks {c['traceback'] + c['render traceback']}, hangs {c['hang']}")
    print(f"accepted and rendered {c['rendered']:,}; promtool/amtool static checks {c['checked']:,}, of which generated "
          f"rule and routing tests too {c['validated']:,}; rejected by promtool/amtool {c['promtool/amtool rejected']} "
          f"(and {c['promtool rejected extra_scrape_configs']} only in extra_scrape_configs, which promtool judges)")
    print(f"{seconds / 60:.0f} min; report {report}" + (f"; failing inputs in {failures}" if failures else ""))
    return 1 if c["traceback"] or c["render traceback"] or c["hang"] or c["promtool/amtool rejected"] else 0


def _parallel(args: argparse.Namespace) -> int:
    """Shard k of N tries its share of the examples in a process of its own, reporting to <report folder>/shard-k."""
    start = time.monotonic()
    shares = [args.examples // args.jobs + (k < args.examples % args.jobs) for k in range(args.jobs)]
    reports = [args.report.parent / f"shard-{k}" / "report.json" for k in range(args.jobs)]
    procs = [subprocess.Popen([sys.executable, __file__, "--examples", str(n), "--render-every", str(args.render_every),
                               "--check-every", str(args.check_every), "--validate-every", str(args.validate_every),
                               "--report", str(r)]) for n, r in zip(shares, reports, strict=True)]
    codes = [p.wait() for p in procs]
    counts: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    for r in reports:
        if not r.is_file():
            print(f"{r.parent.name} wrote no report (exit codes {codes})", file=sys.stderr)
            return 1
        shard = json.loads(r.read_text())
        counts.update(shard["counts"])
        for kind, lines in shard["failures"].items():
            failures.setdefault(kind, []).extend(lines)
    seconds = time.monotonic() - start
    report = {"examples_requested": args.examples, "jobs": args.jobs, "counts": dict(sorted(counts.items())),
              "sampling": shard["sampling"], "seconds": round(seconds), "python": platform.python_version(),
              "failures": {k: v[:20] for k, v in failures.items()}, "shards": [str(r) for r in reports]}
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    return _summary(counts, seconds, args.report, args.report.parent if failures else None)

if __name__ == "__main__":
    sys.exit(main())
