"""compose.yaml: the whole stack for `docker compose`, a loop over the component table.

Only the components the inventory needs are in it (generator/components.py:
needed_components). Every secret the generated configs read is a compose secret
named names.secret_name(ref), mounted at /run/secrets/<name> (what
topology.COMPOSE points the configs at), only into the service that reads it.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any

from generator import components as C
from generator import names
from generator.model import Model, Stack
from generator.topology import Topology

# The sample exporters build from exporters/Dockerfile; the runner points this at the
# repository when compose.yaml is rendered elsewhere (an example's folder).
BUILD_CONTEXT = "${MONSTACK_BUILD_CONTEXT:-.}"
# Keys of a compose service in the order compose.yaml lists them.
KEY_ORDER = ("build", "image", "environment", "command", "network_mode", "pid", "extra_hosts", "volumes", "cap_add", "healthcheck",
             "depends_on", "ports", "secrets", "restart")
# They scrape and probe: they reach the host-networked components at the Docker host.
REACH_HOST = ("prometheus", "blackbox-exporter")
UI_URLS = {"prometheus": "prometheus_url", "alertmanager": "alertmanager_url", "grafana": "grafana_url"}


class ComposePlace(C.Place):
    """Service names on the compose network, container paths, secrets under /run/secrets."""

    mode = "compose"

    def __init__(self, stack: Stack):
        self.stack = stack

    def port(self, c: C.Component) -> int:
        return c.port

    def listen(self, c: C.Component) -> str:
        return f":{c.port}"

    def bind(self, c: C.Component) -> str:
        return f"0.0.0.0:{c.port}"

    def address(self, name: str) -> str:
        c = C.get(name)
        return f"{names.DOCKER_HOST_NAME if c.host_network else name}:{c.port}"

    def cluster_listen(self, c: C.Component) -> str:
        # Inside the compose network only: the gossip port is never published on the host.
        return f"0.0.0.0:{c.cluster_port}"

    def cluster_address(self, name: str) -> str:
        return f"{name}:{C.get(name).cluster_port}"

    def external_url(self, c: C.Component) -> str:
        if c.name in UI_URLS:
            return str(getattr(self.stack, UI_URLS[c.name]))
        if c.replica > 1 and c.publish:
            return f"http://127.0.0.1:{c.native_port}"  # where _ports publishes it
        return f"http://{self.address(c.name)}"

    def config(self, c: C.Component, rel: str) -> str:
        for m in sorted((v for v in c.volumes if isinstance(v, C.Mount)), key=lambda m: -len(m.source)):
            if rel == m.source or rel.startswith(m.source + "/"):
                return m.target + rel[len(m.source):]
        raise AssertionError(f"{c.name} mounts nothing holding {rel}")

    def data(self, c: C.Component) -> str | None:
        return c.volume

    def secret(self, ref: str) -> str:
        return f"/run/secrets/{names.secret_name(ref)}"


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return {names.COMPOSE_FILE: config(model)}


def _secret_source(ref: str) -> str:
    """Where compose reads a secret reference from: relative to compose.yaml, which sits beside the inventory."""
    return ref if posixpath.isabs(ref) else "./" + posixpath.normpath(ref)


def ui_port(url: str, default: int) -> int:
    """The published port of a UI: the port of the inventory's stack URL when that is a local one."""
    host, port = C.hostport(url)
    return port if host in ("localhost", "127.0.0.1") and port else default


def _wget(port: int, path: str) -> list[str]:
    # busybox wget is in every prom/* image and the alpine-based ones.
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}"]


def _healthcheck(c: C.Component, place: C.Place) -> dict[str, Any]:
    if place.stack.web_auth and c.compose_health_auth:
        test = list(c.compose_health_auth(c, place))  # stack.web_auth: `health` asks for credentials
    else:
        test = list(c.compose_health) if c.compose_health else _wget(c.port, c.health)
    return {"test": test, "interval": "15s", "timeout": "5s", "retries": 5, "start_period": c.start_period}


def image(stack: Stack, c: C.Component) -> str:
    if c.name in stack.images:
        return stack.images[c.name]
    assert c.image is not None, c.name
    return C.image_ref(c.image, stack.image_mirror)


def _ports(stack: Stack, c: C.Component) -> list[str]:
    if c.replica > 1 and c.publish:  # a second replica's UI/API: on 127.0.0.1 at its native port, beside the first
        return [f"127.0.0.1:{c.native_port}:{c.port}"]
    if c.publish == "ui":
        return [f"127.0.0.1:{ui_port(getattr(stack, UI_URLS[c.name]), c.port)}:{c.port}"]
    if c.publish == "port":
        return [f"127.0.0.1:{c.port}:{c.port}"]
    if c.publish == "native":  # at their native ports, so `test-alerts --fault` reaches them the same way in both modes
        return [f"127.0.0.1:{c.native_port}:{c.port}"]
    return []


def service(model: Model, c: C.Component, reach_host: bool = False) -> dict[str, Any]:
    place = ComposePlace(model.stack)
    svc: dict[str, Any] = {}
    if c.sample:
        svc["build"] = {"context": BUILD_CONTEXT, "dockerfile": "exporters/Dockerfile"}
        svc["image"] = C.SAMPLE_IMAGE
    else:
        svc["image"] = image(model.stack, c)
    if env := c.env(c, place):
        svc["environment"] = env
    if (args := c.args(c, place)) is not None:
        svc["command"] = args
    if c.host_network:
        svc["network_mode"] = "host"
    if reach_host and c.name in REACH_HOST:
        # host-gateway: the address of the Docker host on the default bridge, where host-networked components listen.
        svc["extra_hosts"] = [f"{names.DOCKER_HOST_NAME}:host-gateway"]
    volumes = [f"{c.name}-data:{c.volume}" if v == C.DATA else f"./{v.source}:{v.target}:ro"
               for v in c.volumes if isinstance(v, C.Mount) or c.volume]
    extra = dict(c.compose_extra)
    volumes += list(extra.pop("volumes", []))  # type: ignore[call-overload]
    if volumes:
        svc["volumes"] = volumes
    svc.update(extra)
    svc["healthcheck"] = _healthcheck(c, place)
    if c.depends:
        svc["depends_on"] = {d: {"condition": "service_healthy"} for d in c.depends}
    if ports := _ports(model.stack, c):
        svc["ports"] = ports
    if secrets := c.secrets(model):
        svc["secrets"] = [names.secret_name(ref) for ref in secrets]
    svc["restart"] = "unless-stopped"
    return {k: svc[k] for k in KEY_ORDER if k in svc}


def config(model: Model) -> dict[str, Any]:
    running = [C.get(name) for name in C.needed_components(model, compose=True)]
    reach_host = any(c.host_network for c in running)
    services = {c.name: service(model, c, reach_host) for c in running}
    secrets: dict[str, Any] = {}
    for ref in sorted({ref for c in running for ref in c.secrets(model)}):
        key = names.secret_name(ref)
        assert key not in secrets or secrets[key]["file"] == _secret_source(ref), f"two secret files map to compose secret {key}"
        secrets[key] = {"file": _secret_source(ref)}
    out: dict[str, Any] = {
        "name": project_name(model),
        "services": services,
        "volumes": {f"{c.name}-data": {} for c in running if c.volume},
    }
    if secrets:
        out["secrets"] = dict(sorted(secrets.items()))
    return out


def project_name(model: Model) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", f"monstack-{model.stack.name}")
