"""No rendered rule or dashboard query applies histogram_quantile to raw buckets; every error rate is a ratio of all requests.

Checked on the parsed PromQL (generator/lint.py) of everything services.yaml
and the examples render: rule files and dashboard JSON.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generator import lint, names, pipeline
from generator.catalogue import recorded as R
from generator.model import HttpMetrics, Model, WorkerMetrics
from generator.render.dashboards import lint as dash_lint
from rules_support import IDS, INVENTORIES, rendered, rules  # noqa: F401 (fixture)

BAD_QUANTILES = [
    "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))",  # per series: no sum by (le)
    "histogram_quantile(0.95, http_request_duration_seconds_bucket)",  # raw cumulative buckets, no rate
    "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])))",  # le summed away
    "histogram_quantile(0.95, sum by (service) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.95, max by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.95, sum without (le) (rate(x_bucket[5m])))",
    "histogram_quantile(0.95, sum by (le) (x_bucket))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_sum[5m])))",
    "histogram_quantile(0.95, recorded:buckets:unknown)",
]
GOOD_QUANTILES = [
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{service=\"a\"}[$__rate_interval])))".replace("$__rate_interval", "1m"),
    "histogram_quantile(0.5, sum without (instance, pod) (irate(x_bucket[2m])))",
    "histogram_quantile(0.9, (sum by (le) (increase(x_bucket[1h]))))",
    "max(histogram_quantile(0.9, sum by (le, api) (rate(x_bucket[5m]))))",
    f"histogram_quantile(0.95, {R.HTTP_DURATION_BUCKETS}{{service=\"a\"}})",
]
RECORDED = {R.HTTP_DURATION_BUCKETS: "sum by (service, team, env, le) (rate(http_request_duration_seconds_bucket[5m]))"}


@pytest.mark.parametrize("expr", BAD_QUANTILES)
def test_histogram_quantile_over_raw_buckets_is_caught(expr: str):
    assert lint.histogram_quantile_problems(expr, RECORDED), expr


@pytest.mark.parametrize("expr", GOOD_QUANTILES)
def test_histogram_quantile_over_summed_bucket_rates_passes(expr: str):
    assert lint.histogram_quantile_problems(expr, RECORDED) == []


def _families(model: Model) -> list[lint.ErrorSeries]:
    """Selectors of failed requests/jobs vs. all of them, for the metric names this inventory uses."""
    out = []
    http = {s.metrics.requests: s.metrics for s in model.services if isinstance(s.metrics, HttpMetrics)}
    workers = {s.metrics.jobs: s.metrics for s in model.services if isinstance(s.metrics, WorkerMetrics)}
    error_records = {R.HTTP_ERRORS}
    total_records = {R.HTTP_REQUESTS} | {R.sli_events("http", w) for w in R.SLI_LONG_WINDOWS}
    job_totals = {R.JOBS} | {R.sli_events("worker", w) for w in R.SLI_LONG_WINDOWS}

    def is_http_errors(vs) -> bool:
        name = lint.selector_name(vs) or ""
        if name in error_records:
            return True
        m = http.get(name)
        st = lint.matcher(vs, m.status_label) if m else None
        return bool(st and st[0] in ("=", "=~") and (st[1] == m.error_status or re.fullmatch(m.error_status, st[1] or "x")))

    def is_http_total(vs) -> bool:
        name = lint.selector_name(vs) or ""
        return name in total_records or (name in http and lint.matcher(vs, http[name].status_label) is None)

    def is_job_failures(vs) -> bool:
        name = lint.selector_name(vs) or ""
        if name == R.JOBS_FAILED:
            return True
        m = workers.get(name)
        st = lint.matcher(vs, m.status_label) if m else None
        return bool(st and st == ("=", m.failed_value))

    def is_job_total(vs) -> bool:
        name = lint.selector_name(vs) or ""
        return name in job_totals or (name in workers and lint.matcher(vs, workers[name].status_label) is None)

    out.append(lint.ErrorSeries(is_http_errors, is_http_total))
    out.append(lint.ErrorSeries(is_job_failures, is_job_total))
    return out


def test_an_error_rate_that_is_not_a_ratio_is_caught():
    model = pipeline.load_model(INVENTORIES[0])
    fams = _families(model)
    bad = [
        'sum(rate(http_requests_total{status=~"5.."}[5m])) > 0.05',  # the bug scenario B's team had
        'rate(http_requests_total{status="500"}[5m]) / rate(http_requests_total{status="200"}[5m])',  # errors over successes
        f'{R.HTTP_ERRORS}{{service="x"}} > 1',
        'sum(rate(jobs_total{status="failed"}[5m]))',
    ]
    good = [
        'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05',
        f'{R.HTTP_ERRORS}{{service="x"}} / {R.HTTP_REQUESTS}{{service="x"}}',
        '(sum(rate(http_requests_total{status=~"5.."}[1h])) or sum(rate(http_requests_total[1h])) * 0) / sum(rate(http_requests_total[1h]))',
        'sum(rate(jobs_total{status="failed"}[5m])) / sum(rate(jobs_total[5m]))',
        'sum(rate(http_requests_total[5m]))',
    ]
    for expr in bad:
        assert lint.error_rate_problems(expr, fams), expr
    for expr in good:
        assert lint.error_rate_problems(expr, fams) == [], expr


def _dashboard_queries(root: Path):
    for path in sorted((root / names.DASHBOARDS_DIR).rglob("*.json")):
        d = json.loads(path.read_text())
        values = dash_lint.variable_values(d)
        for q in dash_lint.queries(d):
            yield f"{path.relative_to(root)} / {q.panel}", dash_lint.concrete(q.expr, values)


@pytest.mark.parametrize("inventory, ident", list(zip(INVENTORIES, IDS)), ids=IDS)
def test_rendered_rules_and_dashboards_use_histograms_and_ratios_correctly(inventory: Path, ident: str, rendered):
    root = rendered[ident]
    model = pipeline.load_model(inventory)
    fams = _families(model)
    recorded = {r["record"]: r["expr"] for _, r in rules(root) if "record" in r}
    building_blocks = {R.HTTP_ERRORS, R.JOBS_FAILED}  # failure rates recorded only to be divided by all requests/jobs
    problems = []
    checked = 0
    for group, r in rules(root):
        where = f"{group} / {r.get('alert') or r.get('record')}"
        problems += [f"{where}: {p}" for p in lint.histogram_quantile_problems(r["expr"], recorded)]
        if r.get("record") not in building_blocks:
            problems += [f"{where}: {p}" for p in lint.error_rate_problems(r["expr"], fams)]
        checked += 1
    for where, expr in _dashboard_queries(root):
        problems += [f"{where}: {p}" for p in lint.histogram_quantile_problems(expr, recorded)]
        problems += [f"{where}: {p}" for p in lint.error_rate_problems(expr, fams)]
        checked += 1
    assert checked > 20
    assert not problems, "\n".join(problems)


def test_a_custom_rule_with_histogram_quantile_over_raw_buckets_is_rejected(tmp_path: Path):
    from conftest import monstack

    inv = tmp_path / "services.yaml"
    inv.write_text((INVENTORIES[0]).read_text().replace(
        "      - name: NewErrorType\n",
        "      - name: SlowCheckout\n"
        "        type: threshold\n"
        "        expr: histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))\n"
        "        threshold: 1\n"
        "      - name: NewErrorType\n", 1))
    result = monstack("render", "--inventory", str(inv), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "services[2].rules[3].expr: histogram_quantile argument rate of buckets without sum by (le, ...)" in result.stderr
    assert not (tmp_path / "out" / names.PROMETHEUS_CONFIG).exists()
