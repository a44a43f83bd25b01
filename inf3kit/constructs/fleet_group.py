"""A fleet's Auto Scaling group: launch template, volumes, instance mix and update policy.

As aws-cdk keeps the group apart from its warm pool, lifecycle hooks and scaling policies
(fleet_lifecycle.py), this module only shapes how instances launch and are replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Annotations, Duration, Size, Tags, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns

from inf3kit.catalog import Catalog
from inf3kit.constructs.fleet_lifecycle import FLEET_TAG
from inf3kit.constructs.fleet_metrics import NEURON_METRIC_NAMESPACE
from inf3kit.constructs.hardware_checks import warn_if_provisional
from inf3kit.constructs.nag import acknowledge

if TYPE_CHECKING:
    from inf3kit.constructs.fleet_metrics import FleetBase

NO_FALLBACK_WARNING_ID = "inf3kit:fleetWithoutFallback"


def warn_about_capacity(fleet: FleetBase, types: list[str], catalog: Catalog) -> None:
    descriptors = [catalog.get(t) for t in types if not Token.is_unresolved(t)]
    for itype in descriptors:
        warn_if_provisional(fleet, itype)
    if descriptors and all(t.provisional for t in descriptors):
        example = next(
            (t.name for t in catalog.types(family="inf2", platform="ec2")), "inf2.xlarge"
        )
        Annotations.of(fleet).add_warning_v2(
            NO_FALLBACK_WARNING_ID,
            f"instance_types {', '.join(t.name for t in descriptors)} are all provisional "
            "and the fleet has no generally available fallback, so it cannot launch when "
            f"that capacity is short. Fix: add a GA type after them, e.g. {example!r}",
        )


def add_launch_template(
    fleet: FleetBase,
    types: list[str],
    mixed: bool,
    imds_hop_limit: int,
    root_volume_size: Size | None,
    data_volume_size: Size | None,
) -> ec2.LaunchTemplate:
    return ec2.LaunchTemplate(
        fleet,
        "LaunchTemplate",
        machine_image=fleet.machine_image,
        instance_type=None if mixed else ec2.InstanceType(types[0]),
        role=fleet.role,
        security_group=fleet.security_group,
        require_imdsv2=True,
        http_put_response_hop_limit=imds_hop_limit,
        http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
        instance_metadata_tags=True,
        detailed_monitoring=True,
        associate_public_ip_address=False,
        block_devices=_block_devices(fleet, root_volume_size, data_volume_size),
        user_data=ec2.UserData.for_linux(),
    )


def add_group(
    fleet: FleetBase,
    vpc: ec2.IVpc,
    types: list[str],
    spot_percent: int | None,
    *,
    capacity: tuple[int, int, int | None],
    startup_timeout: Duration,
    replace_on_update: bool,
    notification_topic: sns.ITopic | None,
) -> autoscaling.AutoScalingGroup:
    """The group: a mixed-instances policy when `spot_percent` is given (None: one type).

    Updates roll one instance at a time and wait for its bootstrap signal; with a warm pool
    (`replace_on_update`) they replace group and pool instead.
    """
    low, high, desired = capacity
    initial = desired if desired is not None else low
    mixed = spot_percent is not None
    group = autoscaling.AutoScalingGroup(
        fleet,
        "Resource",
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        min_capacity=low,
        max_capacity=high,
        desired_capacity=desired,
        launch_template=None if mixed else fleet.launch_template,
        mixed_instances_policy=_mixed_policy(fleet, types, spot_percent)
        if spot_percent is not None
        else None,
        capacity_rebalance=(spot_percent or 0) > 0 or None,
        health_checks=autoscaling.HealthChecks.with_additional_checks(
            additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
            grace_period=startup_timeout,
        ),
        default_instance_warmup=startup_timeout,
        signals=autoscaling.Signals.wait_for_count(initial, timeout=startup_timeout)
        if initial > 0
        else None,
        update_policy=autoscaling.UpdatePolicy.replacing_update()
        if replace_on_update
        else autoscaling.UpdatePolicy.rolling_update(
            max_batch_size=1,
            min_instances_in_service=min(low, high - 1),
            pause_time=startup_timeout,
            wait_on_resource_signals=True,
        ),
        group_metrics=[autoscaling.GroupMetrics.all()],
        notifications=[autoscaling.NotificationConfiguration(topic=notification_topic)]
        if notification_topic is not None
        else None,
    )
    for target_group in fleet.frontend.target_groups:
        group.attach_to_application_target_group(target_group)
    group.node.add_dependency(fleet.role)
    Tags.of(group).add(FLEET_TAG, fleet.node.addr)
    return group


def _block_devices(
    fleet: FleetBase, root_volume_size: Size | None, data_volume_size: Size | None
) -> list[ec2.BlockDevice]:
    def volume(size: Size) -> ec2.BlockDeviceVolume:
        return ec2.BlockDeviceVolume.ebs(
            int(size.to_gibibytes()),
            encrypted=True,
            kms_key=fleet.key,
            volume_type=ec2.EbsDeviceVolumeType.GP3,
            delete_on_termination=True,
        )

    devices = [
        ec2.BlockDevice(
            device_name="/dev/sda1", volume=volume(root_volume_size or Size.gibibytes(150))
        )
    ]
    if data_volume_size is not None:
        devices.append(ec2.BlockDevice(device_name="/dev/sdf", volume=volume(data_volume_size)))
    return devices


def _mixed_policy(
    fleet: FleetBase, types: list[str], spot_percent: int
) -> autoscaling.MixedInstancesPolicy:
    return autoscaling.MixedInstancesPolicy(
        launch_template=fleet.launch_template,
        launch_template_overrides=[
            autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t)) for t in types
        ],
        instances_distribution=autoscaling.InstancesDistribution(
            on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
            on_demand_base_capacity=0,
            on_demand_percentage_above_base_capacity=100 - spot_percent,
            spot_allocation_strategy=autoscaling.SpotAllocationStrategy.CAPACITY_OPTIMIZED_PRIORITIZED,
        ),
    )


def acknowledge_findings(
    fleet: FleetBase,
    *,
    default_peers: bool,
    notified: bool,
    metric_namespace: str = NEURON_METRIC_NAMESPACE,
) -> None:
    acknowledge(
        fleet.role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "AmazonSSMManagedInstanceCore]",
        "AmazonSSMManagedInstanceCore gives Session Manager access instead of SSH (no key "
        "pair, no inbound port); it is the AWS-maintained minimum for the SSM agent.",
    )
    acknowledge(
        fleet.role,
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData has no resource-level permissions, so its Resource is '*', "
        f"narrowed by a cloudwatch:namespace condition to the {metric_namespace} namespace.",
    )
    acknowledge(
        fleet.group,
        "AwsSolutions-EC26",
        "Every block device of the launch template is encrypted with the fleet's KMS key "
        "(tested); the rule cannot follow the group's reference to the launch template.",
    )
    if default_peers and not fleet.load_balancer_public:
        acknowledge(
            fleet.frontend.security_group,
            "AwsSolutions-EC23",
            "The listener ingress is the VPC's own CIDR block (a reference the rule cannot "
            "evaluate at synthesis), never 0.0.0.0/0, because the load balancer is internal.",
        )
    if not notified:
        acknowledge(
            fleet.group,
            "AwsSolutions-AS3",
            "No notification_topic was given: launch, terminate and error events stay in "
            "the group's activity history and CloudTrail; pass a topic to be notified.",
        )
