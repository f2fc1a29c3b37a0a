"""Every panel query returns data from a live Prometheus within 60 s of starting the stack.

The native runner starts Prometheus, Alertmanager, the exporters, the sample exporters (and
PostgreSQL and Redis with their exporters when installed) from tests/inventories/live, scraped
and evaluated every second. Each query is sent to Prometheus's /api/v1/query with the
dashboard's variables set to 'All' and $__rate_interval to four scrape intervals, as Grafana
would; Prometheus rejects a query that does not parse with HTTP 400, which fails the test.
"""
from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from conftest import INVENTORIES

from generator import components, names, pipeline
from generator.catalogue.core import slow_interval
from generator.render import dashboards
from generator.render.dashboards import lint
from generator.runner import NativeStack
from generator.runner.native import find_binary
from generator.runner.process import port_free
from generator.topology import COMPOSE

LIVE = INVENTORIES / "live" / "dashboards.yaml"
DEADLINE_S = 60.0  # from the call to up() until every panel has data
OPTIONAL = {  # kind -> (service entry, binaries it needs)
    "postgres": ({"name": "orders-db", "team": "platform", "kind": "postgres", "scrape": {"targets": ["postgres-exporter:9187"]}},
                 ("postgres", "initdb", "postgres-exporter")),
    "redis": ({"name": "session-cache", "team": "platform", "kind": "redis", "scrape": {"targets": ["redis-exporter:9121"]}},
              ("redis", "redis-exporter")),
}


def _inventory(tmp_path: Path) -> tuple[Path, list[str]]:
    """The live inventory, plus the postgres and redis services whose binaries are installed."""
    data = yaml.safe_load(LIVE.read_text())
    added = []
    for kind, (entry, binaries) in OPTIONAL.items():
        if all(find_binary(b) for b in binaries):
            data["services"].append(entry)
            added.append(kind)
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, added


def _free_offset() -> int:
    """A port offset at which every native port of the stack is free (a user's stack may be running)."""
    ports = [c.native_port for c in components.TABLE if c.native] + [names.NATIVE_SINK_HTTP_PORT, names.NATIVE_SINK_SMTP_PORT]
    candidates = [1000 + 7 * k for k in range(1, 400)]
    random.Random().shuffle(candidates)
    for offset in candidates:
        if all(port_free(p + offset) for p in ports) and max(ports) + offset < 65536:
            return offset
    raise AssertionError("no free port offset for a test stack")


def _query(url: str, expr: str, at: float | None = None) -> list:
    r = requests.post(f"{url}/api/v1/query", data={"query": expr, **({"time": f"{at:.3f}"} if at else {})}, timeout=10)
    assert r.status_code == 200, f"Prometheus rejected {expr!r}: {r.text}"
    body = r.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


def _results(result: list) -> list:
    """A query's result as comparable data: each series' labels and value."""
    return sorted((sorted(r["metric"].items()), r["value"][1]) if isinstance(r, dict) else ([], str(r)) for r in result)


