"""Redis through redis_exporter: reachability, memory against maxmemory, hit ratio, evictions, rejected clients."""
from __future__ import annotations

from generator.catalogue import series as S
from generator.catalogue.core import (
    BY_TEXT,
    SCRAPED,
    WINDOW,
    AlertDef,
    Case,
    Ctx,
    Expected,
    Needs,
    beyond,
    down_cases,
    eval_time,
    instance,
    num,
    points,
    show,
    threshold_cases,
)
from generator.durations import parse_duration
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
    if ctx.s.memory_limit_bytes:
        # maxmemory 0 means unlimited (Redis' default): the inventory's memory_limit stands in for it.
        limit = f"({limit} or {used} * 0 + {num(ctx.s.memory_limit_bytes)})"
    return f"{used} / {limit}"


def _memory_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)

    def build(v: float, n: int):
        limit = 1024**3
        return [S.gauge("redis_memory_max_bytes", labels, limit, n), S.gauge("redis_memory_used_bytes", labels, round(v * limit), n)], [instance(ctx)]

    out = threshold_cases(ctx, d, build, settle="0s")
    inventory = ctx.s.memory_limit_bytes
    if inventory:
        at = eval_time("0s", ctx.setting.for_)
        n = points(at)
        for fire in (True, False):
            v = beyond(ctx.threshold, d.op, d.unit, fire)
            used = round(v * inventory)
            series = (S.gauge("redis_memory_max_bytes", labels, 0, n), S.gauge("redis_memory_used_bytes", labels, used, n))
            verb = "fires" if fire else "stays silent"
            out.append(Case(f"{ctx.setting.name} {verb} at {show(v, 'ratio')} of memory_limit when maxmemory is 0", series,
                            (Expected(instance(ctx), used / inventory),) if fire else (), at))
    return out


def _maxmemory(ctx: Ctx) -> str:
    return f"max by ({BY_TEXT}, instance) ({sel('redis_memory_max_bytes', ctx.mine())})"


def _maxmemory_cases(d: AlertDef, ctx: Ctx) -> list[Case]:
    at = eval_time("0s", ctx.setting.for_)
    n = points(at)
    labels = S.target(ctx.model, ctx.s)
    return [Case("RedisMaxmemoryUnset fires when maxmemory is 0", (S.gauge("redis_memory_max_bytes", labels, 0, n),),
                 (Expected(instance(ctx), 0),), at),
            Case("RedisMaxmemoryUnset stays silent when maxmemory is set", (S.gauge("redis_memory_max_bytes", labels, 2**30, n),), (), at)]


def _hit_ratio(ctx: Ctx) -> str:
    hits = _sum(ctx, f"rate({sel('redis_keyspace_hits_total', ctx.mine())}[{ctx.window}])")
    misses = _sum(ctx, f"rate({sel('redis_keyspace_misses_total', ctx.mine())}[{ctx.window}])")
    return f"{hits} / ({hits} + {misses})"


def _hit_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("redis_keyspace_hits_total", labels, 100 * v, n), S.counter("redis_keyspace_misses_total", labels, 100 * (1 - v), n)],
        [instance(ctx)]), settle=ctx.window)


def _increase(metric: str):
    def expr(ctx: Ctx) -> str:
        return _sum(ctx, f"increase({sel(metric, ctx.mine())}[{ctx.window}])")

    return expr


