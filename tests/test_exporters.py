"""The demo exporters, run as real subprocesses on 127.0.0.1.

Every exporter is started with ``--listen 127.0.0.1:0``; the port it got is read from
its single start-up log line on stderr (no port-picking race).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, FrozenSet, Iterator, List, Tuple

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NAMES = ["demo-web", "demo-worker", "demo-business"]
CONTROL_TOKEN = "test-control-token"  # what start() writes into the token file every exporter here gets

Samples = Dict[Tuple[str, FrozenSet[Tuple[str, str]]], float]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


class Running:
    def __init__(self, name: str, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.name, self.proc, self.url, self.log = name, proc, url, log

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 5)
        return requests.get(self.url + path, **self._token(path, kw))

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 5)
        return requests.post(self.url + path, **self._token(path, kw))

    @staticmethod
    def _token(path: str, kw: dict) -> dict:
        """Control requests carry the token (a test of the refusal passes its own headers)."""
        if path.startswith("/control") and "headers" not in kw:
            kw["headers"] = {"X-Monstack-Control": CONTROL_TOKEN}
        return kw

    def control(self, **fields) -> dict:
        r = self.post("/control", json=fields)
        assert r.status_code == 200, r.text
        return r.json()

    def reset(self) -> dict:
        r = self.post("/control/reset")
        assert r.status_code == 200, r.text
        return r.json()

    def scrape(self) -> Samples:
        r = self.get("/metrics")
        assert r.status_code == 200
        return parse(r.text)


def start(name: str, log_dir: Path, *extra: str, control: bool = True) -> Running:
    log = log_dir / f"{name}-{time.monotonic_ns()}.log"
    token_file = log_dir / "control-token"
    token_file.write_text(CONTROL_TOKEN + "\n")
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporters", name, "--listen", "127.0.0.1:0",
             *(["--control-token-file", str(token_file)] if control else []), *extra],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())
        if m:
            return Running(name, proc, m.group(1), log)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stop(proc)
    pytest.fail(f"{name} did not start: {log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and want <= lbls)


def family_names(text: str) -> set:
    return {f.name for f in text_string_to_metric_families(text)}


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(interval)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Dict[str, Running]]:
    log_dir = tmp_path_factory.mktemp("exporters")
    procs: Dict[str, Running] = {}
    try:
        for name in NAMES:
            # demo-business runs faster so its slow streams (sync: 0.5/s) are testable quickly.
            extra = ("--activity", "4") if name == "demo-business" else ()
            procs[name] = start(name, log_dir, *extra)
        yield procs
    finally:
        for r in procs.values():
            stop(r.proc)


@pytest.fixture
def fresh(tmp_path):
    """Start throw-away exporter processes; always cleaned up."""
    started: List[Running] = []

    def _start(name: str, *extra: str, control: bool = True) -> Running:
        r = start(name, tmp_path, *extra, control=control)
        started.append(r)
        return r

    yield _start
    for r in started:
        stop(r.proc)


@pytest.fixture(autouse=True)
def _reset_faults(request):
    yield
    if "running" in request.fixturenames:
        for r in request.getfixturevalue("running").values():
            if r.proc.poll() is None:
                r.post("/control/reset")


# --------------------------------------------------------------------------
# exposition
# --------------------------------------------------------------------------

EXPECTED_FAMILIES = {
    "demo-web": {
        "http_requests", "http_request_duration_seconds", "db_query_duration_seconds",
        "db_connection_pool_size", "db_connection_pool_available", "cache_hits", "cache_misses",
        "external_api_duration_seconds", "ai_model_calls", "ai_model_tokens",
        "ai_model_call_duration_seconds", "ai_model_cost_dollars", "errors", "active_users",
    },
    "demo-worker": {
        "queue_depth", "jobs", "job_processing_duration_seconds", "job_failures",
    },
    "demo-business": {
        "sales_synced", "sync_latency_seconds", "sync_errors", "profile_requests",
        "profile_cache_hits", "recommendations_served", "recommendation_confidence",
        "voice_commands", "orders_created", "intent_confidence", "meetings_processed",
        "chat_queries",
    },
}
# prometheus_client strips "_total" from counter family names; samples keep it.
PROCESS_FAMILIES = {"process_resident_memory_bytes", "process_cpu_seconds", "python_info"}

LINT_ONLY_EXIT = 3  # promtool: 1 = parse error, 3 = lint problems only


def promtool_verdict(returncode: int, output: str) -> Tuple[bool, str]:
    """promtool's exit status is the judge.

    0 passes.  Exit 3 means "parsed fine, but lint problems": some promtool versions
    flag histograms without a unit suffix (``recommendation_confidence``,
    ``intent_confidence`` are ratios, and the brief fixes those names), so lint
    problems that are *only* about units are tolerated.  Anything else, including
    every parse error (exit 1, "error while linting"), fails.
    """
    if returncode == 0:
        return True, output
    if returncode == LINT_ONLY_EXIT and "error" not in output.lower():
        problems = [line for line in output.splitlines() if line.strip()]
        if problems and all("unit" in line for line in problems):
            return True, output
    return False, output


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_metrics_pass_promtool(running, name):
    r = running[name].get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=r.content,
                           capture_output=True, timeout=20)
    output = (check.stdout + check.stderr).decode()
    ok, why = promtool_verdict(check.returncode, output)
    assert ok, f"promtool check metrics exited {check.returncode}:\n{why}"


@pytest.mark.integration
def test_promtool_verdict_rejects_parse_errors():
    """The tolerance above cannot hide a broken exposition."""
    bad = subprocess.run([PROMTOOL, "check", "metrics"], input=b"broken{ 1\n",
                         capture_output=True, timeout=20)
    ok, _ = promtool_verdict(bad.returncode, (bad.stdout + bad.stderr).decode())
    assert bad.returncode != 0 and not ok


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_expected_metric_families(running, name):
    text = running[name].get("/metrics").text
    missing = (EXPECTED_FAMILIES[name] | PROCESS_FAMILIES) - family_names(text)
    assert not missing, f"{name} lacks {sorted(missing)}"
    samples = parse(text)
    assert total(samples, "process_resident_memory_bytes") > 1_000_000
    assert ("process_cpu_seconds_total", frozenset()) in samples
    assert not any(n.endswith("_created") for n, _ in samples), "_created series should be off"


def _bucket_bounds(samples: Samples, name: str) -> List[float]:
    return sorted({float(dict(lbls)["le"]) for n, lbls in samples if n == name + "_bucket"})


@pytest.mark.integration
def test_histogram_buckets(running):
    web = running["demo-web"].scrape()
    assert _bucket_bounds(web, "http_request_duration_seconds") == [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, float("inf")]
    worker = running["demo-worker"].scrape()
    assert _bucket_bounds(worker, "job_processing_duration_seconds") == [
        0.1, 0.5, 1, 2, 5, 10, 30, 60, float("inf")]
    biz = running["demo-business"].scrape()
    expected = [round(0.1 * i, 1) for i in range(1, 11)] + [float("inf")]
    assert _bucket_bounds(biz, "recommendation_confidence") == expected
    assert _bucket_bounds(biz, "intent_confidence") == expected


@pytest.mark.integration
def test_label_sets(running):
    web = running["demo-web"].scrape()
    routes = {dict(l)["route"] for n, l in web if n == "http_requests_total"}
    assert {"/api/orders", "/api/users", "/api/search"} <= routes
    statuses = {dict(l)["status"] for n, l in web if n == "http_requests_total"}
    assert {"200", "500"} <= statuses and all(s.isdigit() for s in statuses)
    worker = running["demo-worker"].scrape()
    assert {dict(l)["queue"] for n, l in worker if n == "queue_depth"} == {"default", "emails"}
    assert {dict(l)["status"] for n, l in worker if n == "jobs_total"} == {"completed", "failed"}


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_background_activity_moves_metrics(running, name):
    counter = {"demo-web": "http_requests_total", "demo-worker": "jobs_total",
               "demo-business": "profile_requests_total"}[name]
    exporter = running[name]
    before = total(exporter.scrape(), counter)
    assert wait_until(lambda: total(exporter.scrape(), counter) > before, timeout=5), \
        f"{counter} did not move without outside load"


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_one_log_line_per_start(running, name):
    lines = running[name].log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}: listening on http://127.0.0.1:")


# --------------------------------------------------------------------------
# health, readiness and the control API
# --------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_health_and_readiness(running, name):
    exporter = running[name]
    for path in ("/health", "/healthz"):
        r = exporter.get(path)
        assert r.status_code == 200 and r.text.strip() == "ok"
    r = exporter.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    exporter.control(unready=True)
    assert exporter.get("/ready").status_code == 503
    assert exporter.get("/health").status_code == 200  # liveness is unaffected
    exporter.reset()
    assert exporter.get("/ready").status_code == 200


@pytest.mark.integration
def test_control_get_merge_and_reset(running):
    web = running["demo-web"]
    defaults = web.get("/control").json()
    assert defaults == {"error_ratio": 0.0, "latency_seconds": 0.0, "queue_backlog": 0,
                        "hang": False, "unready": False, "exit": False, "fail_metrics": 0, "fail_health": 0}
    after_first = web.control(error_ratio=0.25)
    assert after_first["error_ratio"] == 0.25
    merged = web.control(latency_seconds=0.5)
    assert merged["error_ratio"] == 0.25 and merged["latency_seconds"] == 0.5  # merged, not replaced
    assert web.get("/control").json() == merged
    assert web.reset() == defaults
    assert web.get("/control").json() == defaults

    biz = running["demo-business"].get("/control").json()
    assert biz["sync_stalled"] is False and biz["confidence"] == 0.8 and biz["conversion"] == 0.3


BAD_BODIES = [
    ('{"no_such_fault": 1}', "unknown"),
    ('{"hang": "yes"}', "boolean"),
    ('{"error_ratio": "0.5"}', "number"),
    ('{"error_ratio": true}', "number"),
    ('{"error_ratio": 1.5}', "<="),
    ('{"latency_seconds": -1}', ">="),
    ('{"queue_backlog": 2.5}', "integer"),
    ('[1, 2]', "object"),
    ('not json', "JSON"),
    ('{"sync_stalled": true}', "unknown"),  # demo-business only
]


@pytest.mark.integration
@pytest.mark.parametrize("body,needle", BAD_BODIES)
def test_bad_control_input_is_400(running, body, needle):
    web = running["demo-web"]
    before = web.get("/control").json()
    r = web.post("/control", data=body, headers={"Content-Type": "application/json", "X-Monstack-Control": CONTROL_TOKEN})
    assert r.status_code == 400
    assert needle in r.json()["error"]
    assert web.get("/control").json() == before, "a rejected request must change nothing"


@pytest.mark.integration
def test_business_only_fields(running):
    biz = running["demo-business"]
    r = biz.post("/control", json={"confidence": "high"})
    assert r.status_code == 400
    state = biz.control(sync_stalled=True, confidence=0.5, conversion=1)
    assert state["sync_stalled"] is True and state["confidence"] == 0.5 and state["conversion"] == 1.0


@pytest.mark.integration
def test_partial_bad_update_is_atomic(running):
    web = running["demo-web"]
    r = web.post("/control", json={"error_ratio": 0.5, "hang": "nope"})
    assert r.status_code == 400
    assert web.get("/control").json()["error_ratio"] == 0.0


# --------------------------------------------------------------------------
# fault effects
# --------------------------------------------------------------------------


def _by_class(samples: Samples) -> Tuple[float, float]:
    ok = sum(v for (n, l), v in samples.items()
             if n == "http_requests_total" and dict(l)["status"].startswith("2"))
    err = sum(v for (n, l), v in samples.items()
              if n == "http_requests_total" and dict(l)["status"].startswith("5"))
    return ok, err


@pytest.mark.integration
def test_web_error_ratio_turns_requests_into_500s(running):
    web = running["demo-web"]
    web.control(error_ratio=1.0)
    time.sleep(0.15)  # let a simulated request that read the old state finish
    before = web.scrape()
    ok0, err0 = _by_class(before)
    for _ in range(3):
        r = web.get("/api/orders")
        assert r.status_code == 500 and "error" in r.json()
    # Simulated traffic (~20/s, Poisson) must fail too: wait for 3 of it.
    assert wait_until(lambda: _by_class(web.scrape())[1] >= err0 + 3 + 3)
    after = web.scrape()
    ok1, err1 = _by_class(after)
    assert ok1 == ok0, "no 2xx may be counted while error_ratio=1"
    internal = lambda s: total(s, "errors_total", type="internal")  # noqa: E731
    assert internal(after) >= internal(before) + 3 + 3

    web.reset()
    assert web.get("/api/orders").status_code == 200
    assert wait_until(lambda: _by_class(web.scrape())[0] > ok1)


@pytest.mark.integration
def test_web_real_routes_and_latency(fresh):
    web = fresh("demo-web", "--activity", "0")  # only our requests move the counters
    assert web.get("/api/orders").json()["orders"]
    created = web.post("/api/orders", json={"item": "monitor"})
    assert created.status_code == 201 and created.json()["status"] == "created"
    assert "keyboard" in web.get("/api/search", params={"q": "key"}).json()["results"]
    assert web.get("/api/users", params={"id": "42"}).json()["users"][0]["id"] == "42"
    assert web.get("/api/nope").status_code == 404

    web.control(latency_seconds=0.3)
    t0 = time.monotonic()
    assert web.get("/api/users").status_code == 200
    assert time.monotonic() - t0 >= 0.3
    s = web.scrape()
    assert total(s, "http_requests_total", method="GET", route="/api/users", status="200") == 2
    assert total(s, "http_requests_total", method="POST", route="/api/orders", status="201") == 1
    assert total(s, "http_request_duration_seconds_count", route="/api/users") == 2
    assert total(s, "http_request_duration_seconds_sum", route="/api/users") >= 0.3
    # the slow request landed above the 0.25 s bucket
    le_025 = total(s, "http_request_duration_seconds_bucket", route="/api/users", le="0.25")
    assert le_025 == 1


EVIL = "http://evil.example"


@pytest.mark.integration
def test_control_needs_the_token_and_grants_no_web_page(running):
    """A web page may POST a simple request anywhere: /control answers only a request carrying the token, and the
    preflight a browser sends before adding the header is never granted."""
    web = running["demo-web"]
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, "X-Monstack-Control": "guess"}):
        for method, path in (("POST", "/control"), ("POST", "/control/reset"), ("GET", "/control")):
            r = requests.request(method, web.url + path, json={"error_ratio": 1.0} if path == "/control" else None,
                                 headers=headers, timeout=5)
            assert r.status_code == 403, (method, path, headers, r.status_code)
            assert "Access-Control-Allow-Origin" not in r.headers
    assert web.get("/control").json()["error_ratio"] == 0.0, "a refused request changed nothing"
    pre = requests.options(web.url + "/control", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                                           "Access-Control-Request-Headers": "content-type,x-monstack-control"},
                           timeout=5)
    assert not pre.ok and "Access-Control-Allow-Origin" not in pre.headers, (pre.status_code, dict(pre.headers))
    assert web.post("/control", json={"error_ratio": 0.5}).status_code == 200  # with the token


@pytest.mark.integration
def test_control_is_off_without_a_token_file(fresh):
    r = fresh("demo-worker", control=False)
    for headers in ({}, {"X-Monstack-Control": CONTROL_TOKEN}):
        got = requests.post(r.url + "/control", json={"exit": True}, headers=headers, timeout=5)
        assert got.status_code == 404, got.text
    assert r.get("/metrics").status_code == 200 and r.proc.poll() is None


@pytest.mark.integration
def test_hang_blocks_metrics_but_not_control(running):
    web = running["demo-web"]
    web.control(hang=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        web.get("/metrics", timeout=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        web.get("/health", timeout=0.5)
    t0 = time.monotonic()
    r = web.get("/control", timeout=2)
    assert r.status_code == 200 and r.json()["hang"] is True
    assert time.monotonic() - t0 < 1.0
    web.reset()
    assert web.get("/metrics", timeout=2).status_code == 200
    assert web.get("/health", timeout=2).status_code == 200


@pytest.mark.integration
def test_worker_error_ratio_fails_jobs(running):
    worker = running["demo-worker"]
    worker.control(error_ratio=1.0)
    time.sleep(0.25)
    s0 = worker.scrape()
    assert wait_until(lambda: total(worker.scrape(), "jobs_total", status="failed")
                      >= total(s0, "jobs_total", status="failed") + 3)
    s1 = worker.scrape()
    assert total(s1, "jobs_total", status="completed") == total(s0, "jobs_total", status="completed")
    assert total(s1, "job_failures_total") - total(s0, "job_failures_total") == \
        total(s1, "jobs_total", status="failed") - total(s0, "jobs_total", status="failed")


@pytest.mark.integration
def test_worker_backlog_stalls_processing(running):
    worker = running["demo-worker"]
    worker.control(queue_backlog=500)
    time.sleep(0.25)
    s0 = worker.scrape()
    assert total(s0, "queue_depth", queue="default") >= 500
    time.sleep(0.8)  # ~7 jobs would normally finish in this time
    s1 = worker.scrape()
    assert total(s1, "jobs_total") == total(s0, "jobs_total"), "stalled worker completed jobs"
    assert total(s1, "queue_depth") >= total(s0, "queue_depth")

    worker.reset()
    assert wait_until(lambda: total(worker.scrape(), "jobs_total") > total(s1, "jobs_total"))
    assert total(worker.scrape(), "queue_depth", queue="default") < 500


@pytest.mark.integration
def test_business_faults(running):
    biz = running["demo-business"]

    # sync_stalled: sales_synced_total stops, and starts again afterwards
    biz.control(sync_stalled=True)
    time.sleep(0.3)
    synced = total(biz.scrape(), "sales_synced_total")
    time.sleep(0.8)
    assert total(biz.scrape(), "sales_synced_total") == synced
    biz.control(sync_stalled=False)
    assert wait_until(lambda: total(biz.scrape(), "sales_synced_total") > synced, timeout=8)

    # conversion=0: voice commands keep coming, no orders are created
    biz.control(conversion=0.0, confidence=0.15)
    time.sleep(0.3)
    s0 = biz.scrape()

    def grew(name: str, by: int):
        return lambda: total(biz.scrape(), name) >= total(s0, name) + by

    # Both streams are Poisson: wait on each, not on one and hope for the other.
    assert wait_until(grew("voice_commands_total", 3), timeout=10)
    assert wait_until(grew("recommendation_confidence_count", 3), timeout=10)
    s1 = biz.scrape()
    assert total(s1, "orders_created_total") == total(s0, "orders_created_total")
    # confidence=0.15 (sd 0.1 and 0.08): new observations sit far below 0.6
    for hist in ("recommendation_confidence", "intent_confidence"):
        new = total(s1, f"{hist}_count") - total(s0, f"{hist}_count")
        low = (total(s1, f"{hist}_bucket", le="0.6")
               - total(s0, f"{hist}_bucket", le="0.6"))
        assert new >= 3 and low == new, (hist, new, low)


# --------------------------------------------------------------------------
# process lifecycle
# --------------------------------------------------------------------------


@pytest.mark.integration
def test_exit_fault_exits_with_code_1(fresh):
    worker = fresh("demo-worker")
    r = worker.post("/control", json={"exit": True})
    assert r.status_code == 200 and r.json()["exit"] is True  # answered first
    assert worker.proc.wait(timeout=5) == 1


@pytest.mark.parametrize("name,sig", [("demo-web", signal.SIGTERM),
                                      ("demo-worker", signal.SIGTERM),
                                      ("demo-business", signal.SIGINT)])
@pytest.mark.integration
def test_signal_shuts_down_cleanly(fresh, name, sig):
    exporter = fresh(name)
    assert exporter.get("/health").status_code == 200
    exporter.proc.send_signal(sig)
    assert exporter.proc.wait(timeout=5) == 0
    log = exporter.log.read_text()
    assert "Traceback" not in log and len(log.splitlines()) == 1


@pytest.mark.integration
def test_sigterm_while_hung(fresh):
    """A request stuck in a hang must not keep the process alive."""
    web = fresh("demo-web")
    web.control(hang=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        web.get("/metrics", timeout=0.3)
    web.proc.terminate()
    assert web.proc.wait(timeout=5) == 0


@pytest.mark.integration
def test_cli_rejects_bad_arguments():
    bad = subprocess.run([sys.executable, "-m", "exporters", "demo-nope"], cwd=REPO,
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "exporters", "demo-web", "--listen", "nope"],
                         cwd=REPO, capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


@pytest.mark.integration
def test_counted_faults_fail_exactly_that_many_scrapes_and_probes(running):
    """fail_metrics / fail_health: the next N requests answer 503, then everything is fine again, however long it takes."""
    web = running["demo-web"]
    web.control(fail_metrics=2, fail_health=1)
    assert [web.get("/metrics").status_code for _ in range(3)] == [503, 503, 200]
    assert [web.get("/health").status_code for _ in range(2)] == [503, 200]
    assert web.get("/control").json()["fail_metrics"] == 0
    web.reset()
