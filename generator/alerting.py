"""Which rules each service gets, with their resolved settings: the plan every rule-reading target shares.

Beside the model, below the renderers: the rules renderer writes these groups,
the rule-test renderer tests them, runbooks, dashboards and `explain` describe
them. Nobody learns the rule set by importing another renderer.

Every alert carries the labels severity, service, team, env and problem (tiers
of one problem share it; Alertmanager lets the higher tier mute the lower)
plus the service's own labels, and the annotations summary, description, value
(the humanized measured value), runbook_url and dashboard_url.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import promql_parser

from generator import catalogue, fleet, lint, names, recording
from generator.catalogue import custom
from generator.catalogue.core import AlertDef, Ctx, fast_interval, fill, slow_interval, text_values
from generator.durations import Duration, parse_duration
from generator.model import AlertSetting, CustomRule, Model, Service


@dataclass(frozen=True)
class Alert:
    """One generated alert: its definition and the context it is rendered in."""

    definition: AlertDef
    ctx: Ctx
    custom: bool = False

    @property
    def name(self) -> str:
        """The rule's alert name: the catalogue's, or a tier's own."""
        return self.ctx.setting.name

    @property
    def slo(self) -> bool:
        return not self.custom and id(self.definition) in _SLO_ALERTS

    @property
    def slow(self) -> bool:
        """Evaluated in the service's slow SLO group (the burn-rate pairs over a day and more)."""
        return not self.custom and id(self.definition) in _SLOW_ALERTS


@dataclass(frozen=True)
class RuleGroup:
    """One Prometheus rule group: recording rules first, then alerts, evaluated in this order."""

    file: str  # stem of its rule file (names.rules_file)
    name: str
    records: tuple[dict[str, Any], ...]
    alerts: tuple[Alert, ...]
    interval: Duration | None = None  # its own evaluation interval; None: the stack's


_SLO_ALERTS = frozenset(id(d) for d in catalogue.slo.ALERTS)  # by identity: comparing definitions field by field is slow
_SLOW_ALERTS = frozenset(id(d) for d in catalogue.slo.SLOW_ALERTS)


def service_alerts(model: Model, s: Service) -> list[Alert]:
    out = [Alert(catalogue.get(a.catalogue_name), Ctx(model, s, a)) for a in s.alerts]
    out += [Alert(custom.definition(s, r), Ctx(model, s, custom_setting(r)), custom=True) for r in s.rules]
    return out


def custom_setting(r: CustomRule) -> AlertSetting:
    """A custom rule's settings; a stalled rule's `for` is its window, so the alert itself fires at once."""
    return AlertSetting(name=r.name, severity=r.severity, threshold=r.threshold, for_=r.for_ if r.type != "stalled" else Duration(0),
                        window=r.window)


def meta_alerts(model: Model) -> list[Alert]:
    """The stack's own alerts at their catalogue settings (they belong to no service to override them)."""
    out = []
    for d in catalogue.meta_for(model):
        setting = AlertSetting(name=d.name, severity=d.severity, threshold=d.threshold, for_=parse_duration(d.for_),
                               window=parse_duration(d.window) if d.window else None)
        out.append(Alert(d, Ctx(model, None, setting)))
    return out


def all_alerts(model: Model) -> list[Alert]:
    return [a for s in model.services for a in service_alerts(model, s)] + meta_alerts(model)


def service_groups(model: Model, s: Service) -> list[RuleGroup]:
    """The service's groups in evaluation order. File <service>: fast, recording, then alerts; file <service>.slo: the SLO
    group, then the slow SLO group (the windows of a day and more, evaluated every slow_interval).

    The fast group holds the hard-down alerts (catalogue `fast`), evaluated every fast_interval so an
    outage pages within seconds of being seen. SLO rules live apart because their day-long windows are
    the expensive part: their own group keeps a slow SLO evaluation from delaying the other alerts.
    """
    out: list[RuleGroup] = []
    alerts = service_alerts(model, s)
    fast = tuple(a for a in alerts if not a.custom and a.definition.fast)
    if fast:
        out.append(RuleGroup(s.name, names.fast_group(s.name), (), fast, fast_interval(model)))
    records = recording.recording_rules(s) + [r for r in (custom.recording(s, c, model.stack.environment) for c in s.rules) if r]
    if records:
        out.append(RuleGroup(s.name, names.recording_group(s.name), tuple(records), ()))
    plain = tuple(a for a in alerts if not a.slo and not (not a.custom and a.definition.fast))
    if plain:
        out.append(RuleGroup(s.name, names.alerts_group(s.name), (), plain))
    slo_records, slow_records = recording.slo_rule_groups(s)
    slo_alerts = tuple(a for a in alerts if a.slo and not a.slow)
    if slo_records or slo_alerts:
        out.append(RuleGroup(names.slo_group(s.name), names.slo_group(s.name), tuple(slo_records), slo_alerts))
    slow_alerts = tuple(a for a in alerts if a.slow)
    if slow_records or slow_alerts:
        out.append(RuleGroup(names.slo_group(s.name), names.slo_slow_group(s.name), tuple(slow_records), slow_alerts, slow_interval(model)))
    return out


