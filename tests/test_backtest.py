"""`monstack backtest` against a real Prometheus fed with known synthetic history, where the right answer is known.

The history (3 hours at 15s, from a fixed Monday midnight UTC) is written as
OpenMetrics, backfilled with promtool and served by a scratch Prometheus:
- shop-api's target is down three times, for 1m, 5m and 4m: TargetDown
  (set to `for: 2m` by the test inventory) fires twice, at known evaluations;
- shop-api answers 9% errors for 15 minutes: the error-ratio alerts, which read
  recording rules that are not in the history, fire;
- gauges for hand-written rules: a flapping one (keep_firing_for), a pool
  ratio read through a recording rule, one condition held 2h10m (repeat
  notifications).
The scratch Prometheus also loads the "deployed" rules (the same inventory
with TargetDown at `for: 5m`), so its rules API serves them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import promql_parser as P
import pytest
import yaml

from conftest import ROOT
from generator import defaults, names, pipeline
from generator.backtest import engine, routing
from generator.backtest import rules as R
from generator.backtest.scratch import ScratchPrometheus, backfill, backfill_rules, write_openmetrics
from generator.backtest.source import Grid, PrometheusAPI
from generator.catalogue import series as S

pytestmark = pytest.mark.integration

INVENTORY = ROOT / "tests" / "inventories" / "backtest" / "services.yaml"
T = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday; a multiple of 2h, so one backfilled block
STEP = 15
STEPS = 3 * 3600 // STEP
FAST = int(defaults.FAST_EVALUATION_INTERVAL.removesuffix("s"))  # the fast group's evaluation interval
WINDOW = engine.Window(T, T + 3 * 3600)
OUTAGES = ((600, 660), (1800, 2100), (3600, 3840))  # seconds after T: 1m, 5m, 4m
ERRORS = (5400, 6300)  # 15 minutes of 1 error/s beside 10 ok/s
FLAP = ((9000, 9075), (9150, 9240))  # true, one gap of 75s, true again
POOL_BUSY = (9600, 9900)
STUCK = (0, 7800)  # 2h10m


def _in(t: int, *spans: tuple[int, int]) -> bool:
    return any(a <= t < b for a, b in spans)


def _history(model) -> list:
    s = model.service("shop-api")
    m = s.metrics
    base = S.target(model, s)
    times = [T + k * STEP for k in range(STEPS)]
    out = [("up", base, [(t, 0.0 if _in(t - T, *OUTAGES) else 1.0) for t in times])]
    ok, bad, errors = [], [], 0.0
    for k, t in enumerate(times):
        ok.append((t, 150.0 * k))
        bad.append((t, errors))
        if _in(t - T, ERRORS):
            errors += 15.0
    req = {**base, "method": "GET", m.route_label: "/api/orders"}
    out += [(m.requests, {**req, m.status_label: "200"}, ok), (m.requests, {**req, m.status_label: "500"}, bad)]
    for le in ("0.1", "0.25", "0.5", "1.0", "+Inf"):
        out.append((f"{m.duration}_bucket", {**req, "le": le}, [(t, 150.0 * k) for k, t in enumerate(times)]))
    out.append((f"{m.duration}_count", req, [(t, 150.0 * k) for k, t in enumerate(times)]))
    out.append((f"{m.duration}_sum", req, [(t, 7.5 * k) for k, t in enumerate(times)]))
    test = {"job": "t"}
    out.append(("flap", test, [(t, 1.0 if _in(t - T, *FLAP) else 0.0) for t in times]))
    out.append(("pool_in_use", test, [(t, 9.0 if _in(t - T, POOL_BUSY) else 2.0) for t in times]))
    out.append(("pool_size", test, [(t, 10.0) for t in times]))
    out.append(("stuck", test, [(t, 1.0 if _in(t - T, STUCK) else 0.0) for t in times]))
    return out


def _write_rules(files: dict[str, bytes], root: Path) -> list[Path]:
    out = []
    for path, data in files.items():
        if path.startswith(names.RULES_DIR + "/"):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            out.append(target)
    return sorted(out)


@pytest.fixture(scope="module")
def raw_blocks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("backtest-history")
    om = root / "history.om"
    write_openmetrics(om, _history(pipeline.load_model(INVENTORY)))
    backfill(om, root / "blocks")
    return root / "blocks"


def _copy(blocks: Path, dest: Path) -> Path:
    shutil.copytree(blocks, dest)
    return dest


@pytest.fixture(scope="module")
def prom(raw_blocks, tmp_path_factory):
    """The history, with the deployed rules (TargetDown `for: 5m`) loaded so /api/v1/rules serves them."""
    root = tmp_path_factory.mktemp("backtest-prom")
    deployed = root / "services.yaml"
    doc = yaml.safe_load(INVENTORY.read_text())
    doc["services"][0]["alerts"] = {"TargetDown": {"for": "5m"}}
    deployed.write_text(yaml.safe_dump(doc))
    rule_files = _write_rules(pipeline.build(deployed).files, root / "deployed")
    flap = root / "flap.yml"
    flap.write_text(yaml.safe_dump({"groups": [{"name": "flap", "rules": [
        {"alert": "Flap", "expr": "flap > 0", "keep_firing_for": "3m", "labels": {"severity": "P1", "service": "t"}}]}]}))
    with ScratchPrometheus(root / "prom", _copy(raw_blocks, root / "data"), rule_files=rule_files + [flap]) as p:
        yield p


def _backtest(cli, prom, tmp_path, *args: str):
    return cli("backtest", "--inventory", str(INVENTORY), "--prometheus", prom.url, "--since", "3h", "--until", str(WINDOW.end),
               "--state-dir", str(tmp_path / "no-stack"), *args)


def _row(doc, alert, service="shop-api"):
    (row,) = [r for r in doc["alerts"] if r["alert"] == alert and r["service"] == service]
    return row


def test_three_outages_two_outlast_for(cli, prom, tmp_path):
    r = _backtest(cli, prom, tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    down = _row(doc, "TargetDown")
    # New rules (`for: 2m`): the 5m and 4m outages fire and resolve when up returns. The condition holds from the
    # first evaluation of the fast group (every 5s) that sees two failed scrapes in a row, then `for` runs.
    pending = [start + STEP + FAST for start in (1800, 3600)]
    assert [(e["fired_at"] - T, e["resolved_at"] - T) for e in down["new"]["episodes"]] == [(pending[0] + 120, 2100), (pending[1] + 120, 3840)]
    assert down["new"]["fires"] == 2 and down["new"]["pending_only"] == 1
    # Deployed (`for: 5m`): the 5m outage ends one evaluation short of firing.
    assert down["now"]["fires"] == 0 and down["now"]["pending_only"] == 3
    # P0 routing (group_wait 30s, group_interval 5m): one page each, and a resolved message each on both receivers.
    assert down["new"]["pages"] == 2
    assert down["new"]["notifications"] == {"chat": 4, "pager": 4}
    assert doc["sources"]["now"]["rules"] == f"{prom.url}/api/v1/rules"
    # The error burst fires the P0 error-ratio alert once on both sides: it reads recording rules absent from the history.
    crit = _row(doc, "HttpErrorRatioCritical")
    assert crit["new"]["fires"] == crit["now"]["fires"] == 1
    query = doc["queries"]["new"]["HttpErrorRatioCritical/shop-api/shop-api.alerts"]
    read = []
    P.walk(P.parse(query), pre_visit=lambda n: read.append(n.name) if isinstance(n, P.VectorSelector) else None)
    assert read and not [name for name in read if ":" in name]  # only raw series


def test_table_marks_changes_and_fail_on_more_pages_guards_ci(cli, prom, tmp_path):
    r = _backtest(cli, prom, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    down = next(line for line in lines if line.startswith("TargetDown *"))
    assert down.split()[2:5] == ["shop-api", "P0", "2"]
    assert any(line.startswith("deployed rules:") for line in lines)
    worse = _backtest(cli, prom, tmp_path, "--fail-on-more-pages", "0")
    assert worse.returncode == 1
    assert "2 more than the deployed rules (allowed: 0)" in worse.stderr
    assert _backtest(cli, prom, tmp_path, "--fail-on-more-pages", "2").returncode == 0


def test_service_and_alert_filters(cli, prom, tmp_path):
    r = _backtest(cli, prom, tmp_path, "--json", "--alert", "TargetDown")
    assert r.returncode == 0, r.stderr
    assert [row["alert"] for row in json.loads(r.stdout)["alerts"]] == ["TargetDown"]
    missing = _backtest(cli, prom, tmp_path, "--service", "nope")
    assert missing.returncode == 2 and "no service 'nope'" in missing.stderr


def test_deployed_routing_comes_from_the_running_alertmanager(cli, prom, tmp_path):
    """The deployed Alertmanager sends P0 only to chat: the deployed side pages nobody, the working tree's pages."""
    from amrunner import ALERTMANAGER, Alertmanager, render
    from generator.topology import native

    if not ALERTMANAGER:
        pytest.skip("prometheus-alertmanager not installed (make deps)")
    doc = yaml.safe_load(INVENTORY.read_text())
    doc["severities"]["P0"]["receivers"] = ["chat"]
    deployed = tmp_path / "deployed" / "services.yaml"
    deployed.parent.mkdir()
    deployed.write_text(yaml.safe_dump(doc))
    config = render(deployed, tmp_path / "out", native(str(deployed.parent), sink_http="127.0.0.1:9"))
    with Alertmanager(config, tmp_path) as am:
        r = _backtest(cli, prom, tmp_path, "--json", "--alertmanager", am.url)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sources"]["now"]["routing"] == f"{am.url}/api/v2/status"
    crit = _row(doc, "HttpErrorRatioCritical")
    assert crit["new"]["pages"] == 1 and crit["now"]["pages"] == 0
    assert crit["now"]["notifications"] == {"chat": 2}  # firing, then resolved


