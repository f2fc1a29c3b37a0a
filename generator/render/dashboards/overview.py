"""The overview: every service's status, traffic, errors, latency against its SLO, alerts and budgets.

For a fleet (generator/fleet.py) no panel asks per service: objectives show the services burning
their budget fastest, the directory lists the shared service dashboards.
"""
from __future__ import annotations

from typing import Any

from generator import fleet, names
from generator.catalogue import recorded as R
from generator.model import HttpMetrics, Model, WorkerMetrics
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p
from generator.render.dashboards import sli

NAME = names.DASHBOARD_OVERVIEW


def uid() -> str:
    return names.dashboard_uid(NAME)


def variables() -> list[dict[str, Any]]:
    """env, team, service: each narrows the next; All matches every value (each series the overview reads has all three)."""
    scraped = f'up{{{names.SERVICE}!=""}}'
    return [
        b.query_variable("env", "Environment", b.label_values(scraped, names.ENV), multi=False),
        b.query_variable("team", "Team", b.label_values(f'up{{{names.SERVICE}!="", {names.ENV}=~"$env"}}', names.TEAM)),
        b.query_variable("service", "Service", b.label_values(
            f'up{{{names.SERVICE}!="", {names.ENV}=~"$env", {names.TEAM}=~"$team"}}', names.SERVICE)),
    ]


def links(model: Model) -> list[dict[str, Any]]:
    out = [b.tag_dropdown("Services", ["monstack", "service"])]
    out += [b.tag_dropdown(f"Team {team}", ["monstack", f"team:{team}"]) for team in sorted(model.teams)]
    big = fleet.enabled(model)
    if sli.slis(model) and not big:
        out.append(b.dashboard_link("SLOs", names.dashboard_uid(names.DASHBOARD_SLO)))
    if p.hosts(model):
        out.append(b.dashboard_link("Infrastructure", names.dashboard_uid(names.DASHBOARD_INFRASTRUCTURE)))
    if p.business_services(model) and not big:
        out.append(b.dashboard_link("Business", names.dashboard_uid(names.DASHBOARD_BUSINESS)))
    out.append(b.dashboard_link("monstack itself", names.dashboard_uid(names.DASHBOARD_STACK)))
    if model.stack.runbooks_url:
        out.append(b.url_link("Runbooks", model.stack.runbooks_url))
    return out


def render(model: Model) -> dict[str, Any]:
    vars_ = {names.ENV: "$env", names.TEAM: "$team", names.SERVICE: "$service"}
    scope = p.Scope({}, vars_)
    has_probes = any(s.probes for s in model.services)
    big = fleet.enabled(model)
    if big:  # a tile per service is unreadable at fleet size: how many are down, and the rest is on the service dashboards
        status = [_down_count(scope, "up", {names.PROBE: ""}, "Services with a target down", w=10 if has_probes else 18)]
        if has_probes:
            status.append(_down_count(scope.probes(), "probe_success", {}, "Services with a failing health probe", w=8))
    else:
        status = [p.targets_up(scope, names.SERVICE, f"{{{{{names.SERVICE}}}}}", w=10 if has_probes else 18, h=6)]
        if has_probes:
            status.append(p.probes_up(scope, f"{names.SERVICE}, {names.PROBE}", f"{{{{{names.SERVICE}}}}} {{{{{names.PROBE}}}}}", w=8, h=6))
    status.append(p.firing_by_severity(scope, w=6, h=6))
    sections = [b.Section("Status", status)]

    legend = f"{{{{{names.SERVICE}}}}}"
    http = [s for s in model.services if s.kind == "http" and s.scrape and isinstance(s.metrics, HttpMetrics)]
    items = sli.slis(model)
    if http:
        traffic = [p.http_rate(scope, legend), p.http_error_ratio(scope, legend), p.http_latency_p95(scope, legend)]
        if big:
            traffic = [_top(traffic[0], "busiest"), _top(traffic[1], "highest"), _top(traffic[2], "slowest")]
        sections.append(b.Section("HTTP services", traffic))

    workers = [s for s in model.services if s.kind == "worker" and s.scrape and isinstance(s.metrics, WorkerMetrics)]
    if workers:
        depth = []
        if big:  # one query per queue gauge name, not per worker
            gauges = sorted({s.metrics.queue_depth for s in workers if isinstance(s.metrics, WorkerMetrics)})
            depth = [b.Query(f"sum by ({names.SERVICE}) ({scope.raw(g, eq={names.KIND: 'worker'})})", legend) for g in gauges]
        for s in [] if big else workers:
            m = s.metrics
            assert isinstance(m, WorkerMetrics)
            # Each worker names its queue gauge itself: one query per worker.
            depth.append(b.Query(f"sum({p.Scope({names.SERVICE: s.name}, vars_).raw(m.queue_depth)})", s.name))
        failures = p.marks(None, "WorkerJobFailureRatioWarning", "WorkerJobFailureRatioHigh")
        worker_panels = [
            b.timeseries("Jobs processed", "Jobs finished per second over 5 minutes, any status (recorded).",
                         [b.Query(scope.rec(R.JOBS), legend)], unit="ops", w=8),
            b.timeseries("Job failure ratio", "Share of jobs that failed over 5 minutes (recorded)." + p.lines_note(failures),
                         [b.Query(scope.rec(R.JOB_FAILURE_RATIO), legend)], unit="percentunit", w=8,
                         steps=p.bad_above(failures), threshold_line=True),
            b.timeseries("Queue depth", "Jobs waiting, all queues of each worker.", depth, unit="short", w=8),
        ]
        if big:
            worker_panels = [_top(worker_panels[0], "busiest"), _top(worker_panels[1], "highest"), _top(worker_panels[2], "longest")]
        sections.append(b.Section("Workers", worker_panels))

    if items and big:
        sections.append(b.Section("Objectives", [_fastest_burn(items, scope)]))
    if items and not big:
        objectives = []
        latency = [i for i in items if i.kind == "latency"]
        if latency:
            queries = []
            for i in latency:
                s = i.service
                assert s.slo and s.slo.latency_threshold
                fixed = p.Scope({names.SERVICE: s.name}, vars_)
                pct = s.slo.latency_percentile or 95
                unit = s.metrics.duration_unit if isinstance(s.metrics, (HttpMetrics, WorkerMetrics)) else "seconds"
                expr = f"{p.latency_quantile_expr(fixed, s.kind, pct, unit)} / {p.fmt(s.slo.latency_threshold.seconds)}"
                queries.append(b.Query(expr, f"{s.name} p{p.fmt(pct)} / {s.slo.latency_threshold}"))
            objectives.append(b.timeseries(
                "Latency against SLO", "Each service's SLO percentile divided by its latency objective: above 100% the "
                "objective is being missed right now.", queries, unit="percentunit", w=12,
                steps=b.bad_above(0.8, 1), threshold_line=True))
        objectives.append(sli.budget_left_panel(items, w=12 if latency else 24, h=8, scope_vars=vars_))
        sections.append(b.Section("Objectives", objectives))

    if big:
        shapes = fleet.shapes(model)
        rows = ["| Dashboard | Kind | Services |", "|---|---|---|"]
        rows += [f"| [{sh.name}](/d/{sh.uid}) | {sh.kind} | {len(sh.members)} (e.g. {sh.members[0]}) |" for sh in shapes]
        sections.append(b.Section("Service dashboards", [b.text("One dashboard per shape of service", "\n".join(rows) + "\n",
                                                               h=min(3 + len(shapes), 20))]))
    else:
        directory = p.directory_markdown(model, list(model.services))
        sections.append(b.Section("Service directory", [b.text("Services", directory, h=min(3 + len(model.services), 20))]))
    return b.dashboard(uid(), f"{model.stack.name} / Overview", source=model.source, tags=[NAME],
                       description="Every service's status, traffic, errors, latency against its SLO, firing alerts and error budgets.",
                       sections=sections, variables=variables(), links=links(model))


