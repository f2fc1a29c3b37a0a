"""Applying a rendered configuration to running components safely: what changed, what can be checked first,
whether each component really loaded it, and the last good configuration to go back to.

The contract (`monstack apply`, or `up` on a running stack; docs/running.md):

1. Before anything changes, every file the configuration refers to is checked: it exists, and TLS
   certificates, keys and CA bundles parse (promtool and amtool check the syntax, not the files).
2. Only components whose configuration files changed are reloaded, by SIGHUP (no component serves
   an HTTP reload: Prometheus runs without --web.enable-lifecycle, so no web page can reload or stop
   it); a reload is confirmed by the component's own `<component>_config_last_reload_successful`
   metric together with `<component>_config_last_reload_success_timestamp_seconds` moving past the
   signal, and for Prometheus by a scrape pool for every job of the file.
3. When a component rejects the new configuration, the last configuration every component accepted is
   put back and reloaded, and the command fails naming the component and its log line.
"""
from __future__ import annotations

import hashlib
import shutil
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from generator import components, names, webauth, writer
from generator.model import Model
from generator.topology import Topology

TIMEOUT = 30.0


# --- what a component loads ----------------------------------------------------------------------

def tree(folder: Path) -> dict[str, bytes]:
    """The generated files of a rendered folder (from its manifest), the manifest included; {} when there is none."""
    listed = writer.read_manifest(folder)
    if not listed:
        return {}
    files = {path: (folder / path).read_bytes() for path in listed if (folder / path).is_file()}
    files[names.MANIFEST] = (folder / names.MANIFEST).read_bytes()
    return files


def loads(c: components.Component, path: str) -> bool:
    return any(path == f or (f.endswith("/") and path.startswith(f)) for f in c.reloads)


def digest(files: Mapping[str, bytes], component: str) -> str | None:
    """sha256 of the files one component loads; None for a component without a reloadable configuration."""
    c = components.get(component)
    if not c.reloads:
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in files if loads(c, p)):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


# --- 1. before applying: the files the configuration refers to ------------------------------------

def preflight(model: Model, topo: Topology) -> list[str]:
    """Problems with the files Prometheus will read (TLS material, credentials), each naming the service and field."""
    problems: list[str] = []
    for i, s in enumerate(model.services):
        sc = s.scrape
        if sc is None:
            continue
        where = f"services[{i}] ({s.name}) scrape"
        if sc.basic_auth:
            problems += _readable(f"{where}.basic_auth.password_file", sc.basic_auth.password_file, topo)
        if sc.tls:
            if sc.tls.ca_file:
                problems += _ca(f"{where}.tls.ca_file", sc.tls.ca_file, topo)
            if sc.tls.cert_file and sc.tls.key_file:
                problems += _key_pair(f"{where}.tls", sc.tls.cert_file, sc.tls.key_file, topo)
    for j, rw in enumerate(model.stack.remote_write):
        where = f"stack.remote_write[{j}] ({rw.name})"
        if rw.basic_auth:
            problems += _readable(f"{where}.basic_auth.password_file", rw.basic_auth.password_file, topo)
        if rw.bearer_token_file:
            problems += _readable(f"{where}.bearer_token_file", rw.bearer_token_file, topo)
    return problems


def _readable(field: str, ref: str, topo: Topology) -> list[str]:
    path = topo.secret(ref)
    try:
        Path(path).read_bytes()
    except OSError as exc:
        return [f"{field}: {ref} cannot be read ({exc.strerror or exc})"]
    return []


def _ca(field: str, ref: str, topo: Topology) -> list[str]:
    problems = _readable(field, ref, topo)
    if problems:
        return problems
    try:
        ssl.create_default_context(cafile=topo.secret(ref))
    except (ssl.SSLError, ValueError, OSError) as exc:
        return [f"{field}: {ref} holds no PEM certificate ({exc})"]
    return []


def _key_pair(field: str, cert: str, key: str, topo: Topology) -> list[str]:
    problems = _readable(f"{field}.cert_file", cert, topo) + _readable(f"{field}.key_file", key, topo)
    if problems:
        return problems
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(topo.secret(cert), topo.secret(key))
    except (ssl.SSLError, ValueError, OSError) as exc:
        return [f"{field}: {cert} and {key} are not a matching PEM certificate and key ({exc})"]
    return []


# --- 2. after applying: did the component load it? ----------------------------------------------

@dataclass(frozen=True)
class Rejected(Exception):
    component: str
    detail: str  # the component's own words: its log line, or its reply

    def __str__(self) -> str:
        return f"{self.component}: {self.detail}"


def _metrics(url: str, *wanted: str) -> dict[str, float]:
    """The first sample of each wanted metric the component exposes (one scrape)."""
    text = requests.get(f"{url}/metrics", timeout=TIMEOUT, auth=webauth.auth(url)).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out.setdefault(sample.name, sample.value)
    return out


