"""Inventory text reaches Prometheus and Alertmanager templates as text, never as a template.

Fields that refuse template syntax are in the hostile corpus (tests/hostile.py,
class 3). Here: the escape monstack applies where it quotes inventory text in an
annotation prints the text exactly, as Go's template engine (promtool) runs it;
an inventory full of quotes, backticks, new lines, `<b>` and `{{ ... }}` in the
places that accept them renders, passes its generated tests, and arrives
literally in the notifications a real Prometheus and Alertmanager deliver.
"""
from __future__ import annotations

import html
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from amrunner import Alertmanager, free_port
from generator import alerttext, names, pipeline
from generator.sinks import Sinks
from generator.topology import native

NASTY = [
    "{{ .Evil }}", "{{", "}}", "{{{", "}}}", "{{- $value -}}", '{{ "{{" }}', "{{/* c */}}", "{{ template \"x\" . }}",
    'a "double" and \'single\' quote', "back`tick`", "line one\nline two", "tab\there", "$labels.service", "<b>bold</b> & co",
    "\\ backslash \\n", "{ single } braces", "ends with {", "{{ end }}{{ if 1 }}",
]


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text(alphabet=st.sampled_from(list("{}$. -\"'`\\\nab|/*")), max_size=40) | st.sampled_from(NASTY))
def test_the_escape_prints_any_text_exactly(text: str):
    from generator import textsafety

    escaped = textsafety.literal(text)
    assert alerttext.check(escaped) is None, escaped
    assert alerttext.expand(escaped, {}, 0.0) == text


@pytest.mark.integration
def test_promtool_prints_escaped_text_literally(tmp_path: Path):
    """Go's own template engine, through a promtool rule test: each escaped annotation expands to the original text."""
    from generator import textsafety

    annotations = {f"a{i}": textsafety.literal(t) for i, t in enumerate(NASTY)}
    rules = {"groups": [{"name": "g", "rules": [{"alert": "Nasty", "expr": "up > 0", "for": "0s", "annotations": annotations}]}]}
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": 'up{job="x"}', "values": "1x5"}],
        "alert_rule_test": [{"eval_time": "2m", "alertname": "Nasty", "exp_alerts": [
            {"exp_labels": {"job": "x"}, "exp_annotations": {f"a{i}": t for i, t in enumerate(NASTY)}}]}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The control: unescaped, the same texts are templates (promtool fails or prints something else).
    rules["groups"][0]["rules"][0]["annotations"] = {f"a{i}": t for i, t in enumerate(NASTY)}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


# --- an inventory with hostile text where text is allowed ----------------------------------------

OWNER = 'it\'s "quoted" and `ticked` <b>'
EXPR = 'max(label_replace(up{job="self"}, "x", "{{ .Evil }} `tick` \\"q\\"", "", ""))'
SUMMARY = 'Quote " backtick ` <b>bold</b> value {{ $value }}\nsecond line'
INVENTORY = """\
version: 1
stack: {{name: inject}}
receivers:
  slack: {{type: slack, webhook_url_file: secrets/slack_webhook_url, channel: "#alerts"}}
  hook: {{type: webhook, url: "http://hooks.internal:8080/x"}}
  mail: {{type: email, to: [oncall@example.com], from: alerts@example.com, smarthost: "smtp.example.com:587"}}
severities:
  P0: {{receivers: [slack, hook, mail], group_wait: 1s, group_interval: 1s}}
  P1: {{receivers: [slack]}}
  P2: {{receivers: [slack]}}
  P3: {{receivers: [slack]}}
teams:
  web: {{}}
services:
  - name: api
    team: web
    kind: custom
    health: [{{url: "http://127.0.0.1:9/health"}}]
    labels: {{owner: {owner}}}
    alerts: {{HealthProbeFailing: {{disabled: true}}}}
    rules:
      - {{name: Injected, type: threshold, expr: {expr}, threshold: 0, for: 0s, severity: P0, summary: {summary}}}
"""


def write_inventory(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    inv = root / "services.yaml"
    inv.write_text(INVENTORY.format(owner=json.dumps(OWNER), expr=json.dumps(EXPR), summary=json.dumps(SUMMARY)))
    return inv


def description() -> str:
    return f"The value of {EXPR} is 1 (> 0 for 0s)."


def test_hostile_text_is_accepted_and_escaped_only_where_monstack_quotes_it(tmp_path: Path):
    from generator import textsafety

    model = pipeline.load_model(write_inventory(tmp_path))
    rule = pipeline.build(tmp_path / "services.yaml").files[names.rules_file("api")]
    alert = next(r for g in yaml.safe_load(rule)["groups"] for r in g["rules"] if r.get("alert") == "Injected")
    assert alert["labels"]["owner"] == OWNER
    assert alert["annotations"]["summary"] == SUMMARY  # the user's template, as written
    assert alert["annotations"]["description"] == "The value of " + textsafety.literal(EXPR) + " is {{ $value | humanize }} (> 0 for 0s)."
    assert model.service("api").labels["owner"] == OWNER


@pytest.mark.integration
def test_the_generated_rule_tests_expect_the_literal_text_and_promtool_agrees(tmp_path: Path):
    inv = write_inventory(tmp_path / "inventory")
    results = pipeline.validate(inv, tmp_path / "check")
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)
    out = tmp_path / "out"
    pipeline.render(inv, out)
    tests = yaml.safe_load((out / "prometheus" / "tests" / "api.test.yml").read_text())
    expected = [a for t in tests["tests"] for rt in t["alert_rule_test"] if rt["alertname"] == "Injected" for a in rt["exp_alerts"]]
    assert expected, "no firing case for the rule"
    for a in expected:
        assert a["exp_labels"]["owner"] == OWNER
        assert "{{ .Evil }} `tick`" in a["exp_annotations"]["description"] and "{{ \"{{\" }}" not in a["exp_annotations"]["description"]
        assert a["exp_annotations"]["summary"].startswith('Quote " backtick ` <b>bold</b> value ')
        assert a["exp_annotations"]["summary"].endswith("\nsecond line")


# An increase rule's metric is a selector; its matcher values are the user's text and reach both annotations.
INCREASE_METRIC = 'errors_total{note="{{ .Evil }} `q`"}'
INCREASE = f"""\
version: 1
receivers:
  slack: {{type: slack, webhook_url_file: secrets/slack_webhook_url, channel: "#alerts"}}
severities:
  P0: {{receivers: [slack]}}
  P1: {{receivers: [slack]}}
  P2: {{receivers: [slack]}}
  P3: {{receivers: [slack]}}
teams:
  web: {{}}
services:
  - name: api
    team: web
    kind: http
    scrape: {{targets: ["api.internal:3000"]}}
    rules: [{{name: Errs, type: increase, metric: {json.dumps(INCREASE_METRIC)}, severity: P2}}]
"""


def test_an_increase_rules_selector_is_escaped_in_its_texts(tmp_path: Path):
    from generator import textsafety

    inv = tmp_path / "services.yaml"
    inv.write_text(INCREASE)
    rule = pipeline.build(inv).files[names.rules_file("api")]
    alert = next(r for g in yaml.safe_load(rule)["groups"] for r in g["rules"] if r.get("alert") == "Errs")
    for key in ("summary", "description"):
        assert textsafety.literal(INCREASE_METRIC) in alert["annotations"][key]
        assert alerttext.check(alert["annotations"][key]) is None
        assert INCREASE_METRIC in alerttext.expand(alert["annotations"][key], {}, 1.0)


@pytest.mark.integration
def test_an_increase_rules_generated_tests_expect_its_selector_literally(tmp_path: Path):
    inv = tmp_path / "inventory" / "services.yaml"
    inv.parent.mkdir()
    inv.write_text(INCREASE)
    results = pipeline.validate(inv, tmp_path / "check")
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)
    tests = yaml.safe_load(pipeline.build(inv).files["prometheus/tests/api.test.yml"])
    expected = [a for t in tests["tests"] for rt in t.get("alert_rule_test", []) if rt["alertname"] == "Errs" for a in rt["exp_alerts"]]
    assert expected and all(INCREASE_METRIC in a["exp_annotations"]["summary"] for a in expected)


