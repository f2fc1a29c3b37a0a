"""The Kubernetes target: what the other renderers produce, packaged as Prometheus Operator objects.

It reads the outputs of generator.render.render_all (compose topology) and
wraps them, so the rules Kubernetes evaluates are the compose rules by
construction:

- one PrometheusRule per service (and one for the stack itself, one per
  hand-written rule file of rules.d/) whose spec.groups is the data of the
  service's rule files, unchanged;
- a ScrapeConfig per scrape job (static targets, the same labels and job
  name: the rules select on `job`), a Probe per health URL, PodMonitors for
  the Operator's own Prometheus and Alertmanager pods (meta-monitoring);
- the Alertmanager configuration as a config Secret (`alertmanager.yaml`
  plus the templates, what the Operator reads with spec.configSecret), whose
  secret files point into a Secret users create from their own files and
  Alertmanager mounts (spec.secrets): nothing secret is ever in the tree;
- dashboards and datasources as ConfigMaps for the Grafana sidecar;
- kustomization.yaml listing all of it, and a README naming the Secrets to create.

Why a config Secret and not an AlertmanagerConfig object: a namespaced
AlertmanagerConfig only sees alerts carrying its namespace label, and the
catalogue's alerts aggregate `by (service, team, env)`; the routing tree also
stays the one amtool tests.
"""
from __future__ import annotations

import posixpath
from typing import Any, Mapping

from generator import names, writer
from generator.inventory import handwritten
from generator.model import Model

Outputs = Mapping[str, Any]

MONITORING = "monitoring.coreos.com/v1"
MONITORING_ALPHA = "monitoring.coreos.com/v1alpha1"
COMPOSE_SECRETS = "/run/secrets/"  # where the compose topology points secret files; rewritten to the pod's mounts
SELF_POD_MONITORS = {names.SELF_PROMETHEUS_JOB: "prometheus", names.SELF_ALERTMANAGER_JOB: "alertmanager"}
WEB_PORT = "web"  # the container port the Operator names on Prometheus and Alertmanager pods
PROMETHEUS_PORT, ALERTMANAGER_PORT = 9090, 9093


def render(model: Model, outputs: Outputs) -> dict[str, Any]:
    """Kubernetes tree (paths relative to names.KUBERNETES_DIR) from render_all's outputs."""
    out: dict[str, Any] = {}
    out.update(prometheus_rules(model, outputs))
    out.update(scrape_objects(model, outputs[names.PROMETHEUS_CONFIG]))
    out.update(alertmanager_objects(model, outputs))
    out.update(grafana_objects(model, outputs))
    out[names.KUBE_README] = readme(model, outputs)
    out[names.KUSTOMIZATION] = kustomization(model, sorted(p for p in out if p.endswith(".yaml")))
    return dict(sorted(out.items()))


# --- common -----------------------------------------------------------------------


def metadata(model: Model, *name: str, **extra: Any) -> dict[str, Any]:
    k = model.kubernetes
    labels = {"app.kubernetes.io/managed-by": names.KUBE_MANAGED_BY, "app.kubernetes.io/part-of": model.stack.name, **k.labels}
    labels.update(extra.pop("labels", {}))
    return {"name": names.kube_object(model.stack.name, *name), "namespace": k.namespace, "labels": labels, **extra}


