"""Generated dashboards: deterministic, complete, consistent with the rules and provisioning, every query parses.

The JSON-schema check is in test_dashboards_schema.py, the live check against Prometheus in
test_dashboards_live.py.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import promql_parser
import pytest
import yaml

from conftest import ROOT, monstack
from dashboard_support import ident, inventories, render
from generator import names
from generator.checks import tool
from generator.catalogue import recorded as R
from generator.catalogue import slo as slo_alerts
from generator import recording
from generator.render.dashboards import builder, lint, panels, service, sli, slo

INVENTORIES = inventories()
SERVICES_YAML = ROOT / "services.yaml"
EDGE = ROOT / "tests" / "inventories" / "dashboards" / "edge_cases.yaml"
RECORDED_NAME = re.compile(r"\b([a-z_]+:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+)\b")


def all_queries(inventory: Path) -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, concrete PromQL) for every panel query, variables substituted."""
    out = []
    for d in render(inventory).dashboards.values():
        values = lint.variable_values(d)
        out += [(q.dashboard, q.panel, lint.concrete(q.expr, values)) for q in lint.queries(d)]
    return out


@pytest.mark.parametrize("inventory", INVENTORIES, ids=ident)
def test_static_checks_pass(inventory):
    """Unique ids, panels inside the grid and apart, datasources provisioned, variables defined, units and legends set, links resolve."""
    r = render(inventory)
    found = [p for d in r.dashboards.values() for p in lint.problems(d, r.provisioned_uids, r.uids)]
    assert found == []


@pytest.mark.parametrize("inventory", INVENTORIES, ids=ident)
def test_every_query_parses(inventory):
    """promql_parser (the model's parser) accepts every panel query once variables are substituted."""
    failures = []
    for uid, panel, expr in all_queries(inventory):
        try:
            promql_parser.parse(expr)
        except (ValueError, TypeError) as exc:
            failures.append(f"{uid} / {panel}: {exc}: {expr}")
    assert failures == []


@pytest.mark.integration
def test_every_query_parses_with_promtool(tmp_path):
    """Prometheus's own parser (promtool check rules) accepts every panel query of every inventory."""
    exprs = [expr for inv in INVENTORIES for _, _, expr in all_queries(inv)]
    rules = [{"record": f"dashboard:query{i}:check", "expr": expr} for i, expr in enumerate(exprs)]
    good = tmp_path / "queries.yml"
    good.write_text(yaml.safe_dump({"groups": [{"name": f"g{i}", "rules": [r]} for i, r in enumerate(rules)]}))
    proc = subprocess.run([tool("promtool"), "check", "rules", str(good)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
    # The same check rejects a query that does not parse, so the pass above means something.
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "a:b:c", "expr": "sum(rate(x[5m])"}]}]}))
    assert subprocess.run([tool("promtool"), "check", "rules", str(bad)], capture_output=True, timeout=60).returncode != 0


_DIGESTS = """
import hashlib, sys
from pathlib import Path
from generator import pipeline, writer
from generator.render import dashboards, grafana
from generator.topology import COMPOSE
for inv in sys.argv[1:]:
    model = pipeline.load_model(Path(inv))
    out = {**dashboards.render(model, COMPOSE), **grafana.render(model, COMPOSE)}
    for path, data in sorted(out.items()):
        print(inv, path, hashlib.sha256(writer.serialize(path, data, model.source)).hexdigest())
"""


@pytest.mark.integration
def test_rendering_is_byte_identical_across_runs():
    """Fresh interpreters with different hash seeds write the same Grafana bytes, for every inventory."""
    runs = []
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", _DIGESTS, *map(str, INVENTORIES)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout)
    assert runs[0] == runs[1]
    assert runs[0].count(names.DASHBOARDS_DIR) >= len(INVENTORIES) * 3


def test_services_yaml_gets_every_dashboard_of_the_issue():
    r = render(SERVICES_YAML)
    stack_folder = names.GRAFANA_STACK_FOLDER
    expected = {names.dashboard_file(stack_folder, n) for n in ("overview", "slo", "infrastructure", "business", "stack")}
    expected |= {names.dashboard_file(s.team, s.name) for s in r.model.services}
    assert set(r.dashboards) == expected
    # uids follow from names alone: the one alert annotations link to is the service dashboard's.
    assert r.dashboards[names.dashboard_file("payments", "checkout-api")]["uid"] == "ms-service-checkout-api"
    for s in r.model.services:
        rules = r.outputs.get(names.rules_file(s.name), {"groups": []})
        for rule in (rule for g in rules["groups"] for rule in g["rules"] if "alert" in rule):
            url = rule["annotations"]["dashboard_url"]
            if not s.dashboard_url:
                assert url.endswith(f"/d/{service.uid(s)}"), (s.name, url)
                assert service.uid(s) in r.uids


