"""Detection delays (docs/alerts.md, runbooks): parsing each expression shape once gives what parsing each expression gives."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator import alerting, pipeline
from generator.alerting import _shape_key
from generator.bench import synthetic_inventory

ROOT = Path(__file__).resolve().parent.parent

# Services of one kind whose custom PromQL differs in the ways _shape_key must tell apart: values it may
# blank, and values it must keep (regexes, escapes, __name__, other quotes, empty matchers).
EXPRS = [
    'sum(rate(orders_total{{shop="{n}"}}[{w}m]))',
    'sum(rate(orders_total{{shop=~"{n}|x"}}[{w}m]))',
    'sum(rate(orders_total{{shop="a\\\\{n}"}}[{w}m]))',
    'sum(rate({{__name__="orders_{n}_total"}}[{w}m]))',
    "sum(rate(orders_total{{shop='{n}'}}[{w}m]))",
    'sum(rate(orders_total{{shop="", x="{n}"}}[{w}m]))',
    'sum(rate(orders_total{{shop="{n}"}}[{w}m] offset 1h))',
    'sum(rate(orders_total{{shop="{n}"}}[{w}m:1m]))',
]


def _quirky(tmp_path: Path) -> Path:
    """Six services with the same rules but for a value (shapes shared) and two windows (shapes apart)."""
    services = [{"name": f"s{i}", "team": "shop", "kind": "custom", "scrape": {"targets": [f"s{i}:9100"]},
                 "rules": [{"name": f"R{j}", "type": "threshold", "expr": e.format(n=f"s{i}", w=5 + i % 2), "op": ">", "threshold": 1}
                           for j, e in enumerate(EXPRS)]}
                for i in range(6)]
    slack = {"type": "slack", "webhook_url_file": "secrets/slack", "channel": "#alerts"}
    inventory = {"version": 1, "receivers": {"slack": slack}, "severities": {p: {"receivers": ["slack"]} for p in ("P0", "P1", "P2", "P3")},
                 "teams": {"shop": {}}, "services": services}
    folder = tmp_path / "quirky"
    folder.mkdir(exist_ok=True)
    (folder / "services.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return folder / "services.yaml"


def _inventories(tmp_path: Path) -> list[Path]:
    synthetic = tmp_path / "synthetic" / "services.yaml"
    synthetic.parent.mkdir()
    synthetic.write_text(yaml.safe_dump(synthetic_inventory(60), sort_keys=False))
    return [ROOT / "services.yaml", *sorted(ROOT.glob("examples/*/services.yaml")), *sorted(ROOT.glob("tests/golden/*/services.yaml")),
            synthetic, _quirky(tmp_path)]


def test_shared_shapes_give_each_alert_its_own_detection(tmp_path: Path) -> None:
    for inventory in _inventories(tmp_path):
        model = pipeline.load_model(inventory)
        alerts = alerting.all_alerts(model)
        shared = alerting.detections(model, alerts)
        alone = [alerting.detections(model, [a])[0] for a in alerts]  # fresh memo and shapes: every expression parsed
        assert shared == alone, inventory
        assert any(d.window.ms for d in shared), inventory


def test_quirky_windows_are_read_from_each_expression(tmp_path: Path) -> None:
    model = pipeline.load_model(_quirky(tmp_path))
    alerts = alerting.all_alerts(model)
    found = {(a.ctx.service.name, a.name): d.window.ms for a, d in zip(alerts, alerting.detections(model, alerts), strict=True)
             if a.ctx.service is not None and a.custom}
    for i in range(6):
        minutes = 5 + i % 2
        assert [found[(f"s{i}", f"R{j}")] for j in range(len(EXPRS))] == [minutes * 60_000] * 6 + [0, 0]


@pytest.mark.parametrize(("one", "other", "shared"), [
    ('up{service="a", env="prod"} == 0', 'up{service="b", env="dev"} == 0', True),
    ('label_replace(up{job="x"}, "dst", "$1", "src", "(.*)")', 'label_replace(up{job="y"}, "d", "$2", "s", "(a)")', True),
    ('rate(up{service="a"}[5m])', 'rate(up{service="a"}[6m])', False),
    ('up{service=~"a|b"} == 0', 'up{service=~"a|(b"} == 0', False),  # a regex may not parse: kept
    ('up{service =~ "a", job="x"}', 'up{service =~ "(", job="x"}', False),
    ('up{service="", job="x"}', 'up{service="a", job="x"}', False),  # an empty matcher may not stand alone: kept
    ('up{service="a\\\\b", job="x"}', 'up{service="a\\\\c", job="x"}', False),  # an escape may not parse: kept
    ('up{service="a\\"b", job="x"}', 'up{service="a\\"c", job="x"}', False),
    ('up{service="a\\\\b", job="x"}', 'up{service="a\\\\b", job="y"}', True),  # the plain values beside an escape still share
    ('{__name__="up", job="x"}', '{__name__="down", job="x"}', False),  # names a metric: all kept
    ("up{job='x'}", "up{job='y'}", False),
    ('up{job="x"} # a "comment', 'up{job="y"} # a "comment', False),
    ('up{job="x\ny"}', 'up{job="x\nz"}', False),  # no string spans lines: left as it is
])
def test_shape_key_blanks_only_values_that_parse_alike(one: str, other: str, shared: bool) -> None:
    assert one != other
    assert (_shape_key(one) == _shape_key(other)) == shared
