"""Alerts every scraped or probed service gets: target down, health probes, TLS certificates."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from generator import names
from generator.catalogue import series as S
from generator.catalogue.core import (
    MARGIN_MS,
    PROBED,
    WINDOW,
    AlertDef,
    Case,
    Ctx,
    Expected,
    Needs,
    beyond,
    consecutive_cases,
    consecutive_failures,
    eval_time,
    num,
    points,
    probe_interval,
    still_failing,
    threshold_cases,
)
from generator.durations import Duration
from generator.promql import sel

if TYPE_CHECKING:
    from generator.model import Probe

SCRAPED_KINDS = ("http", "worker", "postgres", "redis", "host", "custom")
ALL_KINDS = SCRAPED_KINDS + ("probe",)


# Failed scrapes (probes) in a row before TargetDown (HealthProbeFailing) fires. Two, never one: a
# single failed scrape or probe (a restart, a dropped packet) must not page, and its `for` (0s by
# default) only adds to this. Both alerts sit in the fast rule group, so at a 15s scrape interval a dead
# target fires about 20s after it died, and a dead health URL (probed every 10s) about 15s after.
FAILURES_IN_A_ROW = 2


def _up(ctx: Ctx) -> str:
    return sel("up", {"job": names.service_job(ctx.s.name)})


def _probe_failed_lately(ctx: Ctx) -> str:
    """A health probe of the service failed at least once within a run's window: the probe is on the outage."""
    window = Duration(FAILURES_IN_A_ROW * probe_interval(ctx.model, ctx.s).ms + MARGIN_MS)
    return f"min_over_time({sel('probe_success', {'job': names.probe_job(ctx.s.name)})}[{window}]) == 0"


def _probe_pages(ctx: Ctx) -> bool:
    """HealthProbeFailing watches the service: it has health probes and the inventory did not disable the alert."""
    return bool(ctx.s.probes) and "HealthProbeFailing" not in ctx.s.disabled_alerts


def _target_down_expr(ctx: Ctx) -> str:
    # One outage, one page: once a health probe of the service has failed, HealthProbeFailing is the page and
    # TargetDown stays silent, whichever of the two counted its run of failures first. With HealthProbeFailing
    # disabled, TargetDown is the only page and never steps aside.
    assert ctx.s.scrape is not None
    job = {"job": names.service_job(ctx.s.name)}
    down = still_failing(consecutive_failures("up", job, ctx.s.scrape.interval, FAILURES_IN_A_ROW), ctx, "up", job, ("instance", "job"))
    return f"({down}) unless on ({names.SERVICE}) ({_probe_failed_lately(ctx)})" if _probe_pages(ctx) else down


def _target_down_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    assert ctx.s.scrape is not None
    out = consecutive_cases(d, ctx, "up", [S.target(ctx.model, ctx.s)], ctx.s.scrape.interval, FAILURES_IN_A_ROW, "failed scrapes")
    if _probe_pages(ctx):
        fires = out[0]
        up = fires.series[0]
        failing = tuple(S.Series("probe_success", tuple(S.probe(ctx.model, ctx.s, p).items()), up.values) for p in ctx.s.probes)
        passing = tuple(S.Series("probe_success", tuple(S.probe(ctx.model, ctx.s, p).items()), " ".join(["1"] * len(up.values.split())))
                        for p in ctx.s.probes)
        out = [replace(fires, title=fires.title + " while the health probes pass", series=(up, *passing)),
               replace(fires, title=f"{d.name} stays silent while a health probe of the service fails too (HealthProbeFailing is the page)",
                       series=(up, *failing), alerts=(), silent_at=()),
               *out[1:]]
    return out