def _rules(*rules) -> R.RuleSet:
    recording: dict = {}
    alerts = []
    for r in rules:
        if isinstance(r, R.RecordingRule):
            recording.setdefault(r.record, []).append(r)
        else:
            alerts.append(r)
    return R.RuleSet({k: tuple(v) for k, v in recording.items()}, tuple(alerts), "test", STEP)


def _alert(name: str, expr: str, for_: float = 0, keep: float = 0) -> R.AlertRule:
    return R.AlertRule(name, expr, for_, keep, {"severity": "P1", "service": "t"}, "test", STEP)


def _episodes(prom, rules: R.RuleSet, config: routing.Config | None = None) -> engine.Outcome:
    return engine.outcome(engine.Evaluator(PrometheusAPI(prom.url)), rules, rules.alerts, WINDOW, config)


def test_keep_firing_for_bridges_a_gap(prom):
    served = R.from_api(PrometheusAPI(prom.url).rules(), "api").select(alert="Flap")
    assert [(r.for_, r.keep_firing_for) for r in served] == [(0, 180)]  # read from the rules API, as deployed rules are
    out = _episodes(prom, _rules(*served, _alert("FlapPlain", "flap > 0")))
    kept, plain = out.replays
    # Gap at 9075..9135 (<3m): one episode; it ends 3m after the condition's last evaluation, 9240 + 180.
    assert [(e.fired_at - T, e.resolved_at - T) for e in kept.episodes] == [(9000, 9420)]
    assert [(e.fired_at - T, e.resolved_at - T) for e in plain.episodes] == [(9000, 9075), (9150, 9240)]


