"""Histograms in milliseconds, and generated test values that survive Prometheus' float arithmetic.

Many clients (Node.js prom-client among them) export http_request_duration_ms. Thresholds stay in
seconds in the inventory; recording rules divide by 1000 once, so percentiles, alerts, texts and
panels all read seconds, while the SLO reads the bucket whose le is the threshold in milliseconds.
promtool judges the rendered rules against a healthy ms histogram (p95 about 430 ms) and a slow one.
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import monstack
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_support import needs_promtool, promtool_test

from generator import alerting, alerttext, names, pipeline, recording
from generator.catalogue import core
from generator.render import rules as rules_render
from generator.render.dashboards import panels

HEAD = textwrap.dedent("""\
    version: 1
    stack: {retention: {time: 30d}}
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
    """)

MS_SERVICE = """\
  - name: api
    team: web
    kind: http
    scrape: {targets: ["api:3000"]}
    slo: {availability: 99.9, latency: {threshold: 500ms, percentile: 95}}
    metrics: {duration: http_request_duration_ms, db_query_duration: db_query_duration_ms}
"""


def _model(tmp_path: Path, services: str):
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD + services)
    return pipeline.load_model(inv)


def _rules(model, service: str) -> dict[str, dict]:
    s = model.service(service)
    return {a.name: rules_render.rule(model, a) for a in alerting.service_alerts(model, s)}


def test_a_ms_suffix_declares_milliseconds_and_the_recorded_percentiles_are_seconds(tmp_path: Path) -> None:
    model = _model(tmp_path, MS_SERVICE)
    m = model.service("api").http_metrics
    assert (m.duration_unit, m.db_query_duration_unit) == ("milliseconds", "milliseconds")
    records = {r["record"]: r["expr"] for r in recording.rules_for(model.service("api"))}
    # The bucket rates keep their le labels in ms, and say so; the percentiles divide once.
    assert "service:http_request_duration_milliseconds_bucket:rate5m" in records
    assert "service:http_request_duration_seconds_bucket:rate5m" not in records
    assert records["service:http_request_duration_seconds:p95_5m"] == (
        'histogram_quantile(0.95, service:http_request_duration_milliseconds_bucket:rate5m{service="api"}) / 1000')
    assert records["service:db_query_duration_seconds:p99_5m"].endswith(" / 1000")
    # The latency SLO counts requests in the bucket whose le is 500 (ms), in both spellings clients use.
    slow = records["service:http_requests_slow:ratio_rate1h"]
    assert 'le=~"500|500\\\\.0"' in slow, slow


def test_thresholds_and_texts_stay_in_seconds(tmp_path: Path) -> None:
    model = _model(tmp_path, MS_SERVICE + "    alerts: {HttpLatencyP95Warning: {threshold: 1}}\n")
    rules = _rules(model, "api")
    warning = rules["HttpLatencyP95Warning"]
    assert warning["expr"] == 'service:http_request_duration_seconds:p95_5m{service="api"} > 1'
    assert "(alert above 1s for 15m)" in warning["annotations"]["description"]
    assert "16m40s" not in warning["annotations"]["description"]
    assert 'le=~"500|500\\\\.0"' in rules["SloLatencyBucketMissing"]["expr"]


def test_an_explicit_unit_wins_over_the_name(tmp_path: Path) -> None:
    services = MS_SERVICE.replace("db_query_duration: db_query_duration_ms}", "db_query_duration: db_query_duration_ms, "
                                  "db_query_duration_unit: seconds, duration_unit: milliseconds}")
    services = services.replace("http_request_duration_ms", "http_request_duration")
    m = _model(tmp_path, services).service("api").http_metrics
    assert (m.duration_unit, m.db_query_duration_unit) == ("milliseconds", "seconds")


def test_worker_durations_in_milliseconds(tmp_path: Path) -> None:
    model = _model(tmp_path, '  - {name: jobs, team: web, kind: worker, scrape: {targets: ["jobs:3000"]}, '
                             'metrics: {duration: job_duration_milliseconds}}\n')
    records = {r["record"]: r["expr"] for r in recording.rules_for(model.service("jobs"))}
    assert records["service:job_duration_seconds:p95_5m"].endswith("service:job_duration_milliseconds_bucket:rate5m{service=\"jobs\"}) / 1000")


def test_latency_panels_read_seconds(tmp_path: Path) -> None:
    from generator.render.dashboards.panels import Scope

    expr = panels.latency_quantile_expr(Scope({"service": "api"}, {}), "http", 90, "milliseconds")
    assert expr.startswith("histogram_quantile(0.9, service:http_request_duration_milliseconds_bucket:rate5m{")
    assert expr.endswith(" / 1000")


# --- promtool judges a healthy and a slow Node.js-style histogram ---------------------------------

LABELS = 'job="api", instance="api:3000", service="api", team="web", env="production", kind="http", method="GET", route="/api/orders"'
BOUNDS = ("100", "250", "500", "1000", "2500", "5000", "+Inf")  # prom-client prints integer ms bounds


def _histogram(shares: tuple[float, ...], per_minute: int = 600) -> list[dict[str, str]]:
    """Cumulative shares per bound; counters rise linearly (per_minute requests a minute)."""
    out = [{"series": f'http_request_duration_ms_bucket{{{LABELS}, le="{b}"}}', "values": f"0+{share * per_minute:g}x60"}
           for b, share in zip(BOUNDS, shares, strict=True)]
    out.append({"series": f"http_request_duration_ms_count{{{LABELS}}}", "values": f"0+{per_minute}x60"})
    out.append({"series": f'http_requests_total{{{LABELS}, status="200"}}', "values": f"0+{per_minute}x60"})
    return out


HEALTHY = (0.6, 0.9, 0.97, 1.0, 1.0, 1.0, 1.0)  # p95 = 250 + 250 * 0.05 / 0.07 = 428.6 ms
SLOW = (0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0)  # p95 = 2500 + 2500 * 0.45 / 0.5 = 4750 ms


@needs_promtool
@pytest.mark.integration
def test_promtool_a_healthy_ms_histogram_raises_no_latency_alert_and_a_slow_one_does(tmp_path: Path) -> None:
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD + MS_SERVICE.replace(", db_query_duration: db_query_duration_ms", ""))
    files = pipeline.build(inv).files
    for path, data in files.items():
        if path.startswith(names.RULES_DIR):
            (tmp_path / Path(path).name).write_bytes(data)
    latency = ("HttpLatencyP95High", "HttpLatencyP95Warning", "HttpLatencyP99High", "HttpLatencyP99Warning")
    groups = [g["name"] for f in ("api.yml", "api.slo.yml") for g in yaml.safe_load((tmp_path / f).read_text())["groups"]]
    rules = {r["alert"]: r for g in yaml.safe_load((tmp_path / "api.yml").read_text())["groups"] for r in g["rules"] if "alert" in r}
    agg = {"service": "api", "team": "web", "env": "production"}
    p95_slow = 4.75

    def expected(alert: str, value: float) -> dict:
        r = rules[alert]
        return {"exp_labels": r["labels"], "exp_annotations": {k: alerttext.expand(v, agg, value) for k, v in r["annotations"].items()}}

    test = {"rule_files": ["api.yml", "api.slo.yml"], "evaluation_interval": "1m", "group_eval_order": groups, "tests": [
        {"name": "healthy: p95 about 430 ms", "interval": "1m", "input_series": _histogram(HEALTHY),
         "promql_expr_test": [{"expr": 'abs(service:http_request_duration_seconds:p95_5m{service="api"} - 0.4285714) < bool 0.0001',
                               "eval_time": "30m", "exp_samples": [{"labels": "{env=\"production\", service=\"api\", team=\"web\"}", "value": 1}]}],
         "alert_rule_test": [{"eval_time": "30m", "alertname": a, "exp_alerts": []} for a in latency]},
        {"name": "slow: p95 4.75 s", "interval": "1m", "input_series": _histogram(SLOW),
         "alert_rule_test": [{"eval_time": "30m", "alertname": "HttpLatencyP95High", "exp_alerts": [expected("HttpLatencyP95High", p95_slow)]}]},
    ]}
    (tmp_path / "ms.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool_test(tmp_path, "ms.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert alerttext.expand(rules["HttpLatencyP95High"]["annotations"]["summary"], agg, p95_slow) == "api: p95 latency 4.75s"


# --- test values off the text edges -----------------------------------------------------------------

OPS = (">", ">=", "<", "<=")
UNITS = ("ratio", "seconds", "bytes", "count", "days", "hours", "none")


def _noisy_texts(value: float) -> set[tuple[str, ...]]:
    return {tuple(f(value * k) for f in (alerttext.humanize, alerttext.humanize1024, alerttext.humanize_percentage,
                                          alerttext.humanize_duration)) for k in (1 - 1e-12, 1.0, 1 + 1e-12)}


@settings(max_examples=1000, deadline=None)
@given(threshold=st.one_of(st.floats(min_value=1e-4, max_value=1e7, allow_nan=False), st.integers(min_value=1, max_value=10**6).map(float),
                           st.sampled_from([60.0, 600.0, 1000.0, 3600.0, 86400.0, 1.0, 0.5, 0.05, 0.001])),
       op=st.sampled_from(OPS), unit=st.sampled_from(UNITS), fire=st.booleans())
def test_property_test_values_sit_on_their_side_and_print_the_same_under_float_noise(threshold, op, unit, fire) -> None:
    if unit == "ratio" and threshold >= 1:
        threshold = threshold / (10 ** math.ceil(math.log10(threshold) + 1))
    value = core.beyond(threshold, op, unit, fire)
    assert core.compares(value, op, threshold) == fire
    assert len(_noisy_texts(value)) == 1, (threshold, value, _noisy_texts(value))
    if value != 0:
        assert abs(value - threshold) <= 0.16 * abs(threshold) or unit == "ratio", (threshold, value)


# Thresholds whose 10% neighbours sit on whole seconds (1100 s: 18m 20s) or 4-digit rounding edges.
EDGY = (1000, 600, 60, 3600, 86400, 90, 120, 1.0005, 9.9995, 2.5, 0.5, 100, 1800, 5000)


@needs_promtool
@pytest.mark.integration
def test_validate_passes_for_latency_thresholds_on_text_edges(tmp_path: Path) -> None:
    services = ""
    for i, t in enumerate(EDGY):
        services += (f"  - {{name: api{i}, team: web, kind: http, scrape: {{targets: ['api{i}:80']}}, "
                     f"alerts: {{HttpLatencyP95High: {{threshold: {t}}}, HttpLatencyP95Warning: {{threshold: {t / 2}}}, "
                     f"HttpLatencyP99High: {{threshold: {t * 3}}}, HttpLatencyP99Warning: {{threshold: {t * 2}}}}}}}\n")
    (tmp_path / "services.yaml").write_text(HEAD + services)
    result = monstack("validate", "--inventory", str(tmp_path / "services.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"ok\s+promtool test rules", result.stdout)
