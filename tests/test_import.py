"""`monstack import` on hand-written setups (tests/import/*): the imported inventory loads and validates,
every alert it imports fires in promtool on the same series as the original rule, secrets land in files.

Each setup has cases.yml: input series that fire one original alert (what its exporters export) and
the alert the import maps it to. The same series go to promtool twice: with the original rule files,
and with the rules the imported inventory renders, labelled as the imported scrape job labels them
(job renamed to the service, plus service/team/env/kind and the job's static labels). Both must fire
at `at` and be quiet at `quiet_at`, which also proves the `for` survived.
"""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

import generator.importer as importer
from conftest import ROOT, monstack
from generator import checks, errors, names, pipeline
from generator.importer import promql as P
from generator.importer import report as R
from generator.importer import rules as rules_mod
from generator.promql import sel

SETUPS = sorted(p.parent for p in (ROOT / "tests" / "import").glob("*/prometheus.yml"))
IDS = [p.name for p in SETUPS]
needs_promtool = pytest.mark.skipif(not checks.available("promtool"), reason="promtool not installed (make deps)")


def cases(setup: Path) -> dict:
    return yaml.safe_load((setup / "cases.yml").read_text())


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, tuple[importer.Result, Path, Path]]:
    """setup -> (result, the imported services.yaml, the folder its compose render landed in)."""
    out = {}
    for setup in SETUPS:
        folder = tmp_path_factory.mktemp(setup.name)
        inv = folder / "services.yaml"
        result = importer.build(setup / "prometheus.yml", setup / "alertmanager.yml")
        importer.check(result, inv)
        importer.write(result, inv, force=False)
        rendered = folder / "rendered"
        for path, data in pipeline.build(inv).files.items():
            (rendered / path).parent.mkdir(parents=True, exist_ok=True)
            (rendered / path).write_bytes(data)
        out[setup.name] = (result, inv, rendered)
    return out


# --- the report and the files -----------------------------------------------------------------------


@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_every_original_alert_is_imported_with_a_case_or_reported(setup, imported):
    """Nothing is silently dropped: an alert is mapped or kept (and has a firing case here), or the report says why not."""
    result = imported[setup.name][0]
    originals = {r["alert"] for f in sorted(setup.rglob("*.yml")) if f.name not in ("prometheus.yml", "alertmanager.yml", "cases.yml")
                 for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "alert" in r}
    said = {i.message.split()[1]: i.section for i in result.report.items if i.message.startswith("alert ")}
    assert set(said) == originals
    with_case = {c["alert"] for c in cases(setup)["cases"]}
    imported_ = {a for a, section in said.items() if section in (R.MAPPED, R.CUSTOM) and a != "Watchdog"}
    assert imported_ == with_case, "every imported alert needs a firing case in cases.yml"


def test_compose_stack_report_names_what_it_could_not_map(imported):
    text = imported["compose-stack"][0].report.text()
    for expected in (
        "alertmanager.yml:29: inhibit_rules[0]: inhibit rule not imported",
        "alertmanager.yml:33: templates: message templates not imported",
        "rules/app.yml:45: groups[1].rules[5]: alert BatchJobNotRecentlySucceeded not imported",
        "rules/containers.yml:34: groups[0].rules[4]: alert WebappContainerAbsent not imported",
        "recording rule webapp:http_requests:rate5m not imported",
        "job 'prometheus' not imported: monstack scrapes Prometheus itself",
    ):
        assert expected in text, expected
    assert text.index(R.UNMAPPED) < text.index(R.CUSTOM) < text.index(R.MAPPED)


def test_teams_setup_report_names_what_it_could_not_map(imported):
    text = imported["teams-pagerduty"][0].report.text()
    for expected in (
        "opsgenie receiver not imported",
        "route.routes[4]: route on alertname not imported",
        "inhibit_rules[1]: inhibit rule not imported",
        "job 'node' uses file_sd_configs, relabel_configs: copied as written",
        "service_key (Events API v1) imported as routing_key",
        "job 'search_api' becomes service 'search-api'",
    ):
        assert expected in text, expected


