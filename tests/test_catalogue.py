"""The alert catalogue: every kind gets the alerts the issue lists, defaults are documented, overrides apply."""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT
from generator import alerttext, catalogue, names, pipeline
from generator.catalogue import core, custom, slo
from generator.durations import parse_duration
from generator.errors import InventoryError
from generator import alerting
from generator.render import rules as rules_render

KINDS = {
    "http": {"TargetDown", "HealthProbeFailing", "HttpErrorRatioCritical", "HttpErrorRatioHigh", "HttpLatencyP95High",
             "HttpLatencyP99High", "ProcessMemoryHigh", "ProcessCpuHigh", "ErrorBudgetBurn1h", "LatencyBudgetBurn1h"},
    "worker": {"WorkerQueueDepthHigh", "WorkerJobFailureRatioHigh", "WorkerJobDurationP95High", "WorkerStalled"},
    "postgres": {"PostgresDown", "PostgresConnectionsHigh", "PostgresSlowQueries", "PostgresReplicationLagHigh"},
    "redis": {"RedisDown", "RedisMemoryHigh", "RedisCacheHitRatioLow", "RedisEvictions"},
    "host": {"HostCpuHigh", "HostMemoryHigh", "HostDiskSpaceLow", "HostDiskFillsWithin24h", "HostDiskIoSaturated",
             "HostNetworkErrors", "HostClockSkew"},
    "probe": {"HealthProbeFailing", "HealthProbeSlow", "TlsCertificateExpiring"},
}
META = {"Watchdog", "PrometheusConfigReloadFailed", "PrometheusRuleEvaluationFailures", "PrometheusNotificationsDropped",
        "PrometheusNotificationQueueFilling", "AlertmanagerNotificationsFailing", "PrometheusTargetsDownMany",
        "PrometheusScrapeSampleLimitHit"}
CATALOGUE_DIR = ROOT / "generator" / "catalogue"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_gets_the_alerts_the_issue_lists(kind: str):
    have = {a.name for a in catalogue.for_kind(kind)}
    assert KINDS[kind] <= have, sorted(KINDS[kind] - have)


def test_meta_monitoring_covers_the_stack():
    assert META <= {a.name for a in catalogue.META_ALERTS}


@pytest.mark.parametrize("d", catalogue.ALERTS + catalogue.META_ALERTS, ids=lambda d: d.name)
def test_every_alert_definition_is_complete(d: catalogue.AlertDef):
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", d.name)
    assert d.severity in names.LEVELS
    parse_duration(d.for_)
    assert d.unit in ("ratio", "seconds", "bytes", "count", "days", "hours", "none")
    assert d.op in (">", ">=", "<", "<=", "==", "!=")
    assert d.meaning and d.summary and d.description
    for text in (d.summary, d.description):
        assert alerttext.check(text) is None, text
    if d.threshold is None and d.derived_threshold is None:
        assert d.op == "==", f"{d.name}: a state alert (no threshold) compares ==; give it a threshold otherwise"


def _assignments_without_comment(path: Path) -> list[str]:
    """Lines assigning a literal default threshold or `for` without a comment saying when to change it."""
    out = []
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("threshold", "for_") and isinstance(node.value, ast.Constant) \
                and node.value.value is not None:
            if "#" not in lines[node.lineno - 1]:
                out.append(f"{path.name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").endswith("_def"):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, (int, float)) and not isinstance(arg.value, bool):
                    if "#" not in lines[arg.lineno - 1]:
                        out.append(f"{path.name}:{arg.lineno}: {lines[arg.lineno - 1].strip()}")
    return out


def test_every_default_threshold_says_when_to_change_it():
    missing = [m for p in sorted(CATALOGUE_DIR.glob("*.py")) for m in _assignments_without_comment(p)]
    assert not missing, "defaults without a comment:\n" + "\n".join(missing)


@pytest.mark.parametrize("threshold, op, fire, silent", [
    (0.05, ">", 0.055, 0.045),
    (1000, ">", 1100, 900),
    (0.5, "<", 0.45, 0.55),
    (0, ">", 1, 0),  # zero errors must not fire "> 0"
    (0.9, ">", 0.95, 0.81),  # never above 100% for a ratio
    (14, "<", 12.6, 15.4),
])
def test_test_values_sit_just_past_and_just_short_of_the_threshold(threshold, op, fire, silent):
    unit = "ratio" if threshold < 1 and threshold else "count"
    # Within half a percent: a value on a text edge (1100 s prints 18m 20s or 18m 19s) is moved off it.
    assert core.beyond(threshold, op, unit, fire=True) == pytest.approx(fire, rel=0.005)
    assert core.beyond(threshold, op, unit, fire=False) == pytest.approx(silent, rel=0.005)


