"""prometheus.yml scrape jobs -> services: static targets become services, blackbox jobs health probes, the rest stays as written."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from generator.importer.report import NOTE, VERBATIM, Report, Secrets
from generator.importer.routing import slug
from generator.inventory.yamlsource import Source

SCRAPE_KEYS = {"job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "honor_labels", "static_configs",
               "basic_auth", "tls_config"}
RESERVED = ("service", "team", "env", "kind", "job", "instance")
MODULES = ("http_2xx", "http_post_2xx", "tcp_connect", "icmp", "dns")
_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$")
# Exporters recognised by their default port or their job's name.
KIND_PORTS = {"9100": "host", "9187": "postgres", "9121": "redis"}
KIND_NAMES = (("node", "host"), ("postgres", "postgres"), ("redis", "redis"))
SELF = {"9090": "Prometheus", "9093": "Alertmanager"}
_RAW_SECRETS = {"password": "password_file", "bearer_token": "bearer_token_file", "credentials": "credentials_file",
                "client_secret": "client_secret_file"}


@dataclass
class Svc:
    name: str
    job: str  # the original job name (series carry it as `job` until renamed)
    kind: str
    team: Optional[str] = None
    scrape: Optional[dict[str, Any]] = None
    health: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    verbatim: bool = False  # no scrape of its own (its job is in extra_scrape_configs, or none): the service holds rules only
    rules_only: bool = False  # not a job at all: the home of rules no job owns
    where: tuple[Any, ...] = ()
    teams_seen: list[str] = field(default_factory=list)


@dataclass
class Jobs:
    services: list[Svc] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # self-scrape jobs monstack replaces
    renamed: dict[str, str] = field(default_factory=dict)  # original job -> monstack job

    def by_job(self, job: str) -> Optional[Svc]:
        return next((s for s in self.services if s.job == job), None)


def _targets(job: dict[str, Any]) -> list[str]:
    return [str(t) for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]


def _is_self(job: dict[str, Any]) -> Optional[str]:
    name = str(job.get("job_name", "")).lower()
    if job.get("metrics_path", "/metrics") == "/probe":
        return None
    for port, what in SELF.items():
        if name == what.lower() or (what.lower() in name and _targets(job) and all(t.endswith(":" + port) for t in _targets(job))):
            return what
    if "blackbox" in name and all(t.endswith(":9115") for t in _targets(job)) and _targets(job):
        return "the blackbox exporter"
    return None


def _probe_module(job: dict[str, Any]) -> Optional[str]:
    """The blackbox module of a multi-target probe job (target -> __param_target, address -> the exporter)."""
    if job.get("metrics_path") != "/probe":
        return None
    relabel = job.get("relabel_configs") or []
    sets_target = any(r.get("target_label") == "__param_target" for r in relabel)
    sets_address = any(r.get("target_label") == "__address__" for r in relabel)
    if not (sets_target and sets_address):
        return None
    modules = (job.get("params") or {}).get("module") or ["http_2xx"]
    return str(modules[0])


def _probe_url(target: str, module: str) -> Optional[str]:
    if module.startswith("http"):
        return target if re.match(r"^https?://", target) else f"http://{target}"
    scheme = {"tcp_connect": "tcp", "icmp": "icmp", "dns": "dns"}[module]
    return f"{scheme}://{target}"


def _kind(job: dict[str, Any]) -> str:
    name = str(job.get("job_name", "")).lower()
    for part, kind in KIND_NAMES:
        if part in name:
            return kind
    ports = {t.rsplit(":", 1)[-1] for t in _targets(job)}
    kinds = {KIND_PORTS.get(p) for p in ports}
    if len(kinds) == 1 and None not in kinds:
        return kinds.pop()  # type: ignore[return-value]
    return "custom"


def _move_secrets(value: Any, path: tuple[Any, ...], job: str, secrets: Secrets, src: Source, report: Report) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in _RAW_SECRETS and isinstance(v, str):
                ref = secrets.add(v, f"{slug(job)}_{_RAW_SECRETS[k][:-5]}")
                report.add(NOTE, src, path + (k,), f"inline secret moved to {ref} (mode 600); Prometheus reads it from that path as written")
                out[_RAW_SECRETS[k]] = ref
            else:
                out[k] = _move_secrets(v, path + (k,), job, secrets, src, report)
        return out
    if isinstance(value, list):
        return [_move_secrets(v, path + (i,), job, secrets, src, report) for i, v in enumerate(value)]
    return value


def read(src: Source, report: Report, secrets: Secrets) -> Jobs:
    out = Jobs()
    cfg = src.data or {}
    names_taken: set[str] = set()
    for i, job in enumerate(cfg.get("scrape_configs") or []):
        path = ("scrape_configs", i)
        name = str(job.get("job_name", f"job-{i}"))
        what = _is_self(job)
        if what:
            out.skipped.append(name)
            report.add(NOTE, src, path, f"job {name!r} not imported: monstack scrapes {what} itself (meta-monitoring)")
            continue
        module = _probe_module(job)
        if module is not None:
            if _probe_service(out, src, path, job, module, report, names_taken):
                continue
        elif set(job) <= SCRAPE_KEYS and _static_service(out, src, path, job, report, secrets, names_taken):
            continue
        raw = _move_secrets(job, path, name, secrets, src, report)
        out.extra.append(raw)
        extra_keys = sorted(set(job) - SCRAPE_KEYS)
        why = f"uses {', '.join(extra_keys)}" if extra_keys else "cannot be a service"
        report.add(VERBATIM, src, path, f"job {name!r} {why}: copied as written; its alerts become custom rules")
        svc_name = _unique(slug(name, "job"), names_taken)
        out.services.append(Svc(svc_name, name, "custom", verbatim=True, where=path))
    return out


def _unique(name: str, taken: set[str]) -> str:
    base, n = name, 2
    while name in taken:
        name = f"{base[:60]}-{n}"
        n += 1
    taken.add(name)
    return name


def _labels(job: dict[str, Any]) -> Optional[dict[str, str]]:
    """The static labels, when every target group has the same ones (monstack gives a job one label set)."""
    groups = [dict(sc.get("labels") or {}) for sc in job.get("static_configs") or []]
    if not groups or any(g != groups[0] for g in groups):
        return None
    return {str(k): str(v) for k, v in groups[0].items()}


def _static_service(out: Jobs, src: Source, path: tuple[Any, ...], job: dict[str, Any], report: Report, secrets: Secrets,
                    taken: set[str]) -> bool:
    name = str(job["job_name"])
    targets = _targets(job)
    labels = _labels(job)
    if not targets or labels is None or not all(_HOSTPORT.match(t) for t in targets):
        return False
    svc = Svc(_unique(slug(name, "job"), taken), name, _kind(job), where=path)
    scrape: dict[str, Any] = {"targets": targets}
    for key, field_ in (("metrics_path", "path"), ("scheme", "scheme"), ("scrape_interval", "interval"), ("scrape_timeout", "timeout")):
        if key in job and not (key == "metrics_path" and job[key] == "/metrics") and not (key == "scheme" and job[key] == "http"):
            scrape[field_] = job[key]
    if job.get("honor_labels"):
        scrape["honor_labels"] = True
    own = {}
    for k, v in labels.items():
        if k == "team":
            svc.team = v
        elif k in RESERVED or k.startswith("__"):
            report.add(NOTE, src, path + ("static_configs", 0, "labels", k), f"label {k}={v!r} not imported: monstack sets {k} itself")
        else:
            own[k] = v
    if own:
        scrape["labels"] = own
    if "basic_auth" in job:
        ba = job["basic_auth"] or {}
        auth = {"username": str(ba.get("username", ""))}
        if ba.get("password"):
            auth["password_file"] = secrets.add(str(ba["password"]), f"{svc.name}_scrape_password")
            report.add(NOTE, src, path + ("basic_auth", "password"), f"inline secret moved to {auth['password_file']} (mode 600)")
        elif ba.get("password_file"):
            auth["password_file"] = str(ba["password_file"])
        else:
            return False
        scrape["basic_auth"] = auth
    if "tls_config" in job:
        tls = {k: v for k, v in (job["tls_config"] or {}).items() if k in ("ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify")}
        if set(job["tls_config"] or {}) - set(tls):
            return False
        scrape["tls"] = tls
    svc.scrape = scrape
    if svc.name != name:
        out.renamed[name] = svc.name
        report.add(NOTE, src, path + ("job_name",), f"job {name!r} becomes service {svc.name!r} (job label {svc.name!r}; expressions naming the job follow)")
    out.services.append(svc)
    return True


def _probe_service(out: Jobs, src: Source, path: tuple[Any, ...], job: dict[str, Any], module: str, report: Report, taken: set[str]) -> bool:
    name = str(job["job_name"])
    labels = _labels(job)
    if module not in MODULES or labels is None:
        return False
    svc = Svc(_unique(slug(name, "probe"), taken), name, "probe", where=path)
    svc.team = labels.get("team")
    seen: set[str] = set()
    for t in _targets(job):
        url = _probe_url(t, module)
        host = re.sub(r"^[a-z]+://", "", t).split("/", 1)[0].split(":", 1)[0]
        pname = _unique(re.sub(r"[^a-z0-9_-]+", "-", host.lower()).strip("-") or "target", seen)
        if not pname[0].isalpha():
            pname = f"t-{pname}"
        entry: dict[str, Any] = {"name": pname, "url": url}
        if module in ("http_post_2xx",):
            entry["module"] = module
        svc.health.append(entry)
    svc.scrape = None
    out.services.append(svc)
    out.renamed[name] = f"probe-{svc.name}"
    report.add(NOTE, src, path, f"blackbox job {name!r} becomes probe service {svc.name!r} ({len(svc.health)} health URLs, module {module}; "
                                f"job label probe-{svc.name})")
    return True
