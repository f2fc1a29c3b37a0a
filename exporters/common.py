"""Shared machinery for the demo exporters.

Every demo exporter is a small threaded HTTP server that serves

* ``GET /metrics``  – Prometheus exposition of the exporter's own registry,
* ``GET /health`` and ``GET /healthz`` – liveness (plain ``ok``),
* ``GET /ready``    – readiness (JSON, 503 while the ``unready`` fault is set),
* ``GET /control``, ``POST /control``, ``POST /control/reset`` – fault injection,
  only when started with a control token file (``--control-token-file``), and only
  for requests carrying that token in the ``X-Monstack-Control`` header: a custom
  header makes a browser send a preflight (OPTIONS), which the exporter never
  grants, so no web page can inject a fault,

plus whatever application routes the concrete exporter declares.  A background
thread calls :meth:`Exporter.tick` at a bounded rate so the metrics keep moving
without outside load.
"""

from __future__ import annotations

import gzip
import hmac
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder, gzip_accepted

# ``*_created`` series double the series count for no benefit in this stack.
disable_created_metrics()

#: How long a request blocked by the ``hang`` fault waits before giving up.
HANG_TIMEOUT_SECONDS = 600.0
#: Upper bound on the latency a real HTTP request will actually sleep.
MAX_REAL_SLEEP_SECONDS = 60.0
#: Delay between answering ``{"exit": true}`` and the process exiting.
EXIT_DELAY_SECONDS = 0.2
#: The header a control request carries its token in (generator/names.py CONTROL_HEADER says the same).
CONTROL_HEADER = "X-Monstack-Control"

#: Largest accepted request body for the control endpoint.
MAX_CONTROL_BODY = 64 * 1024


# --------------------------------------------------------------------------
# Fault state
# --------------------------------------------------------------------------


class FaultValidationError(ValueError):
    """Raised when a control request contains an unknown field or a bad value."""


@dataclass(frozen=True)
class FaultField:
    """Declaration of one fault field: its type, allowed range and default."""

    kind: type  # float, int or bool
    default: Any
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    help: str = ""

    def coerce(self, name: str, value: Any) -> Any:
        """Validate ``value`` for this field and return the stored value.

        ``None`` restores the default.  Booleans are never accepted as numbers
        (``True`` is an ``int`` in Python, but not in JSON).
        """
        if value is None:
            return self.default
        if self.kind is bool:
            if not isinstance(value, bool):
                raise FaultValidationError(f"field {name!r} must be a boolean")
            return value
        if isinstance(value, bool):
            raise FaultValidationError(f"field {name!r} must be a number, not a boolean")
        if self.kind is int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise FaultValidationError(f"field {name!r} must be an integer")
        else:  # float
            if not isinstance(value, (int, float)):
                raise FaultValidationError(f"field {name!r} must be a number")
            value = float(value)
            if math.isnan(value) or math.isinf(value):
                raise FaultValidationError(f"field {name!r} must be finite")
        if self.minimum is not None and value < self.minimum:
            raise FaultValidationError(f"field {name!r} must be >= {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise FaultValidationError(f"field {name!r} must be <= {self.maximum:g}")
        return value


COMMON_FAULT_FIELDS: Dict[str, FaultField] = {
    "error_ratio": FaultField(float, 0.0, 0.0, 1.0, "fraction of requests/jobs that fail"),
    "latency_seconds": FaultField(float, 0.0, 0.0, 300.0, "latency added per request/job"),
    "queue_backlog": FaultField(int, 0, 0, 10_000_000, "extra items kept waiting (worker)"),
    "hang": FaultField(bool, False, help="/metrics, /health and app routes stop answering"),
    "unready": FaultField(bool, False, help="/ready answers 503"),
    "exit": FaultField(bool, False, help="process exits with code 1 after answering"),
    # Counted, not timed: "the next scrape fails" is exact whatever the scrape interval, so a test can
    # prove that one failed scrape or probe never pages without betting on timing.
    "fail_metrics": FaultField(int, 0, 0, 1000, "the next N GET /metrics answer 503"),
    "fail_health": FaultField(int, 0, 0, 1000, "the next N GET /health and /healthz answer 503"),
}


class FaultState:
    """Thread-safe fault-injection state with validation and defaults."""

    def __init__(self, extra_fields: Optional[Mapping[str, FaultField]] = None) -> None:
        self.fields: Dict[str, FaultField] = dict(COMMON_FAULT_FIELDS)
        if extra_fields:
            self.fields.update(extra_fields)
        self._lock = threading.Lock()
        self._values: Dict[str, Any] = {k: f.default for k, f in self.fields.items()}
        # Set while not hung (or when shutting down) so hung requests wake up.
        self._not_hung = threading.Event()
        self._not_hung.set()
        self._shutting_down = False

    def defaults(self) -> Dict[str, Any]:
        return {k: f.default for k, f in self.fields.items()}

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self._values)

    def get(self, name: str) -> Any:
        with self._lock:
            return self._values[name]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def validate(self, changes: Any) -> Dict[str, Any]:
        """Return the coerced changes, or raise :class:`FaultValidationError`."""
        if not isinstance(changes, dict):
            raise FaultValidationError("body must be a JSON object")
        unknown = sorted(set(changes) - set(self.fields))
        if unknown:
            raise FaultValidationError(
                "unknown field(s): " + ", ".join(repr(u) for u in unknown)
            )
        return {name: self.fields[name].coerce(name, value) for name, value in changes.items()}

    def update(self, changes: Any) -> Dict[str, Any]:
        """Validate all changes first, then apply them atomically."""
        coerced = self.validate(changes)
        with self._lock:
            self._values.update(coerced)
            self._sync_hang_event()
            return dict(self._values)

    def take(self, name: str) -> bool:
        """Use up one of a counted fault (fail_metrics, fail_health): True when this request must fail."""
        with self._lock:
            if self._values[name] > 0:
                self._values[name] -= 1
                return True
            return False

    def reset(self) -> Dict[str, Any]:
        with self._lock:
            self._values = self.defaults()
            self._sync_hang_event()
            return dict(self._values)

    def _sync_hang_event(self) -> None:
        if self._values["hang"] and not self._shutting_down:
            self._not_hung.clear()
        else:
            self._not_hung.set()

    def wait_while_hung(self, timeout: float = HANG_TIMEOUT_SECONDS) -> bool:
        """Block while ``hang`` is set. Returns True if the hang was cleared."""
        return self._not_hung.wait(timeout)

    def release_all(self) -> None:
        """Wake every request blocked by ``hang`` (used at shutdown)."""
        with self._lock:
            self._shutting_down = True
            self._not_hung.set()


