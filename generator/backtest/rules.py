"""The rules a backtest evaluates, from wherever they live: rendered files, rule files on disk, or a running Prometheus.

Every source gives the same shape: rule groups with their evaluation interval,
recording rules and alerting rules, in file and group order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from generator import names
from generator.durations import parse_duration
from generator.errors import UsageError

PROMETHEUS_DEFAULT_EVALUATION_INTERVAL = 60.0  # Prometheus' own default when prometheus.yml sets none


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str]
    group: str
    interval: float  # seconds between evaluations of its group


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_: float  # seconds
    keep_firing_for: float  # seconds; 0 when the rule has none
    labels: Mapping[str, str]
    group: str
    interval: float
    file: str = ""

    @property
    def severity(self) -> str:
        return self.labels.get(names.SEVERITY, "")

    @property
    def service(self) -> str:
        return self.labels.get(names.SERVICE, "")


@dataclass(frozen=True)
class RuleSet:
    """Recording rules by record name (several groups may record one name) and alerting rules in order."""

    recording: Mapping[str, tuple[RecordingRule, ...]]
    alerts: tuple[AlertRule, ...]
    origin: str  # where the rules came from, for reports
    evaluation_interval: float = PROMETHEUS_DEFAULT_EVALUATION_INTERVAL

    def select(self, service: str | None = None, alert: str | None = None) -> tuple[AlertRule, ...]:
        return tuple(a for a in self.alerts if (service is None or a.service == service) and (alert is None or a.alert == alert))


def _seconds(text: Any, where: str) -> float:
    if text is None:
        return 0.0
    try:
        return parse_duration(str(text)).seconds
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _build(groups: Iterable[tuple[str, Mapping[str, Any]]], default_interval: float, origin: str) -> RuleSet:
    recording: dict[str, list[RecordingRule]] = {}
    alerts: list[AlertRule] = []
    for file, g in groups:
        name = str(g.get("name", ""))
        interval = _seconds(g["interval"], f"{file}: group {name}: interval") if g.get("interval") else default_interval
        for i, r in enumerate(g.get("rules") or []):
            where = f"{file}: group {name}: rule {i + 1}"
            labels = {str(k): str(v) for k, v in (r.get("labels") or {}).items()}
            if "record" in r:
                recording.setdefault(str(r["record"]), []).append(RecordingRule(str(r["record"]), str(r["expr"]), labels, name, interval))
            elif "alert" in r:
                alerts.append(AlertRule(str(r["alert"]), str(r["expr"]), _seconds(r.get("for"), f"{where}: for"),
                                        _seconds(r.get("keep_firing_for"), f"{where}: keep_firing_for"), labels, name, interval, file))
            else:
                raise UsageError(f"{where}: neither record nor alert")
    return RuleSet({k: tuple(v) for k, v in recording.items()}, tuple(alerts), origin, default_interval)


def evaluation_interval(prometheus_yml: bytes | str | None) -> float:
    """global.evaluation_interval of a prometheus.yml, in seconds (Prometheus' default of 1m when unset)."""
    if not prometheus_yml:
        return PROMETHEUS_DEFAULT_EVALUATION_INTERVAL
    cfg = yaml.safe_load(prometheus_yml) or {}
    value = (cfg.get("global") or {}).get("evaluation_interval")
    return _seconds(value, "prometheus.yml: global.evaluation_interval") if value else PROMETHEUS_DEFAULT_EVALUATION_INTERVAL


def from_files(files: Mapping[str, bytes], origin: str) -> RuleSet:
    """Rules from a rendered tree ({relative path: bytes}, as generator.pipeline.build returns it)."""
    interval = evaluation_interval(files.get(names.PROMETHEUS_CONFIG))
    prefix = names.RULES_DIR + "/"
    groups = []
    for path in sorted(p for p in files if p.startswith(prefix) and p.endswith((".yml", ".yaml"))):
        doc = yaml.safe_load(files[path]) or {}
        groups += [(path, g) for g in doc.get("groups") or []]
    return _build(groups, interval, origin)


def from_directory(root: Path, origin: str | None = None) -> RuleSet:
    """Rules of a rendered tree on disk (e.g. the native runner's .monstack/config)."""
    files: dict[str, bytes] = {}
    config = root / names.PROMETHEUS_CONFIG
    if config.is_file():
        files[names.PROMETHEUS_CONFIG] = config.read_bytes()
    rules_dir = root / names.RULES_DIR
    for p in sorted(rules_dir.glob("*.y*ml")) if rules_dir.is_dir() else []:
        files[f"{names.RULES_DIR}/{p.name}"] = p.read_bytes()
    return from_files(files, origin or str(root))


def from_api(data: Mapping[str, Any], origin: str) -> RuleSet:
    """Rules from GET /api/v1/rules of a running Prometheus (its `data` object)."""
    groups = []
    intervals = []
    for g in data.get("groups") or []:
        interval = float(g.get("interval") or PROMETHEUS_DEFAULT_EVALUATION_INTERVAL)
        intervals.append(interval)
        rules = []
        for r in g.get("rules") or []:
            labels = r.get("labels") or {}
            if r.get("type") == "recording":
                rules.append({"record": r["name"], "expr": r["query"], "labels": labels})
            else:
                rules.append({"alert": r["name"], "expr": r["query"], "labels": labels,
                              "for": f"{int(round(float(r.get('duration') or 0) * 1000))}ms",
                              "keep_firing_for": f"{int(round(float(r.get('keepFiringFor') or 0) * 1000))}ms"})
        groups.append((str(g.get("file", "")), {"name": g.get("name", ""), "interval": f"{int(round(interval * 1000))}ms", "rules": rules}))
    default = min(intervals) if intervals else PROMETHEUS_DEFAULT_EVALUATION_INTERVAL
    return _build(groups, default, origin)


@dataclass(frozen=True)
class Routing:
    """An Alertmanager configuration (its YAML as a dict) and where it came from."""

    config: Mapping[str, Any]
    origin: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def routing_from_files(files: Mapping[str, bytes], origin: str) -> Routing | None:
    data = files.get(names.ALERTMANAGER_CONFIG)
    return Routing(yaml.safe_load(data) or {}, origin) if data else None
