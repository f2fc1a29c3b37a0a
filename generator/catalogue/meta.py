"""Meta-monitoring: the stack watching itself (Prometheus 2.42+, Alertmanager 0.25+ metric names).

These alerts belong to no service of the inventory: they carry
service="monstack" and team="monstack" (names.META_SERVICE/META_TEAM), so the
severity policy routes them. The names were checked against the Debian
binaries' own /metrics (tests/test_meta_metrics.py scrapes them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from generator import components, names
from generator.catalogue import series as S
from generator.catalogue.core import AlertDef, Case, Ctx, Expected, eval_time, num, points, threshold_cases
from generator.promql import sel

if TYPE_CHECKING:
    from generator.model import Model

PROM = {"job": names.SELF_PROMETHEUS_JOB}
AM = {"job": names.SELF_ALERTMANAGER_JOB}
PROM_INSTANCE = f"prometheus:{components.get('prometheus').port}"
AM_INSTANCE = f"alertmanager:{components.get('alertmanager').port}"
BLACKBOX_INSTANCE = f"blackbox-exporter:{components.get('blackbox-exporter').port}"


def _prom(ctx: Ctx, **extra: str) -> dict[str, str]:
    return S.self_target(ctx.model, names.SELF_PROMETHEUS_JOB, PROM_INSTANCE, **extra)


def _am(ctx: Ctx, **extra: str) -> dict[str, str]:
    return S.self_target(ctx.model, names.SELF_ALERTMANAGER_JOB, AM_INSTANCE, **extra)


# --- Watchdog ------------------------------------------------------------------


def _watchdog(ctx: Ctx) -> str:
    return f"{sel('up', PROM)} == 1"


def _watchdog_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    at = eval_time("0s", ctx.setting.for_)
    n = points(at)
    labels = _prom(ctx)
    return [
        Case("Watchdog fires while Prometheus scrapes itself", (S.gauge("up", labels, 1, n),), (Expected(labels, 1),), at),
        Case("Watchdog stops when Prometheus cannot scrape itself (the dead-man's switch then pages)",
             (S.gauge("up", labels, 0, n),), (), at),
        Case("Watchdog stops when Prometheus stores no samples at all", (), (), at),
    ]


WATCHDOG = AlertDef(
    name=names.WATCHDOG_ALERT,
    kinds=("meta",),
    severity="P3",  # Alertmanager routes it by name to the heartbeat receiver, never to people
    for_="0s",  # fires at once: the heartbeat must start with Prometheus
    threshold=None,
    unit="none",
    op="==",
    summary="Watchdog: the monitoring pipeline is alive",
    description=("Always firing while Prometheus scrapes, evaluates rules and reaches Alertmanager. An external dead-man's switch "
                 "pages when these notifications stop."),
    # Not vector(1): tied to Prometheus' own scrape, the heartbeat also stops when ingestion stops (disk full, broken TSDB).
    expr=_watchdog,
    query=lambda c: sel("up", PROM),
    cases=_watchdog_cases,
    meaning="A heartbeat, not a problem. It fires all the time; the heartbeat receiver (a dead-man's switch) alerts when it stops arriving.",
    causes=("If the heartbeat stopped: Prometheus is down or cannot scrape itself, rule evaluation stopped, Alertmanager is down, "
            "or Alertmanager cannot reach the heartbeat receiver",),
)


# --- generic shapes ------------------------------------------------------------


def _gauge_cases(metric: str, labels_of, settle: str = "0s"):
    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        labels = labels_of(ctx)
        return threshold_cases(ctx, d, lambda v, n: ([S.gauge(metric, labels, v, n)], [labels]), settle=settle)

    return cases


def _increase_expr(metric: str, match: dict[str, str]):
    def expr(ctx: Ctx) -> str:
        return f"increase({sel(metric, match)}[5m])"

    return expr


def _increase_cases(metric: str, labels_of):
    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        labels = labels_of(ctx)
        return threshold_cases(ctx, d, lambda v, n: ([S.counter(metric, labels, v / 300, n)], [labels]))

    return cases


def _reload_cases(metric: str, labels_of):
    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        at = eval_time("5m", ctx.setting.for_)
        n = points(at)
        labels = labels_of(ctx)
        return [
            Case(f"{d.name} fires after a failed reload", (S.gauge(metric, labels, 0, n),), (Expected(labels, 0),), at),
            Case(f"{d.name} stays silent after a successful reload", (S.gauge(metric, labels, 1, n),), (), at),
        ]

    return cases


def _ratio_of_rates(num_metric: str, den_metric: str, match: dict[str, str], by: str):
    def expr(ctx: Ctx) -> str:
        return (f"sum by ({by}) (rate({sel(num_metric, match)}[5m])) / "
                f"sum by ({by}) (rate({sel(den_metric, match)}[5m]))")

    return expr


def _ratio_cases(num_metric: str, den_metric: str, labels_of, keep: tuple[str, ...]):
    def cases(d: AlertDef, ctx: Ctx) -> list[Case]:
        labels = labels_of(ctx)
        kept = {k: labels[k] for k in keep}
        return threshold_cases(ctx, d, lambda v, n: (
            [S.counter(den_metric, labels, 10, n), S.counter(num_metric, labels, 10 * v, n)], [kept]))

    return cases


SELF_BY = f"{names.ENV}, {names.SERVICE}, {names.TEAM}, job, instance"
_SELF_KEEP = (names.ENV, names.SERVICE, names.TEAM, "job", "instance")


MIN_TARGETS_DOWN = 2  # one target down is TargetDown's job (P0 for its service); this alert is about many at once


def _targets_down(ctx: Ctx) -> str:
    return "count(up == 0) / count(up)"


def _targets_down_expr(ctx: Ctx) -> str:
    return f"{_targets_down(ctx)} > {num(ctx.threshold)} and on () count(up == 0) >= {MIN_TARGETS_DOWN}"


def _up_fleet(total: int, down: int, n: int) -> list:
    return [S.gauge("up", {"job": f"monstack-test-{i % 4}", "instance": f"target-{i}:9100"}, 0 if i < down else 1, n) for i in range(total)]


def _targets_down_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    total = 100
    cases = threshold_cases(ctx, d, lambda v, n: (_up_fleet(total, round(v * total), n), [{}]),
                            settle="0s", shown=lambda v: round(v * total) / total)
    at = cases[0].at
    cases.append(Case("PrometheusTargetsDownMany stays silent for a single target down (TargetDown covers it)",
                      tuple(_up_fleet(5, 1, points(at))), (), at))
    return cases


def _am_failing_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    labels = _am(ctx, integration="slack")
    kept = {k: labels[k] for k in _SELF_KEEP + ("integration",)}
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("alertmanager_notifications_total", labels, 1, n), S.counter("alertmanager_notifications_failed_total", labels, v, n)],
        [kept]))


def _component_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    at = eval_time("0s", ctx.setting.for_)
    n = points(at)
    labels = S.self_target(ctx.model, names.SELF_BLACKBOX_JOB, BLACKBOX_INSTANCE)
    return [
        Case("MonstackComponentDown fires when a stack component cannot be scraped", (S.gauge("up", labels, 0, n),), (Expected(labels, 0),), at),
        Case("MonstackComponentDown stays silent while it is scraped", (S.gauge("up", labels, 1, n),), (), at),
    ]


ALERTS = (
    WATCHDOG,
    AlertDef(
        name="PrometheusConfigReloadFailed",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # a reload fails loudly in the logs; ten minutes leaves time to fix a typo before paging
        threshold=None,
        unit="none",
        op="==",
        summary="Prometheus {{ $labels.instance }}: configuration reload failed",
        description="The last configuration reload of Prometheus {{ $labels.instance }} failed; it still runs the previous configuration, so recent inventory changes are not active.",
        expr=lambda c: f"max_over_time({sel('prometheus_config_last_reload_successful', PROM)}[5m]) == 0",
        query=lambda c: sel("prometheus_config_last_reload_successful", PROM),
        cases=_reload_cases("prometheus_config_last_reload_successful", _prom),
        meaning="Prometheus rejected its new configuration or rule files and keeps running the old ones.",
        causes=("a hand-edited file (render with monstack instead)", "a rule or config file missing from the deployment",
                "a secret file a scrape job references is missing"),
    ),
    AlertDef(
        name="PrometheusRuleEvaluationFailures",
        kinds=("meta",),
        severity="P1",
        for_="15m",  # a failing rule keeps failing; fifteen minutes filters one timeout during a restart
        threshold=0,  # failed evaluations per 5 minutes; any failure means an alert may not fire
        unit="count",
        summary="Prometheus {{ $labels.instance }}: rules of {{ $labels.rule_group }} fail to evaluate",
        description="{{ $value | humanize }} evaluations of rule group {{ $labels.rule_group }} failed in 5 minutes on {{ $labels.instance }}; alerts in it may not fire.",
        query=_increase_expr("prometheus_rule_evaluation_failures_total", PROM),
        cases=_increase_cases("prometheus_rule_evaluation_failures_total",
                              lambda c: _prom(c, rule_group="/etc/prometheus/rules/monstack-test.yml;monstack-test.alerts")),
        meaning="Some recording or alerting rules fail at evaluation time: their alerts are blind.",
        causes=("a rule producing duplicate series (many-to-many matching)", "queries timing out or hitting limits", "storage errors"),
    ),
    AlertDef(
        name="PrometheusRuleGroupsMissed",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # one slow evaluation after a restart is normal; a quarter hour is a rule group too heavy for its interval
        threshold=0,  # missed iterations per 5 minutes
        unit="count",
        summary="Prometheus {{ $labels.instance }}: rule group {{ $labels.rule_group }} misses evaluations",
        description="Rule group {{ $labels.rule_group }} missed {{ $value | humanize }} evaluations in 5 minutes on {{ $labels.instance }}: it takes longer than its interval.",
        query=_increase_expr("prometheus_rule_group_iterations_missed_total", PROM),
        cases=_increase_cases("prometheus_rule_group_iterations_missed_total",
                              lambda c: _prom(c, rule_group="/etc/prometheus/rules/monstack-test.yml;monstack-test.slo")),
        meaning="A rule group is too slow for its evaluation interval; alerts in it are evaluated less often than configured.",
        causes=("expensive long-window rules (SLO windows over many series)", "an overloaded Prometheus"),
    ),
    AlertDef(
        name="PrometheusNotificationsDropped",
        kinds=("meta",),
        severity="P1",
        for_="5m",  # every dropped alert is a lost notification: tell someone soon
        threshold=0,  # dropped alerts per 5 minutes: each one is a notification nobody got
        unit="count",
        summary="Prometheus {{ $labels.instance }} dropped {{ $value | humanize }} alert notifications",
        description="Prometheus {{ $labels.instance }} dropped {{ $value | humanize }} alerts in 5 minutes before they reached Alertmanager.",
        query=_increase_expr("prometheus_notifications_dropped_total", PROM),
        cases=_increase_cases("prometheus_notifications_dropped_total", _prom),
        meaning="Alerts were lost between Prometheus and Alertmanager.",
        causes=("Alertmanager unreachable long enough for the queue to overflow", "errors sending to Alertmanager"),
    ),
    AlertDef(
        name="PrometheusNotificationQueueFilling",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # the queue drains after bursts; fifteen minutes full is a stuck Alertmanager
        threshold=0.5,  # share of the notification queue in use; when full, alerts are dropped
        unit="ratio",
        summary="Prometheus {{ $labels.instance }}: alert queue {{ $value | humanizePercentage }} full",
        description="The queue of alerts Prometheus {{ $labels.instance }} sends to Alertmanager is {{ $value | humanizePercentage }} full (alert above {threshold} for {for}).",
        expr=lambda c: (f"{sel('prometheus_notifications_queue_length', PROM)} / {sel('prometheus_notifications_queue_capacity', PROM)}"
                        f" > {num(c.threshold)}"),
        query=lambda c: f"{sel('prometheus_notifications_queue_length', PROM)} / {sel('prometheus_notifications_queue_capacity', PROM)}",
        cases=lambda d, c: threshold_cases(c, d, lambda v, n: (
            [S.gauge("prometheus_notifications_queue_capacity", _prom(c), 10000, n),
             S.gauge("prometheus_notifications_queue_length", _prom(c), v * 10000, n)], [_prom(c)]), settle="0s"),
        meaning="Prometheus produces alerts faster than Alertmanager accepts them; when the queue is full, alerts are dropped.",
        causes=("Alertmanager slow or unreachable", "an alert storm (thousands of firing alerts)"),
    ),
    AlertDef(
        name="PrometheusAlertmanagerErrors",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # a single failed send is retried; ten minutes of errors means alerts are not delivered
        threshold=0.01,  # share of alert sends to Alertmanager that fail
        unit="ratio",
        summary="Prometheus {{ $labels.instance }}: {{ $value | humanizePercentage }} of sends to Alertmanager fail",
        description="{{ $value | humanizePercentage }} of the alert batches Prometheus {{ $labels.instance }} sent to {{ $labels.alertmanager }} failed over 5 minutes.",
        query=_ratio_of_rates("prometheus_notifications_errors_total", "prometheus_notifications_sent_total", PROM, SELF_BY + ", alertmanager"),
        cases=_ratio_cases("prometheus_notifications_errors_total", "prometheus_notifications_sent_total",
                           lambda c: _prom(c, alertmanager=f"http://{AM_INSTANCE}/api/v2/alerts"), _SELF_KEEP + ("alertmanager",)),
        meaning="Prometheus cannot deliver alerts to Alertmanager reliably.",
        causes=("Alertmanager down or overloaded", "network or TLS problems between them"),
    ),
    AlertDef(
        name="PrometheusNotConnectedToAlertmanagers",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # a restart of Alertmanager takes seconds; ten minutes without one means nobody hears about alerts
        threshold=1,  # Alertmanagers Prometheus must know about
        unit="count",
        op="<",
        summary="Prometheus {{ $labels.instance }} knows no Alertmanager",
        description="Prometheus {{ $labels.instance }} has discovered {{ $value | humanize }} Alertmanagers for {for}: alerts go nowhere.",
        expr=lambda c: f"max_over_time({sel('prometheus_notifications_alertmanagers_discovered', PROM)}[5m]) < {num(c.threshold)}",
        query=lambda c: sel("prometheus_notifications_alertmanagers_discovered", PROM),
        cases=_gauge_cases("prometheus_notifications_alertmanagers_discovered", _prom, settle="5m"),
        meaning="Prometheus evaluates alerts but has no Alertmanager to send them to.",
        causes=("the alerting section of prometheus.yml is wrong", "Alertmanager's address does not resolve"),
    ),
    AlertDef(
        name="PrometheusTargetsDownMany",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # a network blip recovers within minutes; lower on flat, reliable networks
        threshold=0.1,  # share of all targets down (and at least MIN_TARGETS_DOWN); single outages page through TargetDown
        unit="ratio",
        summary="{{ $value | humanizePercentage }} of all scrape targets are down",
        description="Prometheus cannot scrape {{ $value | humanizePercentage }} of its targets (alert above {threshold}, at least 2 targets, for {for}): look for a common cause.",
        expr=_targets_down_expr,
        query=_targets_down,
        cases=_targets_down_cases,
        meaning="Many targets fail to scrape at once: usually a network, DNS or Prometheus-side problem, not the services themselves.",
        causes=("a network partition or firewall change", "DNS failure", "Prometheus overloaded (scrapes time out)"),
    ),
    AlertDef(
        name="PrometheusScrapeSampleLimitHit",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # the limit keeps biting once hit; a quarter hour filters one oversized scrape
        threshold=0,  # scrapes rejected per 5 minutes for exceeding sample_limit
        unit="count",
        summary="Prometheus {{ $labels.instance }} rejects scrapes over sample_limit",
        description="{{ $value | humanize }} scrapes were rejected in 5 minutes on {{ $labels.instance }} because a target exposed more samples than sample_limit: their data is lost.",
        query=_increase_expr("prometheus_target_scrapes_exceeded_sample_limit_total", PROM),
        cases=_increase_cases("prometheus_target_scrapes_exceeded_sample_limit_total", _prom),
        meaning="A target exposes more series than allowed; every scrape of it is dropped whole.",
        causes=("a label with unbounded values (user ids, URLs) in an application metric", "a new exporter version with many more series"),
    ),
    AlertDef(
        name="PrometheusTsdbCompactionsFailing",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # compactions run every two hours: a failure persists until fixed
        threshold=0,  # failed compactions per 5 minutes
        unit="count",
        summary="Prometheus {{ $labels.instance }}: TSDB compactions fail",
        description="{{ $value | humanize }} TSDB compactions failed in 5 minutes on {{ $labels.instance }}; disk use grows and queries slow down.",
        query=_increase_expr("prometheus_tsdb_compactions_failed_total", PROM),
        cases=_increase_cases("prometheus_tsdb_compactions_failed_total", _prom),
        meaning="Prometheus cannot compact its storage blocks.",
        causes=("a full disk", "corrupted blocks", "permissions on the data directory"),
    ),
    AlertDef(
        name="AlertmanagerConfigReloadFailed",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # as Prometheus' reload alert: time to fix a typo before anyone is paged
        threshold=None,
        unit="none",
        op="==",
        summary="Alertmanager {{ $labels.instance }}: configuration reload failed",
        description="The last configuration reload of Alertmanager {{ $labels.instance }} failed; it still routes with the previous configuration.",
        expr=lambda c: f"max_over_time({sel('alertmanager_config_last_reload_successful', AM)}[5m]) == 0",
        query=lambda c: sel("alertmanager_config_last_reload_successful", AM),
        cases=_reload_cases("alertmanager_config_last_reload_successful", _am),
        meaning="Alertmanager rejected its new configuration and keeps routing with the old one.",
        causes=("a hand-edited alertmanager.yml", "a template or secret file missing from the deployment"),
    ),
    AlertDef(
        name="AlertmanagerNotificationsFailing",
        kinds=("meta",),
        severity="P1",
        for_="10m",  # receivers retry; ten minutes of failures means people are not being told
        threshold=0.01,  # share of notification attempts to one integration that fail
        unit="ratio",
        summary="Alertmanager {{ $labels.instance }} fails to notify {{ $labels.integration }}",
        description="{{ $value | humanizePercentage }} of Alertmanager's notifications to {{ $labels.integration }} failed over 5 minutes (alert above {threshold} for {for}).",
        expr=lambda c: (f"{_ratio_of_rates('alertmanager_notifications_failed_total', 'alertmanager_notifications_total', AM, SELF_BY + ', integration')(c)}"
                        f" > {num(c.threshold)}"),
        query=_ratio_of_rates("alertmanager_notifications_failed_total", "alertmanager_notifications_total", AM, SELF_BY + ", integration"),
        cases=_am_failing_cases,
        meaning="Alertmanager cannot deliver notifications through one integration: people on that channel are not told about alerts.",
        causes=("a revoked or wrong webhook URL, routing key or SMTP password", "the provider (Slack, PagerDuty, mail server) is down",
                "egress blocked by a firewall or proxy"),
    ),
    AlertDef(
        name="MonstackComponentDown",
        kinds=("meta",),
        severity="P1",
        for_="5m",  # components restart in seconds; five minutes down is an outage of the stack itself
        threshold=None,
        unit="none",
        op="==",
        summary="monstack component {{ $labels.job }} ({{ $labels.instance }}) is down",
        description="Prometheus cannot scrape the stack's own {{ $labels.job }} at {{ $labels.instance }} for {for}.",
        expr=lambda c: f"{sel('up', {names.MONSTACK_JOB_LABEL: 'self'})} == 0",
        query=lambda c: sel("up", {names.MONSTACK_JOB_LABEL: "self"}),
        cases=_component_cases,
        meaning="Part of the monitoring stack itself is down: Alertmanager (no notifications) or the blackbox exporter (every health probe fails).",
        causes=("the process crashed or was not started", "its port is taken by another process"),
    ),
)


# --- remote write (only when stack.remote_write names a destination) -----------------------

RW_BY = SELF_BY + ", remote_name, url"
_RW_KEEP = _SELF_KEEP + ("remote_name", "url")


def _rw(ctx: Ctx) -> dict[str, str]:
    rw = ctx.model.stack.remote_write[0]
    return _prom(ctx, remote_name=rw.name, url=rw.url)


def _rw_failed_ratio(ctx: Ctx) -> str:
    # samples_total counts every send attempt, failed ones included; failed_total only those dropped for good.
    failed = f"sum by ({RW_BY}) (rate({sel('prometheus_remote_storage_samples_failed_total', PROM)}[5m]))"
    attempted = f"sum by ({RW_BY}) (rate({sel('prometheus_remote_storage_samples_total', PROM)}[5m]))"
    return f"{failed} / {attempted}"


def _rw_failed_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    labels = _rw(ctx)
    kept = {k: labels[k] for k in _RW_KEEP}
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("prometheus_remote_storage_samples_failed_total", labels, 100 * v, n),
         S.counter("prometheus_remote_storage_samples_total", labels, 100, n)], [kept]))


def _rw_lag(ctx: Ctx) -> str:
    """The newest sample appended (one series per Prometheus) minus the newest one each queue sent.

    A queue that never sent anything (the store unreachable since Prometheus started) has no
    sent-timestamp series at all; its pending-samples series stands in, valued at Prometheus'
    start time, so the lag is then the time since start.
    """
    def over(metric: str) -> str:
        return f"max_over_time({sel(metric, PROM)}[5m])"

    never_sent = (f"0 * {over('prometheus_remote_storage_samples_pending')}"
                  f" + on ({SELF_BY}) group_left {over('process_start_time_seconds')}")
    return (f"{over('prometheus_remote_storage_highest_timestamp_in_seconds')} - on ({SELF_BY}) group_right ()"
            f" ({over('prometheus_remote_storage_queue_highest_sent_timestamp_seconds')} or {never_sent})")


_NOW = 1.8e9  # a realistic Unix time: the lag is a difference of timestamps


def _rw_lag_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    prom, queue = _prom(ctx), _rw(ctx)

    def build(lag: float | None, n: int, started: float = _NOW - 86400) -> list:
        return [S.gauge("prometheus_remote_storage_highest_timestamp_in_seconds", prom, _NOW, n),
                S.gauge("prometheus_remote_storage_samples_pending", queue, 100, n),
                S.gauge("process_start_time_seconds", prom, started, n)] + (
            [S.gauge("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", queue, _NOW - lag, n)] if lag is not None else [])

    # group_right: the alert carries the queue's labels, all of them.
    cases = threshold_cases(ctx, d, lambda v, n: (build(v, n), [queue]), settle="5m")
    at = eval_time("5m", ctx.setting.for_)
    up_for = 3600.0
    cases.append(Case("PrometheusRemoteWriteBehind fires when a queue never sent anything since Prometheus started",
                      tuple(build(None, points(at), started=_NOW - up_for)), (Expected(queue, up_for),), at))
    return cases


REMOTE_WRITE_ALERTS = (
    AlertDef(
        name="PrometheusRemoteWriteFailing",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # Prometheus retries recoverable errors itself; a quarter hour of failures is lost long-term data
        threshold=0.01,  # share of samples the remote store rejected for good
        unit="ratio",
        summary="Prometheus {{ $labels.instance }}: {{ $value | humanizePercentage }} of samples to {{ $labels.remote_name }} fail",
        description=("{{ $value | humanizePercentage }} of the samples Prometheus {{ $labels.instance }} sent to remote storage "
                     "{{ $labels.remote_name }} ({{ $labels.url }}) failed over 5 minutes (alert above {threshold} for {for}); "
                     "they are missing from long-term storage."),
        query=_rw_failed_ratio,
        cases=_rw_failed_cases,
        meaning="The remote store (VictoriaMetrics, Thanos Receive, Mimir) rejects samples: long-term storage has gaps, local data is intact.",
        causes=("wrong credentials or URL (HTTP 4xx)", "the store refuses samples: out-of-order, too old, or over its limits",
                "the store is down for longer than Prometheus retries"),
    ),
    AlertDef(
        name="PrometheusRemoteWriteBehind",
        kinds=("meta",),
        severity="P2",
        for_="15m",  # the queue catches up after a store restart; a quarter hour behind is a store too slow or unreachable
        threshold=120,  # seconds between the newest sample appended and the newest one sent
        unit="seconds",
        summary="Prometheus {{ $labels.instance }}: remote write to {{ $labels.remote_name }} is {{ $value | humanizeDuration }} behind",
        description=("Prometheus {{ $labels.instance }} has sent samples to {{ $labels.remote_name }} ({{ $labels.url }}) only up to "
                     "{{ $value | humanizeDuration }} ago (alert above {threshold} for {for}); if it falls behind the WAL "
                     "(about two hours), samples are lost."),
        expr=lambda c: f"({_rw_lag(c)}) > {num(c.threshold)}",
        query=_rw_lag,
        cases=_rw_lag_cases,
        meaning="Remote write cannot keep up with ingestion or cannot reach the store; queries on the store miss recent data.",
        causes=("the store is down or slow", "too few shards for the ingestion rate (queue_config.max_shards)",
                "network problems between Prometheus and the store"),
    ),
)


def for_stack(model: "Model") -> tuple[AlertDef, ...]:
    """The meta alerts this stack needs: remote-write alerts only when it writes to a remote store."""
    return ALERTS + (REMOTE_WRITE_ALERTS if model.stack.remote_write else ())
