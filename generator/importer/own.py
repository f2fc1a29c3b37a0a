"""monstack's own rendered output read back (the round trip): prometheus.yml, rules and alertmanager.yml -> services.yaml.

The rendered files say most things outright: services, kinds, teams and
targets are the scrape jobs' labels, severities the alerts' labels, the
routing tree the policy. Settings that only show inside PromQL (metric and
label names, regexes, limits, SLO targets, thresholds) are read by
rendering the recovered inventory once with a sentinel in each setting and
matching every rendered rule against the original: where a sentinel stands,
the original has the value. "The same" is then checked: the recovered
inventory must render the original rule files rule for rule.
"""
from __future__ import annotations

import json
import posixpath
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from generator import catalogue, defaults, names, writer
from generator.catalogue import recorded as R
from generator.catalogue.core import num
from generator.catalogue.slo import le_regex
from generator.durations import Duration, parse_duration
from generator.importer.report import NOTE, UNMAPPED, Report
from generator.inventory.handwritten import FOLDER
from generator.inventory.loader import load_inventory
from generator.inventory.yamlsource import Source
from generator.model import MUTED_BY_DEFAULT, resolve
from generator.topology import COMPOSE
from generator.units import DURATION_UNITS, duration_bound, infer_duration_unit

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
QUOTED = r'(?:[^"\\]|\\.)*'
NUMBER = r"[-+]?[0-9.]+(?:e[-+]?[0-9]+)?"
DURATION = r"[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*"
SECRET_PREFIX = "/run/secrets/"
# Addresses the compose topology rewrote (host.docker.internal:9100) back to the inventory's (node-exporter:9100).
_WRITTEN_AS = {rendered: written for written, rendered in COMPOSE.rewrites.items()}
MODULE_SCHEMES = {"http_2xx": "http", "http_post_2xx": "http", "tcp_connect": "tcp", "icmp": "icmp", "dns": "dns"}


def is_monstack(prom: Source) -> bool:
    """monstack renders its self-scrape jobs with the label monstack="self"."""
    for job in (prom.data or {}).get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            if (sc.get("labels") or {}).get(names.MONSTACK_JOB_LABEL) == "self":
                return True
    return False


def _ref(path: str) -> str:
    """A compose secret path back to the inventory's file reference (secrets_x -> secrets/x)."""
    name = path[len(SECRET_PREFIX):] if path.startswith(SECRET_PREFIX) else path
    return "secrets/" + name[len("secrets_"):] if name.startswith("secrets_") else name


# --- alertmanager.yml ----------------------------------------------------------------------------


