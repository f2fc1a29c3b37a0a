"""Grafana provisioning: datasources with fixed uids, a dashboard provider (folder) per team, paths that match."""
from __future__ import annotations

import pytest

from conftest import ROOT
from dashboard_support import ident, inventories, render
from generator import components, fleet, names, pipeline
from generator.render import grafana
from generator.render.dashboards import lint
from generator.topology import COMPOSE, native


@pytest.mark.parametrize("inventory", inventories(), ids=ident)
def test_every_datasource_a_dashboard_uses_is_provisioned(inventory):
    r = render(inventory)
    datasources = r.outputs[names.GRAFANA_DATASOURCES]["datasources"]
    uids = [ds["uid"] for ds in datasources]
    assert len(uids) == len(set(uids))
    used = {t["datasource"]["uid"] for d in r.dashboards.values() for p in lint.panels(d) for t in p.get("targets", [])}
    used |= {v["datasource"]["uid"] for d in r.dashboards.values() for v in d["templating"]["list"] if "datasource" in v}
    # Every query goes through a data source variable of its dashboard: ${datasource}, which defaults to the provisioned
    # Prometheus and lists every Prometheus-type data source (the long-term store among them); and, when an SLO window
    # outlasts Prometheus' retention, ${longterm} for the panels over that whole window, defaulting to the long-term store.
    long_term = r.model.stack.long_term_retention is not None
    assert used == ({"${datasource}", "${longterm}"} if long_term else {"${datasource}"})
    for d in r.dashboards.values():
        picker = d["templating"]["list"][0]
        assert picker["type"] == "datasource" and picker["name"] == "datasource" and picker["query"] == "prometheus"
        assert picker["current"]["value"] == names.DATASOURCE_PROMETHEUS_UID
        pickers = {v["name"]: v for v in d["templating"]["list"] if v["type"] == "datasource"}
        reads_long_term = "${longterm}" in {t["datasource"]["uid"] for p in lint.panels(d) for t in p.get("targets", [])}
        assert ("longterm" in pickers) == reads_long_term, d["uid"]
        if reads_long_term:
            assert pickers["longterm"]["query"] == "prometheus"
            assert pickers["longterm"]["current"]["value"] == names.DATASOURCE_VICTORIA_METRICS_UID
            assert names.DATASOURCE_VICTORIA_METRICS_UID in uids
    assert all(ds["type"] == "prometheus" for ds in datasources if ds["uid"] != names.DATASOURCE_ALERTMANAGER_UID)
    assert [ds["uid"] for ds in datasources if ds.get("isDefault")] == [names.DATASOURCE_PROMETHEUS_UID]


@pytest.mark.parametrize("inventory", inventories(), ids=ident)
def test_a_provider_per_folder_and_every_dashboard_in_one(inventory):
    r = render(inventory)
    providers = r.outputs[names.GRAFANA_DASHBOARD_PROVIDERS]["providers"]
    by_folder = {p["folder"]: p for p in providers}
    assert len(by_folder) == len(providers)
    big = fleet.enabled(r.model)  # a fleet's service dashboards are shared, in the stack's folder
    assert set(by_folder) == {names.GRAFANA_STACK_FOLDER} | (set() if big else set(r.model.teams))
    assert len({p["folderUid"] for p in providers}) == len(providers) and len({p["name"] for p in providers}) == len(providers)
    for path in r.dashboards:
        folder = path.split("/")[-2]
        assert path == f"{names.DASHBOARDS_DIR}/{folder}/{path.rsplit('/', 1)[-1]}"
        assert by_folder[folder]["options"]["path"] == f"{names.GRAFANA_DASHBOARDS_MOUNT}/{folder}"
    for s in r.model.services:
        # a team's services land in the team's folder; a fleet's in their shape's dashboard
        assert (fleet.shape_of(r.model, s.name).file if big else names.dashboard_file(s.team, s.name)) in r.dashboards
    assert all(p["allowUiUpdates"] is False and p["disableDeletion"] is True for p in providers)


def test_compose_mounts_the_dashboards_where_the_providers_look():
    r = render(ROOT / "services.yaml")
    compose = r.outputs[names.COMPOSE_FILE]
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./{names.DASHBOARDS_DIR}:{names.GRAFANA_DASHBOARDS_MOUNT}:ro" in volumes


def test_datasources_point_at_the_topologys_components():
    model = pipeline.load_model(ROOT / "services.yaml")
    compose = {ds["uid"]: ds for ds in grafana.datasources(model, COMPOSE)["datasources"]}
    local = {ds["uid"]: ds for ds in grafana.datasources(model, native(str(ROOT)))["datasources"]}
    prom, am = components.get("prometheus"), components.get("alertmanager")
    assert compose[names.DATASOURCE_PROMETHEUS_UID]["url"] == f"http://prometheus:{prom.port}"
    assert compose[names.DATASOURCE_ALERTMANAGER_UID]["url"] == f"http://alertmanager:{am.port}"
    assert local[names.DATASOURCE_PROMETHEUS_UID]["url"] == f"http://127.0.0.1:{prom.native_port}"
    # $__rate_interval is only right when Grafana knows the scrape interval.
    assert compose[names.DATASOURCE_PROMETHEUS_UID]["jsonData"]["timeInterval"] == str(model.stack.scrape_interval)
    assert compose[names.DATASOURCE_PROMETHEUS_UID]["jsonData"]["alertmanagerUid"] == names.DATASOURCE_ALERTMANAGER_UID


def test_native_providers_read_the_dashboards_the_native_runner_rendered(tmp_path):
    """A Grafana the native runner starts reads the dashboards from its own rendered config, not the compose mount."""
    config = tmp_path / "config"
    topo = native(str(ROOT), config_dir=str(config))
    pipeline.render(ROOT / "services.yaml", config, topo, run_checks=False)
    providers = grafana.providers(pipeline.load_model(ROOT / "services.yaml"), topo)["providers"]
    for p in providers:
        folder = config / names.DASHBOARDS_DIR / p["folder"]
        assert p["options"]["path"] == str(folder)
        assert sorted(folder.glob("*.json")), f"provider {p['name']} points at {folder}, which holds no dashboard"


@pytest.mark.parametrize("inventory", inventories(), ids=ident)
def test_the_long_term_store_is_a_datasource_exactly_when_the_stack_writes_to_it(inventory):
    r = render(inventory)
    by_uid = {ds["uid"]: ds for ds in r.outputs[names.GRAFANA_DATASOURCES]["datasources"]}
    writes = any("victoria-metrics:" in rw.url for rw in r.model.stack.remote_write)
    assert (names.DATASOURCE_VICTORIA_METRICS_UID in by_uid) == writes
    if writes:
        ds = by_uid[names.DATASOURCE_VICTORIA_METRICS_UID]
        assert ds["type"] == "prometheus" and ds["url"] == f"http://victoria-metrics:{components.get('victoria-metrics').port}"
        assert not ds.get("isDefault")
