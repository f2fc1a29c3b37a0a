"""`monstack backtest`: the working tree's rules and routing against the deployed ones, over recorded history."""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Callable

import requests
import yaml

from generator import names, pipeline, webauth
from generator.backtest import engine, report, routing
from generator.backtest import rules as rules_mod
from generator.backtest.source import PrometheusAPI, QueryError
from generator.durations import parse_duration
from generator.errors import CheckFailed, UsageError
from generator.runner.native import read_state

Echo = Callable[[str], None]


def parse_until(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--until: must be a Unix time or an RFC 3339 time such as 2026-01-31T12:00:00Z (got {text!r})") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _deployed_rules(urls: list[str], state_dir: Path, say: Echo) -> rules_mod.RuleSet | None:
    for url in urls:
        try:
            data = PrometheusAPI(url).rules()
        except QueryError:
            continue
        if data.get("groups"):
            return rules_mod.from_api(data, f"{url}/api/v1/rules")
    config = state_dir / names.STATE_CONFIG
    if (config / names.RULES_DIR).is_dir():
        say(f"note: no Prometheus answered with rules; the deployed rules are the files in {config}")
        return rules_mod.from_directory(config, str(config / names.RULES_DIR))
    return None


def _deployed_routing(url: str | None, state_dir: Path, say: Echo) -> rules_mod.Routing | None:
    if url:
        try:
            r = requests.get(f"{url.rstrip('/')}/api/v2/status", timeout=10, auth=webauth.auth(url))
            if r.ok:
                original = r.json().get("config", {}).get("original")
                if original:
                    return rules_mod.Routing(yaml.safe_load(original) or {}, f"{url}/api/v2/status")
        except (requests.RequestException, ValueError):
            pass
    path = state_dir / names.STATE_CONFIG / names.ALERTMANAGER_CONFIG
    if path.is_file():
        say(f"note: no Alertmanager answered; the deployed routing is {path}")
        return rules_mod.Routing(yaml.safe_load(path.read_text()) or {}, str(path))
    return None


def run(inventory: Path, since: str, until: str | None, service: str | None, alert: str | None, prometheus: str | None,
        alertmanager: str | None, long_term: bool, state_dir: Path, as_json: bool, show_all: bool,
        fail_on_more_pages: int | None, workers: int, say: Echo, echo: Echo) -> None:
    try:
        span = parse_duration(since).seconds
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    if span <= 0:
        raise UsageError("--since: must be longer than 0s")
    end = parse_until(until)
    window = engine.Window(end - span, end)

    state = read_state(state_dir) or {}
    urls = state.get("urls") or {}
    if long_term:
        history = prometheus or urls.get("victoria-metrics")
        if not history:
            raise UsageError("--long-term: no long-term store is recorded for the running stack; give its Prometheus API with --prometheus URL")
    else:
        history = prometheus or urls.get("prometheus")
    if not history:
        raise UsageError(f"no history to evaluate against: no stack is recorded in {state_dir} (run `make up`) and no --prometheus URL was given")

    built = pipeline.build(inventory)
    new_rules = rules_mod.from_files(built.files, f"{inventory} (working tree)")
    new_routing = rules_mod.routing_from_files(built.files, f"{inventory} (working tree)")
    candidates = list(dict.fromkeys(u for u in (prometheus if not long_term else None, urls.get("prometheus")) if u))
    now_rules = _deployed_rules(candidates, state_dir, say)
    now_routing = _deployed_routing(alertmanager or urls.get("alertmanager"), state_dir, say) if now_rules is not None else None
    if now_rules is not None and now_routing is None:
        say("note: no deployed Alertmanager configuration found; the deployed rules are routed with the working tree's")
        now_routing = new_routing

    selected = {(a.alert, a.service) for rs in (new_rules, now_rules) if rs for a in rs.select(service, alert)}
    if not selected:
        known = sorted({a.service for a in new_rules.alerts if a.service}) if alert is None else sorted({a.alert for a in new_rules.alerts})
        what = f"service {service!r}" if alert is None else f"alert {alert!r}" + (f" of service {service!r}" if service else "")
        raise UsageError(f"no {what} in the rules (known: {', '.join(known)})")
    services = {s for _, s in selected}

    def to_evaluate(rs: rules_mod.RuleSet) -> list[rules_mod.AlertRule]:
        # Alerts of other rules of the same services can inhibit the selected ones: evaluate them too.
        if service is None and alert is None:
            return list(rs.alerts)
        return [a for a in rs.alerts if a.service in services]

    api = PrometheusAPI(history)
    evaluator = engine.Evaluator(api, workers=workers, progress=say)
    say(f"backtest over {report.human(window.seconds)} of history from {history}: {len(to_evaluate(new_rules))} alert(s) of the working tree"
        + (f", {len(to_evaluate(now_rules))} deployed" if now_rules else ", no deployed rules found"))
    outcomes: dict[str, engine.Outcome | None] = {
        "new": engine.outcome(evaluator, new_rules, to_evaluate(new_rules), window,
                              routing.load(new_routing.config) if new_routing else None),
        "now": engine.outcome(evaluator, now_rules, to_evaluate(now_rules), window,
                              routing.load(now_routing.config) if now_routing else None) if now_rules else None,
    }
    rows = [r for r in report.build_rows(outcomes) if (r.alert, r.service) in selected]
    sources: dict[str, Any] = {"history": history, "new": {"rules": new_rules.origin, "routing": new_routing.origin if new_routing else None}}
    if now_rules:
        sources["now"] = {"rules": now_rules.origin, "routing": now_routing.origin if now_routing else None}
    if as_json:
        echo(json.dumps(report.to_json(rows, outcomes, window, sources), indent=2, sort_keys=True))
    else:
        echo(f"{_stamp(window.start)} .. {_stamp(window.end)}   history: {history}")
        echo(report.table(rows, outcomes, window, show_all))
    if fail_on_more_pages is not None:
        pages = report.pages_by_side(rows)
        baseline = pages["now"] if outcomes["now"] is not None else 0
        if pages["new"] - baseline > fail_on_more_pages:
            raise CheckFailed(f"the working tree's rules would have paged {pages['new']} times over {report.human(window.seconds)}, "
                              f"{pages['new'] - baseline} more than the deployed rules (allowed: {fail_on_more_pages})")


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
