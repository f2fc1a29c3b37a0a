"""The resolved model: defaults applied, references checked, PromQL parsed.

Renderers read only this module's types. Nothing here reads or writes files
except `resolve`'s use of the Source it is given for line numbers.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence, Union

import promql_parser

from generator import catalogue, components, defaults, links, lint, names, regex
from generator.durations import Duration, parse_duration
from generator.errors import InventoryError, Problem
from generator.inventory import handwritten as handwritten_rules
from generator.inventory import policy, schema, secrets
from generator.inventory.yamlsource import Source
from generator.units import infer_duration_unit, parse_bytes

# --- receivers ---------------------------------------------------------------


@dataclass(frozen=True)
class SlackReceiver:
    name: str
    webhook_url_file: str | None  # an app's incoming webhook: posts to its own channel only
    channel: str
    send_resolved: bool
    bot_token_file: str | None = None  # chat.postMessage with a bot token: posts to `channel`


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
class MuteWindow:
    """A time interval during which notifications of some levels (of some teams, services) are held back."""

    interval: str
    levels: tuple[str, ...]  # P1-P3 unless the inventory names P0 itself
    teams: tuple[str, ...] = ()  # empty: every team
    services: tuple[str, ...] = ()  # empty: every service

    def applies(self, level: str, team: str | None = None, service: str | None = None) -> bool:
        return (level in self.levels and (not self.teams or team in self.teams)
                and (not self.services or service in self.services))


MUTED_BY_DEFAULT = ("P1", "P2", "P3")  # a maintenance window never silences pages unless it says P0


@dataclass(frozen=True)
class Watchdog:
    receiver: str
    repeat_interval: Duration


@dataclass(frozen=True)
class Team:
    name: str
    receivers: Mapping[str, tuple[str, ...]]  # level -> receivers, the policy's unless the team overrides
    overridden: frozenset[str]  # levels the team overrides


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
    """One alert rule of one service, overrides applied: a catalogue alert, or one tier of it."""

    name: str
    severity: str
    threshold: float | None
    for_: Duration
    window: Duration | None = None  # the rate window of the expression, for alerts that have one
    min_rate: float | None = None  # ratio alerts: events/s the service must see before it may fire (0 or None: no guard)
    definition: str | None = None  # the catalogue alert a tier belongs to, when the tier's name is its own

    @property
    def catalogue_name(self) -> str:
        return self.definition or self.name


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
    by: tuple[str, ...] = ()  # increase rules: labels alerted on separately


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
    duration_unit: str = "seconds"  # of the duration histogram: "seconds" or "milliseconds"
    db_query_duration_unit: str = "seconds"
    db_pool_utilization: str | None = None  # a 0..1 gauge instead of size and available


@dataclass(frozen=True)
class WorkerMetrics:
    queue_depth: str
    jobs: str
    status_label: str
    failed_value: str
    duration: str
    queue_label: str | None = "queue"
    duration_unit: str = "seconds"


@dataclass(frozen=True)
class HostSettings:
    mountpoints: str
    exclude_fstypes: str
    exclude_disk_devices: str
    exclude_network_devices: str


@dataclass(frozen=True)
class Kpi:
    title: str
    expr: str
    unit: str
    description: str | None
    panel: str  # "graph" or "stat"


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
    kpis: tuple[Kpi, ...] = ()  # business numbers for the business dashboard, without an alert
    shares_targets_with: str | None = None  # another kind of service scrapes the same endpoint first (a monolith's /metrics)

    def alert(self, name: str) -> AlertSetting | None:
        return next((a for a in self.alerts if a.name == name), None)

    def tiers(self, name: str) -> tuple[AlertSetting, ...]:
        """Every rule of a catalogue alert: the alert itself, or each of its tiers."""
        return tuple(a for a in self.alerts if a.catalogue_name == name)

    @property
    def http_metrics(self) -> HttpMetrics:
        """The metrics of an http service: its kind guarantees them."""
        assert isinstance(self.metrics, HttpMetrics), f"{self.name}: a {self.kind} service has no HTTP metrics"
        return self.metrics

    @property
    def worker_metrics(self) -> WorkerMetrics:
        """The metrics of a worker service: its kind guarantees them."""
        assert isinstance(self.metrics, WorkerMetrics), f"{self.name}: a {self.kind} service has no worker metrics"
        return self.metrics


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
    images: Mapping[str, str] = field(default_factory=dict)  # compose: component -> image overrides
    image_mirror: str | None = None  # compose: registry mirror every pinned image is pulled through
    long_term_retention: Duration | None = None  # the long-term store keeps this much when an SLO window outlasts retention_time
    ui_override: links.Ui | None = None  # where the pages are when not where compose publishes them (the native runner)
    web_auth: BasicAuth | None = None  # basic auth in front of Prometheus, Alertmanager and VictoriaMetrics (generator/webauth.py)

    @property
    def ui(self) -> links.Ui:
        """The stack's web pages in the mode it is rendered for (generator/links.py)."""
        if self.ui_override is not None:
            return self.ui_override
        return links.compose(self.prometheus_url, self.alertmanager_url, self.grafana_url,
                             self.images.get("prometheus") or components.IMAGES["prometheus"])


@dataclass(frozen=True)
class Kubernetes:
    """Where the Kubernetes output lands (generator/kubernetes.py)."""

    namespace: str = "monitoring"
    labels: Mapping[str, str] = field(default_factory=dict)
    prometheus: str = "k8s"
    alertmanager: str = "main"
    blackbox_exporter: str = "blackbox-exporter:9115"


@dataclass(frozen=True)
class Model:
    source: str  # the inventory's file name, for "generated from" headers
    stack: Stack
    receivers: Mapping[str, Receiver]
    default_receiver: str
    levels: Mapping[str, LevelPolicy]
    time_intervals: Mapping[str, tuple[TimeInterval, ...]]
    mute_windows: tuple[MuteWindow, ...]  # the inventory's and its teams', scopes resolved
    watchdog: Watchdog | None
    teams: Mapping[str, Team]
    services: tuple[Service, ...]
    secret_files: tuple[str, ...] = field(default=())  # every *_file the inventory references, sorted
    kubernetes: Kubernetes = field(default_factory=Kubernetes)
    extra_scrape_configs: tuple[Mapping[str, Any], ...] = ()  # copied into prometheus.yml as written
    severity_map: Mapping[str, str] = field(default_factory=lambda: dict(defaults.SEVERITY_MAP))  # foreign severity -> level
    handwritten: tuple[handwritten_rules.RuleFile, ...] = ()  # rules.d/ beside the inventory
    warnings: tuple[Problem, ...] = field(default=())  # accepted, but worth saying (generator/inventory/policy.py)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def mutes(self, level: str, team: str | None = None, service: str | None = None) -> tuple[str, ...]:
        """Time intervals muting one level (of one team, one service): the inventory's windows and the level's own."""
        found = [w.interval for w in self.mute_windows if w.applies(level, team, service)]
        found += list(self.levels[level].mute_time_intervals) if level in self.levels else []
        return tuple(dict.fromkeys(found))

    def receiver_secret_files(self) -> list[str]:
        """The secret files Alertmanager reads (webhook URLs, routing keys, passwords, tokens), sorted."""
        refs: set[str] = set()
        for r in self.receivers.values():
            if isinstance(r, SlackReceiver):
                refs.add(r.webhook_url_file or r.bot_token_file or "")
            elif isinstance(r, PagerDutyReceiver):
                refs.add(r.routing_key_file)
            elif isinstance(r, EmailReceiver) and r.auth_password_file:
                refs.add(r.auth_password_file)
            elif isinstance(r, WebhookReceiver) and r.bearer_token_file:
                refs.add(r.bearer_token_file)
        return sorted(refs)


# --- resolution --------------------------------------------------------------

def check_promql(expr: str, selector: bool = False) -> str | None:
    """None if expr parses (as a plain series selector, if asked), else the parser's message."""
    try:
        parsed = promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        return str(exc) or "does not parse"
    if selector and type(parsed).__name__ != "VectorSelector":
        return "must be a series selector such as orders_created_total{status=\"ok\"}, without functions or ranges"
    return None


def _short_ranges(expr: str | None, least: Duration) -> list[Duration]:
    """The range windows (`x[1s]`) of a valid expression shorter than `least`."""
    if expr is None or check_promql(expr):
        return []
    return [Duration(ms) for ms in lint.range_windows_ms(expr) if ms < least.ms]


