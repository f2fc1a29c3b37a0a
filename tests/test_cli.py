"""The command line fails politely: usage errors exit 2 with a message and no traceback, on every typer/click version
pyproject.toml allows; --version; shell completion; the installed dependencies lie inside pyproject's bounds."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from conftest import ROOT, monstack, monstack_process
from packaging.requirements import Requirement

# (argv, what stderr must say): each is a usage error, exit 2.
USAGE_ERRORS = [
    (("bogus",), "No such command 'bogus'"),
    (("render", "--bogus"), "No such option: --bogus"),
    (("up", "--timeout", "abc"), "Invalid value for '--timeout'"),
    (("explain", "a", "b"), "unexpected extra argument"),
    ((), "missing command"),
]


def _requirements(group: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(d) for d in deps]


@pytest.mark.parametrize("argv,message", USAGE_ERRORS, ids=[" ".join(a) or "(no command)" for a, _ in USAGE_ERRORS])
def test_usage_errors_exit_2_with_a_message_not_a_traceback(argv, message):
    r = monstack(*argv)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message.lower() in r.stderr.lower()
    assert "Traceback" not in r.stdout + r.stderr


def test_version():
    r = monstack("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"monstack {metadata.version('monstack')}"


def test_help_still_exits_0():
    r = monstack("--help")
    assert r.returncode == 0 and "render" in r.stdout


def test_shell_completion_is_offered_and_completes_commands():
    assert "--install-completion" in monstack("--help").stdout
    script = monstack("--show-completion", "bash")
    assert script.returncode == 0 and "complete" in script.stdout and "_MONSTACK_COMPLETE" in script.stdout


@pytest.mark.parametrize("req", _requirements() + _requirements("test"), ids=str)
def test_installed_versions_lie_within_pyproject_bounds(req: Requirement):
    installed = metadata.version(req.name)
    assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} is outside {req.specifier} (pyproject.toml)"


def test_every_runtime_dependency_has_an_upper_bound():
    unbounded = [str(r) for r in _requirements() + _requirements("test")
                 if r.name != "packaging" and not any(s.operator in ("<", "<=", "~=", "==") for s in r.specifier)]
    assert not unbounded, f"dependencies without an upper bound in pyproject.toml: {unbounded}"


@pytest.mark.integration
@pytest.mark.parametrize("argv,message", USAGE_ERRORS + [(("--version",), "")], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_usage_errors_as_a_real_process(argv, message):
    r = monstack_process(*argv)
    assert "Traceback" not in r.stdout + r.stderr
    if argv == ("--version",):
        assert r.returncode == 0 and r.stdout.startswith("monstack ")
    else:
        assert r.returncode == 2 and message.lower() in r.stderr.lower()


@pytest.fixture(scope="module")
def lowest_typer(tmp_path_factory) -> Path:
    """The lowest typer pyproject.toml allows, with the click it was released with, in a folder put first on sys.path."""
    typer_req = next(r for r in _requirements() if r.name == "typer")
    lowest = next(s.version for s in typer_req.specifier if s.operator == ">=")
    target = tmp_path_factory.mktemp("lowest-typer")
    # typer 0.12 pins no click upper bound; click 8.1 is the series it was built and tested with.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    f"typer=={lowest}.*", "click>=8.1,<8.2"], check=True, capture_output=True, text=True, timeout=300)
    return target


@pytest.mark.integration
@pytest.mark.parametrize("argv,message", USAGE_ERRORS, ids=[" ".join(a) or "(no command)" for a, _ in USAGE_ERRORS])
def test_usage_errors_on_the_lowest_allowed_typer(lowest_typer: Path, argv, message):
    env = {**os.environ, "PYTHONPATH": f"{lowest_typer}{os.pathsep}{ROOT}"}
    probe = subprocess.run([sys.executable, "-c", "import typer, click; print(typer.__file__)"], env=env, capture_output=True,
                           text=True, check=True)
    assert probe.stdout.startswith(str(lowest_typer)), "the lowest typer is not the one imported"
    r = subprocess.run([sys.executable, "-m", "generator.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 2 and message.lower() in r.stderr.lower(), (r.returncode, r.stderr)
