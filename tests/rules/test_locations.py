"""The one S3 URI parser the spec, the constructs and the demo share."""

from __future__ import annotations

import pytest

from inf3kit.rules import bundle_uri_problems, split_s3_uri


def test_splits_bucket_and_key() -> None:
    assert split_s3_uri("s3://models-bucket/ranker/v2/model.tar.gz") == (
        "models-bucket",
        "ranker/v2/model.tar.gz",
    )


@pytest.mark.parametrize(
    "uri", ["https://b/k", "s3://Upper/k.tar.gz", "s3://ab/k.tar.gz", "s3://bucket", "s3://bucket/"]
)
def test_fails_when_the_uri_is_not_bucket_and_key(uri: str) -> None:
    assert split_s3_uri(uri) is None


def test_fails_when_the_bundle_is_not_a_tar_gz() -> None:
    assert bundle_uri_problems("s3://models-bucket/model.zip") == [
        "'s3://models-bucket/model.zip' is not an s3 URI of a bundle archive. "
        "Fix: use s3://BUCKET/PATH/model.tar.gz (pack one with `inf3kit bundle`)"
    ]
    assert bundle_uri_problems("s3://models-bucket/model.tar.gz") == []
