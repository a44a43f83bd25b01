"""Spec `endpoint:` section -> NeuronEndpoint props (and the props every endpoint shares)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Size

from inf3kit.constructs import (
    DataCapture,
    EndpointImage,
    EndpointRollout,
    EndpointScaling,
    NeuronEndpoint,
    ScaleDownSchedule,
)
from inf3kit.spec import EndpointSpec
from inf3kit.stacks.serving import runtime_settings

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_endpoint(stack: ServiceStack, endpoint: EndpointSpec) -> NeuronEndpoint:
    """The SageMaker endpoint, named after the stack so `inf3kit invoke --endpoint` is obvious."""
    if stack.bundle is None:
        raise ValueError("endpoint: the runtime endpoint needs model.bundle")
    scaling = endpoint.scaling
    return NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type=endpoint.instance_type,
        model_data=stack.bundle,
        bundle_variants=stack.bundle_variants,
        image=image_of(endpoint.image),
        runtime=runtime_settings(stack.loaded.spec.serving),
        scaling=EndpointScaling(
            invocations_per_instance=scaling.invocations_per_instance,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_seconds),
            schedule=schedule_of(endpoint),
        ),
        startup_timeout=_seconds(endpoint.startup_timeout_seconds),
        download_timeout=_seconds(endpoint.download_timeout_seconds),
        bundle_size=stack.bundle_size,
        **shared_props(stack, endpoint),
    )


def shared_props(stack: ServiceStack, endpoint: EndpointSpec) -> dict[str, Any]:
    """The props NeuronEndpoint and LlmEndpoint take alike: name, key, VPC, capacity, rollout,
    its latency alarm (when the spec sets one; else the construct's default), capture, volume,
    catalog."""
    rollout = endpoint.rollout
    props: dict[str, Any] = {
        "endpoint_name": stack.stack_name,
        "key": stack.artifacts.key,
        "vpc": stack.vpc,
        "min_capacity": endpoint.instances.min,
        "max_capacity": endpoint.instances.max,
        "initial_capacity": endpoint.instances.initial,
        "rollout": EndpointRollout(
            strategy=endpoint.rollout_strategy,
            canary_percent=rollout.canary_percent,
            linear_step_percent=rollout.linear_step_percent,
            rolling_batch_percent=rollout.rolling_batch_percent,
            bake_time=Duration.minutes(rollout.bake_minutes),
        ),
        "data_capture": DataCapture(stack.artifacts.bucket, endpoint.data_capture.sampling_percent)
        if endpoint.data_capture
        else None,
        "volume_size": None
        if endpoint.volume_size_gb is None
        else Size.gibibytes(endpoint.volume_size_gb),
        "catalog": stack.loaded.catalog,
        "compatibility": stack.loaded.compatibility,
    }
    if rollout.latency_alarm_ms is not None:
        props["latency_threshold"] = Duration.millis(rollout.latency_alarm_ms)
    return props


def schedule_of(endpoint: EndpointSpec) -> ScaleDownSchedule | None:
    schedule = endpoint.scaling.schedule
    if schedule is None:
        return None
    return ScaleDownSchedule(
        scale_down=schedule.scale_down_cron,
        scale_up=schedule.scale_up_cron,
        capacity_during_scale_down=schedule.min_during_scale_down,
        time_zone=None if schedule.timezone == "UTC" else schedule.timezone,
    )


def image_of(image: str | None) -> EndpointImage | None:
    """`image:` is an ECR URI, or a deep learning container by its compatibility-matrix name."""
    if image is None:
        return None
    return EndpointImage.from_uri(image) if "/" in image else EndpointImage.dlc(image)


def _seconds(value: int | None) -> Duration | None:
    """None leaves the construct's estimate from the bundle's size."""
    return None if value is None else Duration.seconds(value)
