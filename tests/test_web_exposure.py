"""No web page can drive the stack's write APIs: requests a browser would send from a foreign page (Origin:
http://evil.example, and the preflight OPTIONS before anything that is not a simple request) against the real
binaries the native runner starts (Prometheus, VictoriaMetrics, the sample exporter), with the flags it gives them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from faultutil import inventory
from stackutil import CORE, missing, new_stack, wait_for

from generator import names
from generator.runner.native import NativeStack

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"
VM = "victoria-metrics"
WITH_VM = {"stack": {"remote_write": [{"name": VM, "url": f"http://{VM}:8428/api/v1/write"}]}}


def _preflight(url: str, method: str = "POST", headers: str = "content-type") -> requests.Response:
    return requests.options(url, headers={"Origin": EVIL, "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": headers}, timeout=5)


def _grants_evil(r: requests.Response) -> bool:
    return r.headers.get("Access-Control-Allow-Origin") in ("*", EVIL)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[NativeStack]:
    if reason := missing(CORE + [VM]):
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("exposure")
    s = new_stack(inventory(folder, WITH_VM), folder / "state")
    try:
        s.up(timeout=120)
        yield s
    finally:
        s.down(quiet=True)


def _metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{url} has no {name}")


def test_prometheus_lifecycle_endpoints_refuse_a_web_page(stack: NativeStack) -> None:
    prom = stack.prometheus_url
    before = _metric(prom, "prometheus_config_last_reload_success_timestamp_seconds")
    for path in ("/-/reload", "/-/quit"):
        pre = _preflight(prom + path)
        assert not _grants_evil(pre), (path, dict(pre.headers))
        # A form POST is a simple request: the browser sends it without asking, so the server itself must refuse.
        r = requests.post(prom + path, headers={"Origin": EVIL}, timeout=5)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert not _grants_evil(r)
    assert requests.get(prom + "/-/ready", timeout=5).ok, "Prometheus still runs"
    assert _metric(prom, "prometheus_config_last_reload_success_timestamp_seconds") == before, "nothing reloaded it"


def test_prometheus_api_answers_cors_for_its_own_origin_only(stack: NativeStack) -> None:
    prom = stack.prometheus_url
    r = requests.get(f"{prom}/api/v1/query", params={"query": "up"}, headers={"Origin": EVIL}, timeout=5)
    assert r.ok and not _grants_evil(r), dict(r.headers)
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = _preflight(f"{prom}/api/v1/query")
    assert not _grants_evil(pre), dict(pre.headers)
    own = requests.get(f"{prom}/api/v1/query", params={"query": "up"}, headers={"Origin": prom}, timeout=5)
    assert own.headers.get("Access-Control-Allow-Origin") == prom, "the regex admits Prometheus' own origin"


def test_a_configuration_change_is_reloaded_by_sighup(stack: NativeStack) -> None:
    """The runner reloads without the lifecycle API: Prometheus' success time moves past the apply."""
    prom = stack.prometheus_url
    assert "--web.enable-lifecycle" not in stack._recorded()["prometheus"].argv
    before = _metric(prom, "prometheus_config_last_reload_success_timestamp_seconds")
    changed = inventory(stack.inventory.parent, {**WITH_VM, "stack": {**WITH_VM["stack"], "scrape_timeout": "900ms"}})
    assert changed == stack.inventory
    started = time.time()
    stack.up(timeout=60)
    after = _metric(prom, "prometheus_config_last_reload_success_timestamp_seconds")
    assert after > before and after >= started - 1
    assert _metric(prom, "prometheus_config_last_reload_successful") == 1
    assert "scrape_timeout: 900ms" in requests.get(f"{prom}/api/v1/status/config", timeout=5).json()["data"]["yaml"]


def test_victoria_metrics_admin_endpoints_need_the_generated_key(stack: NativeStack) -> None:
    vm = stack.component_url(VM)
    key_file = stack.generated_secret(names.VICTORIA_METRICS_AUTH_KEY_FILE)
    key = key_file.read_text().strip()
    assert len(key) >= 24 and key_file.stat().st_mode & 0o077 == 0
    match = {"match[]": 'up{job="nothing-matches-this"}'}
    for method, path in (("POST", "/api/v1/admin/tsdb/delete_series"), ("GET", "/snapshot/create"),
                         ("GET", "/internal/force_merge"), ("GET", "/internal/resetRollupResultCache"), ("GET", "/flags")):
        # VictoriaMetrics 1.79 refuses with 400, 401 or 422 by endpoint, each naming the authKey it wants.
        r = requests.request(method, vm + path, params=match, headers={"Origin": EVIL}, timeout=10)
        assert r.status_code in (400, 401, 422) and "authKey" in r.text, (path, r.status_code, r.text[:200])
        assert not _grants_evil(r)
        wrong = requests.request(method, vm + path, params={**match, "authKey": "guess"}, timeout=10)
        assert wrong.status_code in (400, 401, 422) and "authKey" in wrong.text, (path, wrong.status_code)
    ok = requests.post(vm + "/api/v1/admin/tsdb/delete_series", params={**match, "authKey": key}, timeout=10)
    assert ok.status_code == 204, (ok.status_code, ok.text)
    # The key is in no command line anyone can read, no rendered file and no log.
    pid = stack._recorded()[VM].pid
    assert key not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    for folder in (stack.config_dir, stack.logs_dir, stack.run_dir):
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert key not in path.read_text(errors="replace"), path


def test_sample_exporter_control_needs_the_stack_token(stack: NativeStack) -> None:
    web = stack.component_url("demo-web")
    pre = _preflight(f"{web}/control", headers=f"content-type,{names.CONTROL_HEADER.lower()}")
    assert not pre.ok and not _grants_evil(pre), (pre.status_code, dict(pre.headers))
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, names.CONTROL_HEADER: "guess"}):
        r = requests.post(f"{web}/control", json={"exit": True}, headers=headers, timeout=5)
        assert r.status_code == 403, (headers, r.status_code, r.text)
    assert "demo-web" in stack._recorded_running()
    argv = " ".join(stack._recorded()["demo-web"].argv)
    assert "--control-token-file" in argv and stack.control_headers()[names.CONTROL_HEADER] not in argv
    r = requests.post(f"{web}/control", json={"error_ratio": 0.0}, headers=stack.control_headers(), timeout=5)
    assert r.status_code == 200, r.text


def test_the_generated_keys_are_private_and_writes_still_reach_victoria_metrics(stack: NativeStack) -> None:
    for ref in (names.CONTROL_TOKEN_FILE, names.VICTORIA_METRICS_AUTH_KEY_FILE):
        path = stack.generated_secret(ref)
        assert path.parent == stack.state_dir / "secrets" and os.stat(path).st_mode & 0o077 == 0
    query = f'prometheus_remote_storage_samples_total{{remote_name="{VM}"}} > 0'
    wait_for("remote write into VictoriaMetrics", lambda: requests.get(f"{stack.prometheus_url}/api/v1/query",
             params={"query": query}, timeout=5).json()["data"]["result"], timeout=30)
