"""What a running stack says about itself: Prometheus targets and alerts, readiness.

Used by both runners and by `monstack test-alerts`; only HTTP to the stack's own URLs.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from generator import webauth

TIMEOUT = 3.0


def ready(url: str) -> bool:
    """GET url answers 2xx; tcp://host:port only needs to accept a connection."""
    if url.startswith("tcp://"):
        parts = urlsplit(url)
        if parts.port is None:  # no port: nothing could accept the connection
            return False
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT):
                return True
        except OSError:
            return False
    try:
        return requests.get(url, timeout=TIMEOUT, auth=webauth.auth(url)).ok
    except requests.RequestException:
        return False


@dataclass(frozen=True)
class Target:
    job: str
    instance: str
    service: str | None
    health: str  # "up", "down", "unknown" (not scraped yet)
    last_error: str
    scrape_url: str

    @property
    def address(self) -> str:
        """host:port Prometheus scrapes (for a probe job: the blackbox exporter)."""
        return urlsplit(self.scrape_url).netloc


def targets(prometheus_url: str) -> list[Target]:
    r = requests.get(f"{prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=TIMEOUT,
                     auth=webauth.auth(prometheus_url))
    r.raise_for_status()
    out = []
    for t in r.json()["data"]["activeTargets"]:
        labels = t.get("labels", {})
        out.append(Target(labels.get("job", t.get("scrapePool", "")), labels.get("instance", ""), labels.get("service"),
                          t.get("health", "unknown"), t.get("lastError", ""), t.get("scrapeUrl", "")))
    return sorted(out, key=lambda t: (t.job, t.instance))


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # "pending" or "firing"
    severity: str
    service: str
    labels: dict
    active_at: str


def alerts(prometheus_url: str) -> list[Alert]:
    r = requests.get(f"{prometheus_url}/api/v1/alerts", timeout=TIMEOUT, auth=webauth.auth(prometheus_url))
    r.raise_for_status()
    out = []
    for a in r.json()["data"]["alerts"]:
        labels = a.get("labels", {})
        out.append(Alert(labels.get("alertname", ""), a.get("state", ""), labels.get("severity", ""),
                         labels.get("service", ""), labels, a.get("activeAt", "")))
    return sorted(out, key=lambda a: (a.severity, a.name, a.service))

