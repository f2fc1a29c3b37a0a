"""The hostile-input corpus: inventories and output trees an attacker would hand monstack.

Not a test module: tests/test_hostile_inventories.py runs it case by case, and
`python tests/hostile.py` runs every case through every command and prints the
counts (tried / rejected cleanly / tracebacks / hangs / silently accepted).

Each case is one of the classes of docs/reliability.md: 1 secret files outside
the secrets folder, 2 a manifest or output tree leading out of --out, 3 text
that Prometheus or Alertmanager would run as a template, 4 files built to
exhaust the loader, 5 values that crashed monstack or that only promtool and
amtool refused, 6 policies that silently switch paging off.

Small cases are files in tests/inventories/hostile (first line `# hostile:
CLASS WHY`); large or filesystem cases are built here. The expected problems
of every case are in tests/inventories/hostile/expected.yaml.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / "inventories" / "hostile"
EXPECTED = CORPUS / "expected.yaml"
MINIMAL = HERE / "inventories" / "good" / "minimal.yaml"
COMMANDS = ("render", "validate", "check", "explain")
TIMEOUT = 60.0  # seconds: only to stop a hang; every case finishes in a few seconds
MEMORY = 8 * 2**30  # address space per command: a memory bomb stops here instead of taking the machine


@dataclass
class Case:
    name: str
    cls: int
    why: str
    build: Callable[[Path], "Setup"]
    commands: tuple[str, ...] = COMMANDS


@dataclass
class Setup:
    inventory: Path
    out: Path
    # Files that must still be there, byte for byte, after every command (a victim outside the output tree).
    untouched: dict[Path, bytes] = field(default_factory=dict)
    render_args: tuple[str, ...] = ()  # more arguments of render (e.g. --target all)


# --- cases from files ------------------------------------------------------------------------------


def _copy(source: Path) -> Callable[[Path], Setup]:
    def build(work: Path) -> Setup:
        inv = work / "services.yaml"
        shutil.copyfile(source, inv)
        return Setup(inv, work / "out")

    return build


def file_cases() -> list[Case]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        if path == EXPECTED:
            continue
        first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        assert first.startswith("# hostile: "), f"{path.name}: first line must be '# hostile: CLASS WHY'"
        cls, why = first[len("# hostile: "):].split(" ", 1)
        out.append(Case(path.stem, int(cls), why, _copy(path)))
    return out


# --- built cases: too large to commit, or made of files and symlinks -----------------------------------


def _minimal() -> dict:
    return yaml.safe_load(MINIMAL.read_text())


def _write(work: Path, data: dict | str | bytes) -> Setup:
    inv = work / "services.yaml"
    if isinstance(data, bytes):
        inv.write_bytes(data)
    else:
        inv.write_text(data if isinstance(data, str) else yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False), encoding="utf-8")
    return Setup(inv, work / "out")


def _services(n: int) -> Callable[[Path], Setup]:
    def build(work: Path) -> Setup:
        data = _minimal()
        data["services"] = [{"name": f"svc-{i}", "team": "web", "kind": "custom", "health": [{"url": f"http://svc-{i}.internal/health"}]}
                            for i in range(n)]
        return _write(work, data)

    return build


def _too_large(work: Path) -> Setup:
    text = MINIMAL.read_text() + "# " + "x" * 79 + "\n"
    return _write(work, text + ("# " + "x" * 1021 + "\n") * (9 * 1024))  # 9 MiB of comments


def _many_values(work: Path) -> Setup:
    data = _minimal()
    lists = ", ".join("[" + ", ".join(["0"] * 5000) + "]" for _ in range(120))  # 600,000 values in 120 lists
    return _write(work, yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False) + f"padding: [{lists}]\n")


def _per_service(key: str, n: int, make: Callable[[int], object]) -> Callable[[Path], Setup]:
    def build(work: Path) -> Setup:
        data = _minimal()
        svc = data["services"][0]
        if key == "labels":
            svc["labels"] = {f"l{i}": "v" for i in range(n)}
        elif key == "targets":
            svc["scrape"]["targets"] = [make(i) for i in range(n)]
        else:
            svc[key] = [make(i) for i in range(n)]
        return _write(work, data)

    return build


def _not_utf8(work: Path) -> Setup:
    return _write(work, MINIMAL.read_bytes().replace(b"name: api", b"name: \xff\xfeapi"))


def _nul(work: Path) -> Setup:
    return _write(work, MINIMAL.read_bytes().replace(b"team: web", b"team: w\x00eb"))


def _secret_symlink(target: str, via_folder: bool) -> Callable[[Path], Setup]:
    def build(work: Path) -> Setup:
        secrets = work / "secrets"
        secrets.mkdir()
        data = _minimal()
        if via_folder:
            (secrets / "keys").symlink_to(target, target_is_directory=True)
            data["receivers"]["slack"]["webhook_url_file"] = "secrets/keys/passwd"
        else:
            (secrets / "slack_webhook_url").symlink_to(target)
        return _write(work, data)

    return build


def _manifest(line: str) -> Callable[[Path], Setup]:
    """A tree rendered from the minimal inventory whose committed manifest names a file outside it."""

    def build(work: Path) -> Setup:
        setup = _write(work, MINIMAL.read_text())
        out = setup.out
        _render_quietly(setup.inventory, out)
        victim = work / "victim.txt"
        victim.write_text("not generated\n")
        entry = line.format(victim=victim)
        # Third line, after the two header comments: where it is does not move as monstack renders more files.
        manifest = out / ".monstack-generated"
        lines = manifest.read_text().splitlines(keepends=True)
        manifest.write_text("".join(lines[:2]) + f"{'0' * 64}  {entry}\n" + "".join(lines[2:]))
        setup.untouched = {victim: victim.read_bytes()}
        return setup

    return build


def _symlinked_output(work: Path) -> Setup:
    """A folder of the output tree that is a symlink to a folder elsewhere: writing through it leaves --out."""
    setup = _write(work, MINIMAL.read_text())
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine\n")
    setup.out.mkdir()
    (setup.out / "prometheus").symlink_to(elsewhere, target_is_directory=True)
    setup.untouched = {elsewhere / "keep.txt": b"mine\n"}
    return setup


def _symlinked_stale_folder(work: Path) -> Setup:
    """The manifest names a file under a folder that has become a symlink out of the tree."""
    setup = _manifest("docs/runbooks/old.md")(work)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "old.md"
    victim.write_text("someone else's file\n")
    shutil.rmtree(setup.out / "docs" / "runbooks")
    (setup.out / "docs" / "runbooks").symlink_to(elsewhere, target_is_directory=True)
    # The runbooks the render wrote would be reported too, as many as the catalogue has: keep the one stale entry.
    manifest = setup.out / ".monstack-generated"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(line for i, line in enumerate(lines) if i == 2 or "  docs/runbooks/" not in line))
    setup.untouched[victim] = victim.read_bytes()
    return setup


def _journal(remove: list[str], write: list[str], staging_elsewhere: bool) -> Callable[[Path], Setup]:
    """A rendered tree holding a commit journal (.monstack-commit) a render finishes before anything else: it names
    a file outside to remove, or a staging folder that is a symlink to a folder elsewhere whose files it moves in."""

    def build(work: Path) -> Setup:
        setup = _write(work, MINIMAL.read_text())
        _render_quietly(setup.inventory, setup.out)
        victim = work / "victim.txt"
        victim.write_text("not generated\n")
        staging = setup.out / ".monstack-staging-crafted"
        if staging_elsewhere:
            elsewhere = work / "elsewhere"
            elsewhere.mkdir()
            (elsewhere / "keep.txt").write_text("mine\n")
            staging.symlink_to(elsewhere, target_is_directory=True)
            setup.untouched[elsewhere / "keep.txt"] = b"mine\n"
        else:
            staging.mkdir()
        (setup.out / ".monstack-commit").write_text(json.dumps({"staging": staging.name, "write": write, "remove": remove}))
        setup.untouched[victim] = victim.read_bytes()
        return setup

    return build


def _journal_garbage(work: Path) -> Setup:
    setup = _write(work, MINIMAL.read_text())
    _render_quietly(setup.inventory, setup.out)
    (setup.out / ".monstack-commit").write_text("{not json\n")
    return setup


def _symlinked_kubernetes(work: Path) -> Setup:
    """OUT/kubernetes, the Kubernetes tree's own root, is a symlink to a folder elsewhere holding a manifest."""
    setup = _write(work, MINIMAL.read_text())
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine\n")
    (elsewhere / ".monstack-generated").write_text(f"{'0' * 64}  keep.txt\n")
    setup.out.mkdir()
    (setup.out / "kubernetes").symlink_to(elsewhere, target_is_directory=True)
    setup.untouched = {elsewhere / "keep.txt": b"mine\n", elsewhere / ".monstack-generated": f"{'0' * 64}  keep.txt\n".encode()}
    setup.render_args = ("--target", "all")
    return setup


def _rules_d(files: dict[str, str], links: dict[str, Path] | None = None) -> Callable[[Path], Setup]:
    """rules.d/ beside the minimal inventory: files by name, and symlinks by name to a file outside it."""

    def build(work: Path) -> Setup:
        setup = _write(work, MINIMAL.read_text())
        folder = work / "rules.d"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        for name, target in (links or {}).items():
            (folder / name).symlink_to(target)
        return setup

    return build


def _rules_d_symlink(work: Path) -> Setup:
    """A rules.d file that is a symlink to a file elsewhere, written as a valid rule file: render would copy it into the tree."""
    secret = work.parent / f"{work.name}-outside.yml"  # beside the case's folder, not in it
    secret.write_text("groups: [{name: leaked, rules: [{record: token, expr: vector(1), labels: {token: s3cr3t-value}}]}]\n")
    setup = _rules_d({}, {"shared.yml": secret})(work)
    setup.untouched = {secret: secret.read_bytes()}
    return setup


_RULE_WITH_TEMPLATE_LABEL = """groups:
  - name: handwritten
    rules:
      - alert: QueueBacklog
        expr: sum(queue_depth) > 100
        labels: {severity: warning, owner: "{{ $labels.owner }}"}
        annotations: {summary: "{{ $value }} jobs waiting"}
"""


