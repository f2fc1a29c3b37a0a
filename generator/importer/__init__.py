"""`monstack import`: a hand-written prometheus.yml, its rule files and alertmanager.yml -> services.yaml.

scrape.py turns jobs into services, rules.py alert rules into catalogue
alerts or custom rules, routing.py the Alertmanager tree into receivers, the
severity policy and team overrides. Inline secrets go to files under secrets/
(mode 600), never into services.yaml. The result is loaded through the normal
loader before anything is written, so every check of `monstack validate`
applies; the report says what could not be mapped.
"""
from __future__ import annotations

import glob
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from generator import defaults, errors, names, writer
from generator.importer import own
from generator.importer import routing as routing_mod
from generator.importer import rules as rules_mod
from generator.importer import scrape as scrape_mod
from generator.importer.report import NOTE, UNMAPPED, Report, Secrets
from generator.importer.routing import slug
from generator.inventory import handwritten
from generator.inventory.loader import load_inventory, read_source
from generator.inventory.yamlsource import Source
from generator.model import resolve

PROMETHEUS_DEFAULTS = {"scrape_interval": "1m", "scrape_timeout": "10s", "evaluation_interval": "1m"}  # Prometheus' own
DEFAULT_TEAM = "default"


@dataclass
class Result:
    inventory: dict[str, Any]
    text: str
    report: Report
    secrets: Secrets
    written: list[str]
    files: dict[str, str] = field(default_factory=dict)  # beside services.yaml: rules.d/ of monstack's own output


def _source(path: Path) -> Source:
    return read_source(path)


def rule_sources(prom: Source, base: Path, report: Report) -> list[Source]:
    out = []
    for i, pattern in enumerate((prom.data or {}).get("rule_files") or []):
        found = sorted(glob.glob(str(base / pattern)))
        if not found:
            report.add(UNMAPPED, prom, ("rule_files", i), f"no file matches {pattern!r}")
        out += [_source(Path(f)) for f in found]
    return out


def build(prometheus: Path, alertmanager: Optional[Path]) -> Result:
    """The inventory an import writes, with its report; nothing is written."""
    report, secrets = Report(), Secrets()
    prom = _source(prometheus)
    if not isinstance(prom.data, dict):
        raise errors.InventoryError([prom.problem((), "not a Prometheus configuration (a mapping with scrape_configs)")])
    am = _source(alertmanager) if alertmanager else None
    rule_srcs = rule_sources(prom, prometheus.parent, report)
    if own.is_monstack(prom):
        inv = own.inventory(prom, rule_srcs, am, report)
        confine_files(inv, secrets, report)
        return Result(inv, _dump(inv, prometheus, alertmanager), report, secrets, [], own.rules_d(prom, rule_srcs, report))
    routing = routing_mod.read(am, report, secrets)
    jobs = scrape_mod.read(prom, report, secrets)
    records: dict[str, str] = {}
    for src in rule_srcs:
        for gi, group in enumerate((src.data or {}).get("groups") or []):
            for ri, rule in enumerate(group.get("rules") or []):
                if "record" in rule:
                    records[str(rule["record"])] = str(rule["expr"]).strip()
                    report.add(UNMAPPED, src, ("groups", gi, "rules", ri), f"recording rule {rule['record']} not imported "
                                                                           "(monstack records its own series; alerts reading it get its expression)")
    extra: dict[str, scrape_mod.Svc] = {}

    def rules_only(name: str) -> scrape_mod.Svc:
        if name not in extra:
            svc = scrape_mod.Svc(slug(name), name, "custom", verbatim=True, rules_only=True)
            extra[name] = svc
            jobs.services.append(svc)
        return extra[name]

    ctx = rules_mod.Context(jobs, routing, report, records, rules_only)
    for src in rule_srcs:
        rules_mod.apply(src, ctx)
    inv = _inventory(prom, am, jobs, routing, report, secrets)
    confine_files(inv, secrets, report)
    return Result(inv, _dump(inv, prometheus, alertmanager), report, secrets, [])


_LABEL_MAPS = ("labels", "external_labels")  # label names may end in _file too: their values are not paths


def _in_secrets(ref: str) -> bool:
    parts = PurePosixPath(ref).parts
    return not os.path.isabs(ref) and posixpath.normpath(ref) == ref and len(parts) > 1 and parts[0] == defaults.SECRETS_DIR \
        and ".." not in parts


