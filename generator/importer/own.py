"""monstack's own rendered output read back: the round trip."""
from __future__ import annotations

from typing import Any, Optional

from generator.importer.report import Report
from generator.inventory.yamlsource import Source


def is_monstack(prom: Source) -> bool:
    return False


def inventory(prom: Source, rules: list[Source], am: Optional[Source], report: Report) -> dict[str, Any]:
    raise NotImplementedError
