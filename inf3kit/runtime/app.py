"""The ASGI application: SageMaker and Open Inference Protocol v2 routes over one batcher.

A hand-written router rather than a framework: the app has a dozen fixed routes, and the
inference path (read body with a size cap, parse, queue, encode) is short enough that every
layer it skips is throughput on a host whose CPU also feeds the accelerators. Loading runs in
a background thread started from the lifespan, so liveness answers immediately.
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, generate_latest

from inf3kit.runtime.batcher import Batcher, DeadlineExceeded, QueueFull
from inf3kit.runtime.buckets import ShapeBuckets
from inf3kit.runtime.codec import (
    OCTET,
    answer_type,
    check_content_type,
    encode_response,
    media_type,
    parse_body,
)
from inf3kit.runtime.datatypes import NUMPY_DTYPES, triton_type
from inf3kit.runtime.hardware import HostHardware
from inf3kit.runtime.loader import LoadedModel, load_model
from inf3kit.runtime.manifest import TensorSpec
from inf3kit.runtime.metrics import FAILURE_REASONS, Metrics
from inf3kit.runtime.offload import OFFLOAD_BODY_BYTES, Offloader
from inf3kit.runtime.protocol import InferRequest, RequestError, Schema, request_dims
from inf3kit.runtime.settings import Settings

log = logging.getLogger("inf3kit.runtime")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
_WORKER_JOIN_S = 5.0  # longest shutdown waits for busy workers, all together, within the grace


class State(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


class InferenceApp:
    """Serves one model bundle; ``state`` moves LOADING -> READY -> DRAINING (or FAILED)."""

    def __init__(
        self,
        settings: Settings,
        host: HostHardware | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.state = State.LOADING
        self.error: str | None = None
        self.inflight = 0
        self._host = host
        self._on_fatal = on_fatal
        self._model: LoadedModel | None = None
        self._schema: Schema | None = None
        self._batcher: Batcher | None = None
        self._offloader: Offloader | None = None
        self._metrics: Metrics | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._unpack_dir: Path | None = None
        self._drain_started: float | None = None
        self._timeout_s = settings.request_timeout_ms / 1000
        self.registry = CollectorRegistry(auto_describe=True)
        self.render_metrics: Callable[[], bytes] = lambda: generate_latest(self.registry)
        # Set by a multi-process server: why the other processes are not all ready, or None.
        self.peers_not_ready: Callable[[], str | None] = lambda: None
        self._routes: dict[str, Callable[[], tuple[int, bytes, bytes]]] = {
            "/ping": self._ping,
            "/v2/health/ready": self._ready,
            "/v2/health/live": lambda: (200, b"", JSON),
            "/metrics": self._render_metrics,
            "/v2": self._server_metadata,
            "/v2/repository/index": self._repository_index,
        }

    # --- lifecycle -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._load_task = asyncio.get_running_loop().create_task(self._load())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _load(self) -> None:
        """Load the model and build everything that serves it; any failure is fatal (exit 3)."""
        try:
            if Path(self.settings.model_dir).is_file():
                # The unpacked copy of a .tar.gz belongs to this app: removed on failure, at
                # lifespan shutdown, and at process exit should shutdown never run.
                self._unpack_dir = Path(tempfile.mkdtemp(prefix="inf3kit-bundle-"))
                atexit.register(self._remove_unpacked)
            model = await asyncio.to_thread(load_model, self.settings, self._host, self._unpack_dir)
        except Exception as exc:
            self._fail(f"model failed to load: {exc}")
            return
        try:
            self._start(model)
        except Exception as exc:
            log.exception("could not start serving the loaded model")
            self._fail(f"model failed to start: {type(exc).__name__}: {exc}")

    def _start(self, model: LoadedModel) -> None:
        manifest, batch = model.manifest, model.variant.batch_size
        self._model = model
        self._metrics = Metrics(manifest.name, self.registry)
        self._metrics.inflight.set_function(lambda: self.inflight)
        self._metrics.workers.set(len(model.backends))
        self._schema = Schema(manifest, batch)
        shapes = [(s.shape, NUMPY_DTYPES[s.datatype]) for s in manifest.inputs]
        self._batcher = Batcher(
            model.backends,
            shapes,
            batch,
            self.settings.max_delay_ms / 1000,
            self.settings.queue_size,
            self._metrics,
            buckets=ShapeBuckets(manifest, model.buckets) if model.buckets else None,
        )
        self._batcher.start()
        self._offloader = Offloader(manifest, batch)
        if self.state is State.LOADING:
            self.state = State.READY
            self._metrics.ready.set(1)
            log.info("ready: %s", manifest.name)

    def sync_gauges(self) -> None:
        """Copy the in-flight count into its gauge (multi-process metrics cannot call back)."""
        if self._metrics is not None:
            self._metrics.inflight.set(self.inflight)

    def _fail(self, error: str) -> None:
        """The fatal path: never ready, say why, free the bundle copy, ask the server to exit."""
        self.state = State.FAILED
        self.error = error
        if self._metrics is not None:
            self._metrics.ready.set(0)
        log.error("%s", error)
        self._remove_unpacked()
        if self._on_fatal is not None:
            self._on_fatal(error)

    def _remove_unpacked(self) -> None:
        if self._unpack_dir is not None:
            shutil.rmtree(self._unpack_dir, ignore_errors=True)

    def begin_drain(self) -> None:
        """Stop taking new inference work: readiness fails and new requests get 503."""
        if self._drain_started is None:
            self._drain_started = time.monotonic()
        if self.state in (State.LOADING, State.READY):
            self.state = State.DRAINING
            if self._metrics is not None:
                self._metrics.ready.set(0)
            log.info("draining: %d request(s) in flight", self.inflight)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no inference request is in flight; False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.inflight == 0

    def _join_budget(self) -> float:
        """Seconds left to wait for the workers: what remains of the grace period, at most 5."""
        grace = self.settings.grace_seconds
        if self._drain_started is not None:
            grace -= time.monotonic() - self._drain_started
        return max(0.0, min(_WORKER_JOIN_S, grace))

    async def close(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self._offloader is not None:
            self._offloader.close()
        if self._batcher is not None:
            await self._batcher.stop(self._join_budget())
        self._remove_unpacked()
        atexit.unregister(self._remove_unpacked)

    # --- HTTP ------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        try:
            if path == "/invocations":
                _check_method(method, "POST", path)
                await self._infer(scope, receive, send, sagemaker=True)
            elif path.startswith("/v2/models/"):
                await self._model_route(scope, receive, send, method, path)
            else:
                await self._simple_route(send, method, path)
        except RequestError as exc:
            self.count_failure(FAILURE_REASONS.get(exc.status, "internal"))
            extra = [(b"allow", exc.allow)] if isinstance(exc, MethodNotAllowed) else None
            await _send(send, exc.status, _error_body(exc.message), JSON, extra)
        except Exception:
            self.count_failure("internal")
            log.exception("unhandled error for %s %s", method, path)
            await _send_error(send, 500, "internal server error; see the server log")

    def count_failure(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.failure[reason].inc()

    def count_success(self, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.success.inc()
            self._metrics.request_seconds.observe(seconds)

    async def _simple_route(self, send: Send, method: str, path: str) -> None:
        handler = self._routes.get(path)
        if handler is None:
            raise RequestError(404, f"no route {path!r}")
        _check_method(method, "POST" if path == "/v2/repository/index" else "GET", path)
        status, body, content_type = handler()
        await _send(send, status, body, content_type)

    def not_ready_message(self) -> str:
        if self.state is State.READY:
            return self.peers_not_ready() or "ready"
        if self.state is State.FAILED:
            return self.error or "model failed to load"
        if self.state is State.DRAINING:
            return "the server is shutting down; retry on another instance"
        return "the model is loading"

    def serving(self) -> bool:
        return self.state is State.READY and self.peers_not_ready() is None

    def _ping(self) -> tuple[int, bytes, bytes]:
        if self.serving():
            return 200, b'{"status":"ready"}', JSON
        return 503, _error_body(self.not_ready_message()), JSON

    def _ready(self) -> tuple[int, bytes, bytes]:
        if self.serving():
            return 200, b"", JSON
        return 503, _error_body(self.not_ready_message()), JSON

    def _render_metrics(self) -> tuple[int, bytes, bytes]:
        return 200, self.render_metrics(), b"text/plain; version=0.0.4; charset=utf-8"

    def _server_metadata(self) -> tuple[int, bytes, bytes]:
        from inf3kit.runtime import __version__

        extensions = ["binary_tensor_data", "model_configuration", "model_repository"]
        body = {"name": "inf3kit", "version": __version__, "extensions": extensions}
        return 200, orjson.dumps(body), JSON

    def _repository_index(self) -> tuple[int, bytes, bytes]:
        if self._schema is None:
            return 200, b"[]", JSON
        m = self._schema.manifest
        state = "READY" if self.state is State.READY else "UNAVAILABLE"
        return 200, orjson.dumps([{"name": m.name, "version": m.version, "state": state}]), JSON

    async def _model_route(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        parts = path[len("/v2/models/") :].split("/")
        name, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        action = "/".join(rest)
        if action not in _MODEL_ACTIONS or version == "":
            raise RequestError(404, f"no route {path!r}")
        _check_method(method, _MODEL_ACTIONS[action], path)
        self.check_model(name, version)
        if action == "infer":
            await self._infer(scope, receive, send, sagemaker=False)
        elif action == "":
            await _send(send, 200, orjson.dumps(self.model_metadata()))
        elif action == "ready":
            status, body, _ = self._ready()
            await _send(send, status, body)
        else:
            await _send(send, 200, orjson.dumps(self.model_config()))

    @property
    def schema(self) -> Schema | None:
        """The loaded model's request schema; None until it is loaded."""
        return self._schema

    def check_model(self, name: str, version: str | None) -> None:
        """503 before the model is loaded, 404 for a model or version this server lacks."""
        if self._schema is None:
            raise RequestError(503, self.not_ready_message())
        manifest = self._schema.manifest
        if name != manifest.name or (version not in (None, manifest.version)):
            shown = name if version is None else f"{name}/versions/{version}"
            raise RequestError(
                404,
                f"unknown model {shown!r}; this server serves {manifest.name!r} "
                f"version {manifest.version!r}",
            )

    def model_metadata(self) -> dict[str, Any]:
        assert self._schema is not None
        m = self._schema.manifest

        def tensors(specs: Any) -> list[dict[str, Any]]:
            return [
                {"name": s.name, "datatype": s.datatype, "shape": [-1, *_dims(s)]} for s in specs
            ]

        return {
            "name": m.name,
            "versions": [m.version],
            "platform": "pytorch_libtorch",
            "inputs": tensors(m.inputs),
            "outputs": tensors(m.outputs),
        }

    def model_config(self) -> dict[str, Any]:
        assert self._schema is not None and self._model is not None
        m = self._schema.manifest

        def tensors(specs: Any) -> list[dict[str, Any]]:
            return [
                {"name": s.name, "data_type": triton_type(s.datatype), "dims": _dims(s)}
                for s in specs
            ]

        variant = self._model.variant
        return {
            "name": m.name,
            "platform": "pytorch_libtorch",
            "backend": "pytorch",
            "max_batch_size": self._schema.max_batch_size,
            "input": tensors(m.inputs),
            "output": tensors(m.outputs),
            "dynamic_batching": {
                "preferred_batch_size": [variant.batch_size],
                "max_queue_delay_microseconds": int(self.settings.max_delay_ms * 1000),
            },
            "instance_group": [{"count": len(self._model.backends), "kind": "KIND_MODEL"}],
            "parameters": {
                "inf3kit_target": {"string_value": variant.target},
                "inf3kit_variant_file": {"string_value": variant.file},
            },
        }

    # --- inference -------------------------------------------------------------------------

    async def _infer(self, scope: Scope, receive: Receive, send: Send, *, sagemaker: bool) -> None:
        started = time.perf_counter()
        metrics = self._metrics
        if self.state is not State.READY or metrics is None:
            raise RequestError(503, self.not_ready_message())
        self.inflight += 1  # also the inflight gauge (set_function in _start)
        try:
            body, content, content_type = await self._handle(scope, receive, sagemaker)
        finally:
            self.inflight -= 1
        headers = [] if content is None else [(b"inference-header-content-length", b"%d" % content)]
        await _send(send, 200, body, content_type.encode(), headers)
        metrics.success.inc()
        metrics.request_seconds.observe(time.perf_counter() - started)

    async def _handle(
        self, scope: Scope, receive: Receive, sagemaker: bool
    ) -> tuple[bytes, int | None, str]:
        assert self._schema is not None and self._batcher is not None
        content_type = length = header_length = encoding = accept = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                length = value
            elif key == b"inference-header-content-length":
                header_length = value
            elif key == b"content-encoding":
                encoding = value.strip().lower()
            elif key == b"accept":
                accept = value
        if encoding not in (None, b"identity"):
            raise RequestError(
                415,
                f"Content-Encoding {encoding.decode(errors='replace')!r} is not supported; "
                "send the body uncompressed",
            )
        media = media_type(content_type)
        check_content_type(media, sagemaker)
        answer = answer_type(accept, media, sagemaker)
        header_len = _int_header(header_length, "Inference-Header-Content-Length")
        if media == OCTET and header_len is None:
            raise RequestError(
                400, "application/octet-stream needs an Inference-Header-Content-Length header"
            )
        body = await self._read_body(receive, _int_header(length, "Content-Length"))
        schema, offload = self._schema, self._offloader
        if len(body) < OFFLOAD_BODY_BYTES or offload is None:
            offload = None
            request = parse_body(schema, body, media, header_len, sagemaker)
        else:
            assert self._metrics is not None
            self._metrics.offloaded.inc()
            request = await offload.parse(body, media, header_len, sagemaker)
        results = await self.compute(request)
        if offload is not None:
            return await offload.encode(request, results, answer)
        return encode_response(schema, request, results, answer)

    async def compute(self, request: InferRequest) -> list[np.ndarray]:
        """Queue a parsed request within its deadline (HTTP and gRPC share this)."""
        assert self._batcher is not None and self._schema is not None
        timeout = self._timeout_s
        if request.timeout_s is not None:
            timeout = min(timeout, request.timeout_s)
        schema = self._schema
        dims = request_dims(schema, request.arrays) if schema.manifest.dim_names else None
        try:
            results = await self._batcher.infer(request.arrays, request.rows, timeout, dims)
        except QueueFull:
            raise RequestError(
                429,
                f"the request queue is full ({self.settings.queue_size} requests waiting); "
                "retry with backoff",
            ) from None
        except DeadlineExceeded:
            raise RequestError(
                504, f"no result within the {timeout * 1000:g} ms deadline; the request was dropped"
            ) from None
        return results

    async def _read_body(self, receive: Receive, declared: int | None) -> bytes:
        limit = self.settings.max_body_bytes
        if declared is not None and declared > limit:
            raise RequestError(413, f"body of {declared} bytes exceeds the {limit} byte limit")
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"body exceeds the {limit} byte limit")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_MODEL_ACTIONS = {"": "GET", "ready": "GET", "config": "GET", "infer": "POST"}
"""The routes under ``/v2/models/{m}[/versions/{v}]/`` and the method each accepts."""


class MethodNotAllowed(RequestError):
    """A 405 that carries the ``Allow`` header value (RFC 9110 requires it)."""

    def __init__(self, path: str, method: str, allowed: str) -> None:
        super().__init__(405, f"{path} accepts {allowed}, not {method}")
        self.allow = b"GET, HEAD" if allowed == "GET" else allowed.encode()


def _check_method(method: str, allowed: str, path: str) -> None:
    """Accept ``allowed``, and HEAD where GET is allowed; anything else is a 405."""
    if method != allowed and not (method == "HEAD" and allowed == "GET"):
        raise MethodNotAllowed(path, method, allowed)


def _dims(spec: TensorSpec) -> list[int]:
    """A tensor's shape for clients, without the batch: a bucketed axis is -1 (variable)."""
    return [-1 if a in spec.dynamic else d for a, d in enumerate(spec.shape)]


def _int_header(value: bytes | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise RequestError(400, f"{name} must be an integer, got {value[:40]!r}") from None


def _error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if extra:
        headers.extend(extra)
    if status in (429, 503):
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, message: str) -> None:
    await _send(send, status, _error_body(message))
