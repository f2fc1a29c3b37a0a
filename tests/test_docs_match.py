"""The docs say what the code does: the alert catalogue lists every kind, secrets and state folders are described
as they are created, and a missing compose plugin is named as such."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT

from generator import catalogue, names
from generator.runner import compose as compose_runner

INVENTORY_ROOTS = [ROOT, *sorted(p.parent for p in ROOT.glob("examples/*/services.yaml"))]


@pytest.mark.parametrize("root", INVENTORY_ROOTS, ids=lambda r: str(r.relative_to(ROOT)) or ".")
def test_the_alert_catalogue_lists_every_kind_s_alerts(root: Path):
    doc = (root / names.ALERTS_DOC).read_text()
    section = doc[doc.index("## Every alert of every kind"):]
    for kind in ("http", "worker", "postgres", "redis", "host", "probe", "the stack itself"):
        assert f"### {kind}\n" in section, kind
    for d in catalogue.ALERTS + catalogue.META_ALERTS:
        assert f"| {d.name} | {d.severity} |" in section, d.name


def test_secrets_readme_says_when_the_grafana_password_is_created():
    text = (ROOT / "secrets" / "README.md").read_text()
    assert "natively only when `grafana-server` is" in text
    assert "creates a random Grafana admin password here if none exists" not in text


def test_the_state_table_names_the_sink_secrets_folder():
    assert "| `sink-secrets/` |" in (ROOT / "docs" / "running.md").read_text()


@pytest.mark.parametrize("said, missing", [
    ("unknown flag: --short", True),
    ("docker: 'compose' is not a docker command.", True),
    ("unknown shorthand flag: 'f' in -f", True),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", False),
])
def test_a_missing_compose_plugin_is_recognised(said: str, missing: bool):
    assert compose_runner.not_a_plugin(said) == missing


@pytest.mark.integration
def test_the_mode_line_names_the_missing_compose_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "docker"  # an old docker CLI without the compose plugin: it takes --short for its own flag
    fake.write_text("#!/bin/sh\necho \"unknown flag: --short\" >&2\necho \"See 'docker --help'.\" >&2\nexit 125\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    ok, why = compose_runner.available()
    assert not ok and why == "the Docker Compose plugin is not installed (`docker compose` is not a docker command here)"
