"""Would CloudFormation's update of a deployed endpoint be refused halfway?

CloudFormation finds some refusals only minutes into an update, and then rolls everything
back. What the deployed state already decides is checked here, before the CDK CLI runs.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from inf3kit.preflight.report import Context

CHECK = "endpoint update"
VARIANT_NAME = "AllTraffic"


def check(ctx: Context) -> None:
    """Refuse an instance-type change of an endpoint that is registered for autoscaling.

    SageMaker developer guide, "Update or delete endpoints that use automatic scaling": the
    instance type of an autoscaled variant cannot change until the variant is deregistered,
    and CloudFormation updates the endpoint before it would touch the scalable target.
    """
    endpoint = ctx.loaded.spec.endpoint
    if endpoint is None or ctx.loaded.spec.delivery is not None:
        return
    for name in ctx.stack_names:
        current = _deployed_instance_type(ctx.client("sagemaker"), name)
        if current is None:
            ctx.checked(CHECK, f"endpoint {name} is not deployed yet: nothing to compare")
            continue
        if current == endpoint.instance_type:
            ctx.checked(CHECK, f"endpoint {name} keeps its instance type {current}")
            continue
        targets = ctx.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker",
            ResourceIds=[f"endpoint/{name}/variant/{VARIANT_NAME}"],
        )["ScalableTargets"]
        if not targets:
            ctx.checked(CHECK, f"endpoint {name} is not autoscaled: {current} may change")
            continue
        ctx.problem(
            CHECK,
            f"endpoint {name} runs {current} with autoscaling, and SageMaker refuses to change "
            f"the instance type of an autoscaled variant (to {endpoint.instance_type})",
            f"in two deploys: (1) keep instance_type {current}, set endpoint.instances.max to "
            "instances.min and remove scaling.schedule, deploy (the scalable target is "
            f"deregistered); (2) set instance_type {endpoint.instance_type}, restore max and the "
            "schedule, deploy again",
        )


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
