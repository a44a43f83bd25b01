"""Do the account's Service Quotas cover the spec's largest capacity during an update?

A blue/green endpoint update (all_at_once, canary, linear) starts a whole second fleet before
the old one goes, so it needs twice `instances.max`; a rolling one adds one batch. A fleet's
rolling update launches one instance above the group (max batch 1); a fleet with a warm pool
is replaced by a new group, whose pool instances run while they bootstrap. What other
resources of the account already use is not subtracted: the Service Quotas API answers the
limit, not the usage.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any

import yaml
from botocore.exceptions import ClientError

from inf3kit.catalog.hardware import family_of
from inf3kit.preflight.report import Context
from inf3kit.spec import EndpointSpec, FleetSpec

CHECK = "quotas"


@cache
def quota_data() -> dict[str, Any]:
    text = resources.files("inf3kit.preflight").joinpath("data", "quotas.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def check(ctx: Context) -> None:
    spec = ctx.loaded.spec
    if spec.endpoint is not None:
        _endpoint(ctx, spec.endpoint)
    if spec.fleet is not None:
        _fleet(ctx, spec.fleet)


def endpoint_need(endpoint: EndpointSpec) -> tuple[int, str]:
    """Instances an update of the endpoint runs at once, and why."""
    top = endpoint.instances.max
    strategy = endpoint.rollout_strategy
    if strategy == "rolling":
        batch = math.ceil(top * endpoint.rollout.rolling_batch_percent / 100)
        return top + batch, f"instances.max {top} + a rolling batch of {batch}"
    return 2 * top, f"instances.max {top} twice: a {strategy} update is blue/green"


def fleet_need(fleet: FleetSpec, vcpu: int) -> tuple[int, str]:
    """On-Demand vCPUs the fleet runs at most, sized on its largest type of the group.

    Without a warm pool the group updates rolling, one instance above its size; with one it is
    replaced (a whole new group, whose pool instances run while they bootstrap) before the old
    group goes.
    """
    top = fleet.capacity.max
    if fleet.warm_pool is None:
        count, why = top + 1, f"capacity.max {top} + 1 rolling-update instance"
    else:
        pool = fleet.warm_pool.min_size
        count = 2 * top + pool
        why = f"capacity.max {top} twice (a replacing update) + {pool} warm-pool instance(s)"
    on_demand = math.ceil(count * (100 - fleet.spot_percent) / 100)
    why += f", {100 - fleet.spot_percent}% On-Demand" if fleet.spot_percent else ""
    return on_demand * vcpu, f"{why}, x {vcpu} vCPU"


def _endpoint(ctx: Context, endpoint: EndpointSpec) -> None:
    name = quota_data()["sagemaker_endpoint"]["name"].format(type=endpoint.instance_type)
    quota = _sagemaker_quota(ctx, name)
    if quota is None:
        ctx.unchecked(
            CHECK,
            f"Service Quotas lists no {name!r} here: SageMaker may not host "
            f"{endpoint.instance_type} in {ctx.region}",
        )
        return
    need, why = endpoint_need(endpoint)
    _compare(ctx, "sagemaker", quota, need, why, "instances")


def _fleet(ctx: Context, fleet: FleetSpec) -> None:
    groups = quota_data()["ec2_on_demand_vcpu"]
    by_group: dict[str, list[str]] = {}
    for name in fleet.instance_types:
        group = next((g for g, q in groups.items() if family_of(name) in q["families"]), None)
        if group is None:
            ctx.unchecked(CHECK, f"no EC2 quota group is recorded for {name}")
            continue
        by_group.setdefault(group, []).append(name)
    for group, names in by_group.items():
        code = groups[group]["code"]
        try:
            quota = ctx.client("service-quotas").get_service_quota(
                ServiceCode="ec2", QuotaCode=code
            )["Quota"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchResourceException":
                raise
            ctx.unchecked(CHECK, f"Service Quotas does not answer ec2 {code} here: {exc}")
            continue
        vcpu = max(ctx.loaded.catalog.get(n).vcpu for n in names)
        need, why = fleet_need(fleet, vcpu)
        _compare(ctx, "ec2", quota, need, f"{why} ({', '.join(names)})", "vCPUs")


def _sagemaker_quota(ctx: Context, name: str) -> dict[str, Any] | None:
    pages = ctx.client("service-quotas").get_paginator("list_service_quotas")
    for page in pages.paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            if quota["QuotaName"] == name:
                return dict(quota)
    return None


def _compare(
    ctx: Context, service: str, quota: dict[str, Any], need: int, why: str, unit: str
) -> None:
    value = int(quota["Value"])
    code, name = quota["QuotaCode"], quota["QuotaName"]
    if value >= need:
        ctx.checked(CHECK, f"{name} ({code}) is {value} {unit}; the spec needs {need} ({why})")
        return
    ctx.problem(
        CHECK,
        f"{name} ({service} {code}) is {value} {unit}, below the {need} the spec needs ({why})",
        f"ask for an increase: aws service-quotas request-service-quota-increase --service-code "
        f"{service} --quota-code {code} --desired-value {need} --region {ctx.region} (or the "
        "Service Quotas console); or lower the maximum capacity, or pick a rollout that needs "
        "fewer instances (rolling)",
    )