def meta_group(model: Model) -> RuleGroup:
    return RuleGroup(names.META_RULES_GROUP, names.META_RULES_GROUP, (), tuple(meta_alerts(model)))


def rule_files(model: Model) -> dict[str, list[RuleGroup]]:
    """Rule file stem -> its groups, for every service and the stack itself."""
    out: dict[str, list[RuleGroup]] = {}
    for s in model.services:
        for g in service_groups(model, s):
            out.setdefault(g.file, []).append(g)
    out[names.META_RULES_GROUP] = [meta_group(model)]
    return out


# --- detection delay ------------------------------------------------------------------------------


# A double-quoted PromQL string, escapes and all (no newline: Go's lexer rejects one).
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
# In text without escapes or newlines every quote opens or closes a string, and these scan the strings alike:
# the first blanks them all, the second keeps what must stay (a regex's, after ~; an empty one).
_ANY_STRING = re.compile(r'"[^"]*"')
_KEPT_STRING = re.compile(r'(~\s*"[^"]*")|("")|"[^"]*"')


def _shape_key(expr: str) -> str | tuple[str, tuple[tuple[str, str], ...]]:
    """What parsing expr depends on: expr without the values of its plain label matchers and string arguments, or expr itself.

    Services of one kind differ in their expressions mostly by such values (service="a" and
    service="b"), which neither parse differently nor read other windows: their expressions
    share a key, and are parsed once. A value whose spelling can make a parse fail (a regex, an
    escape) or name a metric (__name__) stays, and so does the whole text when it holds a quote
    of another kind or a comment this scan would misread.
    """
    if "__name__" in expr or "'" in expr or "`" in expr or "#" in expr:
        return expr
    if "\\" not in expr and "\n" not in expr and not expr.count('"') % 2:
        # Never blanked to "": a selector of empty matchers alone does not parse, so emptiness stays as it was.
        return _ANY_STRING.sub('"s"', expr), tuple(_KEPT_STRING.findall(expr))
    pieces: list[str] = []
    end = 0
    for m in _STRING.finditer(expr):
        outside = expr[end:m.start()]
        value = m.group(1)
        pieces.append(outside)
        blank = bool(value) and "\\" not in value and not outside.rstrip().endswith("~")
        pieces.append('"s"' if blank else m.group(0))
        end = m.end()
    pieces.append(expr[end:])
    if any('"' in pieces[i] for i in range(0, len(pieces), 2)):  # a quote the scan left unpaired
        return expr
    return "".join(pieces)


def _reads(expr: str, shapes: dict[Any, tuple[int, tuple[str, ...]]]) -> tuple[int, tuple[str, ...]]:
    """(longest range in ms expr reads at present, names of the series it selects), parsed once per _shape_key."""
    key = _shape_key(expr)
    found = shapes.get(key)
    if found is None:
        longest, selected = 0, []
        for node in lint.walk(promql_parser.parse(expr)):
            if isinstance(node, promql_parser.MatrixSelector) and node.vector_selector.offset is None:
                longest = max(longest, int(node.range.total_seconds() * 1000))
            elif isinstance(node, promql_parser.VectorSelector):
                name = lint.selector_name(node)
                if name is not None and name not in selected:
                    selected.append(name)
        found = shapes[key] = (longest, tuple(selected))
    return found