def _render_quietly(inventory: Path, out: Path) -> None:
    """The tree a case starts from, rendered by this checkout in this process (whichever checkout the case then runs)."""
    sys.path.insert(0, str(ROOT))
    try:
        from generator import pipeline
    finally:
        sys.path.remove(str(ROOT))
    pipeline.render(inventory, out, run_checks=False)


def built_cases() -> list[Case]:
    writer = ("render", "check")
    return [
        Case("built_services_20000", 4, "20,000 services (minutes and gigabytes to render before)", _services(20_000)),
        Case("built_file_9mib", 4, "a 9 MiB file", _too_large),
        Case("built_values_600k", 4, "600,000 values in 120 lists", _many_values),
        Case("built_labels_65", 4, "65 labels on one service (each reaches every alert)", _per_service("labels", 65, str)),
        Case("built_rules_201", 4, "201 custom rules on one service",
             _per_service("rules", 201, lambda i: {"name": f"Rule{i}", "type": "absent", "metric": f"m{i}"})),
        Case("built_targets_1001", 4, "1,001 scrape targets on one service", _per_service("targets", 1001, lambda i: f"10.0.{i // 256}.{i % 256}:9100")),
        Case("built_probes_51", 4, "51 health URLs on one service", _per_service("health", 51, lambda i: {"name": f"p{i}", "url": f"http://a.internal/{i}"})),
        Case("built_not_utf8", 4, "bytes that are not UTF-8", _not_utf8),
        Case("built_nul_byte", 4, "a NUL byte in the text", _nul),
        Case("built_secret_symlink", 1, "a secret file that is a symlink to /etc/passwd", _secret_symlink("/etc/passwd", False)),
        Case("built_secret_symlinked_folder", 1, "a folder in secrets/ that is a symlink to /etc", _secret_symlink("/etc", True)),
        Case("built_manifest_parent", 2, "a manifest line ../victim.txt: the next render deleted it", _manifest("../victim.txt"), writer),
        Case("built_manifest_absolute", 2, "a manifest line naming an absolute path", _manifest("{victim}"), writer),
        Case("built_manifest_inner_parent", 2, "a manifest line that climbs out from inside the tree", _manifest("prometheus/../../victim.txt"), writer),
        Case("built_manifest_symlinked_folder", 2, "a stale file under a folder that is now a symlink out of the tree", _symlinked_stale_folder, writer),
        Case("built_output_symlink", 2, "an output folder that is a symlink to a folder elsewhere", _symlinked_output, writer),
        Case("built_journal_parent", 2, "a commit journal naming ../victim.txt to remove: the next render deleted it",
             _journal(["../victim.txt"], [], False), ("render",)),
        Case("built_journal_staging_symlink", 2, "a commit journal whose staging folder is a symlink elsewhere: the next "
             "render moved its files into the tree", _journal([], ["keep.txt"], True), ("render",)),
        Case("built_journal_garbage", 2, "a commit journal that is not JSON: the next render crashed", _journal_garbage, ("render",)),
        Case("built_kubernetes_symlink", 2, "OUT/kubernetes is a symlink to a folder elsewhere: render --target all wrote there",
             _symlinked_kubernetes, writer),
        Case("built_rules_d_symlink", 1, "a rules.d file that is a symlink to a file outside: render copied it into the tree",
             _rules_d_symlink),
        Case("built_rules_d_label_template", 3, "a hand-written alert whose label value is a template (labels route)",
             _rules_d({"queue.yml": _RULE_WITH_TEMPLATE_LABEL})),
    ]


def all_cases() -> list[Case]:
    return file_cases() + built_cases()


def matches(got: list[str], want: list[str]) -> bool:
    """Exactly the expected problems: as many lines, each expected start found."""
    return len(got) == len(want) and all(any(g.startswith(w) for g in got) for w in want)


