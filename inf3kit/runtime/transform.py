"""SageMaker Batch Transform bodies: CSV, JSON Lines and .npy in; CSV and JSON Lines out.

Batch Transform in multi-record mode (``SplitType: Line``, ``BatchStrategy: MultiRecord``) sends
a mini-batch of records, one per line, up to ``MaxPayloadInMB``, and with ``AssembleWith: Line``
expects one output line per input line, in order. A record is one instance: for CSV, the values
of every input flattened and concatenated in manifest order; for JSON Lines, what one entry of
``{"instances": [...]}`` would be. Parsing is one numpy or orjson call on the happy path; only an
error walks the lines, to name the first bad one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import orjson

from inf3kit.runtime.datatypes import NUMPY_DTYPES, ValueProblem, check_cast, to_json_data
from inf3kit.runtime.protocol import (
    InferRequest,
    OutputRequest,
    RequestError,
    Schema,
    bad,
    instances_request,
)


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    """Non-blank lines with their 1-based line numbers (the error path only)."""
    return [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()]


def _csv_dtype(schema: Schema) -> np.dtype:
    kinds = {NUMPY_DTYPES[s.datatype].kind for s in schema.manifest.inputs}
    if kinds <= {"i"}:
        return np.dtype(np.int64)
    if kinds <= {"u"}:
        return np.dtype(np.uint64)
    return np.dtype(np.float64)


def parse_csv(schema: Schema, body: bytes) -> InferRequest:
    """One record per line, comma-separated numbers; no header row, no quoting."""
    specs = schema.manifest.inputs
    widths = [math.prod(s.shape) for s in specs]
    columns = sum(widths)
    dtype = _csv_dtype(schema)
    try:
        table = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2, dtype=dtype)
    except ValueError:
        _locate_csv_error(body, columns, dtype)
        raise  # not reached: the walk above finds what numpy refused
    if table.shape[0] == 0:
        raise bad("the CSV body has no records; send one record per line")
    if table.shape[1] != columns:
        raise bad(
            f"CSV line 1: {table.shape[1]} values, the model takes {columns} per record "
            f"({_layout(schema)})"
        )
    arrays = []
    start = 0
    for spec, width in zip(specs, widths, strict=True):
        part = table[:, start : start + width]
        try:
            array = check_cast(part, spec.datatype)
        except ValueProblem as exc:
            line = _lines(body)[exc.position[0]][0]
            raise bad(
                f"CSV line {line}, column {start + exc.position[1] + 1} (input {spec.name!r}): "
                f"value {exc.value} {exc.what}"
            ) from None
        arrays.append(array.reshape(-1, *spec.shape))
        start += width
    outputs = [OutputRequest(i, False) for i in range(len(schema.output_names))]
    return InferRequest(arrays, table.shape[0], None, outputs, None, style="instances")


def _layout(schema: Schema) -> str:
    return ", ".join(f"{s.name}: {math.prod(s.shape)} {s.datatype}" for s in schema.manifest.inputs)


def _locate_csv_error(body: bytes, columns: int, dtype: np.dtype) -> None:
    convert = int if dtype.kind in "iu" else float
    for number, line in _lines(body):
        fields = line.split(b",")
        if len(fields) != columns:
            raise bad(f"CSV line {number}: {len(fields)} values, the model takes {columns}")
        for column, field in enumerate(fields, 1):
            try:
                convert(field)
            except ValueError:
                kind = "an integer" if convert is int else "a number"
                raise bad(
                    f"CSV line {number}, column {column}: {_text(field)!r} is not {kind}"
                ) from None
    raise bad("the CSV body could not be read as comma-separated numbers")


def _text(field: bytes) -> str:
    return field.strip()[:40].decode(errors="replace")


def parse_jsonlines(schema: Schema, body: bytes) -> InferRequest:
    """One JSON instance per line (a nested list, or an object keyed by input name)."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise bad("the JSON Lines body has no records; send one JSON value per line")
    try:
        instances = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        for number, line in _lines(body):
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise bad(f"JSON Lines line {number}: not valid JSON ({exc.msg})") from None
        raise bad("the JSON Lines body is not one JSON value per line") from None
    numbers = [n for n, _ in _lines(body)]
    bools = b"true" in body or b"false" in body
    return instances_request(schema, instances, bools, lambda i: f"JSON Lines line {numbers[i]}")


def parse_npy(schema: Schema, body: bytes) -> InferRequest:
    """A ``.npy`` array ``[rows, *shape]`` for a single-input model (no pickles)."""
    if len(schema.manifest.inputs) != 1:
        raise RequestError(
            415,
            f"application/x-npy carries one array, the model has inputs {schema.input_names}; "
            "send JSON, JSON Lines or CSV",
        )
    spec = schema.manifest.inputs[0]
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bad(f"the body is not a .npy array ({exc})") from None
    if array.ndim != len(spec.shape) + 1 or tuple(array.shape[1:]) != spec.shape:
        raise bad(
            f".npy array of shape {list(array.shape)} does not match input {spec.name!r} "
            f"{[-1, *spec.shape]} (rows first)"
        )
    if array.dtype.kind not in "biuf" or array.shape[0] < 1:
        raise bad(f".npy array of dtype {array.dtype} is not numeric, or has no rows")
    try:
        cast = check_cast(array, spec.datatype)
    except ValueProblem as exc:
        raise bad(f".npy input {spec.name!r}: {exc}") from None
    outputs = [OutputRequest(i, False) for i in range(len(schema.output_names))]
    return InferRequest([cast], array.shape[0], None, outputs, None, style="instances")


def _row_matrix(schema: Schema, results: Sequence[np.ndarray]) -> np.ndarray:
    """Every output of each row, flattened and concatenated: one row per record."""
    parts = []
    for spec, array in zip(schema.manifest.outputs, results, strict=True):
        values = to_json_data(array, spec.datatype).reshape(array.shape[0], -1)
        parts.append(values.astype(np.uint8) if values.dtype.kind == "b" else values)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def encode_csv(schema: Schema, results: Sequence[np.ndarray]) -> bytes:
    """One line per record: the values of every output, flattened, in manifest order."""
    matrix = _row_matrix(schema, results)
    # orjson writes a 2-D array as [[a,b],[c,d]] with no spaces: the rows are its CSV.
    text = orjson.dumps(np.ascontiguousarray(matrix), option=orjson.OPT_SERIALIZE_NUMPY)
    return text[2:-2].replace(b"],[", b"\n") + b"\n"


def encode_jsonlines(schema: Schema, results: Sequence[np.ndarray]) -> bytes:
    """One JSON value per record: the output (nested), or an object keyed by output name."""
    specs = schema.manifest.outputs
    option = orjson.OPT_SERIALIZE_NUMPY
    rows = results[0].shape[0]
    values = [
        to_json_data(r, s.datatype).reshape(r.shape) for s, r in zip(specs, results, strict=True)
    ]
    if len(specs) == 1:
        lines = [orjson.dumps(values[0][i], option=option) for i in range(rows)]
    else:
        lines = [
            orjson.dumps({s.name: v[i] for s, v in zip(specs, values, strict=True)}, option=option)
            for i in range(rows)
        ]
    return b"\n".join(lines) + b"\n"
