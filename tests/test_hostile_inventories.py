"""Hostile input (tests/hostile.py, docs/reliability.md): every case exits 2 with exactly its located problems.

No traceback, no hang, nothing written, no file outside the output tree touched,
through render, validate, check and explain. Two cases are inputs that used to
crash and are valid: they must render and pass every generated test.
"""
from __future__ import annotations

import contextlib
import io
import signal
import sys
from pathlib import Path

import pytest

import hostile
from generator import cli

CASES = {c.name: c for c in hostile.all_cases()}
EXPECTED = hostile.expected()
ACCEPTED = "accepted"  # expected.yaml's word for a valid input that must render and validate


def test_the_corpus_and_its_expectations_agree():
    assert set(CASES) == set(EXPECTED), "every case needs its expected problems in expected.yaml, and every entry a case"
    per_class = {n: sum(c.cls == n for c in CASES.values()) for n in range(1, 7)}
    assert all(per_class[n] >= 5 for n in (1, 3, 4, 5, 6)) and per_class[2] >= 4, per_class
    for name, want in EXPECTED.items():
        assert want == ACCEPTED or (isinstance(want, list) and want), name


def _matches(got: list[str], want: list[str]) -> None:
    assert hostile.matches(got, want), "expected:\n" + "\n".join(want) + "\ngot:\n" + "\n".join(got)


class _Hang(Exception):
    pass


def _in_process(args: list[str], seconds: int = int(hostile.TIMEOUT)) -> tuple[int, str]:
    """The CLI's main() in this process (no interpreter start-up per call); an alarm stops a hang."""
    def stop(*_):
        raise _Hang(f"{args} did not finish within {seconds}s")

    err = io.StringIO()
    old_argv, old_handler = sys.argv, signal.signal(signal.SIGALRM, stop)
    sys.argv = ["monstack", *args]
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        sys.argv = old_argv
    return code, err.getvalue()


REJECTED = sorted(n for n in CASES if EXPECTED.get(n) != ACCEPTED)


@pytest.mark.parametrize("name", REJECTED)
def test_every_command_rejects_the_case_with_its_located_problems(name: str, tmp_path: Path):
    """validate, check and explain (and render) in this process: exit 2, the expected problems, nothing written."""
    case = CASES[name]
    for command in case.commands:
        work = tmp_path / command
        work.mkdir()
        setup = case.build(work)
        before = hostile.snapshot(setup.out)
        code, stderr = _in_process(hostile.args_for(command, setup))
        outcome = hostile.Outcome(command, code, stderr, 0.0, [])
        assert code == 2, f"{command}: exit {code}\n{stderr[-3000:]}"
        assert "Traceback" not in stderr
        _matches(outcome.problems(setup), EXPECTED[name])
        assert stderr.rstrip().endswith("nothing was written"), stderr[-500:]
        assert hostile.snapshot(setup.out) == before, f"{command} changed the output tree"
        for path, data in setup.untouched.items():
            assert path.is_file() and path.read_bytes() == data, f"{command} touched {path}"


@pytest.mark.integration
@pytest.mark.parametrize("name", REJECTED)
def test_render_in_its_own_process_rejects_the_case_within_the_time_limit(name: str, tmp_path: Path):
    """The real CLI as a process: a crash of a native parser or a runaway allocation shows here, and a hang is killed."""
    outcome, setup = hostile.run(CASES[name], "render", tmp_path)
    assert outcome.verdict == "rejected", f"{outcome.verdict} (exit {outcome.code}):\n{outcome.stderr[-3000:]}"
    _matches(outcome.problems(setup), EXPECTED[name])
    assert not outcome.wrote


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(n for n in CASES if EXPECTED.get(n) == ACCEPTED))
def test_inputs_that_used_to_crash_now_render_and_pass_every_generated_test(name: str, tmp_path: Path):
    outcome, _ = hostile.run(CASES[name], "validate", tmp_path)
    assert outcome.code == 0, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr
