"""Alert windows shorter than a minute: their generated promtool tests sample fast enough to fill them.

An override such as RedisEvictions {window: 30s} at a 15 s scrape passes the inventory check (two
scrapes in the window), but a test fed one sample a minute leaves a 30 s window with one sample: its
rate() or increase() is empty and the firing case fails although the rule is right. Such cases are
sampled more often (catalogue.core.sample_interval); the values at every minute stay the same.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import INVENTORIES
from generator import catalogue, names, pipeline
from generator.catalogue import series as S
from generator.catalogue.core import sample_interval
from generator.durations import Duration, parse_duration
from rules_support import load, needs_promtool, promtool_test, rule_files, rule_test_files

SHORT = INVENTORIES / "good" / "short_windows.yaml"
MINUTE = 60_000


def _expand(values: str) -> list[float | None]:
    """promtool's expanding notation, written out (None: a missing sample), independently of series.finer."""
    out: list[float | None] = []
    for token in values.split():
        number = r"[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?"
        m = re.fullmatch(rf"(_|{number})(?:([-+])({number}))?(?:x(\d+))?", token)
        assert m, token
        if m[1] == "_":
            out += [None] * (int(m[4]) if m[4] else 1)
            continue
        start, step = float(m[1]), float(m[3] or 0) * (-1 if m[2] == "-" else 1)
        out += [start + k * step for k in range((int(m[4]) + 1) if m[4] else 1)]
    return out


@pytest.mark.parametrize("values", ["0+60x30", "0.5x10", "_x3 0+6x4", "1 1 0 _ 2", "100-3.5x4", "1e-05+6e-05x3", "7"])
@pytest.mark.parametrize("factor", [2, 4, 60])
def test_finer_keeps_every_sample_and_fills_the_slots_between(values: str, factor: int):
    before = _expand(values)
    after = _expand(S.finer(S.Series("m", (), values), factor).values)
    assert len(after) == len(before) * factor
    for k, v in enumerate(before):
        assert after[k * factor] == pytest.approx(v, rel=1e-12) if v is not None else after[k * factor] is None
        slot = after[k * factor:(k + 1) * factor]
        if v is None:
            assert slot == [None] * factor  # a gap stays a gap for its whole minute
        else:
            nxt = before[k + 1] if k + 1 < len(before) else None
            # Inside a run the samples between lie on the line to the next sample (a counter keeps its slope).
            if nxt is not None and k + 1 < len(before) and _same_run(values, k):
                assert slot == pytest.approx([v + (nxt - v) * j / factor for j in range(factor)], rel=1e-12)


def _same_run(values: str, k: int) -> bool:
    """Whether samples k and k + 1 come from one token of `values`."""
    ends = []
    for token in values.split():
        ends.append((ends[-1] if ends else 0) + len(_expand(token)))
    return not any(e == k + 1 for e in ends)


def test_finer_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="cannot resample"):
        S.finer(S.Series("m", (), "1 stale"), 4)


@pytest.mark.parametrize("window", ["1s", "2s", "3s", "10s", "29s", "30s", "40s", "45s", "59s", "59999ms"])
def test_a_window_under_a_minute_gets_two_samples_whatever_its_edges(window: str):
    w = parse_duration(window)
    i = sample_interval(w)
    assert i is not None and MINUTE % i.ms == 0  # every minute (every eval time) is a sample
    assert i.ms >= 1000
    # Two samples in the window even when the sample on its left edge does not count (Prometheus 3 ranges),
    # unless the window is under two seconds, the finest sampling.
    assert w.ms // i.ms >= 2 or w.ms < 2000


@pytest.mark.parametrize("window", ["1m", "90s", "5m", "6h"])
def test_a_window_of_a_minute_or_more_keeps_one_sample_a_minute(window: str):
    assert sample_interval(parse_duration(window)) is None


@pytest.fixture(scope="module")
def short_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("short-windows")
    for path, data in pipeline.build(SHORT).files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _windows(root: Path) -> dict[str, Duration]:
    """alert name -> the shortest range its rendered expression reads, itself or through a recorded series."""
    rules = [r for f in rule_files(root) for g in load(f)["groups"] for r in g["rules"]]
    records = {r["record"]: r["expr"] for r in rules if "record" in r}
    out = {}
    for r in rules:
        if "alert" not in r:
            continue
        text = r["expr"] + " ".join(e for name, e in records.items() if name in r["expr"])
        ranges = [parse_duration(x) for x in re.findall(r"\[(\w+)\]", text)]
        if ranges:
            out[r["alert"]] = min(ranges, key=lambda d: d.ms)
    return out


