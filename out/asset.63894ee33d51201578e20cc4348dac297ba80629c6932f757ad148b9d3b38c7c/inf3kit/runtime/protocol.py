"""Wire formats: Open Inference Protocol v2 (JSON and binary tensors) and SageMaker JSON.

Validation here is per tensor, never per element: names, datatypes, shapes and byte counts
are checked against the manifest, then data becomes a numpy array with one ``frombuffer`` or
``asarray`` call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from inf3kit.runtime.datatypes import NUMPY_DTYPES, ValueProblem, from_json_data, to_json_data
from inf3kit.runtime.manifest import Manifest, TensorSpec


class RequestError(Exception):
    """A client error: ``status`` and a message that says what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> RequestError:
    return RequestError(400, message)


@dataclass(frozen=True)
class OutputRequest:
    index: int
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    """A parsed request: arrays in manifest input order, the batch rows and how to answer."""

    arrays: list[np.ndarray]
    rows: int
    id: str | None
    outputs: list[OutputRequest]
    timeout_s: float | None
    style: str = "oip"


class Schema:
    """Lookup tables derived from the manifest once, for the request hot path."""

    def __init__(self, manifest: Manifest, max_batch_size: int) -> None:
        self.manifest = manifest
        self.max_batch_size = max_batch_size
        self.inputs = {s.name: (i, s) for i, s in enumerate(manifest.inputs)}
        self.outputs = {s.name: (i, s) for i, s in enumerate(manifest.outputs)}
        self.input_names = [s.name for s in manifest.inputs]
        self.output_names = [s.name for s in manifest.outputs]


