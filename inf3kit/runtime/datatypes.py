"""Open Inference Protocol datatypes and their numpy representations.

The wire format (JSON numbers or raw little-endian bytes) and the array format on the hot path
(numpy) are tied together here, once, so the server never branches on dtype per element.
BF16 has no numpy dtype: it travels as its raw 16-bit pattern in a ``uint16`` array and is
reinterpreted as ``torch.bfloat16`` only inside the backend.
"""

from __future__ import annotations

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


def from_json_data(data: object, datatype: str) -> np.ndarray:
    """Convert JSON tensor data (flat or nested lists) to a flat numpy array of ``datatype``."""
    if datatype == "BF16":
        return bf16_bits(np.asarray(data, dtype=np.float32).ravel())
    return np.asarray(data, dtype=NUMPY_DTYPES[datatype]).ravel()


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
