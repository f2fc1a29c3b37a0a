"""Each tool's own checker as the judge of generated output: promtool and amtool."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import yaml

from generator import names
from generator.errors import ToolMissing

# Debian ships Alertmanager as prometheus-alertmanager; amtool keeps its name.
TOOLS = {"promtool": ("promtool",), "amtool": ("amtool",)}


def tool(name: str) -> str:
    for candidate in TOOLS.get(name, (name,)):
        found = shutil.which(candidate)
        if found:
            return found
    raise ToolMissing(f"{name} not found on PATH: install it (make deps, or apt-get install prometheus prometheus-alertmanager)")


def available(name: str) -> bool:
    try:
        tool(name)
    except ToolMissing:
        return False
    return True


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    output: str
    seconds: float = 0.0  # how long the check took

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.name}"
        if not self.ok and self.output:
            text += "\n" + "\n".join("     " + line for line in self.output.rstrip().splitlines())
        return text


def _run(name: str, argv: list[str], cwd: Path) -> CheckResult:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    return CheckResult(name, proc.returncode == 0, (proc.stdout + proc.stderr).strip(), time.monotonic() - start)


def _files(root: Path, pattern: str) -> list[str]:
    return sorted(str(Path(p).relative_to(root)) for p in glob.glob(str(root / pattern)))


def static_checks(root: Path) -> list[CheckResult]:
    """Config and rule syntax: fast, run on every render."""
    return list(_static_checks(root))


def _static_checks(root: Path) -> Iterator[CheckResult]:
    promtool, amtool = tool("promtool"), tool("amtool")
    # --syntax-only: secret and TLS files live at /run/secrets/... inside the containers, not here;
    # the rule files it would otherwise load are checked just below.
    configs = [names.PROMETHEUS_CONFIG] + _files(root, "prometheus/prometheus-*.yml")  # an HA pair's second file
    yield _run("promtool check config", [promtool, "check", "config", "--syntax-only", *configs], root)
    rules = _files(root, f"{names.RULES_DIR}/*.yml") + _files(root, f"{names.RULES_DIR}/{names.HANDWRITTEN}/*.yml")
    if rules:
        yield _run("promtool check rules", [promtool, "check", "rules", *rules], root)
    yield _run("amtool check-config", [amtool, "check-config", names.ALERTMANAGER_CONFIG], root)


# Labels whose values name a service's things. Two test files whose texts (with the rule files they
# load) differ only in these values, renamed one-to-one, are the same test of the same rules: PromQL
# compares such values for equality only, so promtool's verdict on one is its verdict on the other.
IDENTITY_LABELS = ("service", "team", "job", "instance")
_IDENTITY = re.compile(r'\b(' + "|".join(IDENTITY_LABELS) + r')(?:="((?:[^"\\]|\\.)*)"|: (\S+)$)', re.MULTILINE)
# Anything that could tell renamed values apart (a regex or a string function on them) makes a file run on its own.
_SENSITIVE_CALLS = ("label_replace", "label_join", "sort(", "sort_desc(", "topk", "bottomk")
_LABEL_BEFORE = re.compile(r"(\w+)\s*$")


def _value_sensitive(text: str) -> bool:
    if any(c in text for c in _SENSITIVE_CALLS):
        return True
    for op in ("=~", "!~"):
        at = text.find(op)
        while at != -1:
            m = _LABEL_BEFORE.search(text, max(0, at - 40), at)
            if m and m.group(1) in IDENTITY_LABELS:
                return True
            at = text.find(op, at + 2)
    return False


_RULE_FILES = re.compile(r"^rule_files:\n((?:- .*\n)+)", re.MULTILINE)  # as the writer writes it (block list)


def _shape(texts: list[str]) -> str | None:
    """The texts with every identity value replaced by its order of first appearance, or None when renaming could matter."""
    joined = "\n\0\n".join(texts)
    if _value_sensitive(joined):
        return None
    values: list[str] = []
    for m in _IDENTITY.finditer(joined):
        v = m.group(2) if m.group(2) is not None else m.group(3).strip("'\"")
        if v and v not in values:
            values.append(v)
    if not values:
        return joined
    order = {v: i for i, v in enumerate(values)}
    token = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
                       + r")(?![A-Za-z0-9_]|-[A-Za-z0-9])")
    return token.sub(lambda m: f"\0{order[m.group(1)]}\0", joined)


def distinct_tests(root: Path, tests: list[str]) -> dict[str, list[str]]:
    """Test files grouped by their shape up to names: the first of each group stands for the others."""
    groups: dict[str, list[str]] = {}
    for t in tests:
        text = (root / t).read_text()
        listed = _RULE_FILES.search(text)
        rules = [(root / t).parent / line[2:].strip() for line in listed.group(1).splitlines()] if listed else []
        shape = _shape([text, *(r.read_text() if r.is_file() else f"missing {r}" for r in rules)])
        groups.setdefault(shape if shape is not None else f"\0own\0{t}", []).append(t)
    return {members[0]: members for members in groups.values()}


def rule_tests(root: Path) -> list[CheckResult]:
    """promtool test rules over every generated test file, one promtool per CPU (it tests files one after another).

    A file that is another one up to the names of its service (a fleet of services alike) is covered
    by that one's run: promtool runs once per distinct file.
    """
    every = _files(root, f"{names.RULE_TESTS_DIR}/*.test.yml") + _files(root, f"{names.RULE_TESTS_DIR}/{names.HANDWRITTEN}/*.test.yml")
    if not every:
        return []
    tests = sorted(distinct_tests(root, every))
    shared = shared_rule_files(root)
    workers = max(1, min(len(tests), os.cpu_count() or 1))
    chunks: list[list[str]] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for t in sorted(tests, key=lambda t: -(root / t).stat().st_size):  # biggest first, onto the lightest chunk
        i = sizes.index(min(sizes))
        chunks[i].append(t)
        sizes[i] += (root / t).stat().st_size
    promtool = tool("promtool")
    start = time.monotonic()
    procs = [subprocess.Popen([promtool, "test", "rules", *sorted(c)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in chunks if c]
    outputs, ok = [], True
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        ok = ok and proc.returncode == 0
        outputs.append(out.strip())
    counted = f"{len(every)} files" if len(tests) == len(every) else f"{len(every)} files, {len(tests)} distinct up to names"
    results = [CheckResult(f"promtool test rules ({counted})", ok, "\n".join(outputs), time.monotonic() - start)]
    if shared is not None:
        results.append(shared)
    return results


def shared_rule_files(root: Path) -> CheckResult | None:
    """A fleet's rule files tested through their representative's tests must be its rules up to names."""
    path = root / names.RULE_TESTS_SHARED
    if not path.is_file():
        return None
    listed = (yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("tested_once", {})
    problems, covered = [], 0
    for rep, members in listed.items():
        want = _shape([(root / rep).read_text()]) if (root / rep).is_file() else None
        if want is None:
            problems.append(f"{rep}: missing, or its rules are not comparable up to names")
            continue
        for m in members:
            if not (root / m).is_file() or _shape([(root / m).read_text()]) != want:
                problems.append(f"{m} is not {rep} up to names: its rules are not covered by {rep}'s tests")
            else:
                covered += 1
    return CheckResult(f"rule files tested through a service alike ({covered} files)", not problems, "\n".join(problems))


def routing_tests(root: Path) -> list[CheckResult]:
    """Run every case of alertmanager/tests/routing.yml through amtool config routes test --verify.receivers."""
    path = root / names.ROUTING_TESTS
    if not path.is_file():
        return []
    cases = (yaml.safe_load(path.read_text()) or {}).get("tests", [])
    amtool = tool("amtool")
    failures = []
    start = time.monotonic()
    for case in cases:
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        expected = ",".join(case["receivers"])
        proc = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={names.ALERTMANAGER_CONFIG}", f"--verify.receivers={expected}", *labels],
            cwd=root, capture_output=True, text=True, timeout=60,
        )
        if proc.returncode != 0:
            failures.append(f"{case['name']}: expected {expected}; amtool said: {(proc.stdout + proc.stderr).strip()}")
    return [CheckResult(f"amtool routing tests ({len(cases)} cases)", not failures, "\n".join(failures), time.monotonic() - start)]


def all_checks(root: Path, report: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Every check; `report` hears of each one as soon as it finished (validate prints them as they come)."""
    results: list[CheckResult] = []
    steps: tuple[Callable[[Path], Iterable[CheckResult]], ...] = (_static_checks, rule_tests, routing_tests)
    for step in steps:
        for r in step(root):
            results.append(r)
            if report:
                report(r)
    return results
