"""Redis through redis_exporter: reachability, memory against maxmemory, hit ratio, evictions, rejected clients."""
from __future__ import annotations

from generator.catalogue import series as S
from generator.catalogue.core import BY_TEXT, SCRAPED, AlertDef, Case, Ctx, down_cases, instance, threshold_cases
from generator.promql import sel


def _sum(ctx: Ctx, inner: str) -> str:
    return f"sum by ({BY_TEXT}, instance) ({inner})"


def _redis_up(ctx: Ctx) -> str:
    return sel("redis_up", ctx.mine())


def _down_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    return down_cases(d, ctx, "redis_up", S.target(ctx.model, ctx.s), "when the exporter cannot reach Redis", "while Redis answers")


def _memory(ctx: Ctx) -> str:
    used = f"max by ({BY_TEXT}, instance) ({sel('redis_memory_used_bytes', ctx.mine())})"
    limit = f"max by ({BY_TEXT}, instance) ({sel('redis_memory_max_bytes', ctx.mine())} > 0)"
    return f"{used} / {limit}"


def _memory_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)

    def build(v: float, n: int):
        limit = 1024**3
        return [S.gauge("redis_memory_max_bytes", labels, limit, n), S.gauge("redis_memory_used_bytes", labels, round(v * limit), n)], [instance(ctx)]

    return threshold_cases(ctx, d, build, settle="0s")


def _hit_ratio(ctx: Ctx) -> str:
    hits = _sum(ctx, f"rate({sel('redis_keyspace_hits_total', ctx.mine())}[5m])")
    misses = _sum(ctx, f"rate({sel('redis_keyspace_misses_total', ctx.mine())}[5m])")
    return f"{hits} / ({hits} + {misses})"


def _hit_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("redis_keyspace_hits_total", labels, 100 * v, n), S.counter("redis_keyspace_misses_total", labels, 100 * (1 - v), n)],
        [instance(ctx)]))


def _increase(metric: str):
    def expr(ctx: Ctx) -> str:
        return _sum(ctx, f"increase({sel(metric, ctx.mine())}[5m])")

    return expr


def _increase_cases(metric: str):
    def cases(d: AlertDef, ctx: Ctx):
        labels = S.target(ctx.model, ctx.s)
        # increase over 5m of a counter growing per_second * 60 a minute: per_second * 300
        return threshold_cases(ctx, d, lambda v, n: ([S.counter(metric, labels, v / 300, n)], [instance(ctx)]))

    return cases


ALERTS = (
    AlertDef(
        name="RedisDown",
        kinds=("redis",),
        severity="P0",
        for_="1m",  # scenario A: Redis unavailable is P0
        threshold=None,
        unit="none",
        op="==",
        summary="{service}: Redis on {{ $labels.instance }} is unreachable",
        description="redis_exporter at {{ $labels.instance }} cannot connect to Redis ({service}, redis_up == 0) for {for}.",
        expr=lambda c: f"{_redis_up(c)} == 0",
        query=_redis_up,
        cases=_down_cases,
        meaning="The exporter runs but cannot reach Redis: caches, sessions and queues built on it fail.",
        causes=("Redis crashed or restarts (check for OOM kills)", "maxclients reached", "a password or network change"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="RedisMemoryHigh",
        kinds=("redis",),
        severity="P1",
        for_="5m",  # memory grows slowly; five minutes filters a burst of large values
        threshold=0.9,  # share of maxmemory; near it Redis evicts keys or refuses writes. Never fires without maxmemory
        unit="ratio",
        summary="{service}: Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of maxmemory",
        description="Redis {{ $labels.instance }} of {service} uses {{ $value | humanizePercentage }} of maxmemory (alert above {threshold} for {for}).",
        query=_memory,
        cases=_memory_cases,
        meaning="Redis is near maxmemory: depending on its policy it evicts keys (cache misses) or refuses writes (errors).",
        causes=("keys without a TTL piling up", "a larger working set than planned", "a queue backlog stored in Redis"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="RedisCacheHitRatioLow",
        kinds=("redis",),
        severity="P2",
        for_="15m",  # hit ratios dip after deploys and cache flushes; a quarter hour is a trend
        threshold=0.5,  # scenario A: a cache miss rate above 50% is P2
        unit="ratio",
        op="<",
        summary="{service}: Redis hit ratio {{ $value | humanizePercentage }} on {{ $labels.instance }}",
        description="Only {{ $value | humanizePercentage }} of key lookups on Redis {{ $labels.instance }} ({service}) hit over 5 minutes (alert below {threshold} for {for}).",
        query=_hit_ratio,
        cases=_hit_cases,
        meaning="Most lookups miss the cache: the backing store takes the load and latency rises.",
        causes=("evictions under memory pressure", "TTLs too short or keys changed by a deploy", "a cold cache after a restart or flush"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="RedisEvictions",
        kinds=("redis",),
        severity="P2",
        for_="15m",  # an occasional eviction under a spike is tolerable; fifteen minutes of them is undersizing
        threshold=0,  # evicted keys per 5 minutes; raise for a cache that is meant to evict (allkeys-lru at capacity)
        unit="count",
        summary="{service}: Redis {{ $labels.instance }} evicted {{ $value | humanize }} keys in 5 minutes",
        description="Redis {{ $labels.instance }} of {service} evicted {{ $value | humanize }} keys over 5 minutes because it reached maxmemory (alert above {threshold} for {for}).",
        query=_increase("redis_evicted_keys_total"),
        cases=_increase_cases("redis_evicted_keys_total"),
        meaning="Redis drops keys to stay under maxmemory: cached data (or worse, queue or session data) disappears.",
        causes=("maxmemory too small for the working set", "keys without TTL", "a burst of large values"),
        needs=SCRAPED,
    ),
    AlertDef(
        name="RedisRejectedConnections",
        kinds=("redis",),
        severity="P1",
        for_="5m",  # a connection storm after a deploy settles; five minutes of refusals is an incident
        threshold=0,  # any rejected client is an application error
        unit="count",
        summary="{service}: Redis {{ $labels.instance }} rejected {{ $value | humanize }} connections in 5 minutes",
        description="Redis {{ $labels.instance }} of {service} refused {{ $value | humanize }} client connections over 5 minutes (maxclients reached).",
        query=_increase("redis_rejected_connections_total"),
        cases=_increase_cases("redis_rejected_connections_total"),
        meaning="Redis refuses new clients because maxclients is reached; the applications behind them fail.",
        causes=("a connection leak in a client", "more application instances than planned", "maxclients or the file-descriptor limit too low"),
        needs=SCRAPED,
    ),
)

