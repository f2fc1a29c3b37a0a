"""Local notification sinks: stand-ins for Slack, PagerDuty, generic webhooks and SMTP.

They let tests assert on what a real Alertmanager actually sent.

HTTP (:class:`HttpSink`), every POST is captured:

* ``POST /slack/<receiver>``                 Slack incoming webhook -> 200 ``ok``
* ``POST /pagerduty/<receiver>/v2/enqueue``  PagerDuty Events v2    -> 202 JSON
* ``POST /webhook/<receiver>``               generic webhook        -> 200 ``ok``
* ``GET  /captured``        all captures as a JSON list (``?kind=`` / ``?receiver=`` filter)
* ``POST /captured/reset``  forget all captures
* ``GET  /health``          ``ok``

SMTP (:class:`SmtpSink`) accepts every message, optionally behind AUTH PLAIN/LOGIN
over plain TCP (as Alertmanager does towards 127.0.0.1).  The password is kept only
as a salted digest and is never stored in a capture, written, or printed.

CLI::

    python -m generator.sinks --http 127.0.0.1:PORT --smtp 127.0.0.1:PORT [--jsonl FILE]
        [--smtp-username USER]   # password from $MONSTACK_SINK_SMTP_PASSWORD or --smtp-password-file

Port 0 picks a free port; the bound addresses are printed to stdout as one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import email
import email.policy
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HttpSink", "SmtpSink", "Sinks", "Capture", "main"]

Capture = Dict[str, Any]
Predicate = Callable[[Capture], bool]
Listener = Callable[[Capture], None]

PASSWORD_ENV = "MONSTACK_SINK_SMTP_PASSWORD"
MAX_HTTP_BODY = 10 * 1024 * 1024


# --------------------------------------------------------------------------
# Capture storage and waiting
# --------------------------------------------------------------------------


def _describe(capture: Capture) -> str:
    if capture.get("kind") == "email":
        return (f"email subject={capture.get('subject')!r} to={capture.get('rcpt_tos')} "
                f"from={capture.get('mail_from')!r} auth={capture.get('authenticated_as')!r}")
    return f"{capture.get('kind')} receiver={capture.get('receiver')!r} path={capture.get('path')!r}"


def _matcher(predicate: Optional[Predicate], fields: Dict[str, Any]) -> Predicate:
    def match(capture: Capture) -> bool:
        if any(capture.get(k) != v for k, v in fields.items()):
            return False
        return predicate(capture) if predicate is not None else True
    return match


class _CaptureView:
    """Common API of everything that holds captures: ``captured``, ``clear``, ``wait_for``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()

    # subclasses provide these two
    @property
    def captured(self) -> List[Capture]:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _notify(self, _capture: Optional[Capture] = None) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Optional[Predicate] = None, timeout: float = 10.0,
                 count: int = 1, **fields: Any) -> List[Capture]:
        """Wait until at least ``count`` captures match; return all matching captures.

        ``predicate`` is a callable on a capture dict; keyword arguments add
        equality conditions (``wait_for(kind="slack", receiver="team-a")``).
        Raises :class:`TimeoutError` listing what *was* captured.
        """
        match = _matcher(predicate, fields)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                everything = self.captured
                matches = [c for c in everything if match(c)]
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
        summary = "\n".join(f"  - {_describe(c)}" for c in everything) or "  (nothing)"
        raise TimeoutError(
            f"timed out after {timeout:g}s waiting for {count} matching capture(s) "
            f"({'; '.join(f'{k}={v!r}' for k, v in fields.items()) or 'predicate'}); "
            f"{len(matches)} matched, {len(everything)} captured:\n{summary}"
        )

    def __enter__(self):
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()  # type: ignore[attr-defined]


