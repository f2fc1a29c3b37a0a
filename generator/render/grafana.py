"""grafana/provisioning: datasources with fixed uids and one dashboard provider (folder) per team.

Fixed datasource uids are what every generated panel refers to, so a provisioned Grafana
never shows "datasource not found"; tests check that every uid a panel uses is provisioned here.
"""
from __future__ import annotations

from typing import Any

from generator import fleet, names
from generator.components import needed_components
from generator.model import Model
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {
        names.GRAFANA_DATASOURCES: datasources(model, topo),
        names.GRAFANA_DASHBOARD_PROVIDERS: providers(model, topo),
    }


def datasources(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": names.DATASOURCE_PROMETHEUS_UID,
                "orgId": 1,
                "access": "proxy",
                "url": f"http://{topo.component('prometheus')}",
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    # $__rate_interval is at least four scrape intervals only if Grafana knows the interval.
                    "timeInterval": str(model.stack.scrape_interval),
                    "httpMethod": "POST",
                    "prometheusType": "Prometheus",
                    # Rules live in prometheus/rules (generated); Grafana must not offer to edit them.
                    "manageAlerts": False,
                    "alertmanagerUid": names.DATASOURCE_ALERTMANAGER_UID,
                },
            },
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": names.DATASOURCE_ALERTMANAGER_UID,
                "orgId": 1,
                "access": "proxy",
                "url": f"http://{topo.component('alertmanager')}",
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
        ],
    }
    if "victoria-metrics" in needed_components(model):
        # The long-term store answers PromQL: Explore (or a copied panel) reads ranges past Prometheus' retention there.
        out["datasources"].append({
            "name": "VictoriaMetrics (long-term)",
            "type": "prometheus",
            "uid": names.DATASOURCE_VICTORIA_METRICS_UID,
            "orgId": 1,
            "access": "proxy",
            "url": f"http://{topo.component('victoria-metrics')}",
            "editable": False,
            "jsonData": {"timeInterval": str(model.stack.scrape_interval), "httpMethod": "POST", "manageAlerts": False},
        })
    if auth := model.stack.web_auth:
        # stack.web_auth: Grafana reads the password from its file when it provisions (never written here).
        for ds in out["datasources"]:
            ds.update({"basicAuth": True, "basicAuthUser": auth.username,
                       "secureJsonData": {"basicAuthPassword": f"$__file{{{topo.secret(auth.password_file)}}}"}})
    return out


def folders(model: Model) -> list[str]:
    """Dashboard folders: one for the stack-wide dashboards, one per team (a fleet's shared service dashboards are stack-wide)."""
    if fleet.enabled(model):
        return [names.GRAFANA_STACK_FOLDER]
    return list(dict.fromkeys([names.GRAFANA_STACK_FOLDER] + sorted(model.teams)))


def providers(model: Model, topo: Topology) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"monstack-{folder}",
                "orgId": 1,
                "folder": folder,
                "folderUid": names.folder_uid(folder),
                "type": "file",
                # Generated dashboards are replaced on every render: edits belong in services.yaml.
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": f"{topo.dashboards_dir}/{folder}", "foldersFromFilesStructure": False},
            }
            for folder in folders(model)
        ],
    }
