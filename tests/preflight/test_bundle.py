"""The bundle: a local archive or an s3:// object, verified against its manifest's sha256."""

from __future__ import annotations

from pathlib import Path

import boto3

from inf3kit.preflight import bundle
from inf3kit.spec import parse_spec
from tests.preflight.conftest import context

FLEET = "fleet: {instance_types: [inf2.xlarge]}\n"
S3_SPEC = "name: ranker\nmodel: {bundle: s3://models/ranker/model.tar.gz}\n" + FLEET


def _local(path: Path) -> str:
    return f"name: ranker\nmodel: {{bundle: {path.name}}}\n" + FLEET


def test_a_local_archive_that_matches_its_manifest_passes(
    session: boto3.Session, archive: Path
) -> None:
    ctx = context(session, parse_spec(_local(archive), base_dir=archive.parent))
    bundle.check(ctx)
    assert ctx.report.problems == []
    assert ctx.report.checked[0].text.endswith("every variant matches its sha256 (cpu b1)")


def test_fails_when_a_local_archive_does_not_match_its_manifest(
    session: boto3.Session, tampered: Path
) -> None:
    ctx = context(session, parse_spec(_local(tampered), base_dir=tampered.parent))
    bundle.check(ctx)
    [problem] = ctx.report.problems
    assert "sha256 mismatch for 'model.pt'" in problem.message
    assert problem.fix.startswith("re-create it with `inf3kit bundle")


def test_fails_when_the_s3_object_is_missing(session: boto3.Session) -> None:
    session.client("s3").create_bucket(Bucket="models")
    ctx = context(session, S3_SPEC)
    bundle.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == "model.bundle s3://models/ranker/model.tar.gz does not exist (404)"
    assert problem.fix.startswith("upload it: `aws s3 cp model.tar.gz s3://models/ranker/")


def test_an_s3_object_is_downloaded_and_verified(
    session: boto3.Session, archive: Path, tampered: Path
) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(archive), "models", "ranker/model.tar.gz")
    good = context(session, S3_SPEC)
    bundle.check(good)
    assert good.report.problems == []
    s3.upload_file(str(tampered), "models", "ranker/model.tar.gz")
    bad = context(session, S3_SPEC)
    bundle.check(bad)
    assert "sha256 mismatch for 'model.pt'" in bad.report.problems[0].message