class _StoreSink(_CaptureView):
    """A sink owning a thread-safe list of captures plus listeners called on each capture."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._items: List[Capture] = []
        self._listeners: List[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _record(self, capture: Capture) -> None:
        with self._lock:
            self._items.append(capture)
            listeners = list(self._listeners)
        self._notify()
        for listener in listeners:
            try:
                listener(copy.deepcopy(capture))
            except Exception as exc:  # a broken listener must not break the sink
                print(f"sinks: listener failed: {exc!r}", file=sys.stderr, flush=True)

    @property
    def captured(self) -> List[Capture]:
        """A snapshot (deep copy) of all captures, oldest first."""
        with self._lock:
            return copy.deepcopy(self._items)

    def clear(self) -> int:
        with self._lock:
            n = len(self._items)
            self._items.clear()
        self._notify()
        return n


def _split_hostport(value: str) -> Tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "127.0.0.1", int(port)


def _join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------
# HTTP sink
# --------------------------------------------------------------------------

_ROUTES = [
    ("slack", re.compile(r"^/slack/(?P<receiver>[^/]+)/?$")),
    ("pagerduty", re.compile(r"^/pagerduty/(?P<receiver>[^/]+)/v2/enqueue/?$")),
    ("webhook", re.compile(r"^/webhook/(?P<receiver>[^/]+)/?$")),
]


class _SinkHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], sink: "HttpSink") -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sink = sink
        super().__init__(address, _SinkRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _SinkRequestHandler(BaseHTTPRequestHandler):
    server: _SinkHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "monstack-sink/1.0"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_HTTP_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_HTTP_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _parse_body(raw: bytes, content_type: str) -> Any:
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            pass
        if "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(text)
            if "payload" in form:  # Slack's legacy form-encoded webhook shape
                try:
                    return json.loads(form["payload"][-1])
                except ValueError:
                    pass
        return text

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in ("/captured", "/captured/"):
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            fields: Dict[str, Any] = {k: query[k] for k in ("kind", "receiver") if k in query}
            items = [c for c in self.server.sink.all_captured() if _matcher(None, fields)(c)]
            return self._json(200, items)
        if parts.path in ("/health", "/healthz", "/"):
            return self._text(200, "ok\n")
        self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        try:
            raw = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            return self._json(400, {"error": str(exc)})
        if parts.path in ("/captured/reset", "/captured/reset/"):
            return self._json(200, {"cleared": self.server.sink.clear_all()})
        for kind, pattern in _ROUTES:  # noqa: B007 (the matching route's kind is used after the loop)
            m = pattern.match(parts.path)
            if m:
                break
        else:
            return self._json(404, {"error": "not found", "path": parts.path})

        body = self._parse_body(raw, self.headers.get("Content-Type", ""))
        headers: Dict[str, str] = {}
        for key, value in self.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        capture: Capture = {
            "kind": kind,
            "receiver": unquote(m.group("receiver")),
            "path": self.path,
            "headers": headers,
            "body": body,
            "time": time.time(),
        }
        self.server.sink._record(capture)
        if kind == "pagerduty":
            dedup = body.get("dedup_key") if isinstance(body, dict) else None
            return self._json(202, {"status": "success", "message": "Event processed",
                                    "dedup_key": dedup or uuid.uuid4().hex})
        self._text(200, "ok")

    def do_PUT(self) -> None:
        self._json(405, {"error": "method not allowed"})

    do_DELETE = do_PUT
    do_PATCH = do_PUT


class HttpSink(_StoreSink):
    """Threaded HTTP server capturing Slack / PagerDuty / webhook POSTs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self._port = port
        self._server: Optional[_SinkHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._attached: List[_StoreSink] = []

    # -- lifecycle -----------------------------------------------------
    def start(self) -> "HttpSink":
        if self._server is not None:
            return self
        self._server = _SinkHTTPServer((self.host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="http-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{_join_hostport(self.host, self._port)}"

    def slack_url(self, receiver: str) -> str:
        return f"{self.url}/slack/{receiver}"

    def pagerduty_url(self, receiver: str) -> str:
        return f"{self.url}/pagerduty/{receiver}/v2/enqueue"

    def webhook_url(self, receiver: str) -> str:
        return f"{self.url}/webhook/{receiver}"

    # -- combined view served by GET /captured ----------------------------
    def attach(self, other: _StoreSink) -> None:
        """Expose ``other``'s captures through ``GET /captured`` (and reset them too)."""
        self._attached.append(other)

    def all_captured(self) -> List[Capture]:
        items = self.captured
        for other in self._attached:
            items.extend(other.captured)
        items.sort(key=lambda c: c.get("time", 0.0))
        return items

    def clear_all(self) -> int:
        return self.clear() + sum(other.clear() for other in self._attached)


# --------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------


class _QuietDeprecations(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning on every successful AUTH; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in str(record.msg)


_quiet_filter = _QuietDeprecations()


def _decoded_part(msg: email.message.EmailMessage, subtype: str) -> Optional[str]:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)  # bytes for a text part (typeshed also allows a Message)
        content = (payload if isinstance(payload, bytes) else b"").decode("utf-8", errors="replace")
    return content.replace("\r\n", "\n")  # SMTP line endings -> Python's


class _SmtpHandler:
    """aiosmtpd handler.  (No ``auth_*`` attributes: aiosmtpd would treat them as mechanisms.)"""

    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: List[str]) -> str:
        if self.sink.requires_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="replace")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers: Dict[str, str] = {}
        for key, value in msg.items():
            value = str(value)
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        authenticated_as = session.auth_data if session.authenticated else None
        self.sink._record({
            "kind": "email",
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg["Subject"]) if msg["Subject"] is not None else None,
            "text": _decoded_part(msg, "plain"),
            "html": _decoded_part(msg, "html"),
            "headers": headers,
            "authenticated_as": authenticated_as if isinstance(authenticated_as, str) else None,
            "time": time.time(),
        })
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink(_StoreSink):
    """SMTP server (aiosmtpd) capturing every message.

    With ``username``/``password`` it advertises AUTH PLAIN and LOGIN over plain
    TCP, accepts only that pair and refuses mail from unauthenticated sessions.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 username: Optional[str] = None, password: Optional[str] = None) -> None:
        super().__init__()
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.host = host
        self._port = port
        self.username = username
        # Keep only a salted digest: the password itself is never stored.
        self._salt = os.urandom(16)
        self._password_digest = self._digest(password) if password is not None else None
        self._controller: Any = None
        self._attempts_lock = threading.Lock()
        self._auth_attempts: List[Dict[str, Any]] = []

    def _digest(self, password: Any) -> bytes:
        data = password if isinstance(password, bytes) else str(password).encode("utf-8")
        return hashlib.sha256(self._salt + data).digest()

    def __repr__(self) -> str:
        return (f"SmtpSink(host={self.host!r}, port={self._port!r}, "
                f"username={self.username!r}, auth={'on' if self.requires_auth else 'off'})")

    @property
    def requires_auth(self) -> bool:
        return self.username is not None

    @property
    def auth_attempts(self) -> List[Dict[str, Any]]:
        """AUTH attempts as {username, mechanism, success, time} (never the password)."""
        with self._attempts_lock:
            return copy.deepcopy(self._auth_attempts)

    def _authenticator(self, server: Any, session: Any, envelope: Any, mechanism: str,
                       auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", errors="replace")
        ok = (self.username is not None and self._password_digest is not None
              and hmac.compare_digest(login.encode("utf-8"), self.username.encode("utf-8"))
              and hmac.compare_digest(self._digest(auth_data.password), self._password_digest))
        with self._attempts_lock:
            self._auth_attempts.append({"username": login, "mechanism": mechanism,
                                        "success": bool(ok), "time": time.time()})
        # auth_data becomes session.auth_data: only the username, never the LoginPassword.
        return AuthResult(success=bool(ok), handled=False, auth_data=login if ok else None)

    def start(self) -> "SmtpSink":
        if self._controller is not None:
            return self
        import asyncio

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        class _SMTP(SMTP):
            # aiosmtpd's default AUTH LOGIN prompts ("User Name\0", "Password\0") are
            # not what Go clients expect: Alertmanager's LOGIN implementation accepts
            # only "Username:" / "Password:", and it picks LOGIN first when the server
            # advertises "AUTH LOGIN PLAIN", as aiosmtpd does.
            AuthLoginUsernameChallenge = "Username:"
            AuthLoginPasswordChallenge = "Password:"

        class _Controller(Controller):
            def factory(self) -> SMTP:
                return _SMTP(self.handler, **self.SMTP_kwargs)

            def _trigger_server(self) -> None:
                # Support port 0: learn the bound port before aiosmtpd connects to it.
                if self.port == 0 and isinstance(self.server, asyncio.Server) and self.server.sockets:
                    self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        mail_log = logging.getLogger("mail.log")
        if _quiet_filter not in mail_log.filters:
            mail_log.addFilter(_quiet_filter)

        kwargs: Dict[str, Any] = {
            "hostname": self.host,
            "port": self._port,
            "server_hostname": "monstack-sink",  # avoids a slow getfqdn() lookup
            "ready_timeout": 10.0,
        }
        if self.requires_auth:
            kwargs.update(authenticator=self._authenticator, auth_require_tls=False)
        controller = _Controller(_SmtpHandler(self), **kwargs)
        controller.start()
        self._controller = controller
        self._port = controller.port
        return self

    def stop(self) -> None:
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def smarthost(self) -> str:
        """``host:port`` as Alertmanager's ``smarthost`` wants it."""
        return _join_hostport(self.host, self._port)

    @property
    def url(self) -> str:
        return f"smtp://{self.smarthost}"


