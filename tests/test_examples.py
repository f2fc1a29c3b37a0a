"""The three example deployments of docs/scenarios.md as inventories: committed output current, every check green, the teams' numbers in the rules."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT, monstack
from generator import checks, names
from rules_support import EXAMPLES, IDS, INVENTORIES, alerts, load, needs_promtool, rendered, rules  # noqa: F401 (fixture)


def test_every_scenario_has_an_example():
    assert [p.parent.name for p in EXAMPLES] == ["api-postgres-redis", "node-backends", "prototype-slos"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_committed_example_output_matches_its_inventory(example: Path):
    result = monstack("check", "--inventory", str(example), "--out", str(example.parent))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("ident", IDS)
def test_promtool_and_amtool_accept_everything_and_every_generated_test_passes(ident: str, rendered):
    """monstack validate's checks on the rendered tree: check config/rules, test rules, amtool config and routes."""
    results = checks.all_checks(rendered[ident])
    names_ = [r.name.split(" (")[0] for r in results]
    assert "promtool test rules" in names_ and "promtool check rules" in names_
    assert all(r.ok for r in results), "\n".join(str(r) for r in results if not r.ok)


def _index(root: Path) -> dict[tuple[str, str], dict]:
    return {(a["labels"]["service"], a["alert"]): a for a in alerts(root)}


def _expect(index: dict, service: str, alert: str, severity: str, for_: str | None = None, *fragments: str) -> None:
    rule = index.get((service, alert))
    assert rule is not None, f"{service} has no {alert}"
    assert rule["labels"]["severity"] == severity, (service, alert, rule["labels"]["severity"])
    if for_ is not None:
        assert rule["for"] == for_, (service, alert, rule["for"])
    for f in fragments:
        assert f in rule["expr"], (service, alert, f, rule["expr"])


BACKENDS = ("integration-service", "reasoning-gateway", "voice-service")


def _service_of(expr: str) -> str:
    m = re.search(r'service="([^"]+)"', expr)
    return m.group(1) if m else ""


def test_scenario_a_three_node_backends(rendered):
    ix = _index(rendered["node-backends"])
    records = {f"{r['record']}/{_service_of(r['expr'])}": r["expr"] for _, r in rules(rendered["node-backends"]) if "record" in r}
    for s in BACKENDS:
        _expect(ix, s, "TargetDown", "P0")  # service down: target unreachable ...
        _expect(ix, s, "HealthProbeFailing", "P0")  # ... or its health probe fails
        _expect(ix, s, "HttpErrorRatioCritical", "P0", "5m", "> 0.05")  # error rate > 5% for 5 min
        _expect(ix, s, "HttpErrorRatioHigh", "P1", "5m", "> 0.01")  # 1% .. 5% (the P0 tier mutes it above)
        _expect(ix, s, "HttpLatencyP95High", "P1", "10m", "> 2")  # p95 > 2 s for 10 min
        _expect(ix, s, "HttpLatencyP95Warning", "P2", "15m", "> 1")  # p95 > 1 s for 15 min
        _expect(ix, s, "ProcessMemoryHigh", "P1", None, "> 0.9")  # memory > 90%
        _expect(ix, s, "ProcessMemoryWarning", "P2", None, "> 0.8")  # memory > 80%
        _expect(ix, s, "HealthProbeSlow", "P2", None, 'probe="liveness"}[5m]) > 0.05', 'probe="readiness"}[5m]) > 0.5')  # /health < 50 ms, /ready < 500 ms
        _expect(ix, s, "ErrorBudgetBurn1h", "P0", "0s", "(14.4 * 0.001)")  # uptime > 99.9%
        _expect(ix, s, "LatencyBudgetBurn1h", "P0", "0s", "(14.4 * 0.05)")  # p95 < 500 ms: 5% may be slower
        slow = records[f"service:http_requests_slow:ratio_rate1h/{s}"]
        assert 'le=~"0\\\\.5"' in slow, slow  # the 500 ms bucket, however the client spells it
        assert ix[(s, "HttpErrorRatioCritical")]["labels"]["problem"] == ix[(s, "HttpErrorRatioHigh")]["labels"]["problem"]
    _expect(ix, "integration-service", "DbQueryLatencyP99High", "P2", None, "> 0.5")  # slow database calls: 500 ms
    _expect(ix, "integration-service", "ExternalApiVerySlow", "P2", "10m", "> 5")  # external API calls > 5 s
    _expect(ix, "integration-service", "ExternalApiSlow", "P3", "10m", "> 2")  # slow external API warning: 2 s
    _expect(ix, "reasoning-gateway", "CacheMissRateHigh", "P2", None, "> 0.5")  # cache miss rate > 50%
    _expect(ix, "job-queue", "WorkerQueueDepthHigh", "P1", None, "> 1000")  # queue depth > 1000
    _expect(ix, "job-queue", "WorkerJobFailureRatioWarning", "P2", None, "> 0.01")  # failed jobs < 1%
    _expect(ix, "job-queue", "WorkerJobDurationP95High", "P2", None, "> 5")  # slow jobs: 5 s
    _expect(ix, "redis", "RedisDown", "P0")  # Redis unavailable
    _expect(ix, "redis", "RedisCacheHitRatioLow", "P2", None, "< 0.5")
    _expect(ix, "data-warehouse", "HealthProbeFailing", "P0")  # the warehouse unavailable
    _expect(ix, "payments-api", "HealthProbeFailing", "P1")


