"""The shared constructs: artifact store, bundle location and network."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from inf3kit.constructs import ModelArtifacts, ModelBundle, ServiceNetwork
from inf3kit.constructs.nag import waive_cfn_lint


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    archive = tmp_path_factory.mktemp("bundle") / "model.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip, only uploaded")
    stack = cdk.Stack(cdk.App())
    artifacts = ModelArtifacts(stack, "Artifacts")
    ServiceNetwork(stack, "Network", flow_log_bucket=artifacts.access_logs, max_azs=2)
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    ModelBundle(stack, "Local", path=archive).grant_read(role)
    ModelBundle(stack, "Remote", s3_uri="s3://models-bucket/a/model.tar.gz").grant_read(role)
    return Template.from_stack(stack)


def test_artifact_bucket_is_kms_encrypted_versioned_private_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": Match.object_like(
                                {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()}
                            )
                        }
                    )
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "artifacts/"}),
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_buckets_refuse_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_buckets_and_key_are_retained_on_stack_deletion(template: Template) -> None:
    for rtype in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        for resource in template.find_resources(rtype).values():
            assert resource["DeletionPolicy"] == "Retain"


def test_network_has_private_subnets_flow_logs_and_s3_endpoint(template: Template) -> None:
    template.resource_count_is("AWS::EC2::Subnet", 4)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"LogDestinationType": "s3", "TrafficType": "ALL"}
    )
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway", "ServiceName": Match.any_value()}
    )


def test_bundle_grant_reads_only_the_bundle_objects(template: Template) -> None:
    policy = next(iter(template.find_resources("AWS::IAM::Policy").values()))
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == ["s3:GetObject", "s3:GetObject"]
    remote = statements[1]["Resource"]["Fn::Join"][1]
    assert remote[-1] == ":s3:::models-bucket/a/model.tar.gz"
    local = statements[0]["Resource"]["Fn::Join"][1]
    assert local[-1].startswith("/") and local[-1].endswith(".gz")  # the asset hash + suffix


def test_fails_when_bundle_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B", path=tmp_path)
    assert str(info.value) == (
        "ModelBundle B: 1 problem\n"
        f"  - path {str(tmp_path)!r} is a directory; SageMaker and fleets read one "
        f"archive. Fix: pack it with `inf3kit bundle {tmp_path} -o model.tar.gz` and point to "
        "the archive"
    )


def test_fails_when_bundle_path_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "model.tar.gz"
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B", path=missing)
    assert str(info.value) == (
        "ModelBundle B: 1 problem\n"
        f"  - path {str(missing)!r} does not exist. Fix: build it (`make bundle`, or "
        "`inf3kit compile` then `inf3kit bundle`), or give an s3:// URI"
    )


def test_fails_when_bundle_gets_both_or_neither_location(tmp_path: Path) -> None:
    message = (
        "ModelBundle B: 1 problem\n"
        "  - give exactly one of `path` (a local .tar.gz) or `s3_uri` "
        "(s3://bucket/key.tar.gz)"
    )
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"")
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B")
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B", path=archive, s3_uri="s3://models-bucket/x.tar.gz")
    assert str(info.value) == message


def test_network_leaves_the_default_security_group_alone_by_default(template: Template) -> None:
    # The restriction is a Lambda-backed custom resource the local emulator cannot run.
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 0)
    template.resource_count_is("AWS::Lambda::Function", 0)


def test_network_restricts_the_default_security_group_when_asked() -> None:
    stack = cdk.Stack(cdk.App())
    logs = ModelArtifacts(stack, "A").access_logs
    ServiceNetwork(stack, "N", flow_log_bucket=logs, restrict_default_security_group=True)
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)
    template.has_resource_properties(
        "Custom::VpcRestrictDefaultSG",
        {
            "DefaultSecurityGroupId": {
                "Fn::GetAtt": [Match.string_like_regexp("^N"), "DefaultSecurityGroup"]
            }
        },
    )


def test_fails_when_bundle_uri_is_not_an_archive() -> None:
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B", s3_uri="s3://b/model.zip")
    assert str(info.value) == (
        "ModelBundle B: 1 problem\n"
        "  - s3_uri: 's3://b/model.zip' is not an s3 URI of a bundle archive. "
        "Fix: use s3://BUCKET/PATH/model.tar.gz (pack one with `inf3kit bundle`)"
    )


def test_fails_when_network_zones_are_out_of_range() -> None:
    stack = cdk.Stack(cdk.App())
    logs = ModelArtifacts(stack, "A").access_logs
    with pytest.raises(ValueError) as info:
        ServiceNetwork(stack, "N", flow_log_bucket=logs, max_azs=9)
    assert str(info.value) == "ServiceNetwork N: 1 problem\n  - max_azs must be 1..6, got 9"


def test_fails_when_network_has_more_nat_gateways_than_zones() -> None:
    stack = cdk.Stack(cdk.App())
    logs = ModelArtifacts(stack, "A").access_logs
    with pytest.raises(ValueError) as info:
        ServiceNetwork(stack, "N", flow_log_bucket=logs, max_azs=2, nat_gateways=3)
    assert str(info.value) == (
        "ServiceNetwork N: 1 problem\n"
        "  - nat_gateways: got 3, must be 0..2 (max_azs; at most one per zone). "
        "Fix: use 1 for shared egress, max_azs for one per zone, or 0 for none"
    )


def test_fails_when_bundle_has_both_locations_and_a_bad_uri_and_lists_both() -> None:
    with pytest.raises(ValueError) as info:
        ModelBundle(cdk.Stack(cdk.App()), "B", path="x.tar.gz", s3_uri="s3://b/model.zip")
    assert str(info.value) == (
        "ModelBundle B: 3 problems\n"
        "  - give exactly one of `path` (a local .tar.gz) or `s3_uri` (s3://bucket/key.tar.gz)\n"
        "  - s3_uri: 's3://b/model.zip' is not an s3 URI of a bundle archive. "
        "Fix: use s3://BUCKET/PATH/model.tar.gz (pack one with `inf3kit bundle`)\n"
        "  - path 'x.tar.gz' does not exist. Fix: build it (`make bundle`, or `inf3kit "
        "compile` then `inf3kit bundle`), or give an s3:// URI"
    )


def test_cfn_lint_waivers_merge_with_earlier_ones() -> None:
    stack = cdk.Stack(cdk.App())
    resource = cdk.CfnResource(stack, "R", type="AWS::SNS::Topic")
    reason = "a reason long enough to be specific"
    for rule in ("E3030", "E3628", "E3030"):
        waive_cfn_lint(resource, rule, reason)
    Template.from_stack(stack).has_resource(
        "AWS::SNS::Topic",
        {"Metadata": {"cfn-lint": {"config": {"ignore_checks": ["E3030", "E3628"]}}}},
    )
    with pytest.raises(ValueError) as info:
        waive_cfn_lint(resource, "E1001", "because")
    assert str(info.value) == "waiving E1001 needs a specific reason, got 'because'"


def test_the_types_waived_as_unlisted_are_exactly_the_ga_ones_cfn_lint_lacks() -> None:
    """LINT_UNLISTED is checked against cfn-lint's own EC2 instance-type data, so an update of
    cfn-lint that learns a type (or a new GA type it lacks) fails here instead of going stale."""
    import json
    from importlib.resources import files

    from inf3kit.catalog import load_catalog
    from inf3kit.constructs.hardware_checks import LINT_UNLISTED

    data = files("cfnlint") / "data/schemas/extensions/aws_ec2_instance/instancetype_enum.json"
    listed = set(json.loads(data.read_text())["us-east-1"]["enum"])
    catalog = load_catalog()
    ga_ec2 = {
        t.name
        for t in catalog.types(platform="ec2")
        if t.is_neuron and not t.provisional and t.family != "inf1"
    }
    assert ga_ec2 - listed == LINT_UNLISTED
