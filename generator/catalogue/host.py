"""Hosts through node_exporter: CPU, memory, disk space and fill rate, disk I/O, network errors, clock."""
from __future__ import annotations

import re

from generator.catalogue import series as S
from generator.catalogue.core import BY_TEXT, SCRAPED, WINDOW, AlertDef, Ctx, eval_time, example_value, instance, num, threshold_cases
from generator.promql import sel

TEST_MOUNTPOINT = "/"
TEST_FSTYPE = "ext4"
TEST_DISK = "sda"
TEST_NIC = "eth0"


def test_label(usual: str, pattern: str, matching: bool) -> str:
    """The usual test label value, unless the inventory's pattern rules it out (ValueError when no value fits)."""
    if bool(re.fullmatch(pattern, usual)) == matching:
        return usual
    return example_value(pattern, matching)


def _h(ctx: Ctx):
    return ctx.s.host


def _fs(ctx: Ctx, metric: str) -> str:
    h = _h(ctx)
    regex = {"mountpoint": h.mountpoints}
    return sel(metric, ctx.mine(), regex, nregex={"fstype": h.exclude_fstypes})


def _cpu(ctx: Ctx) -> str:
    idle = sel("node_cpu_seconds_total", ctx.mine(mode="idle"))
    return f"1 - avg by ({BY_TEXT}, instance) (rate({idle}[{ctx.window}]))"


def _cpu_cases(d: AlertDef, ctx: Ctx):
    def build(v: float, n: int):
        return ([S.counter("node_cpu_seconds_total", S.target(ctx.model, ctx.s, cpu=str(c), mode="idle"), 1 - v, n) for c in range(2)]
                + [S.counter("node_cpu_seconds_total", S.target(ctx.model, ctx.s, cpu=str(c), mode="user"), v, n) for c in range(2)],
                [instance(ctx)])

    return threshold_cases(ctx, d, build, settle=ctx.window)


def _memory(ctx: Ctx) -> str:
    return f"1 - {sel('node_memory_MemAvailable_bytes', ctx.mine())} / {sel('node_memory_MemTotal_bytes', ctx.mine())}"


def _memory_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)

    def build(v: float, n: int):
        total = 16 * 1024**3
        return ([S.gauge("node_memory_MemTotal_bytes", labels, total, n),
                 S.gauge("node_memory_MemAvailable_bytes", labels, round((1 - v) * total), n)], [labels])

    return threshold_cases(ctx, d, build, settle="0s")


def _free(ctx: Ctx) -> str:
    avail, size = _fs(ctx, "node_filesystem_avail_bytes"), _fs(ctx, "node_filesystem_size_bytes")
    readonly = _fs(ctx, "node_filesystem_readonly")
    return f"({avail} / {size} and {readonly} == 0)"


def _fs_labels(ctx: Ctx) -> dict[str, str]:
    h = _h(ctx)
    return S.target(ctx.model, ctx.s, device="/dev/sda1", fstype=test_label(TEST_FSTYPE, h.exclude_fstypes, False),
                    mountpoint=test_label(TEST_MOUNTPOINT, h.mountpoints, True))


def _free_cases(d: AlertDef, ctx: Ctx):
    labels = _fs_labels(ctx)

    def build(v: float, n: int):
        size = 100 * 1024**3
        return ([S.gauge("node_filesystem_size_bytes", labels, size, n), S.gauge("node_filesystem_avail_bytes", labels, round(v * size), n),
                 S.gauge("node_filesystem_readonly", labels, 0, n)], [labels])

    return threshold_cases(ctx, d, build, settle="0s")



def _free_def(name: str, severity: str, threshold: float, for_: str, meaning: str) -> AlertDef:
    return AlertDef(
        name=name,
        kinds=("host",),
        severity=severity,
        for_=for_,
        threshold=threshold,
        unit="ratio",
        op="<",
        summary="{service}: {{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free",
        description="Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} has {{ $value | humanizePercentage }} space left (alert below {threshold} for {for}).",
        query=_free,
        cases=_free_cases,
        problem="HostDiskSpace",
        meaning=meaning,
        causes=("logs or temporary files without rotation", "database or TSDB growth", "old releases, images or backups kept locally"),
        needs=SCRAPED,
    )


def _fill(ctx: Ctx) -> str:
    return f"predict_linear({_fs(ctx, 'node_filesystem_avail_bytes')}[{ctx.window}], {num(ctx.threshold)} * 3600)"