def obj(api: str, kind: str, meta: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": meta, **body}


def kustomization(model: Model, resources: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": model.kubernetes.namespace,
        "resources": [r for r in resources if r != names.KUSTOMIZATION],
    }


# --- rules --------------------------------------------------------------------------


def rule_stems(model: Model, outputs: Outputs) -> dict[str, list[str]]:
    """PrometheusRule (its path under KUBE_RULES_DIR, without .yaml) -> the rule files (stems) it holds, in evaluation order.

    A service's files share one object; each file of rules.d/ gets its own under handwritten/, as compose keeps them apart.
    """
    present = {p[len(names.RULES_DIR) + 1: -len(".yml")] for p in outputs if p.startswith(names.RULES_DIR + "/")}
    out = {}
    for s in model.services:
        stems = [f for f in (s.name, names.slo_group(s.name)) if f in present]
        if stems:
            out[s.name] = stems
    out[names.META_RULES_GROUP] = [names.META_RULES_GROUP]
    for f in model.handwritten:
        stem = f"{names.HANDWRITTEN}/{f.name}"
        out[stem] = [stem]
    claimed = {f for fs in out.values() for f in fs}
    assert claimed == present, f"rule files without a PrometheusRule: {sorted(present - claimed)}"
    return out


def prometheus_rules(model: Model, outputs: Outputs) -> dict[str, Any]:
    out = {}
    for name, stems in rule_stems(model, outputs).items():
        groups = [g for stem in stems for g in outputs[names.rules_file(stem)]["groups"]]
        if name.startswith(names.HANDWRITTEN + "/"):
            # rules.d-<file>: the dot keeps it apart from every service's object (service names have none).
            meta = metadata(model, handwritten.FOLDER, name.split("/", 1)[1], labels={"monstack/rules": names.HANDWRITTEN})
        else:
            meta = metadata(model, name, labels={"monstack/service": name})
        out[f"{names.KUBE_RULES_DIR}/{name}.yaml"] = obj(MONITORING, "PrometheusRule", meta, spec={"groups": groups})
    return out


# --- scraping ------------------------------------------------------------------------


def _secret_key(path: str) -> str:
    assert path.startswith(COMPOSE_SECRETS), path
    return path[len(COMPOSE_SECRETS):]


def _selector(secret: str, key: str) -> dict[str, str]:
    return {"name": secret, "key": key}


def scrape_objects(model: Model, prom: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extra = [dict(job) for job in model.extra_scrape_configs]
    if extra:
        # The Operator's way in for scrape configs it has no object for: Prometheus' spec.additionalScrapeConfigs names this key.
        text = writer.serialize("scrape-configs.yaml", extra, model.source).decode()
        out[f"{names.KUBE_SCRAPE_DIR}/additional.yaml"] = obj("v1", "Secret", metadata(model, "additional-scrape-configs"), type="Opaque",
                                                           stringData={names.KUBE_ADDITIONAL_SCRAPE_KEY: text})
    for job in prom["scrape_configs"]:
        name = job["job_name"]
        if any(name == e["job_name"] for e in extra):
            continue
        if name in SELF_POD_MONITORS:
            out[f"{names.KUBE_POD_MONITORS_DIR}/{name}.yaml"] = pod_monitor(model, job, SELF_POD_MONITORS[name])
        elif name == names.SELF_BLACKBOX_JOB:
            job = {**job, "static_configs": [{**sc, "targets": [model.kubernetes.blackbox_exporter]} for sc in job["static_configs"]]}
            out[f"{names.KUBE_SCRAPE_DIR}/{name}.yaml"] = scrape_config(model, job)
        elif job.get("metrics_path") == "/probe" and any("__param_module" in sc.get("labels", {}) for sc in job["static_configs"]):
            out.update(probes(model, job))
        else:
            out[f"{names.KUBE_SCRAPE_DIR}/{name}.yaml"] = scrape_config(model, job)
    return out


def scrape_config(model: Model, job: Mapping[str, Any]) -> dict[str, Any]:
    """A ScrapeConfig whose jobName keeps the job label the rules select on."""
    spec: dict[str, Any] = {"jobName": job["job_name"]}
    for key, field in (("scrape_interval", "scrapeInterval"), ("scrape_timeout", "scrapeTimeout"), ("metrics_path", "metricsPath"),
                       ("scheme", "scheme"), ("honor_labels", "honorLabels")):
        if key in job:
            spec[field] = job[key]
    secret = names.kube_scrape_secret(model.stack.name)
    if "basic_auth" in job:
        ba = job["basic_auth"]
        # The CRD takes the username from a Secret too; it is not secret (services.yaml has it), so monstack generates that one.
        spec["basicAuth"] = {"username": _selector(names.kube_object(model.stack.name, "scrape-usernames"), job["job_name"]),
                             "password": _selector(secret, _secret_key(ba["password_file"]))}
    if "tls_config" in job:
        tls = job["tls_config"]
        cfg: dict[str, Any] = {}
        if "ca_file" in tls:
            cfg["ca"] = {"secret": _selector(secret, _secret_key(tls["ca_file"]))}
        if "cert_file" in tls:
            cfg["cert"] = {"secret": _selector(secret, _secret_key(tls["cert_file"]))}
            cfg["keySecret"] = _selector(secret, _secret_key(tls["key_file"]))
        if "server_name" in tls:
            cfg["serverName"] = tls["server_name"]
        if tls.get("insecure_skip_verify"):
            cfg["insecureSkipVerify"] = True
        spec["tlsConfig"] = cfg
    spec["staticConfigs"] = [{"targets": list(sc["targets"]), "labels": dict(sc.get("labels", {}))} for sc in job["static_configs"]]
    return obj(MONITORING_ALPHA, "ScrapeConfig", metadata(model, job["job_name"]), spec=spec)


def basic_auth_usernames(model: Model, prom: Mapping[str, Any]) -> dict[str, str]:
    return {job["job_name"]: job["basic_auth"]["username"] for job in prom["scrape_configs"] if "basic_auth" in job}


def probes(model: Model, job: Mapping[str, Any]) -> dict[str, Any]:
    """One Probe per health URL: a Probe has one module and one label set, and each URL has its own probe label."""
    out = {}
    service = job["job_name"][len(names.probe_job("")):]
    for sc in job["static_configs"]:
        labels = {k: v for k, v in sc["labels"].items() if k != "__param_module"}
        probe = labels[names.PROBE]
        spec = {
            "jobName": job["job_name"],
            "interval": job["scrape_interval"],
            "scrapeTimeout": job["scrape_timeout"],
            "module": sc["labels"]["__param_module"],
            "prober": {"url": model.kubernetes.blackbox_exporter, "path": job["metrics_path"]},
            "targets": {"staticConfig": {"static": list(sc["targets"]), "labels": labels}},
        }
        name = f"{service}-{probe}"
        out[f"{names.KUBE_PROBES_DIR}/{names.kube_object('', name)}.yaml"] = obj(MONITORING, "Probe", metadata(model, name), spec=spec)
    return out


def pod_monitor(model: Model, job: Mapping[str, Any], app: str) -> dict[str, Any]:
    """The Operator's own Prometheus or Alertmanager pods, with the job name and labels the meta alerts select on."""
    instance = model.kubernetes.prometheus if app == "prometheus" else model.kubernetes.alertmanager
    labels = {k: v for sc in job["static_configs"] for k, v in sc.get("labels", {}).items()}
    relabel = [{"targetLabel": "job", "replacement": job["job_name"]}]
    relabel += [{"targetLabel": k, "replacement": v} for k, v in labels.items()]
    spec = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": instance}},
        "namespaceSelector": {"matchNames": [model.kubernetes.namespace]},
        "podMetricsEndpoints": [{"port": WEB_PORT, "relabelings": relabel}],
    }
    return obj(MONITORING, "PodMonitor", metadata(model, job["job_name"]), spec=spec)


# --- alertmanager ------------------------------------------------------------------------


def _mounted(value: Any, secret: str) -> Any:
    """The config with every compose secret path pointing into the mounted receivers Secret instead."""
    if isinstance(value, dict):
        return {k: (f"{names.KUBE_ALERTMANAGER_SECRETS_MOUNT}/{secret}/{_secret_key(v)}"
                    if k.endswith("_file") and isinstance(v, str) and v.startswith(COMPOSE_SECRETS) else _mounted(v, secret))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mounted(v, secret) for v in value]
    return value


def alertmanager_config(model: Model, outputs: Outputs) -> dict[str, Any]:
    cfg = _mounted(outputs[names.ALERTMANAGER_CONFIG], names.kube_receivers_secret(model.stack.name))
    cfg["templates"] = [f"{names.KUBE_ALERTMANAGER_CONFIG_MOUNT}/*.tmpl"]
    return cfg


def templates(outputs: Outputs) -> dict[str, str]:
    prefix = names.ALERTMANAGER_TEMPLATES_DIR + "/"
    return {p[len(prefix):]: v for p, v in outputs.items() if p.startswith(prefix)}


def alertmanager_objects(model: Model, outputs: Outputs) -> dict[str, Any]:
    data = {names.KUBE_ALERTMANAGER_CONFIG_KEY: writer.serialize(names.ALERTMANAGER_CONFIG, alertmanager_config(model, outputs), model.source).decode()}
    for key, text in templates(outputs).items():
        data[key] = writer.serialize(key, text, model.source).decode()
    # A Secret because the Operator reads spec.configSecret from one; it holds file paths only, no secret values.
    out = {f"{names.KUBE_ALERTMANAGER_DIR}/config.yaml": obj("v1", "Secret", metadata(model, "alertmanager-config"), type="Opaque", stringData=data)}
    usernames = basic_auth_usernames(model, outputs[names.PROMETHEUS_CONFIG])
    if usernames:
        out[f"{names.KUBE_SCRAPE_DIR}/usernames.yaml"] = obj("v1", "Secret", metadata(model, "scrape-usernames"), type="Opaque", stringData=usernames)
    relabel = alert_relabel_configs(model, outputs)
    if relabel:
        # The Operator's way in for alert relabelling: Prometheus' spec.additionalAlertRelabelConfigs names this key.
        text = writer.serialize(names.KUBE_ALERT_RELABEL_KEY, relabel, model.source).decode()
        out[f"{names.KUBE_ALERTMANAGER_DIR}/alert-relabel-configs.yaml"] = obj(
            "v1", "Secret", metadata(model, "alert-relabel-configs"), type="Opaque", stringData={names.KUBE_ALERT_RELABEL_KEY: text})
    return out


def alert_relabel_configs(model: Model, outputs: Outputs) -> list[Any]:
    """The severity mapping compose's Prometheus applies, when rules.d/ has rules that need it (their severity is critical,
    warning, info: the PrometheusRules keep it as written, so the cluster's Prometheus must relabel as compose's does)."""
    if not model.handwritten:
        return []
    return list(outputs[names.PROMETHEUS_CONFIG]["alerting"].get("alert_relabel_configs", []))


# --- grafana ---------------------------------------------------------------------------------


def datasources(model: Model, outputs: Outputs) -> dict[str, Any]:
    """The compose datasources with the Operator's services as URLs; the long-term store is yours to add in a cluster.

    Not the default datasource: kube-prometheus-stack provisions one already, and Grafana refuses two.
    """
    ns = model.kubernetes.namespace
    urls = {names.DATASOURCE_PROMETHEUS_UID: f"http://prometheus-operated.{ns}.svc:{PROMETHEUS_PORT}",
            names.DATASOURCE_ALERTMANAGER_UID: f"http://alertmanager-operated.{ns}.svc:{ALERTMANAGER_PORT}"}
    doc = outputs[names.GRAFANA_DATASOURCES]
    return {**doc, "datasources": [{**d, "url": urls[d["uid"]], **({"isDefault": False} if "isDefault" in d else {})}
                                   for d in doc["datasources"] if d["uid"] in urls]}


def grafana_objects(model: Model, outputs: Outputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ds = writer.serialize(names.GRAFANA_DATASOURCES, datasources(model, outputs), model.source).decode()
    meta = metadata(model, "grafana-datasources", labels={names.GRAFANA_SIDECAR_DATASOURCE_LABEL: "1"})
    out[f"{names.KUBE_GRAFANA_DIR}/datasources.yaml"] = obj("v1", "ConfigMap", meta, data={"monstack-datasources.yaml": ds})
    prefix = names.DASHBOARDS_DIR + "/"
    for path, dashboard in outputs.items():
        if not path.startswith(prefix):
            continue
        folder, file = path[len(prefix):].split("/", 1)
        name = f"dashboard-{folder}-{file.removesuffix('.json')}"
        meta = metadata(model, name, labels={names.GRAFANA_SIDECAR_DASHBOARD_LABEL: "1"},
                        annotations={names.GRAFANA_SIDECAR_FOLDER_ANNOTATION: folder})
        text = writer.serialize(path, dashboard, model.source).decode()
        out[f"{names.KUBE_GRAFANA_DIR}/dashboards/{folder}-{file.removesuffix('.json')}.yaml"] = obj("v1", "ConfigMap", meta, data={file: text})
    return out


# --- the Secrets users create -------------------------------------------------------------------


def needed_secrets(model: Model, outputs: Outputs) -> dict[str, dict[str, str]]:
    """Secret name -> {key: the inventory's file reference} for every Secret the tree refers to and does not contain."""
    refs = {names.secret_name(r): r for r in model.secret_files}
    refs.update({names.secret_name(r): r for s in model.services if s.scrape and s.scrape.tls
                 for r in (s.scrape.tls.ca_file, s.scrape.tls.cert_file) if r})
    out: dict[str, dict[str, str]] = {}

    def walk(value: Any, secret: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k.endswith("_file") and isinstance(v, str) and v.startswith(COMPOSE_SECRETS):
                    key = _secret_key(v)
                    out.setdefault(secret, {})[key] = refs[key]
                else:
                    walk(v, secret)
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)

    walk(outputs[names.ALERTMANAGER_CONFIG], names.kube_receivers_secret(model.stack.name))
    walk(outputs[names.PROMETHEUS_CONFIG]["scrape_configs"], names.kube_scrape_secret(model.stack.name))
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def readme(model: Model, outputs: Outputs) -> str:
    ns = model.kubernetes.namespace
    lines = [
        f"# Kubernetes objects for {model.stack.name}",
        "",
        f"Prometheus Operator objects rendered from `{model.source}` (`monstack render --target kubernetes`).",
        "Apply them with `kubectl apply --server-side -k .` (or list this folder in your own kustomization).",
        "See docs/kubernetes.md for the settings your Prometheus and Alertmanager objects need.",
        "",
    ]
    secrets = needed_secrets(model, outputs)
    if secrets:
        lines += ["## Secrets to create first", "",
                  "These objects refer to Secrets that hold your secret files; create them from the same files",
                  f"`{model.source}` names (paths relative to its folder):", ""]
        for secret, keys in secrets.items():
            args = " ".join(f"--from-file={k}={posixpath.normpath(ref)}" for k, ref in keys.items())
            lines += ["```sh", f"kubectl -n {ns} create secret generic {secret} {args}", "```", ""]
    else:
        lines += ["Nothing here refers to a Secret you need to create.", ""]
    lines += [
        "## Your Prometheus and Alertmanager objects",
        "",
        f"- Alertmanager `{model.kubernetes.alertmanager}`: `spec.configSecret: {names.kube_object(model.stack.name, 'alertmanager-config')}`"
        + (f", `spec.secrets: [{names.kube_receivers_secret(model.stack.name)}]`" if names.kube_receivers_secret(model.stack.name) in secrets else ""),
        f"- Prometheus `{model.kubernetes.prometheus}`: rule, ScrapeConfig, Probe and PodMonitor selectors (and namespace selectors) "
        "that match the labels below"
        + (f"; `spec.additionalScrapeConfigs: {{name: {names.kube_object(model.stack.name, 'additional-scrape-configs')}, "
           f"key: {names.KUBE_ADDITIONAL_SCRAPE_KEY}}}` for the scrape jobs of `extra_scrape_configs`" if model.extra_scrape_configs else "")
        + (f"; `spec.additionalAlertRelabelConfigs: {{name: {names.kube_object(model.stack.name, 'alert-relabel-configs')}, "
           f"key: {names.KUBE_ALERT_RELABEL_KEY}}}` so the rules of rules.d/ reach Alertmanager with levels (severity_map)"
           if alert_relabel_configs(model, outputs) else ""),
        "",
        "Labels on every object:",
        "",
        *[f"- `{k}: {v}`" for k, v in metadata(model, "x")["labels"].items()],
        "",
    ]
    return "\n".join(lines)
