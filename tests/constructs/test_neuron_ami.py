"""NeuronAmi: the DLAMI from the compatibility matrix, read at deploy time from SSM."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template

from inf3kit.constructs import FixedImage, NeuronAmi


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


def test_parameter_name_overrides_the_matrix() -> None:
    stack = cdk.Stack(cdk.App(), "Own")
    ami = NeuronAmi(stack, "Ami", instance_types=["inf1.xlarge"], parameter_name="/inf3kit/ami")
    assert ami.parameter_name == "/inf3kit/ami"


def test_fails_when_types_need_different_dlamis() -> None:
    stack = cdk.Stack(cdk.App(), "Mixed")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", instance_types=["inf1.xlarge", "inf2.xlarge"])
    assert str(info.value) == (
        "NeuronAmi Ami: instance types 'inf1.xlarge', 'inf2.xlarge' need different DLAMIs "
        "(inf1.xlarge -> /aws/service/neuron/dlami/base/ubuntu-22.04/latest/image_id; "
        "inf2.xlarge -> /aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id), but a group "
        "boots one image. Fix: split them into one fleet per DLAMI, or give parameter_name"
    )


def test_fails_when_the_family_has_no_neuron_support_entry() -> None:
    stack = cdk.Stack(cdk.App(), "Gpu")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", instance_types=["g5.xlarge"])
    assert str(info.value).startswith(
        "NeuronAmi Ami: instance family 'g5' (from 'g5.xlarge') has no Neuron support entry; "
    )


def test_fails_when_parameter_name_is_not_a_path() -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError) as info:
        NeuronAmi(stack, "Ami", parameter_name="inf3kit-ami")
    assert str(info.value) == (
        "NeuronAmi Ami: parameter_name 'inf3kit-ami' must be an SSM parameter path starting "
        "with '/'. Fix: e.g. '/inf3kit/ami/latest'"
    )


def test_fixed_image_is_the_same_id_everywhere() -> None:
    stack = cdk.Stack(cdk.App(), "Fixed")
    assert FixedImage("ami-0123456789abcdef0").get_image(stack).image_id == "ami-0123456789abcdef0"
    with pytest.raises(
        ValueError, match=r"^image_id 'img-1' is not an AMI id. Fix: use 'ami-...'$"
    ):
        FixedImage("img-1")
