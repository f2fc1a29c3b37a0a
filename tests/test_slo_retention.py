"""SLO data: an error budget over 30 days needs 30 days of samples.

Prometheus keeps stack.retention.time (15 days by default). An SLO window longer than that is
an inventory error, unless the stack remote-writes to its long-term store (VictoriaMetrics):
then VictoriaMetrics keeps the longest SLO window, and the panels computed over the whole
window (budget left, budget consumed, the objective over the window) read it instead of
Prometheus. Burn rates over recorded windows (at most 3 days) stay on Prometheus.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from generator import names, pipeline
from generator.errors import InventoryError

HEAD = textwrap.dedent("""\
    version: 1
    stack: {%s}
    receivers: {hook: {type: webhook, url: "http://hook.internal/x"}}
    severities: {P0: {receivers: [hook]}, P1: {receivers: [hook]}, P2: {receivers: [hook]}, P3: {receivers: [hook]}}
    teams: {web: {}}
    services:
      - {name: api, team: web, kind: http, scrape: {targets: ["api:80"]}, slo: {availability: 99.9, window: 30d}}
    """)
VM = 'remote_write: [{name: victoria-metrics, url: "http://victoria-metrics:8428/api/v1/write"}]'


def _write(tmp_path: Path, stack: str) -> Path:
    inv = tmp_path / "services.yaml"
    inv.write_text(HEAD % stack)
    return inv


def test_a_window_longer_than_retention_without_a_long_term_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(_write(tmp_path, "retention: {time: 15d}"))
    (problem,) = err.value.problems
    assert problem.line == 7 and problem.path == "services[0].slo.window"
    assert ("the SLO window 30d is longer than Prometheus keeps samples (stack.retention.time 15d) and the stack has no "
            "long-term store: its error budget would be computed from 15d of data") in problem.message


def test_enough_retention_is_fine(tmp_path: Path) -> None:
    model = pipeline.load_model(_write(tmp_path, "retention: {time: 30d}"))
    assert model.stack.long_term_retention is None
    slo = json.loads(pipeline.build(tmp_path / "services.yaml").files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_SLO)])
    uids = {p["datasource"]["uid"] for p in slo["panels"] if "datasource" in p}
    assert uids == {names.DATASOURCE_PROMETHEUS_UID}


def _panels(dashboard: dict) -> dict[str, dict]:
    return {p["title"]: p for p in dashboard["panels"] if p.get("type") != "row"}


def test_with_victoria_metrics_the_long_panels_read_the_long_term_store(tmp_path: Path) -> None:
    files = pipeline.build(_write(tmp_path, f"retention: {{time: 15d}}, {VM}")).files
    slo = _panels(json.loads(files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_SLO)]))
    vm, prom = names.DATASOURCE_VICTORIA_METRICS_UID, names.DATASOURCE_PROMETHEUS_UID
    for title in ("Availability over 30d", "Error budget left", "Error budget consumed"):
        assert slo[title]["datasource"]["uid"] == vm, title
        assert {t["datasource"]["uid"] for t in slo[title]["targets"]} == {vm}, title
    assert slo["Burn rate by window"]["datasource"]["uid"] == prom  # recorded windows of at most 3 days
    overview = _panels(json.loads(files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_OVERVIEW)]))
    assert overview["Error budget left"]["datasource"]["uid"] == vm
    # VictoriaMetrics keeps the whole window, Prometheus its own retention.
    compose = files[names.COMPOSE_FILE].decode()
    assert "-retentionPeriod=30d" in compose and "--storage.tsdb.retention.time=15d" in compose
    assert str(pipeline.load_model(tmp_path / "services.yaml").stack.long_term_retention) == "30d"
