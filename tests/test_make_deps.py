"""`make up` installs the native stack's Debian packages only when the native runner will run the stack.

Under docker compose the packages' system services (prometheus on 9090, prometheus-alertmanager on
9093, ...) would hold the ports compose publishes. The mode is decided by the same code as `monstack up`
(generator.runner.choose_mode). Package management and a Docker engine cannot run in a test: `docker`,
`apt-get`, `dpkg` and `systemctl` are stand-ins on PATH that answer as those tools would and write down
how they were called; make, the Makefile, scripts/apt-install and the mode decision are the real ones.
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

ABSENT = "monstack-test-absent-package"


def _script(path: Path, text: str) -> None:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _stand_ins(tmp_path: Path, docker_answers: bool) -> tuple[dict[str, str], Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    if docker_answers:  # `docker compose version` and `docker info` succeed: a Docker host
        _script(bin_dir / "docker", 'case "$1 $2" in\n  "compose version") echo 2.40.3 ;;\n  "info --format") echo 28.2.2 ;;\n'
                                    '  *) exit 1 ;;\nesac\n')
    else:  # a docker CLI without engine or compose plugin, as on this machine
        _script(bin_dir / "docker", 'echo "docker: \'compose\' is not a docker command." >&2\nexit 1\n')
    # apt-get notes its arguments and what the policy-rc.d it runs under says (101: services may not start).
    _script(bin_dir / "apt-get", f'echo "apt-get $*" >> {log}\n'
                                 f'if [ -x "$MONSTACK_POLICY_RC_D" ]; then "$MONSTACK_POLICY_RC_D" prometheus start; '
                                 f'echo "policy-rc.d says $?" >> {log}; else echo "no policy-rc.d" >> {log}; fi\n')
    # dpkg: the test package is not installed; once "installed" it lists the units a Debian server package ships.
    _script(bin_dir / "dpkg", f'case "$1" in\n  -s) [ "$2" = {ABSENT} ] && exit 1; exec /usr/bin/dpkg "$@" ;;\n'
                              f'  -L) printf "/usr/bin/x\\n/lib/systemd/system/prometheus.service\\n'
                              f'/usr/lib/systemd/system/postgresql@.service\\n/usr/lib/systemd/system/postgresql.service\\n" ;;\n'
                              f'  *) exec /usr/bin/dpkg "$@" ;;\nesac\n')
    _script(bin_dir / "systemctl", f'echo "systemctl $*" >> {log}\n')
    _script(bin_dir / "sudo", 'exec "$@"\n')
    systemd = tmp_path / "run-systemd-system"
    systemd.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MONSTACK_POLICY_RC_D": str(tmp_path / "policy-rc.d"),
           "MONSTACK_SYSTEMD_RUNNING": str(systemd)}
    return env, log


def _up_deps(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "up-deps", "APT_BASE=", f"APT_NATIVE={ABSENT}", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(autouse=True)
def _venv_current() -> None:
    # `make up-deps` makes the venv first; a stale one would be reinstalled from the package index in the middle of a test.
    if subprocess.run(["make", "-q", ".venv/bin/monstack"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip(".venv is older than pyproject.toml: run `make venv` first")


@pytest.mark.integration
def test_on_a_docker_host_make_up_installs_none_of_the_native_stack(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path, docker_answers=True)
    r = _up_deps(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "compose\n"
    assert "mode: compose (docker compose 2.40.3, Docker engine 28.2.2)" in r.stderr
    assert "the native stack's Debian packages are not installed" in r.stderr
    assert not log.exists(), log.read_text()  # apt-get never ran


@pytest.mark.integration
def test_natively_make_up_installs_the_packages_with_their_services_kept_stopped_and_disabled(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path, docker_answers=False)
    r = _up_deps(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "native\n"
    assert "mode: native (" in r.stderr and f"installing Debian packages: {ABSENT} (their system services stay stopped)" in r.stderr
    assert log.read_text().splitlines() == [
        "apt-get update -qq", "policy-rc.d says 101",
        f"apt-get install -y -qq --no-install-recommends {ABSENT}", "policy-rc.d says 101",
        "systemctl disable --now postgresql.service prometheus.service",
    ]
    assert not Path(env["MONSTACK_POLICY_RC_D"]).exists()  # removed after the install: later package installs start services again
    assert "disabled the system services of the new packages: postgresql.service prometheus.service" in r.stdout + r.stderr


@pytest.mark.integration
def test_make_up_mode_native_on_a_docker_host_installs_the_packages(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path, docker_answers=True)
    r = _up_deps(env, "MODE=native")
    assert r.returncode == 0 and r.stdout == "native\n", r.stderr
    assert f"apt-get install -y -qq --no-install-recommends {ABSENT}" in log.read_text()


@pytest.mark.integration
def test_a_policy_rc_d_already_there_is_left_as_it_was(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path, docker_answers=False)
    existing = Path(env["MONSTACK_POLICY_RC_D"])
    _script(existing, "exit 101\n")
    r = _up_deps(env)
    assert r.returncode == 0, r.stderr
    assert existing.read_text() == "#!/bin/sh\nexit 101\n"


@pytest.mark.integration
def test_make_deps_installs_everything_the_tests_need_whatever_the_mode(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path, docker_answers=True)
    r = subprocess.run(["make", "--no-print-directory", "-n", "deps"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    for pkg in ("python3-venv", "prometheus", "prometheus-alertmanager", "redis-server", "postgresql", "victoria-metrics"):
        assert f" {pkg}" in first, first