def test_teams_setup_maps_severities_teams_and_receivers(imported):
    inv = imported["teams-pagerduty"][0].inventory
    svc = {s["name"]: s for s in inv["services"]}
    # critical pages for every team here (each routes it to PagerDuty): P0; warning P2; info P3.
    assert svc["checkout"]["alerts"]["HttpErrorRatioCritical"] == {"severity": "P0", "for": "5m", "threshold": 0.05}
    assert svc["checkout"]["alerts"]["HttpLatencyP99Warning"] == {"severity": "P2", "for": "10m", "threshold": 2}
    assert svc["checkout"]["metrics"] == {"requests": "http_requests_total", "status_label": "code", "error_status": "5..",
                                          "duration": "http_request_duration_seconds"}
    assert svc["search-api"]["metrics"]["duration"] == "search_request_duration_seconds"
    assert svc["checkout"]["team"] == "payments" and svc["checkout"]["scrape"]["labels"] == {"tier": "backend"}
    assert svc["payments-gateway"]["scrape"]["basic_auth"] == {"username": "prometheus", "password_file": "secrets/payments-gateway_scrape_password"}
    node = next(r for r in svc["node"]["rules"] if r["name"] == "NodeClockSkew")
    assert (node["severity"], node["expr"], node["op"], node["threshold"]) == ("P3", "abs(node_timex_offset_seconds)", ">", 0.05)
    stale = next(r for r in svc["search-api"]["rules"] if r["name"] == "SearchIndexStale")
    assert stale["expr"] == 'time() - search_index_last_update_timestamp_seconds{job="search-api"}'  # the renamed job followed
    assert inv["teams"]["payments"]["receivers"]["P0"] == ["payments-pagerduty", "payments-slack"]
    assert inv["teams"]["platform"]["receivers"]["P3"] == ["platform-tickets"]
    assert inv["severities"]["P2"]["receivers"] == ["platform-email"]
    assert inv["watchdog"] == {"receiver": "deadmansswitch", "repeat_interval": "1m"}
    assert inv["receivers"]["search-slack"]["send_resolved"] is False  # Alertmanager's default for Slack, kept
    assert [j["job_name"] for j in inv["extra_scrape_configs"]] == ["node"]


def test_compose_stack_maps_catalogue_alerts_with_their_numbers(imported):
    inv = imported["compose-stack"][0].inventory
    svc = {s["name"]: s for s in inv["services"]}
    node = svc["nodeexporter"]
    assert node["kind"] == "host" and node["host"] == {"mountpoints": "/"}
    assert node["alerts"]["HostCpuHigh"] == {"severity": "P2", "for": "10m", "threshold": 0.85}
    assert node["alerts"]["HostMemoryHigh"] == {"severity": "P1", "for": "2m", "threshold": 0.9}
    assert node["alerts"]["HostDiskFillsWithin24h"] == {"severity": "P2", "for": "30m", "threshold": 24}
    assert {s: svc[s]["alerts"]["TargetDown"] for s in ("nodeexporter", "cadvisor", "webapp", "pushgateway")} == {
        s: {"severity": "P1", "for": "1m"} for s in ("nodeexporter", "cadvisor", "webapp", "pushgateway")}
    assert svc["blackbox-http"]["alerts"]["TlsCertificateExpiring"] == {"severity": "P2", "for": "1h", "threshold": 21}
    assert [h["url"] for h in svc["blackbox-http"]["health"]] == ["http://webapp:8000/healthz", "https://shop.example.com"]
    swap = next(r for r in node["rules"] if r["name"] == "HostSwapFillingUp")
    assert swap["expr"] == "(1 - (node_memory_SwapFree_bytes / node_memory_SwapTotal_bytes)) * 100 and (node_memory_SwapTotal_bytes > 0)"
    assert inv["severities"]["P1"]["receivers"] == ["slack-critical"] and inv["severities"]["P3"]["active_time_intervals"] == []
    # The original's 5% error ratio notifies at P1 (HttpErrorRatioHigh); the catalogue's P0 tier at the same 5% would page at the
    # same moment (and fail the rising-threshold lint): it is disabled, and the report says why.
    assert svc["webapp"]["alerts"]["HttpErrorRatioHigh"] == {"severity": "P1", "for": "5m", "threshold": 0.05}
    assert svc["webapp"]["alerts"]["HttpErrorRatioCritical"] == {"disabled": True}
    text = imported["compose-stack"][0].report.text()
    assert "webapp.HttpErrorRatioCritical disabled: its default (P0, threshold 0.05) would repeat or undercut the imported " \
           "HttpErrorRatioHigh (P1, threshold 0.05)" in text
    assert "set alerts.HttpErrorRatioHigh.min_rate: 0 to fire on any traffic as the original did" in text
    # Tiers the original's do not collide with keep their defaults.
    assert "HttpLatencyP95High" not in svc["webapp"]["alerts"]