def _receivers(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in cfg.get("receivers") or []:
        name = r["name"]
        if name == names.NULL_RECEIVER:
            continue
        if r.get("slack_configs"):
            c = r["slack_configs"][0]
            token = ((c.get("http_config") or {}).get("authorization") or {}).get("credentials_file")
            way = {"bot_token_file": _ref(token)} if token else {"webhook_url_file": _ref(c["api_url_file"])}  # chat.postMessage, or a webhook
            out[name] = {"type": "slack", **way, "channel": c["channel"], "send_resolved": c["send_resolved"]}
        elif r.get("pagerduty_configs"):
            c = r["pagerduty_configs"][0]
            out[name] = {"type": "pagerduty", "routing_key_file": _ref(c["routing_key_file"]), "send_resolved": c["send_resolved"]}
            if c.get("url"):
                out[name]["url"] = c["url"]
        elif r.get("email_configs"):
            c = r["email_configs"][0]
            out[name] = {"type": "email", "to": [a.strip() for a in c["to"].split(",")], "from": c["from"], "smarthost": c["smarthost"],
                         "require_tls": c["require_tls"], "send_resolved": c["send_resolved"]}
            if c.get("auth_username"):
                out[name].update(auth_username=c["auth_username"], auth_password_file=_ref(c["auth_password_file"]))
        elif r.get("webhook_configs"):
            c = r["webhook_configs"][0]
            out[name] = {"type": "webhook", "url": c["url"], "send_resolved": c["send_resolved"], "max_alerts": c.get("max_alerts", 0)}
            cred = ((c.get("http_config") or {}).get("authorization") or {}).get("credentials_file")
            if cred:
                out[name]["bearer_token_file"] = _ref(cred)
    return out


def _level_of(route: dict[str, Any]) -> Optional[str]:
    for m in route.get("matchers") or []:
        found = re.fullmatch(r'severity="(P[0-3])"', m)
        if found:
            return found.group(1)
    return None


def _leaves(route: dict[str, Any]) -> list[dict[str, Any]]:
    """A level route's receiver leaves (service nodes, which carry a service matcher, come first and are not leaves)."""
    return [r for r in route.get("routes") or [] if not r.get("matchers")]


def _service_nodes(route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """service -> its node under a level route (a service with a maintenance window of its own)."""
    out = {}
    for r in route.get("routes") or []:
        for m in r.get("matchers") or []:
            if found := re.fullmatch(rf'{names.SERVICE}="([^"]+)"', m):
                out[found.group(1)] = r
    return out


def _mutes(leaves: list[dict[str, Any]]) -> list[str]:
    return list(leaves[0].get("mute_time_intervals") or []) if leaves else []


def _windows(contexts: dict[tuple[str, Optional[str], Optional[str]], list[str]]) -> list[Any]:
    """Maintenance windows that mute exactly as the tree does.

    contexts: (level, team or None, service or None) -> the time intervals muting it, in order. Each interval becomes
    entries scoped to the levels (and teams, services) it mutes beyond what a wider entry already covers; entries are
    listed in an order every observed sequence agrees with (the render keeps the inventory's order). A severity's own
    mute_time_intervals mute like an entry of that level, so they come back as one.
    """
    order: list[str] = []
    after: dict[str, set[str]] = {}
    for seq in contexts.values():
        for i, x in enumerate(seq):
            if x not in order:
                order.append(x)
            after.setdefault(x, set()).update(seq[:i])
    ordered: list[str] = []
    while len(ordered) < len(order):  # the first interval (by appearance) whose predecessors are all placed
        ordered.append(next((x for x in order if x not in ordered and after[x] <= set(ordered)),
                            next(x for x in order if x not in ordered)))
    out: list[Any] = []
    for x in ordered:
        where = {c for c, seq in contexts.items() if x in seq}
        glob = [lv for lv in names.LEVELS if (lv, None, None) in where]
        entries: list[dict[str, Any]] = [{"levels": glob}] if glob else []
        team_levels: dict[str, list[str]] = {}
        where_ = sorted(where, key=lambda c: (names.LEVELS.index(c[0]), c[1] or "", c[2] or ""))  # sets have no stable order
        for lv, team, svc in where_:
            if team is not None and svc is None and lv not in glob:
                team_levels.setdefault(team, []).append(lv)
        for team, lvs in team_levels.items():
            entries.append({"levels": lvs, "teams": [team]})
        scoped: dict[tuple[Optional[str], tuple[str, ...]], list[str]] = {}
        by_service: dict[tuple[Optional[str], str], list[str]] = {}
        for lv, team, svc in where_:
            if svc is None or lv in glob or lv in team_levels.get(team or "", []):
                continue
            by_service.setdefault((team, svc), []).append(lv)
        for (team, svc), lvs in by_service.items():
            if team is not None and (None, svc) in by_service and set(lvs) <= set(by_service[(None, svc)]):
                continue  # a window of the service alone mutes it in its team's tree too
            scoped.setdefault((team, tuple(lv for lv in names.LEVELS if lv in lvs)), []).append(svc)
        for (team, scoped_levels), svcs in scoped.items():
            entries.append({"levels": list(scoped_levels), **({"teams": [team]} if team else {}), "services": svcs})
        for e in entries:
            if e["levels"] == list(MUTED_BY_DEFAULT) and len(e) == 1:
                out.append(x)
            else:
                if e["levels"] == list(MUTED_BY_DEFAULT):
                    del e["levels"]
                out.append({"interval": x, **e})
    return out


def _policy(cfg: dict[str, Any]) -> dict[str, Any]:
    """severities, teams, watchdog, maintenance windows and default receiver from monstack's route tree."""
    root = cfg["route"]
    levels: dict[str, dict[str, Any]] = {}
    teams: dict[str, dict[str, tuple[str, ...]]] = {}
    contexts: dict[tuple[str, Optional[str], Optional[str]], list[str]] = {}
    watchdog = None

    def level_node(route: dict[str, Any], level: str, team: Optional[str]) -> list[str]:
        leaves = _leaves(route)
        contexts[(level, team, None)] = _mutes(leaves)
        for svc, node in _service_nodes(route).items():
            contexts[(level, team, svc)] = _mutes(_leaves(node))
        return [leaf["receiver"] for leaf in leaves]

    for route in root.get("routes") or []:
        ms = route.get("matchers") or []
        if ms == [f'alertname="{names.WATCHDOG_ALERT}"']:
            if route["receiver"] != names.NULL_RECEIVER:
                watchdog = {"receiver": route["receiver"], "repeat_interval": route["repeat_interval"]}
            continue
        team = next((tm.group(1) for m in ms if (tm := re.fullmatch(r'team="([^"]+)"', m))), None)
        if team is not None:
            teams[team] = {lv: tuple(level_node(r, lv, team)) for r in route.get("routes") or [] if (lv := _level_of(r))}
            continue
        level = _level_of(route)
        if level:
            leaves = _leaves(route)
            entry: dict[str, Any] = {"receivers": level_node(route, level, None),
                                     "group_wait": route["group_wait"], "group_interval": route["group_interval"],
                                     "repeat_interval": route["repeat_interval"],
                                     "active_time_intervals": list(leaves[0].get("active_time_intervals") or [])}
            if route.get("group_by"):
                entry["group_by"] = list(route["group_by"])
            levels[level] = entry
    team_out: dict[str, Any] = {}
    for team, by_level in teams.items():
        receivers = {lv: list(rs) for lv, rs in by_level.items() if list(rs) != levels[lv]["receivers"]}
        team_out[team] = {"receivers": receivers} if receivers else {}
    intervals = {ti["name"]: ti["time_intervals"] for ti in cfg.get("time_intervals") or []}
    return {"severities": levels, "teams": team_out, "watchdog": watchdog, "mute_time_intervals": _windows(contexts),
            "time_intervals": intervals, "default_receiver": root["receiver"]}


# --- prometheus.yml ---------------------------------------------------------------------------------


def _stack(prom: dict[str, Any], folder: str) -> dict[str, Any]:
    g = prom.get("global") or {}
    stack: dict[str, Any] = {"name": re.sub(r"[^a-z0-9-]+", "-", folder.lower()).strip("-") or "imported",
                             "scrape_interval": g["scrape_interval"], "scrape_timeout": g["scrape_timeout"],
                             "evaluation_interval": g["evaluation_interval"]}
    for job in prom.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            env = (sc.get("labels") or {}).get(names.ENV)
            if env:
                stack["environment"] = env
    if g.get("external_labels"):
        stack["external_labels"] = dict(g["external_labels"])
    rws = []
    for rw in prom.get("remote_write") or []:
        entry: dict[str, Any] = {"name": rw["name"], "url": rw["url"]}
        if rw.get("basic_auth"):
            entry["basic_auth"] = {"username": rw["basic_auth"]["username"], "password_file": _ref(rw["basic_auth"]["password_file"])}
        if (rw.get("authorization") or {}).get("credentials_file"):
            entry["bearer_token_file"] = _ref(rw["authorization"]["credentials_file"])
        rws.append(entry)
    if rws:
        stack["remote_write"] = rws
    return stack


def _services(prom: dict[str, Any], stack: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Services from the jobs (name, team, kind, scrape, health) and the jobs monstack did not make (extra_scrape_configs)."""
    services: dict[str, dict[str, Any]] = {}
    extra = []
    interval = parse_duration(stack["scrape_interval"])
    timeout = parse_duration(stack["scrape_timeout"])
    for job in prom.get("scrape_configs") or []:
        groups = job.get("static_configs") or []
        labels = (groups[0].get("labels") or {}) if groups else {}
        if labels.get(names.MONSTACK_JOB_LABEL) == "self":
            continue
        if names.SERVICE not in labels or names.KIND not in labels:
            extra.append(job)
            continue
        name = labels[names.SERVICE]
        svc = services.setdefault(name, {"name": name, "team": labels[names.TEAM], "kind": labels[names.KIND]})
        if job["job_name"] == names.probe_job(name):
            health = []
            for sc in groups:
                lb = sc["labels"]
                module = lb["__param_module"]
                target = sc["targets"][0]
                scheme, sep, rest = target.partition("://")
                hostport, slash, path = (rest if sep else target).partition("/")
                target = (scheme + sep if sep else "") + _WRITTEN_AS.get(hostport, hostport) + slash + path
                url = target if MODULE_SCHEMES[module] == "http" else f"{MODULE_SCHEMES[module]}://{target}"
                entry: dict[str, Any] = {"name": lb[names.PROBE], "url": url}
                default = {"http": "http_2xx", "https": "http_2xx", "tcp": "tcp_connect", "icmp": "icmp", "dns": "dns"}[url.split("://")[0]]
                if module != default:
                    entry["module"] = module
                health.append(entry)
            svc["health"] = health
            continue
        scrape: dict[str, Any] = {"targets": [_WRITTEN_AS.get(t, t) for t in groups[0]["targets"]]}
        if job.get("metrics_path", "/metrics") != "/metrics":
            scrape["path"] = job["metrics_path"]
        if job.get("scheme", "http") != "http":
            scrape["scheme"] = job["scheme"]
        own_interval = parse_duration(job["scrape_interval"])
        if own_interval != interval:
            scrape["interval"] = job["scrape_interval"]
        if parse_duration(job["scrape_timeout"]) != min(timeout, own_interval):
            scrape["timeout"] = job["scrape_timeout"]
        own = {k: v for k, v in labels.items() if k not in (names.SERVICE, names.TEAM, names.ENV, names.KIND)}
        if own:
            scrape["labels"] = own
        if job.get("honor_labels"):
            scrape["honor_labels"] = True
        if job.get("basic_auth"):
            scrape["basic_auth"] = {"username": job["basic_auth"]["username"], "password_file": _ref(job["basic_auth"]["password_file"])}
        if job.get("tls_config"):
            tls = dict(job["tls_config"])
            for key in ("ca_file", "cert_file", "key_file"):
                if key in tls:
                    tls[key] = _ref(tls[key])
            scrape["tls"] = tls
        svc["scrape"] = scrape
    return services, extra


def _retention(compose: Path) -> dict[str, str]:
    """stack.retention from Prometheus' flags in the compose.yaml rendered beside (prometheus.yml does not carry them)."""
    if not compose.is_file():
        return {}
    command = ((yaml.safe_load(compose.read_text()) or {}).get("services", {}).get("prometheus") or {}).get("command") or []
    prefix = "--storage.tsdb.retention."
    out = dict(f[len(prefix):].split("=", 1) for f in command if isinstance(f, str) and f.startswith(prefix))
    if out.get("time") == str(defaults.RETENTION_TIME):
        del out["time"]
    return out


def _slo_retention(inv: dict[str, Any], report: Report) -> None:
    """Without compose.yaml, an SLO window longer than Prometheus' default retention on a stack with no long-term store
    gets that window's retention: the SLO lint accepts nothing less, and the rules do not show it."""
    stack = inv["stack"]
    if "time" in stack.get("retention", {}) or any("victoria-metrics:" in rw["url"] for rw in stack.get("remote_write", [])):
        return
    longest = max((parse_duration(svc["slo"].get("window", "30d")) for svc in inv["services"] if "slo" in svc), default=None)
    if longest is not None and longest > parse_duration(defaults.RETENTION_TIME):
        stack["retention"] = {**stack.get("retention", {}), "time": str(longest)}
        report.add(NOTE, None, (), f"stack.retention.time is not in prometheus.yml (no compose.yaml beside it): set to {longest}, "
                                   "the longest SLO window, which the SLO needs without a long-term store")


# --- the rules --------------------------------------------------------------------------------------


def _handwritten(src: Source) -> bool:
    """A rule file of rules.d/, which monstack renders into rules/handwritten/ as written."""
    return Path(src.file).parent.name == names.HANDWRITTEN


def rules_d(prom_src: Source, rule_srcs: list[Source], report: Report) -> dict[str, str]:
    """rules.d/ beside the recovered inventory: the hand-written rule files, and their tests from tests/handwritten/.

    File name -> text. Rendered again they give the same rule and test files: monstack copies both as written, the
    tests' rule_files pointing into rules/handwritten/.
    """
    out: dict[str, str] = {}
    header = "# Recovered by `monstack import` from {}: rendered into prometheus/{}/ as written.\n"
    for src in rule_srcs:
        if _handwritten(src):
            out[f"{FOLDER}/{Path(src.file).name}"] = header.format(Path(src.file).name, f"rules/{names.HANDWRITTEN}") + writer.dump_yaml(src.data)
    tests = Path(prom_src.file).parent / "tests" / names.HANDWRITTEN
    for path in sorted(tests.glob("*.test.yml")) if tests.is_dir() else []:
        data = yaml.safe_load(path.read_text())
        files = [posixpath.basename(str(f)) for f in data.get("rule_files") or []]
        out[f"{FOLDER}/{path.name}"] = header.format(path.name, f"tests/{names.HANDWRITTEN}") + writer.dump_yaml(
            {"rule_files": files, **{k: v for k, v in data.items() if k != "rule_files"}})
    if out:
        report.add(NOTE, None, (), f"{FOLDER}/: {', '.join(sorted(out))} (hand-written rules and their tests, as written)")
    return out


def severity_map(prom: dict[str, Any]) -> Optional[dict[str, str]]:
    """severity_map from the alert relabelling monstack renders for it; None when it is the default."""
    found = {r["regex"].replace("\\", ""): r["replacement"] for r in (prom.get("alerting") or {}).get("alert_relabel_configs") or []
             if r.get("source_labels") == [names.SEVERITY] and r.get("target_label") == names.SEVERITY}
    return None if found == dict(defaults.SEVERITY_MAP) else dict(sorted(found.items()))


def _rules_by_service(rule_srcs: list[Source]) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """service -> {("record"|"alert", name): rule}, from the per-service rule files (file stem <service> or <service>.slo)."""
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for src in rule_srcs:
        stem = Path(src.file).name[: -len(".yml")]
        if stem == names.META_RULES_GROUP or _handwritten(src):
            continue
        service = stem.split(".", 1)[0]
        for group in (src.data or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                key = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
                if "record" in rule:  # records of two services share names; the expression names its service
                    m = re.search(r'service="([^"]+)"', rule["expr"])
                    if m and m.group(1) != service:
                        continue
                out.setdefault(service, {})[key] = rule
    return out


class Sentinels:
    """Unique stand-ins for settings, and how to read the real value where the stand-in was rendered."""

    def __init__(self) -> None:
        self.tokens: list[tuple[str, str, str, Callable[[str], Any]]] = []  # (rendered text, capture regex, key, decode)
        self.n = 0

    def name(self, key: str) -> str:
        self.n += 1
        token = f"msxsent{self.n}x"
        self.tokens.append((token, NAME, key, lambda v: v))
        return token

    def quoted(self, key: str) -> str:
        self.n += 1
        token = f"msxsent{self.n}x"
        self.tokens.append((token, QUOTED, key, lambda v: json.loads(f'"{v}"')))
        return token

    def number(self, key: str, rendered: str, decode: Callable[[float], Any]) -> None:
        self.tokens.append((rendered, NUMBER, key, lambda v: decode(float(v))))

    def next_number(self) -> float:
        self.n += 1
        return 7700000 + self.n

    def duration(self, key: str) -> str:
        """A stand-in duration, read back as a duration: a day and n seconds, unique, and within the inventory's limits
        for windows (2d) and `for`; no catalogue duration holds seconds past a day."""
        self.n += 1
        token = str(Duration((86400 + self.n) * 1000))
        self.tokens.append((token, DURATION, key, lambda v: str(parse_duration(v))))
        return token

    def tier_number(self, severity: str, op: str) -> float:
        """A stand-in threshold that rises with severity (falls, for `<` alerts), as the tiers of one problem must."""
        rank = names.LEVELS.index(severity)
        return self.next_number() + 100000 * ((len(names.LEVELS) - rank) if op in (">", ">=") else rank)

    def template(self, text: str) -> tuple[re.Pattern[str], list[tuple[str, Callable[[str], Any]]]]:
        """A regex for the original's text: the template escaped, each token a capture group, in order of appearance."""
        def where(tok: tuple[str, str, str, Any]) -> str:
            # A number token stands alone (0.1 must not match inside 0.103 or 10.1).
            return rf"(?<![0-9.]){re.escape(tok[0])}(?![0-9.])" if tok[1] == NUMBER else re.escape(tok[0])

        found = sorted(((m.start(), tok) for tok in self.tokens for m in re.finditer(where(tok), text)), key=lambda x: (x[0], -len(x[1][0])))
        pattern, pos, groups = "", 0, []
        for start, (token, capture, key, decode) in found:
            if start < pos:
                continue
            pattern += re.escape(text[pos:start]) + f"({capture})"
            groups.append((key, decode))
            pos = start + len(token)
        pattern += re.escape(text[pos:])
        return re.compile(pattern), groups


def _units(kind: str, rules: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    """metrics.<histogram>_unit -> seconds or milliseconds: a histogram's bucket rates are recorded under its unit's name."""
    records = {n for k, n in rules if k == "record"}
    histograms = {"http": {"duration_unit": "http_request_duration", "db_query_duration_unit": "db_query_duration"},
                  "worker": {"duration_unit": "job_duration"}}.get(kind, {})
    return {key: unit for key, base in histograms.items() for unit in DURATION_UNITS if R.buckets(base, unit) in records}


def _sentinel_service(svc: dict[str, Any], rules: dict[tuple[str, str], dict[str, Any]], alerts: set[str], s: Sentinels) -> dict[str, Any]:
    """The service with a sentinel in every setting its rules show (only settings some original rule depends on).

    alerts: the catalogue alerts the original has (by themselves or as tiers).
    """
    out = json.loads(json.dumps(svc))
    name, kind = svc["name"], svc["kind"]
    records = {n for k, n in rules if k == "record"}
    units = _units(kind, rules)  # explicit: the stand-in names announce no unit
    if kind == "http":
        m = {"requests": s.name(f"{name}.metrics.requests"), "duration": s.name(f"{name}.metrics.duration"),
             "status_label": s.name(f"{name}.metrics.status_label"), "route_label": s.name(f"{name}.metrics.route_label"),
             "error_status": s.quoted(f"{name}.metrics.error_status")}
        pool = rules.get(("alert", "DbConnectionPoolSaturated"), {}).get("expr", "")
        if "DbConnectionPoolSaturated" in alerts and "(1 - " in pool:
            m["db_pool_size"] = s.name(f"{name}.metrics.db_pool_size")
            m["db_pool_available"] = s.name(f"{name}.metrics.db_pool_available")
        elif "DbConnectionPoolSaturated" in alerts:
            m["db_pool_utilization"] = s.name(f"{name}.metrics.db_pool_utilization")
        if "db_query_duration_unit" in units:
            m["db_query_duration"] = s.name(f"{name}.metrics.db_query_duration")
        out["metrics"] = {**m, **units}
    if kind == "worker":
        out["metrics"] = {"queue_depth": s.name(f"{name}.metrics.queue_depth"), "jobs": s.name(f"{name}.metrics.jobs"),
                          "status_label": s.name(f"{name}.metrics.status_label"), "failed_value": s.quoted(f"{name}.metrics.failed_value"),
                          "duration": s.name(f"{name}.metrics.duration"), "queue_label": s.name(f"{name}.metrics.queue_label"), **units}
    if kind == "redis" and " * 0 + " in rules.get(("alert", "RedisMemoryHigh"), {}).get("expr", ""):
        v = int(s.next_number())  # maxmemory 0 falls back on the inventory's memory_limit, a number in the expression
        out["memory_limit"] = f"{v}B"
        s.number(f"{name}.memory_limit", str(v), lambda x: _bytes(int(x)))
    if kind == "host":
        out["host"] = {k: s.quoted(f"{name}.host.{k}") for k in ("mountpoints", "exclude_fstypes", "exclude_disk_devices", "exclude_network_devices")}
    if kind in ("http", "worker"):
        res: dict[str, Any] = {}
        if alerts & {"ProcessMemoryHigh", "ProcessMemoryWarning"}:
            v = int(s.next_number())
            res["memory_limit"] = f"{v}B"
            s.number(f"{name}.resources.memory_limit", str(v), lambda x: _bytes(int(x)))
        if "ProcessCpuHigh" in alerts:
            cpu = s.next_number() / 1000
            res["cpu_limit"] = cpu
            s.number(f"{name}.resources.cpu_limit", repr(cpu), lambda x: x)
        if res:
            out["resources"] = res
        slo: dict[str, Any] = {}
        if any(a.startswith("ErrorBudgetBurn") for a in alerts):
            b = 0.0001 + (s.next_number() % 1000) / 1e7
            slo["availability"] = round(100 * (1 - b), 10)
            s.number(f"{name}.slo.availability", num(round(1 - slo["availability"] / 100, 10)), lambda x: round(100 * (1 - x), 10))
        if any(a.startswith("LatencyBudgetBurn") for a in alerts) or any("_slow:" in r for r in records):
            ms = 700 + int(s.next_number()) % 200
            lb = 0.0301 + (s.next_number() % 1000) / 1e7
            slo["latency"] = {"threshold": f"{ms}ms", "percentile": round(100 * (1 - lb), 10)}
            unit = units.get("duration_unit", "seconds")  # the bound is in the histogram's unit
            s.tokens.append((json.dumps(le_regex(duration_bound(ms, unit)))[1:-1], QUOTED, f"{name}.slo.latency.threshold",
                             partial(_le_threshold, unit=unit)))
            s.number(f"{name}.slo.latency.percentile", num(round(1 - slo["latency"]["percentile"] / 100, 10)), lambda x: round(100 * (1 - x), 10))
        if slo:
            out["slo"] = slo
    slow = rules.get(("alert", "HealthProbeSlow"), {}).get("expr", "")
    for i, probe in enumerate(out.get("health", [])):
        if f'probe="{probe["name"]}"' not in slow:
            continue
        ms = int(s.next_number()) % 100000 + 1
        probe["max_duration"] = f"{ms}ms"
        s.number(f"{name}.health.{i}.max_duration", repr(ms / 1000), lambda x: str(Duration(int(round(x * 1000)))))
    return out


def _bytes(n: int) -> str:
    """A byte count as people write it: the largest binary unit that divides it (256MiB, not 268435456B)."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _le_threshold(text: str, unit: str) -> str:
    first = float(json.loads(f'"{text}"').split("|")[0].replace("\\", ""))
    return str(Duration(int(round(first if unit == "milliseconds" else first * 1000))))


def _slo_window(name: str, found: dict[str, Any]) -> tuple[Optional[Duration], list[str]]:
    """The SLO window whose burn-rate factors are the captured thresholds, and the burn alerts it explains."""
    from generator.catalogue import slo as slo_mod

    burns = {a.name: w for a in slo_mod.ALERTS for w in slo_mod.WINDOWS if a.name.endswith(w.long) and "BudgetBurn" in a.name
             and f"{name}.alerts.{a.name}.threshold" in found}
    if not burns:
        return None, []
    for days in range(1, 400):
        window = Duration(days * 86_400_000)
        if all(slo_mod.factor(window, w) == found[f"{name}.alerts.{a}.threshold"] for a, w in burns.items()):
            return window, list(burns)
    return None, []


def inventory(prom_src: Source, rule_srcs: list[Source], am: Optional[Source], report: Report) -> dict[str, Any]:
    if am is None:
        from generator.errors import UsageError

        raise UsageError("monstack's own output needs its alertmanager.yml (alertmanager/alertmanager.yml) too")
    prom = prom_src.data
    stack = _stack(prom, Path(prom_src.file).resolve().parent.parent.name)
    services, extra = _services(prom, stack)
    retention = _retention(Path(prom_src.file).resolve().parent.parent / "compose.yaml")
    if retention:
        stack["retention"] = retention
    policy = _policy(am.data)
    rules = _rules_by_service(rule_srcs)
    report.add(NOTE, None, (), "monstack's own output: services from the scrape jobs' labels, settings recovered by rendering")
    urls = _urls(rules)
    if urls:
        stack["urls"] = urls
    base: dict[str, Any] = {"version": 1, "stack": stack, "receivers": _receivers(am.data)}
    if (mapping := severity_map(prom)) is not None:
        base["severity_map"] = mapping
    p1 = policy["severities"]["P1"]["receivers"][0]
    if policy["default_receiver"] != p1:
        base["default_receiver"] = policy["default_receiver"]
    base["severities"] = policy["severities"]
    if policy["time_intervals"]:
        base["time_intervals"] = policy["time_intervals"]
    if policy["mute_time_intervals"]:
        base["mute_time_intervals"] = policy["mute_time_intervals"]
    if policy["watchdog"]:
        base["watchdog"] = policy["watchdog"]
    teams = dict(policy["teams"])
    for svc in services.values():
        teams.setdefault(svc["team"], {})
    base["teams"] = teams
    if extra:
        base["extra_scrape_configs"] = extra

    # Which original alerts are catalogue alerts (or tiers of one); the rest are custom rules, read from their expressions.
    plans = {name: _catalogue_rules(svc["kind"], rules.get(name, {})) for name, svc in services.items()}
    custom: dict[str, list[dict[str, Any]]] = {}
    for name in services:
        tiered = {rule_name for rs in plans[name].values() for rule_name, _ in rs}
        custom[name] = [r for r in (_custom_rule(name, rule, rules.get(name, {}), report)
                                    for (kind, n), rule in rules.get(name, {}).items() if kind == "alert" and n not in tiered) if r]

    # Sentinels everywhere, catalogue thresholds included. An alert whose rendered rule does not match its original is tried
    # again with its other forms (a rate window of its own, no minimum traffic), one per pass.
    s = Sentinels()
    bases = {name: _sentinel_service(svc, rules.get(name, {}), set(plans[name]), s) for name, svc in services.items()}
    # Catalogue alerts that apply and that the original lacks were disabled; left at their defaults beside stand-in
    # thresholds they would break the rule that tiers' thresholds rise with severity.
    bare = _load({**base, "services": list(bases.values())})
    absent = {x.name: [a.name for a in catalogue.for_service(x) if a.name not in plans[x.name]] for x in bare.services}
    tries: dict[tuple[str, str], int] = {}  # (service, catalogue alert) -> the form in use
    stand_ins: dict[tuple[str, str], dict[str, Any]] = {}
    matched: set[tuple[str, str]] = set()  # (service, rule name)
    found: dict[str, Any] = {}
    from generator import alerting
    from generator.render import rules as rules_render

    model = None
    for attempt in range(len(FORMS)):
        sentinel_services = []
        for name in services:
            sv = json.loads(json.dumps(bases[name]))
            if custom[name]:
                sv["rules"] = custom[name]
            over = {}
            for alert, rs in plans[name].items():
                key = (name, alert)
                done = all((name, r) in matched for r, _ in rs)
                forms = _forms(catalogue.get(alert))
                if key not in stand_ins or (not done and attempt < len(forms)):
                    tries[key] = min(attempt, len(forms) - 1)
                    stand_ins[key] = _stand_in(s, name, catalogue.get(alert), rs, forms[tries[key]])
                over[alert] = stand_ins[key]
            over.update({alert: {"disabled": True} for alert in absent[name]})
            if over:
                sv["alerts"] = over
            sentinel_services.append(sv)
        model = _load({**base, "services": sentinel_services})
        for svc_model in model.services:
            for rule_group in alerting.service_groups(model, svc_model):
                for rule in rules_render.group(model, rule_group)["rules"]:
                    key_ = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
                    original = rules.get(svc_model.name, {}).get(key_)
                    if original is None:
                        continue
                    pattern, groups_ = s.template(rule["expr"])
                    m = pattern.fullmatch(original["expr"])
                    if m is None:
                        continue
                    if "alert" in rule:
                        matched.add((svc_model.name, rule["alert"]))
                    for (k, decode), value in zip(groups_, m.groups(), strict=True):
                        found.setdefault(k, decode(value))
        if all((name, r) in matched for name in services for rs in plans[name].values() for r, _ in rs):
            break
    assert model is not None
    for name in services:
        for alert, rs in plans[name].items():
            for r, _ in rs:
                if (name, r) not in matched:
                    report.add(NOTE, None, (), f"{name}: alert {r} does not render as {alert} renders with any setting monstack "
                                               "recovers: its catalogue defaults are kept")

    final = []
    for name, svc in services.items():
        chosen = {alert: _forms(catalogue.get(alert))[tries[(name, alert)]] for alert in plans[name]}
        final.append(_final_service(svc, rules.get(name, {}), plans[name], chosen, custom[name], found, model))
    inv = {**base, "services": final}
    _slo_retention(inv, report)
    _fix_texts(inv, rules)
    return inv


# The forms a catalogue alert is tried in: (a rate window of its own, no minimum traffic); the catalogue's first.
FORMS = ((False, False), (True, False), (False, True), (True, True))


def _forms(d: Any) -> list[tuple[bool, bool]]:
    windowed = d.window is not None and not d.window_fixed
    return [f for f in FORMS if (windowed or not f[0]) and (d.min_rate or not f[1])]


def _page(rule: dict[str, Any]) -> str:
    """The runbook page an alert links (tiers link their catalogue alert's)."""
    return rule["annotations"].get("runbook_url", "").rsplit("/", 1)[-1].removesuffix(".md")


def _catalogue_rules(kind: str, rules: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """catalogue alert -> its rules in the original, in order: the alert itself, or its tiers (named after it and their level,
    or named on their own; a tier links its alert's runbook)."""
    by_page = {a.name.lower(): a.name for a in catalogue.for_kind(kind)}
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (k, n), rule in rules.items():
        if k != "alert":
            continue
        alert = n if n.lower() in by_page and by_page[n.lower()] == n else by_page.get(_page(rule))
        if alert is not None:
            out.setdefault(alert, []).append((n, rule))
    return out


def _stand_in(s: Sentinels, service: str, d: Any, rs: list[tuple[str, dict[str, Any]]], form: tuple[bool, bool]) -> dict[str, Any]:
    """The alert's override with a sentinel in each setting its rules may carry, in one form."""
    own_window, no_guard = form

    def settings(rule_name: str, severity: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if (d.threshold is not None or d.derived_threshold is not None) and d.name != "HealthProbeSlow":
            v = s.tier_number(severity, d.op)
            out["threshold"] = v
            s.number(f"{service}.alerts.{rule_name}.threshold", str(int(v)), lambda x: x)
        if own_window:
            out["window"] = s.duration(f"{service}.alerts.{rule_name}.window")
        return out

    over: dict[str, Any]
    if len(rs) == 1 and rs[0][0] == d.name:
        over = settings(d.name, rs[0][1]["labels"][names.SEVERITY])
        over["severity"] = rs[0][1]["labels"][names.SEVERITY]  # thresholds of one problem rise with the original's severities
    else:
        over = {"tiers": [{"name": n, "severity": r["labels"][names.SEVERITY], **settings(n, r["labels"][names.SEVERITY])}
                          for n, r in rs]}
        for t in over["tiers"]:
            if "threshold" not in t:
                t["threshold"] = s.tier_number(t["severity"], d.op)
    if d.min_rate:
        if no_guard:
            over["min_rate"] = 0
        else:
            v = s.next_number()
            over["min_rate"] = v
            s.number(f"{service}.alerts.{d.name}.min_rate", str(int(v)), lambda x: _num(str(x)))
    return over


def _urls(rules: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> dict[str, str]:
    """stack.urls.grafana and .runbooks from the links every alert carries."""
    out: dict[str, str] = {}
    for service, by_key in rules.items():
        for (kind, name), rule in by_key.items():
            if kind != "alert":
                continue
            m = re.fullmatch(rf"(.+)/d/{re.escape(names.dashboard_uid('service', service))}", rule["annotations"].get("dashboard_url", ""))
            if m and m.group(1) != "http://localhost:3000":
                out.setdefault("grafana", m.group(1))
            page = names.runbook_file(name).rsplit("/", 1)[-1]
            runbook = rule["annotations"].get("runbook_url", "")
            if runbook.startswith("http") and runbook.endswith("/" + page):
                out.setdefault("runbooks", runbook[: -len(page) - 1])
    return out


def _load(inv: dict[str, Any], stand_in: bool = True):
    """The inventory resolved; stand-in inventories keep samples long enough for any SLO window (retention shows in no rule)."""
    if stand_in:
        inv = {**inv, "stack": {**inv["stack"], "retention": {**inv["stack"].get("retention", {}), "time": "3650d"}}}
    with tempfile.TemporaryDirectory(prefix="monstack-roundtrip-") as tmp:
        path = Path(tmp) / "services.yaml"
        path.write_text(writer.dump_yaml(inv))
        parsed, src = load_inventory(path)
        return resolve(parsed, src, policies=not stand_in)  # stand-in thresholds are markers, not a policy


def _final_service(svc: dict[str, Any], rules: dict[tuple[str, str], dict[str, Any]], plan: dict[str, list[tuple[str, dict[str, Any]]]],
                   forms: dict[str, tuple[bool, bool]], custom: list[dict[str, Any]], found: dict[str, Any],
                   sentinel_model: Any) -> dict[str, Any]:
    name, kind = svc["name"], svc["kind"]
    out = json.loads(json.dumps(svc))
    prefix = f"{name}."

    def get(key: str) -> Any:
        return found.get(prefix + key)

    if kind in ("http", "worker") and any(k.startswith(prefix + "slo.") for k in found):
        slo: dict[str, Any] = {}
        if get("slo.availability") is not None:
            slo["availability"] = get("slo.availability")
        if get("slo.latency.threshold") is not None:
            slo["latency"] = {"threshold": get("slo.latency.threshold"), "percentile": get("slo.latency.percentile")}
        window, explained = _slo_window(name, found)
        if window is not None:
            if window != parse_duration("30d"):
                slo["window"] = str(window)
            for alert in explained:
                found.pop(f"{prefix}alerts.{alert}.threshold")
        out["slo"] = slo
    if kind in ("http", "worker"):
        keys = ("requests", "duration", "status_label", "route_label", "error_status", "db_pool_size", "db_pool_available",
                "db_pool_utilization", "db_query_duration") if kind == "http" else (
                "queue_depth", "jobs", "status_label", "failed_value", "duration", "queue_label")
        metrics = {k: get(f"metrics.{k}") for k in keys if get(f"metrics.{k}") is not None}
        for key, unit in _units(kind, rules).items():  # said only where the metric's name does not announce it
            metric = metrics.get(key.removesuffix("_unit"))
            if metric is not None and infer_duration_unit(metric) != unit:
                metrics[key] = unit
        if metrics:
            out["metrics"] = metrics
        res = {k: get(f"resources.{k}") for k in ("memory_limit", "cpu_limit") if get(f"resources.{k}") is not None}
        if res:
            out["resources"] = res
    if kind == "redis" and get("memory_limit") is not None:
        out["memory_limit"] = get("memory_limit")
    if kind == "host":
        host = {k: get(f"host.{k}") for k in ("mountpoints", "exclude_fstypes", "exclude_disk_devices", "exclude_network_devices")
                if get(f"host.{k}") is not None}
        if host:
            out["host"] = host
    for i, probe in enumerate(out.get("health", [])):
        if get(f"health.{i}.max_duration") is not None:
            probe["max_duration"] = get(f"health.{i}.max_duration")
    alerts: dict[str, Any] = {}
    sentinel_svc = next(x for x in sentinel_model.services if x.name == name)
    applicable = {a.name for a in catalogue.for_service(sentinel_svc)}
    for a in catalogue.for_kind(kind):
        rs = plan.get(a.name)
        if rs is None:
            if a.name in applicable:
                alerts[a.name] = {"disabled": True}
            continue
        own_window, no_guard = forms[a.name]
        if len(rs) == 1 and rs[0][0] == a.name:
            o = _override(a, a.name, rs[0][1], False, own_window, found, prefix)
        else:  # tiers: each its own rule; its name is the alert's and its level unless it has one of its own
            tiers = []
            for rule_name, rule in rs:
                t = _override(a, rule_name, rule, True, own_window, found, prefix)
                default = f"{a.name}{t['severity']}"
                tiers.append({"threshold": t.pop("threshold", None), "severity": t.pop("severity"), **t,
                              **({"name": rule_name} if rule_name != default else {})})
            o = {"tiers": tiers}
        if a.min_rate:
            rate = 0 if no_guard else get(f"alerts.{a.name}.min_rate")
            if rate is not None and rate != a.min_rate:
                o["min_rate"] = rate
        if o:
            alerts[a.name] = o
    if alerts:
        out["alerts"] = alerts
    if custom:
        out["rules"] = custom
    extra_labels = {}
    links: dict[str, Any] = {}
    for (k, n), rule in rules.items():
        if k != "alert":
            continue
        for label, value in rule["labels"].items():
            if label not in (names.SEVERITY, names.SERVICE, names.TEAM, names.ENV, names.PROBLEM):
                extra_labels[label] = value
        runbook = rule["annotations"].get("runbook_url", "")
        if runbook.endswith("/" + n.lower()) and runbook.startswith("http"):
            links.setdefault("runbook_base", runbook[: -len(n) - 1])
        dashboard = rule["annotations"].get("dashboard_url", "")
        if dashboard and not dashboard.endswith("/d/" + names.dashboard_uid("service", name)):
            links.setdefault("dashboard", dashboard)
    if extra_labels:
        out["labels"] = extra_labels
    if links:
        out["links"] = links
    return out


def _override(a: Any, rule_name: str, rule: dict[str, Any], tier: bool, own_window: bool, found: dict[str, Any],
              prefix: str) -> dict[str, Any]:
    """What one rule of catalogue alert `a` sets beyond the catalogue's defaults (a tier states threshold and severity)."""
    o: dict[str, Any] = {}
    severity = rule["labels"][names.SEVERITY]
    if severity != a.severity or tier:
        o["severity"] = severity
    if parse_duration(rule["for"]) != parse_duration(a.for_):
        o["for"] = rule["for"]
    t = found.get(f"{prefix}alerts.{rule_name}.threshold")
    if t is not None and (t != a.threshold or tier):
        o["threshold"] = t
    w = found.get(f"{prefix}alerts.{rule_name}.window")
    if own_window and w is not None and w != a.window:
        o["window"] = w
    return o


# --- custom rules from their expressions --------------------------------------------------------------


def _custom_rule(service: str, rule: dict[str, Any], rules: dict[tuple[str, str], dict[str, Any]], report: Report) -> Optional[dict[str, Any]]:
    name, expr = rule["alert"], rule["expr"]
    svc_sel = rf'\{{service="{re.escape(service)}"'
    out: dict[str, Any] = {"name": name, "severity": rule["labels"][names.SEVERITY], "for": rule["for"]}
    problem = rule["labels"].get(names.PROBLEM)
    if problem and problem != name:
        out["problem"] = problem
    record = names.custom_record(name)
    m = re.fullmatch(rf"{re.escape(record)}{svc_sel}\}} (\S+) ({NUMBER})", expr)
    if m and ("record", record) in rules:
        return {**out, "type": "threshold", "expr": rules[("record", record)]["expr"], "op": m.group(1), "threshold": _num(m.group(2))}
    m = re.fullmatch(rf"absent\(({NAME}){svc_sel}\}}\)", expr)
    if m:
        return {**out, "type": "absent", "metric": m.group(1)}
    m = re.fullmatch(rf"\(sum by \([^)]*\) \(increase\(({NAME}){svc_sel}\}}\[([0-9a-z]+)\]\)\) == 0 or .*", expr)
    if m:
        return {**out, "type": "stalled", "metric": m.group(1), "for": m.group(2)}
    m = re.fullmatch(rf"\(sum by \([^)]*\) \(rate\((.+?)\[([0-9a-z]+)\]\)\) or sum by \([^)]*\) \(rate\((.+?)\[[0-9a-z]+\]\)\) \* 0\) / "
                     rf"sum by \([^)]*\) \(rate\(.+?\[[0-9a-z]+\]\)\) (\S+) ({NUMBER})", expr)
    if m:
        return {**out, "type": "ratio", "numerator": _unscope(m.group(1), service), "denominator": _unscope(m.group(3), service),
                "window": m.group(2), "op": m.group(4), "threshold": _num(m.group(5))}
    m = re.fullmatch(rf"count by \([^)]*, ({NAME})\) \(({NAME}){svc_sel}, [^}}]*\}}\) unless .*present_over_time\(.*\[([0-9a-z]+)\] offset .*", expr)
    if m:
        return {**out, "type": "new_label_value", "metric": m.group(2), "label": m.group(1), "lookback": m.group(3)}
    m = re.fullmatch(rf"sum by \([^)]*\) \(rate\(({NAME})_sum{svc_sel}\}}\[([0-9a-z]+)\]\)\) / sum by \([^)]*\) \(rate\({NAME}_count{svc_sel}\}}\[[0-9a-z]+\]\)\) (\S+) ({NUMBER})", expr)
    if m:
        return {**out, "type": "histogram_mean", "metric": m.group(1), "window": m.group(2), "op": m.group(3), "threshold": _num(m.group(4))}
    m = re.fullmatch(rf"sum by \(service, team, env((?:, {NAME})*)\) \(\((.+?) unless \2 offset ([0-9a-z]+)\) and on \(\) "
                     rf"count\(up\{{job=\"[^\"]*\"\}} offset \3\) or increase\(\2\[\3\]\)\) > ({NUMBER})", expr)
    if m:
        by = [b for b in m.group(1).split(", ") if b]
        return {**out, "type": "increase", "metric": _unscope(m.group(2), service), "window": m.group(3), "threshold": _num(m.group(4)),
                **({"by": by} if by else {})}
    report.add(UNMAPPED, None, (), f"{service}: alert {name} is neither a catalogue alert nor a custom rule shape monstack renders; not imported")
    return None


def _num(text: str) -> float | int:
    v = float(text)
    return int(v) if v.is_integer() else v


def _unscope(selector: str, service: str) -> str:
    """A ratio rule's selector without the service matcher monstack added."""
    inner = re.sub(rf'^service="{re.escape(service)}"(, )?', "", selector[selector.index("{") + 1: -1]) if "{" in selector else ""
    name = selector.split("{", 1)[0]
    return f"{name}{{{inner}}}" if inner else name


def _fix_texts(inv: dict[str, Any], rules: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> None:
    """Custom rules' summary and description where the original's differ from what the recovered rule renders by default."""
    model = _load(inv, stand_in=False)
    from generator import alerting

    by_name = {s["name"]: s for s in inv["services"]}
    for svc in model.services:
        for a in alerting.service_alerts(model, svc):
            if not a.custom:
                continue
            original = rules.get(svc.name, {}).get(("alert", a.name))
            got = alerting.alert_annotations(model, a)
            entry = next(r for r in by_name[svc.name]["rules"] if r["name"] == a.name)
            for key in ("summary", "description"):
                if original and original["annotations"][key] != got[key]:
                    entry[key] = original["annotations"][key]
