"""The prop checks every EC2 fleet runs (NeuronFleet, LlmFleet), written once.

Each returns problem strings in the constructs' format (prop, value, fix); the fleet adds its
own checks and raises them all together.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Token

from inf3kit.catalog import Catalog, Compatibility
from inf3kit.constructs.hardware_checks import check_instance_type
from inf3kit.rules import capacity_problems, duplicate_problems, public_listener_problems


def instance_type_problems(
    instance_types: Sequence[str], catalog: Catalog, compatibility: Compatibility
) -> list[str]:
    """EC2 Neuron types the catalog knows, a fleet can run on, each listed once."""
    if isinstance(instance_types, str):
        return [
            f"instance_types must be a list, got the string {instance_types!r}. "
            f"Fix: instance_types=[{instance_types!r}]"
        ]
    problems: list[str] = []
    if not instance_types:
        problems.append(
            "instance_types is empty. Fix: list at least one EC2 Neuron type, e.g. ['inf2.xlarge']"
        )
    for name in instance_types:
        if name.startswith("ml."):
            problems.append(
                f"instance_types: {name!r} is a SageMaker type; fleets take EC2 types. "
                f"Fix: use {name.removeprefix('ml.')!r}"
            )
            continue
        found = check_instance_type(name, platform="ec2", catalog=catalog)
        if not found and not Token.is_unresolved(name):
            refusal = compatibility.fleet_problem(name)
            found = [refusal] if refusal else []
        problems += [f"instance_types: {p}" for p in found]
    problems += [f"instance_types: {p}" for p in duplicate_problems(instance_types)]
    return problems


def group_problems(
    *,
    min_capacity: int,
    max_capacity: int,
    desired_capacity: int | None,
    port: int,
    drain: Duration,
    startup_timeout: Duration,
    public: bool,
    certificate_given: bool,
    imds_hop_limit: int,
) -> list[str]:
    """Capacity, port, drain, startup timeout, listener and metadata hop limit."""
    problems: list[str] = []
    if min_capacity < 0 or max_capacity < 1:
        problems.append(
            f"min_capacity ({min_capacity}) must be >= 0 and max_capacity ({max_capacity}) >= 1. "
            "Fix: use non-negative sizes with max_capacity of at least 1"
        )
    problems += capacity_problems(
        min_capacity,
        max_capacity,
        desired_capacity,
        names=("min_capacity", "max_capacity", "desired_capacity"),
    )
    if not 1024 <= port <= 65535:
        problems.append(
            f"port {port} is not allowed; the runtime runs unprivileged on 1024..65535. "
            "Fix: use e.g. 8080"
        )
    if not drain.is_unresolved() and not 0 <= drain.to_seconds() <= 3600:
        problems.append(
            f"drain {drain.to_seconds():g} s must be 0..3600 seconds (the target group's "
            "deregistration delay limit). Fix: e.g. Duration.seconds(30)"
        )
    if not startup_timeout.is_unresolved() and not 60 <= startup_timeout.to_seconds() <= 3600:
        problems.append(
            f"startup_timeout {startup_timeout.to_seconds():g} s must be 1..60 minutes (a rolling "
            "update pauses at most one hour per batch). Fix: e.g. Duration.minutes(20)"
        )
    problems += [f"public: {p}" for p in public_listener_problems(public, certificate_given)]
    if imds_hop_limit not in (1, 2):
        problems.append(
            f"imds_hop_limit {imds_hop_limit} is not allowed. Fix: use 1 (host only) or 2 "
            "(containers on the host need instance credentials)"
        )
    return problems
