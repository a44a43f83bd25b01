"""Spec `endpoint:` section of an LLM service (`model.engine: vllm`) -> LlmEndpoint props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration

from inf3kit.constructs import ConcurrencyScaling, EndpointImage, LlmEndpoint
from inf3kit.spec import EndpointSpec
from inf3kit.stacks.endpoint import image_of, schedule_of, shared_props

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_llm_endpoint(stack: ServiceStack, endpoint: EndpointSpec) -> LlmEndpoint:
    """The LLM's SageMaker endpoint, named after the stack, on the engine image the matrix
    chose for the spec's distribution and SDK (or the spec's `image:`), with `auto` resolved."""
    loaded = stack.loaded
    architecture, weights, settings = loaded.llm_service(endpoint.instance_type)
    scaling = endpoint.scaling
    return LlmEndpoint(
        stack,
        "Endpoint",
        instance_type=endpoint.instance_type,
        weights=weights,
        settings=settings,
        architecture=architecture,
        image=image_of(endpoint.image) or _engine_image(stack, endpoint.instance_type),
        scaling=ConcurrencyScaling(
            concurrent_requests_per_model=scaling.concurrent_requests_per_model,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_seconds),
            schedule=schedule_of(endpoint),
        ),
        startup_timeout=None
        if endpoint.startup_timeout_seconds is None
        else Duration.seconds(endpoint.startup_timeout_seconds),
        download_timeout=None
        if endpoint.download_timeout_seconds is None
        else Duration.seconds(endpoint.download_timeout_seconds),
        **shared_props(stack, endpoint),
    )


def _engine_image(stack: ServiceStack, instance_type: str) -> EndpointImage:
    """The engine image validation chose; SageMaker engines live in the regional DLC account."""
    name, image = stack.loaded.llm_engine(instance_type)
    if image.registry != "dlc":
        raise ValueError(
            f"endpoint.image: the {name} image {image.repository}:{image.tag} is in "
            f"{image.registry}, and SageMaker pulls only from private ECR. Fix: copy it to ECR "
            "and set endpoint.image to its URI"
        )
    return EndpointImage.dlc_tag(image.repository, image.tag)
