"""NeuronAmi: the machine image a Neuron fleet boots, from the catalog's compatibility matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jsii
from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from inf3kit.catalog import Compatibility, load_compatibility
from inf3kit.constructs.validation import raise_if_problems

if TYPE_CHECKING:
    from inf3kit.constructs.ami_pipeline import NeuronAmiPipeline


@jsii.implements(ec2.IMachineImage)
class NeuronAmi(Construct):
    """The AWS Neuron DLAMI for some instance types, resolved from its public SSM parameter.

    The compatibility matrix names the DLAMI parameter per instance family, so the image always
    carries a Neuron driver and runtime that supports the hardware. The parameter is read at
    deploy time (a CloudFormation `AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>` parameter),
    never looked up at synthesis: templates stay environment-agnostic and a stack update picks up
    the latest image. Use it anywhere an `ec2.IMachineImage` is accepted.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        instance_types: Sequence[str] = ("inf2.xlarge",),
        parameter_name: str | None = None,
        compatibility: Compatibility | None = None,
    ) -> None:
        """Choose the image.

        :param instance_types: the types that will boot the image. Every one must map to the
            same DLAMI in the compatibility matrix. Default: `inf2.xlarge`.
        :param parameter_name: an SSM parameter holding an AMI id, read instead of the matrix,
            e.g. the one a baking pipeline publishes. Default: the matrix's DLAMI parameter.
        :param compatibility: the matrix to read. Default: the shipped one merged with the
            file named by INF3KIT_CATALOG.
        """
        super().__init__(scope, id)
        problems = _validate(instance_types, parameter_name, compatibility)
        raise_if_problems("NeuronAmi", id, problems)
        if parameter_name is None:
            matrix = compatibility or load_compatibility()
            parameter_name = matrix.dlami_parameter(instance_types[0])
        self.parameter_name: str = parameter_name
        self._image = ec2.MachineImage.from_ssm_parameter(
            parameter_name, os=ec2.OperatingSystemType.LINUX
        )

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        """Return the image id (a deploy-time parameter), OS type and user data for `scope`."""
        return self._image.get_image(scope)

    @staticmethod
    def from_pipeline(pipeline: NeuronAmiPipeline) -> ec2.IMachineImage:
        """The AMI a `NeuronAmiPipeline` bakes, read by EC2 from its SSM parameter at launch.

        Whatever launches from it waits for the pipeline's build-at-deploy image, so the
        parameter exists before the first instance starts (see `PipelineImage`).
        """
        return pipeline.machine_image


def _validate(
    instance_types: Sequence[str],
    parameter_name: str | None,
    compatibility: Compatibility | None,
) -> list[str]:
    if isinstance(instance_types, str):
        return [
            f"instance_types must be a list of types, got the string {instance_types!r}. "
            f"Fix: instance_types=[{instance_types!r}]"
        ]
    if parameter_name is not None:
        if not Token.is_unresolved(parameter_name) and not parameter_name.startswith("/"):
            return [
                f"parameter_name {parameter_name!r} must be an SSM parameter path starting "
                "with '/'. Fix: e.g. '/inf3kit/ami/latest'"
            ]
        return []
    if not instance_types:
        return ["instance_types is empty. Fix: give at least one type, e.g. ['inf2.xlarge']"]
    matrix = compatibility or load_compatibility()
    problems: list[str] = []
    parameters: dict[str, list[str]] = {}
    for name in instance_types:
        if Token.is_unresolved(name):
            continue
        try:
            parameters.setdefault(matrix.dlami_parameter(name), []).append(name)
        except ValueError as exc:
            problems.append(str(exc))
    if len(parameters) > 1:
        groups = "; ".join(f"{', '.join(types)} -> {p}" for p, types in parameters.items())
        problems.append(
            f"instance types {', '.join(map(repr, instance_types))} need different DLAMIs "
            f"({groups}), but a group boots one image. Fix: split them into one fleet per "
            "DLAMI, or give parameter_name"
        )
    return problems


@jsii.implements(ec2.IMachineImage)
class FixedImage:
    """One AMI id in every region (a baked or shared image), for the fleet's `machine_image`."""

    def __init__(self, image_id: str) -> None:
        if not Token.is_unresolved(image_id) and not image_id.startswith("ami-"):
            raise ValueError(f"image_id {image_id!r} is not an AMI id. Fix: use 'ami-...'")
        self.image_id = image_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        """Return the fixed id with Linux user data."""
        return ec2.MachineImageConfig(
            image_id=self.image_id,
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )
