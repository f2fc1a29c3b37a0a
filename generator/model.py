"""The resolved model: defaults applied, references checked, PromQL parsed.

Renderers read only this module's types. Nothing here reads or writes files
except `resolve`'s use of the Source it is given for line numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Union

import promql_parser

from generator import catalogue, defaults, names
from generator.durations import Duration, parse_duration
from generator.errors import InventoryError, Problem
from generator.inventory import policy, regex, schema
from generator.inventory.yamlsource import Source

# --- receivers ---------------------------------------------------------------


@dataclass(frozen=True)
class SlackReceiver:
    name: str
    webhook_url_file: str
    channel: str
    send_resolved: bool


@dataclass(frozen=True)
class PagerDutyReceiver:
    name: str
    routing_key_file: str
    url: str | None
    send_resolved: bool


@dataclass(frozen=True)
class EmailReceiver:
    name: str
    to: tuple[str, ...]
    sender: str
    smarthost: str
    auth_username: str | None
    auth_password_file: str | None
    require_tls: bool
    send_resolved: bool


@dataclass(frozen=True)
class WebhookReceiver:
    name: str
    url: str
    bearer_token_file: str | None
    max_alerts: int
    send_resolved: bool


Receiver = Union[SlackReceiver, PagerDutyReceiver, EmailReceiver, WebhookReceiver]


# --- policy ------------------------------------------------------------------


@dataclass(frozen=True)
class LevelPolicy:
    level: str
    receivers: tuple[str, ...]
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    active_time_intervals: tuple[str, ...]
    mute_time_intervals: tuple[str, ...]
    group_by: tuple[str, ...] = defaults.GROUP_BY


@dataclass(frozen=True)
class TimeRange:
    start_time: str
    end_time: str


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[TimeRange, ...]
    weekdays: tuple[str, ...]
    days_of_month: tuple[str, ...]
    months: tuple[str, ...]
    years: tuple[str, ...]
    location: str | None


@dataclass(frozen=True)
class Watchdog:
    receiver: str
    repeat_interval: Duration


@dataclass(frozen=True)
class Team:
    name: str
    receivers: Mapping[str, tuple[str, ...]]  # level -> receivers, the policy's unless the team overrides
    overridden: frozenset[str]  # levels the team overrides
    mute_time_intervals: tuple[str, ...]


# --- services ----------------------------------------------------------------


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password_file: str


@dataclass(frozen=True)
class Tls:
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    server_name: str | None
    insecure_skip_verify: bool


@dataclass(frozen=True)
class Scrape:
    targets: tuple[str, ...]
    path: str
    scheme: str
    interval: Duration
    timeout: Duration
    labels: Mapping[str, str]
    honor_labels: bool
    basic_auth: BasicAuth | None
    tls: Tls | None


@dataclass(frozen=True)
class Probe:
    name: str
    url: str
    module: str
    max_duration: Duration | None


@dataclass(frozen=True)
class Slo:
    availability: float | None  # percent
    latency_threshold: Duration | None
    latency_percentile: float | None  # percent of requests that must be faster
    window: Duration

    @property
    def error_budget(self) -> float | None:
        return None if self.availability is None else round(1 - self.availability / 100, 10)

    @property
    def latency_budget(self) -> float | None:
        return None if self.latency_percentile is None else round(1 - self.latency_percentile / 100, 10)


@dataclass(frozen=True)
class AlertSetting:
    """One catalogue alert for one service, overrides applied."""

    name: str
    severity: str
    threshold: float | None
    for_: Duration


@dataclass(frozen=True)
class CustomRule:
    name: str
    problem: str
    type: str
    severity: str
    for_: Duration
    summary: str | None
    description: str | None
    expr: str | None = None
    metric: str | None = None
    label: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    window: Duration | None = None
    lookback: Duration | None = None
    op: str | None = None
    threshold: float | None = None
    unit: str | None = None  # Grafana unit of the rule's dashboard panel


@dataclass(frozen=True)
class HttpMetrics:
    requests: str
    duration: str
    status_label: str
    route_label: str
    error_status: str
    db_pool_size: str | None = None
    db_pool_available: str | None = None
    db_query_duration: str | None = None


@dataclass(frozen=True)
class WorkerMetrics:
    queue_depth: str
    jobs: str
    status_label: str
    failed_value: str
    duration: str
    queue_label: str | None = "queue"


@dataclass(frozen=True)
class HostSettings:
    mountpoints: str
    exclude_fstypes: str
    exclude_disk_devices: str
    exclude_network_devices: str


@dataclass(frozen=True)
class Service:
    name: str
    team: str
    kind: str
    description: str | None
    scrape: Scrape | None
    probes: tuple[Probe, ...]
    slo: Slo | None
    metrics: HttpMetrics | WorkerMetrics | None
    memory_limit_bytes: int | None
    cpu_limit: float | None
    labels: Mapping[str, str]
    runbook_base: str | None
    dashboard_url: str | None
    rules: tuple[CustomRule, ...]
    alerts: tuple[AlertSetting, ...] = ()  # enabled catalogue alerts, in catalogue order
    host: HostSettings | None = None  # host services only
    disabled_alerts: tuple[str, ...] = ()

    def alert(self, name: str) -> AlertSetting | None:
        return next((a for a in self.alerts if a.name == name), None)


# --- stack -------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteWrite:
    name: str
    url: str
    basic_auth: BasicAuth | None
    bearer_token_file: str | None


@dataclass(frozen=True)
class Stack:
    name: str
    environment: str
    scrape_interval: Duration
    scrape_timeout: Duration
    evaluation_interval: Duration
    retention_time: Duration
    retention_size: str | None
    external_labels: Mapping[str, str]
    prometheus_url: str
    alertmanager_url: str
    grafana_url: str
    runbooks_url: str | None
    prometheus_replicas: int
    alertmanager_replicas: int
    remote_write: tuple[RemoteWrite, ...]
    timezone: str = defaults.TIMEZONE  # of built-in time intervals


@dataclass(frozen=True)
class Model:
    source: str  # the inventory's file name, for "generated from" headers
    stack: Stack
    receivers: Mapping[str, Receiver]
    default_receiver: str
    levels: Mapping[str, LevelPolicy]
    time_intervals: Mapping[str, tuple[TimeInterval, ...]]
    mute_time_intervals: tuple[str, ...]
    watchdog: Watchdog | None
    teams: Mapping[str, Team]
    services: tuple[Service, ...]
    secret_files: tuple[str, ...] = field(default=())  # every *_file the inventory references, sorted
    warnings: tuple[Problem, ...] = field(default=())  # accepted, but worth saying (generator/inventory/policy.py)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def receiver_secret_files(self) -> list[str]:
        """The secret files Alertmanager reads (webhook URLs, routing keys, passwords, tokens), sorted."""
        refs: set[str] = set()
        for r in self.receivers.values():
            if isinstance(r, SlackReceiver):
                refs.add(r.webhook_url_file)
            elif isinstance(r, PagerDutyReceiver):
                refs.add(r.routing_key_file)
            elif isinstance(r, EmailReceiver) and r.auth_password_file:
                refs.add(r.auth_password_file)
            elif isinstance(r, WebhookReceiver) and r.bearer_token_file:
                refs.add(r.bearer_token_file)
        return sorted(refs)


# --- resolution --------------------------------------------------------------

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def parse_bytes(text: str) -> int:
    m = re.match(r"^([0-9.]+)([A-Za-z]+)$", text)
    assert m, text  # the schema has already checked the spelling
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2)])


def check_promql(expr: str, selector: bool = False) -> str | None:
    """None if expr parses (as a plain series selector, if asked), else the parser's message."""
    try:
        parsed = promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        return str(exc) or "does not parse"
    if selector and type(parsed).__name__ != "VectorSelector":
        return "must be a series selector such as orders_created_total{status=\"ok\"}, without functions or ranges"
    return None


class _Resolver:
    def __init__(self, inv: schema.Inventory, src: Source):
        self.inv = inv
        self.src = src
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.src.problem(path, message))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        self.warnings.append(self.src.problem(path, message))

    def unique(self, path: tuple[Any, ...], items: list[str], what: str) -> None:
        """A name listed twice would notify twice (each route is its own notification group)."""
        for i, item in enumerate(items):
            if items.index(item) != i:
                self.problem(path + (i,), f"{what} {item!r} is listed twice")

    def promql(self, path: tuple[Any, ...], expr: str | None, selector: bool = False) -> None:
        if expr is not None and (err := check_promql(expr, selector) or regex.promql_problem(expr)):
            self.problem(path, f"invalid PromQL: {err} (in {expr!r})")

    # ---------------------------------------------------------------------

    def run(self) -> Model:
        inv = self.inv
        stack = self.stack(inv.stack)
        receivers = {name: self.receiver(name, r) for name, r in inv.receivers.items()}
        intervals = {name: tuple(self.interval(t) for t in ts) for name, ts in inv.time_intervals.items()}
        levels = self.levels(receivers, intervals)
        if names.BUSINESS_HOURS not in intervals and any(names.BUSINESS_HOURS in p.active_time_intervals for p in levels.values()):
            intervals[names.BUSINESS_HOURS] = (_business_hours(stack.timezone),)
        default_receiver = inv.default_receiver
        if default_receiver is None:
            default_receiver = levels["P1"].receivers[0]
        watchdog = None
        if inv.watchdog:
            watchdog = Watchdog(inv.watchdog.receiver, parse_duration(inv.watchdog.repeat_interval))
        teams = {name: self.team(name, t, levels, receivers, intervals) for name, t in inv.teams.items()}
        services = self.services(stack, teams)
        for path, message, fatal in policy.problems(inv, intervals, levels, services):
            (self.problem if fatal else self.warn)(path, message)
        if self.problems:
            raise InventoryError(self.problems)
        return Model(
            source=self.src.file.rsplit("/", 1)[-1],
            stack=stack,
            receivers=receivers,
            default_receiver=default_receiver,
            levels=levels,
            time_intervals=intervals,
            mute_time_intervals=tuple(inv.mute_time_intervals),
            watchdog=watchdog,
            teams=teams,
            services=services,
            secret_files=tuple(sorted(_secret_files(inv))),
            warnings=tuple(sorted(set(self.warnings))),
        )

    def stack(self, s: schema.Stack) -> Stack:
        scrape_interval = parse_duration(s.scrape_interval)
        scrape_timeout = parse_duration(s.scrape_timeout)
        if scrape_timeout > scrape_interval:
            self.problem(("stack", "scrape_timeout"), f"must not exceed scrape_interval ({s.scrape_interval}) (got {s.scrape_timeout})")
        for key in s.external_labels:
            if key in (names.SERVICE, names.TEAM, names.SEVERITY):
                self.problem(("stack", "external_labels", key), f"{key!r} is set by monstack on every series; pick another name")
        seen: set[str] = set()
        for i, rw in enumerate(s.remote_write):
            if rw.name in seen:
                self.problem(("stack", "remote_write", i, "name"), f"duplicate remote_write name {rw.name!r}")
            seen.add(rw.name)
        return Stack(
            name=s.name,
            environment=s.environment,
            scrape_interval=scrape_interval,
            scrape_timeout=scrape_timeout,
            evaluation_interval=parse_duration(s.evaluation_interval),
            retention_time=parse_duration(s.retention.time),
            retention_size=s.retention.size,
            external_labels=dict(s.external_labels),
            prometheus_url=s.urls.prometheus.rstrip("/"),
            alertmanager_url=s.urls.alertmanager.rstrip("/"),
            grafana_url=s.urls.grafana.rstrip("/"),
            runbooks_url=s.urls.runbooks.rstrip("/") if s.urls.runbooks else None,
            prometheus_replicas=s.replicas.prometheus,
            alertmanager_replicas=s.replicas.alertmanager,
            timezone=s.timezone,
            remote_write=tuple(
                RemoteWrite(rw.name, rw.url, _basic_auth(rw.basic_auth), rw.bearer_token_file) for rw in s.remote_write
            ),
        )

    def receiver(self, name: str, r: Any) -> Receiver:
        if isinstance(r, schema.SlackReceiver):
            return SlackReceiver(name, r.webhook_url_file, r.channel, r.send_resolved)
        if isinstance(r, schema.PagerDutyReceiver):
            return PagerDutyReceiver(name, r.routing_key_file, r.url, r.send_resolved)
        if isinstance(r, schema.EmailReceiver):
            return EmailReceiver(name, tuple(r.to), r.from_, r.smarthost, r.auth_username, r.auth_password_file, r.require_tls, r.send_resolved)
        return WebhookReceiver(name, r.url, r.bearer_token_file, r.max_alerts, r.send_resolved)

    def interval(self, t: schema.TimeInterval) -> TimeInterval:
        return TimeInterval(
            times=tuple(TimeRange(r.start_time, r.end_time) for r in t.times),
            weekdays=tuple(t.weekdays),
            days_of_month=tuple(t.days_of_month),
            months=tuple(t.months),
            years=tuple(t.years),
            location=t.location,
        )

    def levels(self, receivers: Mapping[str, Receiver], intervals: Mapping[str, Any]) -> dict[str, LevelPolicy]:
        out: dict[str, LevelPolicy] = {}
        for level in names.LEVELS:
            policy = self.inv.severities.get(level)
            if policy is None:  # reported with the references (generator/inventory/references.py)
                continue
            base = ("severities", level)
            timing = {k: parse_duration(getattr(policy, k) or v) for k, v in defaults.LEVEL_TIMING[level].items()}
            if timing["group_interval"] < timing["group_wait"]:
                self.problem(base + ("group_interval",), f"should not be shorter than group_wait ({timing['group_wait']})")
            self.unique(base + ("receivers",), policy.receivers, "receiver")
            active = policy.active_time_intervals
            if active is None:
                active = defaults.ACTIVE_TIME_INTERVALS.get(level, ())
            out[level] = LevelPolicy(level, tuple(policy.receivers), timing["group_wait"], timing["group_interval"],
                                     timing["repeat_interval"], tuple(active), tuple(policy.mute_time_intervals),
                                     tuple(policy.group_by) if policy.group_by is not None else defaults.GROUP_BY)
        return out

    def team(self, name: str, t: schema.Team, levels: Mapping[str, LevelPolicy], receivers: Mapping[str, Receiver], intervals: Mapping[str, Any]) -> Team:
        for level, rs in t.receivers.items():
            self.unique(("teams", name, "receivers", level), rs, "receiver")
            if not rs:
                self.problem(("teams", name, "receivers", level), "must name at least one receiver (omit the level to use the policy's)")
        resolved = {lv: tuple(t.receivers.get(lv) or (levels[lv].receivers if lv in levels else ())) for lv in names.LEVELS}
        return Team(name, resolved, frozenset(t.receivers), tuple(t.mute_time_intervals))

    def services(self, stack: Stack, teams: Mapping[str, Team]) -> tuple[Service, ...]:
        out: list[Service] = []
        target_owner: dict[tuple[str, str], str] = {}
        for i, s in enumerate(self.inv.services):
            base = ("services", i)
            if s.scrape:
                for j, t in enumerate(s.scrape.targets):
                    key = (t, s.scrape.path)
                    if key in target_owner and target_owner[key] != s.name:
                        self.problem(base + ("scrape", "targets", j), f"target {t}{s.scrape.path} is already scraped by service {target_owner[key]!r}")
                    target_owner.setdefault(key, s.name)
            if s.kind not in ("probe", "custom") and s.scrape is None:
                self.problem(base + ("scrape",), f"a {s.kind} service needs scrape.targets (the {_exporter_hint(s.kind)})")
            if s.kind == "probe" and not s.health:
                self.problem(base + ("health",), "a probe service needs at least one health URL")
            if s.kind == "custom" and s.scrape is None and not s.health:
                self.problem(base + ("scrape",), "a custom service needs scrape.targets or health URLs")
            out.append(self.service(base, s, stack))
        return tuple(out)

    def service(self, base: tuple[Any, ...], s: Any, stack: Stack) -> Service:
        scrape = None
        if s.scrape:
            interval = parse_duration(s.scrape.interval) if s.scrape.interval else stack.scrape_interval
            timeout = parse_duration(s.scrape.timeout) if s.scrape.timeout else min(stack.scrape_timeout, interval)
            if timeout > interval:
                self.problem(base + ("scrape", "timeout"), f"must not exceed the scrape interval ({interval}) (got {timeout})")
            for key in s.scrape.labels:
                if key in (names.SERVICE, names.TEAM, names.ENV, names.KIND, "job", "instance"):
                    self.problem(base + ("scrape", "labels", key), f"{key!r} is set by monstack; pick another label name")
            tls = s.scrape.tls
            scrape = Scrape(
                targets=tuple(s.scrape.targets), path=s.scrape.path, scheme=s.scrape.scheme, interval=interval, timeout=timeout,
                labels=dict(s.scrape.labels), honor_labels=s.scrape.honor_labels, basic_auth=_basic_auth(s.scrape.basic_auth),
                tls=Tls(tls.ca_file, tls.cert_file, tls.key_file, tls.server_name, tls.insecure_skip_verify) if tls else None,
            )
        probes = self.probes(base, s.health)
        slo = None
        if getattr(s, "slo", None):
            slo_in = s.slo
            if slo_in.availability is None and slo_in.latency is None:
                self.problem(base + ("slo",), "an SLO needs availability, latency or both")
            slo = Slo(slo_in.availability, parse_duration(slo_in.latency.threshold) if slo_in.latency else None,
                      slo_in.latency.percentile if slo_in.latency else None, parse_duration(slo_in.window))
        metrics = None
        if isinstance(s, schema.HttpService):
            m = s.metrics
            metrics = HttpMetrics(m.requests, m.duration, m.status_label, m.route_label, m.error_status,
                                  m.db_pool_size, m.db_pool_available, m.db_query_duration)
            self.regex(base + ("metrics", "error_status"), m.error_status, matches="use a regex that matches the error statuses, e.g. 5..",
                       misses="no request could count as successful; use a regex for the error statuses only, e.g. 5..")
        elif isinstance(s, schema.WorkerService):
            m = s.metrics
            metrics = WorkerMetrics(m.queue_depth, m.jobs, m.status_label, m.failed_value, m.duration, m.queue_label)
        host = None
        if isinstance(s, schema.HostService):
            h = s.host
            self.regex(base + ("host", "mountpoints"), h.mountpoints, matches="the disk-space alerts would watch no filesystem")
            for key in ("exclude_fstypes", "exclude_disk_devices", "exclude_network_devices"):
                self.regex(base + ("host", key), getattr(h, key), misses="it excludes everything, so its alerts could never fire")
            host = HostSettings(h.mountpoints, h.exclude_fstypes, h.exclude_disk_devices, h.exclude_network_devices)
        resources = getattr(s, "resources", None)
        for key in s.labels:
            if key in (names.SERVICE, names.TEAM, names.SEVERITY, "alertname"):
                self.problem(base + ("labels", key), f"{key!r} is set by monstack; pick another label name")
        service = Service(
            name=s.name, team=s.team, kind=s.kind, description=s.description, scrape=scrape, probes=probes, slo=slo,
            metrics=metrics,
            memory_limit_bytes=parse_bytes(resources.memory_limit) if resources and resources.memory_limit else None,
            cpu_limit=resources.cpu_limit if resources else None,
            labels=dict(s.labels), runbook_base=s.links.runbook_base.rstrip("/") if s.links.runbook_base else None,
            dashboard_url=s.links.dashboard, rules=self.rules(base, s.rules, scrape.interval if scrape else stack.scrape_interval), host=host,
        )
        return self.alerts(base, s, service)

    def regex(self, path: tuple[Any, ...], pattern: str, matches: str | None = None, misses: str | None = None) -> None:
        if why := regex.problem(pattern, matches, misses):
            self.problem(path, why)

    def probes(self, base: tuple[Any, ...], health: list[schema.Probe]) -> tuple[Probe, ...]:
        out: list[Probe] = []
        seen: set[str] = set()
        for j, p in enumerate(health):
            scheme = p.url.split("://", 1)[0]
            module = p.module or {"http": "http_2xx", "https": "http_2xx", "tcp": "tcp_connect", "icmp": "icmp", "dns": "dns"}[scheme]
            wants_http = module.startswith("http")
            if wants_http != (scheme in ("http", "https")):
                self.problem(base + ("health", j, "module"), f"module {module} does not fit a {scheme}:// URL")
            name = p.name or ("health" if j == 0 else f"health{j + 1}")
            if name in seen:
                self.problem(base + ("health", j, "name"), f"duplicate probe name {name!r}; give each health URL a distinct name")
            seen.add(name)
            out.append(Probe(name, p.url, module, parse_duration(p.max_duration) if p.max_duration else None))
        return tuple(out)

    def rules(self, base: tuple[Any, ...], rules: list[Any], scrape_interval: Duration) -> tuple[CustomRule, ...]:
        out: list[CustomRule] = []
        for j, r in enumerate(rules):
            path = base + ("rules", j)
            window = r.for_ if r.type == "stalled" else getattr(r, "window", None)
            if window is not None and parse_duration(window) < scrape_interval * 2:
                self.problem(path + ("for" if r.type == "stalled" else "window",),
                             f"{window} holds fewer than two samples of the {scrape_interval} scrape interval, so rate() and "
                             f"increase() over it find nothing: make it at least {scrape_interval * 2} (four intervals are safer)")
            self.promql(path + ("expr",), getattr(r, "expr", None))
            for key in ("numerator", "denominator"):
                self.promql(path + (key,), getattr(r, key, None), selector=True)
            out.append(CustomRule(
                name=r.name, problem=r.problem or r.name, type=r.type, severity=r.severity, for_=parse_duration(r.for_), summary=r.summary, description=r.description,
                expr=getattr(r, "expr", None), metric=getattr(r, "metric", None), label=getattr(r, "label", None),
                numerator=getattr(r, "numerator", None), denominator=getattr(r, "denominator", None),
                window=parse_duration(r.window) if getattr(r, "window", None) else None,
                lookback=parse_duration(r.lookback) if getattr(r, "lookback", None) else None,
                op=getattr(r, "op", None), threshold=getattr(r, "threshold", None), unit=r.unit,
            ))
        return tuple(out)

    def alerts(self, base: tuple[Any, ...], s: Any, service: Service) -> Service:
        applicable = {a.name: a for a in catalogue.for_service(service)}
        known = {a.name for a in catalogue.for_kind(service.kind)}
        custom_names = [r.name for r in service.rules]
        for j, name in enumerate(custom_names):
            if name in known:
                self.problem(base + ("rules", j, "name"), f"{name!r} is a catalogue alert of {service.kind} services; override it under alerts: instead")
            elif name in catalogue.reserved():
                self.problem(base + ("rules", j, "name"), f"{name!r} is the name of a built-in alert; pick another name")
            if custom_names.index(name) != j:
                self.problem(base + ("rules", j, "name"), f"duplicate rule name {name!r}")
        for j, r in enumerate(service.rules):
            for key, message in catalogue.custom.problems(service, r):
                self.problem(base + ("rules", j, key), message)
        for name in s.alerts:
            if name not in known:
                choices = ", ".join(sorted(known)) or "none"
                self.problem(base + ("alerts", name), f"unknown alert {name!r} for a {service.kind} service (known: {choices})")
            elif name not in applicable:
                self.problem(base + ("alerts", name), f"{name} does not apply to this service: {catalogue.get(name).requires}")
        settings: list[AlertSetting] = []
        disabled: list[str] = []
        for a in applicable.values():
            o = s.alerts.get(a.name)
            if o and o.disabled:
                disabled.append(a.name)
                continue
            settings.append(AlertSetting(
                name=a.name,
                severity=(o.severity if o and o.severity else a.severity),
                threshold=(o.threshold if o and o.threshold is not None else a.threshold_for(service)),
                for_=parse_duration(o.for_ if o and o.for_ else a.for_),
            ))
            if o and o.threshold is not None and a.threshold is None and a.derived_threshold is None:
                self.problem(base + ("alerts", a.name, "threshold"), f"{a.name} has no threshold to override")
        return replace(service, alerts=tuple(settings), disabled_alerts=tuple(disabled))


