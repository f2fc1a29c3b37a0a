"""Alert rules -> catalogue alerts (with their threshold and `for`) or custom rules that keep the expression.

A rule maps to a catalogue alert only when its PromQL has the alert's shape,
whatever the spelling (percentages or ratios, either side of the comparison,
`1 - x > t` or `x < 1 - t`) and reads the same metrics with nothing extra in
the selectors; anything else stays the user's expression. Recording rules are
not imported: an alert that reads one gets its expression inlined.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeGuard

from generator import alerttext, catalogue, names
from generator.importer import promql as P
from generator.importer.report import CUSTOM, MAPPED, NOTE, UNMAPPED, Report
from generator.importer.routing import WATCHDOG_NAMES, Routing
from generator.importer.scrape import Jobs, Svc
from generator.inventory.yamlsource import Source

FIVE_MINUTES = 300.0


@dataclass
class Shape:
    """A catalogue alert recognised in an expression."""

    family: str  # the alert, or the problem whose tiers are picked by severity
    threshold: Optional[float]
    kinds: tuple[str, ...]  # service kinds it applies to ("*": any scraped service)
    metrics: dict[str, Any] = field(default_factory=dict)  # settings the service needs (http metric names)
    host: dict[str, Any] = field(default_factory=dict)
    note: str = ""


TIERS = {
    "HttpErrorRatio": {"P0": "HttpErrorRatioCritical", "*": "HttpErrorRatioHigh"},
    "HttpLatencyP95": {"P0": "HttpLatencyP95High", "P1": "HttpLatencyP95High", "*": "HttpLatencyP95Warning"},
    "HttpLatencyP99": {"P0": "HttpLatencyP99High", "P1": "HttpLatencyP99High", "*": "HttpLatencyP99Warning"},
    "HostDiskSpace": {"P0": "HostDiskSpaceLow", "P1": "HostDiskSpaceLow", "*": "HostDiskSpaceWarning"},
    "TlsCertificate": {"P0": "TlsCertificateExpiringSoon", "P1": "TlsCertificateExpiringSoon", "*": "TlsCertificateExpiring"},
}


def alert_name(family: str, level: str) -> str:
    tiers = TIERS.get(family)
    return family if tiers is None else tiers.get(level, tiers["*"])


def _plain(s: P.Term, name: str, allowed: tuple[str, ...] = ("job",), rng: Optional[float] = None) -> TypeGuard[P.Sel]:
    """A selector of `name` whose matchers use only the allowed labels (the rest would change which series it reads)."""
    return (isinstance(s, P.Sel) and s.name == name and s.offset is None and s.range == rng
            and all(lb in allowed for lb, _, _ in s.matchers))


def _rate(t: P.Term, name: Optional[str] = None, allowed: tuple[str, ...] = ("job",)) -> Optional[P.Sel]:
    if isinstance(t, P.Call) and t.func == "rate" and len(t.args) == 1 and isinstance(t.args[0], P.Sel):
        s = t.args[0]
        if s.range == FIVE_MINUTES and s.offset is None and (name is None or s.name == name) and all(lb in allowed for lb, _, _ in s.matchers):
            return s
    return None


def _mountpoints(s: P.Sel) -> dict[str, Any]:
    m = s.matcher("mountpoint")
    if m is None:
        return {}
    op, value = m
    return {"mountpoints": re.escape(value) if op == "=" else value} if op in ("=", "=~") else {"unmapped": True}


def recognise(core: P.Term, op: str, t: float) -> Optional[Shape]:
    """The catalogue alert `core op t` is, if any."""
    down = (op, t) in (("==", 0.0), ("<", 1.0), ("<=", 0.0))
    if down and _plain(core, "up"):
        return Shape("TargetDown", None, ("*",))
    if down and _plain(core, "probe_success", ("job", "instance")):
        return Shape("HealthProbeFailing", None, ("probe", "*"))
    if down and _plain(core, "pg_up"):
        return Shape("PostgresDown", None, ("postgres",))
    if down and _plain(core, "redis_up"):
        return Shape("RedisDown", None, ("redis",))
    if isinstance(core, P.Bin) and core.op == "/" and not core.matching:
        a, b = core.lhs, core.rhs
        node = ("job", "instance")
        if op in ("<", "<=") and _plain(a, "node_memory_MemAvailable_bytes", node) and _plain(b, "node_memory_MemTotal_bytes", node) \
                and a.matchers == b.matchers:
            return Shape("HostMemoryHigh", P.clean(1 - t), ("host",))
        fs = ("job", "instance", "fstype", "mountpoint", "device")
        if op in ("<", "<=") and _plain(a, "node_filesystem_avail_bytes", fs) and _plain(b, "node_filesystem_size_bytes", fs) \
                and a.matchers == b.matchers:
            host = _mountpoints(a)
            if host.pop("unmapped", False):
                return None
            return Shape("HostDiskSpace", t, ("host",), host=host,
                         note="monstack also skips read-only and pseudo filesystems (tmpfs, overlay, ...)")
        err = _error_ratio(a, b)
        if err is not None and op in (">", ">="):
            return Shape("HttpErrorRatio", t, ("http",), metrics=err)
    if isinstance(core, P.Agg) and core.op == "avg" and core.mode == "by" and "instance" in core.labels \
            and set(core.labels) <= {"instance", "job"} and op in ("<", "<="):
        s = _rate(core.expr, "node_cpu_seconds_total", ("job", "instance", "mode"))
        if s is not None and s.matcher("mode") == ("=", "idle"):
            return Shape("HostCpuHigh", P.clean(1 - t), ("host",))
    if isinstance(core, P.Call):
        if core.func == "predict_linear" and len(core.args) == 2 and op == "<" and t == 0 and isinstance(core.args[1], P.Num) \
                and _plain(core.args[0], "node_filesystem_avail_bytes", ("job", "instance", "fstype", "mountpoint", "device"), 6 * 3600):
            host = _mountpoints(core.args[0])
            if not host.pop("unmapped", False):
                return Shape("HostDiskFillsWithin24h", P.clean(core.args[1].value / 3600), ("host",), host=host,
                             note="monstack also requires the filesystem to be below 40% free")
        if core.func == "abs" and len(core.args) == 1 and _plain(core.args[0], "node_timex_offset_seconds", ("job", "instance")) and op in (">", ">="):
            return Shape("HostClockSkew", t, ("host",))
        if _rate(core, "node_disk_io_time_seconds_total", ("job", "instance", "device")) is not None and op in (">", ">="):
            return Shape("HostDiskIoSaturated", t, ("host",))
        if core.func == "histogram_quantile" and len(core.args) == 2 and isinstance(core.args[0], P.Num) and op in (">", ">="):
            q = core.args[0].value
            inner = core.args[1]
            if q in (0.95, 0.99) and isinstance(inner, P.Agg) and inner.op == "sum" and inner.mode == "by" and "le" in inner.labels \
                    and set(inner.labels) <= {"le", "job", "service"}:
                s = _rate(inner.expr)
                if s is not None and s.name and s.name.endswith("_bucket"):
                    return Shape(f"HttpLatencyP{int(round(q * 100))}", t, ("http",), metrics={"duration": s.name[: -len("_bucket")]})
    if isinstance(core, P.Bin) and core.op == "-" and _plain(core.lhs, "probe_ssl_earliest_cert_expiry", ("job", "instance")) \
            and isinstance(core.rhs, P.Call) and core.rhs.func == "time" and op in ("<", "<="):
        return Shape("TlsCertificate", P.clean(t / 86400), ("probe", "*"))
    return None


def _error_ratio(a: P.Term, b: P.Term) -> Optional[dict[str, Any]]:
    """sum(rate(requests{status=~"5.."}[5m])) / sum(rate(requests[5m])), optionally by job: the metric, status label and regex."""
    if not (isinstance(a, P.Agg) and isinstance(b, P.Agg) and a.op == b.op == "sum" and a.mode == b.mode and a.labels == b.labels):
        return None
    if a.mode == "without" or not set(a.labels) <= {"job", "service"}:
        return None
    num = _rate(a.expr, allowed=("job", "status", "code", "status_code"))
    den = _rate(b.expr, allowed=("job",))
    if num is None or den is None or num.name != den.name or num.without("status", "code", "status_code") != den:
        return None
    status = [(lb, op, v) for lb, op, v in num.matchers if lb in ("status", "code", "status_code")]
    if len(status) != 1 or status[0][1] not in ("=", "=~"):
        return None
    label, op, value = status[0]
    return {"requests": num.name, "status_label": label, "error_status": re.escape(value) if op == "=" else value}


# --- applying rules to services ---------------------------------------------------------------


def jobs_of(term: P.Term, known: list[str]) -> set[str]:
    """Original job names the expression names (= matchers, and regex matchers against the known jobs)."""
    found: set[str] = set()
    for s in P.selectors(term):
        m = s.matcher("job")
        if m is None:
            continue
        op, value = m
        if op == "=":
            found.add(value)
        elif op == "=~":
            found |= {j for j in known if re.fullmatch(value, j)}
    return found


FAMILY_KINDS = {"host": "node_", "postgres": "pg_", "redis": "redis_", "probe": "probe_"}


def _verbatim(text: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that inserts text as is: an expression's backslashes are not template escapes."""
    return lambda _m: text