def test_latency_slo_buckets_match_both_spellings():
    assert slo.le_spellings(2) == ["2", "2.0"]
    assert slo.le_spellings(0.5) == ["0.5"]
    pattern = re.compile(slo.le_regex(2))
    assert pattern.fullmatch("2") and pattern.fullmatch("2.0") and not pattern.fullmatch("20") and not pattern.fullmatch("2x0")
    assert re.fullmatch(slo.le_regex(0.5), "0.5") and not re.fullmatch(slo.le_regex(0.5), "0x5")
    assert re.fullmatch(slo.le_regex(1_000_000), "1e+06")


MINIMAL = textwrap.dedent("""\
    version: 1
    stack: {retention: {time: 30d}}
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
    """)


def _model(tmp_path: Path, services: str):
    inv = tmp_path / "services.yaml"
    inv.write_text(MINIMAL + textwrap.indent(textwrap.dedent(services), "  "))
    return pipeline.load_model(inv)


def test_overrides_change_threshold_for_and_severity_of_the_rendered_rule(tmp_path: Path):
    model = _model(tmp_path, """\
        - name: api
          team: web
          kind: http
          scrape: {targets: ["api:80"]}
          alerts:
            HttpErrorRatioHigh: {threshold: 0.02, for: 7m, severity: P2}
            HttpLatencyP99High: {disabled: true}
        """)
    s = model.service("api")
    by_name = {a.name: rules_render.rule(model, a) for a in alerting.service_alerts(model, s)}
    r = by_name["HttpErrorRatioHigh"]
    assert "> 0.02 and on" in r["expr"] and r["for"] == "7m" and r["labels"]["severity"] == "P2"
    assert "above 2% for 7m" in r["annotations"]["description"]
    assert "HttpLatencyP99High" not in by_name and "HttpLatencyP99High" in s.disabled_alerts
    # Alerts whose inputs the inventory does not declare are not generated.
    assert not {"ProcessMemoryHigh", "DbConnectionPoolSaturated", "ErrorBudgetBurn1h", "HealthProbeFailing"} & set(by_name)


def test_slo_alerts_derive_their_burn_rates_from_the_window_and_take_overrides(tmp_path: Path):
    model = _model(tmp_path, """\
        - name: api
          team: web
          kind: http
          scrape: {targets: ["api:80"]}
          slo: {availability: 99.5, window: 28d}
          alerts:
            ErrorBudgetBurn1d: {severity: P2}
        """)
    by_name = {a.name: rules_render.rule(model, a) for a in alerting.service_alerts(model, model.service("api"))}
    assert "(13.44 * 0.005)" in by_name["ErrorBudgetBurn1h"]["expr"]
    assert by_name["ErrorBudgetBurn1d"]["labels"]["severity"] == "P2"
    assert "LatencyBudgetBurn1h" not in by_name  # no latency objective


@pytest.mark.parametrize("rule, message", [
    ("{name: Stuck, type: stalled, metric: jobs_done_total}", "needs scrape.targets"),
    ("{name: Slow, type: threshold, expr: 'histogram_quantile(0.9, x_bucket)', threshold: 1}", "raw buckets x_bucket"),
    ("{name: Odd, type: absent, metric: x, summary: '{{ .Labels.x }}'}", "unsupported template action"),
    ("{name: Mixed, type: ratio, numerator: a_total, denominator: '{__name__=~\"a_total|b_total\"}', threshold: 0.1}", "must select one metric name"),
    ("{name: Rated, type: ratio, numerator: 'rate(a_total[5m])', denominator: b_total, threshold: 0.1}", "must be a series selector"),
    ("{name: Watchdog, type: absent, metric: x}", "name of a built-in alert"),
])
def test_custom_rules_monstack_cannot_render_faithfully_are_rejected(tmp_path: Path, rule: str, message: str):
    services = f"""\
        - name: biz
          team: web
          kind: custom
          {'health: [{url: "http://biz:80/health"}]' if 'stalled' in rule else 'scrape: {targets: ["biz:80"]}'}
          rules:
            - {rule}
        """
    with pytest.raises(InventoryError) as err:
        _model(tmp_path, services)
    assert any(message in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]


def test_ratio_selectors_are_scoped_to_the_service():
    sel = custom.parse_selector('orders_total{status=~"ok|done"}').scoped("shop")
    assert sel.text() == 'orders_total{service="shop", status=~"ok|done"}'
    metric, labels = sel.example({})
    assert metric == "orders_total" and labels == {"service": "shop", "status": "ok"}