def test_alert_on_a_recording_rule_missing_from_history(prom):
    api = PrometheusAPI(prom.url)
    assert api.query_range("job:pool:use_ratio", Grid.aligned(WINDOW.start, WINDOW.end, STEP)) == {}
    rules = _rules(R.RecordingRule("job:pool:use_ratio", "sum by (job) (pool_in_use) / sum by (job) (pool_size)", {}, "rec", STEP),
                   _alert("PoolBusy", 'job:pool:use_ratio{job="t"} > 0.8', for_=120))
    (rep,) = _episodes(prom, rules).replays
    assert [(e.active_at - T, e.fired_at - T, e.resolved_at - T) for e in rep.episodes] == [(9600, 9720, 9900)]
    assert dict(rep.episodes[0].labels) == {"alertname": "PoolBusy", "job": "t", "service": "t", "severity": "P1"}


def test_notifications_follow_group_and_repeat_intervals(prom):
    config = routing.load({
        "route": {"receiver": "chat", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"},
        "receivers": [{"name": "chat", "webhook_configs": [{"url": "http://127.0.0.1:9/", "send_resolved": True}]}]})
    out = _episodes(prom, _rules(_alert("Stuck", "stuck > 0")), config)
    # Firing 0..7800s: first at group_wait, a repeat at the first tick more than 1h after it (65m30s, not 60m30s),
    # and the resolution at the first tick after 7800s (130m30s).
    assert [(n.time - T, n.kind) for n in out.notifications] == [(30, "firing"), (30 + 65 * 60, "firing"), (30 + 130 * 60, "resolved")]


def _levels(rs: R.RuleSet) -> list[list[R.RecordingRule]]:
    """Recording rules by dependency depth: level 0 reads only raw series."""
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            deps = [d for r in rs.recording[name] for d in rs.recording if d != name and d in r.expr]
            level[name] = 1 + max((depth(d) for d in deps), default=-1)
        return level[name]

    out: list[list[R.RecordingRule]] = []
    for name in rs.recording:
        d = depth(name)
        while len(out) <= d:
            out.append([])
        out[d] += list(rs.recording[name])
    return out


def test_inlined_recording_rules_equal_the_recorded_series(raw_blocks, prom, tmp_path):
    """Backfill the inventory's recording rules (promtool evaluates them through Prometheus, level by level), then
    evaluate every alert reading them from the recorded series: the episodes equal the inlined evaluation's.

    promtool, like Prometheus, evaluates a group at a phase derived from its file and name: every level is written
    as the same group of the same file so all share one phase, and both evaluations run on that phase's grid."""
    files = pipeline.build(INVENTORY).files
    rs = R.from_files(files, "rendered")
    data = _copy(raw_blocks, tmp_path / "data")
    start = WINDOW.start - 3600  # promtool evaluates from here; the alerts' warm-up starts later
    path = tmp_path / "recording.yml"
    for i, level in enumerate(_levels(rs)):
        doc = {"groups": [{"name": "recording", "interval": f"{STEP}s",
                           "rules": [{"record": r.record, "expr": r.expr, **({"labels": dict(r.labels)} if r.labels else {})}
                                     for r in level]}]}
        path.write_text(yaml.safe_dump(doc))
        with ScratchPrometheus(tmp_path / f"p{i}", data) as p:
            backfill_rules(p.url, [path], start, WINDOW.end, STEP, tmp_path / f"rec-{i}")
        for block in (tmp_path / f"rec-{i}").iterdir():
            shutil.move(str(block), data / block.name)
    recorded_only = R.RuleSet({}, rs.alerts, "recorded", rs.evaluation_interval)
    reading = [a for a in rs.alerts if any(name in a.expr for name in rs.recording)]
    assert len(reading) >= 10
    with ScratchPrometheus(tmp_path / "final", data) as p:
        api = PrometheusAPI(p.url)
        stamps = api.query_range("timestamp(service:http_requests:rate5m)", Grid.aligned(T, T + 60, STEP, 0.0))
        phase = round(next(iter(next(iter(stamps.values())).values())) % STEP, 3)
        assert 0 < phase < STEP  # a phase of its own: the reason the grids must agree
        recorded = engine.Evaluator(api, phase=phase).evaluate(recorded_only, reading, WINDOW)[0]
    inlined = engine.Evaluator(PrometheusAPI(prom.url), phase=phase).evaluate(rs, reading, WINDOW)[0]
    fired = 0
    for a, b in zip(inlined, recorded):
        assert a.episodes == b.episodes, a.rule.alert
        fired += sum(e.fired for e in a.episodes)
    assert fired >= 3  # the error burst fires several of them: the comparison is not between empty results
