"""The alert catalogue: which alerts each service kind gets, with default thresholds.

The one place for alert defaults. Like a mixin's config, each default says
when you would change it. Every threshold, `for` and severity can be
overridden per service under `alerts:`. Expressions read recorded series
(generator/recording.py; names in catalogue/recorded.py) wherever a
rate or a percentile is involved, never raw histograms.

Comments citing "scenario A/B/C" point at the example deployments of
docs/scenarios.md whose numbers a default follows.

One module per kind: common (target and health probes), http, process,
worker, postgres, redis, host, slo (burn-rate alerts), meta (the stack
itself); custom turns the inventory's business rules into the same shape.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from generator.catalogue import common, custom, host, http, meta, postgres, process, redis, slo, worker
from generator.catalogue.core import AlertDef, Case, Ctx, Expected, Series

if TYPE_CHECKING:
    from generator.model import Service

__all__ = ["AlertDef", "Case", "Ctx", "Expected", "Series", "ALERTS", "META_ALERTS", "meta_for", "custom", "get", "for_kind", "for_service", "reserved"]

# Service alerts in the order rule files list them.
ALERTS: tuple[AlertDef, ...] = (common.ALERTS + http.ALERTS + process.ALERTS + worker.ALERTS + postgres.ALERTS + redis.ALERTS
                                + host.ALERTS + slo.ALERTS)
# Every meta alert; meta_for(model) is the part a stack needs (remote-write alerts only with remote_write).
META_ALERTS: tuple[AlertDef, ...] = meta.ALERTS + meta.REMOTE_WRITE_ALERTS
meta_for = meta.for_stack

_BY_NAME = {a.name: a for a in ALERTS + META_ALERTS}
assert len(_BY_NAME) == len(ALERTS) + len(META_ALERTS), "duplicate alert names in the catalogue"


def get(name: str) -> AlertDef:
    return _BY_NAME[name]


def for_kind(kind: str) -> list[AlertDef]:
    return [a for a in ALERTS if kind in a.kinds]


def for_service(service: "Service") -> list[AlertDef]:
    return [a for a in for_kind(service.kind) if a.applies(service)]


def reserved() -> frozenset[str]:
    """Alert names custom rules may not take: every catalogue and meta alert."""
    return frozenset(_BY_NAME)
