"""Backtest parts without processes: the alerting state machine, the Alertmanager model, the PromQL inliner and printer."""
from __future__ import annotations

import datetime as dt
import math

import promql_parser as P
import pytest

from generator import pipeline
from generator.backtest import routing
from generator.backtest.inline import EMPTY, Inliner, filter_labels
from generator.backtest.promql_text import show
from generator.backtest.rules import AlertRule, RecordingRule, RuleSet, from_api, from_files
from generator.backtest.source import Grid
from generator.backtest.state import alert_labels, replay
from rules_support import IDS, INVENTORIES

T0 = 1_700_000_100.0  # a multiple of 15 and of 60 seconds
STEP = 15.0


def rule(for_: float = 0, keep: float = 0, labels: dict | None = None, name: str = "Burst") -> AlertRule:
    return AlertRule(name, "x > 0", for_, keep, labels or {"severity": "P0", "service": "svc"}, "g", STEP)


def grid(minutes: float) -> Grid:
    return Grid.aligned(T0, T0 + minutes * 60, STEP)


def present(g: Grid, *spans: tuple[float, float], labels=(("job", "a"),)) -> dict:
    """The sample label set present at every step in [start, end) seconds after T0, for each span."""
    points = {}
    for start, end in spans:
        for i in range(g.count):
            if start <= g.time(i) - T0 < end:
                points[i] = 1.0
    return {labels: points}


# --- state machine --------------------------------------------------------------------------


def test_three_bursts_two_outlast_for():
    g = grid(90)
    # up == 0 for 1m, 5m and 4m; `for: 2m` at a 15s evaluation interval.
    rep = replay(rule(for_=120), g, present(g, (600, 660), (1800, 2100), (3600, 3840)))
    fired = [e for e in rep.episodes if e.fired]
    cleared = [e for e in rep.episodes if not e.fired]
    assert [(e.active_at - T0, e.fired_at - T0, e.resolved_at - T0) for e in fired] == [(1800, 1920, 2100), (3600, 3720, 3840)]
    assert [(e.active_at - T0, e.resolved_at - T0) for e in cleared] == [(600, 660)]


def test_for_zero_fires_at_the_first_evaluation_and_a_gap_resolves():
    g = grid(10)
    rep = replay(rule(), g, present(g, (60, 90), (120, 150)))
    assert [(e.fired_at - T0, e.resolved_at - T0) for e in rep.episodes] == [(60, 90), (120, 150)]


def test_for_needs_every_evaluation_in_between():
    g = grid(10)
    # true for 2m, one evaluation false, true for 2m again: `for: 3m` never fires.
    rep = replay(rule(for_=180), g, present(g, (0, 120), (135, 255)))
    assert not any(e.fired for e in rep.episodes)
    assert len(rep.episodes) == 2


def test_keep_firing_for_holds_through_gaps_and_resets():
    g = grid(20)
    # true 0-60s, false 75-135s, true 150-225s, false from 240s: keep_firing_for 3m bridges the first gap.
    spans = ((0, 75), (150, 240))
    kept = replay(rule(keep=180), g, present(g, *spans))
    assert [(e.fired_at - T0, e.resolved_at - T0) for e in kept.episodes] == [(0, 240 + 180)]
    plain = replay(rule(), g, present(g, *spans))
    assert [(e.fired_at - T0, e.resolved_at - T0) for e in plain.episodes] == [(0, 75), (150, 240)]


def test_keep_firing_for_does_not_hold_pending_alerts():
    g = grid(10)
    rep = replay(rule(for_=120, keep=600), g, present(g, (0, 60)))
    assert [(e.fired_at, e.resolved_at - T0) for e in rep.episodes] == [(None, 60)]


def test_alert_still_firing_at_the_end_is_open():
    g = grid(5)
    rep = replay(rule(for_=60), g, present(g, (120, 10_000)))
    (e,) = rep.episodes
    assert (e.active_at - T0, e.fired_at - T0, e.resolved_at) == (120, 180, None)


def test_identity_drops_name_and_applies_rule_labels():
    r = rule(labels={"severity": "P1", "job": "overridden", "gone": ""})
    assert alert_labels(r, (("__name__", "up"), ("gone", "x"), ("instance", "i"), ("job", "a"))) == (
        ("alertname", "Burst"), ("instance", "i"), ("job", "overridden"), ("severity", "P1"))


