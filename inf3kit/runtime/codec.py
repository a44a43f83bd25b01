"""Which body formats a route takes and answers with, and the dispatch to their codecs.

The OIP route takes JSON or the binary tensor extension. ``/invocations`` also takes the
SageMaker Batch Transform formats (CSV, JSON Lines, .npy) and honours ``Accept`` for JSON, CSV
and JSON Lines answers. Both functions are pure, so the app can run them in its parsing helper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inf3kit.runtime.protocol import (
    InferRequest,
    RequestError,
    Schema,
    encode_oip,
    encode_predictions,
    parse_oip,
    parse_sagemaker,
)
from inf3kit.runtime.transform import (
    encode_csv,
    encode_jsonlines,
    parse_csv,
    parse_jsonlines,
    parse_npy,
)

JSON = "application/json"
OCTET = "application/octet-stream"
CSV = "text/csv"
JSONL = "application/jsonlines"
NPY = "application/x-npy"
_JSONL_ALIASES = ("application/jsonl", "application/x-jsonlines", "application/json-lines")

OIP_TYPES = ("", JSON, OCTET)
SAGEMAKER_TYPES = ("", JSON, OCTET, CSV, JSONL, NPY)
ANSWER_TYPES = (JSON, CSV, JSONL)
_DEFAULT_ANSWER = {CSV: CSV, JSONL: JSONL}  # else JSON


def media_type(value: bytes | None) -> str:
    """A ``Content-Type`` or ``Accept`` entry without parameters, lower case, aliases unified."""
    if value is None:
        return ""
    media = value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return JSONL if media in _JSONL_ALIASES else media


def check_content_type(media: str, sagemaker: bool) -> None:
    allowed = SAGEMAKER_TYPES if sagemaker else OIP_TYPES
    if media not in allowed:
        more = ", text/csv, application/jsonlines, application/x-npy" if sagemaker else ""
        raise RequestError(
            415,
            f"Content-Type {media!r} is not supported; send application/json{more}, or "
            "application/octet-stream with Inference-Header-Content-Length (binary tensors)",
        )


def answer_type(accept: bytes | None, media: str, sagemaker: bool) -> str:
    """The answer's type for ``/invocations`` instances: the first acceptable of ``Accept``.

    No ``Accept`` (or ``*/*``) answers in the request's own family: CSV for CSV, JSON Lines for
    JSON Lines, JSON otherwise. OIP requests always answer in OIP JSON or binary.
    """
    default = _DEFAULT_ANSWER.get(media, JSON)
    if accept is None or not sagemaker:
        return default
    wanted = [media_type(part) for part in accept.split(b",")]
    for item in wanted:
        if item in ANSWER_TYPES:
            return item
        if item in ("*/*", "application/*", ""):
            return default
        if item == "text/*":
            return CSV
    raise RequestError(
        406,
        f"Accept {accept.decode('latin-1')[:80]!r} names no answer format this server writes; "
        f"accept one of {', '.join(ANSWER_TYPES)}",
    )


def parse_body(
    schema: Schema, body: bytes, media: str, header_length: int | None, sagemaker: bool
) -> InferRequest:
    if header_length is not None or not sagemaker:
        return parse_oip(schema, body, header_length)
    if media == CSV:
        return parse_csv(schema, body)
    if media == JSONL:
        return parse_jsonlines(schema, body)
    if media == NPY:
        return parse_npy(schema, body)
    return parse_sagemaker(schema, body)


def encode_response(
    schema: Schema, request: InferRequest, results: Sequence[np.ndarray], answer: str
) -> tuple[bytes, int | None, str]:
    """Return (body, JSON header length if binary tensors follow, content type)."""
    if request.style != "instances":
        body, header = encode_oip(schema, request, results)
        return body, header, JSON if header is None else OCTET
    if answer == CSV:
        return encode_csv(schema, results), None, CSV
    if answer == JSONL:
        return encode_jsonlines(schema, results), None, JSONL
    return encode_predictions(schema, results), None, JSON