TARGET_DOWN = AlertDef(
    name="TargetDown",
    kinds=SCRAPED_KINDS,
    severity="P0",
    for_="0s",  # FAILURES_IN_A_ROW failed scrapes already tell an outage from a blip; `for` waits longer still
    threshold=None,
    unit="none",
    op="==",
    summary="{service}: target {{ $labels.instance }} is down",
    description=f"The last {FAILURES_IN_A_ROW} scrapes of {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) of {{service}} failed.",
    expr=_target_down_expr,
    query=_up,
    cases=_target_down_cases,
    fast=True,
    meaning="Prometheus cannot scrape the target: the process is down, hung, or unreachable. The other alerts of the same instance are muted while this fires; the service's other instances and its SLO alerts are not. While a health probe of the service fails too, HealthProbeFailing is the one page and this alert stays silent (unless the inventory disables HealthProbeFailing).",
    causes=("the process crashed, was stopped or is restarting in a loop", "a network, DNS or firewall change",
            "the /metrics handler hangs or takes longer than scrape_timeout", "TLS or authentication settings of the scrape are wrong"),
    # A service reading another kind of metrics from an endpoint another service scrapes first: that one's TargetDown watches it.
    needs=Needs(lambda s: s.scrape is not None and s.shares_targets_with is None,
                "the service has no scrape targets of its own (another service scrapes them first and watches them)"),
)


def _probe_success(ctx: Ctx) -> str:
    return sel("probe_success", {"job": names.probe_job(ctx.s.name)})


def _probe_failing_expr(ctx: Ctx) -> str:
    job = {"job": names.probe_job(ctx.s.name)}
    return still_failing(consecutive_failures("probe_success", job, probe_interval(ctx.model, ctx.s), FAILURES_IN_A_ROW),
                         ctx, "probe_success", job, ("instance", "job", "probe"))


def _probe_failing_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    labels = [S.probe(ctx.model, ctx.s, p) for p in ctx.s.probes]
    return consecutive_cases(d, ctx, "probe_success", labels, probe_interval(ctx.model, ctx.s), FAILURES_IN_A_ROW, "failed probes")


HEALTH_PROBE_FAILING = AlertDef(
    name="HealthProbeFailing",
    kinds=ALL_KINDS,
    severity="P0",
    for_="0s",  # as TargetDown: FAILURES_IN_A_ROW failed probes, never a single slow answer
    threshold=None,
    unit="none",
    op="==",
    summary="{service}: health probe {{ $labels.probe }} failing",
    description=f"The last {FAILURES_IN_A_ROW} blackbox probes {{{{ $labels.probe }}}} of {{service}} ({{{{ $labels.instance }}}}) failed.",
    expr=_probe_failing_expr,
    query=_probe_success,
    cases=_probe_failing_cases,
    fast=True,
    meaning="The service's health URL does not answer successfully through the blackbox exporter. Users are likely affected. Every other alert of the service is muted while this fires, and TargetDown does not fire: one outage, one page.",
    causes=("the service is down or not ready", "a dependency its health check tests is down",
            "DNS, TLS or network problems between the blackbox exporter and the service"),
    needs=PROBED,
)


def _slow_probes(ctx: Ctx) -> list[tuple[Probe, float]]:
    """(probe, limit in seconds) for every probe with a duration limit; an override replaces every limit."""
    out = []
    for p in ctx.s.probes:
        if p.max_duration is not None:
            out.append((p, ctx.setting.threshold if ctx.setting.threshold is not None else p.max_duration.seconds))
    return out


def _probe_duration(ctx: Ctx, p) -> str:
    return f"avg_over_time({sel('probe_duration_seconds', {'job': names.probe_job(ctx.s.name), names.PROBE: p.name})}[{ctx.window}])"


def _probe_slow_expr(ctx: Ctx) -> str:
    return " or ".join(f"{_probe_duration(ctx, p)} > {num(limit)}" for p, limit in _slow_probes(ctx))


def _probe_slow_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    at = eval_time(ctx.window, ctx.setting.for_)
    n = points(at)
    out = []
    for fire in (True, False):
        series, alerts = [], []
        for p, limit in _slow_probes(ctx):
            value = beyond(limit, ">", "seconds", fire)
            lb = S.probe(ctx.model, ctx.s, p)
            series.append(S.gauge("probe_duration_seconds", lb, value, n))
            series.append(S.gauge("probe_success", lb, 1, n))
            alerts.append(Expected({k: v for k, v in lb.items()}, value))
        title = "HealthProbeSlow fires when probes take longer than their limit" if fire else "HealthProbeSlow stays silent just under the limits"
        out.append(Case(title, tuple(series), tuple(alerts) if fire else (), at))
    return out