def _increase_cases(metric: str):
    def cases(d: AlertDef, ctx: Ctx):
        labels = S.target(ctx.model, ctx.s)
        window = parse_duration(ctx.window).seconds
        # increase over the window of a counter growing per_second every second: per_second * window
        return threshold_cases(ctx, d, lambda v, n: ([S.counter(metric, labels, v / window, n)], [instance(ctx)]), settle=ctx.window)

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
        threshold=0.9,  # share of maxmemory (or of the inventory's memory_limit while maxmemory is 0); near it Redis evicts or refuses writes
        unit="ratio",
        summary="{service}: Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of {limit}",
        description="Redis {{ $labels.instance }} of {service} uses {{ $value | humanizePercentage }} of {limit} (alert above {threshold} for {for}).",
        query=_memory,
        cases=_memory_cases,
        meaning=("Redis is near maxmemory (or, while maxmemory is 0, the memory_limit the inventory states): depending on its policy "
                 "it evicts keys (cache misses), refuses writes (errors) or, unlimited, grows until the OOM killer ends it."),
        causes=("keys without a TTL piling up", "a larger working set than planned", "a queue backlog stored in Redis"),
        needs=SCRAPED,
        placeholders=lambda c: {"limit": f"maxmemory (or {show(c.s.memory_limit_bytes, 'bytes')} while maxmemory is 0)"
                                if c.s.memory_limit_bytes else "maxmemory"},
    ),
    AlertDef(
        name="RedisMaxmemoryUnset",
        kinds=("redis",),
        severity="P3",
        for_="1h",  # a configuration state, not an incident: an hour rides out a restart with a config reload
        threshold=None,
        unit="none",
        op="==",
        summary="{service}: Redis {{ $labels.instance }} has no maxmemory, so RedisMemoryHigh cannot fire",
        description=("Redis {{ $labels.instance }} of {service} runs with maxmemory 0 (unlimited) and the inventory states no "
                     "memory_limit: its memory alert has nothing to compare with. Set maxmemory, or memory_limit on the service."),
        expr=lambda c: f"{_maxmemory(c)} == 0",
        query=_maxmemory,
        cases=_maxmemory_cases,
        meaning="Without maxmemory (Redis' default) and without a memory_limit in the inventory, memory use is not alerted on at all.",
        causes=("Redis' default configuration (maxmemory 0)", "a managed Redis that hides maxmemory"),
        needs=Needs(lambda s: s.scrape is not None and s.memory_limit_bytes is None, "the inventory sets memory_limit (RedisMemoryHigh uses it)"),
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
        description="Only {{ $value | humanizePercentage }} of key lookups on Redis {{ $labels.instance }} ({service}) hit over {window} (alert below {threshold} for {for}).",
        query=_hit_ratio,
        cases=_hit_cases,
        meaning="Most lookups miss the cache: the backing store takes the load and latency rises.",
        causes=("evictions under memory pressure", "TTLs too short or keys changed by a deploy", "a cold cache after a restart or flush"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="RedisEvictions",
        kinds=("redis",),
        severity="P2",
        for_="15m",  # an occasional eviction under a spike is tolerable; fifteen minutes of them is undersizing
        threshold=0,  # evicted keys per window (5m); raise for a cache that is meant to evict (allkeys-lru at capacity)
        unit="count",
        summary="{service}: Redis {{ $labels.instance }} evicted {{ $value | humanize }} keys in {window}",
        description="Redis {{ $labels.instance }} of {service} evicted {{ $value | humanize }} keys over {window} because it reached maxmemory (alert above {threshold} for {for}).",
        query=_increase("redis_evicted_keys_total"),
        cases=_increase_cases("redis_evicted_keys_total"),
        meaning="Redis drops keys to stay under maxmemory: cached data (or worse, queue or session data) disappears.",
        causes=("maxmemory too small for the working set", "keys without TTL", "a burst of large values"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="RedisRejectedConnections",
        kinds=("redis",),
        severity="P1",
        for_="5m",  # a connection storm after a deploy settles; five minutes of refusals is an incident
        threshold=0,  # any rejected client is an application error
        unit="count",
        summary="{service}: Redis {{ $labels.instance }} rejected {{ $value | humanize }} connections in {window}",
        description="Redis {{ $labels.instance }} of {service} refused {{ $value | humanize }} client connections over {window} (maxclients reached).",
        query=_increase("redis_rejected_connections_total"),
        cases=_increase_cases("redis_rejected_connections_total"),
        meaning="Redis refuses new clients because maxclients is reached; the applications behind them fail.",
        causes=("a connection leak in a client", "more application instances than planned", "maxclients or the file-descriptor limit too low"),
        needs=SCRAPED,
        window=WINDOW,
    ),
)

