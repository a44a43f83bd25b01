"""How an endpoint's instance count follows traffic, and the windows that pin it low."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Duration, Stack, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from inf3kit.constructs.endpoint_base import VARIANT_NAME

DEFAULT_MIN_CAPACITY = 1
DEFAULT_MAX_CAPACITY = 2
DEFAULT_INVOCATIONS_PER_INSTANCE = 500
DEFAULT_SCALE_IN_COOLDOWN = Duration.minutes(5)
DEFAULT_SCALE_OUT_COOLDOWN = Duration.minutes(1)
_SCALING_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


@dataclass(frozen=True)
class ScaleDownSchedule:
    """Cron windows that pin capacity low while nobody calls the endpoint (nights, weekends).

    `scale_down` and `scale_up` are Application Auto Scaling expressions, e.g.
    'cron(0 20 ? * MON-FRI *)'.
    """

    scale_down: str
    scale_up: str
    capacity_during_scale_down: int = 1
    time_zone: str | None = None
    """An IANA name such as 'Europe/Berlin'. Default: UTC."""


@dataclass(frozen=True)
class EndpointScaling:
    """Target tracking on invocations per instance, and an optional scale-down schedule.

    `invocations_per_instance` is the target, requests per instance per minute: measure yours
    with the benchmarks. Scale-in waits longer than scale-out because Neuron instances are slow
    to replace.
    """

    invocations_per_instance: int = DEFAULT_INVOCATIONS_PER_INSTANCE
    scale_in_cooldown: Duration = field(default_factory=lambda: DEFAULT_SCALE_IN_COOLDOWN)
    scale_out_cooldown: Duration = field(default_factory=lambda: DEFAULT_SCALE_OUT_COOLDOWN)
    schedule: ScaleDownSchedule | None = None


@dataclass(frozen=True)
class ConcurrencyScaling:
    """Target tracking on concurrent requests per model container, for LLM endpoints.

    An LLM request holds its place in the engine's batch until its last token streams out, so
    the requests in flight (SageMaker's high-resolution `ConcurrentRequestsPerModel`, emitted
    every 10 seconds, counting streams until their last token) measure load where invocations
    per minute do not: one long generation weighs as much as hundreds of short ones.
    `concurrent_requests_per_model` is the target per instance; None lets the construct derive
    it from the engine's batch (LlmEndpoint: three quarters of max_num_seqs).
    """

    concurrent_requests_per_model: int | None = None
    scale_in_cooldown: Duration = field(default_factory=lambda: DEFAULT_SCALE_IN_COOLDOWN)
    scale_out_cooldown: Duration = field(default_factory=lambda: DEFAULT_SCALE_OUT_COOLDOWN)
    schedule: ScaleDownSchedule | None = None


def add_autoscaling(
    scope: Construct,
    endpoint: sagemaker.CfnEndpoint,
    *,
    min_capacity: int,
    max_capacity: int,
    scaling: EndpointScaling | ConcurrencyScaling,
    target_value: int,
) -> appscaling.ScalableTarget | None:
    """Register the variant for autoscaling; None when capacity is fixed and unscheduled.

    `target_value` is the target of the metric `scaling` names: invocations per instance per
    minute (EndpointScaling) or concurrent requests per model (ConcurrencyScaling).
    """
    if min_capacity == max_capacity and scaling.schedule is None:
        return None
    target = appscaling.ScalableTarget(
        scope,
        "Scaling",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=f"endpoint/{endpoint.attr_endpoint_name}/variant/{VARIANT_NAME}",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        # The service-linked role holds exactly the scaling permissions; a role CDK creates
        # would have none.
        role=iam.Role.from_role_arn(
            scope,
            "ScalingRole",
            Stack.of(scope).format_arn(
                service="iam", region="", resource="role", resource_name=_SCALING_ROLE
            ),
        ),
    )
    metric = appscaling.PredefinedMetric
    name, predefined = (
        (
            "ConcurrentRequestsPerModel",
            metric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION,
        )
        if isinstance(scaling, ConcurrencyScaling)
        else ("InvocationsPerInstance", metric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE)
    )
    target.scale_to_track_metric(
        name,
        target_value=target_value,
        predefined_metric=predefined,
        scale_in_cooldown=scaling.scale_in_cooldown,
        scale_out_cooldown=scaling.scale_out_cooldown,
    )
    if scaling.schedule is not None:
        _schedule(target, scaling.schedule, min_capacity, max_capacity)
    return target


def _schedule(
    target: appscaling.ScalableTarget, schedule: ScaleDownSchedule, low: int, high: int
) -> None:
    zone = None if schedule.time_zone is None else TimeZone.of(schedule.time_zone)
    windows = (
        ("ScaleDown", schedule.scale_down, schedule.capacity_during_scale_down, None),
        ("ScaleUp", schedule.scale_up, low, high),
    )
    for id, expression, floor, ceiling in windows:
        target.scale_on_schedule(
            id,
            schedule=appscaling.Schedule.expression(expression),
            min_capacity=floor,
            max_capacity=floor if ceiling is None else ceiling,
            time_zone=zone,
        )