# --------------------------------------------------------------------------
# Both together
# --------------------------------------------------------------------------


class _JsonlWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the sink's lifetime, closed in close())

    def __call__(self, capture: Capture) -> None:
        line = json.dumps(capture, sort_keys=True, default=str)
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class Sinks(_CaptureView):
    """An :class:`HttpSink` and an :class:`SmtpSink` with one combined capture list.

    Email captures are also served by the HTTP sink's ``GET /captured``; with
    ``jsonl_path`` every capture is appended to that file as one JSON line.
    """

    def __init__(self, http_host: str = "127.0.0.1", http_port: int = 0,
                 smtp_host: str = "127.0.0.1", smtp_port: int = 0,
                 smtp_username: Optional[str] = None, smtp_password: Optional[str] = None,
                 jsonl_path: Optional[str] = None, enable_http: bool = True,
                 enable_smtp: bool = True) -> None:
        super().__init__()
        if not (enable_http or enable_smtp):
            raise ValueError("enable at least one of the HTTP and SMTP sinks")
        self.http: Optional[HttpSink] = HttpSink(http_host, http_port) if enable_http else None
        self.smtp: Optional[SmtpSink] = (
            SmtpSink(smtp_host, smtp_port, smtp_username, smtp_password) if enable_smtp else None)
        self.jsonl_path = jsonl_path
        self._writer: Optional[_JsonlWriter] = None
        for sink in self._sinks():
            sink.add_listener(self._on_capture)
        if self.http is not None and self.smtp is not None:
            self.http.attach(self.smtp)

    def _sinks(self) -> Iterable[Union[HttpSink, SmtpSink]]:
        return [s for s in (self.http, self.smtp) if s is not None]

    def _on_capture(self, capture: Capture) -> None:
        if self._writer is not None:
            self._writer(capture)
        self._notify()

    def start(self) -> "Sinks":
        if self.jsonl_path and self._writer is None:
            self._writer = _JsonlWriter(self.jsonl_path)
        try:
            for sink in self._sinks():
                sink.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for sink in self._sinks():
            sink.stop()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def captured(self) -> List[Capture]:
        items: List[Capture] = []
        for sink in self._sinks():
            items.extend(sink.captured)
        items.sort(key=lambda c: c.get("time", 0.0))
        return items

    def clear(self) -> int:
        return sum(sink.clear() for sink in self._sinks())


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _hostport_arg(value: str) -> Tuple[str, int]:
    try:
        return _split_hostport(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator.sinks",
        description="Run local Slack/PagerDuty/webhook (HTTP) and SMTP notification sinks.",
    )
    parser.add_argument("--http", type=_hostport_arg, metavar="HOST:PORT",
                        help="serve the HTTP sink here (port 0 = pick a free port)")
    parser.add_argument("--smtp", type=_hostport_arg, metavar="HOST:PORT",
                        help="serve the SMTP sink here (port 0 = pick a free port)")
    parser.add_argument("--jsonl", metavar="FILE", help="append every capture to FILE as JSON lines")
    parser.add_argument("--smtp-username", metavar="USER",
                        help=f"require SMTP AUTH as USER; the password comes from "
                             f"${PASSWORD_ENV} or --smtp-password-file")
    parser.add_argument("--smtp-password-file", metavar="FILE",
                        help="file holding the SMTP password (trailing newline ignored)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.http is None and args.smtp is None:
        parser.error("give --http and/or --smtp")
    password: Optional[str] = None
    if args.smtp_username:
        if args.smtp_password_file:
            with open(args.smtp_password_file, encoding="utf-8") as fh:
                password = fh.read().rstrip("\r\n")
        else:
            password = os.environ.get(PASSWORD_ENV)
        if not password:
            parser.error(f"--smtp-username needs a password via ${PASSWORD_ENV} "
                         "or --smtp-password-file")
    elif args.smtp_password_file:
        parser.error("--smtp-password-file needs --smtp-username")

    http_host, http_port = args.http or ("127.0.0.1", 0)
    smtp_host, smtp_port = args.smtp or ("127.0.0.1", 0)
    sinks = Sinks(http_host, http_port, smtp_host, smtp_port,
                  smtp_username=args.smtp_username or None, smtp_password=password,
                  jsonl_path=args.jsonl, enable_http=args.http is not None,
                  enable_smtp=args.smtp is not None)
    password = None  # held only as a digest inside the SMTP sink from here on

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        sinks.start()
    except OSError as exc:
        print(f"sinks: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    ready = {
        "http": sinks.http.url if sinks.http else None,
        "smtp": sinks.smtp.smarthost if sinks.smtp else None,
        "smtp_auth": bool(sinks.smtp and sinks.smtp.requires_auth),
        "jsonl": args.jsonl,
        "pid": os.getpid(),
    }
    print(json.dumps(ready), flush=True)
    print(f"sinks: http={ready['http']} smtp={ready['smtp']} "
          f"auth={'on' if ready['smtp_auth'] else 'off'} jsonl={args.jsonl}",
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sinks.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