def inline_records(text: str, records: dict[str, str]) -> Optional[str]:
    """The expression with every recording rule it reads replaced by the rule's expression; None if one carries matchers."""
    for name, expr in records.items():
        pattern = re.compile(r"(?<![A-Za-z0-9_:])" + re.escape(name) + r"(?![A-Za-z0-9_:])(\s*\{[^}]*\})?")
        for m in pattern.finditer(text):
            if m.group(1) and m.group(1).strip() != "{}":
                return None
        text = pattern.sub(_verbatim(f"({expr})"), text)
    return text


@dataclass
class Context:
    jobs: Jobs
    routing: Routing
    report: Report
    records: dict[str, str]
    rules_only: Callable[[str], Svc]  # a rules-only service for rules no job owns


def apply(src: Source, ctx: Context) -> None:
    for gi, group in enumerate((src.data or {}).get("groups") or []):
        for ri, rule in enumerate(group.get("rules") or []):
            path = ("groups", gi, "rules", ri)
            if "alert" in rule:
                _alert(src, path, rule, ctx)


def _level(rule: dict[str, Any], team: Optional[str], ctx: Context, src: Source, path: tuple[Any, ...]) -> str:
    sev = (rule.get("labels") or {}).get("severity")
    level = ctx.routing.level(sev, team) if sev is not None else None
    if level is None:
        ctx.report.add(NOTE, src, path + ("labels",), f"severity {sev!r} is not critical, warning or info: imported as P2")
        return "P2"
    return level


