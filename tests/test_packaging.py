"""Installing monstack prints no build warnings (make up installs it) and the wheel carries every data file it reads."""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT


def _quiet(output: str) -> list[str]:
    """Lines of pip output that are warnings about this project (not about pip's own index configuration)."""
    return [line for line in output.splitlines()
            if ("warning" in line.lower() or "deprecated" in line.lower()) and "Location 'file:" not in line]


@pytest.mark.integration
def test_the_wheel_builds_without_warnings_and_holds_the_data_files(tmp_path: Path):
    src = tmp_path / "src"  # setuptools builds inside the source folder: a copy keeps the checkout clean
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".monstack", "build", "*.egg-info", "__pycache__", ".*cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(src), "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not _quiet(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("monstack-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("generator/images/Dockerfile", "generator/templates/monstack.tmpl", "generator/templates/runbook.md.j2"):
        assert needed in files


@pytest.mark.integration
def test_an_editable_install_prints_no_warnings(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = str(env_dir / "bin" / "pip")
    subprocess.run([pip, "install", "--quiet", "--upgrade", "pip"], check=True, capture_output=True, timeout=600)  # as make venv does
    proc = subprocess.run([pip, "install", "--no-deps", "--quiet", "-e", str(ROOT)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not _quiet(proc.stdout + proc.stderr), proc.stdout + proc.stderr
