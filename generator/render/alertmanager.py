"""alertmanager/alertmanager.yml and its message templates.

The route tree, top to bottom (Alertmanager takes the first matching branch):

1. Watchdog -> the heartbeat receiver, never muted, with its own repeat interval.
2. One sub-tree per team that overrides receivers or has its own mute windows.
3. One node per severity level (P0-P3) with the level's timing and grouping.
4. The root's receiver: the catch-all for alerts with no or an unknown severity.

A level node fans out to its receivers through one leaf per receiver (`continue`
on all but the last), in the order the policy lists them. Alertmanager does not
inherit mute_time_intervals/active_time_intervals from a parent route, so every
leaf carries its own; timing and group_by are inherited.

Works on Debian's Alertmanager 0.25 and current releases: classic matcher
syntax only, *_file fields that 0.25 knows (api_url_file, routing_key_file,
auth_password_file, credentials_file), no webhook url_file.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

from generator import defaults, names
from generator.durations import Duration
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

# Events v2 severities (PagerDuty accepts exactly critical, error, warning, info). The template
# monstack.pagerduty.severity applies it at send time; tests/test_alertmanager.py holds the two together.
PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
TEMPLATES = ("monstack.tmpl",)
SLACK_POST_MESSAGE = "https://slack.com/api/chat.postMessage"
# Without a Watchdog route the always-firing alert would reach the catch-all receiver every repeat.
NULL_WATCHDOG_REPEAT = Duration(24 * 3600 * 1000)


def render(model: Model, topo: Topology) -> dict[str, Any]:
    out: dict[str, Any] = {names.ALERTMANAGER_CONFIG: config(model, topo)}
    for name in TEMPLATES:
        out[f"{names.ALERTMANAGER_TEMPLATES_DIR}/{name}"] = resources.files("generator").joinpath("templates").joinpath(name).read_text()
    out[f"{names.ALERTMANAGER_TEMPLATES_DIR}/{LINKS_TEMPLATE}"] = links_template(model)
    if auth := model.stack.web_auth:
        # stack.web_auth: how a client in Alertmanager's container (the compose healthcheck's amtool) authenticates.
        out[f"alertmanager/{names.WEB_CLIENT_CONFIG}"] = {
            "basic_auth": {"username": auth.username, "password_file": topo.secret(auth.password_file)}}
    return out


LINKS_TEMPLATE = "monstack-links.tmpl"


def links_template(model: Model) -> str:
    """Where notifications send people to see the alerts: Alertmanager's UI, or Prometheus' alert page when
    the running Alertmanager has no UI (Debian's build, natively)."""
    ui = model.stack.ui
    if ui.alertmanager_ui:
        url, name = "{{ .ExternalURL }}/#/alerts?receiver={{ .Receiver | urlquery }}", "Alertmanager"
    else:
        url, name = ui.alerts, "Prometheus alerts"
    return (f'{{{{ define "monstack.alerts.url" }}}}{url}{{{{ end }}}}\n'
            f'{{{{ define "monstack.alerts.name" }}}}{name}{{{{ end }}}}\n')


def config(model: Model, topo: Topology) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "global": {"resolve_timeout": "5m"},
        "templates": ["templates/*.tmpl"],
        "route": route_tree(model),
        "inhibit_rules": inhibit_rules(),
        "receivers": [receiver(r, topo) for r in model.receivers.values()] + [{"name": names.NULL_RECEIVER}],
    }
    if model.time_intervals:
        cfg["time_intervals"] = [{"name": n, "time_intervals": [interval(t) for t in ts]} for n, ts in model.time_intervals.items()]
    return cfg


# --- routes -------------------------------------------------------------------


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f'{label}{op}"{value}"'


def _timing(policy: LevelPolicy) -> dict[str, str]:
    return {
        "group_wait": str(policy.group_wait),
        "group_interval": str(policy.group_interval),
        "repeat_interval": str(policy.repeat_interval),
    }


def mutes(model: Model, level: str, team: Team | None = None, service: str | None = None) -> tuple[str, ...]:
    """Maintenance windows of one level (for one team, one service): the inventory's that apply, then the level's."""
    return model.mutes(level, team.name if team else None, service)


def _leaves(receivers: tuple[str, ...], windows: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"receiver": r, **({"continue": True} if i < len(receivers) - 1 else {}), **windows} for i, r in enumerate(receivers)]


def _windows(model: Model, policy: LevelPolicy, team: Team | None, service: str | None = None) -> dict[str, Any]:
    windows: dict[str, Any] = {}
    if muted := mutes(model, policy.level, team, service):
        windows["mute_time_intervals"] = list(muted)
    if policy.active_time_intervals:
        windows["active_time_intervals"] = list(policy.active_time_intervals)
    return windows