def _loads(data: bytes | memoryview) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise bad(
            f"request body is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None


def _rows(schema: Schema, name: str, shape: Sequence[int], spec: TensorSpec) -> int:
    if len(shape) != len(spec.shape) + 1 or tuple(shape[1:]) != spec.shape:
        raise bad(
            f"input {name!r}: shape {list(shape)} does not match the model's "
            f"{[-1, *spec.shape]} (batch dimension first)"
        )
    rows = shape[0]
    if rows < 1:
        # Above the compiled batch size is fine: the batcher splits it (the body limit bounds it).
        raise bad(f"input {name!r}: batch dimension {rows} must be at least 1")
    return rows


def _may_hold_bools(json_text: bytes | memoryview) -> bool:
    """Whether a JSON text has a ``true``/``false`` token (else no per-value boolean check)."""
    text = json_text if isinstance(json_text, bytes) else bytes(json_text)
    return b"true" in text or b"false" in text


def _tensor(
    schema: Schema, item: Any, binary: memoryview, offset: int, bools: bool
) -> tuple[int, np.ndarray, int, int]:
    """Parse one input tensor; return (index, array, rows, new binary offset)."""
    if not isinstance(item, dict):
        raise bad("each entry of 'inputs' must be an object with name, datatype, shape, data")
    name = item.get("name")
    if not isinstance(name, str):
        raise bad("an input has no 'name' string")
    found = schema.inputs.get(name)
    if found is None:
        raise bad(f"unknown input {name!r}; the model's inputs are {schema.input_names}")
    index, spec = found
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise bad(
            f"input {name!r}: datatype {datatype!r} does not match the model's {spec.datatype!r}"
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int for d in shape):
        raise bad(f"input {name!r}: 'shape' must be a list of integers")
    rows = _rows(schema, name, shape, spec)
    count = math.prod(shape)
    dtype = NUMPY_DTYPES[datatype]
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise bad(f"input {name!r}: 'parameters' must be an object")
    if "shared_memory_region" in params:
        raise bad(f"input {name!r}: shared memory is not supported; send the data in the body")
    size = params.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size != count * dtype.itemsize:
            raise bad(
                f"input {name!r}: binary_data_size {size!r} does not match shape {shape} of "
                f"{datatype} ({count * dtype.itemsize} bytes)"
            )
        if offset + size > len(binary):
            raise bad(
                f"input {name!r}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - offset} bytes left)"
            )
        array = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return index, array.reshape(shape), rows, offset + size
    if "data" not in item:
        raise bad(f"input {name!r}: no 'data' and no binary_data_size parameter")
    data = item["data"]
    if isinstance(data, list) and len(data) not in (count, shape[0]):
        # Checked before converting: a wrong count costs nothing however large the list.
        raise bad(f"input {name!r}: 'data' has {len(data)} elements, shape {shape} needs {count}")
    try:
        array = from_json_data(data, datatype, bools_possible=bools)
    except ValueProblem as exc:
        raise bad(f"input {name!r}: 'data' {exc}") from None
    except (ValueError, TypeError):
        raise bad(f"input {name!r}: 'data' is not a (nested) list of {datatype} values") from None
    if array.size != count:
        raise bad(f"input {name!r}: 'data' has {array.size} elements, shape {shape} needs {count}")
    return index, array.reshape(shape), rows, offset


def _outputs(schema: Schema, request: dict[str, Any], binary_default: bool) -> list[OutputRequest]:
    wanted = request.get("outputs")
    if wanted is None:
        return [OutputRequest(i, binary_default) for i in range(len(schema.output_names))]
    if not isinstance(wanted, list):
        raise bad("'outputs' must be a list of objects with a 'name'")
    result = []
    for out in wanted:
        name = out.get("name") if isinstance(out, dict) else None
        found = schema.outputs.get(name) if isinstance(name, str) else None
        if found is None:
            raise bad(f"unknown output {name!r}; the model's outputs are {schema.output_names}")
        params = out.get("parameters") or {}
        if not isinstance(params, dict):
            raise bad(f"output {name!r}: 'parameters' must be an object")
        if "shared_memory_region" in params:
            raise bad(f"output {name!r}: shared memory is not supported")
        result.append(OutputRequest(found[0], bool(params.get("binary_data", binary_default))))
    return result


def parse_oip(schema: Schema, body: bytes, header_length: int | None) -> InferRequest:
    """Parse an OIP v2 infer request (JSON, or JSON header + binary tensors)."""
    header: bytes | memoryview
    if header_length is None:
        header, binary = body, memoryview(b"")
    else:
        if not 0 < header_length <= len(body):
            raise bad(
                f"Inference-Header-Content-Length {header_length} is outside the body "
                f"length 1..{len(body)}"
            )
        view = memoryview(body)
        header, binary = view[:header_length], view[header_length:]
    request = _loads(header)
    if not isinstance(request, dict):
        raise bad("the request must be a JSON object with an 'inputs' list")
    return _parse_request(schema, request, binary, _may_hold_bools(header))


def _parse_request(
    schema: Schema, request: dict[str, Any], binary: memoryview, bools: bool
) -> InferRequest:
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("the request needs a non-empty 'inputs' list")
    params = request.get("parameters") or {}
    if not isinstance(params, dict):
        raise bad("'parameters' must be an object")
    arrays: list[np.ndarray | None] = [None] * len(schema.input_names)
    offset = 0
    rows_seen: int | None = None
    for item in inputs:
        index, array, rows, offset = _tensor(schema, item, binary, offset, bools)
        if arrays[index] is not None:
            raise bad(f"input {schema.input_names[index]!r} is given more than once")
        if rows_seen is not None and rows != rows_seen:
            raise bad(f"inputs disagree on the batch dimension ({rows_seen} vs {rows})")
        arrays[index], rows_seen = array, rows
    missing = [n for n, a in zip(schema.input_names, arrays, strict=True) if a is None]
    if missing:
        raise bad(f"missing input(s) {missing}; the model needs {schema.input_names}")
    if offset != len(binary):
        raise bad(f"{len(binary) - offset} trailing byte(s) after the binary tensors")
    timeout = params.get("timeout")
    if timeout is not None and (type(timeout) is not int or timeout <= 0):
        raise bad("parameter 'timeout' must be a positive integer number of microseconds")
    request_id = request.get("id")
    return InferRequest(
        arrays=arrays,  # type: ignore[arg-type]
        rows=rows_seen or 0,
        id=request_id if isinstance(request_id, str) else None,
        outputs=_outputs(schema, request, bool(params.get("binary_data_output", False))),
        timeout_s=None if timeout is None else timeout / 1e6,
    )


def parse_sagemaker(schema: Schema, body: bytes) -> InferRequest:
    """Parse ``/invocations`` JSON: an OIP request, ``{"instances": [...]}`` or a bare list."""
    request = _loads(body)
    if isinstance(request, dict) and "inputs" in request:
        return _parse_request(schema, request, memoryview(b""), _may_hold_bools(body))
    instances = request.get("instances") if isinstance(request, dict) else request
    if not isinstance(instances, list) or not instances:
        raise bad(
            'expected {"inputs": [...]} (Open Inference Protocol), {"instances": [...]} '
            "or a non-empty JSON list of instances"
        )
    rows = len(instances)
    by_name = isinstance(instances[0], dict)
    if not by_name and len(schema.input_names) != 1:
        raise bad(
            f"the model has inputs {schema.input_names}: give each instance as an object "
            "keyed by input name"
        )
    arrays = []
    bools = _may_hold_bools(body)
    for spec in schema.manifest.inputs:
        try:
            data = [inst[spec.name] for inst in instances] if by_name else instances
        except (KeyError, TypeError):
            raise bad(f"every instance needs input {spec.name!r}") from None
        try:
            array = from_json_data(data, spec.datatype, bools_possible=bools)
        except ValueProblem as exc:
            raise bad(f"instances for {spec.name!r}: {exc}") from None
        except (ValueError, TypeError):
            raise bad(
                f"instances for {spec.name!r} must each be a (nested) list of {spec.datatype} "
                f"values shaped {list(spec.shape)}"
            ) from None
        if array.size != rows * math.prod(spec.shape):
            raise bad(
                f"instances for {spec.name!r} must each have shape {list(spec.shape)} "
                f"({math.prod(spec.shape)} values)"
            )
        arrays.append(array.reshape(rows, *spec.shape))
    outputs = [OutputRequest(i, False) for i in range(len(schema.output_names))]
    return InferRequest(arrays, rows, None, outputs, None, style="instances")


def encode_oip(
    schema: Schema, request: InferRequest, results: Sequence[np.ndarray]
) -> tuple[bytes, int | None]:
    """Encode an OIP response; return (body, JSON header length if binary tensors follow)."""
    manifest = schema.manifest
    tensors = []
    blobs: list[bytes | memoryview] = []
    for out in request.outputs:
        spec = manifest.outputs[out.index]
        array = results[out.index]
        entry: dict[str, Any] = {
            "name": spec.name,
            "datatype": spec.datatype,
            "shape": [request.rows, *spec.shape],
        }
        if out.binary:
            # A view of the array's memory: the one copy is the final join.
            entry["parameters"] = {"binary_data_size": array.nbytes}
            blobs.append(np.ascontiguousarray(array).data.cast("B"))
        else:
            entry["data"] = to_json_data(array, spec.datatype)
        tensors.append(entry)
    response: dict[str, Any] = {"model_name": manifest.name, "model_version": manifest.version}
    if request.id is not None:
        response["id"] = request.id
    response["outputs"] = tensors
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def encode_predictions(schema: Schema, results: Sequence[np.ndarray]) -> bytes:
    """SageMaker convenience answer: ``{"predictions": [...]}``, one entry per instance."""
    specs = schema.manifest.outputs
    if len(specs) == 1:
        predictions: Any = to_json_data(results[0], specs[0].datatype).reshape(results[0].shape)
    else:
        rows = results[0].shape[0]
        predictions = [
            {
                s.name: to_json_data(r[i], s.datatype).reshape(s.shape)
                for s, r in zip(specs, results, strict=True)
            }
            for i in range(rows)
        ]
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
