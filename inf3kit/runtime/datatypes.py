"""Open Inference Protocol datatypes and their numpy representations.

The wire format (JSON numbers or raw little-endian bytes) and the array format on the hot path
(numpy) are tied together here, once, so the server never branches on dtype per element.
BF16 has no numpy dtype: it travels as its raw 16-bit pattern in a ``uint16`` array and is
reinterpreted as ``torch.bfloat16`` only inside the backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16",
]  # fmt: skip

NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),
}

TORCH_DTYPE_NAMES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BF16": "bfloat16",
}

_FROM_TORCH = {v: k for k, v in TORCH_DTYPE_NAMES.items()}


def datatype_of_torch(torch_dtype_name: str) -> str:
    """Map ``str(tensor.dtype)`` without the ``torch.`` prefix to an OIP datatype."""
    try:
        return _FROM_TORCH[torch_dtype_name]
    except KeyError:
        raise ValueError(
            f"torch dtype {torch_dtype_name!r} has no Open Inference Protocol datatype; "
            f"allowed: {', '.join(sorted(_FROM_TORCH))}"
        ) from None


def triton_type(datatype: str) -> str:
    """Triton's model-config spelling of a datatype (``FP32`` -> ``TYPE_FP32``)."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


class ValueProblem(ValueError):
    """One tensor value the datatype cannot hold; ``str()`` names the value and its position.

    ``value`` is the offending value as shown (``repr``, shortened); ``position`` indexes the
    converted array (one index per dimension, at least one).
    """

    def __init__(self, value: str, position: list[int], what: str) -> None:
        self.value, self.position, self.what = value, position, what
        where = position[0] if len(position) == 1 else position
        super().__init__(f"value {self.value} at position {where} {what}")

    def __reduce__(self) -> tuple[object, ...]:
        return (ValueProblem, (self.value, self.position, self.what))


def from_json_data(data: object, datatype: str, *, bools_possible: bool = True) -> np.ndarray:
    """Convert JSON tensor data (flat or nested lists) to a numpy array of ``datatype``.

    The array keeps the nesting's shape (callers reshape flat data to the declared shape).

    Strings, null, booleans in a numeric tensor (numbers in a BOOL tensor), fractions in an
    integer tensor and values outside the datatype's range raise :class:`ValueProblem` with
    the first bad position. The checks are numpy passes over the converted array; only
    booleans need a look at the Python values (numpy reads ``true`` as 1), done solely when
    ``bools_possible`` (the caller saw a ``true``/``false`` token in the body).
    Ragged lists raise a plain :class:`ValueError`.
    """
    raw = np.asarray(data)
    kind = raw.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            _raise_first(data, raw, lambda v: type(v) is not bool, "is not a boolean")
        return raw
    if kind not in "iuf" or (bools_possible and _holds_bool(data, raw.ndim)):
        numbers = (int, float)
        _raise_first(data, raw, lambda v: type(v) not in numbers, "is not a number")
        # Only Python ints beyond 64 bits remain (numpy keeps them as objects): out of range.
        _raise_first(data, raw, lambda v: not _fits_int(v, datatype), _outside(datatype))
    integer = NUMPY_DTYPES[datatype].kind in "iu" and datatype != "BF16"
    # numpy reads a mix of large integers as floats, losing digits: convert those exactly.
    if integer and kind == "f" and raw.size and np.abs(raw).max() >= 2**53:
        return _exact_integers(data, raw, datatype)
    return check_cast(raw, datatype, data)


def _exact_integers(data: object, raw: np.ndarray, datatype: str) -> np.ndarray:
    """Convert integers beyond float precision exactly (the rare path: a Python pass)."""

    def integral(v: object) -> bool:
        return type(v) is int or (type(v) is float and v.is_integer())

    _raise_first(data, raw, lambda v: not integral(v), "is not an integer")
    _raise_first(data, raw, lambda v: not _fits_int(int(v), datatype), _outside(datatype))  # type: ignore[call-overload]
    return np.asarray(data, dtype=object).astype(NUMPY_DTYPES[datatype])


