"""prometheus/blackbox.yml: the blackbox exporter's probe modules."""
from __future__ import annotations

from typing import Any

from generator import names
from generator.model import Model
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {names.BLACKBOX_CONFIG: config()}


def config() -> dict[str, Any]:
    http = {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": True, "follow_redirects": True, "valid_status_codes": []}
    return {
        "modules": {
            "http_2xx": {"prober": "http", "timeout": "5s", "http": {**http, "method": "GET"}},
            "http_post_2xx": {"prober": "http", "timeout": "5s", "http": {**http, "method": "POST"}},
            "tcp_connect": {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": True}},
            "icmp": {"prober": "icmp", "timeout": "5s", "icmp": {"preferred_ip_protocol": "ip4"}},
            "dns": {"prober": "dns", "timeout": "5s", "dns": {"preferred_ip_protocol": "ip4", "query_name": "localhost", "query_type": "A"}},
        }
    }
