"""Checks against the target account before a deploy starts.

CloudFormation finds some refusals only minutes into an update, and then rolls everything back.
What the deployed state already decides is checked here, before the CDK CLI runs.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from inf3kit.spec import Spec

VARIANT_NAME = "AllTraffic"


def endpoint_names(spec: Spec) -> list[tuple[str, str | None]]:
    """(endpoint name, region) per stack the spec deploys: the stack name names the endpoint."""
    if not spec.environments:
        return [(spec.name, None)]
    return [(f"{spec.name}-{stage}", env.region) for stage, env in spec.environments.items()]


def instance_type_change_problems(spec: Spec, session: Any) -> list[str]:
    """Refuse an instance-type change of an endpoint that is registered for autoscaling.

    SageMaker developer guide, "Update or delete endpoints that use automatic scaling": the
    instance type of an autoscaled variant cannot change until the variant is deregistered,
    and CloudFormation updates the endpoint before it would touch the scalable target.
    """
    endpoint = spec.endpoint
    if endpoint is None or spec.delivery is not None:
        return []
    problems = []
    for name, region in endpoint_names(spec):
        current = _deployed_instance_type(session.client("sagemaker", region_name=region), name)
        if current is None or current == endpoint.instance_type:
            continue
        targets = session.client(
            "application-autoscaling", region_name=region
        ).describe_scalable_targets(
            ServiceNamespace="sagemaker",
            ResourceIds=[f"endpoint/{name}/variant/{VARIANT_NAME}"],
        )["ScalableTargets"]
        if not targets:
            continue
        problems.append(
            f"endpoint {name} runs {current} with autoscaling, and SageMaker refuses to change "
            f"the instance type of an autoscaled variant (to {endpoint.instance_type}). Fix, in "
            f"two deploys: (1) keep instance_type {current}, set endpoint.instances.max to "
            "instances.min and remove scaling.schedule, deploy (the scalable target is "
            f"deregistered); (2) set instance_type {endpoint.instance_type}, restore max and the "
            "schedule, deploy again"
        )
    return problems


def _deployed_instance_type(sagemaker: Any, name: str) -> str | None:
    try:
        config_name = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            return None  # not deployed yet
        raise
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)[
        "ProductionVariants"
    ]
    return next(
        (str(v["InstanceType"]) for v in variants if v["VariantName"] == VARIANT_NAME), None
    )