def _alert(src: Source, path: tuple[Any, ...], rule: dict[str, Any], ctx: Context) -> None:
    name = str(rule["alert"])
    text = str(rule.get("expr", "")).strip()
    if name in WATCHDOG_NAMES and re.fullmatch(r"vector\(\s*1\s*\)", text):
        ctx.report.add(MAPPED, src, path, f"alert {name} -> monstack's own always-firing Watchdog (routed by watchdog:)")
        return
    inlined = inline_records(text, ctx.records)
    if inlined is None:
        ctx.report.add(UNMAPPED, src, path, f"alert {name} not imported: it reads a recording rule with label matchers ({text})")
        return
    if inlined != text:
        ctx.report.add(NOTE, src, path, f"alert {name} reads recording rules: their expressions are inlined")
    text = inlined
    try:
        term = P.parse(text)
    except ValueError as exc:
        ctx.report.add(UNMAPPED, src, path, f"alert {name} not imported: its expression does not parse ({exc})")
        return
    known = [s.job for s in ctx.jobs.services]
    named_jobs = jobs_of(term, known)
    team_label = (rule.get("labels") or {}).get("team")
    cmp = P.comparison(term)
    shape = recognise(*cmp) if cmp else None
    if shape is not None:
        targets = _targets(shape, named_jobs, ctx)
        mapped = []
        for svc in targets:
            level = _level(rule, team_label or svc.team, ctx, src, path)
            alert = alert_name(shape.family, level)
            if alert in svc.alerts:
                continue
            if shape.metrics and svc.kind == "custom":
                svc.kind = "http"
            if shape.metrics and any(svc.metrics.get(k, v) != v for k, v in shape.metrics.items()):
                continue
            svc.metrics.update(shape.metrics)
            if shape.host and any(svc.host.get(k, v) != v for k, v in shape.host.items()):
                continue
            svc.host.update(shape.host)
            override: dict[str, Any] = {"severity": level, "for": str(rule.get("for", "0s"))}
            if shape.threshold is not None:
                override["threshold"] = shape.threshold
            svc.alerts[alert] = override
            if team_label and not svc.team:
                svc.teams_seen.append(str(team_label))
            mapped.append(f"{svc.name}.{alert}")
            guard = catalogue.get(alert).min_rate
            if guard:
                ctx.report.add(NOTE, src, path, f"alert {name} -> {svc.name}.{alert} fires only while the service sees {guard:g} events/s "
                                                 f"or more (the catalogue's minimum traffic); set alerts.{alert}.min_rate: 0 to fire on "
                                                 "any traffic as the original did")
        if mapped:
            extra = f"; {shape.note}" if shape.note else ""
            ctx.report.add(MAPPED, src, path, f"alert {name} -> {', '.join(mapped)} (threshold, for and severity kept; "
                                              f"summary and description are the catalogue's{extra})")
            uncovered = _verbatim_jobs(shape, named_jobs, ctx)
            if not uncovered:
                return
            for svc in uncovered:  # a generic rule over jobs kept as written: the same condition, scoped to that job
                scoped = _scope(text, svc.job)
                if scoped is not None:
                    _custom(src, path, rule, name, scoped, svc, ctx)
            return
    owner = _owner(term, named_jobs, ctx)
    _custom(src, path, rule, name, text, owner, ctx)


