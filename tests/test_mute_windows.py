"""Maintenance windows do not silence pages by surprise, and can be scoped to levels, teams and services.

A time interval named in `mute_time_intervals` (the inventory's or a team's) mutes P1-P3; a page
(P0) is muted only where an entry lists P0 itself. Entries `{interval, levels, teams, services}`
narrow a window. A real Alertmanager, with the window open all the time, proves who still hears.
"""
from __future__ import annotations

import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from amrunner import Alertmanager, alert, now, render
from generator import pipeline
from generator.errors import InventoryError
from generator.render import alertmanager as am
from generator.sinks import Sinks
from generator.topology import native

INVENTORY = textwrap.dedent("""\
    version: 1
    stack: {allow_always_muted: true}                        # the windows are open all the time on purpose
    receivers:
      pager: {type: webhook, url: "http://pager.internal/hook"}
      chat: {type: webhook, url: "http://chat.internal/hook"}
    severities:
      P0: {receivers: [pager], group_wait: 1s, group_interval: 1s}
      P1: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P2: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P3: {receivers: [chat], group_wait: 1s, group_interval: 1s, active_time_intervals: []}
    time_intervals:
      always: [{weekdays: ["sunday:saturday"]}]
    mute_time_intervals:
      - always                                               # P1-P3 of everyone: pages still page
      - {interval: always, levels: [P0], services: [db]}     # the database's maintenance: its pages wait too
    teams:
      web: {}
      data: {}
      quiet: {mute_time_intervals: [{interval: always, levels: [P0, P1, P2, P3]}]}  # said out loud, P0 included
    services:
      - {name: api, team: web, kind: probe, health: [{url: "http://api:3000/health"}]}
      - {name: batch, team: data, kind: probe, health: [{url: "http://batch:3000/health"}]}
      - {name: db, team: data, kind: probe, health: [{url: "http://db:5432/health"}]}
      - {name: lab, team: quiet, kind: probe, health: [{url: "http://lab:3000/health"}]}
    """)


def _model(tmp_path: Path, text: str = INVENTORY):
    inv = tmp_path / "services.yaml"
    inv.write_text(text)
    return pipeline.load_model(inv)


def test_a_window_by_name_mutes_p1_to_p3_only(tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert model.mutes("P0", "web", "api") == ()
    assert model.mutes("P1", "web", "api") == ("always",)
    assert model.mutes("P0", "data", "db") == ("always",)
    assert model.mutes("P0", "data", "batch") == ()
    assert model.mutes("P0", "quiet", "lab") == ("always",)


def test_scoped_windows_get_route_nodes_of_their_own(tmp_path: Path) -> None:
    cfg = am.config(_model(tmp_path), native(str(tmp_path)))
    routes = cfg["route"]["routes"]
    p0 = next(r for r in routes if r["matchers"] == ['severity="P0"'])
    db = p0["routes"][0]
    assert db["matchers"] == ['service="db"'] and db["routes"] == [{"receiver": "pager", "mute_time_intervals": ["always"]}]
    assert p0["routes"][1] == {"receiver": "pager"}  # every other service's pages: no window
    quiet = next(r for r in routes if r["matchers"] == ['team="quiet"'])
    assert quiet["routes"][0]["routes"] == [{"receiver": "pager", "mute_time_intervals": ["always"]}]


@pytest.mark.parametrize("entry, says", [
    ("{interval: always, services: [dbb]}", "mute_time_intervals[1].services[0]: unknown service 'dbb'"),
    ("{interval: sometimes}", "mute_time_intervals[1].interval: unknown time interval 'sometimes'"),
    ("{interval: always, teams: [ghosts]}", "mute_time_intervals[1].teams[0]: unknown team 'ghosts'"),
])
def test_scopes_name_what_exists(tmp_path: Path, entry: str, says: str) -> None:
    text = INVENTORY.replace("  - {interval: always, levels: [P0], services: [db]}", f"  - {entry}")
    with pytest.raises(InventoryError) as err:
        _model(tmp_path, text)
    assert any(says in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]


@pytest.mark.integration
def test_alertmanager_pages_still_page_inside_a_maintenance_window(tmp_path: Path) -> None:
    inv = tmp_path / "inventory" / "services.yaml"
    inv.parent.mkdir()
    inv.write_text(INVENTORY)
    with Sinks() as sinks:
        topo = native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost)
        config = render(inv, tmp_path / "out", topo)
        with Alertmanager(config, tmp_path) as manager:
            posted = []
            for service, team in (("api", "web"), ("batch", "data"), ("db", "data"), ("lab", "quiet")):
                for level in ("P0", "P1"):
                    posted.append(alert({"alertname": f"Window{level}", "severity": level, "service": service, "team": team,
                                         "problem": f"Window{level}"}, starts=now()))
            manager.post(posted)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(sinks.captured) < 2:
                time.sleep(0.1)
            time.sleep(2.5)  # > group_wait + group_interval: anything else would have arrived
            got = Counter((c["receiver"], a["labels"]["service"], a["labels"]["severity"]) for c in sinks.captured
                          for a in c["body"]["alerts"])
    # Pages of api and batch get through; db's and the quiet team's pages were muted on purpose; every P1 waits.
    assert got == Counter({("pager", "api", "P0"): 1, ("pager", "batch", "P0"): 1}), got


PLAIN = textwrap.dedent("""\
    version: 1
    receivers:
      pager: {type: webhook, url: "http://pager.internal/hook"}
      chat: {type: webhook, url: "http://chat.internal/hook"}
    severities:
      P0: {receivers: [pager], group_wait: 1s, group_interval: 1s}
      P1: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P2: {receivers: [chat], group_wait: 1s, group_interval: 1s}
      P3: {receivers: [chat], group_wait: 1s, group_interval: 1s, active_time_intervals: []}
    time_intervals:
      sunday-maintenance: [{weekdays: ["sunday:saturday"]}]   # open all the time, for the test
    mute_time_intervals: [sunday-maintenance]
    teams: {web: {}}
    services:
      - {name: api, team: web, kind: probe, health: [{url: "http://api:3000/health"}]}
    """)


@pytest.mark.integration
def test_alertmanager_the_global_maintenance_window_holds_back_everything_but_pages(tmp_path: Path) -> None:
    inv = tmp_path / "inventory" / "services.yaml"
    inv.parent.mkdir()
    inv.write_text(PLAIN)
    with Sinks() as sinks:
        topo = native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost)
        with Alertmanager(render(inv, tmp_path / "out", topo), tmp_path) as manager:
            manager.post([alert({"alertname": f"Maint{lv}", "severity": lv, "service": "api", "team": "web", "problem": f"Maint{lv}"},
                                starts=now()) for lv in ("P0", "P1", "P2")])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sinks.captured:
                time.sleep(0.1)
            time.sleep(2.5)  # > group_wait + group_interval: anything else would have arrived
            got = sorted((c["receiver"], a["labels"]["severity"]) for c in sinks.captured for a in c["body"]["alerts"])
    assert got == [("pager", "P0")], got
