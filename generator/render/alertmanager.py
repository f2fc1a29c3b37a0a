"""alertmanager/alertmanager.yml: route tree by severity and team, inhibition, receivers, time intervals.

Works on Debian's Alertmanager 0.25 and current releases: classic matchers
syntax only, *_file fields that 0.25 knows (api_url_file, routing_key_file,
auth_password_file, credentials_file), no webhook url_file.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

from generator import defaults, names
from generator.model import (
    EmailReceiver,
    LevelPolicy,
    Model,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    Team,
    TimeInterval,
    WebhookReceiver,
)
from generator.topology import Topology

NULL_RECEIVER = "monstack-null"  # swallows the Watchdog when no heartbeat receiver is configured
DOWN_ALERTS = ("TargetDown", "HealthProbeFailing")
PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}


TEMPLATES = ("monstack.tmpl",)


def render(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {names.ALERTMANAGER_CONFIG: config(model, topo)}
    for name in TEMPLATES:
        out[f"{names.ALERTMANAGER_TEMPLATES_DIR}/{name}"] = resources.files("generator").joinpath("templates", name).read_text()
    return out


def config(model: Model, topo: Topology) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "global": {"resolve_timeout": "5m"},
        "templates": ["templates/*.tmpl"],
        "route": route_tree(model),
        "inhibit_rules": inhibit_rules(),
        "receivers": [receiver(r, topo) for r in model.receivers.values()] + [{"name": NULL_RECEIVER}],
    }
    if model.time_intervals:
        cfg["time_intervals"] = [{"name": n, "time_intervals": [interval(t) for t in ts]} for n, ts in model.time_intervals.items()]
    return cfg


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f'{label}{op}"{value}"'


def _timing(policy: LevelPolicy) -> dict[str, str]:
    return {
        "group_wait": str(policy.group_wait),
        "group_interval": str(policy.group_interval),
        "repeat_interval": str(policy.repeat_interval),
    }


def level_route(model: Model, policy: LevelPolicy, receivers: tuple[str, ...], extra_mutes: tuple[str, ...] = (),
                extra_matchers: tuple[str, ...] = ()) -> dict[str, Any]:
    """One severity level: fan out to every receiver in order (continue: true on all but the last)."""
    route: dict[str, Any] = {
        "receiver": receivers[0],
        "matchers": list(extra_matchers) + [_matcher(names.SEVERITY, policy.level)],
        **_timing(policy),
    }
    mutes = tuple(dict.fromkeys(model.mute_time_intervals + policy.mute_time_intervals + extra_mutes))
    if mutes:
        route["mute_time_intervals"] = list(mutes)
    if policy.active_time_intervals:
        route["active_time_intervals"] = list(policy.active_time_intervals)
    if len(receivers) > 1:
        route["routes"] = [
            {"receiver": r, **({"continue": True} if i < len(receivers) - 1 else {})} for i, r in enumerate(receivers)
        ]
    return route


def team_routes(model: Model, team: Team) -> list[dict[str, Any]]:
    return [
        level_route(model, model.levels[lv], team.receivers[lv], team.mute_time_intervals)
        for lv in names.LEVELS
    ]


def route_tree(model: Model) -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    watchdog = model.watchdog
    routes.append({
        "receiver": watchdog.receiver if watchdog else NULL_RECEIVER,
        "matchers": [_matcher("alertname", "Watchdog")],
        "group_wait": "0s",
        "group_interval": "1m",
        "repeat_interval": str(watchdog.repeat_interval) if watchdog else "24h",
    })
    for team in model.teams.values():
        if team.overridden or team.mute_time_intervals:
            routes.append({
                "receiver": model.default_receiver,
                "matchers": [_matcher(names.TEAM, team.name)],
                "routes": team_routes(model, team),
            })
    routes += [level_route(model, model.levels[lv], model.levels[lv].receivers) for lv in names.LEVELS]
    return {
        "receiver": model.default_receiver,  # catch-all: an alert with no or an unknown severity still reaches someone
        "group_by": list(defaults.GROUP_BY),
        **_timing(model.levels["P1"]),
        "routes": routes,
    }


def inhibit_rules() -> list[dict[str, Any]]:
    down = "|".join(DOWN_ALERTS)
    rules: list[dict[str, Any]] = [{
        # A service that is down mutes its other alerts: they are symptoms of the same outage.
        "source_matchers": [f'alertname=~"{down}"'],
        "target_matchers": [f'alertname!~"{down}"'],
        "equal": [names.SERVICE],
    }]
    for i, level in enumerate(names.LEVELS[:-1]):
        lower = "|".join(names.LEVELS[i + 1:])
        rules.append({
            # A higher level mutes the lower levels of the same problem on the same service.
            "source_matchers": [_matcher(names.SEVERITY, level)],
            "target_matchers": [f'{names.SEVERITY}=~"{lower}"'],
            "equal": [names.SERVICE, names.PROBLEM],
        })
    return rules


def interval(t: TimeInterval) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.times:
        out["times"] = [{"start_time": r.start_time, "end_time": r.end_time} for r in t.times]
    for key in ("weekdays", "days_of_month", "months", "years"):
        if getattr(t, key):
            out[key] = list(getattr(t, key))
    if t.location:
        out["location"] = t.location
    return out


def receiver(r: Receiver, topo: Topology) -> dict[str, Any]:
    if isinstance(r, SlackReceiver):
        target = ({"api_url": f"http://{topo.sink_http}/slack/{r.name}"} if topo.sink_http
                  else {"api_url_file": topo.secret(r.webhook_url_file)})
        return {"name": r.name, "slack_configs": [{
            **target,
            "channel": r.channel,
            "send_resolved": r.send_resolved,
            "title": '{{ template "monstack.slack.title" . }}',
            "text": '{{ template "monstack.slack.text" . }}',
            "color": '{{ template "monstack.slack.color" . }}',
            "title_link": '{{ template "monstack.link" . }}',
        }]}
    if isinstance(r, PagerDutyReceiver):
        cfg: dict[str, Any] = {
            "routing_key_file": topo.secret(r.routing_key_file),
            "send_resolved": r.send_resolved,
            "severity": '{{ template "monstack.pagerduty.severity" . }}',
            "description": '{{ template "monstack.pagerduty.description" . }}',
            "client": "monstack",
            "client_url": '{{ template "monstack.link" . }}',
            "details": {
                "firing": '{{ template "monstack.pagerduty.firing" . }}',
                "service": "{{ .CommonLabels.service }}",
                "team": "{{ .CommonLabels.team }}",
                "severity": "{{ .CommonLabels.severity }}",
                "runbook": "{{ .CommonAnnotations.runbook_url }}",
            },
        }
        if topo.sink_http:
            cfg["url"] = f"http://{topo.sink_http}/pagerduty/{r.name}/v2/enqueue"
        elif r.url:
            cfg["url"] = topo.url(r.url)
        return {"name": r.name, "pagerduty_configs": [cfg]}
    if isinstance(r, EmailReceiver):
        cfg = {
            "to": ", ".join(r.to),
            "from": r.sender,
            "smarthost": topo.sink_smtp or topo.address(r.smarthost),
            "require_tls": r.require_tls and not topo.sink_smtp,
            "send_resolved": r.send_resolved,
            "headers": {"Subject": '{{ template "monstack.email.subject" . }}'},
            "html": '{{ template "monstack.email.html" . }}',
            "text": '{{ template "monstack.email.text" . }}',
        }
        if r.auth_username:
            cfg["auth_username"] = r.auth_username
            cfg["auth_password_file"] = topo.secret(r.auth_password_file or "")
        return {"name": r.name, "email_configs": [cfg]}
    assert isinstance(r, WebhookReceiver)
    url = f"http://{topo.sink_http}/webhook/{r.name}" if topo.sink_http else topo.url(r.url)
    cfg = {"url": url, "send_resolved": r.send_resolved, "max_alerts": r.max_alerts}
    if r.bearer_token_file:
        cfg["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": topo.secret(r.bearer_token_file)}}
    return {"name": r.name, "webhook_configs": [cfg]}
