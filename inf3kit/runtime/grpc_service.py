"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), beside HTTP.

``tritonclient.grpc`` (and KServe's clients) work unchanged: liveness, readiness, server and
model metadata, the Triton model config, and ``ModelInfer`` with tensors in
``raw_input_contents`` (what tritonclient sends) or typed ``contents``. A request is turned into
the HTTP binary-tensor form and parsed by :mod:`inf3kit.runtime.protocol`, so both protocols
check names, datatypes, shapes and sizes identically, then share the app's batcher, in-flight
count, draining and metrics. Needs ``grpcio`` (``pip install inf3kit[grpc]``); started only when
``INF3KIT_GRPC_PORT`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np

from inf3kit.runtime.app import InferenceApp, State
from inf3kit.runtime.datatypes import NUMPY_DTYPES
from inf3kit.runtime.grpc_proto import KIND_MODEL, SERVICE, TRITON_DATA_TYPES, M
from inf3kit.runtime.metrics import FAILURE_REASONS
from inf3kit.runtime.protocol import InferRequest, RequestError, Schema, bad, parse_tensors

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# datatype -> the InferTensorContents field that carries it (Triton's table)
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _contents_bytes(tensor: Any) -> bytes:
    """Typed ``contents`` of one input as raw little-endian bytes, range-checked."""
    field = _CONTENTS.get(tensor.datatype)
    if field is None:
        if tensor.datatype in NUMPY_DTYPES:
            raise bad(
                f"input {tensor.name!r}: {tensor.datatype} has no typed contents field; send it "
                "in raw_input_contents"
            )
        return b""  # an unknown datatype: the schema check names it
    values = getattr(tensor.contents, field)
    dtype = NUMPY_DTYPES[tensor.datatype]
    if dtype.kind in "iu" and dtype.itemsize < 4 and len(values):
        wide = np.asarray(values, dtype=np.int64)
        info = np.iinfo(dtype)
        outside = np.flatnonzero((wide < info.min) | (wide > info.max))
        if outside.size:
            position = int(outside[0])
            raise bad(
                f"input {tensor.name!r}: value {int(wide[position])} at position {position} is "
                f"outside the {tensor.datatype} range {info.min}..{info.max}"
            )
    return np.asarray(values, dtype=dtype).tobytes()


def to_infer_request(schema: Schema, message: Any) -> InferRequest:
    """A ``ModelInferRequest`` as the app's parsed request (400 for anything malformed)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise bad(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; give "
            "one per input, in order"
        )
    inputs, blobs = [], []
    for i, tensor in enumerate(message.inputs):
        data = raw[i] if raw else _contents_bytes(tensor)
        params: dict[str, Any] = {"binary_data_size": len(data)}
        if "shared_memory_region" in tensor.parameters:
            params["shared_memory_region"] = True
        inputs.append(
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "parameters": params,
            }
        )
        blobs.append(data)
    request: dict[str, Any] = {"inputs": inputs}
    if message.id:
        request["id"] = message.id
    if message.outputs:
        request["outputs"] = [{"name": out.name} for out in message.outputs]
    if "timeout" in message.parameters:
        request["parameters"] = {"timeout": message.parameters["timeout"].int64_param}
    return parse_tensors(schema, request, memoryview(b"".join(blobs)))


def encode_response(schema: Schema, request: InferRequest, results: list[np.ndarray]) -> Any:
    manifest = schema.manifest
    response = M["ModelInferResponse"](
        model_name=manifest.name, model_version=manifest.version, id=request.id or ""
    )
    for out in request.outputs:
        spec = manifest.outputs[out.index]
        # The result's own shape: a shape-bucketed output is cut to the request's length.
        shape = list(results[out.index].shape)
        response.outputs.add(name=spec.name, datatype=spec.datatype, shape=shape)
        response.raw_output_contents.append(np.ascontiguousarray(results[out.index]).tobytes())
    return response


class InferenceService:
    """The RPCs; each reads the app's state, as the HTTP routes do."""

    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return M["ServerLiveResponse"](live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return M["ServerReadyResponse"](ready=self.app.serving())

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            self.app.check_model(request.name, request.version or None)
        except RequestError:
            return M["ModelReadyResponse"](ready=False)
        return M["ModelReadyResponse"](ready=self.app.serving())

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        from inf3kit.runtime import __version__

        return M["ServerMetadataResponse"](
            name="inf3kit",
            version=__version__,
            extensions=["binary_tensor_data", "model_configuration"],
        )

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        await self._check(request, context)
        meta = self.app.model_metadata()
        response = M["ModelMetadataResponse"](
            name=meta["name"], versions=meta["versions"], platform=meta["platform"]
        )
        for key in ("inputs", "outputs"):
            for t in meta[key]:
                getattr(response, key).add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        return response

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        await self._check(request, context)
        conf = self.app.model_config()
        response = M["ModelConfigResponse"]()
        config = response.config
        config.name, config.platform = conf["name"], conf["platform"]
        config.backend, config.max_batch_size = conf["backend"], conf["max_batch_size"]
        for key in ("input", "output"):
            for t in conf[key]:
                getattr(config, key).add(
                    name=t["name"], data_type=TRITON_DATA_TYPES[t["data_type"]], dims=t["dims"]
                )
        batching = conf["dynamic_batching"]
        config.dynamic_batching.preferred_batch_size.extend(batching["preferred_batch_size"])
        config.dynamic_batching.max_queue_delay_microseconds = batching[
            "max_queue_delay_microseconds"
        ]
        for group in conf["instance_group"]:
            config.instance_group.add(count=group["count"], kind=KIND_MODEL)
        for key, value in conf["parameters"].items():
            config.parameters[key].string_value = value["string_value"]
        return response

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        app = self.app
        started = time.perf_counter()
        try:
            if app.state is not State.READY:
                raise RequestError(503, app.not_ready_message())
            app.check_model(request.model_name, request.model_version or None)
            schema: Schema = app.schema  # type: ignore[assignment]  # check_model: loaded
            parsed = to_infer_request(schema, request)
            app.inflight += 1
            try:
                results = await app.compute(parsed)
            finally:
                app.inflight -= 1
        except RequestError as exc:
            app.count_failure(FAILURE_REASONS.get(exc.status, "internal"))
            await context.abort(_CODES.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)
        response = encode_response(schema, parsed, results)
        app.count_success(time.perf_counter() - started)
        return response

    async def _check(self, request: Any, context: Any) -> None:
        try:
            self.app.check_model(request.name, request.version or None)
        except RequestError as exc:
            await context.abort(_CODES.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)

    def handler(self) -> grpc.GenericRpcHandler:
        rpcs: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
            "ServerLive": self.ServerLive,
            "ServerReady": self.ServerReady,
            "ModelReady": self.ModelReady,
            "ServerMetadata": self.ServerMetadata,
            "ModelMetadata": self.ModelMetadata,
            "ModelConfig": self.ModelConfig,
            "ModelInfer": self.ModelInfer,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    rpc,
                    request_deserializer=M[f"{name}Request"].FromString,
                    response_serializer=M[f"{name}Response"].SerializeToString,
                )
                for name, rpc in rpcs.items()
            },
        )


async def start_grpc(app: InferenceApp, host: str, port: int) -> grpc.aio.Server:
    """Listen for gRPC on ``host:port`` (SO_REUSEPORT, so every server process can bind it)."""
    limit = app.settings.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1),
        ]
    )
    server.add_generic_rpc_handlers((InferenceService(app).handler(),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.add_insecure_port(address)
    await server.start()
    return server
