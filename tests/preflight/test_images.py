"""The fleet's AMI (SSM DLAMI parameter or AMI id) and the endpoint's ECR image, in moto."""

from __future__ import annotations

import boto3

from inf3kit.preflight import images
from tests.preflight.conftest import context

FLEET = """\
name: ranker
model: {{bundle: s3://models/ranker.tar.gz}}
fleet:
  instance_types: [inf2.xlarge]
  ami: {ami}
"""
ENDPOINT = """\
name: ranker
model: {{bundle: s3://models/ranker.tar.gz}}
endpoint:
  instance_type: ml.inf2.xlarge
  image: {image}
"""
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ranker"


def test_fails_when_the_dlami_parameter_does_not_resolve(session: boto3.Session) -> None:
    """moto serves no /aws/service/neuron/ parameters: the region has no Neuron DLAMI."""
    ctx = context(session, FLEET.format(ami="{source: dlami}"))
    images.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        "the DLAMI parameter /aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id (for "
        "inf2.xlarge, from the compatibility matrix) does not resolve in us-east-1"
    )
    assert "fleet.ami {source: id, id: ami-...}" in problem.fix


def test_an_existing_ami_id_passes_and_a_missing_one_fails(session: boto3.Session) -> None:
    ami = session.client("ec2").describe_images()["Images"][0]["ImageId"]
    ok = context(session, FLEET.format(ami=f"{{source: id, id: {ami}}}"))
    images.check(ok)
    assert ok.report.problems == [] and ok.report.checked[0].text.startswith(f"{ami} exists")
    missing = context(session, FLEET.format(ami="{source: id, id: ami-0123456789abcdef0}"))
    images.check(missing)
    assert missing.report.problems[0].message.startswith(
        "fleet.ami.id ami-0123456789abcdef0 does not exist in us-east-1"
    )


def test_fails_when_the_ecr_image_is_not_pushed(session: boto3.Session) -> None:
    ecr = session.client("ecr")
    ecr.create_repository(repositoryName="ranker")
    media = "application/vnd.docker.distribution.manifest.v2+json"
    manifest = f'{{"schemaVersion": 2, "mediaType": "{media}"}}'
    ecr.put_image(repositoryName="ranker", imageManifest=manifest, imageTag="v1")
    pushed = context(session, ENDPOINT.format(image=f"{REPO}:v1"))
    images.check(pushed)
    assert pushed.report.problems == []
    absent = context(session, ENDPOINT.format(image=f"{REPO}:v2"))
    images.check(absent)
    [problem] = absent.report.problems
    assert problem.message == (
        f"endpoint.image {REPO}:v2: the image does not exist in ECR (ImageNotFoundException)"
    )
    assert problem.fix.startswith(f"push it first (docker push {REPO}:v2)")


def test_a_deep_learning_container_is_reported_as_not_checked(session: boto3.Session) -> None:
    ctx = context(session, ENDPOINT.format(image="pytorch-inference-neuronx"))
    images.check(ctx)
    assert ctx.report.problems == []
    assert "AWS deep learning container" in ctx.report.unchecked[0].text
