"""The alert-quality benchmark's own parts, without processes: the fault catalogue, the simulator, the scoring.

The benchmark itself runs in `make bench` (it takes minutes); these check that what it measures is what it
claims: faults of every kind, healthy traffic with the features it promises, bounds from the rules' windows.
"""
from __future__ import annotations

import math
import random
import statistics

import pytest
import yaml

from generator.backtest import rules as R
from generator.durations import parse_duration
from generator.quality import faults as F
from generator.quality import simulate as sim
from generator.quality.fleet import CADENCE
from generator.quality.run import START, WARMUP, bound, build_fleet, max_range, merge_results, sample_interval


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    return build_fleet(tmp_path_factory.mktemp("fleet"))


def test_at_least_20_faults_of_every_kind_the_catalogue_covers(fleet):
    built, rules, _ = fleet
    assert len(F.FAULTS) >= 20
    assert {f.kind for f in F.FAULTS} == set(F.KINDS)
    assert len({f.id for f in F.FAULTS}) == len(F.FAULTS)
    for f in F.FAULTS:
        alerts = {a.alert for a in rules.alerts if a.service == f.service}
        assert f.designed in alerts, (f.id, f.designed)
        assert set(f.expected) <= alerts, (f.id, set(f.expected) - alerts)
        assert 0 <= f.start and f.start + f.duration <= 7 * 86400


def test_faults_on_one_service_do_not_overlap():
    by_service: dict[str, list] = {}
    for f in F.FAULTS:
        by_service.setdefault(f.service, []).append((f.start, f.start + f.duration))
    for spans in by_service.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_effects_apply_only_inside_the_fault_and_the_restart_follows_it():
    f = next(f for f in F.FAULTS if f.restart_after)
    assert F.effects_at(F.FAULTS, f.service, f.start - CADENCE) == F.NONE
    assert F.effects_at(F.FAULTS, f.service, f.start) == f.effects(0.0)
    assert F.effects_at(F.FAULTS, f.service, f.start + f.duration) == F.Effects(down=True)
    enqueue = next(f for f in F.FAULTS if f.effects(0.0).enqueue)
    assert F.effects_at(F.FAULTS, enqueue.service, enqueue.start).enqueue == 5000
    assert F.effects_at(F.FAULTS, enqueue.service, enqueue.start + CADENCE).enqueue == 0


@pytest.mark.parametrize("lam", [0.3, 5.0, 40.0, 2400.0])
def test_poisson_has_the_right_mean_and_variance(lam):
    rng = random.Random(7)
    xs = [sim.poisson(rng, lam) for _ in range(20000)]
    assert abs(statistics.fmean(xs) - lam) < 4 * math.sqrt(lam / 20000)
    assert abs(statistics.pvariance(xs) / lam - 1) < 0.05


def test_latency_mixture_puts_the_tail_where_it_says():
    lat = sim.Latency(0.09, 0.6, 0.003, (1.0, 5.0))
    probs = lat.bucket_probs(sim.HTTP_BUCKETS)
    assert abs(sum(probs) - 1) < 1e-12
    above_one = sum(p for le, p in zip(sim.HTTP_BUCKETS + (math.inf,), probs) if le > 1.0)
    assert 0.003 <= above_one < 0.0032  # the tail, plus a sliver of the lognormal body


def test_healthy_traffic_has_deploys_night_lows_and_a_quiet_service(fleet):
    built, _, _ = fleet
    fl = sim.Fleet(built.model, START - WARMUP, START + 7 * 86400, (), START)
    storefront = next(s for s in fl.sims if s.s.name == "storefront")
    assert storefront.cal.deploys and all(sim._weekday(t) < 5 for t in storefront.cal.deploys)
    assert storefront.cal.bursts
    quiet = sim.PARAMS["backoffice-api"][1]
    assert quiet["peak_rps"] * sim.load(START + 4 * 3600, quiet["floor"]) * 3600 < 100  # fewer than 100 requests an hour at 04:00
    # A deploy: `up` is 0 and the target's other series are missing at that scrape.
    t = storefront.cal.deploys[0]
    got = []
    storefront.step(t, F.NONE, lambda m, lb, v: got.append((m, lb, v)))
    ups = [v for m, lb, v in got if m == "up" and lb["job"] == "storefront"]
    assert ups == [0.0] and not [m for m, lb, v in got if m == "http_requests_total"]


def _rendered_intervals(built) -> dict[str, float]:
    """Scrape interval (seconds) of every job of the fleet's rendered prometheus.yml."""
    doc = yaml.safe_load(built.files["prometheus/prometheus.yml"])
    return {j["job_name"]: parse_duration(j.get("scrape_interval", doc["global"]["scrape_interval"])).seconds
            for j in doc["scrape_configs"]}


def _samples(built, faults, lo: float, hi: float) -> dict[tuple[str, tuple], list[tuple[float, float]]]:
    fl = sim.Fleet(built.model, START - WARMUP, START + 7 * 86400, faults, START)
    out: dict[tuple[str, tuple], list[tuple[float, float]]] = {}
    t = lo
    while t < hi:
        for m, lb, at, v in fl.scrape(t):
            out.setdefault((m, tuple(sorted(lb.items()))), []).append((at, v))
        t += CADENCE
    return out


