"""alertmanager.yml -> receivers, the severity policy, team overrides, time intervals, watchdog.

monstack routes by severity level and team. The original tree is asked where
an alert of each original severity (and each team) ends up, with Alertmanager's
own matching (first matching child unless `continue`, settings inherited from
the parent); those answers become the policy. Whatever the tree decides on
other labels cannot be carried over and is reported.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from generator import defaults
from generator.importer.report import NOTE, UNMAPPED, Report, Secrets
from generator.inventory.yamlsource import Source

# Original severity label values -> monstack level (critical is P0 where it pages, see levels()).
SEVERITY_LEVELS = {
    "critical": "P1", "page": "P0", "emergency": "P0", "disaster": "P0", "fatal": "P0",
    "high": "P1", "error": "P1", "major": "P1",
    "warning": "P2", "warn": "P2", "medium": "P2", "average": "P2",
    "info": "P3", "informational": "P3", "low": "P3", "none": "P3", "minor": "P3", "notice": "P3",
    "p0": "P0", "p1": "P1", "p2": "P2", "p3": "P3",
}
LEVEL_SOURCE = {"P0": "critical", "P1": "critical", "P2": "warning", "P3": "info"}  # which original severity a level routes like
PAGER_TYPES = ("pagerduty",)
WATCHDOG_NAMES = ("Watchdog", "DeadMansSwitch", "DeadMansSnitch", "AlwaysFiring")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$')
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def slug(text: str, fallback: str = "imported") -> str:
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    if not s or not s[0].isalpha():
        s = f"{fallback}-{s}".strip("-")
    return s[:63].rstrip("-")


@dataclass
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        try:
            found = re.fullmatch(self.value, have) is not None
        except re.error:
            return False
        return found if self.op == "=~" else not found


def matchers(route: dict[str, Any]) -> list[Matcher]:
    out = [Matcher(k, "=", str(v)) for k, v in (route.get("match") or {}).items()]
    out += [Matcher(k, "=~", str(v)) for k, v in (route.get("match_re") or {}).items()]
    for text in route.get("matchers") or []:
        for part in _split_matchers(str(text)):
            m = _MATCHER.match(part)
            if m:
                value = m.group(3) if m.group(3) is not None else m.group(4)
                out.append(Matcher(m.group(1), m.group(2), value.replace('\\"', '"')))
    return out


def _split_matchers(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts, cur, quote = [], "", False
    for ch in text:
        if ch == '"':
            quote = not quote
        if ch == "," and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


@dataclass
class Leaf:
    receiver: str
    group_by: Optional[list[str]]
    group_wait: Optional[str]
    group_interval: Optional[str]
    repeat_interval: Optional[str]
    mute: list[str]
    active: list[str]


def walk(route: dict[str, Any], labels: dict[str, str], inherited: Optional[Leaf] = None) -> list[Leaf]:
    """Where Alertmanager delivers an alert with these labels: the leaves it reaches, in order."""
    here = Leaf(
        receiver=route.get("receiver") or (inherited.receiver if inherited else ""),
        group_by=route.get("group_by", inherited.group_by if inherited else None),
        group_wait=route.get("group_wait", inherited.group_wait if inherited else None),
        group_interval=route.get("group_interval", inherited.group_interval if inherited else None),
        repeat_interval=route.get("repeat_interval", inherited.repeat_interval if inherited else None),
        mute=list(route.get("mute_time_intervals") or []),
        active=list(route.get("active_time_intervals") or []),
    )
    found: list[Leaf] = []
    for child in route.get("routes") or []:
        if all(m.matches(labels) for m in matchers(child)):
            found += walk(child, labels, here)
            if not child.get("continue"):
                break
    return found or [here]


@dataclass
class Routing:
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)  # monstack receivers
    expand: dict[str, list[str]] = field(default_factory=dict)  # original receiver -> monstack receivers
    pagers: set[str] = field(default_factory=set)
    root: dict[str, Any] = field(default_factory=dict)
    time_intervals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    interval_names: dict[str, str] = field(default_factory=dict)
    watchdog: Optional[dict[str, Any]] = None

    def reach(self, labels: dict[str, str]) -> tuple[list[str], list[Leaf]]:
        leaves = walk(self.root, labels)
        names: list[str] = []
        for leaf in leaves:
            for r in self.expand.get(leaf.receiver, []):
                if r not in names:
                    names.append(r)
        return names, leaves

    def pages(self, severity: str, team: Optional[str]) -> bool:
        labels = {"severity": severity, **({"team": team} if team else {})}
        return any(r in self.pagers for r in self.reach(labels)[0])

    def level(self, severity: Optional[str], team: Optional[str]) -> Optional[str]:
        """monstack level of an original severity value; critical is P0 where the original pages for it."""
        if severity is None:
            return None
        level = SEVERITY_LEVELS.get(str(severity).lower())
        if level is None and str(severity) in ("P0", "P1", "P2", "P3"):
            level = str(severity)
        if level == "P1" and str(severity).lower() == "critical" and self.root and self.pages(str(severity), team):
            level = "P0"
        return level


def read(src: Optional[Source], report: Report, secrets: Secrets) -> Routing:
    r = Routing()
    if src is None:
        return r
    cfg = src.data or {}
    glob = cfg.get("global") or {}
    r.root = cfg.get("route") or {}
    for i, rec in enumerate(cfg.get("receivers") or []):
        _receiver(r, src, ("receivers", i), rec, glob, report, secrets)
    for key in ("time_intervals", "mute_time_intervals"):
        for i, ti in enumerate(cfg.get(key) or []):
            name = slug(ti.get("name", f"interval-{i}"), "window")
            r.interval_names[ti.get("name")] = name
            r.time_intervals[name] = [_interval(t) for t in ti.get("time_intervals") or []]
    for i, _ in enumerate(cfg.get("inhibit_rules") or []):
        report.add(UNMAPPED, src, ("inhibit_rules", i), "inhibit rule not imported: monstack mutes the lower severity of one problem "
                                                        "(same service and problem) and every other alert of a service that is down")
    if cfg.get("templates"):
        report.add(UNMAPPED, src, ("templates",), "message templates not imported: monstack renders its own (alertmanager/templates/monstack.tmpl)")
    if glob.get("resolve_timeout") not in (None, "5m"):
        report.add(UNMAPPED, src, ("global", "resolve_timeout"), f"resolve_timeout {glob['resolve_timeout']} not imported (monstack: 5m)")
    _routes_report(r, src, r.root, ("route",), report)
    return r


def _routes_report(r: Routing, src: Source, route: dict[str, Any], path: tuple[Any, ...], report: Report) -> None:
    for i, child in enumerate(route.get("routes") or []):
        cpath = path + ("routes", i)
        ms = matchers(child)
        labels = sorted({m.label for m in ms} - {"severity", "team"})
        if any(m.label == "alertname" and any(re.fullmatch(m.value, w) for w in WATCHDOG_NAMES) for m in ms):
            rec = r.expand.get(child.get("receiver", ""), [])
            if rec:
                r.watchdog = {"receiver": rec[0], **({"repeat_interval": child["repeat_interval"]} if child.get("repeat_interval") else {})}
                report.add(NOTE, src, cpath, f"the Watchdog route becomes watchdog: {{receiver: {rec[0]}}}")
            continue
        if labels:
            report.add(UNMAPPED, src, cpath, f"route on {', '.join(labels)} not imported: monstack routes by severity and team only; "
                                             "these alerts follow their team and severity")
        _routes_report(r, src, child, cpath, report)


def _interval(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t[k] for k in ("times", "weekdays", "days_of_month", "months", "years", "location") if k in t}


def _secret(value: Any, where: tuple[Any, ...], name: str, secrets: Secrets, src: Source, report: Report) -> str:
    ref = secrets.add(str(value).strip(), name)
    report.add(NOTE, src, where, f"inline secret moved to {ref} (mode 600)")
    return ref


def _receiver(r: Routing, src: Source, path: tuple[Any, ...], rec: dict[str, Any], glob: dict[str, Any], report: Report, secrets: Secrets) -> None:
    name = rec.get("name", "")
    base = slug(name, "receiver")
    made: list[str] = []
    configs = [(key, i, cfg) for key in sorted(k for k in rec if k.endswith("_configs")) for i, cfg in enumerate(rec[key] or [])]
    for n, (key, i, cfg) in enumerate(configs):
        rname = base if n == 0 else f"{base}-{n + 1}"
        where = path + (key, i)
        out = _config(key, cfg, rname, where, glob, src, report, secrets)
        if out is None:
            continue
        r.receivers[rname] = out
        made.append(rname)
        if out["type"] in PAGER_TYPES:
            r.pagers.add(rname)
    if not configs:
        report.add(NOTE, src, path, f"receiver {name!r} has no integrations (drops alerts); where it is used, the policy's receivers are used instead")
    r.expand[name] = made


def _config(key: str, cfg: dict[str, Any], rname: str, where: tuple[Any, ...], glob: dict[str, Any], src: Source,
            report: Report, secrets: Secrets) -> Optional[dict[str, Any]]:
    resolved = cfg.get("send_resolved")
    if key == "slack_configs":
        out: dict[str, Any] = {"type": "slack"}
        if cfg.get("api_url"):
            out["webhook_url_file"] = _secret(cfg["api_url"], where + ("api_url",), f"{rname}_slack_webhook_url", secrets, src, report)
        elif cfg.get("api_url_file"):
            out["webhook_url_file"] = cfg["api_url_file"]
        elif glob.get("slack_api_url"):
            out["webhook_url_file"] = _secret(glob["slack_api_url"], ("global", "slack_api_url"), "slack_webhook_url", secrets, src, report)
        elif glob.get("slack_api_url_file"):
            out["webhook_url_file"] = glob["slack_api_url_file"]
        else:
            report.add(UNMAPPED, src, where, "slack receiver without api_url not imported")
            return None
        channel = str(cfg.get("channel") or "")
        if not re.match(r"^[#@][a-z0-9._-]+$", channel):
            report.add(NOTE, src, where + ("channel",), f"channel {channel or '(none)'!r} is not a #channel; using #alerts")
            channel = "#alerts"
        out["channel"] = channel
        out["send_resolved"] = bool(resolved) if resolved is not None else False  # Alertmanager's slack default
        _dropped(cfg, ("api_url", "api_url_file", "channel", "send_resolved"), where, src, report)
        return out
    if key == "pagerduty_configs":
        out = {"type": "pagerduty"}
        if cfg.get("routing_key"):
            out["routing_key_file"] = _secret(cfg["routing_key"], where + ("routing_key",), f"{rname}_pagerduty_routing_key", secrets, src, report)
        elif cfg.get("routing_key_file"):
            out["routing_key_file"] = cfg["routing_key_file"]
        elif cfg.get("service_key") or cfg.get("service_key_file"):
            report.add(NOTE, src, where, "service_key (Events API v1) imported as routing_key (Events API v2): use an Events v2 integration key")
            out["routing_key_file"] = (cfg["service_key_file"] if cfg.get("service_key_file") else
                                       _secret(cfg["service_key"], where + ("service_key",), f"{rname}_pagerduty_routing_key", secrets, src, report))
        else:
            report.add(UNMAPPED, src, where, "pagerduty receiver without routing_key not imported")
            return None
        url = cfg.get("url") or glob.get("pagerduty_url")
        if url and "events.pagerduty.com" not in str(url):
            out["url"] = str(url)
        out["send_resolved"] = bool(resolved) if resolved is not None else True
        _dropped(cfg, ("routing_key", "routing_key_file", "service_key", "service_key_file", "url", "send_resolved"), where, src, report)
        return out
    if key == "email_configs":
        to = [a.strip() for a in str(cfg.get("to", "")).split(",") if a.strip()]
        sender = cfg.get("from") or glob.get("smtp_from")
        smarthost = cfg.get("smarthost") or glob.get("smtp_smarthost")
        if not to or not sender or not smarthost:
            report.add(UNMAPPED, src, where, "email receiver without to, from or smarthost not imported")
            return None
        out = {"type": "email", "to": to, "from": str(sender), "smarthost": str(smarthost)}
        user = cfg.get("auth_username") or glob.get("smtp_auth_username")
        if user:
            out["auth_username"] = str(user)
            password = cfg.get("auth_password") or glob.get("smtp_auth_password")
            password_file = cfg.get("auth_password_file") or glob.get("smtp_auth_password_file")
            if password:
                out["auth_password_file"] = _secret(password, where + ("auth_password",), "smtp_password", secrets, src, report)
            elif password_file:
                out["auth_password_file"] = str(password_file)
            else:
                report.add(NOTE, src, where, "SMTP user without a password: auth dropped")
                del out["auth_username"]
        tls = cfg.get("require_tls", glob.get("smtp_require_tls"))
        if tls is not None:
            out["require_tls"] = bool(tls)
        out["send_resolved"] = bool(resolved) if resolved is not None else False
        _dropped(cfg, ("to", "from", "smarthost", "auth_username", "auth_password", "auth_password_file", "require_tls", "send_resolved"),
                 where, src, report)
        return out
    if key == "webhook_configs":
        url = cfg.get("url")
        if not url:
            report.add(UNMAPPED, src, where, "webhook receiver without url (url_file) not imported: monstack needs the URL")
            return None
        out = {"type": "webhook", "url": str(url)}
        http = cfg.get("http_config") or {}
        auth = http.get("authorization") or {}
        token = auth.get("credentials") or http.get("bearer_token")
        token_file = auth.get("credentials_file") or http.get("bearer_token_file")
        if token:
            out["bearer_token_file"] = _secret(token, where + ("http_config",), f"{rname}_bearer_token", secrets, src, report)
        elif token_file:
            out["bearer_token_file"] = str(token_file)
        if cfg.get("max_alerts"):
            out["max_alerts"] = int(cfg["max_alerts"])
        out["send_resolved"] = bool(resolved) if resolved is not None else True
        _dropped(cfg, ("url", "http_config", "max_alerts", "send_resolved"), where, src, report)
        return out
    report.add(UNMAPPED, src, where, f"{key[:-len('_configs')]} receiver not imported: monstack sends to Slack, PagerDuty, email and webhooks")
    return None


def _dropped(cfg: dict[str, Any], known: tuple[str, ...], where: tuple[Any, ...], src: Source, report: Report) -> None:
    extra = sorted(k for k in cfg if k not in known)
    if extra:
        report.add(NOTE, src, where, f"{', '.join(extra)} not imported: monstack's templates and settings replace them")


def policy(r: Routing, teams: dict[str, str], report: Report, src: Optional[Source], fallback: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The severities section and team overrides: where each level (per team) was delivered originally."""
    severities: dict[str, Any] = {}
    for level in ("P0", "P1", "P2", "P3"):
        names, leaves = r.reach({"severity": LEVEL_SOURCE[level]}) if r.root else ([], [])
        if not names and leaves:
            report.add(NOTE, src, ("route",), f"{LEVEL_SOURCE[level]} alerts ({level}) reach no integration in the original "
                                              f"(a receiver without configs); monstack sends them to {', '.join(fallback)}")
        names = names or fallback
        entry: dict[str, Any] = {"receivers": names}
        if leaves:
            leaf = leaves[0]
            timing = {k: v for k, v in (("group_wait", leaf.group_wait), ("group_interval", leaf.group_interval),
                                        ("repeat_interval", leaf.repeat_interval)) if v}
            entry.update(timing)
            if leaf.group_by and list(leaf.group_by) != list(defaults.GROUP_BY):
                if "..." in leaf.group_by:
                    report.add(UNMAPPED, src, ("route", "group_by"), "group_by: ['...'] (no grouping) not imported; monstack groups by alertname, service")
                else:
                    entry["group_by"] = list(leaf.group_by)
            entry["active_time_intervals"] = [r.interval_names.get(n, slug(n, "window")) for n in leaf.active]
            if leaf.mute:
                entry["mute_time_intervals"] = [r.interval_names.get(n, slug(n, "window")) for n in leaf.mute]
        severities[level] = entry
    team_out: dict[str, dict[str, Any]] = {}
    for team, team_slug in teams.items():
        own: dict[str, list[str]] = {}
        for level in ("P0", "P1", "P2", "P3"):
            names, leaves = r.reach({"severity": LEVEL_SOURCE[level], "team": team}) if r.root else ([], [])
            if names and names != severities[level]["receivers"]:
                own[level] = names
            differs = sorted({k for leaf in leaves for k in ("group_wait", "group_interval", "repeat_interval")
                              if getattr(leaf, k) and getattr(leaf, k) != severities[level].get(k)})
            if differs and level != "P0":  # P0 and P1 route alike (critical); say it once
                report.add(NOTE, src, ("route",), f"team {team_slug}, {LEVEL_SOURCE[level]}: its own {', '.join(differs)} not imported "
                                                  f"(monstack times a level the same for every team)")
        team_out[team_slug] = {"receivers": own} if own else {}
    return severities, team_out


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))
