"""prometheus/tests/<group>.test.yml: promtool unit tests for every generated rule.

For each alert (catalogue, custom, SLO, meta) the catalogue builds cases
from the model: input series with the metric names and labels a real scrape
gives, a value past the threshold that must fire once `for` has passed, with
exactly the expected labels and annotations, and a value just short of it
that must stay silent. Recording rules get promql_expr_tests on a standard
traffic mix whose expected values are computed here independently of the
rules (Prometheus' rate and histogram_quantile arithmetic).

Run them with `monstack validate` (promtool test rules).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import promql_parser

from generator import alerting, alerttext, fleet, lint, names
from generator.catalogue import custom
from generator.catalogue import recorded as R
from generator.catalogue import series as S
from generator.catalogue.core import Case, example_value, fast_interval, num, sample_interval, sampled_every
from generator.catalogue.worker import ok_value as worker_ok_value
from generator.durations import Duration, parse_duration
from generator.model import HttpMetrics, Model, Service, WorkerMetrics
from generator.promql import quote, sel
from generator.recording import recording_rules, slo_rules
from generator.topology import Topology
from generator.units import duration_scale

INTERVAL = "1m"  # input interval and evaluation interval of the generated tests (fast alerts: seconds)
MINUTE = 60_000
RECORDING_AT = 10  # minutes: every 5m window full, long SLO windows partly (ratios are exact either way)
TOLERANCE = 1e-9  # relative: float rounding in rate() and histogram_quantile()


def render(model: Model, topo: Topology) -> dict[str, Any]:
    return dict(iter_render(model, topo))


def iter_render(model: Model, topo: Topology) -> Iterator[tuple[str, Any]]:
    """The test files one service at a time, so a large fleet's tests need not be in memory at once.

    In a fleet (generator/fleet.py) services whose rules are the same up to their names are tested
    once: the first of each group gets test files, the others are listed in names.RULE_TESTS_SHARED.
    """
    shared: dict[str, list[str]] = {}
    tested = []
    for group in fleet.test_groups(model):
        rep = group[0]
        tested.append(rep)
        if len(group) > 1:
            # Members have the rule files their representative has (the same groups up to names).
            for stem in sorted({g.file for g in alerting.service_groups(model, rep)}):
                suffix = stem[len(rep.name):]
                shared[names.rules_file(stem)] = [names.rules_file(m.name + suffix) for m in group[1:]]
    for s in tested:
        out: dict[str, Any] = {}
        groups = alerting.service_groups(model, s)
        files = {g.file for g in groups}
        alerts = alerting.service_alerts(model, s)
        if s.name in files:
            by_step = alert_tests(model, [a for a in alerts if not a.slo], _records(groups, [s.name]))
            by_step[MINUTE] = recording_tests(model, s, recording_rules(s)) + expression_tests(model, s) + by_step.get(MINUTE, [])
            out.update(test_files(s.name, [s.name], groups, by_step))
        slo = names.slo_group(s.name)
        if slo in files:
            # The burn-rate alerts also read the 5m error ratio of the main file.
            loaded = [f for f in (s.name, slo) if f in files]
            by_step = alert_tests(model, [a for a in alerts if a.slo], _records(groups, loaded))
            by_step[MINUTE] = recording_tests(model, s, slo_rules(s)) + by_step.get(MINUTE, [])
            out.update(test_files(slo, loaded, groups, by_step))
        yield from out.items()
    meta = alerting.meta_group(model)
    yield from test_files(names.META_RULES_GROUP, [names.META_RULES_GROUP], [meta], alert_tests(model, list(meta.alerts), {})).items()
    if shared:
        yield names.RULE_TESTS_SHARED, {"tested_once": dict(sorted(shared.items()))}
    for f in model.handwritten:
        for t in f.tests:  # rules.d's own tests, their rule_files pointed at where the rules land
            rel = ["../../" + names.handwritten_rules_file(r).split("/", 1)[1] for r in t.rule_files]
            yield names.handwritten_tests_file(t.name), {"rule_files": rel, **t.data}


def _records(groups: Sequence[alerting.RuleGroup], loaded: list[str]) -> dict[str, str]:
    return {r["record"]: r["expr"] for g in groups if g.file in loaded for r in g.records}


def test_files(stem: str, rule_files: list[str], groups: Sequence[alerting.RuleGroup],
               by_step: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """One test file per evaluation step (ms); group_eval_order makes promtool evaluate recording groups first, as written.

    promtool evaluates every group at the file's step whatever the group's own interval: the fast
    group's tests get a file evaluated at its interval.
    """
    rel = ["../" + names.rules_file(f).split("/", 1)[1] for f in rule_files]
    order = [g.name for f in rule_files for g in groups if g.file == f]
    out = {}
    for step, tests in sorted(by_step.items(), key=lambda kv: (kv[0] != MINUTE, kv[0])):
        if not tests:
            continue
        path = names.rule_tests_file(stem) if step == MINUTE else names.rule_tests_file(stem, str(Duration(step)))
        out[path] = {"rule_files": rel, "evaluation_interval": str(Duration(step)), "group_eval_order": order, "tests": tests}
    return out


# --- alerts ------------------------------------------------------------------------------------


def footprint(expr: str, records: dict[str, str], seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """Metric names an expression reads, through the recording rules it reads."""
    out: set[str] = set()
    for name in _metric_names(_STRINGS.sub('""', expr)):
        if name is None:  # a selector by regex on __name__: may read anything
            return frozenset({"*"})
        out.add(name)
        if name in records and name not in seen:
            out |= footprint(records[name], records, seen | {name})
    return frozenset(out)


# Metric names do not depend on label values: every service's expressions parse once per shape.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


@functools.lru_cache(maxsize=4096)
def _metric_names(expr: str) -> tuple[str | None, ...]:
    return tuple(lint.selector_name(vs) for vs in lint.selectors(promql_parser.parse(expr)))


def shortest_range(expr: str, records: dict[str, str], seen: frozenset[str] = frozenset()) -> Duration | None:
    """The shortest range window (`x[30s]`) an expression reads, through the recording rules it reads; None: none."""
    plain = _STRINGS.sub('""', expr)
    found = [Duration(ms) for ms in lint.range_windows_ms(plain)]
    for name in _metric_names(plain):
        if name in records and name not in seen:
            inner = shortest_range(records[name], records, seen | {name})
            found += [inner] if inner is not None else []
    return min(found, key=lambda d: d.ms, default=None)


def sampled_for(expr: str, records: dict[str, str]) -> Duration | None:
    """The sample interval the cases of an expression need (None: one a minute): see catalogue.core.sample_interval."""
    window = shortest_range(expr, records)
    return sample_interval(window) if window is not None else None


@dataclass
class _Group:
    """Cases sharing one promtool test group: they read and write disjoint metrics, so they cannot disturb each other."""

    step: int  # ms between evaluations
    input: int  # ms between input samples
    reads: set[str] = field(default_factory=set)
    alertnames: set[str] = field(default_factory=set)
    titles: list[str] = field(default_factory=list)
    series: list[dict[str, str]] = field(default_factory=list)
    asserts: list[dict[str, Any]] = field(default_factory=list)

    def fits(self, alertname: str, reads: frozenset[str]) -> bool:
        return alertname not in self.alertnames and "*" not in reads and "*" not in self.reads and not (self.reads & reads)

    def add(self, alertname: str, reads: frozenset[str], test: dict[str, Any]) -> None:
        self.reads |= reads
        self.alertnames.add(alertname)
        self.titles.append(test["name"])
        self.series += test["input_series"]
        self.asserts += test["alert_rule_test"]

    def test(self) -> dict[str, Any]:
        return {"name": "; ".join(self.titles), "interval": str(Duration(self.input)), "input_series": self.series,
                "alert_rule_test": self.asserts}


def alert_tests(model: Model, alerts: Sequence[alerting.Alert], records: dict[str, str]) -> dict[int, list[dict[str, Any]]]:
    """Test groups by evaluation step (ms), cases of different alerts packed together where they cannot interfere.

    Every group costs promtool a fresh storage and an evaluation of every rule
    in the file at every step, so packing cuts test time several times over.
    """
    groups: list[_Group] = []
    for a in alerts:
        labels = alerting.labels(model, a)
        annotations = alerting.alert_annotations(model, a)
        expr = a.definition.expression(a.ctx)
        reads = footprint(expr, records)
        fast = not a.custom and a.definition.fast
        fine = sampled_for(expr, records)
        for case in a.definition.test_cases(a.ctx):
            if fine is not None and case.interval is None:
                case = sampled_every(case, fine)  # a window shorter than a minute: one sample a minute leaves it empty
            step = fast_interval(model).ms if fast else case.step * MINUTE
            sampled = case.interval.ms if case.interval is not None else case.step * MINUTE
            test = case_test(a.name, case, labels, annotations, a.ctx.setting.for_, Duration(step))
            touched = reads | {x.metric for x in case.series}
            group = next((g for g in groups if (g.step, g.input) == (step, sampled) and g.fits(a.name, touched)), None)
            if group is None:
                group = _Group(step, sampled)
                groups.append(group)
            group.add(a.name, touched, test)
    out: dict[int, list[dict[str, Any]]] = {}
    for g in groups:
        out.setdefault(g.step, []).append(g.test())
    return out


def case_test(alertname: str, case: Case, rule_labels: dict[str, str], annotations: dict[str, str],
              for_: Duration = Duration(0), step: Duration | None = None) -> dict[str, Any]:
    """One case; a firing case also asserts the alert is still pending one step before `for` has passed.

    step: the evaluation step (default: the case's minutes); silent_at adds evaluations at which it must not fire.
    """
    expected = []
    for e in case.alerts:
        sample = {k: v for k, v in e.labels.items() if k != "__name__"}
        expected.append({
            "exp_labels": {**sample, **rule_labels},
            "exp_annotations": {k: alerttext.expand(v, sample, e.value) for k, v in annotations.items()},
        })
    step = step or Duration(case.step * MINUTE)
    pending = []
    if case.fires and for_.ms >= 2 * step.ms:
        pending = [{"eval_time": str(Duration(for_.ms - step.ms)), "alertname": alertname, "exp_alerts": []}]
    pending += [{"eval_time": str(t), "alertname": alertname, "exp_alerts": []} for t in case.silent_at]
    return {
        "name": case.title,
        "interval": str(case.interval) if case.interval is not None else f"{case.step}m",
        "input_series": [{"series": s.text(), "values": s.values} for s in case.series],
        "alert_rule_test": pending + [{"eval_time": str(case.at), "alertname": alertname, "exp_alerts": expected}],
    }


# --- recording rules -------------------------------------------------------------------------------


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs ending with +Inf."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    b = next(i for i, (_, c) in enumerate(buckets[:-1] + [(math.inf, math.inf)]) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


class _Traffic:
    """A standard traffic mix for one service and the values every recording rule must produce from it."""

    def __init__(self, model: Model, s: Service):
        self.model, self.s = model, s
        self.points = RECORDING_AT + 5
        self.series: list = []
        self.expected: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.agg = {names.SERVICE: s.name, names.TEAM: s.team, names.ENV: model.stack.environment}

    def expect(self, record: str, value: float, **labels: str) -> None:
        self.expected.setdefault(record, []).append(({**self.agg, **labels}, value))

    def histogram(self, base: str, labels: dict[str, str], per_second: float, buckets: list[tuple[float, float]], unit: str = "seconds") -> None:
        """buckets in seconds; the series carry them in the histogram's unit."""
        scale = duration_scale(unit)
        self.series += S.histogram(base, labels, per_second, _scaled(buckets, scale), self.points, mean=buckets[0][0] * scale)

    def expect_buckets(self, bucket_record: str, quantile_record, per_second: float, buckets: list[tuple[float, float]],
                       unit: str = "seconds", **labels: str) -> None:
        """Bucket rates keyed by le in the histogram's unit; percentiles in seconds whatever the unit."""
        cumulative = [(b, per_second * share) for b, share in buckets] + [(math.inf, per_second)]
        for bound, rate in _scaled(cumulative, duration_scale(unit)):
            self.expect(bucket_record, rate, le=S.le(bound), **labels)
        for label, q in R.QUANTILES:
            self.expect(quantile_record(label), histogram_quantile(q, cumulative), **labels)


def _scaled(buckets: Sequence[tuple[float, float]], scale: float) -> list[tuple[float, float]]:
    return [(b * scale if scale != 1 else b, share) for b, share in buckets]


def _latency_buckets(s: Service) -> list[tuple[float, float]]:
    if s.slo and s.slo.latency_threshold is not None:
        t = s.slo.latency_threshold.seconds
        return [(t, 0.9), (t * 4, 1.0)]  # 10% slower than the SLO threshold
    return [(0.25, 0.5), (1.0, 1.0)]


def _http_traffic(t: _Traffic, m: HttpMetrics, failing: bool = True) -> None:
    """failing=False: no request has failed yet (no failure series at all)."""
    s = t.s
    ok, bad = example_value(m.error_status, matching=False), example_value(m.error_status)
    routes = {"/api/a": (8.0, 2.0 if failing else 0.0), "/api/b": (10.0, 0.0)}  # route: (ok/s, failed/s); /api/b never fails
    buckets = _latency_buckets(s)
    for route, (good, failed) in routes.items():
        base = S.target(t.model, s, method="GET", **{m.route_label: route})
        t.series.append(S.counter(m.requests, {**base, m.status_label: ok}, good, t.points))
        if failed:
            t.series.append(S.counter(m.requests, {**base, m.status_label: bad}, failed, t.points))
        t.histogram(m.duration, base, good + failed, buckets, m.duration_unit)
    total = sum(g + f for g, f in routes.values())
    failed_total = sum(f for _, f in routes.values())
    t.expect(R.HTTP_REQUESTS, total)
    t.expect(R.HTTP_ERRORS, failed_total)
    t.expect(R.HTTP_ERROR_RATIO, failed_total / total)
    t.expect_buckets(R.buckets("http_request_duration", m.duration_unit), R.http_latency, total, buckets, m.duration_unit)
    if m.db_query_duration:
        db = [(0.01, 0.5), (0.1, 1.0)]
        t.histogram(m.db_query_duration, S.target(t.model, s, operation="select", table="orders"), 5, db, m.db_query_duration_unit)
        t.expect_buckets(R.buckets("db_query_duration", m.db_query_duration_unit), R.db_query_latency, 5, db, m.db_query_duration_unit)
    _expect_slis(t, failed_total / total, buckets, total, m.duration_unit)


def _worker_traffic(t: _Traffic, m: WorkerMetrics, failing: bool = True) -> None:
    s = t.s
    base = S.target(t.model, s, **({m.queue_label: "default"} if m.queue_label else {}))
    ok = worker_ok_value(m)
    good, failed = (9.0, 1.0) if failing else (10.0, 0.0)
    buckets = _latency_buckets(s)
    t.series.append(S.counter(m.jobs, {**base, m.status_label: ok}, good, t.points))
    if failed:
        t.series.append(S.counter(m.jobs, {**base, m.status_label: m.failed_value}, failed, t.points))
    t.histogram(m.duration, base, good + failed, buckets, m.duration_unit)
    t.expect(R.JOBS, good + failed)
    t.expect(R.JOBS_FAILED, failed)
    t.expect(R.JOB_FAILURE_RATIO, failed / (good + failed))
    t.expect_buckets(R.buckets("job_duration", m.duration_unit), R.job_latency, good + failed, buckets, m.duration_unit)
    _expect_slis(t, failed / (good + failed), buckets, good + failed, m.duration_unit)


def _expect_slis(t: _Traffic, error_ratio: float, buckets: list[tuple[float, float]], events: float, unit: str) -> None:
    """events: requests (jobs) per second, every one of them timed by the duration histogram."""
    slo = t.s.slo
    if slo is None:
        return
    for w in R.SLI_WINDOWS:
        # The series start at 0 at time 0: rate() over a window longer than the data counts what the data holds
        # (extrapolated back to that 0) over the whole window; ratios of two such rates are exact.
        rate = events * min(1.0, RECORDING_AT * 60 / parse_duration(w).seconds)
        if slo.availability is not None and w != "5m":
            t.expect(R.sli_errors(t.s.kind, w), error_ratio)
            if w in R.SLI_LONG_WINDOWS:
                t.expect(R.sli_events(t.s.kind, w), rate)
        if slo.latency_threshold is not None:
            t.expect(R.sli_slow(t.s.kind, w), 1 - buckets[0][1])
            if w in R.SLI_LONG_WINDOWS:
                t.expect(R.sli_timed(t.s.kind, w, unit), rate)


FAILURES = ("http_errors", "jobs_failed")  # the metric part of recorded failure rates and ratios


def recording_tests(model: Model, s: Service, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded values on a known traffic mix; and the failure rates and ratios before the first failure: 0, not absent."""
    records = [r["record"] for r in rules]
    if not records:
        return []
    out = []
    for failing in (True, False):
        t = _Traffic(model, s)
        if isinstance(s.metrics, HttpMetrics):
            _http_traffic(t, s.metrics, failing)
        elif isinstance(s.metrics, WorkerMetrics):
            _worker_traffic(t, s.metrics, failing)
        missing = set(records) - set(t.expected)
        assert not missing, f"no expected values for recording rules {sorted(missing)}"
        wanted = records if failing else [r for r in records if r.split(":")[1] in FAILURES]
        if not wanted:
            continue
        exprs: list[dict[str, Any]] = []
        for record in wanted:
            for labels, value in sorted(t.expected[record], key=lambda lv: sorted(lv[0].items())):
                exprs.append(_close(record, labels, value))
        what = "on a known traffic mix" if failing else "before the first failure"
        out.append({
            "name": f"recording rules of {s.name} ({', '.join(sorted({r.split(':')[1] for r in wanted}))}) {what}",
            "interval": INTERVAL,
            "input_series": [{"series": x.text(), "values": x.values} for x in t.series],
            "promql_expr_test": exprs,
        })
    return out


def _close(record: str, labels: dict[str, str], value: float, at: str = f"{RECORDING_AT}m") -> dict[str, Any]:
    """promtool compares floats exactly; this asks Prometheus whether the recorded value is within TOLERANCE."""
    tolerance = TOLERANCE * max(1.0, abs(value))
    return {
        "expr": f"abs({sel(record, labels)} - {num(value)}) <= bool {num(tolerance)}",
        "eval_time": at,
        "exp_samples": [{"labels": _labels_text(labels), "value": 1}],
    }


def expression_tests(model: Model, s: Service) -> list[dict[str, Any]]:
    """Custom threshold rules: their expression on generated input, one side of the threshold and the other.

    The input series carry the service's target labels, the selectors' matchers and the labels the
    expression groups on; catalogue/evaluate.py predicts the recorded samples, Prometheus must agree.
    """
    out: list[dict[str, Any]] = []
    for r in s.rules:
        if r.type != "threshold" or s.scrape is None:
            continue
        try:
            cases = custom.expression_cases(s, r, model.stack.environment)
        except custom.evaluate.Unsupported:
            continue  # the alert's tests feed its recorded value (docs/inventory.md)
        record = names.custom_record(r.name)
        fine = sampled_for(r.expr or "", {})
        factor = MINUTE // fine.ms if fine is not None else 1
        for case in cases:
            at = str(case.at)
            side = f"crosses {r.op} {num(r.threshold or 0)}" if case.fires else f"stays short of {r.op} {num(r.threshold or 0)}"
            inputs = ", ".join(f"{src.metric} {'rate ' if src.kind == 'counter' else 'le ' if src.kind == 'bucket' else ''}{num(p)}"
                               for src, p in case.sources)
            exprs = [{"expr": f"count({sel(record, {names.SERVICE: s.name})})", "eval_time": at,
                      "exp_samples": [{"labels": "{}", "value": len(case.outputs)}]}]
            for labels, value in case.outputs:
                exprs.append(_close(record, dict(labels), value, at))
                exprs.append({"expr": f"{sel(record, dict(labels))} {r.op} bool {num(r.threshold or 0)}", "eval_time": at,
                              "exp_samples": [{"labels": _labels_text(dict(labels)), "value": 1 if case.fires else 0}]})
            out.append({
                "name": f"{r.name}: its expression {side} on generated input ({inputs})",
                "interval": str(fine) if fine is not None else INTERVAL,
                "input_series": [{"series": x.text(), "values": x.values} for x in (S.finer(y, factor) for y in case.series())],
                "promql_expr_test": exprs,
            })
    return out


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


def all_cases(model: Model) -> Iterable[tuple[str, Case]]:
    """(alert name, case) for every generated alert: what the coverage test counts."""
    for a in alerting.all_alerts(model):
        for case in a.definition.test_cases(a.ctx):
            yield a.name, case
