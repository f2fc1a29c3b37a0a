"""Process saturation of http and worker services, against the limits the inventory states."""
from __future__ import annotations

from generator.catalogue import series as S
from generator.catalogue.core import BY_TEXT, WINDOW, AlertDef, Ctx, Needs, instance, num, show, threshold_cases
from generator.promql import sel

KINDS = ("http", "worker")


def _memory(ctx: Ctx) -> str:
    return f"max by ({BY_TEXT}, instance) ({sel('process_resident_memory_bytes', ctx.mine())}) / {num(ctx.s.memory_limit_bytes or 0)}"


def _memory_def(name: str, severity: str, threshold: float, for_: str) -> AlertDef:
    def cases(d: AlertDef, ctx: Ctx):
        limit = ctx.s.memory_limit_bytes or 0
        return threshold_cases(ctx, d, lambda v, n: (
            [S.gauge("process_resident_memory_bytes", S.target(ctx.model, ctx.s), round(v * limit), n)], [instance(ctx)]), settle="0s")

    return AlertDef(
        name=name,
        kinds=KINDS,
        severity=severity,
        for_=for_,
        threshold=threshold,
        unit="ratio",
        summary="{service}: {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its memory limit",
        description="Resident memory of {service} on {{ $labels.instance }} is {{ $value | humanizePercentage }} of the {limit} limit (alert above {threshold} for {for}).",
        query=_memory,
        cases=cases,
        problem="ProcessMemory",
        meaning="The process is close to its memory limit; at the limit it is OOM-killed or starts swapping.",
        causes=("a memory leak (memory grows steadily between deploys)", "a cache or queue without a size bound",
                "a traffic spike with large payloads", "the limit is set too low for the workload"),
        needs=Needs(lambda s: s.scrape is not None and s.memory_limit_bytes is not None, "resources.memory_limit is not set"),
        placeholders=lambda c: {"limit": _bytes(c.s.memory_limit_bytes or 0)},
    )


def _bytes(n: int) -> str:
    return show(n, "bytes")


def _cpu(ctx: Ctx) -> str:
    return f"sum by ({BY_TEXT}, instance) (rate({sel('process_cpu_seconds_total', ctx.mine())}[{ctx.window}])) / {num(ctx.s.cpu_limit or 0)}"


def _cpu_cases(d: AlertDef, ctx: Ctx):
    limit = ctx.s.cpu_limit or 0
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("process_cpu_seconds_total", S.target(ctx.model, ctx.s), v * limit, n)], [instance(ctx)]), settle=ctx.window)


ALERTS = (
    _memory_def("ProcessMemoryHigh", "P1",
                0.9,  # scenario A: memory > 90% is P1 (will hurt soon: the OOM killer is near)
                "10m"),
    _memory_def("ProcessMemoryWarning", "P2",
                0.8,  # scenario A: memory > 80% is P2; muted while the P1 tier fires
                "15m"),
    AlertDef(
        name="ProcessCpuHigh",
        kinds=KINDS,
        severity="P2",
        for_="15m",  # CPU bursts are normal; a quarter hour at the limit means throttling users feel
        threshold=0.9,  # share of resources.cpu_limit; above it the process is throttled
        unit="ratio",
        summary="{service}: {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its CPU limit",
        description="CPU use of {service} on {{ $labels.instance }} over {window} is {{ $value | humanizePercentage }} of {cpus} cores (alert above {threshold} for {for}).",
        query=_cpu,
        cases=_cpu_cases,
        meaning="The process uses nearly all the CPU it may; it is (or will be) throttled and latency rises.",
        causes=("more traffic than the instance can handle", "a hot loop or an expensive new code path", "GC pressure from memory growth"),
        needs=Needs(lambda s: s.scrape is not None and s.cpu_limit is not None, "resources.cpu_limit is not set"),
        placeholders=lambda c: {"cpus": f"{c.s.cpu_limit:g}"},
        window=WINDOW,
    ),
)

