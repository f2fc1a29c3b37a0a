"""Links match the mode and version that runs: Debian's Prometheus 2.x serves its UI under /classic and its
Alertmanager has no web UI; compose's Prometheus 3 serves /alerts and /targets and its Alertmanager has a UI."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from generator import checks, links, names, pipeline, silences, topology, versions
from generator.errors import UsageError
from generator.runner import commands

INVENTORY = ROOT / "services.yaml"
DEBIAN = links.Ui("http://127.0.0.1:19090", "http://127.0.0.1:19093", None, prometheus_major=2, alertmanager_ui=False, mode="native")
WITH_GRAFANA = links.Ui("http://127.0.0.1:19090", "http://127.0.0.1:19093", "http://127.0.0.1:13000", prometheus_major=2,
                        alertmanager_ui=False, mode="native")


def test_prometheus_pages_follow_the_major_version():
    assert DEBIAN.alerts == "http://127.0.0.1:19090/classic/alerts"
    assert DEBIAN.targets == "http://127.0.0.1:19090/classic/targets"
    p3 = links.Ui("http://localhost:9090", "http://localhost:9093", "http://localhost:3000", prometheus_major=3)
    assert (p3.alerts, p3.targets) == ("http://localhost:9090/alerts", "http://localhost:9090/targets")
    # /graph redirects to the query page in both major versions.
    assert DEBIAN.graph("up") == "http://127.0.0.1:19090/graph?g0.expr=up&g0.tab=0"


def test_compose_links_follow_the_pinned_images():
    model = pipeline.load_model(INVENTORY)
    ui = model.stack.ui
    assert ui.mode == "compose" and ui.alertmanager_ui
    assert ui.prometheus_major == versions.of_image(versions.deployed("prometheus")[0])[0] == 3
    assert ui.alerts == "http://localhost:9090/alerts"


def test_version_strings_parse():
    assert versions.of_output("promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)") == (2, 42, 0)
    assert versions.of_output("amtool, version 0.25.0 (branch: debian/sid)") == (0, 25, 0)
    assert versions.of_image("prom/prometheus:v3.5.0") == (3, 5, 0)
    assert versions.of_image("registry.local:5000/prom/prometheus") is None
    assert versions.of_image("prom/prometheus:latest") is None


def _native_files(ui: links.Ui) -> dict[str, bytes]:
    topo = topology.native(str(ROOT), ui=ui)
    return pipeline.build(INVENTORY, topo).files


def _annotations(files: dict[str, bytes]) -> list[dict[str, str]]:
    out = []
    for path, data in files.items():
        if path.startswith(names.RULES_DIR + "/"):
            for g in yaml.safe_load(data)["groups"]:
                out += [r["annotations"] for r in g["rules"] if "alert" in r]
    return out


def test_natively_without_grafana_dashboard_links_go_to_prometheus_alert_page():
    files = _native_files(DEBIAN)
    urls = {a["dashboard_url"] for a in _annotations(files)}
    # The services' own dashboard links (links.dashboard) stay; every generated one is the alert page.
    assert DEBIAN.alerts in urls
    assert not [u for u in urls if u.startswith("http://localhost:3000")]
    tmpl = files[f"{names.ALERTMANAGER_TEMPLATES_DIR}/monstack-links.tmpl"].decode()
    assert DEBIAN.alerts in tmpl and ".ExternalURL" not in tmpl and "Prometheus alerts" in tmpl


def test_natively_with_grafana_dashboard_links_go_to_the_native_grafana():
    urls = {a["dashboard_url"] for a in _annotations(_native_files(WITH_GRAFANA))}
    assert "http://127.0.0.1:13000/d/ms-service-checkout-api" in urls
    assert not [u for u in urls if "localhost" in u]


def test_under_compose_notifications_link_alertmanager_s_ui():
    files = pipeline.build(INVENTORY).files
    tmpl = files[f"{names.ALERTMANAGER_TEMPLATES_DIR}/monstack-links.tmpl"].decode()
    assert "{{ .ExternalURL }}/#/alerts" in tmpl
    assert {a["dashboard_url"] for a in _annotations(files)} >= {"http://localhost:3000/d/ms-service-checkout-api"}


def test_up_names_the_pages_the_version_serves_and_what_has_no_ui():
    text = commands.up_text(DEBIAN, {"sink": None})
    assert "http://127.0.0.1:19090/classic/alerts" in text and "http://127.0.0.1:19090/classic/targets" in text
    assert "19090/alerts" not in text and "19090/targets" not in text
    assert "API only" in text and "monstack silence" in text
    assert "Grafana       not running" in text
    compose = commands.up_text(pipeline.load_model(INVENTORY).stack.ui, {"sink": None})
    assert "http://localhost:9090/alerts" in compose and "API only" not in compose


def test_runbooks_serve_both_modes_and_silence_with_monstack():
    page = (ROOT / names.runbook_file("TargetDown")).read_text()
    assert "[docker compose](http://localhost:9090/graph?g0.expr=" in page
    assert "[native](http://127.0.0.1:19090/graph?g0.expr=" in page
    assert "amtool silence" not in page
    assert "monstack silence add alertname=TargetDown service=checkout-api --duration=2h" in page
    # Rendered for either mode, a runbook is the same page.
    assert _native_files(DEBIAN)[names.runbook_file("TargetDown")] == pipeline.build(INVENTORY).files[names.runbook_file("TargetDown")]


@pytest.mark.parametrize("text, expected", [
    ("alertname=TargetDown", ("alertname", "=", "TargetDown")),
    ('service!="a b"', ("service", "!=", "a b")),
    ('instance=~"10\\..*"', ("instance", "=~", "10\\..*")),
    ("team!~x|y", ("team", "!~", "x|y")),
])
def test_silence_matchers_parse(text, expected):
    m = silences.parse_matcher(text)
    assert (m.name, m.op, m.value) == expected


@pytest.mark.parametrize("bad", ["=x", "9a=x", "a", 'a=~"("'])
def test_bad_silence_matchers_are_usage_errors(bad):
    with pytest.raises(UsageError):
        silences.parse_matcher(bad)


def test_a_silence_matching_everything_is_refused_before_any_request():
    with pytest.raises(UsageError, match="every alert"):
        silences.add("http://127.0.0.1:1", [silences.parse_matcher("team!=x")], "1h", "c", "me")
    with pytest.raises(UsageError, match="duration"):
        silences.add("http://127.0.0.1:1", [silences.parse_matcher("a=b")], "2 hours", "c", "me")


def test_silence_without_a_running_stack_says_how_to_start_one(cli, tmp_path: Path):
    r = cli("silence", "list", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "make up" in r.stderr


@pytest.mark.integration
@pytest.mark.parametrize("ui, href, text", [
    (DEBIAN, DEBIAN.alerts, "Prometheus alerts"),
    (None, "http://am.example.com:9093/#/alerts?receiver=slack-alerts", "Alertmanager"),
])
def test_notification_fallback_links_per_mode(tmp_path: Path, ui, href, text):
    files = _native_files(ui) if ui else pipeline.build(INVENTORY).files
    tdir = tmp_path / "templates"
    tdir.mkdir()
    for path, body in files.items():
        if path.startswith(names.ALERTMANAGER_TEMPLATES_DIR + "/"):
            (tdir / path.rsplit("/", 1)[-1]).write_bytes(body)
    data = {"receiver": "slack-alerts", "status": "firing", "externalURL": "http://am.example.com:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "X", "severity": "P1"}, "annotations": {"runbook_url": "docs/runbooks/x.md"},
                        "startsAt": "2026-01-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f"}],
            "groupLabels": {}, "commonLabels": {"alertname": "X", "severity": "P1"}, "commonAnnotations": {}}
    (tmp_path / "data.json").write_text(json.dumps(data))

    def render(name: str) -> str:
        proc = subprocess.run([checks.tool("amtool"), "template", "render", f"--template.glob={tdir}/*.tmpl",
                               f"--template.data={tmp_path / 'data.json'}", f'--template.text={{{{ template "{name}" . }}}}'],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert render("monstack.runbook.href") == href
    assert render("monstack.runbook.text") == text
    slack = render("monstack.slack.text")
    assert "<docs/runbooks/x.md|" not in slack and "`docs/runbooks/x.md`" in slack  # a path is named, never a dead link
