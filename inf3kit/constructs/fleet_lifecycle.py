"""A fleet's lifecycle hooks, warm pool and scaling policies: how instances join and leave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_iam as iam

from inf3kit.constructs.nag import acknowledge

if TYPE_CHECKING:
    from inf3kit.constructs.fleet_metrics import FleetBase

LAUNCH_HOOK_NAME = "inf3kit-bootstrap"
"""The launch lifecycle hook a warm-pool group waits on until `inf3kit bootstrap` completes it."""
FLEET_TAG = "inf3kit:fleet"
"""Tag on the group (unique per fleet) that scopes the instances' lifecycle permission."""

WarmPoolState = Literal["stopped", "hibernated", "running"]
_POOL_STATES = {
    "stopped": autoscaling.PoolState.STOPPED,
    "hibernated": autoscaling.PoolState.HIBERNATED,
    "running": autoscaling.PoolState.RUNNING,
}


@dataclass(frozen=True)
class WarmPool:
    """Keep `min_size` pre-bootstrapped instances in `state`, so scale-out skips boot and download.

    `stopped` costs only the volumes. `hibernated` is refused: no Inferentia or Trainium family
    supports EC2 hibernation. A warm pool needs a single instance type and no Spot.
    """

    min_size: int = 1
    state: WarmPoolState = "stopped"


def add_warm_pool(fleet: FleetBase, pool: WarmPool) -> autoscaling.WarmPool:
    return fleet.group.add_warm_pool(
        min_size=pool.min_size, pool_state=_POOL_STATES[pool.state], reuse_on_scale_in=True
    )


def add_drain_hook(fleet: FleetBase, drain: Duration) -> None:
    """Terminating instances keep serving in-flight requests for `drain` before they stop."""
    fleet.group.add_lifecycle_hook(
        "Drain",
        lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
        heartbeat_timeout=Duration.seconds(max(30, drain.to_seconds() + 30)),
        default_result=autoscaling.DefaultResult.CONTINUE,
    )


def add_launch_hook(fleet: FleetBase, startup_timeout: Duration) -> str:
    """A launch lifecycle hook the bootstrap completes, and the permission to complete it.

    EC2 Auto Scaling stops a warm-pool instance as soon as it launches unless a launch
    lifecycle hook holds it ("Use lifecycle hooks with a warm pool"); an instance that never
    completes it is abandoned (terminated and replaced) after the startup timeout.
    """
    fleet.group.add_lifecycle_hook(
        "LaunchHook",
        lifecycle_hook_name=LAUNCH_HOOK_NAME,
        lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
        heartbeat_timeout=startup_timeout,
        default_result=autoscaling.DefaultResult.ABANDON,
    )
    # Scoped by the group's tag: naming the group would make the role's policy depend on
    # the group, which already waits for the role.
    fleet.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CompleteLaunchHook",
            actions=["autoscaling:CompleteLifecycleAction"],
            resources=[
                Stack.of(fleet).format_arn(
                    service="autoscaling",
                    resource="autoScalingGroup",
                    resource_name="*:autoScalingGroupName/*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            conditions={"StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG}": fleet.node.addr}},
        )
    )
    acknowledge(
        fleet.role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:"
        "<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/*]",
        "CompleteLifecycleAction is held to this fleet's group by its inf3kit:fleet tag; "
        "the group's name cannot appear here, because the group waits for this role.",
    )
    return LAUNCH_HOOK_NAME


def add_scaling(fleet: FleetBase) -> None:
    """Target tracking on ALB requests per instance and on NeuronCore utilisation."""
    if fleet.requests_per_instance is not None:
        fleet.group.scale_on_request_count(
            "RequestScaling", target_requests_per_minute=fleet.requests_per_instance
        )
    if fleet.neuroncore_utilization_percent is not None:
        fleet.group.scale_to_track_metric(
            "NeuronCoreScaling",
            metric=fleet.metric_neuroncore_utilization(),
            target_value=fleet.neuroncore_utilization_percent,
        )
