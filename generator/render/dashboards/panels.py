"""Panels shared by several dashboards: service status, RED, saturation, kinds, probes, custom rules.

Queries read the recorded series of generator/recording.py (named in
generator/catalogue/recorded.py) where they exist, and the exporters' own metrics otherwise.
Threshold lines come from the service's alerts, overrides applied, coloured by severity,
so a panel shows where its alert fires. A Scope adds the dashboard's label matchers: fixed
ones (service="checkout-api") and template variables (env=~"$env").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from generator import alerting, catalogue, defaults, names
from generator.catalogue import custom
from generator.catalogue import recorded as R
from generator.catalogue.core import BY_TEXT
from generator.model import CustomRule, HttpMetrics, Kpi, Model, Service, WorkerMetrics
from generator.promql import quote, sel
from generator.render.dashboards import builder as b
from generator.units import duration_scale

RATE = "$__rate_interval"
# Grafana units for the catalogue's value kinds (AlertDef.unit).
UNITS = {"ratio": "percentunit", "seconds": "s", "bytes": "bytes", "count": "short", "days": "d", "hours": "h", "none": "none"}


@dataclass(frozen=True)
class Scope:
    """The label matchers every query of a dashboard (section) carries."""

    eq: Mapping[str, str] = field(default_factory=dict)  # fixed: service="checkout-api"
    vars: Mapping[str, str] = field(default_factory=dict)  # template variables: env=~"$env"
    instance: bool = False  # raw series carry instance; recorded ones are summed over it

    def raw(self, metric: str, eq: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
            neq: Mapping[str, str] | None = None, nre: Mapping[str, str] | None = None) -> str:
        """A selector over series as scraped (instance label present)."""
        rx = dict(self.vars)
        if self.instance:
            rx["instance"] = "$instance"
        rx.update(regex or {})
        return _add_nre(sel(metric, {**self.eq, **(eq or {})}, rx, neq), nre)

    def rec(self, metric: str, eq: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None) -> str:
        """A selector over recorded series (no instance label)."""
        return sel(metric, {**self.eq, **(eq or {})}, {**self.vars, **(regex or {})})

    def with_eq(self, **eq: str) -> "Scope":
        return Scope({**self.eq, **eq}, self.vars, self.instance)

    def probes(self) -> "Scope":
        """For blackbox probe series, whose instance is the probed URL, not one of the service's targets."""
        return Scope(self.eq, self.vars, False)

    def without(self, *labels: str) -> "Scope":
        return Scope({k: v for k, v in self.eq.items() if k not in labels},
                     {k: v for k, v in self.vars.items() if k not in labels}, self.instance)


def _add_nre(selector: str, nre: Mapping[str, str] | None) -> str:
    if not nre:
        return selector
    extra = ", ".join(f"{k}!~{quote(v)}" for k, v in nre.items())
    return selector[:-1] + f", {extra}}}" if selector.endswith("}") else f"{selector}{{{extra}}}"


def fmt(value: float) -> str:
    """A number as PromQL and Grafana write it (no trailing .0)."""
    return f"{value:g}"


# --- alert thresholds ------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One alert threshold drawn on a panel."""

    value: float
    severity: str
    alert: str


def marks(s: Service | None, *alerts: str, scale: float = 1.0, invert: bool = False) -> list[Mark]:
    """Thresholds of the service's enabled alerts (catalogue defaults without a service), scaled or as 1 - t."""
    out = []
    for name in alerts:
        if s is not None:
            found = [(a.threshold, a.severity, a.name) for a in s.tiers(name) if a.threshold is not None]  # every tier of the alert
        else:
            d = catalogue.get(name)
            found = [(d.threshold, d.severity, name)] if d.threshold is not None else []
        for value, severity, rule in found:
            out.append(Mark(round(1 - value if invert else value * scale, 12), severity, rule))
    return out


def bad_above(found: Sequence[Mark], extra: Sequence[tuple[float, str]] = ()) -> dict:
    """Green below every mark, then each mark's severity colour; extra adds (value, colour) lines (an SLO)."""
    points = {m.value: b.SEVERITY_COLORS[m.severity] for m in sorted(found, key=lambda m: m.severity, reverse=True)}
    for value, color in extra:
        points.setdefault(value, color)
    return b.thresholds((None, b.GREEN), *sorted(points.items()))


def bad_below(found: Sequence[Mark]) -> dict:
    """Each mark's colour below it, green above the highest."""
    ordered = sorted(found, key=lambda m: m.value)
    if not ordered:
        return b.NEUTRAL
    steps: list[tuple[float | None, str]] = [(None, b.SEVERITY_COLORS[ordered[0].severity])]
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        steps.append((lower.value, b.SEVERITY_COLORS[upper.severity]))
    steps.append((ordered[-1].value, b.GREEN))
    return b.thresholds(*steps)


def lines_note(found: Sequence[Mark], unit: str = "", scale_note: str = "") -> str:
    if not found:
        return ""
    parts = [f"{m.alert} ({m.severity}) at {fmt(m.value)}{unit}" for m in sorted(found, key=lambda m: m.value)]
    return f" Dashed: {', '.join(parts)}{scale_note}."


def runbook(model: Model, s: Service | None, alert: str) -> str:
    return alerting.runbook_url(model, s, alert)


def runbook_links(model: Model, s: Service, *alerts: str) -> list[dict]:
    """Panel links to the runbooks of the service's enabled alerts a panel explains (only those published at a URL)."""
    out = []
    enabled = {a.catalogue_name for a in s.alerts} | {r.name for r in s.rules}
    for alert in alerts:
        url = runbook(model, s, alert)
        if alert in enabled and url.startswith(("http://", "https://")):
            out.append(b.url_link(f"Runbook: {alert}", url, tooltip=f"What to do when {alert} fires"))
    return out


# --- status -------------------------------------------------------------------------


def zero_per_level() -> str:
    """0 for every severity level, so a level with no firing alert shows 0 rather than nothing."""
    return " or ".join(f'label_replace(vector(0), "{names.SEVERITY}", "{level}", "", "")' for level in names.LEVELS)


def firing_by_severity(scope: Scope, title: str = "Firing alerts", w: int = 6, h: int = 4) -> b.Panel:
    # Alerts of custom rules aggregate labels away (env among them): filter by service and team only.
    scope = scope.without(names.ENV, "instance")
    alerts = sel("ALERTS", {**scope.eq, "alertstate": "firing"}, dict(scope.vars), {"alertname": names.WATCHDOG_ALERT})
    expr = f"count by ({names.SEVERITY}) ({alerts}) or ({zero_per_level()})"
    overrides = [b.override(level, thresholds=b.thresholds((None, b.GREEN), (1, color)))
                 for level, color in b.SEVERITY_COLORS.items()]
    return b.stat(title, "Alerts firing now, by severity (P0 pages). The Watchdog heartbeat is left out.",
                  [b.Query(expr, f"{{{{{names.SEVERITY}}}}}")], unit="none", w=w, h=h,
                  steps=b.thresholds((None, b.GREEN), (1, b.RED)), overrides=overrides, text_mode="value_and_name")


