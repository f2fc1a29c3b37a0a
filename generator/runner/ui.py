"""The native stack's web pages: which Prometheus and Alertmanager the binaries on PATH are, and what they serve."""
from __future__ import annotations

import shutil

from generator import components, links, versions


def _binary(name: str) -> str | None:
    for candidate in components.get(name).binaries:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def native(port_offset: int = 0) -> links.Ui:
    def url(name: str) -> str:
        return f"http://127.0.0.1:{components.get(name).native_port + port_offset}"

    prometheus, alertmanager = _binary("prometheus"), _binary("alertmanager")
    version = versions.of_binary(prometheus) if prometheus else None
    return links.Ui(
        prometheus=url("prometheus"),
        alertmanager=url("alertmanager"),
        grafana=url("grafana") if _binary("grafana") else None,
        prometheus_major=version[0] if version else 2,  # Debian's, when the binary cannot say
        alertmanager_ui=versions.alertmanager_has_ui(alertmanager) if alertmanager else False,
        mode="native",
    )
