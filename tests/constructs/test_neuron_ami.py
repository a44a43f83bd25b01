"""NeuronAmi (the DLAMI read from SSM) and NeuronAmiPipeline (the baked, tested AMI)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from inf3kit import __version__
from inf3kit.catalog import Compatibility, load_compatibility
from inf3kit.constructs import FixedImage, NeuronAmi, NeuronAmiPipeline, RuntimeWheel


@pytest.fixture(scope="module")
def template() -> Template:
    stack = cdk.Stack(cdk.App(), "Ami")
    ami = NeuronAmi(stack, "Ami", instance_types=["inf3.xlarge", "inf2.xlarge"])
    ec2.CfnLaunchTemplate(
        stack,
        "Lt",
        launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
            image_id=ami.get_image(stack).image_id
        ),
    )
    return Template.from_stack(stack)


def test_reads_the_dlami_parameter_of_the_matrix_at_deploy_time(template: Template) -> None:
    params = template.to_json()["Parameters"]
    (param,) = [p for p in params.values() if "Image::Id" in p["Type"]]
    assert param == {
        "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        "Default": "/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id",
    }
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": {
                "ImageId": {"Ref": Match.string_like_regexp("^SsmParameterValue")}
            }
        },
    )


DLAMI = "/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id"
LOOKUP_KEY = f"ssm:account=111122223333:parameterName={DLAMI}:region=eu-west-1"


def _pinned_stack(context: dict[str, str]) -> tuple[cdk.App, NeuronAmi, Template]:
    app = cdk.App(context=context)
    stack = cdk.Stack(
        app, "Pinned", env=cdk.Environment(account="111122223333", region="eu-west-1")
    )
    ami = NeuronAmi(stack, "Ami", instance_types=["inf2.xlarge"])
    ec2.LaunchTemplate(stack, "Lt", machine_image=ami)
    return app, ami, Template.from_stack(stack)


def test_a_stack_with_an_environment_keeps_the_image_it_looked_up() -> None:
    """CloudFormation resolves an SSM parameter type again on every stack update (CloudFormation
    user guide, "Specify existing resources at runtime with CloudFormation-supplied parameter
    types"), so the DLAMI is looked up once and kept in cdk.context.json instead."""
    _, ami, template = _pinned_stack({LOOKUP_KEY: "ami-0123456789abcdef0"})
    assert ami.pinned and ami.image_id == "ami-0123456789abcdef0"
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": "ami-0123456789abcdef0"})},
    )
    assert not [
        p for p in template.to_json().get("Parameters", {}).values() if "Image::Id" in p["Type"]
    ]


def test_before_the_lookup_the_cdk_cli_is_asked_for_it() -> None:
    app, ami, template = _pinned_stack({})
    assert ami.pinned and ami.image_id is None
    manifest = json.loads((Path(app.synth().directory) / "manifest.json").read_text())
    assert [m["key"] for m in manifest["missing"]] == [LOOKUP_KEY]
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": {"Ref": Match.any_value()}})},
    )


def test_an_environment_agnostic_stack_warns_that_updates_move_the_image() -> None:
    stack = cdk.Stack(cdk.App(), "Agnostic")
    ami = NeuronAmi(stack, "Ami", instance_types=["inf2.xlarge"])
    assert not ami.pinned
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(".*"))
    assert any(f"the AMI comes from {DLAMI} at deploy time" in str(w.entry.data) for w in warnings)


def test_parameter_name_overrides_the_matrix() -> None:
    stack = cdk.Stack(cdk.App(), "Own")
    ami = NeuronAmi(stack, "Ami", instance_types=["inf1.xlarge"], parameter_name="/inf3kit/ami")
    assert ami.parameter_name == "/inf3kit/ami"


def test_fails_when_types_need_different_dlamis() -> None:
    shipped = load_compatibility().data
    trn2 = shipped.families["trn2"].model_copy(update={"dlami_ssm_parameter": "/team/trn2-ami"})
    matrix = Compatibility(
        shipped.model_copy(update={"families": {**shipped.families, "trn2": trn2}})
    )
    stack = cdk.Stack(cdk.App(), "Mixed")
    with pytest.raises(ValueError) as info:
        NeuronAmi(
            stack, "Ami", instance_types=["inf2.xlarge", "trn2.48xlarge"], compatibility=matrix
        )
    assert str(info.value) == (
        "NeuronAmi Ami: 1 problem\n"
        "  - instance types 'inf2.xlarge', 'trn2.48xlarge' need different DLAMIs "
        "(inf2.xlarge -> /aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id; "
        "trn2.48xlarge -> /team/trn2-ami), but a group boots one image. Fix: split them into one "
        "fleet per DLAMI, or give parameter_name"
    )