def _metric(url: str, name: str) -> float | None:
    return _metrics(url, name).get(name)


def reload_metric(component: str) -> str:
    return components.get(component).family.replace("-", "_") + "_config_last_reload_successful"


def reload_time_metric(component: str) -> str:
    return components.get(component).family.replace("-", "_") + "_config_last_reload_success_timestamp_seconds"


def loaded_ok(url: str, component: str) -> bool | None:
    """The component's own verdict on the configuration it last tried to load; None when it does not say."""
    value = _metric(url, reload_metric(component))
    return None if value is None else value == 1


def log_offset(log: Path) -> int:
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def error_line(log: Path, since: int = 0) -> str | None:
    """The last error the component logged after byte `since` (Prometheus/Alertmanager log `level=error`)."""
    try:
        with open(log, "rb") as f:
            f.seek(since)
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    errors = [line for line in lines if "level=error" in line or "level=ERROR" in line]
    return errors[-1].strip() if errors else None


def reload(url: str, component: str, log: Path, signal: Callable[[], None], wait: float = TIMEOUT) -> None:
    """Send the component its reload signal (SIGHUP, through `signal`) and confirm it loaded the file: its success
    time moved past the signal with the reload metric at 1. Raise Rejected with its log line when it did not.

    A signal has no reply: a failure shows as the metric at 0 after having been 1, or (when it was 0 already) as an
    error the component logged after the signal; neither within `wait` seconds is a reload that never happened."""
    ok, when = reload_metric(component), reload_time_metric(component)
    since = log_offset(log)
    try:
        before = _metrics(url, ok)
        sent = time.time()
        signal()
    except (requests.RequestException, OSError) as exc:
        raise Rejected(component, f"could not be asked to reload ({exc})") from None
    deadline = time.monotonic() + wait
    while True:
        try:
            now = _metrics(url, ok, when)
        except requests.RequestException as exc:
            raise Rejected(component, f"did not answer after its reload signal ({exc})") from None
        if now.get(ok) == 1 and now.get(when, 0) >= sent:
            return
        logged = error_line(log, since)
        if now.get(ok) == 0 and (before.get(ok) == 1 or logged):
            raise Rejected(component, logged or f"{ok} is 0")
        if time.monotonic() >= deadline:
            raise Rejected(component, logged or f"did not reload within {wait:.0f}s of its signal ({when} stayed before it)")
        time.sleep(0.1)


def scrape_jobs(config: bytes) -> list[str]:
    return [job["job_name"] for job in (yaml.safe_load(config) or {}).get("scrape_configs", [])]


def missing_pools(prometheus_url: str, jobs: Iterable[str]) -> list[str]:
    """Jobs of the configuration file without a scrape pool: Prometheus drops a pool it cannot build (say, a CA file
    it cannot use) with only a log line, at start-up as on reload."""
    r = requests.get(f"{prometheus_url}/api/v1/targets", params={"state": "any"}, timeout=TIMEOUT,
                     auth=webauth.auth(prometheus_url))
    r.raise_for_status()
    data = r.json()["data"]
    pools = {t.get("scrapePool") or t.get("labels", {}).get("job") for t in data.get("activeTargets", [])}
    pools |= {t.get("discoveredLabels", {}).get("job") for t in data.get("droppedTargets", [])}
    return [job for job in jobs if job not in pools]


def confirm(url: str, component: str, files: Mapping[str, bytes], log: Path, since: int = 0, wait: float = 15.0) -> None:
    """A running component runs the rendered file: its reload metric says so and (Prometheus) every job has its pool.

    Prometheus builds scrape pools a few seconds after it loaded the file (target updates are batched): a pool
    still missing after `wait` seconds is one it could not build."""
    if loaded_ok(url, component) is False:
        raise Rejected(component, error_line(log, since) or f"{reload_metric(component)} is 0")
    c = components.get(component)
    config = files.get(names.prometheus_config(c.replica)) if c.family == "prometheus" else None
    if config is None:
        return
    jobs = scrape_jobs(config)
    deadline = time.monotonic() + wait
    while True:
        missing = missing_pools(url, jobs)
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise Rejected(component, error_line(log, since) or f"no scrape pool for job(s) {', '.join(missing)}")
        time.sleep(0.5)


def restore(good: Mapping[str, bytes], config_dir: Path) -> None:
    """Put the last good configuration back in place, all at once, through the one writer."""
    staging = writer.stage(good, config_dir)
    try:
        writer.commit(staging, good, config_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_good(files: Mapping[str, bytes], good_dir: Path) -> None:
    """Keep a copy of a configuration every component accepted: what a failed apply goes back to."""
    good_dir.mkdir(parents=True, exist_ok=True)
    restore(files, good_dir)
