"""The backtest's Alertmanager model against the real Alertmanager: same alerts, same notifications.

A real Alertmanager (short intervals: group_wait 1s, group_interval 2s,
repeat_interval 5s) gets alerts posted on a schedule and notifies a local
webhook sink; the simulation gets the same alerts with the times they were
posted. Both must produce the same notifications, in the same order, within a
fraction of a second. Scheduled events sit at least 0.4s away from any flush
tick, so timer jitter cannot move one across a tick.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import pytest
import yaml

from amrunner import ALERTMANAGER, Alertmanager, alert, now
from generator.backtest import routing
from generator.sinks import HttpSink

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not ALERTMANAGER, reason="prometheus-alertmanager not installed")]

TOLERANCE = 0.35  # seconds between a simulated flush and the real notification


def _config(sink: HttpSink) -> dict:
    return {
        "route": {
            "receiver": "hook-a", "group_by": ["alertname", "service"],
            "group_wait": "1s", "group_interval": "2s", "repeat_interval": "5s",
            "routes": [
                {"receiver": "hook-a", "matchers": ['severity="P0"'],
                 "routes": [{"receiver": "hook-a", "continue": True}, {"receiver": "hook-b"}]},
                {"receiver": "hook-b", "matchers": ['severity="P1"']},
                {"receiver": "hook-a", "matchers": ['severity="P2"'], "mute_time_intervals": ["always"]},
                {"receiver": "hook-a", "matchers": ['severity="P3"'], "active_time_intervals": ["long-ago"]},
            ],
        },
        "inhibit_rules": [{"source_matchers": ['severity="P0"'], "target_matchers": ['severity="P1"'], "equal": ["service"]}],
        "receivers": [
            {"name": "hook-a", "webhook_configs": [{"url": sink.webhook_url("hook-a"), "send_resolved": True}]},
            {"name": "hook-b", "webhook_configs": [{"url": sink.webhook_url("hook-b"), "send_resolved": False}]},
        ],
        "time_intervals": [{"name": "always", "time_intervals": [{"weekdays": ["sunday:saturday"]}]},
                           {"name": "long-ago", "time_intervals": [{"years": ["1999"]}]}],
    }


A1 = {"alertname": "Down", "service": "s1", "severity": "P0", "instance": "1"}
A2 = {"alertname": "Down", "service": "s1", "severity": "P0", "instance": "2"}
B = {"alertname": "Errors", "service": "s2", "severity": "P1"}
C = {"alertname": "Down", "service": "s2", "severity": "P0"}
D = {"alertname": "Slow", "service": "s3", "severity": "P2"}
E = {"alertname": "Tidy", "service": "s4", "severity": "P3"}

# (seconds after the start, alert, "fire" | "resolve")
SCHEDULE = [
    (0.0, A1, "fire"), (0.0, B, "fire"), (0.0, D, "fire"), (0.0, E, "fire"),
    (0.5, C, "fire"),  # inhibits B (same service), which has not been notified yet
    (2.4, A2, "fire"),  # joins A1's group: notified at the next group_interval tick (3s)
    (4.4, C, "resolve"),  # B's next flush (5s) notifies it
    (6.3, A1, "resolve"),  # hook-a hears of it at 7s; hook-b (no send_resolved) only repeats at 9s
    (9.5, B, "resolve"),
    (13.4, A2, "resolve"),  # all resolved: hook-a says so at 15s, hook-b sends nothing
]
HORIZON = 18.0
# What the schedule must produce: (seconds after the start, receiver, firing alerts, resolved alerts).
SCENARIO = [
    (1.0, "hook-a", 1, 0), (1.0, "hook-b", 1, 0),  # A1 on both leaves of the P0 route
    (1.5, "hook-a", 1, 0), (1.5, "hook-b", 1, 0),  # C (its group started at 0.5s)
    (3.0, "hook-a", 2, 0), (3.0, "hook-b", 2, 0),  # A2 joined A1's group
    (5.0, "hook-b", 1, 0),  # B, no longer inhibited
    (5.5, "hook-a", 0, 1),  # C resolved (hook-b: no send_resolved)
    (7.0, "hook-a", 1, 1),  # A1 resolved
    (9.0, "hook-b", 1, 0),  # repeat: more than 5s since 3s
    (13.0, "hook-a", 1, 0),  # repeat: more than 5s since 7s
    (15.0, "hook-a", 0, 1),  # everything resolved; D (muted) and E (outside its active interval) never notify
]


def _run_schedule(am: Alertmanager) -> list[routing.AlertEpisode]:
    start_mono = time.monotonic()
    starts: dict[tuple, float] = {}
    episodes = []
    for offset, labels, what in SCHEDULE:
        delay = start_mono + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the schedule is the scenario's input, not a wait for an outcome
        before = time.time()
        key = tuple(sorted(labels.items()))
        if what == "fire":
            am.post([alert(labels, starts=now())])
        else:
            t = now()
            am.post([alert(labels, starts=dt.datetime.fromtimestamp(starts[key], dt.timezone.utc), ends=t)])
        posted = (before + time.time()) / 2
        if what == "fire":
            starts[key] = posted
        else:
            episodes.append(routing.AlertEpisode(key, starts.pop(key), posted))
    episodes += [routing.AlertEpisode(k, s, math.inf) for k, s in starts.items()]
    return episodes


def _real(sink: HttpSink) -> list[tuple[float, str, tuple, tuple]]:
    out = []
    for c in sink.captured:
        body = c["body"]
        firing = tuple(sorted(tuple(sorted(a["labels"].items())) for a in body["alerts"] if a["status"] == "firing"))
        resolved = tuple(sorted(tuple(sorted(a["labels"].items())) for a in body["alerts"] if a["status"] == "resolved"))
        out.append((c["time"], c["receiver"], firing, resolved))
    return sorted(out)


def test_simulated_notifications_match_a_real_alertmanager(tmp_path: Path):
    sink = HttpSink().start()
    try:
        cfg = _config(sink)
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        with Alertmanager(tmp_path / "alertmanager.yml", tmp_path) as am:
            episodes = _run_schedule(am)
            first = min(e.start for e in episodes)
            simulated = routing.simulate(routing.load(cfg), episodes, first + HORIZON)
            expected = [(n.time, n.receiver, n.firing, n.resolved) for n in simulated]
            deadline = first + HORIZON
            sink.wait_for(count=len(expected), timeout=max(1.0, deadline - time.time()))
            time.sleep(max(0.0, deadline - time.time()))  # past the last tick of the scenario: nothing more may arrive
            real = _real(sink)
    finally:
        sink.stop()
    # The scenario exercises what it claims: continue, grouping, repeat, inhibition, send_resolved, time intervals.
    assert [(r, len(f), len(res)) for _, r, f, res in expected] == [(r, f, res) for _, r, f, res in SCENARIO]
    for (t, *_), (offset, *_) in zip(expected, SCENARIO):
        assert abs(t - first - offset) < 0.1
    # Per receiver: two receivers notified at one tick reach the sink in either order.
    for receiver in ("hook-a", "hook-b"):
        mine_real = [n for n in real if n[1] == receiver]
        mine_sim = [n for n in expected if n[1] == receiver]
        assert [(f, res) for _, _, f, res in mine_real] == [(f, res) for _, _, f, res in mine_sim], receiver
        for (t_real, *_), (t_sim, *_) in zip(mine_real, mine_sim):
            assert abs(t_real - t_sim) < TOLERANCE, (receiver, t_real - first, t_sim - first)