# --- up to the delivered notification ------------------------------------------------------------------


class Prometheus:
    """A real Prometheus evaluating the rendered rule file, scraping itself (so `up` exists), sending to one Alertmanager."""

    def __init__(self, workdir: Path, rule_file: Path, alertmanager: str) -> None:
        self.workdir, self.port = workdir, free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rule_file)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
            "scrape_configs": [{"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Prometheus":
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (make deps)"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                                          f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"Prometheus did not become ready:\n{self.log.read_text()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.mark.integration
def test_hostile_text_arrives_literally_in_every_notification(tmp_path: Path):
    inv = write_inventory(tmp_path / "inventory")
    with Sinks() as sinks:
        out = tmp_path / "out"
        pipeline.render(inv, out, native(str(inv.parent), sink_http=f"127.0.0.1:{sinks.http.port}", sink_smtp=sinks.smtp.smarthost))
        with Alertmanager(out / names.ALERTMANAGER_CONFIG, tmp_path) as am, \
                Prometheus(tmp_path, out / names.rules_file("api"), f"127.0.0.1:{am.port}"):
            sinks.wait_for(lambda c: c["kind"] == "slack", timeout=60)
            sinks.wait_for(lambda c: c["kind"] == "webhook", timeout=30)
            sinks.wait_for(lambda c: c["kind"] == "email", timeout=30)
        captured = sinks.captured
    want_description = description()

    hook = next(c for c in captured if c["kind"] == "webhook")
    (a,) = [a for a in hook["body"]["alerts"] if a["labels"]["alertname"] == "Injected"]
    assert a["labels"]["owner"] == OWNER
    assert a["annotations"]["summary"] == SUMMARY.replace("{{ $value }}", "1")
    assert a["annotations"]["description"] == want_description

    slack = next(c for c in captured if c["kind"] == "slack")
    text = slack["body"]["attachments"][0]["text"]
    assert SUMMARY.replace("{{ $value }}", "1") in text
    assert want_description in text

    mail = next(c for c in captured if c["kind"] == "email")
    assert SUMMARY.replace("{{ $value }}", "1") in mail["text"] and want_description in mail["text"]
    # HTML escapes what it must (Go's html/template), and says the same once unescaped.
    assert "<b>bold</b>" not in mail["html"]
    assert want_description in html.unescape(mail["html"])
    assert SUMMARY.replace("{{ $value }}", "1").replace("\n", " ") in html.unescape(mail["html"]).replace("\n", " ")
