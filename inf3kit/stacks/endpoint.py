"""Spec `endpoint:` section -> NeuronEndpoint props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, Size

from inf3kit.constructs import (
    DataCapture,
    EndpointImage,
    EndpointRollout,
    EndpointScaling,
    NeuronEndpoint,
    ScaleDownSchedule,
)
from inf3kit.constructs.endpoint_rollout import DEFAULT_LATENCY_THRESHOLD
from inf3kit.spec import EndpointSpec
from inf3kit.stacks.serving import NO_LLM_CONSTRUCT, runtime_settings

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_endpoint(stack: ServiceStack, endpoint: EndpointSpec) -> NeuronEndpoint:
    """The SageMaker endpoint, named after the stack so `inf3kit invoke --endpoint` is obvious."""
    if stack.bundle is None:
        raise ValueError(NO_LLM_CONSTRUCT.format(section="endpoint"))
    scaling, rollout = endpoint.scaling, endpoint.rollout
    schedule = scaling.schedule
    neuron = NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type=endpoint.instance_type,
        model_data=stack.bundle,
        image=_image(endpoint.image),
        endpoint_name=stack.stack_name,
        runtime=runtime_settings(stack.loaded.spec.serving),
        key=stack.artifacts.key,
        vpc=stack.vpc,
        min_capacity=endpoint.instances.min,
        max_capacity=endpoint.instances.max,
        initial_capacity=endpoint.instances.initial,
        scaling=EndpointScaling(
            invocations_per_instance=scaling.invocations_per_instance,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_seconds),
            schedule=None
            if schedule is None
            else ScaleDownSchedule(
                scale_down=schedule.scale_down_cron,
                scale_up=schedule.scale_up_cron,
                capacity_during_scale_down=schedule.min_during_scale_down,
                time_zone=None if schedule.timezone == "UTC" else schedule.timezone,
            ),
        ),
        rollout=EndpointRollout(
            strategy=endpoint.rollout_strategy,
            canary_percent=rollout.canary_percent,
            linear_step_percent=rollout.linear_step_percent,
            rolling_batch_percent=rollout.rolling_batch_percent,
            bake_time=Duration.minutes(rollout.bake_minutes),
        ),
        latency_threshold=DEFAULT_LATENCY_THRESHOLD
        if rollout.latency_alarm_ms is None
        else Duration.millis(rollout.latency_alarm_ms),
        data_capture=DataCapture(stack.artifacts.bucket, endpoint.data_capture.sampling_percent)
        if endpoint.data_capture
        else None,
        startup_timeout=Duration.seconds(endpoint.startup_timeout_seconds),
        download_timeout=Duration.seconds(endpoint.download_timeout_seconds),
        volume_size=None
        if endpoint.volume_size_gb is None
        else Size.gibibytes(endpoint.volume_size_gb),
        catalog=stack.loaded.catalog,
        compatibility=stack.loaded.compatibility,
    )
    return neuron


def _image(image: str | None) -> EndpointImage | None:
    """`image:` is an ECR URI, or a deep learning container by its compatibility-matrix name."""
    if image is None:
        return None
    return EndpointImage.from_uri(image) if "/" in image else EndpointImage.dlc(image)