def _business_hours(timezone: str) -> TimeInterval:
    spec = defaults.BUSINESS_HOURS
    return TimeInterval(times=tuple(TimeRange(a, b) for a, b in spec["times"]), weekdays=tuple(spec["weekdays"]),
                        days_of_month=(), months=(), years=(), location=timezone)


def _basic_auth(b: schema.BasicAuth | None) -> BasicAuth | None:
    return BasicAuth(b.username, b.password_file) if b else None


def _exporter_hint(kind: str) -> str:
    return {
        "http": "service's own /metrics endpoint",
        "worker": "worker's /metrics endpoint",
        "postgres": "postgres-exporter, e.g. postgres-exporter:9187",
        "redis": "redis-exporter, e.g. redis-exporter:9121",
        "host": "node-exporter, e.g. node-exporter:9100",
    }.get(kind, "/metrics endpoint")


def _secret_files(inv: schema.Inventory) -> set[str]:
    found: set[str] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, schema.Strict):
            for key, value in obj:
                if key.endswith("_file") and isinstance(value, str) and key not in ("ca_file", "cert_file"):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(inv)
    return found


def resolve(inv: schema.Inventory, src: Source) -> Model:
    """Apply defaults and check everything that needs the whole inventory; all problems at once."""
    return _Resolver(inv, src).run()
