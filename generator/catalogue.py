"""The alert catalogue: which alerts each service kind gets, with default thresholds.

Like a mixin's config: each default says when you would change it. Every
threshold, `for` and severity can be overridden per service under `alerts:`.
Expressions read recorded series (generator/render/recording.py), never raw
histograms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from generator import names
from generator.promql import sel

if TYPE_CHECKING:
    from generator.model import AlertSetting, Service

Expr = Callable[["Service", "AlertSetting"], str]


@dataclass(frozen=True)
class AlertDef:
    name: str
    kinds: tuple[str, ...]
    severity: str
    for_: str
    threshold: float | None
    unit: str  # how to humanize the value in descriptions: "ratio", "seconds", "bytes", "count"
    summary: str  # Go template text; $labels and $value available
    description: str
    expr: Expr
    meaning: str  # for the runbook
    causes: tuple[str, ...] = ()
    applies: Callable[["Service"], bool] = field(default=lambda s: True)
    requires: str = ""  # why it may not apply, for error messages
    derived_threshold: Callable[["Service"], float | None] | None = None
    problem: str | None = None  # shared by tiers of one problem (P0/P1 error ratio); defaults to the name

    @property
    def problem_label(self) -> str:
        return self.problem or self.name

    def threshold_for(self, service: "Service") -> float | None:
        if self.derived_threshold is not None:
            return self.derived_threshold(service)
        return self.threshold


def _rec(service: "Service", metric: str, ops: str) -> str:
    return sel(names.record("service", metric, ops), {names.SERVICE: service.name})


def _scraped(s: "Service") -> bool:
    return s.scrape is not None


ALERTS: tuple[AlertDef, ...] = (
    AlertDef(
        name="TargetDown",
        kinds=("http", "worker", "postgres", "redis", "host", "custom"),
        severity="P0",
        for_="2m",  # one missed scrape is noise; two minutes is an outage (SCENARIOS C)
        threshold=None,
        unit="count",
        summary="{{ $labels.service }}: target {{ $labels.instance }} is down",
        description="Prometheus cannot scrape {{ $labels.instance }} of {{ $labels.service }} (up == 0).",
        expr=lambda s, a: f"{sel('up', {'job': names.service_job(s.name)})} == 0",
        meaning="Prometheus failed to scrape the target: the process is down, hung, or unreachable.",
        causes=("the process crashed or was stopped", "a network or firewall change", "the /metrics handler hangs or exceeds scrape_timeout"),
        applies=_scraped,
        requires="the service has no scrape targets",
    ),
    AlertDef(
        name="HealthProbeFailing",
        kinds=("http", "worker", "postgres", "redis", "host", "probe", "custom"),
        severity="P0",
        for_="2m",
        threshold=None,
        unit="count",
        summary="{{ $labels.service }}: health probe {{ $labels.probe }} failing",
        description="The blackbox probe of {{ $labels.instance }} has failed for 2 minutes.",
        expr=lambda s, a: f"{sel('probe_success', {'job': names.probe_job(s.name)})} == 0",
        meaning="The service's health URL does not answer successfully through the blackbox exporter.",
        causes=("the service is down or not ready", "a dependency its health check tests is down", "DNS or TLS problems"),
        applies=lambda s: bool(s.probes),
        requires="the service has no health URLs",
    ),
    AlertDef(
        name="HttpErrorRatioCritical",
        kinds=("http",),
        severity="P0",
        for_="5m",
        threshold=0.05,  # 5% of requests failing hurts users now (SCENARIOS A, B)
        unit="ratio",
        summary="{{ $labels.service }}: {{ $value | humanizePercentage }} of requests fail",
        description="More than 5% of {{ $labels.service }}'s requests returned a server error over 5 minutes.",
        expr=lambda s, a: f"{_rec(s, 'http_errors', 'ratio_rate5m')} > {a.threshold:g}",
        problem="HttpErrorRatio",
        meaning="A large share of requests fail with a server error.",
        causes=("a bad deploy", "a failing dependency (database, cache, external API)", "resource exhaustion"),
        applies=_scraped,
        requires="the service has no scrape targets",
    ),
    AlertDef(
        name="HttpErrorRatioHigh",
        kinds=("http",),
        severity="P1",
        for_="5m",
        threshold=0.01,  # 1%: will hurt soon; the P0 tier inhibits this one above 5%
        unit="ratio",
        summary="{{ $labels.service }}: {{ $value | humanizePercentage }} of requests fail",
        description="More than 1% of {{ $labels.service }}'s requests returned a server error over 5 minutes.",
        expr=lambda s, a: f"{_rec(s, 'http_errors', 'ratio_rate5m')} > {a.threshold:g}",
        problem="HttpErrorRatio",
        meaning="An elevated share of requests fail with a server error.",
        causes=("a partial outage of a dependency", "one bad instance behind the load balancer", "a buggy route"),
        applies=_scraped,
        requires="the service has no scrape targets",
    ),
    AlertDef(
        name="HttpLatencyP95High",
        kinds=("http",),
        severity="P1",
        for_="10m",
        threshold=2.0,  # seconds; SCENARIOS A: p95 > 2 s for 10 min is P1
        unit="seconds",
        summary="{{ $labels.service }}: p95 latency {{ $value | humanizeDuration }}",
        description="The 95th percentile of {{ $labels.service }}'s request latency is above 2s.",
        expr=lambda s, a: f"{_rec(s, 'http_request_duration_seconds', 'p95_5m')} > {a.threshold:g}",
        meaning="Requests are slow for a sizeable share of users.",
        causes=("slow database queries", "a slow external API", "CPU saturation or GC pauses"),
        applies=_scraped,
        requires="the service has no scrape targets",
    ),
)

_BY_NAME = {a.name: a for a in ALERTS}


def get(name: str) -> AlertDef:
    return _BY_NAME[name]


def for_kind(kind: str) -> list[AlertDef]:
    return [a for a in ALERTS if kind in a.kinds]


def for_service(service: "Service") -> list[AlertDef]:
    return [a for a in for_kind(service.kind) if a.applies(service)]
