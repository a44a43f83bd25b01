"""Wire formats: Open Inference Protocol v2 (JSON and binary tensors) and SageMaker JSON.

Validation here is per tensor, never per element: names, datatypes, shapes and byte counts
are checked against the manifest, then data becomes a numpy array with one ``frombuffer`` or
``asarray`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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

    def __reduce__(self) -> tuple[object, ...]:  # it crosses to and from the parsing process
        return (RequestError, (self.status, self.message))


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


def fits(spec: TensorSpec, shape: Sequence[int]) -> bool:
    """Whether ``shape`` (without the batch dimension) is one ``spec`` takes: static axes equal,
    bucketed axes from 1 up to the largest bucket."""
    return len(shape) == len(spec.shape) and all(
        (1 <= d <= s) if a in spec.dynamic else d == s
        for a, (d, s) in enumerate(zip(shape, spec.shape, strict=True))
    )


def _axes(spec: TensorSpec) -> list[str]:
    return [
        f"{spec.dynamic[a]}<={d}" if a in spec.dynamic else str(d) for a, d in enumerate(spec.shape)
    ]


def model_shape(spec: TensorSpec) -> str:
    """The shape a client must send, batch first; a bucketed axis shows its limit."""
    return "[" + ", ".join(["-1", *_axes(spec)]) + "]"


def request_dims(schema: Schema, arrays: Sequence[np.ndarray]) -> dict[str, int]:
    """The value of each bucketed dimension in a request; every input naming it must agree."""
    dims: dict[str, int] = {}
    for spec, array in zip(schema.manifest.inputs, arrays, strict=True):
        for axis, name in spec.dynamic.items():
            value = int(array.shape[axis + 1])
            if dims.setdefault(name, value) != value:
                raise bad(
                    f"inputs disagree on dimension {name!r}: {dims[name]} and {value} "
                    f"(input {spec.name!r})"
                )
    return dims


def _rows(schema: Schema, name: str, shape: Sequence[int], spec: TensorSpec) -> int:
    if not shape or not fits(spec, shape[1:]):
        raise bad(
            f"input {name!r}: shape {list(shape)} does not match the model's "
            f"{model_shape(spec)} (batch dimension first)"
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


def parse_tensors(schema: Schema, request: dict[str, Any], binary: memoryview) -> InferRequest:
    """An OIP request object whose tensors are all in ``binary`` (how gRPC requests arrive)."""
    return _parse_request(schema, request, binary, False)


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
    """Parse ``/invocations`` JSON: an OIP request, instances, or TF Serving's ``inputs`` forms.

    Accepted: ``{"inputs": [{"name": ...}]}`` (OIP), ``{"instances": [...]}``, a bare list of
    instances, ``{"inputs": [instance, ...]}`` (rows of a single input) and
    ``{"inputs": {"name": [rows...], ...}}`` (columns, one per input).
    """
    request = _loads(body)
    bools = _may_hold_bools(body)
    instances = request
    if isinstance(request, dict):
        if "inputs" not in request:
            instances = request.get("instances")
        elif isinstance(request["inputs"], dict):
            return _columns_request(schema, request["inputs"], bools)
        elif isinstance(request["inputs"], list) and any(
            isinstance(i, dict) for i in request["inputs"]
        ):
            return _parse_request(schema, request, memoryview(b""), bools)
        else:
            instances = request["inputs"]
    if not isinstance(instances, list) or not instances:
        raise bad(
            'expected {"inputs": [...]} (Open Inference Protocol), {"instances": [...]} '
            "or a non-empty JSON list of instances"
        )
    return instances_request(schema, instances, bools)


RowLabel = Callable[[int], str]
"""Names a row in an error message: ``instance 3`` for JSON, ``line 4`` for JSON Lines."""


def instances_request(
    schema: Schema, instances: list[Any], bools: bool, row: RowLabel | None = None
) -> InferRequest:
    """Instances (rows): each one a sample of the single input, or an object keyed by input."""
    rows = len(instances)
    by_name = isinstance(instances[0], dict)
    if not by_name and len(schema.input_names) != 1:
        raise bad(
            f"the model has inputs {schema.input_names}: give each instance as an object "
            "keyed by input name"
        )
    arrays = []
    for spec in schema.manifest.inputs:
        try:
            data = [inst[spec.name] for inst in instances] if by_name else instances
        except (KeyError, TypeError):
            first = next(
                i for i, inst in enumerate(instances)
                if not isinstance(inst, dict) or spec.name not in inst
            )  # fmt: skip
            where = f"{row(first)}: " if row else ""
            raise bad(f"{where}every instance needs input {spec.name!r}") from None
        arrays.append(_instance_rows(spec, data, rows, bools, row))
    outputs = [OutputRequest(i, False) for i in range(len(schema.output_names))]
    return InferRequest(arrays, rows, None, outputs, None, style="instances")


def _columns_request(schema: Schema, columns: dict[str, Any], bools: bool) -> InferRequest:
    unknown = sorted(set(columns) - set(schema.input_names))
    missing = [n for n in schema.input_names if n not in columns]
    if unknown or missing:
        raise bad(
            f'"inputs" as columns needs exactly the inputs {schema.input_names} '
            f"(missing {missing}, unknown {unknown})"
        )
    lengths = {n: len(v) if isinstance(v, list) else 0 for n, v in columns.items()}
    rows = lengths[schema.input_names[0]]
    if rows < 1 or any(n != rows for n in lengths.values()):
        raise bad(f'"inputs" columns must be non-empty lists of one length, got {lengths}')
    arrays = [_instance_rows(s, columns[s.name], rows, bools, None) for s in schema.manifest.inputs]
    outputs = [OutputRequest(i, False) for i in range(len(schema.output_names))]
    return InferRequest(arrays, rows, None, outputs, None, style="instances")


def _instance_rows(
    spec: TensorSpec, data: list[Any], rows: int, bools: bool, row: RowLabel | None
) -> np.ndarray:
    """Convert one input's values across instances to a ``[rows, *shape]`` array."""
    try:
        array = from_json_data(data, spec.datatype, bools_possible=bools)
    except ValueProblem as exc:
        if row is None:
            raise bad(f"instances for {spec.name!r}: {exc}") from None
        inner = exc.position[1:] if len(exc.position) > 1 else []
        raise bad(
            f"{row(exc.position[0])}: input {spec.name!r}: value {exc.value} at position "
            f"{inner[0] if len(inner) == 1 else inner} {exc.what}"
        ) from None
    except (ValueError, TypeError):
        raise bad(
            f"instances for {spec.name!r} must each be a (nested) list of {spec.datatype} "
            f"values shaped {list(spec.shape)}"
        ) from None
    if spec.dynamic:  # bucketed: the nesting gives the length; no flat instances
        if array.shape[:1] != (rows,) or not fits(spec, array.shape[1:]):
            raise bad(
                f"instances for {spec.name!r} must each be nested lists shaped "
                f"[{', '.join(_axes(spec))}] (got {list(array.shape[1:])})"
            )
        return array
    if array.size != rows * math.prod(spec.shape):
        raise bad(
            f"instances for {spec.name!r} must each have shape {list(spec.shape)} "
            f"({math.prod(spec.shape)} values)"
        )
    return array.reshape(rows, *spec.shape)


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
            "shape": list(array.shape),
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
                s.name: to_json_data(r[i], s.datatype).reshape(r.shape[1:])
                for s, r in zip(specs, results, strict=True)
            }
            for i in range(rows)
        ]
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
