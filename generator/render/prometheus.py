"""prometheus/prometheus.yml: global settings, alerting, rule files, scrape jobs.

One job per service (its own /metrics or its exporter's), one probe job per
service with health URLs (each URL probed through the blackbox exporter with
its module), and the stack's own components. Every series gets the labels
service, team, env and kind (generator/targets.py, shared with the generated
rule tests so they test what is really scraped).
"""
from __future__ import annotations

import re
from typing import Any

import promql_parser

from generator import alerting, components, lint, names, targets
from generator.catalogue.core import probe_interval, probe_timeout
from generator.components import needed_components, own_scrape_jobs
from generator.model import Model, Service
from generator.topology import Topology

SELF_COMPONENTS = (
    (names.SELF_PROMETHEUS_JOB, "prometheus"),
    (names.SELF_ALERTMANAGER_JOB, "alertmanager"),
    (names.SELF_BLACKBOX_JOB, "blackbox-exporter"),
)


def render(model: Model, topo: Topology) -> dict[str, Any]:
    """One file per Prometheus replica: an HA pair shares everything but its replica label."""
    replicas = _replicas(model, "prometheus")
    out: dict[str, Any] = {names.prometheus_config(i): config(model, topo, replica=name if len(replicas) > 1 else None)
                           for i, name in enumerate(replicas, start=1)}
    if auth := stack_basic_auth(model, topo):
        # stack.web_auth: how a client in Prometheus' container (the compose healthcheck's promtool) authenticates.
        out[f"prometheus/{names.WEB_CLIENT_CONFIG}"] = {"basic_auth": auth}
    return out


def stack_basic_auth(model: Model, topo: Topology) -> dict[str, str] | None:
    """basic_auth of a client of Prometheus, Alertmanager or VictoriaMetrics when stack.web_auth is on."""
    auth = model.stack.web_auth
    return {"username": auth.username, "password_file": topo.secret(auth.password_file)} if auth else None


def _replicas(model: Model, component: str) -> list[str]:
    return components.replica_names(components.get(component), model.stack)


def config(model: Model, topo: Topology, replica: str | None = None) -> dict[str, Any]:
    """replica: this Prometheus' name in an HA pair (its external label, dropped from the alerts it sends)."""
    stack = model.stack
    # Both Prometheus of a pair send the same alerts; without their replica label they are equal, and
    # Alertmanager deduplicates them into one notification.
    relabel: list[dict[str, Any]] = [{"action": "labeldrop", "regex": names.PROMETHEUS_REPLICA_LABEL}] if replica else []
    # Rules written elsewhere say critical/warning/info: map them to levels so Alertmanager routes them.
    relabel += [{"source_labels": [names.SEVERITY], "regex": re.escape(value), "target_label": names.SEVERITY,
                 "replacement": level} for value, level in sorted(model.severity_map.items())]
    cfg: dict[str, Any] = {
        "global": {
            "scrape_interval": str(stack.scrape_interval),
            "scrape_timeout": str(stack.scrape_timeout),
            "evaluation_interval": str(stack.evaluation_interval),
        },
        "alerting": {
            "alert_relabel_configs": relabel,
            # Every Alertmanager replica: each gets every alert, the cluster sends each notification once.
            "alertmanagers": [
                {"api_version": "v2", **_auth(model, topo),
                 "static_configs": [{"targets": [topo.component(am) for am in _replicas(model, "alertmanager")]}]}
            ],
        },
        "rule_files": ["rules/*.yml"] + ([f"rules/{names.HANDWRITTEN}/*.yml"] if model.handwritten else []),
        "scrape_configs": (self_jobs(model, topo) + [job for s in model.services for job in service_jobs(model, s, topo)]
                           + [dict(job) for job in model.extra_scrape_configs]),
    }
    external = dict(stack.external_labels)
    if replica:
        external[names.PROMETHEUS_REPLICA_LABEL] = replica
    if external:
        cfg["global"]["external_labels"] = dict(sorted(external.items()))
    if stack.remote_write:
        cfg["remote_write"] = [remote_write(rw, topo, model) for rw in stack.remote_write]
    return cfg


def _auth(model: Model, topo: Topology) -> dict[str, Any]:
    auth = stack_basic_auth(model, topo)
    return {"basic_auth": auth} if auth else {}


# The stack's own components behind stack.web_auth: their scrapes authenticate.
WEB_AUTH_COMPONENTS = ("prometheus", "alertmanager", "victoria-metrics")


