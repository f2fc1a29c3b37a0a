"""The overview: every service's status, traffic, errors, latency against its SLO, alerts and budgets."""
from __future__ import annotations

from typing import Any

from generator import names
from generator.catalogue import recorded as R
from generator.model import HttpMetrics, Model, WorkerMetrics
from generator.render.dashboards import builder as b
from generator.render.dashboards import panels as p
from generator.render.dashboards import sli

NAME = names.DASHBOARD_OVERVIEW


def uid() -> str:
    return names.dashboard_uid(NAME)


def variables() -> list[dict[str, Any]]:
    """env, team, service: each narrows the next; All matches every non-empty value."""
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
    if sli.slis(model):
        out.append(b.dashboard_link("SLOs", names.dashboard_uid(names.DASHBOARD_SLO)))
    if p.hosts(model):
        out.append(b.dashboard_link("Infrastructure", names.dashboard_uid(names.DASHBOARD_INFRASTRUCTURE)))
    if p.business_services(model):
        out.append(b.dashboard_link("Business", names.dashboard_uid(names.DASHBOARD_BUSINESS)))
    out.append(b.dashboard_link("monstack itself", names.dashboard_uid(names.DASHBOARD_STACK)))
    if model.stack.runbooks_url:
        out.append(b.url_link("Runbooks", model.stack.runbooks_url))
    return out


def render(model: Model) -> dict[str, Any]:
    vars_ = {names.ENV: "$env", names.TEAM: "$team", names.SERVICE: "$service"}
    scope = p.Scope({}, vars_)
    has_probes = any(s.probes for s in model.services)
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
        sections.append(b.Section("HTTP services", traffic))

    workers = [s for s in model.services if s.kind == "worker" and s.scrape and isinstance(s.metrics, WorkerMetrics)]
    if workers:
        depth = []
        for s in workers:
            m = s.metrics
            assert isinstance(m, WorkerMetrics)
            # Each worker names its queue gauge itself: one query per worker.
            depth.append(b.Query(f"sum({p.Scope({names.SERVICE: s.name}, vars_).raw(m.queue_depth)})", s.name))
        failures = p.marks(None, "WorkerJobFailureRatioWarning", "WorkerJobFailureRatioHigh")
        sections.append(b.Section("Workers", [
            b.timeseries("Jobs processed", "Jobs finished per second over 5 minutes, any status (recorded).",
                         [b.Query(scope.rec(R.JOBS), legend)], unit="ops", w=8),
            b.timeseries("Job failure ratio", "Share of jobs that failed over 5 minutes (recorded)." + p.lines_note(failures),
                         [b.Query(scope.rec(R.JOB_FAILURE_RATIO), legend)], unit="percentunit", w=8,
                         steps=p.bad_above(failures), threshold_line=True),
            b.timeseries("Queue depth", "Jobs waiting, all queues of each worker.", depth, unit="short", w=8),
        ]))

    if items:
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

    directory = p.directory_markdown(model, list(model.services))
    sections.append(b.Section("Service directory", [b.text("Services", directory, h=min(3 + len(model.services), 20))]))
    return b.dashboard(uid(), f"{model.stack.name} / Overview", source=model.source, tags=[NAME],
                       description="Every service's status, traffic, errors, latency against its SLO, firing alerts and error budgets.",
                       sections=sections, variables=variables(), links=links(model))