def confine_files(inv: dict[str, Any], secrets: Secrets, report: Report) -> None:
    """Every *_file the original names outside secrets/ becomes secrets/<its file name>, and the report says what to copy.

    The inventory's secret files must lie in its secrets folder (generator/inventory/secrets.py); an import never
    reads or copies files the original configuration names, it only points at where they must go.
    """
    moved: dict[str, str] = {}

    def ref(original: str) -> str:
        if original not in moved:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", posixpath.basename(original.rstrip("/"))).lstrip(".") or "file"
            candidate, n = f"{defaults.SECRETS_DIR}/{stem}", 2
            while candidate in moved.values() or candidate in secrets.files:
                candidate, n = f"{defaults.SECRETS_DIR}/{stem}_{n}", n + 1
            moved[original] = candidate
            report.add(NOTE, None, (), f"{original} is outside {defaults.SECRETS_DIR}/, where secret files must lie: "
                                       f"the inventory names {candidate}; copy the file there")
        return moved[original]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.endswith("_file") and isinstance(v, str) and not _in_secrets(v):
                    value[k] = ref(v)
                elif k not in _LABEL_MAPS:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(inv)


def _teams_in_routes(route: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for child in route.get("routes") or []:
        for m in routing_mod.matchers(child):
            if m.label == "team":
                found += [m.value] if m.op == "=" else [v for v in m.value.split("|") if v and v.replace("-", "").replace("_", "").isalnum()]
        found += _teams_in_routes(child)
    return found


def _inventory(prom: Source, am: Optional[Source], jobs: scrape_mod.Jobs, routing: routing_mod.Routing, report: Report,
               secrets: Secrets) -> dict[str, Any]:
    cfg = prom.data or {}
    glob_ = cfg.get("global") or {}
    stack: dict[str, Any] = {"name": slug(Path(prom.file).resolve().parent.name, "imported")}
    labels = {str(k): str(v) for k, v in (glob_.get("external_labels") or {}).items()}
    for key in ("env", "environment"):
        if key in labels and re.match(r"^[a-z][a-z0-9_-]*$", labels[key]):
            stack["environment"] = labels.pop(key)
            break
    for k in [k for k in labels if k in (names.SERVICE, names.TEAM, names.SEVERITY, "env")]:
        report.add(NOTE, prom, ("global", "external_labels", k), f"external label {k} not imported: monstack sets it")
        labels.pop(k)
    for key, preset in PROMETHEUS_DEFAULTS.items():
        stack[key] = str(glob_.get(key, preset))
    if labels:
        stack["external_labels"] = labels
    rws = []
    for i, rw in enumerate(cfg.get("remote_write") or []):
        entry: dict[str, Any] = {"name": slug(rw.get("name") or f"remote-{i + 1}", "remote"), "url": str(rw.get("url", ""))}
        ba = rw.get("basic_auth") or {}
        if ba:
            pw = ba.get("password_file") or (secrets.add(str(ba["password"]), f"{entry['name']}_remote_write_password") if ba.get("password") else None)
            if ba.get("password"):
                report.add(NOTE, prom, ("remote_write", i, "basic_auth", "password"), f"inline secret moved to {pw} (mode 600)")
            if pw:
                entry["basic_auth"] = {"username": str(ba.get("username", "")), "password_file": pw}
        token = (rw.get("authorization") or {}).get("credentials") or rw.get("bearer_token")
        token_file = (rw.get("authorization") or {}).get("credentials_file") or rw.get("bearer_token_file")
        if token:
            entry["bearer_token_file"] = secrets.add(str(token), f"{entry['name']}_remote_write_token")
            report.add(NOTE, prom, ("remote_write", i), f"inline token moved to {entry['bearer_token_file']} (mode 600)")
        elif token_file:
            entry["bearer_token_file"] = str(token_file)
        rest = sorted(set(rw) - {"name", "url", "basic_auth", "authorization", "bearer_token", "bearer_token_file"})
        if rest:
            report.add(NOTE, prom, ("remote_write", i), f"{', '.join(rest)} not imported")
        rws.append(entry)
    if rws:
        stack["remote_write"] = rws

    route_teams = list(dict.fromkeys(_teams_in_routes(routing.root)))
    services = [s for s in jobs.services if not (s.verbatim and not s.rules)]
    team_names: dict[str, str] = {t: slug(t, "team") for t in route_teams}
    for s in services:
        raw = s.team or (s.teams_seen[0] if s.teams_seen else None)
        s.team = team_names.setdefault(raw, slug(raw, "team")) if raw else DEFAULT_TEAM
    teams_used = list(dict.fromkeys([s.team for s in services if s.team] + list(team_names.values())))

    receivers = dict(routing.receivers)
    default = routing.expand.get((routing.root or {}).get("receiver", ""), [])
    if not receivers:
        raise errors.UsageError("no receiver could be imported from the Alertmanager configuration: monstack needs at least one "
                                "(Slack, PagerDuty, email or webhook)")
    fallback = default or [next(iter(receivers))]
    severities, team_overrides = routing_mod.policy(routing, team_names, report, am, fallback)
    used_intervals = {n for p in severities.values() for key in ("active_time_intervals", "mute_time_intervals") for n in p.get(key, [])}

    inv: dict[str, Any] = {"version": 1, "stack": stack, "receivers": receivers}
    if default and default[0] != severities["P1"]["receivers"][0]:
        inv["default_receiver"] = default[0]
    inv["severities"] = severities
    intervals = {n: ts for n, ts in routing.time_intervals.items() if n in used_intervals}
    if intervals:
        inv["time_intervals"] = intervals
    if routing.watchdog and routing.watchdog["receiver"] in receivers:
        inv["watchdog"] = routing.watchdog
    inv["teams"] = {t: team_overrides.get(t, {}) for t in (teams_used or [DEFAULT_TEAM])}
    for s in services:
        rules_mod.tiers_that_never_matter(s, report)
    inv["services"] = [_service(s) for s in services]
    if jobs.extra:
        inv["extra_scrape_configs"] = jobs.extra
    return inv


def _service(s: scrape_mod.Svc) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "team": s.team, "kind": s.kind}
    if s.scrape:
        out["scrape"] = s.scrape
    if s.health:
        out["health"] = s.health
    if s.kind == "http":
        metrics = {k: v for k, v in s.metrics.items() if k in ("requests", "duration", "status_label", "error_status")}
        if metrics:
            out["metrics"] = metrics
    if s.kind == "host" and s.host:
        out["host"] = s.host
    if s.alerts:
        out["alerts"] = s.alerts
    if s.rules:
        out["rules"] = s.rules
    return out