def _targets(shape: Shape, named: set[str], ctx: Context) -> list[Svc]:
    pool = [s for s in ctx.jobs.services if not s.verbatim]
    if named:
        pool = [s for s in pool if s.job in named]
    out = []
    for s in pool:
        scraped = s.scrape is not None
        if "*" in shape.kinds and shape.family in ("TargetDown",) and scraped and s.kind != "probe" or shape.family in ("HealthProbeFailing", "TlsCertificate") and s.health or s.kind in shape.kinds or (shape.kinds == ("http",) and s.kind == "custom" and scraped):
            out.append(s)
    if not named and shape.kinds == ("http",) and len(out) > 1:
        return []  # an unscoped HTTP rule over several candidate jobs: which one is the HTTP service is a guess
    return out


def _verbatim_jobs(shape: Shape, named: set[str], ctx: Context) -> list[Svc]:
    if shape.family != "TargetDown":
        return []
    return [s for s in ctx.jobs.services if s.verbatim and not s.rules_only and (not named or s.job in named)]


def _scope(text: str, job: str) -> Optional[str]:
    m = re.fullmatch(r"\s*up\s*(==\s*0|<\s*1)\s*", text)
    return f'up{{job="{job}"}} {m.group(1)}' if m else None


def _owner(term: P.Term, named: set[str], ctx: Context) -> Svc:
    if len(named) == 1:
        svc = ctx.jobs.by_job(next(iter(named)))
        if svc is not None:
            return svc
    metric_names = {s.name for s in P.selectors(term) if s.name}
    for kind, prefix in FAMILY_KINDS.items():
        if metric_names and all(n.startswith(prefix) for n in metric_names):
            found = [s for s in ctx.jobs.services if s.kind == kind]
            if len(found) == 1:
                return found[0]
    # Metrics of a well-known exporter belong to its job, even when that job is kept as written.
    for prefix, word in (("node_", "node"), ("container_", "cadvisor"), ("pg_", "postgres"), ("redis_", "redis")):
        if metric_names and all(n.startswith(prefix) for n in metric_names):
            found = [s for s in ctx.jobs.services if word in s.job.lower() and not s.rules_only]
            if len(found) == 1:
                return found[0]
    return ctx.rules_only("imported")


