"""Each tool's own checker as the judge of generated output: promtool and amtool."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

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

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.name}"
        if not self.ok and self.output:
            text += "\n" + "\n".join("     " + line for line in self.output.rstrip().splitlines())
        return text


def _run(name: str, argv: list[str], cwd: Path) -> CheckResult:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    return CheckResult(name, proc.returncode == 0, (proc.stdout + proc.stderr).strip())


def _files(root: Path, pattern: str) -> list[str]:
    return sorted(str(Path(p).relative_to(root)) for p in glob.glob(str(root / pattern)))


def static_checks(root: Path) -> list[CheckResult]:
    """Config and rule syntax: fast, run on every render."""
    results = []
    promtool, amtool = tool("promtool"), tool("amtool")
    # --syntax-only: secret and TLS files live at /run/secrets/... inside the containers, not here;
    # the rule files it would otherwise load are checked just below.
    configs = [names.PROMETHEUS_CONFIG] + [f for f in _files(root, "prometheus/prometheus-*.yml")]  # an HA pair's second file
    results.append(_run("promtool check config", [promtool, "check", "config", "--syntax-only", *configs], root))
    rules = _files(root, f"{names.RULES_DIR}/*.yml")
    if rules:
        results.append(_run("promtool check rules", [promtool, "check", "rules", *rules], root))
    results.append(_run("amtool check-config", [amtool, "check-config", names.ALERTMANAGER_CONFIG], root))
    return results


def rule_tests(root: Path) -> list[CheckResult]:
    """promtool test rules over every generated test file, one promtool per CPU (it tests files one after another)."""
    tests = _files(root, f"{names.RULE_TESTS_DIR}/*.test.yml")
    if not tests:
        return []
    workers = max(1, min(len(tests), os.cpu_count() or 1))
    chunks: list[list[str]] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for t in sorted(tests, key=lambda t: -(root / t).stat().st_size):  # biggest first, onto the lightest chunk
        i = sizes.index(min(sizes))
        chunks[i].append(t)
        sizes[i] += (root / t).stat().st_size
    promtool = tool("promtool")
    procs = [subprocess.Popen([promtool, "test", "rules", *sorted(c)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in chunks if c]
    outputs, ok = [], True
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        ok = ok and proc.returncode == 0
        outputs.append(out.strip())
    return [CheckResult(f"promtool test rules ({len(tests)} files)", ok, "\n".join(outputs))]


def routing_tests(root: Path) -> list[CheckResult]:
    """Run every case of alertmanager/tests/routing.yml through amtool config routes test --verify.receivers."""
    path = root / names.ROUTING_TESTS
    if not path.is_file():
        return []
    cases = (yaml.safe_load(path.read_text()) or {}).get("tests", [])
    amtool = tool("amtool")
    failures = []
    for case in cases:
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        expected = ",".join(case["receivers"])
        proc = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={names.ALERTMANAGER_CONFIG}", f"--verify.receivers={expected}", *labels],
            cwd=root, capture_output=True, text=True, timeout=60,
        )
        if proc.returncode != 0:
            failures.append(f"{case['name']}: expected {expected}; amtool said: {(proc.stdout + proc.stderr).strip()}")
    return [CheckResult(f"amtool routing tests ({len(cases)} cases)", not failures, "\n".join(failures))]


def all_checks(root: Path) -> list[CheckResult]:
    return static_checks(root) + rule_tests(root) + routing_tests(root)