# --------------------------------------------------------------------------
# Small helpers shared by the simulations
# --------------------------------------------------------------------------


class EvenShare:
    """Picks exactly `ratio` of a stream of events, evenly spread: thread-safe, no randomness.

    With error_ratio 0.03 every window of n consecutive requests holds at most ceil(0.03 n)
    failures, so a 3% fault cannot look like 5% to an alert that waits for enough traffic.
    """

    def __init__(self) -> None:
        self._owed = 0.0
        self._lock = threading.Lock()

    def pick(self, ratio: float) -> bool:
        with self._lock:
            self._owed += ratio
            if self._owed >= 1.0 - 1e-9:
                self._owed -= 1.0
                return True
            return False


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample (Knuth); fine for the small rates used by the demos."""
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation keeps the loop short
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    threshold = math.exp(-lam)
    k, p = 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def weighted_choice(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()), k=1)[0]


# --------------------------------------------------------------------------
# Exporter base class
# --------------------------------------------------------------------------

#: A route handler gets (exporter, query params, parsed JSON body or None)
#: and returns (HTTP status, JSON-serialisable payload).
RouteHandler = Callable[[Dict[str, str], Any], Tuple[int, Any]]


class Exporter:
    """Base class of a demo exporter.

    Subclasses set :attr:`name`, optionally :attr:`extra_fault_fields` and
    :attr:`tick_interval`, create their metrics in :meth:`setup_metrics`
    (registering them on ``self.registry``), implement :meth:`tick`, and may
    add HTTP routes in :meth:`routes`.
    """

    name = "demo"
    description = ""
    extra_fault_fields: Mapping[str, FaultField] = {}
    #: Seconds between two calls of :meth:`tick` at ``activity=1.0``.
    tick_interval = 0.05

    def __init__(self, activity: float = 1.0, seed: Optional[int] = None) -> None:
        self.activity = max(0.0, float(activity))
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.faults = FaultState(self.extra_fault_fields)
        self.started_at = time.time()
        self._stop = threading.Event()
        self._exit_code = 0
        self._activity_thread: Optional[threading.Thread] = None
        self.setup_metrics()

    # -- to be provided by subclasses ------------------------------------
    def setup_metrics(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def tick(self, now: float, dt: float) -> None:  # pragma: no cover - abstract
        """Advance the simulation by ``dt`` seconds of wall time."""
        raise NotImplementedError

    def routes(self) -> Dict[Tuple[str, str], RouteHandler]:
        return {}

    # -- lifecycle ---------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start_activity(self) -> None:
        if self.activity <= 0:
            return
        self._activity_thread = threading.Thread(
            target=self._activity_loop, name=f"{self.name}-activity", daemon=True
        )
        self._activity_thread.start()

    def _activity_loop(self) -> None:
        interval = self.tick_interval / self.activity
        last = time.monotonic()
        while not self._stop.wait(interval):
            now = time.monotonic()
            dt, last = now - last, now
            if self.faults.get("hang"):
                # A hung process does no work either; resume once released.
                self.faults.wait_while_hung(1.0)
                last = time.monotonic()
                continue
            try:
                self.tick(time.time(), dt)
            except Exception as exc:  # keep the demo alive, but say why
                print(f"{self.name}: activity error: {exc!r}", file=sys.stderr, flush=True)

    def request_stop(self, exit_code: int = 0) -> None:
        if not self._stop.is_set():
            self._exit_code = exit_code
        self._stop.set()
        self.faults.release_all()

    def wait(self) -> int:
        """Block the calling (main) thread until a stop is requested."""
        # Short waits keep the main thread responsive to signals.
        while not self._stop.wait(0.5):
            pass
        return self._exit_code

    def schedule_exit(self, code: int = 1, delay: float = EXIT_DELAY_SECONDS) -> None:
        timer = threading.Timer(delay, self.request_stop, args=(code,))
        timer.daemon = True
        timer.start()

    def sleep(self, seconds: float) -> None:
        """Sleep for a real request; interrupted by shutdown."""
        if seconds > 0:
            self._stop.wait(min(seconds, MAX_REAL_SLEEP_SECONDS))


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], exporter: Exporter, control_token: Optional[str] = None) -> None:
        host = address[0]
        if ":" in host:  # IPv6 literal
            self.address_family = socket.AF_INET6
        self.exporter = exporter
        self.control_token = control_token  # None: no control API at all
        super().__init__(address, ExporterRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return  # client went away (typically after a hang); not our problem
        super().handle_error(request, client_address)


class ExporterRequestHandler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "monstack-demo-exporter/1.0"
    timeout = 120  # idle keep-alive connections are dropped eventually

    # -- plumbing ----------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one log line per start is all we want on stderr

    @property
    def exporter(self) -> Exporter:
        return self.server.exporter

    def _send(self, status: int, body: bytes, content_type: str,
              extra_headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, payload: Any) -> None:
        body = (json.dumps(payload, sort_keys=True) + "\n").encode()
        self._send(status, body, "application/json")

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise FaultValidationError("invalid Content-Length")
        if n < 0 or n > MAX_CONTROL_BODY:
            raise FaultValidationError("request body too large")
        return self.rfile.read(n)

    def _block_if_hung(self) -> None:
        if self.exporter.faults.get("hang"):
            self.exporter.faults.wait_while_hung(HANG_TIMEOUT_SECONDS)
            if self.exporter.stopping:
                self.close_connection = True
                raise ConnectionResetError("shutting down")

    # -- dispatch ----------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

        # The control API never blocks: it must keep working while hung.
        if path in ("/control", "/control/reset") and (refused := self._control_refused()):
            return self._send_json(*refused)
        if path == "/control":
            if method == "GET":
                return self._send_json(200, self.exporter.faults.snapshot())
            if method == "POST":
                return self._control_update()
            return self._method_not_allowed("GET, POST")
        if path == "/control/reset":
            if method == "POST":
                return self._send_json(200, self.exporter.faults.reset())
            return self._method_not_allowed("POST")

        builtin = {
            "/metrics": self._metrics,
            "/health": self._health,
            "/healthz": self._health,
            "/ready": self._ready,
            "/": self._index,
        }
        if path in builtin:
            if method != "GET":
                return self._method_not_allowed("GET")
            if path != "/":
                self._block_if_hung()
            counted = {"/metrics": "fail_metrics", "/health": "fail_health", "/healthz": "fail_health"}.get(path)
            if counted and self.exporter.faults.take(counted):
                return self._send_json(503, {"error": f"failed on purpose ({counted})"})
            return builtin[path]()

        routes = self.exporter.routes()
        handler = routes.get((method, path))
        if handler is None:
            if any(p == path for (_, p) in routes):
                allowed = ", ".join(sorted(m for (m, p) in routes if p == path))
                return self._method_not_allowed(allowed)
            return self._send_json(404, {"error": "not found", "path": path})
        self._block_if_hung()
        body: Any = None
        if method in ("POST", "PUT"):
            try:
                raw = self._read_body()
            except FaultValidationError as exc:
                return self._send_json(400, {"error": str(exc)})
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send_json(400, {"error": "body is not valid JSON"})
        status, payload = handler(query, body)
        self._send_json(status, payload)

    def _method_not_allowed(self, allowed: str) -> None:
        self.send_response(405)
        body = json.dumps({"error": "method not allowed", "allowed": allowed}).encode()
        self.send_header("Allow", allowed)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # -- built-in endpoints --------------------------------------------------
    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        output = encoder(self.exporter.registry)
        headers = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            output = gzip.compress(output)
            headers["Content-Encoding"] = "gzip"
        self._send(200, output, content_type, headers)

    def _health(self) -> None:
        self._send_text(200, "ok\n")

    def _ready(self) -> None:
        if self.exporter.faults.get("unready"):
            return self._send_json(503, {"status": "unready", "reason": "unready fault injected"})
        self._send_json(200, {"status": "ready"})

    def _index(self) -> None:
        self._send_json(200, {
            "exporter": self.exporter.name,
            "description": self.exporter.description,
            "endpoints": ["/metrics", "/health", "/healthz", "/ready", "/control",
                          "/control/reset"] + sorted({p for (_, p) in self.exporter.routes()}),
            "fault_fields": {k: f.help or f.kind.__name__
                             for k, f in self.exporter.faults.fields.items()},
        })

    def _control_refused(self) -> Optional[Tuple[int, Dict[str, str]]]:
        token = self.server.control_token
        if token is None:
            return 404, {"error": "the control API is off (start the exporter with --control-token-file)"}
        given = self.headers.get(CONTROL_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 403, {"error": f"a control request needs the {CONTROL_HEADER} header with the control token"}
        return None

    def _control_update(self) -> None:
        try:
            raw = self._read_body()
            try:
                changes = json.loads(raw or b"{}")
            except ValueError:
                raise FaultValidationError("body is not valid JSON")
            state = self.exporter.faults.update(changes)
        except FaultValidationError as exc:
            return self._send_json(400, {
                "error": str(exc),
                "allowed_fields": sorted(self.exporter.faults.fields),
            })
        self._send_json(200, state)
        if state.get("exit"):
            self.close_connection = True
            self.exporter.schedule_exit(1)


# --------------------------------------------------------------------------
# Running an exporter as a process
# --------------------------------------------------------------------------


def parse_listen(value: str) -> Tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6; ``:PORT`` means all interfaces)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        host = "0.0.0.0"
    try:
        port_num = int(port)
    except ValueError:
        raise ValueError(f"invalid port in {value!r}") from None
    if not 0 <= port_num <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, port_num


def read_control_token(path: str) -> str:
    """The control token in a file (one line); ValueError when it is empty."""
    with open(path, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        raise ValueError(f"{path} is empty")
    return token


def serve(exporter: Exporter, host: str, port: int, control_token: Optional[str] = None) -> int:
    """Serve ``exporter`` until SIGTERM/SIGINT or the ``exit`` fault; return the exit code."""
    server = ExporterHTTPServer((host, port), exporter, control_token)
    bound_host, bound_port = server.server_address[:2]
    display_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host

    def _on_signal(signum: int, _frame: Any) -> None:
        exporter.request_stop(0)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                     name=f"{exporter.name}-http", daemon=True)
    server_thread.start()
    exporter.start_activity()
    print(f"{exporter.name}: listening on http://{display_host}:{bound_port} "
          f"(pid {os.getpid()}, activity x{exporter.activity:g})",
          file=sys.stderr, flush=True)
    try:
        code = exporter.wait()
    finally:
        exporter.request_stop(exporter._exit_code)
        server.shutdown()
        server.server_close()
    if code:
        print(f"{exporter.name}: exiting with code {code} (exit fault injected)",
              file=sys.stderr, flush=True)
    return code