def test_the_inventory_gives_every_window_alert_a_short_window(short_tree: Path):
    windows = _windows(short_tree)
    short = {name for name, w in windows.items() if w.ms < MINUTE}
    overridable = {a.name for a in catalogue.ALERTS if a.window is not None and not a.window_fixed}
    # Tiers are named after their alert (HttpLatencyP95WarningP2).
    covered = {a for a in overridable if any(s == a or re.fullmatch(rf"{a}P[0-3]", s) for s in short)}
    assert sorted(overridable - covered) == []


def test_cases_of_short_windows_sample_within_half_the_window(short_tree: Path):
    windows = _windows(short_tree)
    seen = set()
    for f in rule_test_files(short_tree):
        for t in load(f)["tests"]:
            interval = parse_duration(t["interval"])
            for a in t.get("alert_rule_test", []):
                w = windows.get(a["alertname"])
                if w is not None and w.ms < MINUTE:
                    assert 2 * interval.ms <= w.ms, (f.name, t["name"], a["alertname"], t["interval"])
                    seen.add(a["alertname"])
            for e in t.get("promql_expr_test", []):
                if names.custom_record("BizRequestsHigh") in e["expr"]:
                    assert t["interval"] == "15s", t["name"]
                    seen.add("BizRequestsHigh")
    assert {"RedisEvictions", "HttpErrorRatioCritical", "WorkerStalled", "HostDiskFillsWithin24h", "BizRequestsHigh"} <= seen


def test_long_windows_keep_one_sample_a_minute(short_tree: Path):
    """Alerts without a short window (memory, queue depth, Redis memory ...) keep their compact minute tests."""
    windows = _windows(short_tree)
    minute = 0
    for f in rule_test_files(short_tree):
        for t in load(f)["tests"]:
            alerts = {a["alertname"] for a in t.get("alert_rule_test", [])}
            if alerts and all(windows.get(a, Duration(MINUTE)).ms >= MINUTE for a in alerts) and "every-" not in f.name:
                assert t["interval"] == "1m", (f.name, t["name"])
                minute += 1
    assert minute > 5


@pytest.mark.integration
@needs_promtool
def test_short_windows_pass_their_generated_tests(short_tree: Path):
    files = [str(p.relative_to(short_tree / "prometheus")) for p in rule_test_files(short_tree)]
    result = promtool_test(short_tree / "prometheus", *files)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(files)


# The tests still judge the rule at its real window: a rule made wrong fails them.
MUTATIONS = [
    # Fires on no evictions at all: the silent case at 0 evictions fails.
    ("cache", 'redis_evicted_keys_total{service="cache"}[30s])) > 0', 'redis_evicted_keys_total{service="cache"}[30s])) >= 0',
     "RedisEvictions"),
    # A window too short for the 15 s samples: the firing case finds nothing.
    ("cache", 'redis_evicted_keys_total{service="cache"}[30s]', 'redis_evicted_keys_total{service="cache"}[10s]', "RedisEvictions"),
    # A threshold one tier off: the firing case at 5.5% of requests failing no longer fires.
    ("api", '[30s])) > 0.05 and on', '[30s])) > 0.06 and on', "HttpErrorRatioCritical"),
    # The job failure ratio's guard on a rate over a window that holds one sample: never fires.
    ("jobs", 'jobs_total{service="jobs"}[30s])) >= 0.1', 'jobs_total{service="jobs"}[10s])) >= 0.1',
     "WorkerJobFailureRatioHigh"),
]


@pytest.mark.integration
@needs_promtool
@pytest.mark.parametrize("rule_file, old, new, culprit", MUTATIONS, ids=[f"{m[3]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_a_wrong_short_window_rule_fails_its_generated_tests(rule_file: str, old: str, new: str, culprit: str, short_tree: Path,
                                                           tmp_path: Path):
    root = tmp_path / "tree"
    shutil.copytree(short_tree, root)
    path = root / names.rules_file(rule_file)
    text = path.read_text()
    assert text.count(old) == 1, (old, text)
    path.write_text(text.replace(old, new))
    result = promtool_test(root / "prometheus", names.rule_tests_file(rule_file).split("/", 1)[1])
    assert result.returncode != 0
    assert f"alertname: {culprit}," in result.stdout + result.stderr

