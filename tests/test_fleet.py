"""A fleet (more than defaults.FLEET_DASHBOARDS_ABOVE services) gets dashboards per shape of service, and no panel asks per service."""
from __future__ import annotations

from conftest import ROOT
from dashboard_support import render
from generator import alerting, defaults, fleet, names
from generator.render.dashboards import lint

FLEET = ROOT / "tests" / "inventories" / "dashboards" / "fleet.yaml"


def test_services_of_one_shape_share_a_dashboard_listing_them():
    r = render(FLEET)
    model = r.model
    assert len(model.services) > defaults.FLEET_DASHBOARDS_ABOVE
    shapes = fleet.shapes(model)
    # http and worker come in two shapes each (svc-7's objective, svc-3's queue gauge differ); the rest in one.
    assert sorted(sh.name for sh in shapes) == ["services-custom-1", "services-http-1", "services-http-2", "services-postgres-1",
                                                "services-redis-1", "services-worker-1", "services-worker-2"]
    assert sorted(m for sh in shapes for m in sh.members) == sorted(s.name for s in model.services)
    assert fleet.shape_of(model, "svc-7").members == ("svc-7",)
    for sh in shapes:
        d = r.dashboards[sh.file]
        listed = next(v for v in d["templating"]["list"] if v["name"] == "service")
        assert listed["query"].split(",") == list(sh.members)
        exprs = [q.expr for q in lint.queries(d)]
        assert exprs and all('"$service"' in e or "$service" in e for e in exprs if "service" in e), sh.name
        assert not any(m in e for m in sh.members for e in exprs)  # no member's name is built into a query


def test_no_stack_wide_panel_asks_per_service():
    r = render(FLEET)
    files = set(r.dashboards)
    assert names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_SLO) not in files
    assert names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_BUSINESS) not in files
    overview = r.dashboards[names.dashboard_file(names.GRAFANA_STACK_FOLDER, names.DASHBOARD_OVERVIEW)]
    exprs = [q.expr for q in lint.queries(overview)]
    assert len(exprs) < 20
    # Services are never selected one by one (a list of a budget's members is one query for all of them).
    assert not any(f'service="{s.name}"' in e for s in r.model.services for e in exprs)


def test_alerts_link_to_their_shapes_dashboard_with_the_service_chosen():
    model = render(FLEET).model
    s = model.service("svc-7")
    url = alerting.dashboard_url(model, s)
    assert url.endswith(f"/d/{fleet.shape_of(model, 'svc-7').uid}?var-service=svc-7")


def test_small_inventories_keep_a_dashboard_per_service():
    r = render(ROOT / "services.yaml")
    assert not fleet.enabled(r.model)
    for s in r.model.services:
        assert names.dashboard_file(s.team, s.name) in r.dashboards
