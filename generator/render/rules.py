"""prometheus/rules/*.yml: one file per service (recording, SLO and alert groups) and one for the stack itself.

Every alert carries the labels severity, service, team, env and problem (tiers
of one problem share it; Alertmanager lets the higher tier mute the lower)
plus the service's own labels, and the annotations summary, description (with
the humanized value), runbook_url and dashboard_url.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator import catalogue, names
from generator.catalogue import custom
from generator.catalogue.core import AlertDef, Ctx, fill, text_values
from generator.model import AlertSetting, Model, Service
from generator.render import recording
from generator.topology import Topology


@dataclass(frozen=True)
class Alert:
    """One generated alert: its definition and the context it was rendered in (rule tests and runbooks reuse it)."""

    definition: AlertDef
    ctx: Ctx
    custom: bool = False

    @property
    def name(self) -> str:
        return self.definition.name


def render(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in model.services:
        for file, groups in service_files(model, s).items():
            out[names.rules_file(file)] = {"groups": groups}
    out[names.rules_file(names.META_RULES_GROUP)] = {"groups": [{"name": names.META_RULES_GROUP, "rules": [rule(model, a) for a in meta_alerts(model)]}]}
    return out


def service_files(model: Model, s: Service) -> dict[str, list[dict[str, Any]]]:
    """Rule file stem -> groups. <service>: recording then alerts; <service>.slo: SLI ratios then burn-rate alerts.

    SLO rules live apart because their day-long windows are the expensive part:
    their own group keeps a slow SLO evaluation from delaying the other alerts.
    """
    files: dict[str, list[dict[str, Any]]] = {}
    main: list[dict[str, Any]] = []
    records = recording.recording_rules(s) + [r for r in (custom.recording(s, c, model.stack.environment) for c in s.rules) if r]
    if records:
        main.append({"name": names.recording_group(s.name), "rules": records})
    alerts = service_alerts(model, s)
    plain = [rule(model, a) for a in alerts if not is_slo(a)]
    if plain:
        main.append({"name": names.alerts_group(s.name), "rules": plain})
    if main:
        files[s.name] = main
    slo = recording.slo_rules(s) + [rule(model, a) for a in alerts if is_slo(a)]
    if slo:
        files[names.slo_group(s.name)] = [{"name": names.slo_group(s.name), "rules": slo}]
    return files


def is_slo(a: "Alert") -> bool:
    return not a.custom and a.definition in catalogue.slo.ALERTS


def service_groups(model: Model, s: Service) -> list[dict[str, Any]]:
    """Every rule group of the service, in evaluation order."""
    return [g for groups in service_files(model, s).values() for g in groups]


def service_alerts(model: Model, s: Service) -> list[Alert]:
    out = [Alert(catalogue.get(a.name), Ctx(model, s, a)) for a in s.alerts]
    out += [Alert(custom.definition(s, r), Ctx(model, s, custom.setting(r)), custom=True) for r in s.rules]
    return out


def meta_alerts(model: Model) -> list[Alert]:
    out = []
    for d in catalogue.meta_for(model):
        setting = AlertSetting(name=d.name, severity=d.severity, threshold=d.threshold, for_=_duration(d.for_))
        out.append(Alert(d, Ctx(model, None, setting)))
    return out


def all_alerts(model: Model) -> list[Alert]:
    return [a for s in model.services for a in service_alerts(model, s)] + meta_alerts(model)


def _duration(text: str):
    from generator.durations import parse_duration

    return parse_duration(text)


def runbook_url(model: Model, s: Service | None, alert: str) -> str:
    if s is not None and s.runbook_base:
        return f"{s.runbook_base}/{alert.lower()}"
    page = names.runbook_file(alert)
    if model.stack.runbooks_url:
        return f"{model.stack.runbooks_url}/{page.rsplit('/', 1)[-1]}"
    return page


def dashboard_url(model: Model, s: Service | None) -> str:
    if s is None:
        return f"{model.stack.grafana_url}/d/{names.dashboard_uid('stack')}"
    return s.dashboard_url or f"{model.stack.grafana_url}/d/{names.dashboard_uid('service', s.name)}"


def labels(model: Model, a: Alert) -> dict[str, str]:
    s = a.ctx.service
    own = {names.SEVERITY: a.ctx.setting.severity}
    if s is None:
        own.update({names.SERVICE: names.META_SERVICE, names.TEAM: names.META_TEAM})
    else:
        own.update({names.SERVICE: s.name, names.TEAM: s.team})
    own.update({names.ENV: model.stack.environment, names.PROBLEM: a.definition.problem_label})
    extra = dict(sorted(s.labels.items())) if s is not None else {}
    return {**own, **{k: v for k, v in extra.items() if k not in own}}


VALUE_BY_UNIT = {
    "ratio": "{{ $value | humanizePercentage }}",
    "seconds": "{{ $value | humanizeDuration }}",
    "bytes": "{{ $value | humanize1024 }}B",
}


def annotations(model: Model, a: Alert) -> dict[str, str]:
    d = a.definition
    if a.custom:
        summary, description = d.summary, d.description  # the user's text: Go templates only, no placeholders
    else:
        values = text_values(d, a.ctx)
        summary, description = fill(d.summary, values), fill(d.description, values)
    return {
        "summary": summary,
        "description": description,
        # The measured value, humanized for its unit; notification templates show it next to the summary.
        "value": VALUE_BY_UNIT.get(getattr(d, "unit", "none"), "{{ $value | humanize }}"),
        "runbook_url": runbook_url(model, a.ctx.service, a.name),
        "dashboard_url": dashboard_url(model, a.ctx.service),
    }


def rule(model: Model, a: Alert) -> dict[str, Any]:
    return {
        "alert": a.name,
        "expr": a.definition.expression(a.ctx),
        "for": str(a.ctx.setting.for_),
        "labels": labels(model, a),
        "annotations": annotations(model, a),
    }