class _Resolver:
    def __init__(self, inv: schema.Inventory, src: Source, handwritten: tuple[handwritten_rules.RuleFile, ...] = (),
                 policies: bool = True):
        self.inv = inv
        self.src = src
        self.handwritten = handwritten
        self.policies = policies
        self.problems: list[Problem] = []
        self.rule_paths: dict[str, dict[str, tuple[Any, ...]]] = {}  # service -> rule name -> where the inventory sets it
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
        self.slack_channels(receivers)
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
        self.extra_scrape_configs(services)
        windows = self.mute_windows()
        burns = {a.name: a.problem for a in catalogue.slo.ALERTS if a.problem in ("ErrorBudgetBurn", "LatencyBudgetBurn")}
        for path, message, fatal in policy.problems(inv, intervals, levels, services, windows, burns) if self.policies else ():
            (self.problem if fatal else self.warn)(path, message)
        if self.problems:
            raise InventoryError(self.problems)
        longest = max((s.slo.window for s in services if s.slo), default=None)
        if longest is not None and longest > stack.retention_time:
            stack = replace(stack, long_term_retention=longest)  # the error budget is computed over the whole window
        model = Model(
            source=self.src.file.rsplit("/", 1)[-1],
            stack=stack,
            receivers=receivers,
            default_receiver=default_receiver,
            levels=levels,
            time_intervals=intervals,
            mute_windows=tuple(w for _, w in windows),
            watchdog=watchdog,
            teams=teams,
            services=services,
            secret_files=tuple(sorted(_secret_files(inv))),
            kubernetes=Kubernetes(inv.kubernetes.namespace, dict(sorted(inv.kubernetes.labels.items())), inv.kubernetes.prometheus,
                                  inv.kubernetes.alertmanager, inv.kubernetes.blackbox_exporter),
            extra_scrape_configs=tuple(inv.extra_scrape_configs),
            severity_map=dict(inv.severity_map),
            handwritten=self.handwritten,
            warnings=tuple(sorted(set(self.warnings))),
        )
        self.group_clashes(model)
        self.slo_data(model)
        for i, s in enumerate(model.services):
            paths = self.rule_paths.get(s.name, {})
            for culprits, message in tier_problems(model, s):
                # Point at the tier the inventory wrote: a catalogue default has no line of its own.
                self.problem(next((paths[c] for c in culprits if c in paths), ("services", i)), message)
        if self.problems:
            raise InventoryError(self.problems)
        return model

    def extra_scrape_configs(self, services: tuple[Service, ...]) -> None:
        taken = {names.SELF_PROMETHEUS_JOB, names.SELF_ALERTMANAGER_JOB, names.SELF_BLACKBOX_JOB}
        taken |= {names.service_job(s.name) for s in services if s.scrape} | {names.probe_job(s.name) for s in services if s.probes}
        for i, job in enumerate(self.inv.extra_scrape_configs):
            base = ("extra_scrape_configs", i)
            name = job.get("job_name")
            if not isinstance(name, str) or not name:
                self.problem(base, "needs a job_name")
            elif name in taken:
                self.problem(base + ("job_name",), f"job {name!r} is already scraped (a service, a probe job or the stack itself)")
            taken.add(name if isinstance(name, str) else "")
            for path in _inline_secrets(job, base):
                self.problem(path, "secrets must not be written in services.yaml: put the value in a file and use the matching *_file field")

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
            images=dict(s.images),
            image_mirror=s.image_mirror,
            remote_write=tuple(
                RemoteWrite(rw.name, rw.url, _basic_auth(rw.basic_auth), rw.bearer_token_file) for rw in s.remote_write
            ),
            web_auth=BasicAuth(s.web_auth.username, s.web_auth.password_file) if s.web_auth else None,
        )

    def receiver(self, name: str, r: Any) -> Receiver:
        if isinstance(r, schema.SlackReceiver):
            return SlackReceiver(name, r.webhook_url_file, r.channel, r.send_resolved, r.bot_token_file)
        if isinstance(r, schema.PagerDutyReceiver):
            return PagerDutyReceiver(name, r.routing_key_file, r.url, r.send_resolved)
        if isinstance(r, schema.EmailReceiver):
            return EmailReceiver(name, tuple(r.to), r.from_, r.smarthost, r.auth_username, r.auth_password_file, r.require_tls, r.send_resolved)
        return WebhookReceiver(name, r.url, r.bearer_token_file, r.max_alerts, r.send_resolved)

    def slo_data(self, model: Model) -> None:
        """An SLO over a longer window than Prometheus keeps would compute its budget from part of the window."""
        if model.stack.long_term_retention is None or "victoria-metrics" in components.needed_components(model):
            return
        by_window: dict[Duration, list[int]] = {}
        for i, s in enumerate(model.services):
            if s.slo and s.slo.window > model.stack.retention_time:
                by_window.setdefault(s.slo.window, []).append(i)
        for window, found in by_window.items():
            others = [model.services[i].name for i in found[1:]]
            also = f" (so is the SLO of {', '.join(others[:3])}{f' and {len(others) - 3} more' if len(others) > 3 else ''})" if others else ""
            self.problem(("services", found[0], "slo", "window"),
                         f"the SLO window {window} is longer than Prometheus keeps samples (stack.retention.time "
                         f"{model.stack.retention_time}) and the stack has no long-term store{also}: its error budget would be computed from "
                         f"{model.stack.retention_time} of data. Raise retention.time to {window} or more, or remote_write to "
                         "VictoriaMetrics (http://victoria-metrics:8428/api/v1/write), whose dashboards then read the whole window")

    def group_clashes(self, model: Model) -> None:
        """Prometheus refuses two rule groups of one name: hand-written groups may not take a generated group's."""
        generated = {names.META_RULES_GROUP}
        for s in model.services:
            generated |= {names.fast_group(s.name), names.recording_group(s.name), names.alerts_group(s.name), names.slo_group(s.name),
                          names.slo_slow_group(s.name)}
        seen: dict[str, str] = {}
        for f in model.handwritten:
            for group, file, line in f.group_lines:
                if group in generated:
                    self.problems.append(Problem(file, line, "groups.name", f"{group!r} is the name of a group monstack generates; pick another"))
                elif group in seen:
                    self.problems.append(Problem(file, line, "groups.name", f"group {group!r} is also defined in {seen[group]}"))
                seen.setdefault(group, file)

    def mute_windows(self) -> list[tuple[tuple[Any, ...], MuteWindow]]:
        """The inventory's and its teams' maintenance windows, with where each is written; a name alone mutes P1-P3, never the pages."""
        out: list[tuple[tuple[Any, ...], MuteWindow]] = []
        known = {s.name for s in self.inv.services}
        sources: list[tuple[tuple[Any, ...], Any, tuple[str, ...]]] = [
            (("mute_time_intervals", i), e, ()) for i, e in enumerate(self.inv.mute_time_intervals)]
        sources += [(("teams", t, "mute_time_intervals", i), e, (t,))
                    for t, team in self.inv.teams.items() for i, e in enumerate(team.mute_time_intervals)]
        for path, entry, teams in sources:
            if isinstance(entry, str):
                out.append((path, MuteWindow(entry, MUTED_BY_DEFAULT, teams)))
                continue
            levels = tuple(lv for lv in names.LEVELS if lv in (entry.levels or MUTED_BY_DEFAULT))
            for j, svc in enumerate(entry.services):
                if svc not in known:
                    self.problem(path + ("services", j), f"unknown service {svc!r} (defined: {', '.join(sorted(known))})")
            out.append((path, MuteWindow(entry.interval, levels, teams or tuple(getattr(entry, "teams", ())), tuple(entry.services))))
        return out

    def slack_channels(self, receivers: Mapping[str, Receiver]) -> None:
        """A Slack app's webhook posts to the channel it was created for: receivers of other channels need their own."""
        first: dict[str, SlackReceiver] = {}
        for r in receivers.values():
            if not isinstance(r, SlackReceiver) or r.webhook_url_file is None:
                continue
            other = first.setdefault(r.webhook_url_file, r)
            if other.channel != r.channel:
                self.problem(("receivers", r.name, "webhook_url_file"),
                             f"{r.webhook_url_file} is also the webhook of {other.name} ({other.channel}): a Slack app's incoming webhook "
                             f"posts to the one channel it was created for and ignores channel, so {r.channel} would get nothing; give "
                             "each channel its own webhook file, or use bot_token_file (chat.postMessage honours channel)")

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
            active: Sequence[str] | None = policy.active_time_intervals
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
        resolved: dict[str, tuple[str, ...]] = {lv: tuple(t.receivers.get(lv) or (levels[lv].receivers if lv in levels else ())) for lv in names.LEVELS}
        return Team(name, resolved, frozenset(t.receivers))

    def services(self, stack: Stack, teams: Mapping[str, Team]) -> tuple[Service, ...]:
        out: list[Service] = []
        target_owner: dict[tuple[str, str], tuple[str, str]] = {}  # (target, path) -> (service, kind) scraping it first
        for i, s in enumerate(self.inv.services):
            base = ("services", i)
            shared: str | None = None
            if s.scrape:
                for j, t in enumerate(s.scrape.targets):
                    key = (t, s.scrape.path)
                    owner, owner_kind = target_owner.get(key, (s.name, s.kind))
                    if owner != s.name and owner_kind == s.kind:
                        self.problem(base + ("scrape", "targets", j), f"target {t}{s.scrape.path} is already scraped by service {owner!r} "
                                                                      f"of the same kind: one endpoint is one {s.kind} service")
                    elif owner != s.name:
                        shared = owner  # one endpoint, metrics of several kinds: each service reads its own
                    target_owner.setdefault(key, (s.name, s.kind))
            if s.kind not in ("probe", "custom") and s.scrape is None:
                self.problem(base + ("scrape",), f"a {s.kind} service needs scrape.targets (the {_exporter_hint(s.kind)})")
            if s.kind == "probe" and not s.health:
                self.problem(base + ("health",), "a probe service needs at least one health URL")
            if s.kind == "custom" and s.scrape is None and not s.health and not s.rules:
                # Rules alone are enough: they may read series scraped by extra_scrape_configs.
                self.problem(base + ("scrape",), "a custom service needs scrape.targets, health URLs or rules")
            out.append(self.service(base, s, stack, shared))
        return tuple(out)

    def service(self, base: tuple[Any, ...], s: Any, stack: Stack, shared: str | None = None) -> Service:
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
        metrics: HttpMetrics | WorkerMetrics | None = None
        if isinstance(s, schema.HttpService):
            m = s.metrics
            metrics = HttpMetrics(m.requests, m.duration, m.status_label, m.route_label, m.error_status,
                                  m.db_pool_size, m.db_pool_available, m.db_query_duration,
                                  duration_unit=m.duration_unit or infer_duration_unit(m.duration),
                                  db_query_duration_unit=m.db_query_duration_unit or infer_duration_unit(m.db_query_duration or ""),
                                  db_pool_utilization=m.db_pool_utilization)
            self.regex(base + ("metrics", "error_status"), m.error_status, matches="use a regex that matches the error statuses, e.g. 5..",
                       misses="no request could count as successful; use a regex for the error statuses only, e.g. 5..")
        elif isinstance(s, schema.WorkerService):
            w = s.metrics
            metrics = WorkerMetrics(w.queue_depth, w.jobs, w.status_label, w.failed_value, w.duration, w.queue_label,
                                    duration_unit=w.duration_unit or infer_duration_unit(w.duration))
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
            memory_limit_bytes=_memory_limit(s),
            cpu_limit=resources.cpu_limit if resources else None,
            labels=dict(s.labels), runbook_base=s.links.runbook_base.rstrip("/") if s.links.runbook_base else None,
            dashboard_url=s.links.dashboard, rules=self.rules(base, s.rules, scrape.interval if scrape else stack.scrape_interval),
            host=host, kpis=self.kpis(base, s.kpis), shares_targets_with=shared,
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

    def kpis(self, base: tuple[Any, ...], kpis: list[schema.Kpi]) -> tuple[Kpi, ...]:
        titles: list[str] = []
        for j, k in enumerate(kpis):
            self.promql(base + ("kpis", j, "expr"), k.expr)
            if k.title in titles:
                self.problem(base + ("kpis", j, "title"), f"duplicate KPI title {k.title!r}")
            titles.append(k.title)
        return tuple(Kpi(k.title, k.expr, k.unit, k.description, k.panel) for k in kpis)

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
            short = _short_ranges(getattr(r, "expr", None), scrape_interval * 2)
            if short:
                self.problem(path + ("expr",), f"the range {short[0]} holds fewer than two samples of the {scrape_interval} scrape interval, "
                                               f"so rate() and increase() over it find nothing: make it at least {scrape_interval * 2}")
            for key in ("numerator", "denominator"):
                self.promql(path + (key,), getattr(r, key, None), selector=True)
            if r.type == "ratio":  # of two rates: never negative
                self.crossable(path + ("threshold",), r.name, r.op, "ratio", r.threshold)
            if r.type == "increase":
                self.promql(path + ("metric",), r.metric, selector=True)
            out.append(CustomRule(
                name=r.name, problem=r.problem or r.name, type=r.type, severity=r.severity, for_=parse_duration(r.for_), summary=r.summary, description=r.description,
                expr=getattr(r, "expr", None), metric=getattr(r, "metric", None), label=getattr(r, "label", None),
                numerator=getattr(r, "numerator", None), denominator=getattr(r, "denominator", None),
                window=parse_duration(r.window) if getattr(r, "window", None) else None,
                lookback=parse_duration(r.lookback) if getattr(r, "lookback", None) else None,
                op=getattr(r, "op", None) or (">" if r.type == "increase" else None), threshold=getattr(r, "threshold", None), unit=r.unit,
                by=tuple(getattr(r, "by", ())),
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
            for key, message in catalogue.custom.problems(service, r, self.inv.stack.environment):
                self.problem(base + ("rules", j, key), message)
        for name in s.alerts:
            if name not in known:
                self.problem(base + ("alerts", name), unknown_alert(service.kind, name))
            elif name not in applicable:
                self.problem(base + ("alerts", name), f"{name} does not apply to this service: {catalogue.get(name).requires}")
        settings: list[AlertSetting] = []
        disabled: list[str] = []
        where: dict[str, tuple[Any, ...]] = {}  # rule name -> the inventory path that set its threshold
        for a in applicable.values():
            o = s.alerts.get(a.name)
            if o and o.disabled:
                disabled.append(a.name)
                continue
            path = base + ("alerts", a.name)
            window = self.window(path, a, o, service)
            min_rate = self.min_rate(path, a, o)
            for_ = parse_duration(o.for_ if o and o.for_ else a.for_)
            if o and o.threshold is not None and a.threshold is None and a.derived_threshold is None:
                self.problem(path + ("threshold",), f"{a.name} has no threshold to override")
            if o and o.tiers:
                if a.threshold is None and a.derived_threshold is None:
                    self.problem(path + ("tiers",), f"{a.name} has no threshold to tier")
                    continue
                for j, t in enumerate(o.tiers):
                    name = t.name or f"{a.name}{t.severity}"
                    if name != a.name and (name in catalogue.reserved() or name in {r.name for r in service.rules}):
                        self.problem(path + ("tiers", j, "name"), f"tier name {name!r} is taken by another alert; give the tier a name")
                    settings.append(AlertSetting(
                        name=name, severity=t.severity, threshold=t.threshold,
                        for_=parse_duration(t.for_) if t.for_ else for_,
                        window=self.window(path + ("tiers", j), a, t, service) if t.window else window,
                        min_rate=min_rate, definition=a.name if name != a.name else None,
                    ))
                    where[name] = path + ("tiers", j, "threshold")
                    self.crossable(path + ("tiers", j, "threshold"), a.name, a.op, a.unit, t.threshold)
                continue
            settings.append(AlertSetting(
                name=a.name,
                severity=(o.severity if o and o.severity else a.severity),
                threshold=(o.threshold if o and o.threshold is not None else a.threshold_for(service)),
                for_=for_,
                window=window,
                min_rate=min_rate,
            ))
            if o and (o.threshold is not None or o.severity):
                where[a.name] = path + ("threshold" if o.threshold is not None else "severity",)
            if o and o.threshold is not None:
                self.crossable(path + ("threshold",), a.name, a.op, a.unit, o.threshold)
        names_ = [x.name for x in settings]
        for x in settings:
            if names_.count(x.name) > 1 and x.name in where:
                self.problem(where[x.name], f"two rules of this service are named {x.name!r}; give one tier another name")
        for j, r in enumerate(service.rules):
            where.setdefault(r.name, base + ("rules", j, "threshold"))
        self.rule_paths[service.name] = where
        return replace(service, alerts=tuple(settings), disabled_alerts=tuple(disabled))

    def crossable(self, path: tuple[Any, ...], name: str, op: str | None, unit: str | None, threshold: float) -> None:
        """A threshold a measure that is never negative (a ratio, a count) can cross: `< 0` never fires."""
        if unit in NON_NEGATIVE and op is not None and never_crossed(op, threshold):
            self.problem(path, f"{name} can never fire: it fires when its {unit} is {op} {threshold:g}, and a {unit} is never "
                               "negative; raise the threshold, or disable the alert")

    def window(self, path: tuple[Any, ...], a: Any, o: Any, service: Service) -> Duration | None:
        """The alert's rate window: the override's (checked), else the catalogue's; None for alerts without one."""
        default = parse_duration(a.window) if a.window else None
        if o is None or not getattr(o, "window", None):
            return default
        w = parse_duration(o.window)
        if a.window is None:
            self.problem(path + ("window",), f"{a.name} reads no rate window (a gauge or a state) to change")
            return default
        if a.window_fixed:
            self.problem(path + ("window",), f"{a.name}'s window is part of its definition ({a.window}); it cannot be changed")
            return default
        # A service without a scrape has only probe alerts: their windows read probes, at the probe interval.
        what, interval = (("scrapes", service.scrape.interval) if service.scrape else
                          ("probes", catalogue.core.probe_every(parse_duration(self.inv.stack.scrape_interval))))
        if w.ms < 2 * interval.ms:
            self.problem(path + ("window",), f"must hold two {what} at least (2 x {interval} {what[:-1]} interval) for rate() to see "
                                             f"an increase (got {o.window})")
        return w

    def min_rate(self, path: tuple[Any, ...], a: Any, o: Any) -> float | None:
        if o is None or o.min_rate is None:
            return a.min_rate
        if a.min_rate is None:
            self.problem(path + ("min_rate",), f"{a.name} is not a ratio of events: it has no minimum traffic to set")
            return None
        return o.min_rate


NON_NEGATIVE = frozenset({"ratio", "count"})  # units of measures that never go below 0


def never_crossed(op: str, threshold: float) -> bool:
    """`measure OP threshold` is false for every measure that is never negative."""
    return (op == "<" and threshold <= 0) or (op in ("<=", "==") and threshold < 0)


@dataclass(frozen=True)
class _Tier:
    name: str
    severity: str
    threshold: float
    op: str
    measure: Any  # what the rule compares: tiers compare only when they measure the same thing


def _tiers_by_problem(model: Model, s: Service) -> dict[str, list[_Tier]]:
    groups: dict[str, list[_Tier]] = {}
    for a in s.alerts:
        d = catalogue.get(a.catalogue_name)
        if a.threshold is not None and d.op in (">", ">=", "<", "<="):
            measure: Any = d.query(catalogue.Ctx(model, s, a))
            groups.setdefault(d.problem_label, []).append(_Tier(a.name, a.severity, a.threshold, d.op, measure))
    for r in s.rules:
        if r.threshold is not None and r.op in (">", ">=", "<", "<="):
            measure = (r.type, r.expr, r.numerator, r.denominator, r.metric, r.window)
            groups.setdefault(r.problem, []).append(_Tier(r.name, r.severity, r.threshold, r.op, measure))
    return groups


def tier_problems(model: Model, s: Service) -> list[tuple[tuple[str, str], str]]:
    """((higher tier, lower tier), message) for tiers of one problem whose thresholds do not rise with severity, or that repeat another tier.

    A lower tier whose threshold a higher one equals or undercuts never matters: the higher tier
    fires first and mutes it. Tiers measuring different things (other windows, other expressions)
    are not compared.
    """
    out: list[tuple[tuple[str, str], str]] = []
    for problem, tiers in _tiers_by_problem(model, s).items():
        for i, hi in enumerate(tiers):
            for lo in tiers[i + 1:]:
                if lo.measure != hi.measure or (lo.op in (">", ">=")) != (hi.op in (">", ">=")):
                    continue
                if names.LEVELS.index(lo.severity) < names.LEVELS.index(hi.severity):
                    hi, lo = lo, hi
                up = hi.op in (">", ">=")
                other = f"{lo.name if hi.name != lo.name else hi.name} ({lo.severity}, threshold {lo.threshold:g})"
                if hi.severity == lo.severity:
                    out.append(((hi.name, lo.name), f"{hi.name} repeats the {hi.severity} tier {other} of problem {problem}: "
                                         "give each tier its own severity, or drop one"))
                elif hi.threshold == lo.threshold or (hi.threshold < lo.threshold) == up:
                    rel = "repeats" if hi.threshold == lo.threshold else ("is below" if up else "is above")
                    out.append(((hi.name, lo.name), f"the {hi.severity} threshold {hi.threshold:g} {rel} the threshold of the lower tier {other} "
                                         f"of problem {problem}: thresholds must {'rise' if up else 'fall'} with severity, or the lower "
                                         f"tier never matters (change one, or disable {lo.name})"))
    return out


def _memory_limit(s: Any) -> int | None:
    """resources.memory_limit of http and worker services; memory_limit of redis services (standing in for maxmemory 0)."""
    resources = getattr(s, "resources", None)
    text = resources.memory_limit if resources else getattr(s, "memory_limit", None)
    return parse_bytes(text) if text else None


def _business_hours(timezone: str) -> TimeInterval:
    return TimeInterval(times=tuple(TimeRange(a, b) for a, b in defaults.BUSINESS_HOURS_TIMES), weekdays=defaults.BUSINESS_HOURS_WEEKDAYS,
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


_RAW_SECRET_KEYS = ("password", "bearer_token", "credentials", "client_secret", "secret_key", "access_key")


def _inline_secrets(value: Any, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Paths of inline secret fields in a raw Prometheus config fragment."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in _RAW_SECRET_KEYS:
                found.append(path + (k,))
            else:
                found += _inline_secrets(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _inline_secrets(v, path + (i,))
    return found


def _secret_files(inv: schema.Inventory) -> set[str]:
    """Every `*_file` the inventory names but the CA and client certificates (public: not secrets)."""
    return {value for path, value in secrets.file_refs(inv) if path[-1] not in ("ca_file", "cert_file")}


def unknown_alert(kind: str, name: str) -> str:
    known = {a.name for a in catalogue.for_kind(kind)}
    return f"unknown alert {name!r} for a {kind} service (known: {', '.join(sorted(known)) or 'none'})"


def raw_problems(src: Source) -> list[Problem]:
    """Problems found on the raw YAML when the schema already failed: unknown alert names under services[].alerts.

    Resolving needs a valid inventory; checking names here as well reports them in the same run as the
    schema's errors (the messages are resolve's, so nothing is reported twice).
    """
    services = src.data.get("services") if isinstance(src.data, dict) else None
    kinds = tuple(typing.get_args(cls.model_fields["kind"].annotation)[0] for cls in typing.get_args(typing.get_args(schema.Service)[0]))
    every = {a.name for k in kinds for a in catalogue.for_kind(k)}
    out: list[Problem] = []
    for i, svc in enumerate(services if isinstance(services, list) else []):
        if not isinstance(svc, dict) or not isinstance(svc.get("alerts"), dict):
            continue
        kind = svc.get("kind")
        for name in svc["alerts"]:
            if isinstance(kind, str) and kind in kinds:
                if name not in {a.name for a in catalogue.for_kind(kind)}:
                    out.append(src.problem(("services", i, "alerts", name), unknown_alert(kind, name)))
            elif name not in every:
                out.append(src.problem(("services", i, "alerts", name), f"unknown alert {name!r}: no kind of service has it"))
    return out


def resolve(inv: schema.Inventory, src: Source, handwritten: tuple[handwritten_rules.RuleFile, ...] = (),
            policies: bool = True) -> Model:
    """Apply defaults and check everything that needs the whole inventory; all problems at once.

    policies=False skips generator/inventory/policy.py: only for inventories monstack builds to measure its own
    output (the importer's stand-in thresholds), never for one a user wrote.
    """
    return _Resolver(inv, src, handwritten, policies).run()
