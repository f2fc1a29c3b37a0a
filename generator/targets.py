"""What every scraped series carries: the static labels of each scrape job and what a probe job probes.

The Prometheus renderer attaches these labels; the generated rule tests build
their input series with the same functions (generator/catalogue/series.py), so
a test proves a rule matches what Prometheus will really store.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from generator import names

if TYPE_CHECKING:
    from generator.model import Model, Service


def scrape_labels(model: "Model", s: "Service") -> dict[str, str]:
    """The static labels the service's scrape (and probe) jobs attach to every series."""
    extra = dict(sorted(s.scrape.labels.items())) if s.scrape else {}
    return {**extra, names.SERVICE: s.name, names.TEAM: s.team, names.ENV: model.stack.environment, names.KIND: s.kind}


def self_labels(model: "Model") -> dict[str, str]:
    """The static labels of the stack's own scrape jobs (Prometheus, Alertmanager, the blackbox exporter)."""
    return {names.SERVICE: names.META_SERVICE, names.TEAM: names.META_TEAM, names.ENV: model.stack.environment,
            names.MONSTACK_JOB_LABEL: "self"}


def probe_target(url: str) -> str:
    """What the blackbox exporter is asked to probe: the URL for http(s), host:port (or host) otherwise."""
    scheme, rest = url.split("://", 1)
    return url if scheme in ("http", "https") else rest.split("/", 1)[0]


def probe_labels(model: "Model", s: "Service", probe_name: str) -> dict[str, str]:
    """The static labels of one health probe's series (the probe job adds job and instance)."""
    return {**scrape_labels(model, s), names.PROBE: probe_name}