def test_dashboards_without_content_are_not_generated():
    """An inventory with no SLO, host or custom rule gets no empty SLO, infrastructure or business dashboard.

    Under docker compose the infrastructure dashboard shows the containers (cAdvisor) even without hosts;
    natively nothing runs in a container and it is not generated."""
    from generator import topology
    from generator.render import dashboards as render_dashboards

    r = render(ROOT / "tests" / "inventories" / "good" / "minimal.yaml")
    assert sorted(d["uid"] for d in r.dashboards.values()) == ["ms-infrastructure", "ms-overview", "ms-service-api", "ms-stack"]
    infra = r.by_uid("ms-infrastructure")
    assert [p["title"] for p in infra["panels"] if p["type"] == "row"] == ["Containers"]
    native = render_dashboards.render(r.model, topology.native("."))
    assert sorted(d["uid"] for d in native.values()) == ["ms-overview", "ms-service-api", "ms-stack"]


def test_long_names_get_stable_short_uids():
    r = render(EDGE)
    long_name = "recommendation-ranking-service-for-storefront"
    uid = service.uid(r.model.service(long_name))
    assert len(uid) <= 40 and uid.startswith("ms-service-recommendation")
    assert uid == names.dashboard_uid("service", long_name) == render(EDGE).by_uid(uid)["uid"]
    assert len({d["uid"] for d in r.dashboards.values()}) == len(r.dashboards)


@pytest.mark.parametrize("inventory", INVENTORIES, ids=ident)
def test_panels_read_only_series_the_rules_record(inventory):
    """A level:metric:operations name in a panel is recorded by a generated rule, so no panel waits for a series that never comes."""
    r = render(inventory)
    recorded = {rule["record"] for path, data in r.outputs.items() if path.startswith(names.RULES_DIR + "/")
                for g in data["groups"] for rule in g["rules"] if "record" in rule}
    used = {m for _, _, expr in all_queries(inventory) for m in RECORDED_NAME.findall(re.sub(r'"[^"]*"', '""', expr))}
    assert used - recorded == set()


def test_http_panels_prefer_recorded_series():
    """Rate, error ratio and latency percentiles of an HTTP service come from its recording rules."""
    r = render(SERVICES_YAML)
    d = r.by_uid("ms-service-checkout-api")
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in lint.panels(d) if p.get("targets")}
    assert exprs["Error ratio"] == [f'{recording.rec("http_errors", "ratio_rate5m")}{{service="checkout-api", env=~"$env"}}']
    # p95 and p99 are recorded (alerts read them); the median comes from the recorded bucket rates.
    p50, p95, p99 = exprs["Latency percentiles"]
    assert p50 == 'histogram_quantile(0.5, service:http_request_duration_seconds_bucket:rate5m{service="checkout-api", env=~"$env"})'
    assert p95.startswith("service:http_request_duration_seconds:p95_5m") and p99.startswith("service:http_request_duration_seconds:p99_5m")
    assert exprs["Request rate"][0].startswith(recording.rec("http_requests", "rate5m"))