def _dump(inv: dict[str, Any], prometheus: Path, alertmanager: Optional[Path]) -> str:
    sources = ", ".join(p.name for p in (prometheus, alertmanager) if p)
    header = ("# yaml-language-server: $schema=./services.schema.json\n"
              f"# Imported by `monstack import` from {sources} and their rule files. Yours to edit from here on:\n"
              "# change it, then `monstack render`. Field reference: docs/inventory.md\n")
    return header + writer.dump_yaml(inv)


def check(result: Result, out: Path) -> None:
    """Load the inventory (and rules.d/ written beside it) through the normal loader and resolver (every check applies);
    raises their problems."""
    with tempfile.TemporaryDirectory(prefix="monstack-import-") as tmp:
        path = Path(tmp) / out.name
        path.write_text(result.text)
        for name, text in result.files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_text(text)
        inv, src = load_inventory(path)
        resolve(inv, src, handwritten.load_folder(path))


def write(result: Result, out: Path, force: bool) -> list[str]:
    """services.yaml and the files beside it (never over existing ones without force), and the secret files; atomic, after check()."""
    folder = out.parent if str(out.parent) else Path(".")
    taken = [str(p) for p in [out, *(folder / n for n in result.files)] if p.exists()]
    if taken and not force:
        raise errors.UsageError(f"{', '.join(taken)} exist{'s' if len(taken) == 1 else ''}: pass --force to replace "
                                f"{'it' if len(taken) == 1 else 'them'} (or --out another path)")
    written = result.secrets.write(folder, force)
    texts = {out.name: result.text, **result.files}
    staging = writer.stage({n: t.encode() for n, t in texts.items()}, folder)
    for name in texts:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, folder / name)
    shutil.rmtree(staging, ignore_errors=True)
    return [str(out)] + [str(folder / n) for n in result.files] + [str(folder / r) for r in written]
