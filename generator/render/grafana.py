"""grafana/provisioning: datasources with fixed uids and one dashboard provider per team folder."""
from __future__ import annotations

from typing import Any

from generator import names
from generator.model import Model
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {
        names.GRAFANA_DATASOURCES: datasources(model, topo),
        names.GRAFANA_DASHBOARD_PROVIDERS: providers(model),
    }


def datasources(model: Model, topo: Topology) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": names.DATASOURCE_PROMETHEUS_UID,
                "access": "proxy",
                "url": f"http://{topo.component('prometheus')}",
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": str(model.stack.scrape_interval), "httpMethod": "POST"},
            },
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": names.DATASOURCE_ALERTMANAGER_UID,
                "access": "proxy",
                "url": f"http://{topo.component('alertmanager')}",
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
        ],
    }


def folders(model: Model) -> list[str]:
    """Dashboard folders: one for the stack-wide dashboards, one per team."""
    return ["monstack"] + sorted(model.teams)


def providers(model: Model) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"monstack-{folder}",
                "folder": folder,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": f"/var/lib/grafana/dashboards/{folder}"},
            }
            for folder in folders(model)
        ],
    }
