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
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from generator import catalogue, names, writer
from generator.catalogue.core import num
from generator.catalogue.slo import le_regex
from generator.durations import Duration, parse_duration
from generator.importer.report import NOTE, UNMAPPED, Report
from generator.inventory.loader import load_inventory
from generator.inventory.yamlsource import Source
from generator.model import resolve

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
QUOTED = r'(?:[^"\\]|\\.)*'
NUMBER = r"[-+]?[0-9.]+(?:e[-+]?[0-9]+)?"
SECRET_PREFIX = "/run/secrets/"
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
            out[name] = {"type": "slack", "webhook_url_file": _ref(c["api_url_file"]), "channel": c["channel"], "send_resolved": c["send_resolved"]}
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


def _policy(cfg: dict[str, Any]) -> dict[str, Any]:
    """severities, teams, watchdog, mute windows and default receiver from monstack's route tree."""
    root = cfg["route"]
    levels: dict[str, dict[str, Any]] = {}
    level_mutes: dict[str, list[str]] = {}
    teams: dict[str, dict[str, Any]] = {}
    watchdog = None
    for route in root.get("routes") or []:
        ms = route.get("matchers") or []
        if ms == [f'alertname="{names.WATCHDOG_ALERT}"']:
            if route["receiver"] != names.NULL_RECEIVER:
                watchdog = {"receiver": route["receiver"], "repeat_interval": route["repeat_interval"]}
            continue
        team = next((tm.group(1) for m in ms if (tm := re.fullmatch(r'team="([^"]+)"', m))), None)
        if team is not None:
            teams[team] = {lv: (r, [leaf["receiver"] for leaf in r["routes"]], list(r["routes"][0].get("mute_time_intervals") or []))
                           for r in route.get("routes") or [] if (lv := _level_of(r))}
            continue
        level = _level_of(route)
        if level:
            leaf = route["routes"][0]
            entry: dict[str, Any] = {"receivers": [leaf["receiver"] for leaf in route["routes"]],
                                     "group_wait": route["group_wait"], "group_interval": route["group_interval"],
                                     "repeat_interval": route["repeat_interval"],
                                     "active_time_intervals": list(leaf.get("active_time_intervals") or [])}
            if route.get("group_by"):
                entry["group_by"] = list(route["group_by"])
            levels[level] = entry
            level_mutes[level] = list(leaf.get("mute_time_intervals") or [])
    common = [m for m in level_mutes.get("P0", []) if all(m in ms for ms in level_mutes.values())]
    for level, entry in levels.items():
        own = [m for m in level_mutes[level] if m not in common]
        if own:
            entry["mute_time_intervals"] = own
    team_out: dict[str, Any] = {}
    for team, by_level in teams.items():
        t: dict[str, Any] = {}
        receivers = {lv: rs for lv, (_, rs, _) in by_level.items() if rs != levels[lv]["receivers"]}
        if receivers:
            t["receivers"] = receivers
        extra = [m for m in next(iter(by_level.values()))[2] if m not in common + levels["P0"].get("mute_time_intervals", [])]
        if extra:
            t["mute_time_intervals"] = extra
        team_out[team] = t
    intervals = {ti["name"]: ti["time_intervals"] for ti in cfg.get("time_intervals") or []}
    out = {"severities": levels, "teams": team_out, "watchdog": watchdog, "mute_time_intervals": common, "time_intervals": intervals,
           "default_receiver": root["receiver"]}
    return out


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
                url = target if MODULE_SCHEMES[module] == "http" else f"{MODULE_SCHEMES[module]}://{target}"
                entry: dict[str, Any] = {"name": lb[names.PROBE], "url": url}
                default = {"http": "http_2xx", "https": "http_2xx", "tcp": "tcp_connect", "icmp": "icmp", "dns": "dns"}[url.split("://")[0]]
                if module != default:
                    entry["module"] = module
                health.append(entry)
            svc["health"] = health
            continue
        scrape: dict[str, Any] = {"targets": list(groups[0]["targets"])}
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


# --- the rules --------------------------------------------------------------------------------------


def _rules_by_service(rule_srcs: list[Source]) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """service -> {("record"|"alert", name): rule}, from the per-service rule files (file stem <service> or <service>.slo)."""
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for src in rule_srcs:
        stem = Path(src.file).name[: -len(".yml")]
        if stem == names.META_RULES_GROUP:
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


