"""The pure parts of applying a configuration safely: the journaled commit, the state folder's lock, the checks of
referenced files, what each component loads, and how replicas are planned. tests/test_faults.py drives them
against real processes."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from conftest import tree_hash
from generator import components, names, pipeline, writer
from generator.errors import CheckFailed
from generator.runner import apply, lock
from generator.runner.native import NativeStack
from stackutil import E2E_INVENTORY

SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def _files(version: str) -> dict[str, bytes]:
    files = {f"a/{i}.yml": f"{version} {i}\n".encode() for i in range(5)}
    files[names.MANIFEST] = writer.manifest(files)
    return files


def tree_hash_of(files: dict[str, bytes]) -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}


def test_a_commit_killed_after_its_journal_is_finished_by_recover(tmp_path: Path) -> None:
    old, new = _files("old"), _files("new")
    writer.commit(writer.stage(old, tmp_path), old, tmp_path)
    staging = writer.stage(new, tmp_path)
    # What a render killed after writing its journal and moving two files leaves behind.
    journal = {"staging": staging.name, "write": sorted(p for p in new if p != names.MANIFEST), "remove": []}
    (tmp_path / writer.JOURNAL).write_text(json.dumps(journal))
    for path in journal["write"][:2]:
        os.replace(staging / path, tmp_path / path)
    assert writer.recover(tmp_path).startswith("finished an interrupted render")
    assert tree_hash(tmp_path) == tree_hash_of(new)
    assert writer.recover(tmp_path) is None  # nothing left to do


def test_a_render_interrupted_before_its_journal_leaves_the_old_tree_and_a_staging_folder_recover_removes(tmp_path: Path) -> None:
    old, new = _files("old"), _files("new")
    writer.commit(writer.stage(old, tmp_path), old, tmp_path)
    writer.stage(new, tmp_path)  # staged, never committed
    assert "removed 1 staging folder" in (writer.recover(tmp_path) or "")
    assert tree_hash(tmp_path) == tree_hash_of(old)


def test_a_second_holder_waits_then_is_refused_with_the_first_named(tmp_path: Path) -> None:
    path = lock.lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process's lock, as far as the kernel can tell (another open file)
        os.write(fd, json.dumps({"pid": 4242, "command": "up", "since": time.time()}).encode())
        said: list[str] = []
        t = time.monotonic()
        with pytest.raises(CheckFailed) as exc, lock.state_lock(tmp_path, "down", wait=0.5, say=said.append):
            pass
        assert time.monotonic() - t >= 0.5
        assert "is in use by pid 4242 (monstack up, since" in str(exc.value)
        assert said and "waiting up to 0.5s for pid 4242" in said[0]
    finally:
        os.close(fd)
    with lock.state_lock(tmp_path, "down", wait=0):  # released: taken at once
        holder = lock.holder(tmp_path)
        assert holder and holder["pid"] == os.getpid() and holder["command"] == "down"
        with lock.state_lock(tmp_path, "down", wait=0):  # re-entrant in one process (`up` failing calls `down`)
            pass


def _inventory(tmp_path: Path, tls: dict) -> Path:
    data = yaml.safe_load(E2E_INVENTORY.read_text())
    data["services"][0]["scrape"]["tls"] = tls
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_referenced_tls_files_are_checked_before_anything_is_applied(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ca.pem").write_text("not a certificate\n")
    inv = _inventory(tmp_path, {"ca_file": "secrets/ca.pem", "cert_file": "secrets/none.pem", "key_file": "secrets/none.key"})
    stack = NativeStack(inv, tmp_path / ".monstack", sinks=True)
    model = pipeline.load_model(inv)
    problems = apply.preflight(model, stack.topology(model))
    assert problems[0].startswith("services[0] (checkout-api) scrape.tls.ca_file: secrets/ca.pem holds no PEM certificate")
    assert "services[0] (checkout-api) scrape.tls.cert_file: secrets/none.pem cannot be read (No such file or directory)" in problems
    assert len(problems) == 3


@pytest.mark.skipif(not SYSTEM_CAS.is_file(), reason="no system CA bundle")
def test_a_real_ca_bundle_passes(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    shutil.copy(SYSTEM_CAS, tmp_path / "secrets" / "ca.pem")  # TLS files lie in the secrets folder like every *_file
    inv = _inventory(tmp_path, {"ca_file": "secrets/ca.pem"})
    model = pipeline.load_model(inv)
    assert apply.preflight(model, NativeStack(inv, tmp_path / ".monstack").topology(model)) == []


def test_each_component_is_reloaded_for_its_own_files_only() -> None:
    files = {names.PROMETHEUS_CONFIG: b"p", "prometheus/rules/a.yml": b"r", names.ALERTMANAGER_CONFIG: b"a",
             "alertmanager/templates/t.tmpl": b"t", names.BLACKBOX_CONFIG: b"b", "grafana/dashboards/x.json": b"g"}
    base = {c: apply.digest(files, c) for c in ("prometheus", "alertmanager", "blackbox-exporter")}
    assert apply.digest(files, "demo-web") is None  # nothing to reload
    changed = dict(files, **{"prometheus/rules/a.yml": b"r2", "grafana/dashboards/x.json": b"g2"})
    assert {c: apply.digest(changed, c) != d for c, d in base.items()} == {
        "prometheus": True, "alertmanager": False, "blackbox-exporter": False}
    # The second Prometheus of a pair loads its own file and the shared rules.
    assert components.get("prometheus-2").reloads == ("prometheus/prometheus-2.yml", "prometheus/rules/")


def test_replicas_run_as_processes_of_their_own_on_distinct_ports_with_gossip_flags(tmp_path: Path) -> None:
    data = yaml.safe_load(E2E_INVENTORY.read_text())
    data["stack"]["replicas"] = {"prometheus": 2, "alertmanager": 3}
    inv = tmp_path / "services.yaml"
    inv.write_text(yaml.safe_dump(data))
    stack = NativeStack(inv, tmp_path / ".monstack", sinks=True, port_offset=1000)
    model = pipeline.load_model(inv)
    planned = stack.components(model)
    assert [c for c in planned if c.startswith(("prometheus", "alertmanager"))] == [
        "alertmanager", "alertmanager-2", "alertmanager-3", "prometheus", "prometheus-2"]
    specs = {c: stack.spec(c, model) for c in planned}
    ports = [p for s in specs.values() for p in s.ports]
    assert len(ports) == len(set(ports)), ports
    am2 = specs["alertmanager-2"].argv
    assert "--cluster.listen-address=127.0.0.1:20096" in am2 and "--cluster.advertise-address=127.0.0.1:20096" in am2
    assert {"--cluster.peer=127.0.0.1:20094", "--cluster.peer=127.0.0.1:20098"} <= set(am2)
    assert f"--storage.path={stack.data_dir / 'alertmanager-2'}" in am2
    p2 = specs["prometheus-2"].argv
    assert f"--config.file={stack.config_dir / 'prometheus' / 'prometheus-2.yml'}" in p2
    assert "--rules.alert.for-grace-period=0s" in p2 and "--web.listen-address=127.0.0.1:20092" in p2
    # One replica: no gossip at all.
    single = NativeStack(E2E_INVENTORY, tmp_path / "single", sinks=True)
    assert "--cluster.listen-address=" in single.spec("alertmanager", pipeline.load_model(E2E_INVENTORY)).argv