def scoped_services(model: Model, level: str, team: Team | None) -> list[str]:
    """Services (of the team, if given) a service-scoped maintenance window mutes at this level."""
    out = []
    for s in model.services:
        if team is not None and s.team != team.name:
            continue
        if any(w.services and w.applies(level, s.team, s.name) for w in model.mute_windows):
            out.append(s.name)
    return out


def level_route(model: Model, policy: LevelPolicy, receivers: tuple[str, ...], team: Team | None = None) -> dict[str, Any]:
    """One severity level: timing and grouping here, one leaf per receiver below (tree order = policy order).

    A service with a maintenance window of its own gets a node of its own first, with the same
    leaves and its window added; the other services fall through to the level's leaves.
    """
    route: dict[str, Any] = {
        "receiver": receivers[0],
        "matchers": [_matcher(names.SEVERITY, policy.level)],
        **_timing(policy),
    }
    if policy.group_by != defaults.GROUP_BY:
        route["group_by"] = list(policy.group_by)
    services = [{"receiver": receivers[0], "matchers": [_matcher(names.SERVICE, s)],
                 "routes": _leaves(receivers, _windows(model, policy, team, s))}
                for s in scoped_services(model, policy.level, team)]
    route["routes"] = services + _leaves(receivers, _windows(model, policy, team))
    return route


def team_route(model: Model, team: Team) -> dict[str, Any]:
    """A team's own sub-tree; an unknown severity still ends at the catch-all receiver."""
    return {
        "receiver": model.default_receiver,
        "matchers": [_matcher(names.TEAM, team.name)],
        "routes": [level_route(model, model.levels[lv], team.receivers[lv], team) for lv in names.LEVELS],
    }


def needs_team_route(model: Model, team: Team) -> bool:
    return bool(team.overridden or any(team.name in w.teams for w in model.mute_windows))


def watchdog_route(model: Model) -> dict[str, Any]:
    w = model.watchdog
    repeat = w.repeat_interval if w else NULL_WATCHDOG_REPEAT
    # Alertmanager only re-sends at group_interval ticks, and a tick exactly one repeat after the
    # last send is skipped; half the repeat interval keeps heartbeats on time.
    tick = max(Duration(1000), min(repeat * 0.5, Duration(5 * 60 * 1000)))
    return {
        "receiver": w.receiver if w else names.NULL_RECEIVER,
        "matchers": [_matcher("alertname", names.WATCHDOG_ALERT)],
        "group_wait": "0s",
        "group_interval": str(tick),
        "repeat_interval": str(repeat),
    }


def route_tree(model: Model) -> dict[str, Any]:
    routes: list[dict[str, Any]] = [watchdog_route(model)]
    routes += [team_route(model, t) for t in model.teams.values() if needs_team_route(model, t)]
    routes += [level_route(model, model.levels[lv], model.levels[lv].receivers) for lv in names.LEVELS]
    return {
        "receiver": model.default_receiver,  # catch-all: an alert with no or an unknown severity still reaches someone
        "group_by": list(defaults.GROUP_BY),
        **_timing(model.levels["P1"]),
        "routes": routes,
    }


# --- inhibition -----------------------------------------------------------------


def inhibit_rules() -> list[dict[str, Any]]:
    down = "|".join(names.DOWN_ALERTS)
    # A source needs the labels it is compared on: Alertmanager treats two missing labels as equal,
    # so a source without `service` would mute every alert that lacks one (the Watchdog among them).
    present = [f'{names.SERVICE}=~".+"']
    rules: list[dict[str, Any]] = [
        {
            # A target that is down explains the other alerts of its instance, nothing more: the service's other
            # instances and its service-wide alerts (error ratio, SLO burn rates) keep notifying.
            "source_matchers": [f'alertname=~"{"|".join(names.INSTANCE_DOWN_ALERTS)}"', *present, 'instance=~".+"'],
            "target_matchers": [f'alertname!~"{down}"', 'instance=~".+"'],
            "equal": [names.SERVICE, "instance"],
        },
        {
            # A failing health URL is the service's outage: its other alerts are symptoms. (TargetDown does not
            # even fire meanwhile: its expression steps aside, so one outage gives one page.)
            "source_matchers": [f'alertname=~"{"|".join(names.SERVICE_DOWN_ALERTS)}"', *present],
            "target_matchers": [f'alertname!~"{down}"'],
            "equal": [names.SERVICE],
        },
    ]
    for i, level in enumerate(names.LEVELS[:-1]):
        lower = "|".join(names.LEVELS[i + 1:])
        rules.append({
            # A higher level mutes the lower levels of the same problem on the same service.
            "source_matchers": [_matcher(names.SEVERITY, level), *present, f'{names.PROBLEM}=~".+"'],
            "target_matchers": [f'{names.SEVERITY}=~"{lower}"'],
            "equal": [names.SERVICE, names.PROBLEM],
        })
    return rules


