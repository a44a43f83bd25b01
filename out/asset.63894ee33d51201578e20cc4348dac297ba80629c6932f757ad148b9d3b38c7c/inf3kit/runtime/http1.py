"""HTTP/1.1 connections for the ASGI app: limits, timeouts, pipelining and draining.

A thin protocol over ``httptools`` (the llhttp parser uvicorn uses) instead of uvicorn itself:
uvicorn has no header-size, header-read or body-read limits, loses answers when a pipelined
request is followed by garbage, and answers a WebSocket handshake it cannot serve with a 500.
Owning the connection lets one place enforce every rule a hostile client tests:

- the request head is capped in bytes and fields (431) and must arrive within a deadline (408);
- a body must keep arriving (408 after a gap), a connection idle between requests is closed;
- every complete request gets its answer, in order, before any error about what followed;
- upgrades are refused with a 400 (this server speaks HTTP/1.1 only);
- past the connection limit idle keep-alive connections are closed first, then new ones get a
  503, except health checks, which are always answered;
- while draining every answer carries ``Connection: close`` and idle connections are closed.

Every error is JSON, like the app's. Disconnects are logged at debug level and counted.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httptools
import orjson

from inf3kit.runtime.metrics import ConnectionMetrics

log = logging.getLogger("inf3kit.runtime")
access_log = logging.getLogger("inf3kit.access")

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

HEALTH_PATHS = frozenset({"/ping", "/v2/health/live", "/v2/health/ready"})
"""Answered even past the connection limit, so a busy server never fails its health check."""

_HIGH_WATER = 1 << 20  # buffered request bytes before reading pauses
_MAX_PIPELINE = 64  # queued requests before reading pauses
_DRAIN_READ_S = 1.0  # while draining, a client that stops sending for this long is cut off
_OVERFLOW = 64  # connections above the limit kept to answer one request (503 or health)


@dataclass(frozen=True)
class Limits:
    """What one client may hold: see the INF3KIT_* settings of the same names."""

    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 2048


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, event: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.event = event


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


class _Date:
    """The ``Date`` header, formatted once per second."""

    second = 0
    header = b""

    @classmethod
    def get(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.header = b"date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
        return cls.header


class Request:
    """One parsed request head and its body as it arrives."""

    __slots__ = (
        "body",
        "close",
        "complete",
        "continue_sent",
        "disconnected",
        "done",
        "expect_continue",
        "head",
        "override",
        "refusal",
        "scope",
        "started",
        "status",
        "waiter",
    )

    def __init__(self, scope: dict[str, Any], keep_alive: bool) -> None:
        self.scope = scope
        self.body: list[bytes] = []
        self.complete = False
        self.close = not keep_alive
        self.expect_continue = False
        self.continue_sent = False
        self.disconnected = False
        self.refusal: tuple[int, str] | None = None  # answered without running the app
        self.override: tuple[int, str] | None = None  # replaces the app's answer (timeouts)
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.done = False
        self.status = 0
        self.head = b""

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Hub:
    """Server-wide connection state: the set of connections, the limit, draining."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        metrics: ConnectionMetrics,
        *,
        access_log: bool = False,
    ) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics
        self.access_log = access_log
        self.connections: dict[HttpConnection, None] = {}
        self.draining = False

    def factory(self) -> HttpConnection:
        return HttpConnection(self)

    def admit(self, conn: HttpConnection) -> str:
        """Decide a new connection's fate: ``ok``, ``overflow`` (one answer) or ``refuse``."""
        if len(self.connections) >= self.limits.max_connections:
            for other in self.connections:  # oldest first
                if other.idle:
                    self.metrics.events["evicted_idle"].inc()
                    other.close()
                    break
        if len(self.connections) < self.limits.max_connections:
            verdict = "ok"
        elif len(self.connections) < self.limits.max_connections + _OVERFLOW:
            self.metrics.events["over_limit"].inc()
            verdict = "overflow"
        else:
            self.metrics.events["refused"].inc()
            return "refuse"
        self.connections[conn] = None
        self.metrics.open.inc()
        return verdict

    def forget(self, conn: HttpConnection) -> None:
        if conn in self.connections:
            del self.connections[conn]
            self.metrics.open.dec()

    def busy(self) -> int:
        """Connections in the middle of a request (reading it, or the app answering it)."""
        return sum(1 for c in self.connections if not c.idle)

    def begin_drain(self) -> None:
        """Answer with ``Connection: close`` from now on; close idle connections."""
        self.draining = True
        for conn in list(self.connections):
            conn.on_drain()

    def close_all(self) -> None:
        """The end of the grace: answer what has no answer yet with a 503, then close."""
        for conn in list(self.connections):
            conn.shut_down()


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, queue pipelined requests, run the app on each in order."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.limits = hub.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pipeline: collections.deque[Request] = collections.deque()
        self.parsing: Request | None = None  # headers complete, body not yet
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.overflow = False
        self.served = False
        self.eof = False
        self.terminal: tuple[int, str] | None = None  # answered after the pipeline, then close
        self.read_paused = False
        self.write_ok: asyncio.Future[None] | None = None
        self.buffered = 0
        self.received = 0
        self.last_read = 0.0
        self.last_done = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        # the request head being parsed
        self.in_head = False
        self.head_started = 0.0
        self.head_chunk_end = 0
        self.head_bytes = 0
        self.head_count = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp: asyncio.Transport = transport  # type: ignore[assignment]  # uvloop's: no subclass
        self.transport = tcp
        verdict = self.hub.admit(self)
        if verdict == "refuse":
            self.closed = True
            tcp.abort()
            return
        self.overflow = verdict == "overflow"
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.client = tuple(peer[:2]) if isinstance(peer, tuple) else None
        self.server = tuple(local[:2]) if isinstance(local, tuple) else None
        self.last_read = self.last_done = self.loop.time()
        self._arm(self.last_done + self.limits.header_timeout_s)
        if self.hub.draining:
            self.on_drain()

    def connection_lost(self, exc: Exception | None) -> None:
        by_client = not self.closed
        self.closed = True
        self.hub.forget(self)
        if self.timer is not None:
            self.timer.cancel()
        unanswered = [r for r in self.pipeline if not r.done]
        if by_client and (unanswered or self.in_head or self.parsing is not None):
            self.hub.metrics.events["client_disconnect"].inc()
            log.debug(
                "client %s disconnected with %d request(s) unanswered",
                self.client,
                len(unanswered),
            )
        for request in self.pipeline:
            request.disconnected = True
            request.wake()
        if self.write_ok is not None and not self.write_ok.done():
            self.write_ok.set_result(None)

    def eof_received(self) -> bool:
        """A half-close: answer what was received, then close (return True keeps it open)."""
        self.eof = True
        if self.parsing is not None:
            self.parsing.disconnected = True
            self.parsing.wake()
        if not self.pipeline:
            self.close()
        return True

    def pause_writing(self) -> None:
        if self.write_ok is None or self.write_ok.done():
            self.write_ok = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.write_ok is not None and not self.write_ok.done():
            self.write_ok.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.closed or self.eof:
            return
        self.last_read = self.loop.time()
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_reading()  # the upgrade request is queued with its refusal
        except _Refused as exc:
            self._fail(exc.status, exc.message, exc.event)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._fail(cause.status, cause.message, cause.event)
            else:
                raise
        except httptools.HttpParserError as exc:
            detail = str(exc).rstrip(".") or type(exc).__name__
            self._fail(400, f"malformed HTTP request: {detail}", "malformed")
        else:
            if self.in_head and self.received - self.head_chunk_end > self.limits.max_header_bytes:
                self._fail(431, self._head_too_large(), "headers_too_large")
            elif self.buffered > _HIGH_WATER or len(self.pipeline) > _MAX_PIPELINE:
                self._pause_reading()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self.head_started = self.loop.time()
        self.head_chunk_end = self.received
        self.head_bytes = 0
        self.head_count = 0
        self.url = b""
        self.headers = []
        self._arm(self.head_started + self._head_timeout())

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)
        if self.head_bytes > self.limits.max_header_bytes:
            raise _Refused(
                414,
                f"the request target is longer than {self.limits.max_header_bytes} bytes "
                "(INF3KIT_MAX_HEADER_BYTES)",
                "headers_too_large",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        self.head_count += 1
        if self.head_bytes > self.limits.max_header_bytes:
            raise _Refused(431, self._head_too_large(), "headers_too_large")
        if self.head_count > self.limits.max_header_count:
            raise _Refused(
                431,
                f"more than {self.limits.max_header_count} header fields "
                "(INF3KIT_MAX_HEADER_COUNT); send fewer headers",
                "headers_too_large",
            )
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        method = parser.get_method().decode("ascii")
        url = self.url
        if not url.startswith(b"/"):
            parsed = httptools.parse_url(url)  # absolute form or "*"
            raw_path = parsed.path or url
            query = parsed.query or b""
        else:
            raw_path, _, query = url.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": parser.get_http_version(),
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": self.headers,
            "client": self.client,
            "server": self.server,
        }
        request = Request(scope, parser.should_keep_alive())
        upgrade = None
        for name, value in self.headers:
            if name == b"upgrade":
                upgrade = value
            elif name == b"expect" and value.lower() == b"100-continue":
                request.expect_continue = True
        if upgrade is not None and parser.should_upgrade():
            protocol = upgrade.decode("latin-1")
            request.refusal = (
                400,
                f"this server speaks HTTP/1.1 only and does not upgrade to {protocol!r}; "
                "send the request without Upgrade",
            )
            request.close = True
            self.hub.metrics.events["upgrade_refused"].inc()
        elif self.overflow:
            request.close = True
            if path not in HEALTH_PATHS:
                request.refusal = (
                    503,
                    f"the server has {self.limits.max_connections} connections open "
                    "(INF3KIT_MAX_CONNECTIONS); retry, reusing a connection",
                )
        self.parsing = request
        self.pipeline.append(request)
        if len(self.pipeline) == 1:
            self._start(request)

    def on_body(self, body: bytes) -> None:
        request = self.parsing
        if request is not None:
            request.body.append(body)
            self.buffered += len(body)
            request.wake()

    def on_message_complete(self) -> None:
        request = self.parsing
        if request is not None:
            request.complete = True
            self.parsing = None
            request.wake()

    # --- running the app ----------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self.task = self.loop.create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        try:
            if request.refusal is not None:
                status, message = request.refusal
                await self._send_error(request, status, message)
            elif request.override is not None:
                status, message = request.override
                await self._send_error(request, status, message)
            else:
                await self.hub.app(request.scope, self._receiver(request), self._sender(request))
        except Exception:
            log.exception(
                "unhandled error for %s %s", request.scope["method"], request.scope["path"]
            )
            if not request.started:
                await self._send_error(request, 500, "internal server error; see the server log")
        finally:
            self._finish(request)

    def _finish(self, request: Request) -> None:
        if self.closed:
            return
        if not request.done:  # the app returned without answering, or failed mid-answer
            self.close()
            return
        self.pipeline.popleft()
        self.buffered -= sum(len(chunk) for chunk in request.body)
        request.body = []
        self.served = True
        self.last_done = self.loop.time()
        if request.close:
            self.close()
        elif self.pipeline:
            self._start(self.pipeline[0])
        elif self.terminal is not None:
            status, message = self.terminal
            self._write_error(status, message)
            self.close()
        elif self.eof:
            self.close()
        else:
            self._maybe_resume()

    def _receiver(self, request: Request) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def receive() -> dict[str, Any]:
            if request.expect_continue and not request.continue_sent and not request.disconnected:
                request.continue_sent = True
                if self.transport is not None and not self.closed:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            while not request.body and not request.complete and not request.disconnected:
                request.waiter = self.loop.create_future()
                await request.waiter
                request.waiter = None
            if request.body:
                chunks = request.body
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                request.body = []
                self.buffered -= len(body)
                if self.read_paused:
                    self._maybe_resume()
                return {"type": "http.request", "body": body, "more_body": not request.complete}
            if request.complete and not request.disconnected:
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

        return receive

    def _sender(self, request: Request) -> Callable[[Any], Awaitable[None]]:
        async def send(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if request.started:
                    raise RuntimeError("http.response.start sent twice")
                request.started = True
                if request.override is not None:  # a timeout already decided the answer
                    request.started = False
                    await self._send_error(request, *request.override)
                    return
                request.status = message["status"]
                request.head = self._head(request, message["status"], message["headers"])
            elif kind == "http.response.body":
                if not request.started:
                    raise RuntimeError("http.response.body sent before http.response.start")
                if request.done:
                    return
                body = message.get("body", b"")
                if request.scope["method"] == "HEAD":
                    body = b""
                await self._write(request, body, more=message.get("more_body", False))

        return send

    def _head(self, request: Request, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        if self.hub.draining or not request.complete:
            request.close = True
        parts = [_status_line(status), _Date.get()]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        if request.close:
            parts.append(b"connection: close\r\n")
        elif request.scope["http_version"] == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _write(self, request: Request, body: bytes, *, more: bool) -> None:
        if request.done:
            return
        if request.head:
            body, request.head = request.head + body, b""
        if not more:
            request.done = True
            if self.hub.access_log:
                scope = request.scope
                access_log.info(
                    '%s - "%s %s HTTP/%s" %d',
                    self.client[0] if self.client else "-",
                    scope["method"],
                    scope["path"],
                    scope["http_version"],
                    request.status,
                )
        if self.closed or self.transport is None:
            return
        self.transport.write(body)
        if self.write_ok is not None and not self.write_ok.done():
            await self.write_ok

    async def _send_error(self, request: Request, status: int, message: str) -> None:
        body = error_body(message)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        request.started = True
        request.status = status
        request.head = self._head(request, status, headers)
        await self._write(request, body, more=False)

    def _error_bytes(self, status: int, message: str) -> bytes:
        body = error_body(message)
        head = [
            _status_line(status),
            _Date.get(),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body

    def _write_error(self, status: int, message: str) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(self._error_bytes(status, message))

    # --- errors, timeouts, closing ------------------------------------------------------------

    def _head_too_large(self) -> str:
        return (
            f"the request head is larger than {self.limits.max_header_bytes} bytes "
            "(INF3KIT_MAX_HEADER_BYTES); send fewer or smaller headers"
        )

    def _fail(self, status: int, message: str, event: str) -> None:
        """Stop reading; answer every complete request first, then this error, then close."""
        self.hub.metrics.events[event].inc()
        self._stop_reading()
        request = self.parsing
        if request is not None:  # the body in progress is broken: that request ends here
            self.parsing = None
            request.override = request.override or (status, message)
            request.close = True
            request.disconnected = True
            request.wake()
            return
        self.in_head = False
        self.terminal = (status, message)
        if not self.pipeline:
            self._write_error(status, message)
            self.close()

    def _stop_reading(self) -> None:
        """Read nothing more: answer what was received, then close."""
        self.eof = True
        self._pause_reading()

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def _maybe_resume(self) -> None:
        """Read again once the app has caught up, unless reading stopped for good."""
        if (
            self.read_paused
            and not self.eof
            and not self.closed
            and self.buffered <= _HIGH_WATER // 2
            and len(self.pipeline) <= _MAX_PIPELINE
            and self.transport is not None
        ):
            self.read_paused = False
            self.last_read = self.loop.time()
            self.transport.resume_reading()

    def _head_timeout(self) -> float:
        return _DRAIN_READ_S if self.hub.draining else self.limits.header_timeout_s

    def _deadline(self) -> tuple[str, float] | None:
        """What this connection waits for from the client, and until when."""
        if self.closed:
            return None
        if self.read_paused and not self.eof:
            return None  # we stopped reading: the client waits for us
        if self.in_head:
            return "header_timeout", self.head_started + self._head_timeout()
        if self.parsing is not None:
            wait = _DRAIN_READ_S if self.hub.draining else self.limits.body_timeout_s
            return "body_timeout", self.last_read + wait
        if self.pipeline or self.terminal is not None:
            return None  # the client waits for us
        wait = self.limits.keepalive_timeout_s if self.served else self.limits.header_timeout_s
        if self.hub.draining:  # a new connection still gets to send its one request
            wait = 0.0 if self.served else min(wait, _DRAIN_READ_S)
        return "idle_timeout", self.last_done + wait

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            if self.timer_at <= when:
                return
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        due = self._deadline()
        if due is None:
            return
        event, when = due
        if self.loop.time() < when:
            self._arm(when)
            return
        if event == "idle_timeout":
            self.hub.metrics.events[event].inc()
            self.close()
        elif event == "header_timeout":
            self._fail(
                408,
                f"the request head did not arrive within {self._head_timeout():g} s "
                "(INF3KIT_HEADER_TIMEOUT_SECONDS)",
                event,
            )
        else:
            wait = _DRAIN_READ_S if self.hub.draining else self.limits.body_timeout_s
            self._fail(
                408,
                f"no request body bytes for {wait:g} s (INF3KIT_BODY_TIMEOUT_SECONDS); "
                "send the body without pauses",
                event,
            )
        if not self.closed and self.timer is None:
            due = self._deadline()
            if due is not None:
                self._arm(due[1])

    @property
    def idle(self) -> bool:
        """Between requests: nothing received that is unanswered, nothing being read."""
        return not self.pipeline and not self.in_head and self.parsing is None

    def on_drain(self) -> None:
        if self.idle and self.served:
            self.close()
        else:
            due = self._deadline()
            if due is not None:
                self._arm(min(due[1], self.loop.time() + _DRAIN_READ_S))

    def shut_down(self) -> None:
        """End of the grace: a request without an answer gets a 503; then the socket closes."""
        request = self.pipeline[0] if self.pipeline else None
        if request is not None and not request.started and not self.closed:
            request.done = True
            self._write_error(503, "the server shut down before this request was answered")
        self.close()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.hub.forget(self)
            self.transport.close()