def _window(expr: str, records: dict[str, str], memo: dict[str, int], shapes: dict[Any, tuple[int, tuple[str, ...]]],
            seen: frozenset[str] = frozenset()) -> tuple[int, bool]:
    """(longest range in ms the expression reads, through the recording rules it reads; whether it reads one).

    Ranges under `offset` look at the past (start-up guards, "seen before" checks), not at the
    present: they delay nothing. `memo` keeps each recorded series' window: a service's alerts
    read the same few recordings.
    """
    longest, selected = _reads(expr, shapes)
    recorded = False
    for name in selected:
        if name in records and name not in seen:
            if name not in memo:
                memo[name] = _window(records[name], records, memo, shapes, seen | {name})[0]
            longest, recorded = max(longest, memo[name]), True
    return longest, recorded


@dataclass(frozen=True)
class Detection:
    """How late an alert can be: the condition must fill its window, hold for `for`, be scraped and evaluated."""

    window: Duration
    worst: Duration  # scrape interval + window (+ one evaluation of the recording rules it reads) + for + one evaluation


def detections(model: Model, alerts: Sequence[Alert], expressions: Sequence[str] | None = None) -> list[Detection]:
    """How late each alert can be, in order (expressions: each alert's, when the caller has them already).

    A service's recording rules are built and measured once for all its alerts; an expression
    is parsed once for every service whose expressions differ from it only in label values (_shape_key).
    """
    per_service: dict[str, tuple[dict[str, str], dict[str, int]]] = {}
    shapes: dict[Any, tuple[int, tuple[str, ...]]] = {}
    out = []
    for i, a in enumerate(alerts):
        s = a.ctx.service
        key = s.name if s is not None else ""
        if key not in per_service:
            per_service[key] = (_records(model, s), {})
        expr = expressions[i] if expressions is not None else a.definition.expression(a.ctx)
        out.append(_detection(model, a, expr, *per_service[key], shapes))
    return out


def _records(model: Model, s: Service | None) -> dict[str, str]:
    """Recorded name -> expression of every recording rule of the service (standard and custom)."""
    if s is None:
        return {}
    records = {r["record"]: r["expr"] for r in recording.rules_for(s)}
    records.update({r["record"]: r["expr"] for r in (custom.recording(s, c, model.stack.environment) for c in s.rules) if r})
    return records


def _detection(model: Model, a: Alert, expr: str, records: dict[str, str], memo: dict[str, int],
               shapes: dict[Any, tuple[int, tuple[str, ...]]]) -> Detection:
    s = a.ctx.service
    window, recorded = _window(expr, records, memo, shapes)
    scrape = s.scrape.interval if s is not None and s.scrape else model.stack.scrape_interval
    # Hard-down alerts are evaluated in the service's fast group (catalogue.core.fast_interval), the burn-rate pairs
    # over days in its slow SLO group (slow_interval), with the recorded series they read.
    evaluation = fast_interval(model) if a.definition.fast else slow_interval(model) if a.slow else model.stack.evaluation_interval
    worst = scrape.ms + window + (evaluation.ms if recorded else 0) + a.ctx.setting.for_.ms + evaluation.ms
    return Detection(Duration(window), Duration(worst))


# --- labels and annotations ---------------------------------------------------------------------

def runbook_url(model: Model, s: Service | None, alert: str) -> str:
    if s is not None and s.runbook_base:
        return f"{s.runbook_base}/{alert.lower()}"
    page = names.runbook_file(alert)
    if model.stack.runbooks_url:
        return f"{model.stack.runbooks_url}/{page.rsplit('/', 1)[-1]}"
    return page


def dashboard_url(model: Model, s: Service | None) -> str:
    """The service's (or the stack's) dashboard; Prometheus' alert page where Grafana does not run (native without it).

    In a fleet (generator/fleet.py) a service's dashboard is its shape's shared one, with the service chosen."""
    if s is not None and s.dashboard_url:
        return s.dashboard_url
    ui = model.stack.ui
    if s is None:
        return ui.dashboard(names.dashboard_uid("stack")) or ui.alerts
    if fleet.enabled(model):
        page = ui.dashboard(fleet.shape_of(model, s.name).uid)
        return f"{page}?var-service={s.name}" if page else ui.alerts
    return ui.dashboard(names.service_dashboard_uid(s.name)) or ui.alerts


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


def alert_annotations(model: Model, a: Alert) -> dict[str, str]:
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
        "runbook_url": runbook_url(model, a.ctx.service, a.definition.name),  # tiers share their alert's runbook
        "dashboard_url": dashboard_url(model, a.ctx.service),
    }