def _rule_name(name: str, svc: Svc, level: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", " ", name).strip()
    camel = "".join(w[:1].upper() + w[1:] for w in base.split()) or "ImportedAlert"
    if not camel[0].isalpha():
        camel = "Alert" + camel
    taken = {r["name"] for r in svc.rules} | set(catalogue.reserved())
    candidate = camel
    for suffix in ("", level, "Custom", "Custom2", "Custom3", "Custom4"):
        candidate = camel + suffix
        if candidate not in taken:
            return candidate
    return candidate + str(len(svc.rules))


def _custom(src: Source, path: tuple[Any, ...], rule: dict[str, Any], name: str, text: str, svc: Svc, ctx: Context) -> None:
    for old, new in ctx.jobs.renamed.items():
        text = P.rename_job(text, old, new)
    level = _level(rule, (rule.get("labels") or {}).get("team") or svc.team, ctx, src, path)
    split = P.split_threshold(text)
    how = ""
    if split is None:
        logic = P.split_logic(text)
        if logic is not None and logic[1].split()[0] in ("and", "unless"):
            inner = P.split_threshold(logic[0])
            if inner is not None:
                # (X op c) and Y == (X and Y) op c: `and`/`unless` only filter, keeping the left side's values.
                split = (f"{inner[0]} {logic[1]} ({P.strip_parens(logic[2])})", inner[1], inner[2])
                how = " (the filter moved inside the comparison)"
    if split is None:
        try:
            t = P.parse(text)
        except ValueError:
            t = None
        if isinstance(t, P.Call) and t.func == "absent":
            _absent(src, path, rule, name, t, svc, ctx)
            return
    if split is None:
        ctx.report.add(UNMAPPED, src, path, f"alert {name} not imported: monstack keeps expressions of the form `EXPR OP NUMBER`, "
                                            f"and this one is not ({text}); write it as a threshold rule by hand")
        return
    expr, op, threshold = split
    rname = _rule_name(name, svc, level)
    out: dict[str, Any] = {"name": rname, "type": "threshold", "expr": expr, "op": op, "threshold": P.clean(threshold),
                           "severity": level, "for": str(rule.get("for", "0s"))}
    ann = rule.get("annotations") or {}
    for key, limit in (("summary", 300), ("description", 2000)):
        value = ann.get(key) or (ann.get("message") if key == "summary" else None)
        if value:
            value = str(value).strip()
            why = alerttext.check(value)
            if why or len(value) > limit:
                ctx.report.add(NOTE, src, path + ("annotations", key), f"{key} not imported: {why or f'longer than {limit}'}")
            else:
                out[key] = value
    dropped = sorted(k for k in (rule.get("labels") or {}) if k not in ("severity", "team"))
    if dropped:
        ctx.report.add(NOTE, src, path + ("labels",), f"labels {', '.join(dropped)} not imported: monstack labels alerts with service, team, env, problem")
    if rule.get("keep_firing_for"):
        ctx.report.add(NOTE, src, path + ("keep_firing_for",), "keep_firing_for not imported")
    team_label = (rule.get("labels") or {}).get("team")
    if team_label and not svc.team:
        svc.teams_seen.append(str(team_label))
    svc.rules.append(out)
    renamed = f" as {rname}" if rname != name else ""
    ctx.report.add(CUSTOM, src, path, f"alert {name} -> {svc.name}.rules{renamed}: {expr} {op} {out['threshold']}{how}")


def _absent(src: Source, path: tuple[Any, ...], rule: dict[str, Any], name: str, t: P.Call, svc: Svc, ctx: Context) -> None:
    """absent(metric{job=...}) of a scraped service is monstack's absent rule (scoped to the service's series)."""
    sel = t.args[0] if t.args else None
    if not (isinstance(sel, P.Sel) and sel.range is None and sel.offset is None and sel.name
            and all(lb == "job" and op == "=" and v == svc.job for lb, op, v in sel.matchers)) or svc.scrape is None:
        ctx.report.add(UNMAPPED, src, path, f"alert {name} not imported: absent() over other labels than its own job's "
                                            f"({rule.get('expr')}); monstack's absent rule watches a metric of one scraped service")
        return
    if sel.name == "up":
        ctx.report.add(NOTE, src, path, f"alert {name} not imported: a static target always has an up series; "
                                        f"{svc.name}.TargetDown fires when its scrape fails")
        return
    level = _level(rule, (rule.get("labels") or {}).get("team") or svc.team, ctx, src, path)
    rname = _rule_name(name, svc, level)
    out: dict[str, Any] = {"name": rname, "type": "absent", "metric": sel.name, "severity": level, "for": str(rule.get("for", "0s"))}
    summary = (rule.get("annotations") or {}).get("summary")
    if summary and not alerttext.check(str(summary).strip()) and len(str(summary)) <= 300:
        out["summary"] = str(summary).strip()
    svc.rules.append(out)
    ctx.report.add(CUSTOM, src, path, f"alert {name} -> {svc.name}.rules{'' if rname == name else ' as ' + rname}: absent rule on {sel.name}")


def tiers_that_never_matter(svc: Svc, report: Report) -> None:
    """Catalogue tiers the original did not have stay at their defaults, unless a tier it had makes one repeat or undercut
    it (thresholds of one problem rise with severity, or the lower tier never matters): those are disabled, and said so.

    E.g. an original "error ratio above 5%" that notifies at P1 becomes HttpErrorRatioHigh at 5%; HttpErrorRatioCritical's
    default (P0 above 5%) would page at the very same moment, which the original never did.
    """
    defs = catalogue.for_kind(svc.kind)
    imported = [(d, svc.alerts[d.name]) for d in defs if "threshold" in svc.alerts.get(d.name, {})]
    for d in defs:
        if d.name in svc.alerts or d.threshold is None or d.op not in (">", ">=", "<", "<="):
            continue
        for other, o in imported:
            if other.problem_label != d.problem_label or (other.op in (">", ">=")) != (d.op in (">", ">=")):
                continue
            mine, theirs = names.LEVELS.index(d.severity), names.LEVELS.index(o["severity"])
            high, low = (d.threshold, o["threshold"]) if mine < theirs else (o["threshold"], d.threshold)
            rises = high > low if d.op in (">", ">=") else high < low
            if mine == theirs or not rises:
                svc.alerts[d.name] = {"disabled": True}
                report.add(NOTE, None, (), f"{svc.name}.{d.name} disabled: its default ({d.severity}, threshold {d.threshold:g}) would "
                                           f"repeat or undercut the imported {other.name} ({o['severity']}, threshold {o['threshold']:g}), "
                                           "and the tiers of one problem must rise with severity")
                break
