"""Where people open the stack's pages, in one running mode and for the versions that run there.

The same inventory runs two ways, and their web pages differ:

| | docker compose | native (Debian's packages) |
|---|---|---|
| Prometheus | 3.x at stack.urls.prometheus: /alerts, /targets, /query | 2.x at 127.0.0.1:19090: /classic/alerts, /classic/targets, /classic/graph (no /alerts, /targets) |
| Alertmanager | a web UI at stack.urls.alertmanager | the API only: Debian builds it without its web UI |
| Grafana | at stack.urls.grafana | only when grafana-server is installed |

`/graph?g0.expr=...` works in both (2.x redirects it to /classic/graph, 3.x to /query), so query
links in shared documents use it. Everything a notification, a runbook or `monstack up` links to
comes from a Ui, so no link leads to a page the running version does not serve.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Ui:
    prometheus: str  # base URL, no trailing slash
    alertmanager: str
    grafana: str | None  # None: Grafana does not run in this mode
    prometheus_major: int = 3
    alertmanager_ui: bool = True  # False: API only (Debian's build)
    mode: str = "compose"

    def prometheus_page(self, page: str) -> str:
        """A page of Prometheus' web UI: 2.x (Debian's build has only the classic UI) keeps them under /classic."""
        prefix = "/classic" if self.prometheus_major < 3 else ""
        return f"{self.prometheus}{prefix}/{page}"

    @property
    def alerts(self) -> str:
        return self.prometheus_page("alerts")

    @property
    def targets(self) -> str:
        return self.prometheus_page("targets")

    @property
    def rules(self) -> str:
        return self.prometheus_page("rules")

    def graph(self, expr: str) -> str:
        """A query in Prometheus' expression browser, graph tab."""
        return graph_url(self.prometheus, expr)

    def alertmanager_alerts(self, matchers: str | None = None) -> str | None:
        """Alertmanager's alert list (filtered by matchers such as {alertname="X"}); None when it has no web UI."""
        if not self.alertmanager_ui:
            return None
        return f"{self.alertmanager}/#/alerts" + (f"?filter={quote(matchers, safe='')}" if matchers else "")

    def dashboard(self, uid: str) -> str | None:
        return f"{self.grafana}/d/{uid}" if self.grafana else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Ui":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def graph_url(prometheus: str, expr: str) -> str:
    return f"{prometheus}/graph?g0.expr={quote(expr, safe='')}&g0.tab=0"


def major(version: str) -> int:
    """The major version of an image tag or version string: 'v3.5.0' -> 3."""
    digits = version.lstrip("vV").split(".", 1)[0]
    return int(digits) if digits.isdigit() else 0


@functools.lru_cache(maxsize=64)  # Stack.ui asks for it on every link of a render
def compose(prometheus: str, alertmanager: str, grafana: str, prometheus_image: str) -> Ui:
    """docker compose: the inventory's stack URLs (compose publishes the UIs there) and the pinned images' UIs."""
    tag = prometheus_image.rsplit(":", 1)[-1] if ":" in prometheus_image.rsplit("/", 1)[-1] else ""
    return Ui(prometheus, alertmanager, grafana, prometheus_major=major(tag) or 3, alertmanager_ui=True, mode="compose")