HEALTH_PROBE_SLOW = AlertDef(
    name="HealthProbeSlow",
    kinds=ALL_KINDS,
    severity="P2",
    for_="5m",  # averaged over 5m already; another 5m keeps one slow deploy minute from paging
    threshold=None,  # per probe: its max_duration (e.g. 50ms for liveness, 500ms for readiness)
    derived_threshold=lambda s: None,  # an override (seconds) replaces every probe's max_duration
    unit="seconds",
    summary="{service}: health probe {{ $labels.probe }} takes {{ $value | humanizeDuration }}",
    description="The {{ $labels.probe }} probe of {service} ({{ $labels.instance }}) averaged {{ $value | humanizeDuration }} over {window}, above its limit, for {for}.",
    expr=_probe_slow_expr,
    query=lambda c: f"avg_over_time({sel('probe_duration_seconds', {'job': names.probe_job(c.s.name)})}[{c.window}])",
    cases=_probe_slow_cases,
    meaning="A health endpoint answers, but slower than its max_duration: the service or a dependency its check touches is degraded.",
    causes=("a slow dependency inside the health check (database, cache)", "CPU saturation or long GC pauses",
            "network latency between the blackbox exporter and the service"),
    needs=Needs(lambda s: any(p.max_duration is not None for p in s.probes), "none of the service's health URLs sets max_duration"),
    window=WINDOW,
)


def _cert_expiry(ctx: Ctx) -> str:
    return f"({sel('probe_ssl_earliest_cert_expiry', {'job': names.probe_job(ctx.s.name)})} - time()) / 86400"


def _cert_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    def build(days: float, points: int):
        at_s = eval_time("0s", ctx.setting.for_).ms // 1000
        out, labels = [], []
        for p in ctx.s.probes:
            if p.url.startswith("https://"):
                lb = S.probe(ctx.model, ctx.s, p)
                out.append(S.gauge("probe_ssl_earliest_cert_expiry", lb, at_s + days * 86400, points))
                labels.append(lb)
        return out, labels

    return threshold_cases(ctx, d, build, settle="0s")



HTTPS = Needs(lambda s: any(p.url.startswith("https://") for p in s.probes), "the service has no https:// health URL")


TLS_EXPIRING = AlertDef(
    name="TlsCertificateExpiring",
    kinds=ALL_KINDS,
    severity="P2",
    for_="1h",  # expiry moves slowly; an hour filters a renewal in progress
    threshold=14,  # days: two weeks leaves time for a manual renewal when automation failed
    unit="days",
    op="<",
    summary="{service}: TLS certificate of {{ $labels.instance }} expires in {{ $value | humanize }} days",
    description="The certificate served at {{ $labels.instance }} ({service}) expires in {{ $value | humanize }} days (alert below {threshold}).",
    query=_cert_expiry,
    cases=_cert_cases,
    meaning="The TLS certificate of an https health URL is about to expire; clients will refuse the connection when it does.",
    causes=("automatic renewal (ACME, cert-manager) failing", "a manually managed certificate nobody renewed"),
    problem="TlsCertificateExpiring",
    needs=HTTPS,
)

TLS_EXPIRING_SOON = AlertDef(
    name="TlsCertificateExpiringSoon",
    kinds=ALL_KINDS,
    severity="P1",
    for_="1h",  # as the P2 tier: expiry moves slowly
    threshold=3,  # days: less than a long weekend left; the P2 tier has been ignored
    unit="days",
    op="<",
    summary=TLS_EXPIRING.summary,
    description=TLS_EXPIRING.description,
    query=_cert_expiry,
    cases=_cert_cases,
    meaning="The TLS certificate of an https health URL expires within days; renew it now.",
    causes=TLS_EXPIRING.causes,
    problem="TlsCertificateExpiring",
    needs=HTTPS,
)

ALERTS = (TARGET_DOWN, HEALTH_PROBE_FAILING, HEALTH_PROBE_SLOW, TLS_EXPIRING, TLS_EXPIRING_SOON)
