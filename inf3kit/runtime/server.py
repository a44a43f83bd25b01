"""Run the app on uvicorn with SageMaker-friendly shutdown.

uvicorn on SIGTERM stops accepting connections at once and re-raises the signal afterwards.
Behind SageMaker or a load balancer we want the opposite order: keep answering, fail readiness,
give new inference a 503, finish what is in flight, then exit 0, all within the grace period
(below SageMaker's 30 s kill).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from inf3kit.runtime.app import InferenceApp
from inf3kit.runtime.hardware import HostHardware
from inf3kit.runtime.settings import Settings

log = logging.getLogger("inf3kit.runtime")

EXIT_LOAD_FAILED = 3


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM/SIGINT drains instead of closing the listener."""

    def __init__(self, config: uvicorn.Config, app: InferenceApp) -> None:
        super().__init__(config)
        self.app = app
        self.exit_code = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None:
            if sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self.drain())

    async def drain(self) -> None:
        """Flip readiness, wait for in-flight requests, then let uvicorn close within the grace."""
        grace = self.app.settings.grace_seconds
        started = self._loop.time() if self._loop else 0.0
        self.app.begin_drain()
        # Keep ~1 s of the grace for uvicorn to flush responses and close connections.
        idle = await self.app.wait_idle(max(0.0, grace - 1.0))
        if not idle:
            log.warning("grace period ended with %d request(s) in flight", self.app.inflight)
        elapsed = (self._loop.time() if self._loop else 0.0) - started
        self.config.timeout_graceful_shutdown = max(1, int(grace - elapsed))
        self.should_exit = True

    def fail(self, message: str) -> None:
        """The model cannot load: exit non-zero so the orchestrator sees it and restarts/alerts."""
        self.exit_code = EXIT_LOAD_FAILED
        self.should_exit = True


def build_server(
    settings: Settings, host: HostHardware | None = None
) -> tuple[DrainingServer, InferenceApp]:
    holder: list[DrainingServer] = []
    app = InferenceApp(settings, host=host, on_fatal=lambda msg: holder[0].fail(msg))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http="httptools" if _has("httptools") else "h11",
        lifespan="on",
        access_log=settings.access_log,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.grace_seconds) or 1,
        timeout_keep_alive=75,
        backlog=4096,
    )
    server = DrainingServer(config, app)
    holder.append(server)
    return server, app


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(settings: Settings, host: HostHardware | None = None) -> int:
    """Serve until drained or a load failure; return the process exit code."""
    server, _ = build_server(settings, host)
    log.info(
        "listening on http://%s:%d (model: %s)", settings.host, settings.port, settings.model_dir
    )
    server.run()
    return server.exit_code
