"""Where the stack's own components live, as seen from inside the stack.

The same model renders for two runners: docker compose (components addressed by
service name, secrets under /run/secrets) and the native runner (127.0.0.1 on
ports clear of the Debian system services, secrets at their real paths).
Addresses of users' own services are never rewritten.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from generator import components, links, names


@dataclass(frozen=True)
class Topology:
    mode: str  # "compose" or "native"
    secrets_root: str  # where secret file references are resolved from (native: the inventory's folder)
    rewrites: Mapping[str, str] = field(default_factory=dict)  # component host:port -> address
    # Local stand-ins for Slack/PagerDuty/webhooks (an HTTP sink) and email (an SMTP sink), for
    # tests and `monstack test-alerts` on a machine that cannot reach the real services.
    sink_http: str | None = None  # host:port
    sink_smtp: str | None = None  # host:port
    # Shifts every native port, so a test stack never collides with a user's running stack.
    port_offset: int = 0
    # Secret reference -> file to read instead (native runner with sinks: stand-ins for missing secrets).
    secret_overrides: Mapping[str, str] = field(default_factory=dict)
    # Where Grafana reads the generated grafana/dashboards folder from.
    dashboards_dir: str = names.GRAFANA_DASHBOARDS_MOUNT
    # Where people open the pages in this mode (None: compose, at the inventory's stack URLs); see generator/links.py.
    ui: links.Ui | None = None
    # docker compose on one Docker host: the compose-only components run (cAdvisor) and host-networked ones are
    # reached through the host gateway. False for the Kubernetes objects, which start from the same service names.
    containers: bool = False

    def component(self, name: str) -> str:
        c = components.get(name)
        return self.address(f"{name}:{c.port}") if self.mode == "compose" else f"127.0.0.1:{c.native_port + self.port_offset}"

    def address(self, hostport: str) -> str:
        return self.rewrites.get(hostport, hostport)

    def url(self, url: str) -> str:
        m = re.match(r"^([a-z]+://)([^/]+)(.*)$", url)
        if not m:
            return url
        return m.group(1) + self.address(m.group(2)) + m.group(3)

    def secret(self, ref: str) -> str:
        """The path a component reads a secret file reference from."""
        if self.mode == "compose":
            return f"/run/secrets/{names.secret_name(ref)}"
        if ref in self.secret_overrides:
            return self.secret_overrides[ref]
        return ref if os.path.isabs(ref) else os.path.normpath(os.path.join(self.secrets_root, ref))


# docker compose: components at their service names, the host-networked ones (node-exporter) at the Docker host.
COMPOSE = Topology(mode="compose", secrets_root="/run/secrets", containers=True,
                   rewrites={f"{c.name}:{c.port}": f"{names.DOCKER_HOST_NAME}:{c.port}" for c in components.TABLE if c.host_network})
# The same service names as the inventory writes them, what the Kubernetes objects are made from.
SERVICE_NAMES = Topology(mode="compose", secrets_root="/run/secrets")


def native(secrets_root: str, sink_http: str | None = None, sink_smtp: str | None = None, port_offset: int = 0,
           secret_overrides: Mapping[str, str] | None = None, config_dir: str | None = None,
           ui: links.Ui | None = None) -> Topology:
    """config_dir: where the native runner renders the configuration, so a native Grafana finds the dashboards."""
    rewrites = {f"{c.name}:{c.port}": f"127.0.0.1:{c.native_port + port_offset}" for c in components.TABLE if c.native}
    return Topology(mode="native", secrets_root=os.path.abspath(secrets_root), rewrites=rewrites,
                    sink_http=sink_http, sink_smtp=sink_smtp, port_offset=port_offset,
                    secret_overrides=dict(secret_overrides or {}), ui=ui,
                    dashboards_dir=(os.path.join(os.path.abspath(config_dir), names.DASHBOARDS_DIR) if config_dir
                                    else names.GRAFANA_DASHBOARDS_MOUNT))
