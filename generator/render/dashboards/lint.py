"""Static checks of generated dashboards, and the concrete PromQL behind each panel.

What Grafana's JSON schema cannot say: panel ids unique, panels inside the 24-column grid and
not on top of each other, every datasource uid provisioned, every template variable defined,
a unit on every panel with a query, a legend on every query, and links to dashboards that exist. Pure functions over the
rendered data; tests and `monstack explain --dashboards` use them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from generator.render.dashboards.builder import BUILTIN_VARIABLES, GRID_COLUMNS, VARIABLE_REF, variables_in

_DASHBOARD_LINK = re.compile(r"^/d/([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str
    instant: bool


def queries(d: Mapping[str, Any]) -> Iterator[PanelQuery]:
    for p in panels(d):
        for t in p.get("targets", []):
            yield PanelQuery(d["uid"], p.get("title", ""), t.get("refId", ""), t["expr"], bool(t.get("instant")))


def panels(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel but rows, those inside collapsed rows included, in layout order."""
    out: list[dict[str, Any]] = []
    for p in d.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def variable_values(d: Mapping[str, Any], rate_interval: str = "1m") -> dict[str, str]:
    """A concrete value per variable: what 'All' selects (the variables are used in regex matchers)."""
    values = {"__rate_interval": rate_interval, "__interval": "15s", "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}
    for v in d.get("templating", {}).get("list", []):
        values[v["name"]] = v.get("allValue") or ".+"
    return values


def concrete(expr: str, values: Mapping[str, str]) -> str:
    """expr with every $var / ${var} / ${var:fmt} / [[var]] replaced by its value."""
    def sub(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        if name not in values:
            raise KeyError(f"no value for ${name}")
        return values[name]

    return VARIABLE_REF.sub(sub, expr)


def _overlaps(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def _layers(d: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Panels that share the screen: the top level, and each collapsed row's panels once expanded."""
    yield list(d.get("panels", []))
    for p in d.get("panels", []):
        if p.get("type") == "row" and p.get("collapsed"):
            yield list(p.get("panels", []))


def _datasource_uids(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        ds = obj.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            yield ds["uid"]
        for value in obj.values():
            yield from _datasource_uids(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _datasource_uids(value)


def _texts_with_variables(d: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for every string Grafana interpolates variables into."""
    for p in panels(d):
        yield f"panel {p.get('title')!r} title", p.get("title", "")
        for t in p.get("targets", []):
            yield f"panel {p.get('title')!r} query {t.get('refId')}", t.get("expr", "")
            yield f"panel {p.get('title')!r} legend {t.get('refId')}", t.get("legendFormat", "")
        for link in p.get("links", []):
            yield f"panel {p.get('title')!r} link", link.get("url", "")
    for v in d.get("templating", {}).get("list", []):
        query = v.get("query")
        yield f"variable {v['name']!r}", query.get("query", "") if isinstance(query, dict) else (query or "")
    for link in d.get("links", []):
        yield f"link {link.get('title')!r}", link.get("url", "")


def problems(d: Mapping[str, Any], provisioned_uids: Iterable[str], dashboard_uids: Iterable[str] = ()) -> list[str]:
    """Everything wrong with one dashboard; an empty list when it is fine."""
    out: list[str] = []
    name = d.get("uid", "?")
    ids = [p.get("id") for layer in _layers(d) for p in layer]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dup:
        out.append(f"{name}: duplicate panel ids {dup}")
    for layer in _layers(d):
        for i, p in enumerate(layer):
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in "xywh"):
                out.append(f"{name}: panel {p.get('title')!r} has no complete gridPos")
                continue
            if g["x"] < 0 or g["y"] < 0 or g["w"] <= 0 or g["h"] <= 0 or g["x"] + g["w"] > GRID_COLUMNS:
                out.append(f"{name}: panel {p.get('title')!r} at {g} is outside the {GRID_COLUMNS}-column grid")
            for q in layer[i + 1:]:
                if q.get("gridPos") and _overlaps(g, q["gridPos"]):
                    out.append(f"{name}: panels {p.get('title')!r} and {q.get('title')!r} overlap")
    provisioned = set(provisioned_uids)
    ds_vars = {v["name"]: v for v in d.get("templating", {}).get("list", []) if v.get("type") == "datasource"}
    for uid in sorted(set(_datasource_uids(d)) - provisioned):
        ref = variables_in(uid)
        if ref and len(ref) == 1 and uid in (f"${next(iter(ref))}", f"${{{next(iter(ref))}}}"):
            var = ds_vars.get(next(iter(ref)))
            default = ((var or {}).get("current") or {}).get("value")
            if var is None:
                out.append(f"{name}: datasource {uid!r} names no data source variable of the dashboard")
            elif default not in provisioned:
                out.append(f"{name}: data source variable {var['name']!r} defaults to {default!r}, which is not provisioned")
            continue
        out.append(f"{name}: datasource uid {uid!r} is not provisioned (provisioned: {', '.join(sorted(provisioned))})")
    defined = {v["name"] for v in d.get("templating", {}).get("list", [])} | BUILTIN_VARIABLES
    for where, text in _texts_with_variables(d):
        for var in sorted(variables_in(text) - defined):
            out.append(f"{name}: {where} uses ${var}, which the dashboard does not define")
    for p in panels(d):
        if p.get("targets") and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            out.append(f"{name}: panel {p.get('title')!r} has no unit")
        if p.get("type") != "text" and not p.get("targets"):
            out.append(f"{name}: panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            if not t.get("legendFormat") or t.get("legendFormat") == "__auto":
                out.append(f"{name}: panel {p.get('title')!r} query {t.get('refId')} has no legend")
    known = set(dashboard_uids)
    if known:
        links = list(d.get("links", [])) + [link for p in panels(d) for link in p.get("links", [])]
        for link in links:
            m = _DASHBOARD_LINK.match(link.get("url", ""))
            if m and m.group(1) not in known:
                out.append(f"{name}: link {link.get('title')!r} points to dashboard {m.group(1)!r}, which is not generated")
        for p in panels(d):
            if p.get("type") == "text":
                for uid in re.findall(r"\]\(/d/([A-Za-z0-9_-]+)\)", p.get("options", {}).get("content", "")):
                    if uid not in known:
                        out.append(f"{name}: text panel {p.get('title')!r} links to dashboard {uid!r}, which is not generated")
    return out