def check_cast(raw: np.ndarray, datatype: str, data: object = None) -> np.ndarray:
    """Cast a numeric array to ``datatype``, refusing fractions for integers and overflow.

    ``data`` (the nested source lists, if any) only serves to quote the offending value. Text
    sources (CSV) give floats that may be NaN or infinite: refused too, as JSON cannot send them.
    """
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        _raise_at(raw, data, ~np.isfinite(raw), "is not a finite number")
    if datatype == "BOOL":
        if raw.dtype.kind != "b":
            not_01 = (raw != 0) & (raw != 1)
            if not_01.any():
                _raise_at(raw, data, not_01, "is not a boolean (0 or 1)")
        return raw.astype(np.bool_)
    dtype = NUMPY_DTYPES[datatype]
    if dtype.kind in "iu" and datatype != "BF16":
        if raw.dtype.kind == "f":
            fraction = raw != np.trunc(raw)
            if fraction.any():
                _raise_at(raw, data, fraction, "is not an integer")
        if raw.size:
            info = np.iinfo(dtype)
            # A float bound is exact only as a power of two: max + 1, compared with >=.
            above = (
                (lambda a: a >= info.max + 1.0)
                if raw.dtype.kind == "f"
                else (lambda a: a > info.max)
            )
            if raw.min() < info.min or above(raw.max()):
                _raise_at(raw, data, (raw < info.min) | above(raw), _outside(datatype))
        return raw.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        result = raw.astype(np.float32 if datatype == "BF16" else dtype)
        if datatype == "BF16":
            result = bf16_bits(result)
            finite = np.isfinite(bf16_to_float32(result))
        else:
            finite = np.isfinite(result)
    if not finite.all():
        _raise_at(raw, data, ~finite, _outside(datatype))
    return result


def _outside(datatype: str) -> str:
    return f"is outside the {datatype} range"


def _fits_int(value: object, datatype: str) -> bool:
    if datatype == "BOOL":
        return False
    dtype = NUMPY_DTYPES[datatype]
    if dtype.kind == "f" or datatype == "BF16":
        try:
            float(value)  # type: ignore[arg-type]
        except OverflowError:
            return False
        return True
    info = np.iinfo(dtype)
    return info.min <= value <= info.max  # type: ignore[operator]


def _flat(data: object, ndim: int) -> Iterable[object]:
    if ndim == 0:
        return (data,)
    flat: Iterable[object] = data  # type: ignore[assignment]
    for _ in range(ndim - 1):
        flat = itertools.chain.from_iterable(flat)  # type: ignore[arg-type]
    return flat


def _holds_bool(data: object, ndim: int) -> bool:
    return bool in set(map(type, _flat(data, ndim)))


def _raise_first(data: object, raw: np.ndarray, bad: Callable[[object], bool], what: str) -> None:
    for i, value in enumerate(_flat(data, raw.ndim)):
        if bad(value):
            raise ValueProblem(_show(value), _where(raw, i), what)


def _raise_at(raw: np.ndarray, data: object, bad: np.ndarray, what: str) -> None:
    i = int(np.flatnonzero(bad)[0])
    value = raw.flat[i] if data is None else list(_flat(data, raw.ndim))[i]
    value = value.item() if isinstance(value, np.generic) else value
    raise ValueProblem(_show(value), _where(raw, i), what)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(array: np.ndarray, flat_index: int) -> list[int]:
    if array.ndim <= 1:
        return [flat_index]
    return list(map(int, np.unravel_index(flat_index, array.shape)))


def to_json_data(array: np.ndarray, datatype: str) -> np.ndarray:
    """Flat array suitable for ``orjson.OPT_SERIALIZE_NUMPY`` (BF16 widened to float32)."""
    if datatype == "BF16":
        return bf16_to_float32(array).ravel()
    return np.ascontiguousarray(array).ravel()


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest-even) and return the 16-bit patterns."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns to float32 (exact)."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
