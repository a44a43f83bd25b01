"""`inf3kit preflight` end to end: the CLI, every check, one report, exit 1 on problems.

Against moto in-process (the local AWS's engine): a fleet on the provisional inf3.xlarge with
the DLAMI, whose bundle object is missing, then present but tampered.
"""

from __future__ import annotations

from pathlib import Path

import boto3
from typer.testing import CliRunner

from inf3kit.cli import app

SPEC = """\
name: ranker
model: {bundle: s3://models/ranker/model.tar.gz}
fleet:
  instance_types: [inf3.xlarge]
  ami: {neuron_sdk: "2.27.1"}  # no Neuron release lists inf3: the spec names one
"""


def _preflight(tmp_path: Path) -> tuple[int, str]:
    spec = tmp_path / "inf3kit.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(
        app, ["preflight", str(spec), "--region", "us-east-1", "-o", str(tmp_path / "out")]
    )
    return result.exit_code, "".join(result.output.split())  # rich wraps long paths anywhere


def test_fails_with_every_problem_and_its_fix(session: boto3.Session, tmp_path: Path) -> None:
    session.client("s3").create_bucket(Bucket="models")
    code, out = _preflight(tmp_path)
    assert code == 1
    for expected in (
        "problem offerings (us-east-1): EC2 does not offer inf3.xlarge in us-east-1: it is a "
        "provisional catalog type",
        "fix: use inf2.xlarge, offered in us-east-1",
        "problem ami (us-east-1): the DLAMI parameter "
        "/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id",
        "problem bundle (us-east-1): model.bundle s3://models/ranker/model.tar.gz does not exist",
        "fix: upload it",
        "problem bootstrap (us-east-1): us-east-1 is not bootstrapped",
        "not checked quotas (us-east-1)",
        "problem(s) would fail the deploy",
    ):
        assert "".join(expected.split()) in out


def test_fails_when_the_uploaded_bundle_does_not_match_its_manifest(
    session: boto3.Session, tmp_path: Path, tampered: Path
) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(tampered), "models", "ranker/model.tar.gz")
    code, out = _preflight(tmp_path)
    assert code == 1
    assert "sha256mismatchfor'model.pt'" in out
    assert "fix:re-createitwith`inf3kitbundle" in out
