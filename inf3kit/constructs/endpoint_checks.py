"""The prop checks every endpoint inf3kit creates shares, in the order the problems are reported.

A construct's `_validate` calls `instance_problems`, then `capacity_problems_of`, then checks its
own props (the model, its scaling target), then `deployment_problems`, so one synthesis reports
every problem, each naming the prop, the value and the fix.
"""

from __future__ import annotations

import re

from aws_cdk import Duration, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from inf3kit.catalog import Catalog, Compatibility, family_of
from inf3kit.constructs.endpoint_config import LOCAL_STORAGE_FAMILIES
from inf3kit.constructs.endpoint_image import EndpointImage
from inf3kit.constructs.endpoint_rollout import EndpointRollout
from inf3kit.constructs.endpoint_scaling import ScaleDownSchedule
from inf3kit.constructs.hardware_checks import check_instance_type
from inf3kit.rules import (
    capacity_problems,
    rollout_capacity_problems,
    rollout_share_problems,
    scale_down_count_problems,
    scaling_schedule_problems,
    time_zone_problems,
)

MAX_TIMEOUT_SECONDS = 3600
"""SageMaker API reference, ProductionVariant: ContainerStartupHealthCheckTimeoutInSeconds and
ModelDataDownloadTimeoutInSeconds take 60..3600 seconds."""
MIN_TIMEOUT_SECONDS = 60


def instance_problems(
    instance_type: str, catalog: Catalog, compat: Compatibility, image: EndpointImage | None
) -> list[str]:
    """The type is a Neuron SageMaker type, the image (when given) exists and supports its
    family."""
    problems = [
        f"instance_type: {p}"
        for p in check_instance_type(instance_type, platform="sagemaker", catalog=catalog)
    ]
    problems += image.problems(compat) if image is not None else []
    if (
        not problems
        and image is not None
        and image.catalog_name
        and not Token.is_unresolved(instance_type)
    ):
        try:
            compat.check_image(image.catalog_name, instance_type)
        except ValueError as exc:
            problems.append(f"image: {exc}")
    if not problems and not Token.is_unresolved(instance_type):
        try:
            compat.family(instance_type)
        except ValueError as exc:
            problems.append(f"instance_type: {exc}")
    return problems


def capacity_problems_of(min_instances: int, max_instances: int, initial: int) -> list[str]:
    """At least one instance, and min <= initial <= max."""
    if any(Token.is_unresolved(v) for v in (min_instances, max_instances, initial)):
        return []
    problems = []
    if min_instances < 1:
        problems.append(
            f"min_capacity: got {min_instances}, must be >= 1 (a real-time endpoint always runs "
            "an instance). Fix: use 1 or more; delete the stack to stop paying"
        )
    names = ("min_capacity", "max_capacity", "initial_capacity")
    return problems + capacity_problems(min_instances, max_instances, initial, names=names)


def deployment_problems(
    *,
    instance_type: str,
    compat: Compatibility,
    min_instances: int,
    max_instances: int,
    schedule: ScaleDownSchedule | None,
    rollout: EndpointRollout,
    data_capture_bucket: s3.IBucket | None,
    data_capture_percent: int,
    startup_timeout: Duration,
    download_timeout: Duration,
    volume_size_gb: int | None,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: list[ec2.ISecurityGroup] | None,
    endpoint_name: str | None,
) -> list[str]:
    """Rollout, schedule, timeouts, volume, capture, VPC and name, against SageMaker's limits."""
    problems: list[str] = []
    if not any(Token.is_unresolved(v) for v in (min_instances, max_instances)):
        problems += rollout_capacity_problems(
            rollout.strategy, min_instances, min_name="min_capacity"
        )
    if not Token.is_unresolved(instance_type):
        refusal = compat.guardrails_problem(instance_type, rollout.strategy)
        problems += [f"rollout: {refusal}"] if refusal else []
    if schedule is not None:
        problems += _schedule_problems(schedule, max_instances)
    problems += _rollout_problems(rollout)
    for name, timeout in (
        ("startup_timeout", startup_timeout),
        ("download_timeout", download_timeout),
    ):
        seconds = timeout.to_seconds()
        if not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
            problems.append(
                f"{name}: got {seconds:g} s, SageMaker allows 60..3600 s. "
                "Fix: use 1 minute to 1 hour"
            )
    if volume_size_gb is not None:
        if family_of(instance_type) in LOCAL_STORAGE_FAMILIES:
            problems.append(
                f"volume_size: {instance_type} has local NVMe storage and SageMaker takes no "
                "volume size for it. Fix: leave volume_size unset"
            )
        elif not 1 <= volume_size_gb <= 512:
            problems.append(
                f"volume_size: got {volume_size_gb} GiB, SageMaker allows 1..512 GiB. "
                "Fix: use a size in that range"
            )
    if data_capture_bucket is not None and not 1 <= data_capture_percent <= 100:
        problems.append(
            f"data_capture.percent: got {data_capture_percent}, must be 1..100. "
            "Fix: use a percentage of requests to sample"
        )
    if vpc is None and (vpc_subnets is not None or security_groups):
        problems.append(
            "vpc_subnets/security_groups: given without a vpc. Fix: pass vpc=..., or drop them"
        )
    if (
        endpoint_name is not None
        and not Token.is_unresolved(endpoint_name)
        and not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", endpoint_name)
    ):
        problems.append(
            f"endpoint_name: got {endpoint_name!r}; SageMaker allows 1-63 letters, digits "
            "and '-', starting and ending with a letter or digit. Fix: rename it"
        )
    return problems


def _schedule_problems(schedule: ScaleDownSchedule, max_instances: int) -> list[str]:
    problems: list[str] = []
    for name in ("scale_down", "scale_up"):
        expr = getattr(schedule, name)
        if not Token.is_unresolved(expr):
            problems += [f"scaling.schedule.{name}: {p}" for p in scaling_schedule_problems(expr)]
    if schedule.time_zone is not None and not Token.is_unresolved(schedule.time_zone):
        problems += [
            f"scaling.schedule.time_zone: {p}" for p in time_zone_problems(schedule.time_zone)
        ]
    problems += [
        f"scaling.schedule.capacity_during_scale_down: {p}"
        for p in scale_down_count_problems(
            schedule.capacity_during_scale_down, max_instances, max_name="max_capacity"
        )
    ]
    return problems


def _rollout_problems(rollout: EndpointRollout) -> list[str]:
    problems = rollout_share_problems(rollout.strategy, rollout)
    bake = rollout.bake_time.to_seconds()
    if bake > 3600:
        problems.append(
            f"rollout.bake_time: got {bake:g} s, SageMaker allows 0..3600 s. Fix: bake for an "
            "hour at most; add steps (linear) to watch longer"
        )
    if rollout.termination_wait.to_seconds() > 3600:
        problems.append(
            f"rollout.termination_wait: got {rollout.termination_wait.to_seconds():g} s, "
            "SageMaker allows 0..3600 s. Fix: use an hour at most"
        )
    if rollout.timeout is not None and not 600 <= rollout.timeout.to_seconds() <= 14_400:
        problems.append(
            f"rollout.timeout: got {rollout.timeout.to_seconds():g} s, SageMaker allows "
            "600..14400 s. Fix: use 10 minutes to 4 hours, or leave it unset"
        )
    return problems
