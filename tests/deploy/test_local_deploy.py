"""`inf3kit deploy --local`: the real CDK CLI deploys the demo spec into the local AWS API.

Then the user's iteration: a recompiled bundle and less capacity, deployed over the running
stack (a change-set update, as on AWS), a failed attempt that must leave the emulator and the
deployment alone, and a destroy that must not stop an emulator still holding other stacks.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.deploy import LocalAws, running, stop

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo.yaml"
runner = CliRunner()
# `make test` gives a whole file to one worker (--dist loadfile): these tests share one
# deployment and follow its updates.
USERS_AWS_CONFIG = "[default]\nregion = eu-north-1\n"


@pytest.fixture(scope="module")
def work(demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated project folder with copies of the demo and multi-env specs and the bundle,
    and a stand-in for the user's home holding an AWS config (watched below)."""
    work = tmp_path_factory.mktemp("local-deploy")
    (work / "home" / ".aws").mkdir(parents=True)
    (work / "home" / ".aws" / "config").write_text(USERS_AWS_CONFIG)
    (work / "examples").mkdir()
    for name in ("demo.yaml", "multi-env.yaml"):
        shutil.copy(REPO / "examples" / name, work / "examples")
    (work / "build" / "demo").mkdir(parents=True)
    shutil.copy(demo_bundle, work / "build" / "demo" / "model.tar.gz")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("HOME", str(work / "home"))
        yield work


@pytest.fixture(scope="module")
def deployed(work: Path) -> Iterator[tuple[LocalAws, str]]:
    """Deploy the demo once per module into an output folder that already holds another
    spec's assembly (multi-env, with Docker image assets); destroy and stop afterwards."""
    try:
        other = runner.invoke(
            app, ["synth", "examples/multi-env.yaml", "-o", "out", "--no-checkov"]
        )
        assert other.exit_code == 0, other.output
        result = runner.invoke(app, ["deploy", "examples/demo.yaml", "--local", "-o", "out"])
        assert result.exit_code == 0, result.output
        aws = running()
        assert aws is not None
        yield aws, result.output
        if running() is not None:
            destroyed = runner.invoke(app, ["destroy", "examples/demo.yaml", "--local"])
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


def test_another_specs_assembly_in_the_output_folder_is_not_read(
    deployed: tuple[LocalAws, str], work: Path
) -> None:
    """`out` also holds ranker-*.assets.json, whose Docker images need an engine absent here."""
    assert (work / "out" / "ranker-prod.assets.json").exists()
    assert "stack demo: CREATE_COMPLETE" in deployed[1]


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


# --- the update path: change the spec, deploy again (these tests run after the ones above) ---


def rebuild_bundle(work: Path) -> Path:
    """Recompile the demo model as version 2 and pack it over the archive the spec names."""
    from inf3kit.runtime.commands import compile_bundle, pack

    sys.path.insert(0, str(REPO))
    compile_bundle(
        "examples.demo_model.model:build",
        ["INPUT__0:FP32:32"],
        work / "bundle-v2",
        target="cpu",
        batch_size=8,
        version="2",
    )
    archive = work / "build" / "demo" / "model.tar.gz"
    pack(work / "bundle-v2", archive)
    return archive


@pytest.fixture(scope="module")
def updated(deployed: tuple[LocalAws, str], work: Path) -> tuple[LocalAws, str, Path]:
    """The demo with `max: 3` and a recompiled bundle, deployed again (default output folder)."""
    spec = work / "examples" / "demo.yaml"
    spec.write_text(
        spec.read_text().replace("capacity: {min: 1, max: 4}", "capacity: {min: 1, max: 3}")
    )
    archive = rebuild_bundle(work)
    result = runner.invoke(app, ["deploy", "examples/demo.yaml", "--local"])
    assert result.exit_code == 0, result.output
    return deployed[0], result.output, archive


def test_second_deploy_updates_the_stack_and_says_what_changed(
    updated: tuple[LocalAws, str, Path],
) -> None:
    aws, output, _ = updated
    stack = aws.client("cloudformation").describe_stacks(StackName="demo")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    text = " ".join(output.split())
    assert f"local AWS API on {aws.endpoint} (reused)" in text
    assert "stack demo: UPDATE_COMPLETE" in text
    assert "modified Fleet/Resource/ASG (AWS::AutoScaling::AutoScalingGroup)" in text
    assert "modified Endpoint/Model (AWS::SageMaker::Model)" in text


def test_each_spec_gets_its_own_assembly_folder_by_default(
    updated: tuple[LocalAws, str, Path], work: Path
) -> None:
    assert (work / "cdk.out" / "demo" / "demo.template.json").exists()
    assert not list((work / "cdk.out" / "demo").glob("ranker-*"))


def test_fleet_capacity_follows_the_changed_spec(updated: tuple[LocalAws, str, Path]) -> None:
    (group,) = updated[0].client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"]) == (1, 3)


def test_endpoint_moves_to_the_recompiled_bundle(updated: tuple[LocalAws, str, Path]) -> None:
    """The endpoint gets a new config whose model reads the new archive, as on AWS."""
    aws, _, archive = updated
    sagemaker = aws.client("sagemaker")
    outputs = outputs_of(aws)
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == outputs["ModelDataUrl"]
    bucket, key = outputs["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == archive.read_bytes()


def test_fails_without_stopping_an_emulator_that_holds_earlier_deployments(
    updated: tuple[LocalAws, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = updated[0]
    failing = tmp_path / "cdk"
    failing.write_text("#!/bin/sh\necho 'simulated deploy failure' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setenv("INF3KIT_CDK_CLI", str(failing))
    result = runner.invoke(app, ["deploy", "examples/demo.yaml", "--local"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "local deploy failed: `cdk synth` failed (exit 3): simulated deploy failure" in text
    assert (
        f"the local AWS emulator at {aws.endpoint} keeps what was deployed before this "
        "attempt; `inf3kit local stop` stops it"
    ) in text
    assert running() == aws
    assert outputs_of(aws)["EndpointName"]


def test_destroy_stops_the_emulator_only_once_no_other_stack_is_left(
    updated: tuple[LocalAws, str, Path],
) -> None:
    """Runs last: destroys the demo while a stack of another app lives in another region.

    The module's teardown then destroys again: with nothing left, the emulator stops."""
    aws = updated[0]
    elsewhere = aws.client("cloudformation", "eu-west-1")
    elsewhere.create_stack(
        StackName="other", TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    )
    result = runner.invoke(app, ["destroy", "examples/demo.yaml", "--local"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "destroyed the local AWS emulator keeps running: it holds other (eu-west-1)" in text
    assert running() == aws
    summaries = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"] == [
        "CDKToolkit"
    ]
    elsewhere.delete_stack(StackName="other")  # the module's teardown destroys and stops
