"""Which of the stack's own components (names.COMPONENTS) an inventory runs.

One answer for every runner and renderer: compose.yaml lists these services, the
native runner starts these processes, Grafana gets a datasource for the long-term
store only when it runs.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from generator import names
from generator.model import Model

# Run whatever the inventory says.
ALWAYS = ("prometheus", "alertmanager", "grafana", "blackbox-exporter")
# A component that needs another to have anything to watch.
DEPENDS = {"postgres-exporter": "postgres", "redis-exporter": "redis"}
# The sample exporters (exporters/), components like the others.
SAMPLE_EXPORTERS = ("demo-web", "demo-worker", "demo-business")


def hostport(text: str) -> tuple[str, int | None]:
    """(host, port) of a host:port or a URL; port None when the URL has none."""
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or ""), port


def _addresses(model: Model) -> list[str]:
    found: list[str] = []
    for s in model.services:
        if s.scrape:
            found += s.scrape.targets
        found += [p.url for p in s.probes]
    found += [rw.url for rw in model.stack.remote_write]
    return found


def needed_components(model: Model) -> list[str]:
    """The stack components this inventory runs, in names.COMPONENTS order: the ones it
    addresses by their compose address (demo-web:8080, http://victoria-metrics:8428/...),
    what those depend on, and ALWAYS."""
    wanted = set(ALWAYS)
    for address in _addresses(model):
        host, port = hostport(address)
        if host in names.COMPONENTS and port in (None, names.COMPONENTS[host][0]):
            wanted.add(host)
    for component, dependency in DEPENDS.items():
        if component in wanted:
            wanted.add(dependency)
    return [c for c in names.COMPONENTS if c in wanted]