def expected() -> dict[str, list[str]]:
    """case -> every problem line it must report, as 'LINE: path: message start' (file names stripped)."""
    return yaml.safe_load(EXPECTED.read_text())


# --- running ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    code: int | None  # None: killed after TIMEOUT
    stderr: str
    seconds: float
    touched: list[str]  # files outside the output tree that changed or disappeared
    wrote: bool = False  # the output tree changed

    def problems(self, setup: Setup) -> list[str]:
        """The located problem lines, with the inventory's (or output folder's) path cut off."""
        out = []
        for line in self.stderr.splitlines():
            for prefix in (f"{setup.inventory}:", f"{setup.out}/", f"{setup.inventory.parent}/"):  # the last: rules.d/
                if line.startswith(prefix):
                    out.append(line[len(prefix):])
                    break
        return out

    @property
    def verdict(self) -> str:
        if self.code is None:
            return "hang"
        if "MemoryError" in self.stderr:
            return "hang"  # ran into the memory cap (MEMORY): exhaustion, like a hang
        if "Traceback" in self.stderr or self.code not in (0, 1, 2):
            return "traceback"
        if self.touched:
            return "escaped"
        if self.code == 2:
            return "rejected"
        return "accepted"  # 0, or 1: monstack let it through and only promtool/amtool (or nothing) refused


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def args_for(command: str, setup: Setup) -> list[str]:
    args = [command, "--inventory", str(setup.inventory)]
    if command in ("render", "check"):
        args += ["--out", str(setup.out)]
    if command == "render":
        args += list(setup.render_args)
    return args


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def run(case: Case, command: str, work: Path, root: Path = ROOT, timeout: float = TIMEOUT) -> tuple[Outcome, Setup]:
    """One command on one case, as a user runs it: the real CLI in its own process."""
    setup = case.build(work)
    before = snapshot(setup.out)
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "generator.cli", *args_for(command, setup)], cwd=work, capture_output=True,
                              text=True, errors="replace", env=_env(root), timeout=timeout, preexec_fn=_cap_memory)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, stderr = None, (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.monotonic() - start
    touched = [str(p) for p, data in setup.untouched.items() if not p.is_file() or p.read_bytes() != data]
    return Outcome(command, code, stderr, seconds, touched, snapshot(setup.out) != before), setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the hostile corpus through every command and count the outcomes.")
    parser.add_argument("--root", type=Path, default=ROOT, help="the monstack source tree to run (e.g. an older checkout)")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated subset of " + ", ".join(COMMANDS))
    args = parser.parse_args(argv)
    wanted = args.commands.split(",")
    counts = {k: 0 for k in ("tried", "rejected", "rejected otherwise", "valid", "traceback", "hang", "accepted", "escaped", "refused")}
    rows = []
    want = expected()
    valid = {name for name, w in want.items() if w == "accepted"}
    for case in all_cases():
        verdicts = []
        commands = [c for c in case.commands if c in wanted and (c != "check" or case.name not in valid)]
        for command in commands:
            with tempfile.TemporaryDirectory(prefix="monstack-hostile-") as tmp:
                outcome, setup = run(case, command, Path(tmp), args.root, args.timeout)
                verdict = outcome.verdict
                if verdict == "rejected" and case.name not in valid and not matches(outcome.problems(setup), want[case.name]):
                    verdict = "rejected otherwise"  # exit 2, but not with the problems this case is about
            verdicts.append(verdict)
            rows.append({"case": case.name, "class": case.cls, "command": command, "verdict": verdict,
                         "exit": outcome.code, "seconds": round(outcome.seconds, 2),
                         "stderr_tail": outcome.stderr.strip().splitlines()[-1:] if outcome.stderr.strip() else []})
        # A case counts once, by its worst outcome over the commands.
        worst = next(v for v in ("hang", "traceback", "escaped", "accepted", "rejected otherwise", "rejected") if v in verdicts)
        if case.name in valid:  # a valid input: every command must accept it (validate: its generated tests pass)
            ok = set(verdicts) == {"accepted"} and all(r["exit"] == 0 for r in rows[-len(commands):])
            worst = worst if worst in ("hang", "traceback", "escaped") else "valid" if ok else "refused"
        counts["tried"] += 1
        counts[worst] += 1
        print(f"{case.name:42} class {case.cls}  {' '.join(f'{c}={v}' for c, v in zip(commands, verdicts))}", flush=True)
    c = counts
    print(f"\ntried {c['tried']}: rejected cleanly {c['rejected']} (+{c['rejected otherwise']} with other problems than the "
          f"case's), valid and accepted {c['valid']}, tracebacks {c['traceback']}, hangs {c['hang']}, silently accepted "
          f"{c['accepted']}, files outside the tree touched {c['escaped']}, valid but refused or failing validate {c['refused']}")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