def _sentinel_service(svc: dict[str, Any], rules: dict[tuple[str, str], dict[str, Any]], s: Sentinels) -> dict[str, Any]:
    """The service with a sentinel in every setting its rules show (only settings some original rule depends on)."""
    out = json.loads(json.dumps(svc))
    name, kind = svc["name"], svc["kind"]
    alerts = {n for k, n in rules if k == "alert"}
    records = {n for k, n in rules if k == "record"}
    if kind == "http":
        m = {"requests": s.name(f"{name}.metrics.requests"), "duration": s.name(f"{name}.metrics.duration"),
             "status_label": s.name(f"{name}.metrics.status_label"), "route_label": s.name(f"{name}.metrics.route_label"),
             "error_status": s.quoted(f"{name}.metrics.error_status")}
        if "DbConnectionPoolSaturated" in alerts:
            m["db_pool_size"] = s.name(f"{name}.metrics.db_pool_size")
            m["db_pool_available"] = s.name(f"{name}.metrics.db_pool_available")
        if "service:db_query_duration_seconds_bucket:rate5m" in records:
            m["db_query_duration"] = s.name(f"{name}.metrics.db_query_duration")
        out["metrics"] = m
    if kind == "worker":
        out["metrics"] = {"queue_depth": s.name(f"{name}.metrics.queue_depth"), "jobs": s.name(f"{name}.metrics.jobs"),
                          "status_label": s.name(f"{name}.metrics.status_label"), "failed_value": s.quoted(f"{name}.metrics.failed_value"),
                          "duration": s.name(f"{name}.metrics.duration"), "queue_label": s.name(f"{name}.metrics.queue_label")}
    if kind == "host":
        out["host"] = {k: s.quoted(f"{name}.host.{k}") for k in ("mountpoints", "exclude_fstypes", "exclude_disk_devices", "exclude_network_devices")}
    if kind in ("http", "worker"):
        res: dict[str, Any] = {}
        if alerts & {"ProcessMemoryHigh", "ProcessMemoryWarning"}:
            v = int(s.next_number())
            res["memory_limit"] = f"{v}B"
            s.number(f"{name}.resources.memory_limit", str(v), lambda x: f"{int(x)}B")
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
            s.tokens.append((json.dumps(le_regex(ms / 1000))[1:-1], QUOTED, f"{name}.slo.latency.threshold", _le_threshold))
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


def _le_threshold(text: str) -> str:
    first = json.loads(f'"{text}"').split("|")[0].replace("\\", "")
    return str(Duration(int(round(float(first) * 1000))))


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
    policy = _policy(am.data)
    services, extra = _services(prom, stack)
    rules = _rules_by_service(rule_srcs)
    report.add(NOTE, None, (), "monstack's own output: services from the scrape jobs' labels, settings recovered by rendering")
    urls = _urls(rules)
    if urls:
        stack["urls"] = urls
    base: dict[str, Any] = {"version": 1, "stack": stack, "receivers": _receivers(am.data)}
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

    # Custom rules first: they are read from their expressions, not recovered by sentinels.
    custom: dict[str, list[dict[str, Any]]] = {}
    for name, svc in services.items():
        cat = {a.name for a in catalogue.for_kind(svc["kind"])}
        custom[name] = [r for r in (_custom_rule(name, rule, rules.get(name, {}), report)
                                    for (kind, n), rule in rules.get(name, {}).items() if kind == "alert" and n not in cat) if r]

    # Pass 1: sentinels everywhere, catalogue thresholds included.
    s = Sentinels()
    sentinel_services = []
    for name, svc in services.items():
        sv = _sentinel_service(svc, rules.get(name, {}), s)
        if custom[name]:
            sv["rules"] = custom[name]
        over = {}
        for a in catalogue.for_kind(svc["kind"]):
            if ("alert", a.name) in rules.get(name, {}) and (a.threshold is not None or a.derived_threshold is not None) \
                    and a.name != "HealthProbeSlow":
                v = s.next_number()
                over[a.name] = {"threshold": v}
                s.number(f"{name}.alerts.{a.name}.threshold", str(int(v)), lambda x: x)
        if over:
            sv["alerts"] = over
        sentinel_services.append(sv)
    model = _load({**base, "services": sentinel_services})
    found: dict[str, Any] = {}
    from generator import alerting
    from generator.render import rules as rules_render

    for svc_model in model.services:
        for rule_group in alerting.service_groups(model, svc_model):
            for group in (rules_render.group(model, rule_group),):
                for rule in group["rules"]:
                    key = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
                    original = rules.get(svc_model.name, {}).get(key)
                    if original is None:
                        continue
                    pattern, groups_ = s.template(rule["expr"])
                    m = pattern.fullmatch(original["expr"])
                    if m is None:
                        continue
                    for (key_, decode), value in zip(groups_, m.groups(), strict=True):
                        found.setdefault(key_, decode(value))

    final = []
    for name, svc in services.items():
        final.append(_final_service(svc, rules.get(name, {}), custom[name], found, model))
    inv = {**base, "services": final}
    _fix_texts(inv, rules)
    return inv


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


def _load(inv: dict[str, Any]):
    with tempfile.TemporaryDirectory(prefix="monstack-roundtrip-") as tmp:
        path = Path(tmp) / "services.yaml"
        path.write_text(writer.dump_yaml(inv))
        parsed, src = load_inventory(path)
        return resolve(parsed, src)


def _final_service(svc: dict[str, Any], rules: dict[tuple[str, str], dict[str, Any]], custom: list[dict[str, Any]],
                   found: dict[str, Any], sentinel_model: Any) -> dict[str, Any]:
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
                "db_query_duration") if kind == "http" else ("queue_depth", "jobs", "status_label", "failed_value", "duration", "queue_label")
        metrics = {k: get(f"metrics.{k}") for k in keys if get(f"metrics.{k}") is not None}
        if metrics:
            out["metrics"] = metrics
        res = {k: get(f"resources.{k}") for k in ("memory_limit", "cpu_limit") if get(f"resources.{k}") is not None}
        if res:
            out["resources"] = res
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
        rule = rules.get(("alert", a.name))
        if rule is None:
            if a.name in applicable:
                alerts[a.name] = {"disabled": True}
            continue
        o: dict[str, Any] = {}
        severity = rule["labels"][names.SEVERITY]
        if severity != a.severity:
            o["severity"] = severity
        if parse_duration(rule["for"]) != parse_duration(a.for_):
            o["for"] = rule["for"]
        t = get(f"alerts.{a.name}.threshold")
        if t is not None and t != a.threshold:
            o["threshold"] = t
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
    model = _load(inv)
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