@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_inline_secrets_go_to_files_never_to_services_yaml(setup, imported):
    result, inv, _ = imported[setup.name]
    text = inv.read_text()
    assert result.secrets.files
    for ref, value in result.secrets.files.items():
        path = inv.parent / ref
        assert path.read_text() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert value not in text
        assert f"{ref}" in text
    originals = (setup / "alertmanager.yml").read_text() + (setup / "prometheus.yml").read_text()
    for value in result.secrets.files.values():
        assert value in originals


def test_files_the_original_names_outside_secrets_are_pointed_into_it_and_reported(imported):
    """The original's CA file lies in /etc/prometheus/certs: the inventory names secrets/internal-ca.pem (every *_file
    must lie in the secrets folder) and the report says to copy it there; the import itself reads no such file."""
    result, inv, _ = imported["teams-pagerduty"]
    text = inv.read_text()
    assert "/etc/prometheus/certs" not in text and "ca_file: secrets/internal-ca.pem" in text
    assert "/etc/prometheus/certs/internal-ca.pem is outside secrets/" in result.report.text()
    assert "copy the file there" in result.report.text()
    assert "secrets/internal-ca.pem" not in result.secrets.files  # nothing written in its place


@pytest.mark.integration
def test_the_cli_writes_validates_and_never_overwrites_without_force(tmp_path):
    setup = ROOT / "tests" / "import" / "teams-pagerduty"
    out = tmp_path / "services.yaml"
    r = monstack("import", str(setup / "prometheus.yml"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "not imported (" in r.stdout and "opsgenie receiver not imported" in r.stdout
    assert f"wrote {out}" in r.stderr
    before = out.read_bytes()
    again = monstack("import", str(setup / "prometheus.yml"), "--out", str(out))
    assert again.returncode == 2 and "exists: pass --force" in again.stderr
    assert out.read_bytes() == before
    assert monstack("import", str(setup / "prometheus.yml"), "--out", str(out), "--force").returncode == 0
    v = monstack("validate", "--inventory", str(out), timeout=600)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "valid (" in v.stdout


# --- the proof: the same series fire both -----------------------------------------------------------


def _relabel(series: str, prom: dict) -> str:
    """The series as the imported Prometheus stores it: its target's job renamed and the job's static labels added."""
    node = promql_parser.parse(series)
    labels = {m.name: m.value for m in node.matchers.matchers}
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs") or []:
            if labels.get("instance") in sc.get("targets", []):
                static = {k: v for k, v in (sc.get("labels") or {}).items() if not k.startswith("__")}
                return sel(node.name, {**labels, "job": job["job_name"], **static})
    return series


def _promtool_fires(folder: Path, rule_files: list[str], spec: dict, name_key: str, relabel=None) -> subprocess.CompletedProcess:
    tests = []
    for case in spec["cases"]:
        alert = case[name_key]
        series = [{"series": relabel(s["series"]) if relabel else s["series"], "values": s["values"]} for s in case["series"]]
        count = f'count(ALERTS{{alertname="{alert}", alertstate="firing"}}) or vector(0)'
        tests.append({
            "name": f"{case['alert']} ({alert})",
            "interval": case.get("interval", spec["interval"]),
            "input_series": series,
            "promql_expr_test": [
                {"expr": count, "eval_time": case["at"], "exp_samples": [{"labels": "{}", "value": case.get("firing", 1)}]},
                {"expr": count, "eval_time": case["quiet_at"], "exp_samples": [{"labels": "{}", "value": 0}]},
            ],
        })
    test_file = folder / f"{name_key}.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": rule_files, "evaluation_interval": spec["interval"], "tests": tests}, sort_keys=False))
    return subprocess.run([checks.tool("promtool"), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=300)


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_the_original_rules_fire_on_the_cases(setup, tmp_path):
    """The cases are right: each original alert fires at `at`, not yet at `quiet_at`."""
    rule_files = sorted(str(p) for p in setup.rglob("*.yml") if p.name not in ("prometheus.yml", "alertmanager.yml", "cases.yml"))
    proc = _promtool_fires(tmp_path, rule_files, cases(setup), "alert")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_every_imported_alert_fires_on_the_same_series(setup, imported, tmp_path):
    _, _, rendered = imported[setup.name]
    prom = yaml.safe_load((rendered / names.PROMETHEUS_CONFIG).read_text())
    rule_files = sorted(str(p) for p in (rendered / names.RULES_DIR).glob("*.yml"))
    proc = _promtool_fires(tmp_path, rule_files, cases(setup), "imported", lambda s: _relabel(s, prom))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_the_imported_inventory_passes_validate(setup, imported, tmp_path):
    results = pipeline.validate(imported[setup.name][1], tmp_path)
    assert all(r.ok for r in results), "\n".join(str(r) for r in results if not r.ok)
    assert {r.name.split(" (")[0] for r in results} >= {"promtool check config", "promtool test rules", "amtool routing tests"}


# --- recognising catalogue shapes, however they are spelled -------------------------------------------


@pytest.mark.parametrize("expr, family, threshold", [
    ("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10", "HostMemoryHigh", 0.9),
    ("(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100 > 90", "HostMemoryHigh", 0.9),
    ("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes > 0.85", "HostMemoryHigh", 0.85),
    ("(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes > 0.9", "HostMemoryHigh", 0.9),
    ("10 > node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100", "HostMemoryHigh", 0.9),
    ('100 - (avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100) > 80', "HostCpuHigh", 0.8),
    ('avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) < 0.1', "HostCpuHigh", 0.9),
    ("up == 0", "TargetDown", None),
    ('up{job="api"} < 1', "TargetDown", None),
    ("probe_ssl_earliest_cert_expiry - time() < 86400 * 30", "TlsCertificate", 30),
    ("(probe_ssl_earliest_cert_expiry - time()) / 86400 < 7", "TlsCertificate", 7),
    ('sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01', "HttpErrorRatio", 0.01),
    ('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 1.5', "HttpLatencyP99", 1.5),
])
def test_spellings_of_one_shape_map_to_one_catalogue_alert(expr, family, threshold):
    shape = rules_mod.recognise(*P.comparison(P.parse(expr)))
    assert shape is not None and (shape.family, shape.threshold) == (family, threshold)


@pytest.mark.parametrize("expr", [
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 > 10",  # the opposite condition
    'node_memory_MemAvailable_bytes{instance="a"} / node_memory_MemTotal_bytes{instance="b"} < 0.1',  # different series
    'avg by (instance) (irate(node_cpu_seconds_total{mode="idle"}[5m])) < 0.1',  # irate is not the catalogue's rate
    'avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])) < 0.1',  # another window
    'avg by (instance) (rate(node_cpu_seconds_total{mode="user"}[5m])) < 0.1',  # another mode
    "up{job=\"api\"} == 1",
    'sum by (instance) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total[5m])) > 0.01',  # per instance
    'sum(rate(http_requests_total{status=~"5..", route="/x"}[5m])) / sum(rate(http_requests_total[5m])) > 0.01',  # one route
    "up offset 5m == 0",
])
def test_similar_but_different_expressions_stay_custom(expr):
    cmp = P.comparison(P.parse(expr))
    assert cmp is None or rules_mod.recognise(*cmp) is None


@pytest.mark.parametrize("text, split", [
    ("rate(x[5m]) > 5", ("rate(x[5m])", ">", 5.0)),
    ("5 < rate(x[5m])", ("rate(x[5m])", ">", 5.0)),
    ('(sum(x{a=">"}) / 2) >= 0.5', ('sum(x{a=">"}) / 2', ">=", 0.5)),
    ("x > bool 5", None),
    ("a > 1 and b > 2", None),
    ("a > b", None),
])
def test_threshold_split_keeps_the_users_text(text, split):
    assert P.split_threshold(text) == split


def test_renamed_jobs_follow_into_kept_expressions():
    assert P.rename_job('up{job="search_api"} == 0 and x{job!="search_api"}', "search_api", "search-api") == \
        'up{job="search-api"} == 0 and x{job!="search-api"}'
    assert P.rename_job('up{job=~"search_api|other"}', "search_api", "search-api") == 'up{job=~"search-api|other"}'
    assert P.rename_job('up{job="search_api_v2"}', "search_api", "search-api") == 'up{job="search_api_v2"}'


# --- the round trip: monstack's own output imported ---------------------------------------------------

ROUND_TRIP = [ROOT] + sorted(p.parent for p in (ROOT / "examples").glob("*/services.yaml"))


def _round_trip(root: Path, out: Path) -> tuple[importer.Result, dict[str, bytes]]:
    """Import the output rendered under root into out/services.yaml; what that renders, compared with root."""
    result = importer.build(root / names.PROMETHEUS_CONFIG, root / names.ALERTMANAGER_CONFIG)
    assert not result.report.section(R.UNMAPPED), result.report.text()
    inventory = out / "services.yaml"
    importer.check(result, inventory)
    importer.write(result, inventory, force=False)
    files = pipeline.build(inventory).files
    compared = sorted(p for p in files if p.startswith("prometheus/") or p == names.ALERTMANAGER_CONFIG)
    committed = sorted(str(p.relative_to(root)) for p in (root / "prometheus").rglob("*") if p.is_file()) + [names.ALERTMANAGER_CONFIG]
    assert compared == sorted(committed)
    assert any(p.startswith(names.RULES_DIR) for p in compared)
    differing = [p for p in compared if files[p] != (root / p).read_bytes()]
    assert differing == []
    return result, files


@pytest.mark.parametrize("root", ROUND_TRIP, ids=["services.yaml"] + [p.name for p in ROUND_TRIP[1:]])
def test_importing_monstacks_own_output_gives_back_an_inventory_that_renders_the_same_rules(root, tmp_path):
    """"The same": every file under prometheus/ (prometheus.yml, each rule file, each generated rule test, rules.d/'s
    files and tests) and alertmanager/alertmanager.yml rendered from the imported inventory is byte-identical to the
    committed one. (Dashboards, runbooks and compose.yaml may differ: descriptions and KPIs are not in the rules.)"""
    _round_trip(root, tmp_path)


HARD = ROOT / "tests" / "import" / "round-trip" / "services.yaml"


def _render(inventory: Path, out: Path) -> None:
    for path, data in pipeline.build(inventory).files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)