def test_every_series_is_written_at_the_interval_the_rendered_config_scrapes_or_probes_it(fleet):
    built, _, _ = fleet
    intervals = _rendered_intervals(built)
    assert intervals["probe-storefront"] < CADENCE  # else this test proves nothing about the probe cadence
    got = _samples(built, (), START, START + 3 * CADENCE)
    jobs = set()
    for (metric, labels), points in got.items():
        job = dict(labels)["job"]
        times = [at for at, _ in points]
        steps = {b - a for a, b in zip(times, times[1:])}
        assert steps == {intervals[job]}, (metric, labels, steps)
        assert times[0] == START and times[-1] == START + 3 * CADENCE - intervals[job]
        jobs.add(job)
    assert {j for j in intervals if j.startswith("probe-")} <= jobs


def test_an_outage_fails_every_probe_a_deploy_restart_one(fleet):
    built, _, _ = fleet
    storefront = next(s for s in sim.Fleet(built.model, START - WARMUP, START + 7 * 86400, (), START).sims if s.s.name == "storefront")
    deploy = storefront.cal.deploys[0]
    healthy = _samples(built, (), deploy - CADENCE, deploy + 2 * CADENCE)
    probes = {k: v for k, v in healthy.items() if k[0] == "probe_success" and dict(k[1])["job"] == "probe-storefront"}
    assert len(probes) == 2
    for points in probes.values():
        assert [at for at, v in points if v == 0] == [deploy]  # one failed probe: HealthProbeFailing needs two
    outage = next(f for f in F.FAULTS if f.service == "storefront" and f.effects(0.0).probe_fail)
    lo = START + outage.start
    faulted = _samples(built, F.FAULTS, lo - CADENCE, lo + 2 * CADENCE)
    for (metric, labels), points in faulted.items():
        if metric == "probe_success" and dict(labels)["job"] == "probe-storefront":
            assert [at for at, v in points if v == 0] == [at for at, _ in points if at >= lo]


def _requests(built, faults, until: float) -> dict[str, float]:
    """storefront's /api/products request counters by status after simulating it up to `until`."""
    fl = sim.Fleet(built.model, START - WARMUP, START + 7 * 86400, faults, START)
    storefront = next(s for s in fl.sims if s.s.name == "storefront")
    out: dict[str, float] = {}
    t = START - WARMUP
    while t <= until:
        got = []
        fx = F.effects_at(faults, "storefront", t - START) if faults else F.NONE
        storefront.step(t, fx, lambda m, lb, v: got.append((m, lb, v)))
        out = {lb["status"]: v for m, lb, v in got if m == "http_requests_total" and lb["route"] == "/api/products"} or out
        t += CADENCE
    return out


def test_faulted_traffic_is_the_healthy_traffic_plus_the_fault(fleet):
    built, _, _ = fleet
    f = next(f for f in F.FAULTS if f.kind == "error spike" and f.service == "storefront")
    until = START + f.start + 5 * CADENCE
    healthy, faulted = _requests(built, (), until), _requests(built, F.FAULTS, until)
    moved = faulted["500"] - healthy["500"]
    # The same requests as on the healthy run; the fault turned some of its successes into failures.
    assert moved > 0
    assert faulted["200"] == healthy["200"] - moved and faulted["404"] == healthy["404"]


def test_bound_is_window_plus_for_plus_scrape_plus_evaluation():
    rule = R.AlertRule("ErrorBudgetBurn6h", "a > (6 * 0.001) and b > (6 * 0.001)", 0, 0, {}, "g", CADENCE)
    six_hours = "rate(x[6h]) and rate(x[30m])"
    assert max_range(six_hours) == 6 * 3600
    # A step to 0.9% errors crosses 0.6% after two thirds of the 6h window.
    assert bound(rule, six_hours, 0.009) == pytest.approx(4 * 3600 + 2 * CADENCE)
    assert bound(rule, six_hours, 0.005) == math.inf  # never reached
    plain = R.AlertRule("TargetDown", "up == 0", 120, 0, {}, "g", CADENCE)
    assert bound(plain, "up == 0", None) == 120 + 2 * CADENCE


def test_a_rule_reading_only_probe_series_is_bounded_by_the_probe_interval(fleet):
    built, rules, _ = fleet
    probe = _rendered_intervals(built)["probe-storefront"]
    failing = next(r for r in rules.alerts if r.alert == "HealthProbeFailing" and r.service == "storefront")
    down = next(r for r in rules.alerts if r.alert == "TargetDown" and r.service == "storefront")
    assert sample_interval(failing.expr, built, "storefront") == probe
    assert sample_interval(down.expr, built, "storefront") == CADENCE  # it reads `up` too
    # Two probes in a row: a window of two probe intervals (and a second), one more interval, one evaluation.
    assert bound(failing, failing.expr, None, probe) == 2 * probe + 1 + probe + failing.interval


def test_results_merge_keeps_other_keys(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"render": {"services": 100}}\n')
    merge_results(path, {"commit": "abc"})
    merge_results(path, {"commit": "def"})
    import json

    assert json.loads(path.read_text()) == {"render": {"services": 100}, "alert_quality": {"commit": "def"}}