def test_thresholds_follow_the_services_alerts_and_slo():
    """checkout-api overrides HttpLatencyP95High to 1s and has a 500ms latency SLO: both are drawn, with the p99 alerts."""
    r = render(SERVICES_YAML)
    s = r.model.service("checkout-api")
    d = r.by_uid(service.uid(s))
    by_title = {p["title"]: p for p in lint.panels(d)}
    latency = by_title["Latency percentiles"]["fieldConfig"]["defaults"]
    alerts = [s.alert(n) for n in panels.P95_ALERTS + panels.P99_ALERTS]
    expected = sorted({s.slo.latency_threshold.seconds} | {a.threshold for a in alerts if a})
    assert [step["value"] for step in latency["thresholds"]["steps"]] == [None, *expected]
    assert s.alert("HttpLatencyP95High").threshold == 1.0 and 1.0 in expected
    assert latency["custom"]["thresholdsStyle"]["mode"] == "dashed"
    errors = by_title["Error ratio"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert errors == [{"color": "green", "value": None},
                      {"color": builder.SEVERITY_COLORS[s.alert("HttpErrorRatioHigh").severity], "value": s.alert("HttpErrorRatioHigh").threshold},
                      {"color": builder.SEVERITY_COLORS[s.alert("HttpErrorRatioCritical").severity],
                       "value": s.alert("HttpErrorRatioCritical").threshold}]
    edge = render(EDGE)
    ranker = edge.model.service("recommendation-ranking-service-for-storefront")
    steps = {p["title"]: p for p in lint.panels(edge.by_uid(service.uid(ranker)))}["Error ratio"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[1]["value"] == 0.02  # the inventory's override, not the catalogue's 0.01


@pytest.mark.parametrize("inventory", [SERVICES_YAML, EDGE], ids=ident)
def test_a_panel_per_custom_rule_showing_what_its_alert_compares(inventory):
    r = render(inventory)
    business = r.by_uid("ms-business")
    titled = {p["title"]: p for p in lint.panels(business)}
    rules = {rule["alert"]: rule["expr"] for path, data in r.outputs.items() if path.startswith(names.RULES_DIR + "/")
             for g in data["groups"] for rule in g["rules"] if "alert" in rule}
    for s in r.model.services:
        for rule in s.rules:
            p = titled.pop(rule.name)
            assert p["fieldConfig"]["defaults"]["unit"]
            value = p["targets"][0]["expr"]
            if rule.type in ("ratio", "histogram_mean", "threshold"):
                assert rules[rule.name] == f"{value} {rule.op} {panels.fmt(rule.threshold)}"
            if rule.type == "stalled":
                assert f"{value} == 0" in rules[rule.name]
            if rule.type in ("ratio", "histogram_mean", "threshold", "stalled"):
                assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
        for k in s.kpis:  # and a panel per KPI, queried as written, without an alert
            p = titled.pop(k.title)
            assert p["targets"][0]["expr"] == k.expr and p["fieldConfig"]["defaults"]["unit"] == k.unit
            assert p["type"] == ("stat" if k.panel == "stat" else "timeseries")
    assert titled == {}  # and no other panel


def test_a_rules_unit_reaches_its_panel():
    r = render(EDGE)
    units = {p["title"]: p["fieldConfig"]["defaults"]["unit"] for p in lint.panels(r.by_uid("ms-business"))}
    assert units["ModelLatencyHigh"] == "s"  # set in the inventory
    assert units["ModelErrorsHigh"] == "percentunit"  # a ratio rule's default
    assert units["NewModelError"] == "cps"  # a counter by label: counts per second


def test_slo_burn_rate_lines_are_the_burn_alerts_thresholds():
    thirty = render(SERVICES_YAML)
    checkout = {(i.service.name, i.kind): i for i in sli.slis(thirty.model)}[("checkout-api", "availability")]
    assert [m.value for m in checkout.burn_marks()] == [14.4, 6, 3, 1]  # the SRE workbook's, for 30 days
    assert [m.severity for m in checkout.burn_marks()] == [checkout.service.alert(m.alert).severity for m in checkout.burn_marks()]
    edge = render(EDGE)
    ranker = {(i.service.name, i.kind): i for i in sli.slis(edge.model)}[("recommendation-ranking-service-for-storefront", "latency")]
    assert [m.value for m in ranker.burn_marks()] == [slo_alerts.factor(ranker.window, w) for w in slo_alerts.WINDOWS]  # 28 days
    assert [m.value for m in ranker.burn_marks()][0] == pytest.approx(13.44)
    assert ranker.budget == pytest.approx(0.01)
    d = edge.by_uid(slo.uid())
    burn = next(p for p in lint.panels(d) if p["title"] == "Burn rate by window" and "ranking" in p["targets"][0]["expr"]
                and "slow" in p["targets"][0]["expr"])
    assert [t["legendFormat"] for t in burn["targets"]] == list(R.SLI_WINDOWS)
    assert all(t["expr"].startswith("service:http_requests_slow:ratio_rate") for t in burn["targets"])  # recorded SLIs


def test_slo_dashboard_covers_every_objective():
    r = render(EDGE)
    d = r.by_uid(slo.uid())
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Error budgets",
                    "recommendation-ranking-service-for-storefront: 99.5% of requests succeed over 28d",
                    "recommendation-ranking-service-for-storefront: 99% of requests faster than 3s over 28d",
                    "profile: 99.9% of requests succeed over 30d"]
    budget = lint.panels(d)[0]
    assert [t["legendFormat"] for t in budget["targets"]] == [
        "recommendation-ranking-service-for-storefront availability", "recommendation-ranking-service-for-storefront latency",
        "profile availability"]
    # p99 is not a recorded percentile's objective here (SLO p99 -> recorded p99): the overview divides it by 3s.
    overview = {p["title"]: p for p in lint.panels(r.by_uid("ms-overview"))}
    assert overview["Latency against SLO"]["targets"][0]["expr"].startswith("service:http_request_duration_seconds:p99_5m{")
    assert overview["Latency against SLO"]["targets"][0]["expr"].endswith(" / 3")


def test_variables_are_defined_used_and_all_matches_every_value():
    d = render(SERVICES_YAML).by_uid("ms-overview")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    # services.yaml's 30-day SLO windows outlast Prometheus' 15 days: the budget panels read the long-term store's picker.
    assert list(variables) == ["datasource", "longterm", "env", "team", "service"]
    used = set().union(*(builder.variables_in(q.expr) for q in lint.queries(d)))
    assert {"env", "team", "service"} <= used
    labels = [v for v in variables.values() if v["type"] == "query"]
    # .*, not .+: the same series (tests/test_dashboards_live.py compares both), without merging every value's postings.
    assert all(v["allValue"] == ".*" and v["datasource"]["uid"] == "${datasource}" for v in labels)
    per_service = render(SERVICES_YAML).by_uid("ms-service-order-worker")
    assert [v["name"] for v in per_service["templating"]["list"]] == ["datasource", "env", "instance"]


def test_lint_reports_what_it_checks():
    """The static checks find each kind of mistake (so an empty report above means something)."""
    r = render(SERVICES_YAML)
    d = yaml.safe_load(yaml.safe_dump(r.by_uid("ms-overview")))  # a deep copy
    first, second = [p for p in d["panels"] if p["type"] != "row"][:2]
    second["id"] = first["id"]
    second["gridPos"] = dict(first["gridPos"])
    first["gridPos"]["w"] = 30
    first["datasource"] = {"type": "prometheus", "uid": "elsewhere"}
    first["targets"][0]["expr"] += ' + on() vector($undefined)'
    first["fieldConfig"]["defaults"]["unit"] = ""
    first["targets"][0]["legendFormat"] = ""
    d["links"].append(builder.dashboard_link("gone", "ms-nope"))
    found = "\n".join(lint.problems(d, r.provisioned_uids, r.uids))
    for message in ("duplicate panel ids", "outside the 24-column grid", "overlap", "datasource uid 'elsewhere' is not provisioned",
                    "uses $undefined", "has no unit", "has no legend", "points to dashboard 'ms-nope'"):
        assert message in found
    # The data source variable must exist and default to a provisioned data source.
    second["datasource"] = {"type": "prometheus", "uid": "${nosuch}"}
    d["templating"]["list"][0]["current"]["value"] = "gone-uid"
    found = "\n".join(lint.problems(d, r.provisioned_uids, r.uids))
    assert "'${nosuch}' names no data source variable" in found
    assert "data source variable 'datasource' defaults to 'gone-uid', which is not provisioned" in found


def test_concrete_substitutes_every_variable_form():
    values = {"service": ".+", "__rate_interval": "4s"}
    assert lint.concrete('rate(x{service=~"$service", a=~"${service}", b=~"${service:regex}", c=~"[[service]]"}[$__rate_interval])', values) == \
        'rate(x{service=~".+", a=~".+", b=~".+", c=~".+"}[4s])'
    with pytest.raises(KeyError):
        lint.concrete("up{a=~\"$nope\"}", values)


def test_explain_lists_each_dashboards_panels_and_queries():
    proc = monstack("explain", "--dashboards", "-i", str(SERVICES_YAML))
    assert proc.returncode == 0, proc.stderr
    r = render(SERVICES_YAML)
    for d in r.dashboards.values():
        assert d["title"] in proc.stdout and f"uid {d['uid']}" in proc.stdout
        for p in lint.panels(d):
            assert p["title"] in proc.stdout
            for t in p.get("targets", []):
                assert t["expr"] in proc.stdout
    one = monstack("explain", "checkout-api", "--dashboards", "-i", str(SERVICES_YAML))
    assert one.returncode == 0, one.stderr
    assert "uid ms-service-checkout-api" in one.stdout and "uid ms-overview" not in one.stdout