def test_the_round_trip_recovers_tiers_windows_minimum_traffic_units_and_scoped_windows(tmp_path):
    """Each setting in a form that differs from the catalogue's default comes back, and the rules render byte for byte."""
    rendered = tmp_path / "rendered"
    _render(HARD, rendered)
    (tmp_path / "recovered").mkdir()
    result, _ = _round_trip(rendered, tmp_path / "recovered")
    inv = result.inventory
    svc = {s["name"]: s for s in inv["services"]}
    orders = svc["orders"]
    assert orders["alerts"]["HttpLatencyP95High"] == {"tiers": [
        {"threshold": 1.5, "severity": "P2", "name": "OrdersSlow"},  # a tier named on its own
        {"threshold": 3, "severity": "P1", "for": "2m", "window": "10m"}]}  # named after the alert and its level
    assert orders["alerts"]["HttpLatencyP95Warning"] == {"disabled": True}
    assert orders["alerts"]["HttpErrorRatioCritical"] == {"window": "10m", "min_rate": 5}
    assert orders["alerts"]["HttpErrorRatioHigh"] == {"min_rate": 0}  # no guard at all: another form of the expression
    assert orders["slo"] == {"availability": 99.5, "latency": {"threshold": "300ms", "percentile": 99}}
    # Units: inferred from a _ms name (not written), declared where the name says nothing.
    assert "duration_unit" not in orders["metrics"] and orders["metrics"]["duration"] == "http_request_duration_ms"
    assert orders["metrics"]["db_query_duration_unit"] == "milliseconds"
    assert orders["metrics"]["db_pool_utilization"] == "db_pool_utilization" and "db_pool_size" not in orders["metrics"]
    assert svc["events"]["alerts"] == {"WorkerJobFailureRatioHigh": {"min_rate": 0.5}}
    assert svc["events"]["rules"] == [{"name": "EventErrors", "severity": "P2", "for": "0s", "type": "increase",
                                       "metric": 'events_errors_total{kind="fatal"}', "window": "10m", "threshold": 3, "by": ["kind"]}]
    assert svc["cache"]["memory_limit"] == "1GiB" and svc["cache"]["alerts"] == {"RedisEvictions": {"threshold": 50, "window": "1m"}}
    assert {r["bot_token_file"] for r in inv["receivers"].values() if r["type"] == "slack"} == {"secrets/slack_bot_token"}
    assert inv["severity_map"] == {"critical": "P0", "info": "P3", "page": "P0", "warning": "P1"}
    assert inv["stack"]["retention"] == {"time": "30d"}  # from compose.yaml's Prometheus flags
    # Maintenance windows come back as scoped entries (a severity's own window as an entry of its level): the same tree.
    assert inv["mute_time_intervals"] == [
        "patching",
        {"interval": "freeze", "levels": ["P0", "P1"], "teams": ["data"]},
        {"interval": "nights", "levels": ["P2"]},
        {"interval": "nights", "levels": ["P1"], "services": ["orders"]},
        {"interval": "nights", "levels": ["P3"], "teams": ["data"], "services": ["events"]}]
    # rules.d/ is written beside the inventory, its test pointing at its rule file by name.
    assert sorted(result.files) == ["rules.d/jvm.test.yml", "rules.d/jvm.yml"]
    assert yaml.safe_load((tmp_path / "recovered" / "rules.d" / "jvm.test.yml").read_text())["rule_files"] == ["jvm.yml"]
    assert yaml.safe_load((tmp_path / "recovered" / "rules.d" / "jvm.yml").read_text()) == yaml.safe_load((HARD.parent / "rules.d" / "jvm.yml").read_text())