def _fill_expr(ctx: Ctx) -> str:
    # Only filesystems already below 40% free: a nearly empty disk's noisy slope is not worth a ticket.
    return f"{_free(ctx)} < 0.4 and {_fill(ctx)} < 0"


def _fill_cases(d: AlertDef, ctx: Ctx):
    labels = _fs_labels(ctx)
    at_s = eval_time("0s", ctx.setting.for_).ms // 1000
    free_at_eval = 0.3
    size = 100 * 1024**3

    def build(hours_left: float, n: int):
        # Linear decline reaching zero `hours_left` after the eval time, 30% free at the eval time.
        per_second = free_at_eval * size / (hours_left * 3600)
        start = free_at_eval * size + per_second * at_s
        avail = S.Series("node_filesystem_avail_bytes", tuple(labels.items()), f"{num(round(start))}-{num(round(per_second * 60))}x{n}")
        return ([S.gauge("node_filesystem_size_bytes", labels, size, n), avail, S.gauge("node_filesystem_readonly", labels, 0, n)], [labels])

    return threshold_cases(ctx, d, build, settle="0s", shown=lambda v: free_at_eval)


def _io(ctx: Ctx) -> str:
    return f"rate({sel('node_disk_io_time_seconds_total', ctx.mine(), nregex={'device': _h(ctx).exclude_disk_devices})}[{ctx.window}])"


def _io_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s, device=test_label(TEST_DISK, _h(ctx).exclude_disk_devices, False))
    return threshold_cases(ctx, d, lambda v, n: (
        [S.counter("node_disk_io_time_seconds_total", labels, v, n)], [labels]), settle=ctx.window)


def _nic(ctx: Ctx, metric: str) -> str:
    return f"rate({sel(metric, ctx.mine(), nregex={'device': _h(ctx).exclude_network_devices})}[{ctx.window}])"


def _net(ctx: Ctx) -> str:
    errs = f"{_nic(ctx, 'node_network_receive_errs_total')} + {_nic(ctx, 'node_network_transmit_errs_total')}"
    packets = f"{_nic(ctx, 'node_network_receive_packets_total')} + {_nic(ctx, 'node_network_transmit_packets_total')}"
    return f"({errs}) / ({packets})"


def _net_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s, device=test_label(TEST_NIC, _h(ctx).exclude_network_devices, False))

    def build(v: float, n: int):
        return ([S.counter("node_network_receive_packets_total", labels, 500, n), S.counter("node_network_transmit_packets_total", labels, 500, n),
                 S.counter("node_network_receive_errs_total", labels, 1000 * v, n), S.counter("node_network_transmit_errs_total", labels, 0, n)],
                [labels])

    return threshold_cases(ctx, d, build, settle=ctx.window)


def _clock(ctx: Ctx) -> str:
    return f"abs({sel('node_timex_offset_seconds', ctx.mine())})"


def _clock_cases(d: AlertDef, ctx: Ctx):
    labels = S.target(ctx.model, ctx.s)
    return threshold_cases(ctx, d, lambda v, n: ([S.gauge("node_timex_offset_seconds", labels, -v, n)], [labels]), settle="0s")