def targets_up(scope: Scope, by: str, legend: str, title: str = "Scrape targets", w: int = 12, h: int = 4,
               links: list[dict] | None = None) -> b.Panel:
    expr = f"min by ({by}) ({scope.raw('up', eq={names.PROBE: ''})})"
    return b.stat(title, "Whether Prometheus can scrape the target (up). Two failed scrapes in a row fire TargetDown (P0).",
                  [b.Query(expr, legend)], unit="none", w=w, h=h, mappings=b.UP_DOWN,
                  steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name", links=links or [])


def probes_up(scope: Scope, by: str, legend: str, title: str = "Health probes", w: int = 12, h: int = 4,
              links: list[dict] | None = None) -> b.Panel:
    expr = f"min by ({by}) ({scope.probes().raw('probe_success')})"
    return b.stat(title, "Whether the health URL answers through the blackbox exporter (probe_success). "
                  "Two failed probes in a row fire HealthProbeFailing (P0).",
                  [b.Query(expr, legend)], unit="none", w=w, h=h, mappings=b.UP_DOWN,
                  steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name", links=links or [])


# --- HTTP (RED) ----------------------------------------------------------------------


ERROR_RATIO_ALERTS = ("HttpErrorRatioHigh", "HttpErrorRatioCritical")
P95_ALERTS = ("HttpLatencyP95Warning", "HttpLatencyP95High")
P99_ALERTS = ("HttpLatencyP99Warning", "HttpLatencyP99High")


def http_rate(scope: Scope, legend: str, title: str = "Request rate", w: int = 8) -> b.Panel:
    return b.timeseries(title, "Requests per second over 5 minutes (recorded).", [b.Query(scope.rec(R.HTTP_REQUESTS), legend)],
                        unit="reqps", w=w)


def http_error_ratio(scope: Scope, legend: str, s: Service | None = None, title: str = "Error ratio", w: int = 8,
                     links: list[dict] | None = None) -> b.Panel:
    found = marks(s, *ERROR_RATIO_ALERTS)
    return b.timeseries(title, "Share of requests answered with a server error over 5 minutes (recorded)." + lines_note(found),
                        [b.Query(scope.rec(R.HTTP_ERROR_RATIO), legend)], unit="percentunit", w=w,
                        steps=bad_above(found), threshold_line=True, links=links or [])


def http_latency_p95(scope: Scope, legend: str, title: str = "p95 latency", w: int = 8) -> b.Panel:
    found = marks(None, *P95_ALERTS)
    return b.timeseries(title, "95th percentile of request duration over 5 minutes (recorded)." + lines_note(found, "s"),
                        [b.Query(scope.rec(R.http_latency("p95")), legend)], unit="s", w=w, steps=bad_above(found), threshold_line=True)


def _quantile_expr(scope: Scope, recorded: tuple[tuple[str, float], ...], record: Callable[[str], str], buckets: str,
                   percentile: float, unit: str) -> str:
    """The recorded percentile when monstack records it, else histogram_quantile over the recorded bucket rates (in seconds)."""
    for label, q in recorded:
        if abs(q * 100 - percentile) < 1e-9:
            return scope.rec(record(label))
    per = f" / {fmt(duration_scale(unit))}" if duration_scale(unit) != 1 else ""
    # The bucket rates are recorded per service (by le): the quantile of each service, as the recording rules compute theirs.
    return f"histogram_quantile({fmt(percentile / 100)}, {scope.rec(buckets)}){per}"


def latency_quantile_expr(scope: Scope, kind: str, percentile: float, unit: str = "seconds") -> str:
    """A request's (job's) latency percentile in seconds: recorded where an alert reads it, else from the recorded bucket rates."""
    if kind == "http":
        return _quantile_expr(scope, R.HTTP_QUANTILES, R.http_latency, R.buckets("http_request_duration", unit), percentile, unit)
    return _quantile_expr(scope, R.JOB_QUANTILES, R.job_latency, R.buckets("job_duration", unit), percentile, unit)


def db_quantile_expr(scope: Scope, percentile: float, unit: str = "seconds") -> str:
    return _quantile_expr(scope, R.DB_QUANTILES, R.db_query_latency, R.buckets("db_query_duration", unit), percentile, unit)


def _slo_line(s: Service) -> list[tuple[float, str]]:
    if s.slo and s.slo.latency_threshold is not None:
        return [(s.slo.latency_threshold.seconds, b.BLUE)]
    return []


def _slo_note(s: Service) -> str:
    if s.slo and s.slo.latency_threshold is not None:
        return f" Blue: the SLO ({fmt(s.slo.latency_percentile or 95)}% of requests under {s.slo.latency_threshold})."
    return ""


def http_red(model: Model, s: Service, m: HttpMetrics, scope: Scope) -> list[b.Panel]:
    """Rate, errors by status and route, latency percentiles with the SLO line.

    The service's totals are recorded (alerts read them); the split by route and status is computed
    here from the counters: recording it would cost a head series per route and status for a panel.
    """
    route, status = m.route_label, m.status_label
    route_legend, status_legend = f"{{{{{route}}}}}", f"{{{{{status}}}}}"
    p95 = marks(s, *P95_ALERTS)
    p99 = marks(s, *P99_ALERTS)
    latency_marks = p95 + p99
    requests, errors = scope.raw(m.requests), scope.raw(m.requests, regex={status: m.error_status})

    def by(labels: str, selector: str) -> str:
        return f"sum by ({labels}) (rate({selector}[{RATE}]))"

    scale = duration_scale(m.duration_unit)
    per = f" / {fmt(scale)}" if scale != 1 else ""
    return [
        b.timeseries("Request rate", "Requests per second, in total (recorded) and by route.",
                     [b.Query(scope.rec(R.HTTP_REQUESTS), "total"), b.Query(by(route, requests), route_legend)],
                     unit="reqps", w=12),
        b.timeseries("Responses by status", "Responses per second by status code.",
                     [b.Query(by(status, requests), status_legend)], unit="reqps", w=12, stack=True, fill=40),
        http_error_ratio(scope, "error ratio", s, w=8, links=runbook_links(model, s, "HttpErrorRatioCritical", "HttpErrorRatioHigh")),
        b.timeseries("Error ratio by route", "Share of each route's requests answered with a server error.",
                     [b.Query(f"({by(route, errors)} or {by(route, requests)} * 0) / {by(route, requests)}", route_legend)],
                     unit="percentunit", w=8, steps=bad_above(marks(s, *ERROR_RATIO_ALERTS)), threshold_line=True),
        b.timeseries("Error ratio by status", f"Share of all requests answered with each server error ({status}=~\"{m.error_status}\").",
                     [b.Query(f"{by(status, errors)} / ignoring ({status}) group_left sum(rate({requests}[{RATE}]))", status_legend)],
                     unit="percentunit", w=8),
        b.timeseries("Latency percentiles", "p50, p95 and p99 of request duration over 5 minutes (from recorded series)." +
                     lines_note(latency_marks, "s") + _slo_note(s),
                     [b.Query(latency_quantile_expr(scope, "http", q * 100, m.duration_unit), label) for label, q in R.QUANTILES],
                     unit="s", w=12, steps=bad_above(latency_marks, _slo_line(s)), threshold_line=True,
                     links=runbook_links(model, s, *P95_ALERTS, *P99_ALERTS)),
        b.timeseries("p95 latency by route", "95th percentile of request duration per route." + lines_note(p95, "s"),
                     [b.Query(f"histogram_quantile(0.95, {by(f'{route}, le', scope.raw(m.duration + '_bucket'))}){per}", route_legend)],
                     unit="s", w=12, steps=bad_above(p95, _slo_line(s)), threshold_line=True),
    ]


def database_panels(model: Model, s: Service, m: HttpMetrics, scope: Scope) -> list[b.Panel]:
    """The app's own view of its database: connection pool use and query latency, when the inventory names the metrics."""
    out: list[b.Panel] = []
    if m.db_pool_size and m.db_pool_available:
        found = marks(s, "DbConnectionPoolSaturated")
        expr = f"max by (instance) (1 - {scope.raw(m.db_pool_available)} / {scope.raw(m.db_pool_size)})"
        out.append(b.timeseries("DB connection pool in use", "Share of the app's pool connections in use, per instance." + lines_note(found),
                                [b.Query(expr, "{{instance}}")], unit="percentunit", w=12, steps=bad_above(found), threshold_line=True,
                                maximum=1, links=runbook_links(model, s, "DbConnectionPoolSaturated")))
    if m.db_query_duration:
        found = marks(s, "DbQueryLatencyP99High")
        out.append(b.timeseries("DB query latency", "p50, p95 and p99 of the app's database query time (from recorded series)." + lines_note(found, "s"),
                                [b.Query(db_quantile_expr(scope, q * 100, m.db_query_duration_unit), label) for label, q in R.QUANTILES],
                                unit="s", w=12,
                                steps=bad_above(found), threshold_line=True, links=runbook_links(model, s, "DbQueryLatencyP99High")))
    return out


# --- saturation ----------------------------------------------------------------


def process_saturation(model: Model, s: Service, scope: Scope) -> list[b.Panel]:
    """CPU, memory and file descriptors of the process (the client libraries' process_* metrics)."""
    cpu = marks(s, "ProcessCpuHigh", scale=s.cpu_limit or 0) if s.cpu_limit else []
    memory = marks(s, "ProcessMemoryWarning", "ProcessMemoryHigh", scale=s.memory_limit_bytes or 0) if s.memory_limit_bytes else []
    memory_note = f" Dashed: {', '.join(f'{m.alert} at {fmt(m.value / s.memory_limit_bytes * 100)}%' for m in memory)} " \
                  f"of the {s.memory_limit_bytes} byte limit." if memory and s.memory_limit_bytes else ""
    cpu_note = f" Dashed: ProcessCpuHigh at {fmt(cpu[0].value)} of {fmt(s.cpu_limit or 0)} cores." if cpu else ""
    return [
        b.timeseries("CPU", "CPU cores used per instance." + cpu_note,
                     [b.Query(f"sum by (instance) (rate({scope.raw('process_cpu_seconds_total')}[{RATE}]))", "{{instance}}")],
                     unit="none", w=8, steps=bad_above(cpu), threshold_line=bool(cpu), decimals=2,
                     links=runbook_links(model, s, "ProcessCpuHigh")),
        b.timeseries("Memory (RSS)", "Resident memory per instance." + memory_note,
                     [b.Query(f"max by (instance) ({scope.raw('process_resident_memory_bytes')})", "{{instance}}")],
                     unit="bytes", w=8, steps=bad_above(memory), threshold_line=bool(memory),
                     links=runbook_links(model, s, "ProcessMemoryWarning", "ProcessMemoryHigh")),
        b.timeseries("File descriptors used", "Open file descriptors as a share of the process limit.",
                     [b.Query(f"max by (instance) ({scope.raw('process_open_fds')} / {scope.raw('process_max_fds')})", "{{instance}}")],
                     unit="percentunit", w=8, steps=b.bad_above(0.8, 0.9), threshold_line=True, maximum=1),
    ]


# --- worker ------------------------------------------------------------------------


def worker_panels(model: Model, s: Service, m: WorkerMetrics, scope: Scope) -> list[b.Panel]:
    q = m.queue_label
    by_queue = f"sum by ({q}) " if q else "sum "
    queue_legend = f"{{{{{q}}}}}" if q else "all queues"
    depth = marks(s, "WorkerQueueDepthHigh")
    failures = marks(s, "WorkerJobFailureRatioWarning", "WorkerJobFailureRatioHigh")
    duration = marks(s, "WorkerJobDurationP95High")
    jobs = scope.raw(m.jobs)
    return [
        b.timeseries("Queue depth", "Jobs waiting" + (f", by {q}" if q else "") + "." + lines_note(depth),
                     [b.Query(f"{by_queue}({scope.raw(m.queue_depth)})", queue_legend)], unit="short", w=12,
                     steps=bad_above(depth), threshold_line=True, links=runbook_links(model, s, "WorkerQueueDepthHigh", "WorkerStalled")),
        b.timeseries("Jobs by status", "Jobs finished per second, by status; the total is recorded.",
                     [b.Query(scope.rec(R.JOBS), "total"),
                      b.Query(f"sum by ({m.status_label}) (rate({jobs}[{RATE}]))", f"{{{{{m.status_label}}}}}")], unit="ops", w=12),
        b.timeseries("Job failure ratio", f"Share of jobs that ended {m.status_label}=\"{m.failed_value}\" over 5 minutes (recorded)." +
                     lines_note(failures), [b.Query(scope.rec(R.JOB_FAILURE_RATIO), "failure ratio")], unit="percentunit", w=12,
                     steps=bad_above(failures), threshold_line=True,
                     links=runbook_links(model, s, "WorkerJobFailureRatioWarning", "WorkerJobFailureRatioHigh")),
        b.timeseries("Job duration", "p50, p95 and p99 of job processing time over 5 minutes (from recorded series)." + lines_note(duration, "s"),
                     [b.Query(latency_quantile_expr(scope, "worker", q * 100, m.duration_unit), label) for label, q in R.QUANTILES],
                     unit="s", w=12,
                     steps=bad_above(duration), threshold_line=True, links=runbook_links(model, s, "WorkerJobDurationP95High")),
    ]


# --- postgres (postgres_exporter) ---------------------------------------------------------


def postgres_panels(model: Model, s: Service, scope: Scope) -> list[b.Panel]:
    def r(metric: str) -> str:
        return f"sum(rate({scope.raw(metric)}[{RATE}]))"

    hit, read = r("pg_stat_database_blks_hit"), r("pg_stat_database_blks_read")
    connections = marks(s, "PostgresConnectionsHigh")
    slow = marks(s, "PostgresSlowQueries")
    return [
        b.stat("PostgreSQL up", "Whether postgres_exporter reaches the server (pg_up); 0 fires PostgresDown (P0).",
               [b.Query(f"min by (instance) ({scope.raw('pg_up')})", "{{instance}}")], unit="none", w=6, mappings=b.UP_DOWN,
               steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name", links=runbook_links(model, s, "PostgresDown")),
        b.stat("Connections used", "Sessions as a share of max_connections." + lines_note(connections).replace("Dashed", "Colour"),
               [b.Query(f"sum({scope.raw('pg_stat_activity_count')}) / max({scope.raw('pg_settings_max_connections')})", "used")],
               unit="percentunit", w=6, steps=bad_above(connections), links=runbook_links(model, s, "PostgresConnectionsHigh")),
        b.stat("Cache hit ratio", "Blocks found in shared buffers, over the dashboard's rate interval.",
               [b.Query(f"{hit} / ({hit} + {read})", "hit ratio")], unit="percentunit", w=6, steps=b.ok_above(0.99, 0.9)),
        b.stat("Database size", "All databases together.", [b.Query(f"sum({scope.raw('pg_database_size_bytes')})", "size")], unit="bytes", w=6),
        b.timeseries("Transactions", "Commits and rollbacks per second.",
                     [b.Query(r("pg_stat_database_xact_commit"), "commit"), b.Query(r("pg_stat_database_xact_rollback"), "rollback")],
                     unit="ops", w=12),
        b.timeseries("Rows", "Rows fetched, inserted, updated and deleted per second.",
                     [b.Query(r(f"pg_stat_database_tup_{op}"), op) for op in ("fetched", "inserted", "updated", "deleted")],
                     unit="rowsps", w=12),
        b.timeseries("Sessions by state", "Sessions by state (active, idle, idle in transaction, ...).",
                     [b.Query(f"sum by (state) ({scope.raw('pg_stat_activity_count')})", "{{state}}")], unit="short", w=8),
        b.timeseries("Longest running transaction", "Age of the oldest active transaction, per database." + lines_note(slow, "s"),
                     [b.Query(f"max by (datname) ({scope.raw('pg_stat_activity_max_tx_duration', eq={'state': 'active'})})", "{{datname}}")],
                     unit="s", w=8, steps=bad_above(slow), threshold_line=True, links=runbook_links(model, s, "PostgresSlowQueries")),
        b.timeseries("Deadlocks and conflicts", "Per second; any deadlock is worth a look.",
                     [b.Query(r("pg_stat_database_deadlocks"), "deadlocks"), b.Query(r("pg_stat_database_conflicts"), "conflicts")],
                     unit="ops", w=8),
    ]


# --- redis (redis_exporter) -----------------------------------------------------------------


def redis_panels(model: Model, s: Service, scope: Scope) -> list[b.Panel]:
    def r(metric: str) -> str:
        return f"sum(rate({scope.raw(metric)}[{RATE}]))"

    hits, misses = r("redis_keyspace_hits_total"), r("redis_keyspace_misses_total")
    hit_marks = marks(s, "RedisCacheHitRatioLow")
    memory = marks(s, "RedisMemoryHigh")
    return [
        b.stat("Redis up", "Whether redis_exporter reaches the server (redis_up); 0 fires RedisDown (P0).",
               [b.Query(f"min by (instance) ({scope.raw('redis_up')})", "{{instance}}")], unit="none", w=6, mappings=b.UP_DOWN,
               steps=b.thresholds((None, b.RED), (1, b.GREEN)), text_mode="value_and_name", links=runbook_links(model, s, "RedisDown")),
        b.stat("Clients used", "Connected clients as a share of maxclients.",
               [b.Query(f"sum({scope.raw('redis_connected_clients')}) / sum({scope.raw('redis_config_maxclients')})", "used")],
               unit="percentunit", w=6, steps=b.bad_above(0.8, 0.9)),
        b.stat("Hit ratio", "Key lookups that found their key, over the dashboard's rate interval (NaN without lookups)." +
               lines_note(hit_marks).replace("Dashed", "Colour"),
               [b.Query(f"{hits} / ({hits} + {misses})", "hit ratio")], unit="percentunit", w=6, steps=bad_below(hit_marks),
               links=runbook_links(model, s, "RedisCacheHitRatioLow")),
        b.stat("Keys", "Keys in all databases.", [b.Query(f"sum({scope.raw('redis_db_keys')})", "keys")], unit="short", w=6),
        b.timeseries("Commands", "Commands processed per second.", [b.Query(r("redis_commands_processed_total"), "commands")],
                     unit="ops", w=12),
        b.timeseries("Memory", "Used memory and maxmemory (0: unlimited, and RedisMemoryHigh cannot fire)." +
                     (f" RedisMemoryHigh fires above {fmt(memory[0].value * 100)}% of maxmemory." if memory else ""),
                     [b.Query(f"sum({scope.raw('redis_memory_used_bytes')})", "used"),
                      b.Query(f"sum({scope.raw('redis_memory_max_bytes')})", "maxmemory")], unit="bytes", w=12,
                     links=runbook_links(model, s, "RedisMemoryHigh")),
        b.timeseries("Evicted and expired keys", "Per second; any eviction fires RedisEvictions (maxmemory is reached).",
                     [b.Query(r("redis_evicted_keys_total"), "evicted"), b.Query(r("redis_expired_keys_total"), "expired")],
                     unit="ops", w=12, links=runbook_links(model, s, "RedisEvictions")),
        b.timeseries("Clients", "Connected and blocked clients; rejected connections per second (any fires RedisRejectedConnections).",
                     [b.Query(f"sum({scope.raw('redis_connected_clients')})", "connected"),
                      b.Query(f"sum({scope.raw('redis_blocked_clients')})", "blocked"),
                      b.Query(r("redis_rejected_connections_total"), "rejected/s")], unit="short", w=12,
                     links=runbook_links(model, s, "RedisRejectedConnections")),
    ]


# --- hosts (node-exporter) --------------------------------------------------------------


def host_panels(scope: Scope, s: Service | None = None, model: Model | None = None) -> list[b.Panel]:
    """CPU, memory, disk and network per host; the same file systems and devices the host alerts watch."""
    fs = {"fstype": defaults.EXCLUDE_FSTYPES}
    nics = {"device": defaults.EXCLUDE_NETWORK_DEVICES}
    disks = {"device": defaults.EXCLUDE_DISK_DEVICES}
    cpu_idle = scope.raw("node_cpu_seconds_total", eq={"mode": "idle"})
    mem_avail, mem_total = scope.raw("node_memory_MemAvailable_bytes"), scope.raw("node_memory_MemTotal_bytes")
    cpu, memory = marks(s, "HostCpuHigh"), marks(s, "HostMemoryHigh")
    disk = marks(s, "HostDiskSpaceWarning", "HostDiskSpaceLow", invert=True)  # the alerts watch free space; the panel shows used
    io, net = marks(s, "HostDiskIoSaturated"), marks(s, "HostNetworkErrors")

    def links(*alerts: str) -> list[dict]:
        return runbook_links(model, s, *alerts) if s is not None and model is not None else []

    def rate(metric: str, nre: Mapping[str, str]) -> str:
        return f"sum by (instance) (rate({scope.raw(metric, nre=nre)}[{RATE}]))"

    errors = f"({rate('node_network_receive_errs_total', nics)} + {rate('node_network_transmit_errs_total', nics)})"
    packets = f"({rate('node_network_receive_packets_total', nics)} + {rate('node_network_transmit_packets_total', nics)})"
    return [
        b.timeseries("CPU busy", "Share of CPU time not idle, per host." + lines_note(cpu),
                     [b.Query(f"1 - avg by (instance) (rate({cpu_idle}[{RATE}]))", "{{instance}}")], unit="percentunit", w=12,
                     steps=bad_above(cpu), threshold_line=True, maximum=1, links=links("HostCpuHigh")),
        b.timeseries("Load per core", "1-minute load average divided by the number of cores; above 1 means work is waiting.",
                     [b.Query(f"max by (instance) ({scope.raw('node_load1')}) / count by (instance) ({cpu_idle})", "{{instance}}")],
                     unit="none", w=12, steps=b.bad_above(1, 2), threshold_line=True, decimals=2),
        b.timeseries("Memory used", "Share of memory not available to new processes, per host." + lines_note(memory),
                     [b.Query(f"1 - max by (instance) ({mem_avail}) / max by (instance) ({mem_total})", "{{instance}}")],
                     unit="percentunit", w=12, steps=bad_above(memory), threshold_line=True, maximum=1, links=links("HostMemoryHigh")),
        b.timeseries("Disk space used", "Per file system (pseudo and container file systems left out)." +
                     lines_note(disk, scale_note=" (the alerts fire on the free share: 1 minus these)"),
                     [b.Query(f"1 - max by (instance, mountpoint) ({scope.raw('node_filesystem_avail_bytes', nre=fs)}) / "
                              f"max by (instance, mountpoint) ({scope.raw('node_filesystem_size_bytes', nre=fs)})", "{{instance}} {{mountpoint}}")],
                     unit="percentunit", w=12, steps=bad_above(disk), threshold_line=True, maximum=1,
                     links=links("HostDiskSpaceWarning", "HostDiskSpaceLow", "HostDiskFillsWithin24h")),
        b.timeseries("Disk I/O", "Bytes read and written per second, per host.",
                     [b.Query(rate("node_disk_read_bytes_total", disks), "{{instance}} read"),
                      b.Query(rate("node_disk_written_bytes_total", disks), "{{instance}} written")], unit="Bps", w=8),
        b.timeseries("Disk busy", "Share of time the busiest disk of each host was doing I/O." + lines_note(io),
                     [b.Query(f"max by (instance) (rate({scope.raw('node_disk_io_time_seconds_total', nre=disks)}[{RATE}]))", "{{instance}}")],
                     unit="percentunit", w=8, steps=bad_above(io), threshold_line=True, maximum=1, links=links("HostDiskIoSaturated")),
        b.timeseries("Network", "Bytes received and sent per second, per host (loopback and virtual devices left out).",
                     [b.Query(rate("node_network_receive_bytes_total", nics), "{{instance}} received"),
                      b.Query(rate("node_network_transmit_bytes_total", nics), "{{instance}} sent")], unit="Bps", w=8),
        b.timeseries("Network errors", "Packets with errors as a share of all packets, per host." + lines_note(net),
                     [b.Query(f"{errors} / {packets}", "{{instance}}")], unit="percentunit", w=24, h=6,
                     steps=bad_above(net), threshold_line=True, links=links("HostNetworkErrors")),
    ]


# --- probes --------------------------------------------------------------------


def probe_panels(model: Model, s: Service, scope: Scope) -> list[b.Panel]:
    overrides = [b.override(p.name, thresholds=b.thresholds((None, b.GREEN), (p.max_duration.seconds, b.SEVERITY_COLORS["P2"])),
                            **{"custom.thresholdsStyle": {"mode": "dashed"}})
                 for p in s.probes if p.max_duration is not None]
    limits = ", ".join(f"{p.name} {p.max_duration}" for p in s.probes if p.max_duration is not None)
    scope = scope.probes()
    http = any(p.module.startswith("http") for p in s.probes)
    panels = [
        b.timeseries("Probe duration", "How long each health probe took." +
                     (f" Dashed: each probe's max_duration ({limits}); slower for a while fires HealthProbeSlow." if limits else ""),
                     [b.Query(f"max by ({names.PROBE}) ({scope.raw('probe_duration_seconds')})", f"{{{{{names.PROBE}}}}}")],
                     unit="s", w=12 if http else 24, overrides=overrides, links=runbook_links(model, s, "HealthProbeSlow")),
    ]
    if http:
        panels.append(b.timeseries("Probe HTTP status", "Status code of the last HTTP probe (0: no response).",
                                   [b.Query(f"max by ({names.PROBE}) ({scope.raw('probe_http_status_code')})", f"{{{{{names.PROBE}}}}}")],
                                   unit="none", w=12, legend_calcs=("lastNotNull",)))
    return panels


def scrape_panels(s: Service, scope: Scope) -> list[b.Panel]:
    timeout = s.scrape.timeout if s.scrape else None
    return [
        b.timeseries("Scrape duration", "How long a scrape of the metrics endpoint takes." + (f" Dashed: the scrape timeout ({timeout})." if timeout else ""),
                     [b.Query(f"max by (instance) ({scope.raw('scrape_duration_seconds', eq={names.PROBE: ''})})", "{{instance}}")],
                     unit="s", w=12, steps=b.bad_above(timeout.seconds) if timeout else b.NEUTRAL, threshold_line=bool(timeout)),
        b.timeseries("Samples per scrape", "Series in one scrape; a jump means a label gained many values.",
                     [b.Query(f"sum by (instance) ({scope.raw('scrape_samples_scraped', eq={names.PROBE: ''})})", "{{instance}}")],
                     unit="short", w=12),
    ]


# --- custom rules (business metrics) ------------------------------------------------------


def _counter(metric: str) -> bool:
    return metric.endswith("_total")


def rule_value(s: Service, r: CustomRule) -> str:
    """What the rule's alert compares with its threshold (threshold, ratio, histogram_mean), or watches (stalled)."""
    if r.type in ("threshold", "ratio", "histogram_mean", "increase"):
        return custom.measured(s, r)
    if r.type == "stalled":
        return f"sum by ({BY_TEXT}) (increase({sel(r.metric or '', {names.SERVICE: s.name})}[{r.for_}]))"
    raise ValueError(f"{r.type} rules compare no value")


def rule_panel(model: Model, s: Service, r: CustomRule, scope: Scope, w: int = 12) -> b.Panel:
    """One panel per custom rule: the value its alert watches, with the threshold drawn in."""
    default_unit = {"ratio": "percentunit"}.get(r.type, "short")
    unit = r.unit or default_unit
    links = runbook_links(model, s, r.name)
    about = (r.summary or "").strip()
    about = about + " " if about and not about.endswith(".") else about + (" " if about else "")
    when = f"{r.name} ({r.severity}) fires"
    if r.type in ("threshold", "ratio", "histogram_mean", "increase") and r.threshold is not None:
        found = [Mark(r.threshold, r.severity, r.name)]
        steps = bad_above(found) if r.op in (">", ">=") else bad_below(found) if r.op in ("<", "<=") else b.NEUTRAL
        desc = f"{about}{when} when this is {r.op} {fmt(r.threshold)} for {r.for_}. Dashed: the threshold."
        return b.timeseries(r.name, desc, [b.Query(rule_value(s, r), r.name)], unit=unit, w=w, steps=steps, threshold_line=True, links=links)
    if r.type == "stalled":
        desc = f"{about}{r.metric} added over the last {r.for_}; {when} when it stays at 0. Also: per minute now."
        return b.timeseries(r.name, desc, [b.Query(rule_value(s, r), f"in the last {r.for_}"),
                                           b.Query(f"sum(rate({scope.raw(r.metric or '')}[{RATE}])) * 60", "per minute")],
                            unit=unit, w=w, steps=b.thresholds((None, b.SEVERITY_COLORS[r.severity]), (1, b.GREEN)), threshold_line=True,
                            links=links)
    metric = scope.raw(r.metric or "")
    counter = _counter(r.metric or "")
    if r.type == "new_label_value":
        value = f"sum by ({r.label}) (rate({metric}[{RATE}]))" if counter else f"sum by ({r.label}) ({metric})"
        desc = f"{about}{r.metric} by {r.label}; {when} when a {r.label} not seen in the {r.lookback} before appears."
        return b.timeseries(r.name, desc, [b.Query(value, f"{{{{{r.label}}}}}")], unit="cps" if counter and unit == "short" else unit,
                            w=w, links=links)
    if r.type == "absent":
        value = f"sum(rate({metric}[{RATE}]))" if counter else f"sum({metric})"
        desc = f"{about}{when} when {r.metric} is missing for {r.for_}."
        return b.timeseries(r.name, desc, [b.Query(value, r.metric or "")], unit="cps" if counter and unit == "short" else unit,
                            w=w, links=links)
    raise ValueError(r.type)


# --- text ------------------------------------------------------------------------------


def directory_markdown(model: Model, services: list[Service]) -> str:
    """A table of services: kind, team, objectives, dashboard and runbook links (rendered by Grafana)."""
    rows = ["| Service | Kind | Team | Objectives | Runbooks |", "|---|---|---|---|---|"]
    for s in services:
        uid = names.service_dashboard_uid(s.name)
        objectives = []
        if s.slo and s.slo.availability is not None:
            objectives.append(f"{fmt(s.slo.availability)}% available")
        if s.slo and s.slo.latency_threshold is not None:
            objectives.append(f"{fmt(s.slo.latency_percentile or 95)}% under {s.slo.latency_threshold}")
        base = s.runbook_base or model.stack.runbooks_url
        book = f"[runbooks]({base})" if base else f"`{names.RUNBOOKS_DIR}/`"
        desc = f" — {s.description}" if s.description else ""
        rows.append(f"| [{s.name}](/d/{uid}){desc} | {s.kind} | {s.team} | {', '.join(objectives) or '—'} | {book} |")
    return "\n".join(rows) + "\n"


def alerts_markdown(model: Model, s: Service) -> str:
    """The service's alerts: severity, condition, runbook (rendered by Grafana)."""
    rows = ["| Severity | Alert | Condition | Runbook |", "|---|---|---|---|"]
    entries = []
    for a in s.alerts:
        d = catalogue.get(a.catalogue_name)
        cond = (f"{d.op} {fmt(a.threshold)} " if a.threshold is not None else "") + f"for {a.for_}"
        entries.append((a.severity, a.name, cond))
    entries += [(r.severity, r.name, f"{r.type}" + (f" {r.op} {fmt(r.threshold)}" if r.threshold is not None else "") + f", for {r.for_}")
                for r in s.rules]
    for severity, name, cond in sorted(entries):
        url = runbook(model, s, name)
        link = f"[{url.rsplit('/', 1)[-1]}]({url})" if url.startswith(("http://", "https://")) else f"`{url}`"
        rows.append(f"| {severity} | {name} | {cond} | {link} |")
    if s.disabled_alerts:
        rows.append(f"\nDisabled in the inventory: {', '.join(s.disabled_alerts)}.")
    return "\n".join(rows) + "\n"


# --- which stack-wide dashboards an inventory has --------------------------------------------------

def hosts(model: Model) -> list[Service]:
    """Services the infrastructure dashboard shows."""
    return [s for s in model.services if s.kind == "host" and s.scrape]


def business_services(model: Model) -> list[Service]:
    """Services the business dashboard shows: those with custom rules or KPIs."""
    return [s for s in model.services if s.rules or s.kpis]


def kpi_panel(k: Kpi, w: int = 12) -> b.Panel:
    """A business number without an alert, queried as the inventory writes it."""
    desc = k.description or f"{k.title} (a KPI of the inventory; no alert)."
    if k.panel == "stat":
        return b.stat(k.title, desc, [b.Query(k.expr, k.title)], unit=k.unit, w=w // 2, h=8, graph=True)
    return b.timeseries(k.title, desc, [b.Query(k.expr, k.title)], unit=k.unit, w=w, legend_calcs=("mean", "max", "lastNotNull"))
