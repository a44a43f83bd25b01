"""The demo's own steps: the fetched bundle must be the built one, and the runtime must answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inf3kit.deploy import LocalAws, start, stop
from inf3kit.deploy.demo import DemoError, fetch_bundle
from inf3kit.runtime.bundle import sha256_file


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[LocalAws]:
    aws, _ = start(state_dir=tmp_path / "state")
    yield aws
    stop(aws)


def test_fetched_bundle_is_the_built_archive(emulator: LocalAws, tmp_path: Path) -> None:
    built = tmp_path / "model.tar.gz"
    built.write_bytes(b"bundle bytes")
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.upload_file(str(built), "assets", "abc.gz")
    fetched = fetch_bundle(emulator, "s3://assets/abc.gz", built, tmp_path / "f" / "m.tar.gz")
    assert fetched.sha256 == sha256_file(built)
    assert fetched.path.read_bytes() == b"bundle bytes"


def test_fails_when_the_deployed_bundle_is_not_the_built_one(
    emulator: LocalAws, tmp_path: Path
) -> None:
    built = tmp_path / "model.tar.gz"
    built.write_bytes(b"new build")
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="old.gz", Body=b"old build")
    with pytest.raises(DemoError) as info:
        fetch_bundle(emulator, "s3://assets/old.gz", built, tmp_path / "f.tar.gz")
    assert str(info.value) == (
        f"the bundle in s3://assets/old.gz (sha256 {sha256_file(tmp_path / 'f.tar.gz')[:12]}...) "
        f"is not the local build {built} (sha256 {sha256_file(built)[:12]}...); rebuild with "
        "`make bundle` and redeploy"
    )