ALERTS = (
    AlertDef(
        name="HostCpuHigh",
        kinds=("host",),
        severity="P2",
        for_="15m",  # batch work spikes CPU for minutes; a quarter hour of saturation slows every service on the host
        threshold=0.9,  # share of all cores busy (not idle)
        unit="ratio",
        summary="{service}: CPU of {{ $labels.instance }} {{ $value | humanizePercentage }} busy",
        description="{{ $labels.instance }} ({service}) has been {{ $value | humanizePercentage }} busy on average across its cores (alert above {threshold} for {for}).",
        query=_cpu,
        cases=_cpu_cases,
        meaning="The host's CPUs are saturated: every process on it competes for time and latency rises.",
        causes=("a runaway process (check top)", "more load than the host was sized for", "noisy neighbours or CPU steal on a VM"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="HostMemoryHigh",
        kinds=("host",),
        severity="P1",
        for_="10m",  # memory pressure from a batch job passes; ten minutes near the OOM killer does not
        threshold=0.9,  # share of memory not available; beyond it the kernel reclaims hard and the OOM killer is near
        unit="ratio",
        summary="{service}: memory of {{ $labels.instance }} {{ $value | humanizePercentage }} used",
        description="{{ $labels.instance }} ({service}) has {{ $value | humanizePercentage }} of its memory in use (MemAvailable; alert above {threshold} for {for}).",
        query=_memory,
        cases=_memory_cases,
        meaning="The host is nearly out of memory: the kernel will start killing processes.",
        causes=("a process leaking memory", "too many services packed on the host", "page cache pressure from large files is NOT counted: this is real use"),
        needs=SCRAPED,
    ),
    _free_def("HostDiskSpaceLow", "P1",
              0.1,  # share of space free; at 10% databases and logs are minutes to hours from a full disk
              "5m", "A filesystem is nearly full; writes (databases, logs, uploads) fail when it is."),
    _free_def("HostDiskSpaceWarning", "P2",
              0.2,  # scenario B: disk free < 20% is a warning
              "5m", "A filesystem is filling up; plan cleanup or growth."),
    AlertDef(
        name="HostDiskFillsWithin24h",
        kinds=("host",),
        severity="P2",
        for_="1h",  # the 6h trend must persist: a one-off large write is not a trend
        threshold=24,  # hours until full, extrapolating the last 6 hours
        unit="hours",
        op="<",
        summary="{service}: {{ $labels.mountpoint }} on {{ $labels.instance }} fills within {threshold}",
        description="At the rate of the last {window}, {{ $labels.mountpoint }} on {{ $labels.instance }} ({service}, {{ $value | humanizePercentage }} free now) is full within {threshold}.",
        expr=_fill_expr,
        query=_fill,
        cases=_fill_cases,
        meaning="A filesystem is filling steadily and will be full within a day at this rate, well before the free-space thresholds page at night.",
        causes=("a log or dump growing without rotation", "a stuck job writing in a loop", "backups accumulating locally"),
        needs=SCRAPED,
        window="6h",  # the trend: six hours of fill rate outlast a one-off large write
    ),
    AlertDef(
        name="HostDiskIoSaturated",
        kinds=("host",),
        severity="P2",
        for_="30m",  # backups and compactions saturate disks for minutes by design
        threshold=0.9,  # share of time the device was busy
        unit="ratio",
        summary="{service}: disk {{ $labels.device }} of {{ $labels.instance }} {{ $value | humanizePercentage }} busy",
        description="Device {{ $labels.device }} on {{ $labels.instance }} ({service}) was busy {{ $value | humanizePercentage }} of the time (alert above {threshold} for {for}).",
        query=_io,
        cases=_io_cases,
        meaning="A disk is busy nearly all the time: I/O waits grow and everything touching the disk slows down.",
        causes=("a database without enough memory for its working set", "swapping", "a backup, compaction or reindex"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="HostNetworkErrors",
        kinds=("host",),
        severity="P2",
        for_="15m",  # a burst of errors during a link flap passes; a quarter hour is a bad link
        threshold=0.01,  # share of packets with receive or transmit errors; healthy links show none
        unit="ratio",
        summary="{service}: {{ $value | humanizePercentage }} of packets on {{ $labels.device }} of {{ $labels.instance }} have errors",
        description="{{ $value | humanizePercentage }} of the packets {{ $labels.instance }} ({service}) sent or received on {{ $labels.device }} had errors over {window} (alert above {threshold} for {for}).",
        query=_net,
        cases=_net_cases,
        meaning="A network interface reports errors: packets are lost and retransmitted, connections slow or drop.",
        causes=("a bad cable, port or NIC", "duplex or MTU mismatch", "driver problems"),
        needs=SCRAPED,
        window=WINDOW,
    ),
    AlertDef(
        name="HostClockSkew",
        kinds=("host",),
        severity="P2",
        for_="10m",  # NTP corrects small steps within minutes; longer means it is not running or unreachable
        threshold=0.05,  # seconds off; TLS, distributed locks and log correlation start to suffer beyond tens of ms
        unit="seconds",
        summary="{service}: clock of {{ $labels.instance }} is off by {{ $value | humanizeDuration }}",
        description="The clock of {{ $labels.instance }} ({service}) is {{ $value | humanizeDuration }} off (alert above {threshold} for {for}).",
        query=_clock,
        cases=_clock_cases,
        meaning="The host's clock drifts from true time: TLS validation, token expiry, distributed locks and timestamps go wrong.",
        causes=("NTP/chrony not running or not reaching its servers", "a VM paused or migrated", "a broken hardware clock"),
        needs=SCRAPED,
    ),
)