def test_without_compose_yaml_the_retention_is_the_longest_slo_window_and_the_report_says_so(tmp_path):
    rendered = tmp_path / "rendered"
    _render(HARD, rendered)
    (rendered / names.COMPOSE_FILE).unlink()
    result = importer.build(rendered / names.PROMETHEUS_CONFIG, rendered / names.ALERTMANAGER_CONFIG)
    assert result.inventory["stack"]["retention"] == {"time": "30d"}
    assert "stack.retention.time is not in prometheus.yml (no compose.yaml beside it): set to 30d" in result.report.text()
    importer.check(result, tmp_path / "services.yaml")  # the SLO lint accepts it


def test_importing_over_rules_d_needs_force(tmp_path):
    rendered = tmp_path / "rendered"
    _render(HARD, rendered)
    result = importer.build(rendered / names.PROMETHEUS_CONFIG, rendered / names.ALERTMANAGER_CONFIG)
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "rules.d" / "jvm.yml").write_text("mine\n")
    with pytest.raises(errors.UsageError, match="rules.d/jvm.yml exists: pass --force"):
        importer.write(result, tmp_path / "services.yaml", force=False)
    assert (tmp_path / "rules.d" / "jvm.yml").read_text() == "mine\n" and not (tmp_path / "services.yaml").exists()
    importer.write(result, tmp_path / "services.yaml", force=True)
    assert (tmp_path / "rules.d" / "jvm.yml").read_text() == result.files["rules.d/jvm.yml"]


@pytest.mark.integration
def test_round_trip_through_the_cli(tmp_path):
    out = tmp_path / "services.yaml"
    r = monstack("import", "prometheus/prometheus.yml", "--alertmanager", "alertmanager/alertmanager.yml", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "not imported" not in r.stdout
    rendered = tmp_path / "out"
    assert monstack("render", "--inventory", str(out), "--out", str(rendered), "--no-check").returncode == 0
    for rule_file in sorted((ROOT / names.RULES_DIR).glob("*.yml")):
        assert (rendered / names.RULES_DIR / rule_file.name).read_bytes() == rule_file.read_bytes(), rule_file.name