def _log_tails(stack: NativeStack, lines: int = 8) -> str:
    """The end of every component's log, to tell a silent exporter from a broken query."""
    out = []
    for log in sorted(stack.logs_dir.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n\ncomponent logs:\n" + "\n".join(out) if out else ""


@pytest.mark.integration
def test_every_panel_returns_data_within_60s(tmp_path):
    inventory, extra_kinds = _inventory(tmp_path)
    model = pipeline.load_model(inventory)
    rate_interval = f"{int(4 * model.stack.scrape_interval.seconds)}s"
    pending: dict[tuple[str, str, str], str] = {}
    non_empty: dict[tuple[str, str, str], tuple[str, str]] = {}  # queries with a variable at All: (as sent, with .+ for .*)
    required: set[str] = set()
    # The dashboards as the native stack has them: no cAdvisor natively, so no Containers panels (compose only).
    for path, d in dashboards.render(model, replace(COMPOSE, containers=False)).items():
        values = lint.variable_values(d, rate_interval)
        values_non_empty = {k: ".+" if v == ".*" else v for k, v in values.items()}
        for q in lint.queries(d):
            pending[(d["uid"], q.panel, q.ref_id)] = lint.concrete(q.expr, values)
            if lint.concrete(q.expr, values_non_empty) != pending[(d["uid"], q.panel, q.ref_id)]:
                non_empty[(d["uid"], q.panel, q.ref_id)] = (pending[(d["uid"], q.panel, q.ref_id)], lint.concrete(q.expr, values_non_empty))
        if d["uid"] == "ms-overview" or d["tags"][1] == "service":
            required.add(d["uid"])
    assert {"ms-overview", "ms-service-checkout-api", "ms-service-order-worker", "ms-service-sales-insights",
            "ms-service-hosts", "ms-service-payments-provider"} <= required

    # Series the slow SLO group records (day-long windows, evaluated every minute) appear at its first
    # evaluation after a rate exists: they get one slow interval more.
    slow_records = {r["record"] for path, data in pipeline.build(inventory).files.items() if path.startswith(names.RULES_DIR + "/")
                    for g in yaml.safe_load(data).get("groups", []) if g["name"].endswith(names.slo_slow_group(""))
                    for r in g["rules"] if "record" in r}
    slow = {key for key, expr in pending.items() if any(rec in expr for rec in slow_records)}
    grace = slow_interval(model).seconds
    stack = NativeStack(inventory, tmp_path / "state", sinks=True, port_offset=_free_offset())
    started = time.monotonic()
    first_data: dict[tuple[str, str, str], float] = {}
    try:
        stack.up(timeout=DEADLINE_S)
        up_after = time.monotonic() - started
        while pending and time.monotonic() - started < DEADLINE_S + (grace if pending.keys() & slow else 0):
            for key, expr in list(pending.items()):
                if _query(stack.prometheus_url, expr):
                    first_data[key] = time.monotonic() - started
                    del pending[key]
            if pending:
                time.sleep(0.5)
        # All sends .* (cheaper for Prometheus than .+): every query must return what it returns with .+, i.e. every
        # series a variable selects carries its label. Both at one past instant, so no new sample falls in between.
        at = time.time() - 5  # scrapes and evaluations store samples at their start: none older is still to come
        differ, with_data = [], 0
        for k, (sent, plus) in sorted(non_empty.items()):
            got = _results(_query(stack.prometheus_url, sent, at))
            with_data += bool(got)
            if got != _results(_query(stack.prometheus_url, plus, at)):
                differ.append(f"{k[0]} / {k[1]} ({k[2]}): {sent}")
        ports = [p for spec_ports in (stack.spec(c, model).ports for c in stack.components(model)) for p in spec_ports]
    finally:
        stack.down()
    assert all(port_free(p) for p in ports), "the stack left a port bound"

    assert with_data, "no query with a variable at All returned data: the comparison below checks nothing"
    assert differ == [], "All (.*) selects other series than any non-empty value (.+) in:\n" + "\n".join(differ)
    late = sorted(f"{k[0]} / {k[1]} ({k[2]})" for k, t in first_data.items() if t > DEADLINE_S and k not in slow)
    assert late == [], f"data only after {DEADLINE_S:.0f}s for: {late}"
    missing = sorted(f"{uid} / {panel} ({ref}): {pending[(uid, panel, ref)]}" for uid, panel, ref in pending)
    assert missing == [], f"no data after {DEADLINE_S:.0f}s (+{grace:.0f}s for the slow SLO group's series) for:\n" + "\n".join(missing) + _log_tails(stack)
    slowest = max(first_data.items(), key=lambda kv: kv[1])
    per_dashboard = {}
    for (uid, _, _), t in first_data.items():
        per_dashboard[uid] = max(per_dashboard.get(uid, 0.0), t)
    print(f"\nstack up after {up_after:.1f}s (kinds added: {', '.join(extra_kinds) or 'none'}); {len(first_data)} queries, "
          f"all with data after {slowest[1]:.1f}s (last: {slowest[0][0]} / {slowest[0][1]}); {len(non_empty)} with a variable at All "
          f"return the same with .* as with .+ ({with_data} of them with data)")
    for uid, t in sorted(per_dashboard.items(), key=lambda kv: kv[1]):
        print(f"  {uid:<40} {t:5.1f}s")
