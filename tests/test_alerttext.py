"""generator/alerttext.py prints what Prometheus prints: held against promtool, the real template engine."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator import alerttext
from rules_support import needs_promtool, promtool_test

VALUES = [0, 0.000123, 0.0449, 0.055, 0.5, 0.9999, 1, 2.2, 59.9, 61.5, 999.9, 1000, 1100, 3725.5, 90061, 1234567, 1.5 * 2**30,
          -3.5, -0.25, 1e-7, 12.6, 1e15]  # not beyond int64 seconds: Go's humanizeDuration overflows there
TEMPLATES = {
    "humanize": "{{ $value | humanize }}",
    "humanize1024": "{{ $value | humanize1024 }}",
    "percentage": "{{ $value | humanizePercentage }}",
    "duration": "{{ $value | humanizeDuration }}",
    "raw": "{{ $value }}",
    "labels": "{{ $labels.instance }} of {{ $labels.job }}, missing: [{{ $labels.nope }}]",
}


@pytest.mark.integration
@needs_promtool
def test_expansions_match_what_prometheus_prints(tmp_path: Path):
    rule = {"alert": "Value", "expr": "probe_value > -1e300", "annotations": TEMPLATES}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    series, expected = [], []
    for i, v in enumerate(VALUES):
        labels = {"i": str(i), "instance": f"host-{i}:9100", "job": "node"}
        series.append({"series": "probe_value{" + ", ".join(f'{k}="{x}"' for k, x in labels.items()) + "}", "values": f"{v!r}x3"})
        expected.append({"exp_labels": labels, "exp_annotations": {k: alerttext.expand(t, labels, v) for k, t in TEMPLATES.items()}})
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series,
                       "alert_rule_test": [{"eval_time": "1m", "alertname": "Value", "exp_alerts": expected}]}]}
    (tmp_path / "t.test.yml").write_text(yaml.safe_dump(test))
    result = promtool_test(tmp_path, "t.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("text, ok", [
    ("{{ $labels.service }}: {{ $value | humanizePercentage }}", True),
    ("plain text", True),
    ("{{ $value }}", True),
    ("{{- $value -}}", True),
    ("{{ .Labels.service }}", False),
    ("{{ $value | printf \"%.2f\" }}", False),
    ("{{ if gt $value 1.0 }}big{{ end }}", False),
    ("{{ $value | humanizeTimestamp }}", False),
    ("{{ $labels.service ", False),
])
def test_only_the_supported_template_subset_is_accepted(text: str, ok: bool):
    why = alerttext.check(text)
    assert (why is None) == ok, why
    if not ok:
        assert "{{ $labels.NAME }}" in why or "unbalanced" in why


def test_go_float_prints_like_go():
    assert [alerttext.go_float(v) for v in (0.0, 1.0, 1100.0, 0.055, 1e-05, 123456.0, 1234567.0, 1e21, -2.5)] == \
        ["0", "1", "1100", "0.055", "1e-05", "123456", "1.234567e+06", "1e+21", "-2.5"]