# --- time intervals ---------------------------------------------------------------


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


# --- receivers ----------------------------------------------------------------------


def _tmpl(name: str) -> str:
    return f'{{{{ template "monstack.{name}" . }}}}'


def receiver(r: Receiver, topo: Topology) -> dict[str, Any]:
    if isinstance(r, SlackReceiver):
        return {"name": r.name, "slack_configs": [slack(r, topo)]}
    if isinstance(r, PagerDutyReceiver):
        return {"name": r.name, "pagerduty_configs": [pagerduty(r, topo)]}
    if isinstance(r, EmailReceiver):
        return {"name": r.name, "email_configs": [email(r, topo)]}
    assert isinstance(r, WebhookReceiver)
    return {"name": r.name, "webhook_configs": [webhook(r, topo)]}


def slack(r: SlackReceiver, topo: Topology) -> dict[str, Any]:
    sink = f"http://{topo.sink_http}/slack/{r.name}" if topo.sink_http else None
    target: dict[str, Any]
    if r.bot_token_file:
        # A bot token posts with chat.postMessage to `channel`; the token stays in a file, sent by this receiver only.
        target = {"api_url": sink or SLACK_POST_MESSAGE,
                  "http_config": {"authorization": {"type": "Bearer", "credentials_file": topo.secret(r.bot_token_file)}}}
    else:
        target = {"api_url": sink} if sink else {"api_url_file": topo.secret(r.webhook_url_file or "")}
    return {
        **target,
        "channel": r.channel,
        "send_resolved": r.send_resolved,
        "title": _tmpl("slack.title"),
        "title_link": _tmpl("link"),
        "text": _tmpl("slack.text"),
        "fallback": _tmpl("slack.fallback"),
        "color": _tmpl("slack.color"),
    }


def pagerduty(r: PagerDutyReceiver, topo: Topology) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "routing_key_file": topo.secret(r.routing_key_file),
        "send_resolved": r.send_resolved,
        "severity": _tmpl("pagerduty.severity"),
        "description": _tmpl("pagerduty.description"),
        "class": "{{ .CommonLabels.alertname }}",
        "component": "{{ .CommonLabels.service }}",
        "group": "{{ .CommonLabels.team }}",
        "client": "monstack",
        "client_url": _tmpl("link"),
        "links": [
            {"href": _tmpl("runbook.href"), "text": _tmpl("runbook.text")},
            {"href": _tmpl("dashboard.href"), "text": _tmpl("dashboard.text")},
        ],
        "details": {
            "firing": _tmpl("pagerduty.firing"),
            "resolved": _tmpl("pagerduty.resolved"),
            "alertname": "{{ .CommonLabels.alertname }}",
            "severity": "{{ .CommonLabels.severity }}",
            "service": "{{ .CommonLabels.service }}",
            "team": "{{ .CommonLabels.team }}",
            "summary": _tmpl("summary"),
            "value": _tmpl("value"),
            "runbook": _tmpl("runbook.href"),
            "dashboard": _tmpl("dashboard.href"),
        },
    }
    if topo.sink_http:
        cfg["url"] = f"http://{topo.sink_http}/pagerduty/{r.name}/v2/enqueue"
    elif r.url:
        cfg["url"] = topo.url(r.url)
    return cfg


def email(r: EmailReceiver, topo: Topology) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "to": ", ".join(r.to),
        "from": r.sender,
        "smarthost": topo.sink_smtp or topo.address(r.smarthost),
        # The local SMTP sink speaks plain SMTP; Go's client still sends AUTH PLAIN to 127.0.0.1 only.
        "require_tls": r.require_tls and not topo.sink_smtp,
        "send_resolved": r.send_resolved,
        "headers": {"Subject": _tmpl("email.subject")},
        "html": _tmpl("email.html"),
        "text": _tmpl("email.text"),
    }
    if r.auth_username:
        cfg["auth_username"] = r.auth_username
        cfg["auth_password_file"] = topo.secret(r.auth_password_file or "")
    return cfg


def webhook(r: WebhookReceiver, topo: Topology) -> dict[str, Any]:
    url = f"http://{topo.sink_http}/webhook/{r.name}" if topo.sink_http else topo.url(r.url)
    cfg: dict[str, Any] = {"url": url, "send_resolved": r.send_resolved, "max_alerts": r.max_alerts}
    if r.bearer_token_file:
        cfg["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": topo.secret(r.bearer_token_file)}}
    return cfg