def test_fails_when_no_dlami_supports_the_family() -> None:
    stack = cdk.Stack(cdk.App(), "Inf1")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", instance_types=["inf1.xlarge"])
    assert str(info.value) == (
        "NeuronAmi Ami: 1 problem\n"
        "  - no Neuron DLAMI supports 'inf1' (inf1.xlarge): the Neuron DLAMIs no longer support "
        "Inf1, and an inf3kit fleet installs torch-neuronx (Neuron 2.x), which cannot drive "
        "Inferentia1 (Neuron docs, Inf1 support matrix and DLAMI release notes). Fix: give your "
        "own AMI"
    )


def test_fails_when_the_family_has_no_neuron_support_entry() -> None:
    stack = cdk.Stack(cdk.App(), "Gpu")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", instance_types=["g5.xlarge"])
    assert str(info.value).startswith(
        "NeuronAmi Ami: 1 problem\n"
        "  - instance family 'g5' (from 'g5.xlarge') has no Neuron support entry; "
    )


def test_fails_when_parameter_name_is_not_a_path() -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", parameter_name="inf3kit-ami")
    assert str(info.value) == (
        "NeuronAmi Ami: 1 problem\n"
        "  - parameter_name 'inf3kit-ami' must be an SSM parameter path starting "
        "with '/'. Fix: e.g. '/inf3kit/ami/latest'"
    )


def test_fixed_image_is_the_same_id_everywhere() -> None:
    stack = cdk.Stack(cdk.App(), "Fixed")
    assert FixedImage("ami-0123456789abcdef0").get_image(stack).image_id == "ami-0123456789abcdef0"
    with pytest.raises(
        ValueError, match=r"^image_id 'img-1' is not an AMI id. Fix: use 'ami-...'$"
    ):
        FixedImage("img-1")


# --- the Image Builder pipeline ----------------------------------------------------------------

PINS = {
    "aws-neuronx-dkms": "2.25.4.0",
    "aws-neuronx-runtime-lib": "2.29.40.0",
    "aws-neuronx-collectives": "2.29.41.0",
    "aws-neuronx-tools": "2.27.33.0",
}


@pytest.fixture(scope="module")
def pipeline_template() -> Template:
    stack = cdk.Stack(cdk.App(), "Baked")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    pipeline = NeuronAmiPipeline(
        stack,
        "Pipeline",
        instance_types=["inf2.xlarge", "inf2.8xlarge"],
        vpc=vpc,
        parameter_name="/inf3kit/ami/ranker",
        notification_topic=sns.Topic(stack, "Builds"),
    )
    ec2.LaunchTemplate(stack, "Lt", machine_image=NeuronAmi.from_pipeline(pipeline))
    return Template.from_stack(stack)


def _component_data(template: Template, name: str) -> str:
    (component,) = template.find_resources(
        "AWS::ImageBuilder::Component",
        {"Properties": {"Name": Match.string_like_regexp(f"-{name}$")}},
    ).values()
    data = component["Properties"]["Data"]
    if isinstance(data, dict):  # the wheel asset's S3 URL is a reference
        data = "".join(p if isinstance(p, str) else "<ref>" for p in data["Fn::Join"][1])
    return str(data)


def test_build_component_pins_neuron_packages_and_installs_the_runtime(
    pipeline_template: Template,
) -> None:
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::Component",
        {
            "Name": Match.string_like_regexp("-BuildComponent$"),
            "Platform": "Linux",
            "Version": Match.string_like_regexp(r"^1\.0\.\d+$"),
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^PipelineKey"), "Arn"]},
        },
    )
    data = _component_data(pipeline_template, "BuildComponent")
    for name, ver in PINS.items():
        assert f"'{name}={ver}*'" in data
    assert "apt-mark hold aws-neuronx-dkms aws-neuronx-runtime-lib" in data
    # inf3kit from the wheel the stack ships (it is on no public index), and the Neuron 2.27.1
    # compiler and framework at the release's exact versions from AWS's index.
    wheel = f"/opt/inf3kit/wheels/inf3kit-{__version__}-py3-none-any.whl"
    assert "source: s3://<ref>" in data and f"destination: {wheel}" in data
    assert (
        f"--extra-index-url https://pip.repos.neuron.amazonaws.com '{wheel}[serve]' "
        "'torch-neuronx==2.9.0.2.11.19912' 'neuronx-cc==2.22.12471.0' 'torch==2.9.0'"
    ) in data
    assert "'inf3kit[serve]" not in data


def test_build_waits_for_the_dpkg_lock_and_checks_the_driver_built(
    pipeline_template: Template,
) -> None:
    """A fresh Ubuntu instance runs unattended-upgrades at boot (Ubuntu server guide, "Automatic
    updates"), which holds the dpkg lock; a pinned DKMS driver may not build for a newer kernel."""
    data = _component_data(pipeline_template, "BuildComponent")
    stop = data.index("systemctl stop apt-daily.timer apt-daily-upgrade.timer")
    wait = data.index("cloud-init status --wait")
    install = data.index("apt-get -o DPkg::Lock::Timeout=600 install")
    assert stop < wait < data.index("apt-get -o DPkg::Lock::Timeout=600 update") < install
    assert data.index('dkms status -m aws-neuronx -k "$(uname -r)" | grep -q installed') > install


def test_test_component_checks_driver_device_and_runtime(pipeline_template: Template) -> None:
    data = _component_data(pipeline_template, "TestComponent")
    assert "- name: test" in data
    assert "dpkg-query -W -f='${Version}' aws-neuronx-dkms | grep -q '^2.25.4.0'" in data
    assert "/opt/aws/neuron/bin/neuron-ls" in data
    assert "test -e /dev/neuron0" in data
    assert '/opt/inf3kit/venv/bin/python -c "import inf3kit.runtime"' in data
    assert "/opt/inf3kit/venv/bin/inf3kit --help" in data


def test_recipe_starts_from_the_dlami_parameter_on_a_kms_encrypted_volume(
    pipeline_template: Template,
) -> None:
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::ImageRecipe",
        {
            "ParentImage": "ssm:/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id",
            "Components": Match.array_with(
                [
                    {"ComponentArn": {"Fn::GetAtt": [Match.string_like_regexp("Build"), "Arn"]}},
                    {"ComponentArn": {"Fn::GetAtt": [Match.string_like_regexp("Test"), "Arn"]}},
                ]
            ),
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": Match.object_like(
                        {
                            "Encrypted": True,
                            "KmsKeyId": {
                                "Fn::GetAtt": [Match.string_like_regexp("^PipelineKey"), "Arn"]
                            },
                            "VolumeType": "gp3",
                            "VolumeSize": 150,
                        }
                    ),
                }
            ],
        },
    )


def test_infrastructure_requires_imdsv2_in_the_vpc_and_logs_to_s3(
    pipeline_template: Template,
) -> None:
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::InfrastructureConfiguration",
        {
            "InstanceTypes": ["inf2.xlarge"],
            "InstanceMetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
            "InstanceProfileName": {"Ref": Match.string_like_regexp("^PipelineInstanceProfile")},
            "SecurityGroupIds": [
                {"Fn::GetAtt": [Match.string_like_regexp("^PipelineSecurityGroup"), "GroupId"]}
            ],
            "SubnetId": {"Ref": Match.string_like_regexp("^VpcPrivateSubnet1")},
            "Logging": {
                "S3Logs": {
                    "S3BucketName": {"Ref": Match.string_like_regexp("^PipelineLogs")},
                    "S3KeyPrefix": "image-builder",
                }
            },
            "SnsTopicArn": {"Ref": Match.string_like_regexp("^Builds")},
            "TerminateInstanceOnFailure": True,
        },
    )
    pipeline_template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "ManagedPolicyArns": [
                {
                    "Fn::Join": [
                        "",
                        Match.array_with([":iam::aws:policy/AmazonSSMManagedInstanceCore"]),
                    ]
                },
                {
                    "Fn::Join": [
                        "",
                        Match.array_with([":iam::aws:policy/EC2InstanceProfileForImageBuilder"]),
                    ]
                },
            ]
        },
    )
    pipeline_template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            }
                        }
                    )
                ]
            }
        },
    )


