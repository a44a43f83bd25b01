"""`inf3kit deploy --local`: the real CDK CLI deploys the demo spec into the local AWS API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.deploy import LocalAws, running, stop

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
runner = CliRunner()
USERS_AWS_CONFIG = "[default]\nregion = eu-north-1\n"


@pytest.fixture(scope="module")
def deployed(
    demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalAws, str]]:
    """Deploy once per module from an isolated folder; always stop the emulator afterwards."""
    work = tmp_path_factory.mktemp("local-deploy")
    (work / "home" / ".aws").mkdir(parents=True)
    (work / "home" / ".aws" / "config").write_text(USERS_AWS_CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("HOME", str(work / "home"))  # a stand-in for the user's home, watched below
        try:
            result = runner.invoke(app, ["deploy", str(DEMO), "--local", "-o", str(work / "out")])
            assert result.exit_code == 0, result.output
            aws = running()
            assert aws is not None
            yield aws, result.output
            destroyed = runner.invoke(
                app, ["destroy", str(DEMO), "--local", "-o", str(work / "out")]
            )
            assert destroyed.exit_code == 0, destroyed.output
            assert running() is None
        finally:
            leftover = running()
            if leftover is not None:
                stop(leftover)


def test_stack_reaches_create_complete_with_outputs(deployed: tuple[LocalAws, str]) -> None:
    aws, output = deployed
    stack = aws.client("cloudformation").describe_stacks(StackName="demo")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ModelDataUrl"].startswith("s3://cdk-")
    assert "stack demo: CREATE_COMPLETE" in output


def test_bucket_and_key_exist_with_expected_properties(deployed: tuple[LocalAws, str]) -> None:
    aws, _ = deployed
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in aws.client("cloudformation").describe_stacks(StackName="demo")["Stacks"][0][
            "Outputs"
        ]
    }
    s3 = aws.client("s3")
    bucket = outputs["ArtifactBucketName"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key_id = rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # moto ignores a CloudFormation bucket's VersioningConfiguration; tests/constructs checks it.
    kms = aws.client("kms")
    key_id = key_id.rsplit("/", 1)[-1]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]


def outputs_of(aws: LocalAws) -> dict[str, str]:
    stack = aws.client("cloudformation").describe_stacks(StackName="demo")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_endpoint_exists_on_the_spec_instance_type_with_kms(deployed: tuple[LocalAws, str]) -> None:
    aws, _ = deployed
    sagemaker = aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs_of(aws)["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"]) == ("AllTraffic", "ml.inf3.xlarge")
    assert config["KmsKeyId"]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"].endswith(
        ".dkr.ecr.us-east-1.amazonaws.com/inf3kit-runtime:0.1.0"
    )
    assert model["PrimaryContainer"]["ModelDataUrl"] == outputs_of(aws)["ModelDataUrl"]


def test_launch_template_requires_imdsv2_and_encrypts_volumes(
    deployed: tuple[LocalAws, str],
) -> None:
    aws, _ = deployed
    ec2 = aws.client("ec2")
    templates = ec2.describe_launch_templates()["LaunchTemplates"]
    assert len(templates) == 1
    data = ec2.describe_launch_template_versions(LaunchTemplateId=templates[0]["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])


def test_auto_scaling_group_prefers_inf3_then_inf2(deployed: tuple[LocalAws, str]) -> None:
    aws, _ = deployed
    (group,) = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"]) == (1, 4)
    overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert [o["InstanceType"] for o in overrides] == ["inf3.xlarge", "inf2.xlarge"]


def test_bundle_object_is_uploaded_byte_for_byte(
    deployed: tuple[LocalAws, str], demo_bundle: Path
) -> None:
    aws, _ = deployed
    stack = aws.client("cloudformation").describe_stacks(StackName="demo")["Stacks"][0]
    url = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["ModelDataUrl"]
    bucket, key = url.removeprefix("s3://").split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == demo_bundle.read_bytes()


def test_report_lists_what_the_emulator_skipped(deployed: tuple[LocalAws, str]) -> None:
    _, output = deployed
    text = " ".join(output.split())
    assert "the emulator skipped AWS::ApplicationAutoScaling::ScalableTarget," in text
    assert "AWS::CloudWatch::Alarm" in text and "AWS::S3::BucketPolicy" in text


def test_fails_cleanly_when_the_cdk_cli_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "cdk"
    failing.write_text("#!/bin/sh\necho 'simulated deploy failure' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INF3KIT_CDK_CLI", str(failing))
    result = runner.invoke(app, ["deploy", str(DEMO), "--local"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "local deploy failed: `cdk synth` failed (exit 3): simulated deploy failure" in text
    assert "the local AWS emulator was stopped; nothing is left running" in text
    assert running() is None


def test_fails_when_the_cdk_cli_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INF3KIT_CDK_CLI", str(tmp_path / "absent"))
    result = runner.invoke(app, ["deploy", str(DEMO), "--local"])
    assert result.exit_code == 1
    assert (
        f"INF3KIT_CDK_CLI is '{tmp_path / 'absent'}', which is not a file. Fix: point it to "
        "the `cdk` executable (node_modules/.bin/cdk), or unset it"
    ) in " ".join(result.output.split())
    assert running() is None


def test_local_deploy_never_touches_the_users_aws_files(deployed: tuple[LocalAws, str]) -> None:
    """The deploy ran with HOME pointing at a stand-in home holding an AWS config."""
    aws, _ = deployed
    users_aws = Path.cwd() / "home" / ".aws"
    assert [p.name for p in users_aws.iterdir()] == ["config"]
    assert (users_aws / "config").read_text() == USERS_AWS_CONFIG
    assert str(users_aws) not in json.dumps(aws.env())


def test_fails_when_a_delivery_spec_is_deployed_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = DEMO.parent / "gitops.yaml"
    result = runner.invoke(app, ["deploy", str(spec), "--local"])
    assert result.exit_code == 1
    assert (
        f"{spec} has a `delivery:` section, so its app is a CodePipeline that deploys from Git; "
        "the local emulator cannot run pipelines."
    ) in " ".join(result.output.split())
    assert running() is None
