"""PostgreSQL through postgres_exporter: reachability, connections, long queries, replication lag."""
from __future__ import annotations

from generator.catalogue import series as S
from generator.catalogue.core import BY_TEXT, SCRAPED, AlertDef, Case, Ctx, down_cases, instance, threshold_cases
from generator.promql import sel

# postgres_exporter >= 0.13 exports pg_replication_lag_seconds; older releases pg_replication_lag.
LAG_METRICS = ("pg_replication_lag_seconds", "pg_replication_lag")


def _pg_up(ctx: Ctx) -> str:
    return sel("pg_up", ctx.mine())


def _down_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    return down_cases(d, ctx, "pg_up", S.target(ctx.model, ctx.s), "when the exporter cannot reach the database", "while the database answers")


def _connections(ctx: Ctx) -> str:
    return (f"sum by ({BY_TEXT}, instance) ({sel('pg_stat_activity_count', ctx.mine())}) / "
            f"max by ({BY_TEXT}, instance) ({sel('pg_settings_max_connections', ctx.mine())})")


def _connection_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)

    def build(v: float, n: int):
        max_conn = 100
        return ([S.gauge("pg_settings_max_connections", labels, max_conn, n),
                 S.gauge("pg_stat_activity_count", {**labels, "datname": "app", "state": "active"}, v * max_conn * 0.5, n),
                 S.gauge("pg_stat_activity_count", {**labels, "datname": "app", "state": "idle"}, v * max_conn * 0.5, n)],
                [instance(ctx)])

    return threshold_cases(ctx, d, build, settle="0s")


def _long_queries(ctx: Ctx) -> str:
    return f"max by ({BY_TEXT}, instance, datname) ({sel('pg_stat_activity_max_tx_duration', ctx.mine(state='active'))})"


def _long_query_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s, datname="app", state="active")
    return threshold_cases(ctx, d, lambda v, n: (
        [S.gauge("pg_stat_activity_max_tx_duration", labels, v, n)], [instance(ctx, datname="app")]), settle="0s")


def _lag(ctx: Ctx) -> str:
    either = " or ".join(sel(m, ctx.mine()) for m in LAG_METRICS)
    return f"max by ({BY_TEXT}, instance) ({either})"


def _lag_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)
    return threshold_cases(ctx, d, lambda v, n: (
        [S.gauge(LAG_METRICS[0], labels, v, n)], [instance(ctx)]), settle="0s")


ALERTS = (
    AlertDef(
        name="PostgresDown",
        kinds=("postgres",),
        severity="P0",
        for_="1m",  # scenario B: the database unreachable for 1 min is critical
        threshold=None,
        unit="none",
        op="==",
        summary="{service}: PostgreSQL on {{ $labels.instance }} is unreachable",
        description="postgres_exporter at {{ $labels.instance }} cannot connect to the database of {service} (pg_up == 0) for {for}.",
        expr=lambda c: f"{_pg_up(c)} == 0",
        query=_pg_up,
        cases=_down_cases,
        meaning="The exporter runs but cannot connect to PostgreSQL: the database is down, refusing connections, or the exporter's credentials broke.",
        causes=("PostgreSQL crashed, is restarting or in recovery", "max_connections reached: new connections are refused",
                "the exporter's password or pg_hba.conf changed", "a network problem between exporter and database"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="PostgresConnectionsHigh",
        kinds=("postgres",),
        severity="P2",
        for_="5m",  # scenario B: connection use > 80% for 5 min is a warning
        threshold=0.8,  # share of max_connections; at 100% new connections fail
        unit="ratio",
        summary="{service}: {{ $value | humanizePercentage }} of max_connections in use on {{ $labels.instance }}",
        description="{{ $labels.instance }} of {service} uses {{ $value | humanizePercentage }} of max_connections (alert above {threshold} for {for}).",
        query=_connections,
        cases=_connection_cases,
        meaning="PostgreSQL is running out of connection slots; at the limit new connections are refused and applications fail.",
        causes=("application pools sized larger than max_connections allows", "connections leaked or idle in transaction",
                "slow queries holding connections longer"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="PostgresSlowQueries",
        kinds=("postgres",),
        severity="P2",
        for_="5m",  # a migration may run a few minutes; lower for latency-sensitive OLTP
        threshold=60,  # seconds an active transaction runs; OLTP queries take milliseconds, raise for analytics databases
        unit="seconds",
        summary="{service}: a transaction in {{ $labels.datname }} has been active for {{ $value | humanizeDuration }}",
        description="The longest active transaction in database {{ $labels.datname }} on {{ $labels.instance }} ({service}) has run for {{ $value | humanizeDuration }} (alert above {threshold} for {for}).",
        query=_long_queries,
        cases=_long_query_cases,
        meaning="A query or transaction has been running for a long time: it holds locks and a connection, and blocks vacuum.",
        causes=("a missing index or a bad plan", "a migration or batch job", "a client that opened a transaction and went away"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="PostgresReplicationLagHigh",
        kinds=("postgres",),
        severity="P2",
        for_="5m",  # lag spikes during bulk writes are normal; five minutes behind is a trend
        threshold=30,  # seconds replicas are behind; lower when reads from replicas must be fresh
        unit="seconds",
        summary="{service}: replica {{ $labels.instance }} lags {{ $value | humanizeDuration }}",
        description="The replica {{ $labels.instance }} of {service} is {{ $value | humanizeDuration }} behind its primary (alert above {threshold} for {for}). Fires only where the exporter exports replication lag.",
        query=_lag,
        cases=_lag_cases,
        meaning="A replica is behind the primary: reads from it are stale and a failover would lose data.",
        causes=("heavy write load on the primary", "network throughput between primary and replica", "long queries on the replica conflicting with replay"),
        needs=SCRAPED,
    ),
)