def test_distribution_publishes_the_ami_id_to_the_ssm_parameter(
    pipeline_template: Template,
) -> None:
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::DistributionConfiguration",
        {
            "Distributions": [
                Match.object_like(
                    {
                        "Region": {"Ref": "AWS::Region"},
                        "SsmParameterConfigurations": [
                            {"ParameterName": "/inf3kit/ami/ranker", "DataType": "aws:ec2:image"}
                        ],
                        "AmiDistributionConfiguration": Match.object_like(
                            {"AmiTags": Match.object_like({"inf3kit:aws-neuronx-dkms": "2.25.4.0"})}
                        ),
                    }
                )
            ]
        },
    )


def test_pipeline_runs_image_tests_on_a_weekly_schedule(pipeline_template: Template) -> None:
    tests = {"ImageTestsEnabled": True, "TimeoutMinutes": 60}
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::ImagePipeline",
        {
            "ImageTestsConfiguration": tests,
            "Schedule": {
                "ScheduleExpression": "cron(0 4 ? * mon *)",
                "PipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY",
            },
            "Status": "ENABLED",
        },
    )
    pipeline_template.has_resource_properties(
        "AWS::ImageBuilder::Image", {"ImageTestsConfiguration": tests}
    )


def test_launch_template_reads_the_parameter_at_launch_after_the_first_build(
    pipeline_template: Template,
) -> None:
    pipeline_template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": "resolve:ssm:/inf3kit/ami/ranker"})},
    )
    (lt,) = pipeline_template.find_resources("AWS::EC2::LaunchTemplate").values()
    (image_id,) = pipeline_template.find_resources("AWS::ImageBuilder::Image")
    assert image_id in lt["DependsOn"]


def test_manual_pipeline_without_vpc_builds_in_the_default_vpc() -> None:
    stack = cdk.Stack(cdk.App(), "Manual")
    pipeline = NeuronAmiPipeline(stack, "Pipeline", schedule=None, build_at_deploy=False)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ImageBuilder::ImagePipeline", {"Schedule": Match.absent()}
    )
    template.has_resource_properties(
        "AWS::ImageBuilder::InfrastructureConfiguration",
        {"SubnetId": Match.absent(), "SecurityGroupIds": Match.absent()},
    )
    template.resource_count_is("AWS::ImageBuilder::Image", 0)
    assert pipeline.image is None
    assert pipeline.parameter_name.startswith("/inf3kit/ami/Manual-Pipeline-")


def test_component_version_changes_with_the_pins() -> None:
    def version(**props: object) -> str:
        stack = cdk.Stack(cdk.App(), "V")
        return NeuronAmiPipeline(stack, "P", **props).build_component.version  # type: ignore[arg-type]

    assert version() == version()
    assert version() != version(neuron_packages={**PINS, "aws-neuronx-tools": "2.27.34.0"})


def test_fails_when_every_prop_is_wrong_at_once() -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError) as info:
        NeuronAmiPipeline(
            stack,
            "Pipeline",
            instance_types=["inf1.xlarge"],
            build_instance_type="g5.xlarge",
            parent_image="ubuntu",
            parameter_name="/aws/mine",
            schedule="weekly",
            test_timeout=cdk.Duration.minutes(5),
        )
    lines = str(info.value).split("\n")
    assert lines[0] == "NeuronAmiPipeline Pipeline: 6 problems"
    assert [line.removeprefix("  - ") for line in lines[1:]] == [
        "build_instance_type: 'g5.xlarge' is a GPU type (nvidia-a10g), listed only as a cost "
        "baseline; inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. "
        "'inf2.xlarge' (the image tests need a Neuron device)",
        "inf1 needs Neuron 1.x (Neuron 1.x (torch-neuron); "
        "Neuron 2.x does not target Inferentia1), but the image bakes a Neuron 2.x release. "
        "Fix: boot inf1 from its DLAMI (NeuronAmi) instead of a baked image, or drop it",
        "parent_image 'ubuntu' is not an AMI id, an Image Builder image ARN or an SSM "
        "parameter. Fix: e.g. 'ami-0123456789abcdef0' or "
        "'ssm:/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id'",
        "parameter_name '/aws/mine' must be an SSM parameter path of letters, digits and _.-/ "
        "starting with '/' (not /aws or /ssm). Fix: e.g. '/inf3kit/ami/ranker'",
        "schedule: got 'weekly', not a cron expression. Fix: write cron(MIN HOUR DAY MONTH "
        "WEEKDAY YEAR), e.g. 'cron(0 4 ? * mon *)'",
        "test_timeout 5 minutes must be whole minutes from 60 to 1440 (Image Builder's "
        "limits). Fix: e.g. Duration.minutes(60)",
    ]