def _fastest_burn(items: list[sli.Sli], scope: p.Scope) -> b.Panel:
    """The ten objectives burning their budget fastest over the last hour, from the recorded 1h SLI ratios.

    One query per recorded ratio and budget: services sharing a budget need no list of names, and a
    ratio with several budgets lists the members of each.
    """
    groups: dict[tuple[str, float], list[str]] = {}
    for i in items:
        record = R.sli_errors(i.service.kind, "1h") if i.kind == "availability" else R.sli_slow(i.service.kind, "1h")
        groups.setdefault((record, i.budget), []).append(i.service.name)
    records = [r for r, _ in groups]
    queries = []
    for (record, budget), members in sorted(groups.items()):
        only = {} if records.count(record) == 1 else {names.SERVICE: "|".join(members)}
        sel = scope.rec(record, regex=only) if only else scope.rec(record)
        queries.append(b.Query(f"topk(10, {sel} / {p.fmt(budget)})", f"{{{{{names.SERVICE}}}}} {record.split(':')[1]}"))
    return b.table("Fastest burning objectives (1h)", "Burn rate over the last hour of each objective's error budget, highest "
                   "first (1: the budget lasts exactly the SLO window; the burn-rate alerts page at 14.4). Per service, "
                   "with budget left, on its service dashboard.", queries, unit="none", w=24, h=8,
                   hide=("Time", "__name__", names.ENV, names.TEAM), steps=b.bad_above(1, 14.4))


TOP = 10  # services a fleet's overview graph shows: a line per service is unreadable (and slow) at fleet size


def _top(panel: b.Panel, which: str) -> b.Panel:
    """The panel limited to the TOP services at each moment (topk): a fleet's graphs show where to look."""
    for t in panel.body["targets"]:
        t["expr"] = f"topk({TOP}, {t['expr']})"
    panel.body["title"] = f"{panel.body['title']}: the {TOP} {which}"
    # Every service is read at each step: a point every 2 minutes (180 over 6 hours) halves the cost
    # of a point a minute, and a top-10 graph needs no finer grain (docs/performance.md).
    panel.body["interval"] = "2m"
    panel.body["description"] += f" The {TOP} {which} services at each moment; every service on its own dashboard."
    return panel


def _down_count(scope: p.Scope, metric: str, eq: dict[str, str], title: str, w: int) -> b.Panel:
    """How many services have a target (probe) failing now."""
    down = f"min by ({names.SERVICE}) ({scope.raw(metric, eq=eq)}) == 0"
    return b.stat(title, f"Services whose {metric} is 0 now (the service dashboards show which target).",
                  [b.Query(f"count({down}) or vector(0)", "down")], unit="none", w=w, h=6,
                  steps=b.thresholds((None, b.GREEN), (1, b.RED)))
