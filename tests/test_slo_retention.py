"""SLO data: an error budget over 30 days needs 30 days of samples.

Prometheus keeps stack.retention.time (15 days by default). An SLO window longer than that is
an inventory error, unless the stack remote-writes to its long-term store (VictoriaMetrics):
then VictoriaMetrics keeps the longest SLO window, and the panels computed over the whole
window (budget left, budget consumed, the objective over the window) read it instead of
Prometheus, through the dashboard's long-term data source variable (`${longterm}`, default the
provisioned VictoriaMetrics). Burn rates over recorded windows (at most 3 days) stay on the
dashboard's data source variable (`${datasource}`, default Prometheus).
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

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
    assert uids == {"${datasource}"}
    assert [v["name"] for v in slo["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]


def _panels(dashboard: dict) -> dict[str, dict]:
    return {p["title"]: p for p in dashboard["panels"] if p.get("type") != "row"}


def test_with_victoria_metrics_the_long_panels_read_the_long_term_store(tmp_path: Path) -> None:
    files = pipeline.build(_write(tmp_path, f"retention: {{time: 15d}}, {VM}")).files
    slo = _panels(json.loads(files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_SLO)]))
    vm, prom = "${longterm}", "${datasource}"
    for title in ("Availability over 30d", "Error budget left", "Error budget consumed"):
        assert slo[title]["datasource"]["uid"] == vm, title
        assert {t["datasource"]["uid"] for t in slo[title]["targets"]} == {vm}, title
    assert slo["Burn rate by window"]["datasource"]["uid"] == prom  # recorded windows of at most 3 days
    overview_doc = json.loads(files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_OVERVIEW)])
    overview = _panels(overview_doc)
    assert overview["Error budget left"]["datasource"]["uid"] == vm
    # The long-term variable defaults to the provisioned VictoriaMetrics; the other one still to Prometheus.
    for doc in (json.loads(files[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_SLO)]), overview_doc):
        pickers = {v["name"]: v["current"]["value"] for v in doc["templating"]["list"] if v["type"] == "datasource"}
        assert pickers == {"datasource": names.DATASOURCE_PROMETHEUS_UID, "longterm": names.DATASOURCE_VICTORIA_METRICS_UID}
    provisioned = {d["uid"] for d in yaml.safe_load(files[names.GRAFANA_DATASOURCES])["datasources"]}
    assert names.DATASOURCE_VICTORIA_METRICS_UID in provisioned
    # VictoriaMetrics keeps the whole window, Prometheus its own retention.
    compose = files[names.COMPOSE_FILE].decode()
    assert "-retentionPeriod=30d" in compose and "--storage.tsdb.retention.time=15d" in compose
    assert str(pipeline.load_model(tmp_path / "services.yaml").stack.long_term_retention) == "30d"