def test_fails_when_the_neuron_release_is_unknown() -> None:
    stack = cdk.Stack(cdk.App(), "Sdk")
    with pytest.raises(ValueError) as info:
        NeuronAmiPipeline(stack, "Pipeline", neuron_sdk="2.20.0")
    assert str(info.value) == (
        "NeuronAmiPipeline Pipeline: 1 problem\n"
        "  - Neuron release '2.20.0' is not in the compatibility matrix (known: 2.21.0, 2.21.1, "
        "2.22.0, 2.23.0, 2.24.0, 2.24.1, 2.25.0, 2.26.0, 2.26.1, 2.27.0, 2.27.1, 2.28.0, 2.28.1, "
        "2.29.0, 2.29.1, 2.30.0, 2.31.0, 2.31.1). Fix: use a known release, or add it with its "
        "packages under `compatibility.neuron_releases` in a catalog override file"
    )


def test_another_release_bakes_its_own_packages() -> None:
    """One source of truth: the apt pins and the venv's pip pins both come from the matrix."""
    stack = cdk.Stack(cdk.App(), "Newer")
    pipeline = NeuronAmiPipeline(stack, "Pipeline", neuron_sdk="2.29.0")
    data = _component_data(Template.from_stack(stack), "BuildComponent")
    assert pipeline.neuron_sdk == "2.29.0"
    assert "'aws-neuronx-dkms=2.27.4.0*'" in data and "'aws-neuronx-tools=2.29.18.0*'" in data
    assert "'torch-neuronx==2.9.0.2.13.24727' 'neuronx-cc==2.24.5133.0' 'torch==2.9.0'" in data


def test_fails_when_the_pinned_release_is_too_old_for_inf3() -> None:
    stack = cdk.Stack(cdk.App(), "Old")
    with pytest.raises(ValueError) as info:
        NeuronAmiPipeline(
            stack,
            "Pipeline",
            instance_types=["inf3.xlarge"],
            neuron_sdk="2.21.0",
            neuron_packages={"aws-neuronx-dkms": "2.19.64.0", "neuron-tools": "1"},
        )
    assert str(info.value) == (
        "NeuronAmiPipeline Pipeline: 3 problems\n"
        "  - Neuron 2.21.0 does not support inf3 (it needs at least 2.27.0). Fix: pin a release "
        ">= 2.27.0, or drop inf3\n"
        "  - Neuron 2.21.0 publishes its packages for Python 3.8, 3.9, 3.10, 3.11, but the "
        "Neuron DLAMI's python3 is 3.12: pip would find no torch-neuronx for it and every boot "
        "would fail. Fix: pin a release for Python 3.12 (e.g. '2.31.1'), or build on an AMI of "
        "your own (spec: fleet.ami.source id; NeuronFleet: machine_image; NeuronAmiPipeline: "
        "parent_image)\n"
        "  - neuron_packages 'neuron-tools' are not Neuron apt packages. Fix: pin aws-neuronx-* "
        "packages only (e.g. 'aws-neuronx-dkms')"
    )


def test_wheel_from_s3_is_downloaded_and_readable_by_the_build_role() -> None:
    stack = cdk.Stack(cdk.App(), "Wheel")
    wheels = s3.Bucket(stack, "Wheels")
    pipeline = NeuronAmiPipeline(
        stack,
        "Pipeline",
        runtime_wheel=RuntimeWheel(wheels, "w/0a1b2c.whl", "inf3kit-1.0-py3-none-any.whl"),
    )
    template = Template.from_stack(stack)
    data = json.dumps(
        template.to_json()["Resources"][stack.get_logical_id(pipeline.build_component)]
    )
    assert "action: S3Download" in data
    assert "/opt/inf3kit/wheels/inf3kit-1.0-py3-none-any.whl[serve]" in data
    assert "'inf3kit[serve]" not in data
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "ReadRuntimeWheel",
                                "Action": "s3:GetObject",
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        [
                                            {"Fn::GetAtt": [Match.any_value(), "Arn"]},
                                            "/w/0a1b2c.whl",
                                        ],
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