def test_scenario_b_one_api_with_postgres_and_redis(rendered):
    root = rendered["api-postgres-redis"]
    ix = _index(root)
    _expect(ix, "api", "HttpErrorRatioCritical", "P0", "1m", "> 0.05")  # 5xx > 5% of requests for 1 min
    _expect(ix, "api", "HttpErrorRatioHigh", "P2", "5m", "> 0.01")  # warning: error rate > 1% for 5 min
    _expect(ix, "api", "HttpLatencyP99High", "P0", "5m", "> 3")  # critical: p99 > 3 s for 5 min
    _expect(ix, "api", "HttpLatencyP99Warning", "P2", "5m", "> 2")  # warning: p99 > 2 s for 5 min
    _expect(ix, "api", "DbQueryLatencyP99High", "P2", "5m", "> 1")  # warning: p99 query time > 1 s for 5 min
    _expect(ix, "api", "DbConnectionPoolSaturated", "P2", "5m", "> 0.8", "db_connection_pool_available")  # pool use > 80%
    _expect(ix, "api", "NewErrorType", "P3", None, "errors_total", "type")  # info: a new error type appears
    _expect(ix, "postgres", "TargetDown", "P0", "1m")  # critical: database exporter down for 1 min
    _expect(ix, "node", "HostDiskSpaceWarning", "P2", None, "< 0.2")  # warning: disk free < 20%
    prom = load(root / names.PROMETHEUS_CONFIG)
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "api")
    assert (job["metrics_path"], job["scrape_interval"]) == ("/api/metrics", "15s")
    assert "--storage.tsdb.retention.time=15d" in load(root / names.COMPOSE_FILE)["services"]["prometheus"]["command"]


def test_scenario_c_prototypes_with_slos(rendered):
    ix = _index(rendered["prototype-slos"])
    budgets = {"sales-sync": "0.001", "customer-profile": "0.001", "recommendations": "0.005", "voice-commerce": "0.005"}
    for s, budget in budgets.items():
        # Down is critical. The team asked for up == 0 for 2 min; monstack's default pages sooner and still
        # never on one failed scrape: two in a row (docs/performance.md).
        _expect(ix, s, "TargetDown", "P0", "0s", "== 0", ">= 2")
        _expect(ix, s, "HttpErrorRatioCritical", "P0", "5m")  # 5xx rate high for 5 min: critical
        _expect(ix, s, "HttpLatencyP95High", "P2", "10m", "> 10")  # p95 > 10 s for 10 min: warning
        _expect(ix, s, "ErrorBudgetBurn1h", "P0", None, f"(14.4 * {budget})")  # fast burn pages
        _expect(ix, s, "ErrorBudgetBurn6h", "P0", None, f"(6 * {budget})")
        _expect(ix, s, "ErrorBudgetBurn1d", "P3", None, f"(3 * {budget})")  # slow burn tickets
        _expect(ix, s, "ErrorBudgetBurn3d", "P3", None, f"(1 * {budget})")
        _expect(ix, s, "LatencyBudgetBurn1h", "P0", None, "(14.4 * 0.05)")  # p95 objectives
        assert (s, "HttpLatencyP95Warning") not in ix
    _expect(ix, "sales-sync", "SalesSyncStalled", "P1", "0s", "sales_synced_total", "[15m]")  # nothing synced for 15 min
    _expect(ix, "sales-sync", "SyncFailureRatioHigh", "P2", "15m", "> 0.01")  # < 1% of syncs fail
    _expect(ix, "customer-profile", "HttpErrorRatioHigh", "P1", None, "> 0.005")  # error rate < 0.5%
    _expect(ix, "recommendations", "RecommendationConfidenceLow", "P2", "30m", "recommendation_confidence_sum", "[30m]", "< 0.5")
    _expect(ix, "voice-commerce", "VoiceConversionLow", "P2", "1h", "orders_created_total", "voice_commands_total", "[1h]", "< 0.1")
    _expect(ix, "voice-commerce", "IntentConfidenceLow", "P3", "30m", "< 0.7")  # intent confidence > 0.7


def test_the_root_inventory_uses_every_service_kind():
    kinds = {s["kind"] for s in load(ROOT / "services.yaml")["services"]}
    assert kinds == {"http", "worker", "postgres", "redis", "host", "probe", "custom"}
    assert INVENTORIES[0] == ROOT / "services.yaml"
