"""NeuronAmi: the machine image a Neuron fleet boots, from the catalog's compatibility matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jsii
from aws_cdk import Annotations, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct, IConstruct

from inf3kit.catalog import Compatibility, load_compatibility
from inf3kit.constructs.validation import raise_if_problems

if TYPE_CHECKING:
    from inf3kit.constructs.ami_pipeline import NeuronAmiPipeline


UNPINNED_WARNING_ID = "inf3kit:dlamiNotPinned"
LOOKUP_PLACEHOLDER = "dummy-value-for-"
"""What a CDK context lookup answers before the CDK CLI has performed it."""


@jsii.implements(ec2.IMachineImage)
class NeuronAmi(Construct):
    """The AWS Neuron DLAMI for some instance types, resolved from its public SSM parameter.

    The compatibility matrix names the DLAMI parameter per instance family, so the image always
    carries a Neuron driver and runtime that supports the hardware. In a stack with an account
    and region the image id is looked up at synthesis and kept in `cdk.context.json`, the CDK
    convention for lookups: a deploy never moves the fleet to whatever DLAMI AWS published
    since, because CloudFormation resolves an SSM parameter again on every stack update.
    `cdk context --reset KEY` (or deleting the entry) moves to the newest image on purpose.
    An environment-agnostic stack cannot look anything up: it reads the parameter at deploy time
    and synthesis warns. Use it anywhere an `ec2.IMachineImage` is accepted.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        instance_types: Sequence[str] = ("inf2.xlarge",),
        parameter_name: str | None = None,
        compatibility: Compatibility | None = None,
        pin: bool = True,
    ) -> None:
        """Choose the image.

        :param instance_types: the types that will boot the image. Every one must map to the
            same DLAMI in the compatibility matrix. Default: `inf2.xlarge`.
        :param parameter_name: an SSM parameter holding an AMI id, read instead of the matrix,
            e.g. the one a baking pipeline publishes. Default: the matrix's DLAMI parameter.
        :param compatibility: the matrix to read. Default: the shipped one merged with the
            file named by INF3KIT_CATALOG.
        :param pin: look the image up at synthesis and keep it in `cdk.context.json` when the
            stack has an account and region. Default: True. False reads the parameter on every
            deploy (and every update may move to a newer image).
        """
        super().__init__(scope, id)
        problems = _validate(instance_types, parameter_name, compatibility)
        raise_if_problems("NeuronAmi", self, problems)
        if parameter_name is None:
            matrix = compatibility or load_compatibility()
            parameter_name = matrix.dlami_parameter(instance_types[0])
        self.parameter_name: str = parameter_name
        stack = Stack.of(self)
        self.pinned: bool = pin and not (
            Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region)
        )
        """Whether the image id was fixed at synthesis (in `cdk.context.json`)."""
        self.image_id: str | None = None
        """The AMI id fixed at synthesis, or None while it is read at deploy time."""
        if self.pinned:
            found = ssm.StringParameter.value_from_lookup(self, parameter_name)
            # Until the CDK CLI has looked the parameter up (it then synthesizes again), the
            # lookup answers a placeholder; the template reads the parameter meanwhile.
            self.image_id = None if found.startswith(LOOKUP_PLACEHOLDER) else found
        if self.image_id is not None:
            self._image = ec2.MachineImage.generic_linux({stack.region: self.image_id})
        else:
            self._image = ec2.MachineImage.from_ssm_parameter(
                parameter_name, os=ec2.OperatingSystemType.LINUX
            )
        if pin and not self.pinned:
            Annotations.of(self).add_warning_v2(
                UNPINNED_WARNING_ID,
                f"the AMI comes from {parameter_name} at deploy time, because the stack has no "
                "account and region to look it up at synthesis: every stack update moves the "
                "instances to the newest DLAMI. Fix: give the stack an account and region "
                "(spec `environments:`, or deploy with the CDK CLI, which sets them), or a fixed "
                "AMI id",
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


@jsii.implements(ec2.IMachineImage)
class PipelineImage:
    """The AMI a `NeuronAmiPipeline` publishes, resolved by EC2 from SSM at each launch.

    A CloudFormation `AWS::SSM::Parameter::Value` parameter would be resolved before any
    resource of the stack exists, so a fleet in the same stack as its first build could never
    deploy. EC2 resolves `resolve:ssm:` when it launches an instance instead, and whoever uses
    this image (a launch template) is made to depend on the build-at-deploy image, so the first
    instance launches only after the parameter has been published.
    """

    def __init__(self, parameter_name: str, build: IConstruct | None = None) -> None:
        self.parameter_name = parameter_name
        self._build = build
        self._image = ec2.MachineImage.resolve_ssm_parameter_at_launch(
            parameter_name, os=ec2.OperatingSystemType.LINUX
        )

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        """Return `resolve:ssm:<parameter>` and make `scope` wait for the first build."""
        if self._build is not None:
            scope.node.add_dependency(self._build)
        return self._image.get_image(scope)
