"""The fleet examples become NeuronFleets that output the load balancer DNS name."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import SynthResult


def _template(result: SynthResult, stack: str) -> dict:
    return json.loads((result.assembly_dir / f"{stack}.template.json").read_text())


@pytest.mark.parametrize(
    ("example", "stack"),
    [
        ("fleet-fallback", "ranker-fleet"),
        ("fleet-warm-pool", "embedder"),
        ("fleet-baked-ami", "summarizer"),
        ("multi-env", "ranker-prod"),
    ],
)
def test_fleet_examples_output_the_load_balancer_dns(
    synthesized: dict[str, SynthResult], example: str, stack: str
) -> None:
    outputs = _template(synthesized[example], stack)["Outputs"]
    assert outputs["LoadBalancerDnsName"]["Value"]["Fn::GetAtt"][1] == "DNSName"
    assert outputs["FleetUrl"]["Value"]["Fn::Join"][1][0] == "http://"


def test_fallback_example_prefers_inf3_then_inf2(synthesized: dict[str, SynthResult]) -> None:
    resources = _template(synthesized["fleet-fallback"], "ranker-fleet")["Resources"]
    (group,) = [r for r in resources.values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    overrides = group["Properties"]["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert overrides == [{"InstanceType": "inf3.xlarge"}, {"InstanceType": "inf2.xlarge"}]
    assert any("inf3.xlarge is provisional" in w for w in synthesized["fleet-fallback"].warnings)


def test_warm_pool_example_has_a_stopped_warm_pool(synthesized: dict[str, SynthResult]) -> None:
    resources = _template(synthesized["fleet-warm-pool"], "embedder")["Resources"]
    (pool,) = [r for r in resources.values() if r["Type"] == "AWS::AutoScaling::WarmPool"]
    assert pool["Properties"]["MinSize"] == 2 and pool["Properties"]["PoolState"] == "Stopped"
    (lt,) = [r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    user_data = json.dumps(lt["Properties"]["LaunchTemplateData"]["UserData"])
    assert "--env INF3KIT_MAX_BATCH_SIZE=32" in user_data
    assert "--env INF3KIT_GRACE_SECONDS=60" in user_data


def test_fails_when_public_load_balancer_has_no_certificate() -> None:
    text = (
        "name: svc\nmodel: {bundle: s3://bucket/m.tar.gz}\n"
        "fleet:\n  instance_types: [inf2.xlarge]\n"
        "  load_balancer: {public: true}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert [str(p) for p in info.value.problems] == [
        "fleet.load_balancer (line 5): a public load balancer without a certificate would serve "
        "plain HTTP to the internet. Fix: give a certificate (an ACM certificate ARN), or keep "
        "the load balancer internal"
    ]


def test_baked_ami_example_builds_a_pipeline_the_fleet_reads(
    synthesized: dict[str, SynthResult],
) -> None:
    template = Template.from_json(_template(synthesized["fleet-baked-ami"], "summarizer"))
    (parameter,) = [
        c["ParameterName"]
        for d in template.find_resources("AWS::ImageBuilder::DistributionConfiguration").values()
        for c in d["Properties"]["Distributions"][0]["SsmParameterConfigurations"]
    ]
    assert parameter.startswith("/inf3kit/ami/summarizer-AmiPipeline-")
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": f"resolve:ssm:{parameter}"})},
    )
    (image,) = template.find_resources("AWS::ImageBuilder::Image")
    (lt,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    assert image in lt["DependsOn"]
    template.has_resource_properties(
        "AWS::ImageBuilder::ImagePipeline",
        {
            "ImageTestsConfiguration": {"ImageTestsEnabled": True, "TimeoutMinutes": 60},
            "Schedule": Match.object_like({"ScheduleExpression": "cron(0 4 ? * mon *)"}),
        },
    )
    # The stack's artifact key encrypts the image and its bucket keeps the build logs.
    template.has_resource_properties(
        "AWS::ImageBuilder::InfrastructureConfiguration",
        {
            "InstanceTypes": ["inf2.xlarge"],
            "InstanceMetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
            "Logging": {
                "S3Logs": {
                    "S3BucketName": {"Ref": Match.string_like_regexp("^Artifacts")},
                    "S3KeyPrefix": "image-builder",
                }
            },
            "SubnetId": {"Ref": Match.string_like_regexp("^NetworkprivateSubnet1")},
        },
    )
    template.has_resource_properties(
        "AWS::ImageBuilder::ImageRecipe",
        {
            "BlockDeviceMappings": [
                Match.object_like(
                    {
                        "Ebs": Match.object_like(
                            {
                                "Encrypted": True,
                                "KmsKeyId": {
                                    "Fn::GetAtt": [Match.string_like_regexp("^ArtifactsKey"), "Arn"]
                                },
                            }
                        )
                    }
                )
            ]
        },
    )


def test_pipeline_options_reach_the_pipeline() -> None:
    spec = parse_spec(
        "name: svc\nmodel: {bundle: s3://bucket/m.tar.gz}\n"
        "fleet:\n  instance_types: [inf2.xlarge]\n"
        "  ami: {source: pipeline, neuron_sdk: '2.27.1', schedule: manual}\n"
    )
    fleet = spec.spec.fleet
    assert fleet is not None
    assert fleet.ami.neuron_sdk == "2.27.1" and fleet.ami.schedule == "manual"


def test_fails_when_the_schedule_is_given_without_the_pipeline() -> None:
    text = (
        "name: svc\nmodel: {bundle: s3://bucket/m.tar.gz}\n"
        "fleet:\n  instance_types: [inf2.xlarge]\n"
        "  ami: {source: dlami, neuron_sdk: '2.27.1', schedule: manual}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert [str(p) for p in info.value.problems] == [
        "fleet.ami (line 5): `schedule` is only read with source 'pipeline', but source is "
        "'dlami'. Fix: set `source: pipeline`, or remove `schedule`"
    ]


def test_fails_when_a_fleet_of_only_inf3_names_no_neuron_release() -> None:
    """No Neuron release lists Inf3 yet: the spec must name the one to install."""
    text = (
        "name: svc\nmodel: {bundle: s3://bucket/m.tar.gz}\n"
        "fleet:\n  instance_types: [inf3.xlarge]\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(
        "fleet (line 4): no Neuron release lists inf3 yet, and inf3kit does not guess which "
        "packages drive it. Fix: set neuron_sdk (spec: fleet.ami.neuron_sdk; NeuronFleet: "
        "neuron_sdk=) with the release to install (known: 2.21.0, "
    )
    named = parse_spec(text + "  ami: {neuron_sdk: '2.27.1'}\n").spec.fleet
    assert named is not None and named.ami.neuron_sdk == "2.27.1"
