"""Serve the app on our HTTP/1.1 protocol with SageMaker-friendly shutdown.

Behind SageMaker or a load balancer the shutdown order matters: on SIGTERM keep answering,
fail readiness, give new inference a 503 with ``Connection: close``, close idle keep-alive
connections, finish what is in flight, then exit 0, all within the grace period (below
SageMaker's 30 s kill). A client that stops sending mid-request is cut off after a second of
silence instead of holding the drain.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from inf3kit.runtime.app import InferenceApp
from inf3kit.runtime.hardware import HostHardware, probe_hardware
from inf3kit.runtime.http1 import Hub, Limits
from inf3kit.runtime.metrics import ConnectionMetrics
from inf3kit.runtime.settings import Settings

log = logging.getLogger("inf3kit.runtime")

EXIT_LOAD_FAILED = 3
_CLOSE_S = 1.0  # of the grace, kept for closing connections and stopping the workers


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_s=settings.header_timeout_seconds,
        body_timeout_s=settings.body_timeout_seconds,
        keepalive_timeout_s=settings.keepalive_timeout_seconds,
        max_connections=settings.max_connections,
    )


class Lifespan:
    """Drive the app's ASGI lifespan: startup before listening, shutdown after closing."""

    def __init__(self, app: Callable[..., Coroutine[Any, Any, None]]) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        await self._outbox.put(message)

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.get_running_loop().create_task(
            self._app(scope, self._inbox.get, self._send)
        )
        await self._inbox.put({"type": "lifespan.startup"})
        await self._outbox.get()

    async def shutdown(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        if self._task is not None:
            await self._task


class Server:
    """One serving process: listen, answer, drain on the first SIGTERM/SIGINT, exit."""

    def __init__(self, settings: Settings, app: InferenceApp) -> None:
        self.settings = settings
        self.app = app
        self.exit_code = 0
        self.should_exit = False
        self._stop: asyncio.Event | None = None
        self._draining = False
        self.tick: Callable[[], None] | None = None  # run every 0.1 s (multi-process upkeep)
        metrics = ConnectionMetrics(app.registry)
        self.hub = Hub(app, limits_from(settings), metrics, access_log=settings.access_log)

    def fail(self, message: str) -> None:
        """The model cannot load: exit non-zero so the orchestrator sees it and restarts/alerts."""
        self.exit_code = EXIT_LOAD_FAILED
        self._request_stop()

    def _request_stop(self) -> None:
        self.should_exit = True
        if self._stop is not None:
            self._stop.set()

    def _on_signal(self) -> None:
        if self._draining:  # a second signal: stop waiting
            self._request_stop()
            return
        self.begin_shutdown()

    def begin_shutdown(self) -> None:
        """Start draining (what the first SIGTERM does)."""
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _tick(self, tick: Callable[[], None]) -> None:
        while True:
            tick()
            await asyncio.sleep(0.1)

    async def _drain(self) -> None:
        """Flip readiness, wait for what is in flight, then stop, all within the grace."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, self.settings.grace_seconds - _CLOSE_S)
        self.app.begin_drain()
        self.hub.begin_drain()
        while (self.hub.busy() or self.app.inflight) and loop.time() < deadline:
            if self.should_exit:
                return
            await asyncio.sleep(0.01)
        if self.hub.busy() or self.app.inflight:
            log.warning("grace period ended with %d request(s) in flight", max(self.hub.busy(), 1))
        self._request_stop()

    async def serve(self, sock: socket.socket | None = None) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.should_exit:
            self._stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        _raise_file_limit(self.settings.max_connections)
        lifespan = Lifespan(self.app)
        await lifespan.startup()
        if sock is None:
            sock = bind(self.settings.host, self.settings.port)
        listener = await loop.create_server(self.hub.factory, sock=sock, backlog=4096)
        ticker = None if self.tick is None else loop.create_task(self._tick(self.tick))
        try:
            await self._stop.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
            listener.close()
            self.hub.close_all()
            await asyncio.sleep(0)  # let cancelled requests unwind
            await lifespan.shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return self.exit_code


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _raise_file_limit(connections: int) -> None:
    """Lift the soft descriptor limit towards the hard one so the connection limit can be met."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256  # the overflow band, model files, threads' descriptors
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log.warning(
                "file descriptor limit %d is below INF3KIT_MAX_CONNECTIONS=%d plus 256; raise "
                "the container's nofile limit or lower the setting",
                new,
                connections,
            )


def build_server(
    settings: Settings, host: HostHardware | None = None
) -> tuple[Server, InferenceApp]:
    holder: list[Server] = []
    app = InferenceApp(settings, host=host, on_fatal=lambda msg: holder[0].fail(msg))
    server = Server(settings, app)
    holder.append(server)
    return server, app


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the ``serve`` extra has it), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings, host: HostHardware | None = None) -> int:
    """Serve until drained or a load failure; return the process exit code.

    With more than one process (``INF3KIT_PROCESSES``, or chosen from the device cores) the
    supervisor forks them; otherwise this process serves.
    """
    from inf3kit.runtime import supervisor

    hardware = host or probe_hardware(settings.target, settings.neuron_cores)
    count = supervisor.process_count(settings, hardware)
    if count > 1:
        return supervisor.Supervisor(settings, supervisor.plan(settings, hardware, count)).run()
    server, _ = build_server(settings, host)
    log.info(
        "listening on http://%s:%d (model: %s)", settings.host, settings.port, settings.model_dir
    )
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(server.serve())
    finally:
        loop.close()
