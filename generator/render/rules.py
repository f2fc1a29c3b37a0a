"""prometheus/rules/*.yml: one file per service (recording + alerts) and one for the stack itself."""
from __future__ import annotations

from typing import Any

from generator import catalogue, names
from generator.model import AlertSetting, CustomRule, Model, Service
from generator.promql import sel
from generator.render import recording
from generator.topology import Topology


def render(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in model.services:
        groups = []
        rec = recording.rules_for(s)
        if rec:
            groups.append({"name": f"{s.name}.recording", "rules": rec})
        alerts = alert_rules(model, s)
        if alerts:
            groups.append({"name": f"{s.name}.alerts", "rules": alerts})
        if groups:
            out[names.rules_file(s.name)] = {"groups": groups}
    out[names.rules_file(names.META_RULES_GROUP)] = {"groups": [{"name": names.META_RULES_GROUP, "rules": meta_rules(model)}]}
    return out


def runbook_url(model: Model, s: Service | None, alert: str) -> str:
    if s is not None and s.runbook_base:
        return f"{s.runbook_base}/{alert.lower()}"
    page = names.runbook_file(alert)
    if model.stack.runbooks_url:
        return f"{model.stack.runbooks_url}/{page.rsplit('/', 1)[-1]}"
    return page


def dashboard_url(model: Model, s: Service) -> str:
    return s.dashboard_url or f"{model.stack.grafana_url}/d/{names.dashboard_uid('service', s.name)}"


def _labels(s: Service, severity: str, problem: str) -> dict[str, str]:
    return {names.SEVERITY: severity, names.SERVICE: s.name, names.TEAM: s.team, names.PROBLEM: problem, **dict(sorted(s.labels.items()))}


def alert_rules(model: Model, s: Service) -> list[dict[str, Any]]:
    rules = [catalogue_rule(model, s, a) for a in s.alerts]
    rules += [custom_rule(model, s, r) for r in s.rules]
    return rules


def catalogue_rule(model: Model, s: Service, a: AlertSetting) -> dict[str, Any]:
    d = catalogue.get(a.name)
    return {
        "alert": a.name,
        "expr": d.expr(s, a),
        "for": str(a.for_),
        "labels": _labels(s, a.severity, d.problem_label),
        "annotations": {
            "summary": d.summary,
            "description": d.description,
            "runbook_url": runbook_url(model, s, a.name),
            "dashboard_url": dashboard_url(model, s),
        },
    }


def custom_expr(s: Service, r: CustomRule) -> str:
    mine = {names.SERVICE: s.name}
    if r.type == "threshold":
        return f"({r.expr}) {r.op} {r.threshold:g}"
    if r.type == "absent":
        return f"absent({sel(r.metric, mine)})"
    if r.type == "stalled":
        return f"sum by ({recording.BY}) (increase({sel(r.metric, mine)}[{r.for_}])) == 0"
    if r.type == "ratio":
        return f"sum(increase({r.numerator}[{r.window}])) / sum(increase({r.denominator}[{r.window}])) {r.op} {r.threshold:g}"
    if r.type == "new_label_value":
        series = f"count by ({r.label}) ({sel(r.metric, mine)})"
        return f"{series} unless count by ({r.label}) ({sel(r.metric, mine)} offset {r.lookback})"
    if r.type == "histogram_mean":
        return (f"sum(rate({sel(r.metric + '_sum', mine)}[{r.window}])) / sum(rate({sel(r.metric + '_count', mine)}[{r.window}])) "
                f"{r.op} {r.threshold:g}")
    raise AssertionError(r.type)


def custom_rule(model: Model, s: Service, r: CustomRule) -> dict[str, Any]:
    return {
        "alert": r.name,
        "expr": custom_expr(s, r),
        "for": str(r.for_) if r.type != "stalled" else "0s",
        "labels": _labels(s, r.severity, r.problem),
        "annotations": {
            "summary": r.summary or f"{{{{ $labels.service }}}}: {r.name}",
            "description": r.description or f"{r.name} ({r.type} rule of {s.name}); value {{{{ $value | humanize }}}}.",
            "runbook_url": runbook_url(model, s, r.name),
            "dashboard_url": dashboard_url(model, s),
        },
    }


def meta_rules(model: Model) -> list[dict[str, Any]]:
    """Meta-monitoring: the stack watching itself."""
    base = {names.TEAM: "monstack", names.SERVICE: "monstack"}

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert, "expr": expr, "for": for_,
            "labels": {names.SEVERITY: severity, **base, names.PROBLEM: alert},
            "annotations": {"summary": summary, "description": description, "runbook_url": runbook_url(model, None, alert)},
        }

    return [
        rule("Watchdog", "vector(1)", "0s", "P3", "Watchdog: the alerting pipeline is alive",
             "Always firing. An external dead-man's switch pages when it stops arriving."),
        rule("PrometheusConfigReloadFailed", "max_over_time(prometheus_config_last_reload_successful[5m]) == 0", "10m", "P1",
             "Prometheus failed to reload its configuration", "The last configuration reload of {{ $labels.instance }} failed."),
        rule("PrometheusRuleEvaluationFailures", "increase(prometheus_rule_evaluation_failures_total[5m]) > 0", "15m", "P1",
             "Prometheus fails to evaluate rules", "{{ $value | humanize }} rule evaluations failed in 5 minutes on {{ $labels.instance }}."),
        rule("AlertmanagerNotificationsFailing",
             "rate(alertmanager_notifications_failed_total[5m]) / clamp_min(rate(alertmanager_notifications_total[5m]), 1e-9) > 0.01",
             "10m", "P1", "Alertmanager fails to deliver to {{ $labels.integration }}",
             "{{ $value | humanizePercentage }} of notifications to {{ $labels.integration }} failed."),
    ]
