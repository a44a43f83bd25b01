"""Where a bundle lives: the one S3 URI parser the spec, the constructs and the demo share.

The runtime keeps its own (it imports nothing of inf3kit outside `runtime/`).
"""

from __future__ import annotations

import re

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
"""A bucket name S3 accepts (3-63 lower-case letters, digits, dots and dashes), then a key."""


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    """`(bucket, key)` of `s3://bucket/key`, or None when it is not one."""
    match = _S3_URI.match(uri)
    return (match["bucket"], match["key"]) if match else None


def bundle_uri_problems(uri: str) -> list[str]:
    """An S3 URI of a bundle archive: a valid bucket name and a `.tar.gz` key."""
    found = split_s3_uri(uri)
    if found is None or not found[1].endswith(".tar.gz"):
        return [
            f"{uri!r} is not an s3 URI of a bundle archive. "
            "Fix: use s3://BUCKET/PATH/model.tar.gz (pack one with `inf3kit bundle`)"
        ]
    return []