def test_duplicate_labels_after_rule_labels_fail_the_evaluation_and_change_nothing():
    g = grid(6)
    r = rule(labels={"job": "same"})
    series = {(("job", "a"),): {i: 1.0 for i in range(0, 21)}, (("job", "b"),): {i: 1.0 for i in range(8, 12)}}
    rep = replay(r, g, series)
    assert [t - T0 for t in rep.failed_steps] == [120, 135, 150, 165]
    # The alert became active at step 0; failed evaluations neither resolve nor restart it.
    (e,) = rep.episodes
    assert (e.fired_at - T0, e.resolved_at - T0) == (0, 21 * 15)


def test_grid_is_aligned_to_the_step():
    g = Grid.aligned(1000.0, 1100.0, 15)
    assert (g.start, g.end, g.count) == (1005.0, 1095.0, 7)


# --- Alertmanager model -------------------------------------------------------------------------

BASE = {
    "route": {"receiver": "default", "group_by": ["alertname", "service"], "group_wait": "30s", "group_interval": "5m",
              "repeat_interval": "1h", "routes": [
                  {"receiver": "pager", "matchers": ['severity="P0"'], "group_wait": "10s", "group_interval": "1m",
                   "repeat_interval": "30m", "routes": [{"receiver": "pager", "continue": True}, {"receiver": "chat"}]},
                  {"receiver": "chat", "matchers": ['severity=~"P1|P2"']},
                  {"receiver": "tickets", "matchers": ['severity="P3"'], "routes": [{"receiver": "tickets", "active_time_intervals": ["office"]}]},
              ]},
    "inhibit_rules": [{"source_matchers": ['severity="P0"', 'service=~".+"'], "target_matchers": ['severity=~"P1|P2|P3"'],
                       "equal": ["service"]}],
    "receivers": [{"name": "default", "webhook_configs": [{"url": "http://x/", "send_resolved": True}]},
                  {"name": "pager", "pagerduty_configs": [{"routing_key_file": "/k", "send_resolved": True}]},
                  {"name": "chat", "slack_configs": [{"api_url_file": "/u", "channel": "#c", "send_resolved": False}]},
                  {"name": "tickets", "webhook_configs": [{"url": "http://t/"}]}],
    "time_intervals": [{"name": "office", "time_intervals": [{"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}]}]}],
}
MONDAY_8AM = dt.datetime(2023, 11, 13, 8, 0, tzinfo=dt.timezone.utc).timestamp()


def ep(start: float, end: float, **labels: str) -> routing.AlertEpisode:
    return routing.AlertEpisode(tuple(sorted(labels.items())), start, end)


def sent(notes, receiver=None):
    return [(n.time - MONDAY_8AM, n.receiver, n.kind, len(n.firing), len(n.resolved)) for n in notes if receiver in (None, n.receiver)]


def test_repeat_interval_counts_from_the_last_notification_on_group_interval_ticks():
    cfg = routing.load({**BASE, "route": {**BASE["route"], "routes": [BASE["route"]["routes"][1]]}})
    # P1: group_wait 30s, group_interval 5m, repeat 1h (inherited); firing 2h10m; send_resolved on for `default`? no: chat.
    notes = routing.simulate(cfg, [ep(MONDAY_8AM, MONDAY_8AM + 130 * 60, alertname="A", service="s", severity="P1")], MONDAY_8AM + 86400)
    # A tick exactly one repeat later (30s + 60m) does not repeat; the next one does (30s + 65m).
    assert sent(notes) == [(30, "chat", "firing", 1, 0), (30 + 65 * 60, "chat", "firing", 1, 0)]


def test_resolved_notifications_follow_send_resolved_and_continue_reaches_both_receivers():
    cfg = routing.load(BASE)
    notes = routing.simulate(cfg, [ep(MONDAY_8AM, MONDAY_8AM + 125, alertname="Down", service="s", severity="P0")], MONDAY_8AM + 3600)
    assert sent(notes, "pager") == [(10, "pager", "firing", 1, 0), (130, "pager", "resolved", 0, 1)]
    assert sent(notes, "chat") == [(10, "chat", "firing", 1, 0)]  # slack without send_resolved: no message


def test_group_collects_alerts_and_a_late_alert_waits_for_the_next_group_interval():
    cfg = routing.load(BASE)
    eps = [ep(MONDAY_8AM, math.inf, alertname="Lat", service="s", severity="P2", instance="1"),
           ep(MONDAY_8AM + 20, math.inf, alertname="Lat", service="s", severity="P2", instance="2"),
           ep(MONDAY_8AM + 100, math.inf, alertname="Lat", service="s", severity="P2", instance="3")]
    notes = routing.simulate(cfg, eps, MONDAY_8AM + 600)
    assert sent(notes) == [(30, "chat", "firing", 2, 0), (330, "chat", "firing", 3, 0)]


def test_inhibited_alert_is_notified_once_its_source_resolves():
    cfg = routing.load(BASE)
    eps = [ep(MONDAY_8AM, MONDAY_8AM + 200, alertname="TargetDown", service="s", severity="P0"),
           ep(MONDAY_8AM + 5, math.inf, alertname="Errors", service="s", severity="P1"),
           ep(MONDAY_8AM + 5, math.inf, alertname="Errors", service="other", severity="P1")]
    notes = routing.simulate(cfg, eps, MONDAY_8AM + 1200)
    chat = [(t, dict(n.firing[0])["service"]) for n in notes if n.receiver == "chat" and n.firing
            and dict(n.firing[0])["alertname"] == "Errors" for t in [n.time - MONDAY_8AM]]
    # The other service is not inhibited; s is muted at its first flush (35s) and notified at the next tick after 200s.
    assert chat == [(35, "other"), (335, "s")]


def test_two_sided_match_does_not_inhibit_itself():
    cfg = routing.load({**BASE, "inhibit_rules": [{"source_matchers": ['alertname=~"A|B"'], "target_matchers": ['alertname=~"A|B"'],
                                                    "equal": ["service"]}]})
    eps = [ep(MONDAY_8AM, math.inf, alertname="A", service="s", severity="P1"),
           ep(MONDAY_8AM, math.inf, alertname="B", service="s", severity="P1")]
    notes = routing.simulate(cfg, eps, MONDAY_8AM + 60)
    assert sorted(dict(n.firing[0])["alertname"] for n in notes) == ["A", "B"]


def test_active_time_intervals_hold_notifications_until_the_interval_opens():
    cfg = routing.load(BASE)
    # P3 at 08:00 on a Monday: group_wait 30s and group_interval 5m (root); office hours open at 09:00.
    notes = routing.simulate(cfg, [ep(MONDAY_8AM, math.inf, alertname="Slow", service="s", severity="P3")], MONDAY_8AM + 7200)
    assert sent(notes) == [(3600 + 30, "tickets", "firing", 1, 0)]


def test_mute_time_interval_suppresses_and_logs_nothing():
    muted = {**BASE, "route": {**BASE["route"], "routes": [{"receiver": "chat", "matchers": ['severity="P1"'],
                                                             "mute_time_intervals": ["office"]}]}}
    cfg = routing.load(muted)
    nine = MONDAY_8AM + 3600
    notes = routing.simulate(cfg, [ep(nine, nine + 3 * 3600, alertname="E", service="s", severity="P1")], nine + 86400)
    # Muted until 17:00; the first flush after it notifies (it resolved at 12:00 and the group is long gone: nothing).
    assert notes == []
    notes = routing.simulate(cfg, [ep(nine, nine + 9 * 3600, alertname="E", service="s", severity="P1")], nine + 86400)
    assert sent(notes) == [(3600 + 8 * 3600 + 30, "chat", "firing", 1, 0)]


def test_alert_arriving_before_the_maintenance_pass_joins_the_emptied_group():
    cfg = routing.load(BASE)
    a = ep(MONDAY_8AM, MONDAY_8AM + 40, alertname="Down", service="s", severity="P0", instance="1")
    # Group ticks at 10s, 70s (resolved: notified, group emptied), then removed at the pass after 70s (90s).
    joins = ep(MONDAY_8AM + 80, math.inf, alertname="Down", service="s", severity="P0", instance="2")
    late = ep(MONDAY_8AM + 95, math.inf, alertname="Down", service="s", severity="P0", instance="2")
    assert sent(routing.simulate(cfg, [a, joins], MONDAY_8AM + 200), "pager") == [
        (10, "pager", "firing", 1, 0), (70, "pager", "resolved", 0, 1), (130, "pager", "firing", 1, 0)]
    assert sent(routing.simulate(cfg, [a, late], MONDAY_8AM + 200), "pager") == [
        (10, "pager", "firing", 1, 0), (70, "pager", "resolved", 0, 1), (105, "pager", "firing", 1, 0)]


def test_refire_within_a_group_interval_is_invisible():
    cfg = routing.load(BASE)
    eps = [ep(MONDAY_8AM, MONDAY_8AM + 20, alertname="Down", service="s", severity="P0"),
           ep(MONDAY_8AM + 40, math.inf, alertname="Down", service="s", severity="P0")]
    notes = routing.simulate(cfg, eps, MONDAY_8AM + 300)
    assert sent(notes, "pager") == [(10, "pager", "firing", 1, 0)]


def test_pagers_are_receivers_with_a_paging_integration():
    assert routing.load(BASE).pagers() == {"pager"}


@pytest.mark.parametrize("spec, when, inside", [
    ({"weekdays": ["saturday", "sunday"]}, dt.datetime(2023, 11, 12, 12, 0), True),
    ({"weekdays": ["monday:friday"]}, dt.datetime(2023, 11, 12, 12, 0), False),
    ({"times": [{"start_time": "02:00", "end_time": "04:00"}], "location": "Europe/Berlin"}, dt.datetime(2023, 11, 12, 1, 30), True),
    ({"times": [{"start_time": "02:00", "end_time": "04:00"}], "location": "Europe/Berlin"}, dt.datetime(2023, 11, 12, 3, 0), False),
    ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, dt.datetime(2023, 11, 13, 17, 0), False),
    ({"days_of_month": ["-1"]}, dt.datetime(2024, 2, 29, 10, 0), True),
    ({"days_of_month": ["-3:-2"]}, dt.datetime(2024, 2, 29, 10, 0), False),
    ({"months": ["november:december"], "years": ["2023"]}, dt.datetime(2023, 11, 13, 10, 0), True),
    ({"months": ["1"]}, dt.datetime(2023, 11, 13, 10, 0), False),
])
def test_time_intervals_follow_alertmanager(spec, when, inside):
    t = when.replace(tzinfo=dt.timezone.utc).timestamp()
    assert routing.TimeInterval.parse(spec).contains(t) is inside


def test_matchers_parse_classic_syntax():
    ms = routing.parse_matchers(['alertname=~"A|B"', "severity = P1", '{service!="x", team!~"a.*"}', 'msg="a\\"b"'])
    assert [(m.name, m.op, m.value) for m in ms] == [("alertname", "=~", "A|B"), ("severity", "=", "P1"),
                                                      ("service", "!=", "x"), ("team", "!~", "a.*"), ("msg", "=", 'a"b')]
    assert ms[0].matches({"alertname": "B"}) and not ms[0].matches({"alertname": "AB"})


def test_route_tree_follows_continue_and_inherits_timing():
    cfg = routing.load(BASE)
    leaves = cfg.route.match({"severity": "P0", "service": "s"})
    assert [(r.receiver, r.group_wait, r.repeat_interval) for r in leaves] == [("pager", 10, 1800), ("chat", 10, 1800)]
    (fallback,) = cfg.route.match({"service": "s"})
    assert fallback.receiver == "default"


# --- rules ----------------------------------------------------------------------------------------


def test_rules_from_the_api_match_the_rendered_files():
    files = pipeline.build(INVENTORIES[0]).files
    rendered = from_files(files, "x")
    import yaml

    groups = []
    for path in sorted(p for p in files if p.startswith("prometheus/rules/")):
        for g in yaml.safe_load(files[path])["groups"]:
            groups.append({"name": g["name"], "file": path, "interval": 15, "rules": [
                {"type": "recording", "name": r["record"], "query": r["expr"], "labels": r.get("labels", {})} if "record" in r else
                {"type": "alerting", "name": r["alert"], "query": r["expr"], "labels": r["labels"],
                 "duration": __import__("generator.durations", fromlist=["x"]).parse_duration(r["for"]).seconds, "keepFiringFor": 0}
                for r in g["rules"]]})
    api = from_api({"groups": groups}, "api")
    assert [(a.alert, a.expr, a.for_, a.labels) for a in api.alerts] == [(a.alert, a.expr, a.for_, a.labels) for a in rendered.alerts]
    assert {k: [r.expr for r in v] for k, v in api.recording.items()} == {k: [r.expr for r in v] for k, v in rendered.recording.items()}


# --- printer and inliner ---------------------------------------------------------------------------


@pytest.mark.parametrize("inventory", INVENTORIES, ids=IDS)
def test_printer_round_trips_every_rendered_expression(inventory):
    rs = from_files(pipeline.build(inventory).files, "x")
    exprs = [a.expr for a in rs.alerts] + [r.expr for rules in rs.recording.values() for r in rules]
    for e in exprs:
        once = show(P.parse(e))
        assert show(P.parse(once)) == once
        assert str(P.parse(once)) == str(P.parse(e))  # the library's (unescaped) canonical form agrees


def test_printer_keeps_escapes():
    assert show(P.parse('x{le=~"0\\\\.5", a="q\\"z"}')) == 'x{le=~"0\\\\.5", a="q\\"z"}'


@pytest.mark.parametrize("inventory", INVENTORIES, ids=IDS)
def test_inlined_alerts_read_no_recorded_series_and_only_their_service(inventory):
    rs = from_files(pipeline.build(inventory).files, "x")
    inliner = Inliner(rs)
    for a in rs.alerts:
        out = inliner.inline(a.expr)
        selectors = []
        P.walk(P.parse(out), pre_visit=lambda n: selectors.append(n) if isinstance(n, P.VectorSelector) else None)
        assert not [s.name for s in selectors if s.name in rs.recording], a.alert
        if out != a.expr and a.service:
            # Every raw selector is scoped to the alert's own service: other services' rules were pruned.
            services = {m.value for s in selectors for m in s.matchers.matchers if m.name == "service"}
            assert services == {a.service}, (a.alert, out)


def _rs(*recording: RecordingRule) -> RuleSet:
    by: dict = {}
    for r in recording:
        by.setdefault(r.record, []).append(r)
    return RuleSet({k: tuple(v) for k, v in by.items()}, (), "test")


def test_inline_decides_static_labels_and_pushes_through_aggregations():
    rs = _rs(RecordingRule("svc:x:rate5m", 'sum by (service) (rate(x_total{service="a"}[5m]))', {}, "a", 15),
             RecordingRule("svc:x:rate5m", 'sum by (service) (rate(x_total{service="b"}[5m]))', {}, "b", 15),
             RecordingRule("custom:v", "max(y)", {"service": "a", "team": "t"}, "a", 15))
    inl = Inliner(rs)
    assert inl.inline('svc:x:rate5m{service="b"} > 1') == \
        '(label_replace(sum by (service) (rate(x_total{service="b"}[5m])), "__name__", "svc:x:rate5m", "", "")) > 1'
    assert inl.inline('custom:v{service="b"} > 1') == f"{EMPTY} > 1"
    assert inl.inline('custom:v{team="t"}') == \
        '(label_replace(label_replace(label_replace(max (y), "service", "a", "", ""), "team", "t", "", ""), "__name__", "custom:v", "", ""))'
    # No matcher: both services' rules, united.
    assert inl.inline("svc:x:rate5m").count(" or ") == 1
    # A range over a recorded series is a subquery at the recording interval.
    assert inl.inline('max_over_time(svc:x:rate5m{service="a"}[10m])').endswith('[10m:15s])')


def test_inline_filters_what_cannot_be_pushed_down():
    rs = _rs(RecordingRule("r", 'sum by (job) (x) / on () group_left sum(y)', {}, "g", 15))
    out = Inliner(rs).inline('r{job="a"}')
    # group_left keeps the left side's labels: job="a" goes into the left side only.
    assert '{job="a"}' in out
    rs = _rs(RecordingRule("r", 'label_replace(x, "job", "$1", "instance", "(.*)")', {}, "g", 15))
    out = Inliner(rs).inline('r{job="a"}')
    assert out == "(" + filter_labels('label_replace(label_replace(x, "job", "$1", "instance", "(.*)"), "__name__", "r", "", "")',
                                      [("job", "=", "a")]) + ")"