def self_jobs(model: Model, topo: Topology) -> list[dict[str, Any]]:
    """Prometheus, Alertmanager and the blackbox exporter scrape like any target (meta-monitoring reads them);
    VictoriaMetrics too when the stack runs it as its long-term store (the stack dashboard shows its ingestion), and
    cAdvisor under docker compose (container CPU and memory on the infrastructure dashboard); every replica of each."""
    jobs = list(SELF_COMPONENTS)
    if "victoria-metrics" in needed_components(model):
        jobs.append((names.SELF_VICTORIA_METRICS_JOB, "victoria-metrics"))
    if "cadvisor" in needed_components(model, compose=topo.containers) and names.SELF_CADVISOR_JOB not in own_scrape_jobs(model):
        jobs.append((names.SELF_CADVISOR_JOB, "cadvisor"))  # a service scraping cadvisor:8080 already has the job
    return [{"job_name": job, **(_auth(model, topo) if component in WEB_AUTH_COMPONENTS else {}),
             "static_configs": [{"targets": [topo.component(r) for r in _replicas(model, component)],
                                 "labels": targets.self_labels(model)}]}
            for job, component in jobs]


def service_jobs(model: Model, s: Service, topo: Topology) -> list[dict[str, Any]]:
    jobs = []
    if s.scrape:
        sc = s.scrape
        job: dict[str, Any] = {
            "job_name": names.service_job(s.name),
            "scrape_interval": str(sc.interval),
            "scrape_timeout": str(sc.timeout),
            "metrics_path": sc.path,
            "scheme": sc.scheme,
        }
        if sc.honor_labels:
            job["honor_labels"] = True
        if sc.basic_auth:
            job["basic_auth"] = {"username": sc.basic_auth.username, "password_file": topo.secret(sc.basic_auth.password_file)}
        if sc.tls:
            tls: dict[str, Any] = {k: v for k, v in (
                ("ca_file", sc.tls.ca_file and topo.secret(sc.tls.ca_file)),
                ("cert_file", sc.tls.cert_file and topo.secret(sc.tls.cert_file)),
                ("key_file", sc.tls.key_file and topo.secret(sc.tls.key_file)),
                ("server_name", sc.tls.server_name),
            ) if v}
            if sc.tls.insecure_skip_verify:
                tls["insecure_skip_verify"] = True
            job["tls_config"] = tls
        job["static_configs"] = [{"targets": [topo.address(t) for t in sc.targets], "labels": targets.scrape_labels(model, s)}]
        if s.shares_targets_with:
            # The endpoint is scraped for another service too: this job keeps only what this service's rules read.
            job["metric_relabel_configs"] = [{"source_labels": ["__name__"], "regex": "|".join(metrics_read(model, s)), "action": "keep"}]
        jobs.append(job)
    if s.probes:
        jobs.append(probe_job(model, s, topo))
    return jobs


def metrics_read(model: Model, s: Service) -> list[str]:
    """Raw metric names the service's recording rules and alerts read (recorded names and `up` aside)."""
    exprs = [r["expr"] for g in alerting.service_groups(model, s) for r in g.records]
    exprs += [a.definition.expression(a.ctx) for a in alerting.service_alerts(model, s)]
    found = {lint.selector_name(vs) for e in exprs for vs in lint.selectors(promql_parser.parse(e))}
    return sorted(n for n in found if n and ":" not in n and n != "up" and not n.startswith("probe_"))


def probe_job(model: Model, s: Service, topo: Topology) -> dict[str, Any]:
    """Blackbox probes: the URL becomes the target parameter and the instance; the scrape goes to the exporter."""
    interval, timeout = probe_interval(model, s), probe_timeout(model, s)
    return {
        "job_name": names.probe_job(s.name),
        "metrics_path": "/probe",
        "scrape_interval": str(interval),
        "scrape_timeout": str(timeout),
        "static_configs": [
            {
                "targets": [probe_target(p.url, topo)],
                "labels": {**targets.probe_labels(model, s, p.name), "__param_module": p.module},
            }
            for p in s.probes
        ],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": topo.component("blackbox-exporter")},
        ],
    }


def probe_target(url: str, topo: Topology) -> str:
    """HTTP probes take the URL; tcp/icmp/dns probes take host:port or host."""
    return targets.probe_target(topo.url(url))


def remote_write(rw: Any, topo: Topology, model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rw.name, "url": topo.url(rw.url)}
    host, port = components.hostport(rw.url)
    if not rw.basic_auth and not rw.bearer_token_file and host == "victoria-metrics" and port in (None, components.get(host).port):
        out.update(_auth(model, topo))  # the stack's own VictoriaMetrics, behind stack.web_auth
    if rw.basic_auth:
        out["basic_auth"] = {"username": rw.basic_auth.username, "password_file": topo.secret(rw.basic_auth.password_file)}
    if rw.bearer_token_file:
        out["authorization"] = {"credentials_file": topo.secret(rw.bearer_token_file)}
    return out
