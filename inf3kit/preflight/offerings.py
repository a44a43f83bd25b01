"""Are the spec's instance types offered in the region, and in the zones its subnets use?

EC2 answers per zone (DescribeInstanceTypeOfferings). SageMaker has no API that lists the
hosting instance types of a region: what can be checked is whether SageMaker's API model
(the `ProductionVariantInstanceType` enum botocore ships) names the type at all, and the
per-type endpoint quota of the region (quotas.py), which AWS only lists where it sells the type.
"""

from __future__ import annotations

from typing import Any

import botocore
import botocore.session

from inf3kit.catalog.hardware import SAGEMAKER_PREFIX
from inf3kit.preflight.report import Context
from inf3kit.spec.llm import llm_type_problems

CHECK = "offerings"


def check(ctx: Context) -> None:
    spec = ctx.loaded.spec
    if spec.fleet is not None:
        _fleet(ctx, spec.fleet.instance_types)
    if spec.endpoint is not None:
        _endpoint(ctx, spec.endpoint.instance_type)


def _fleet(ctx: Context, types: list[str]) -> None:
    ec2 = ctx.client("ec2")
    offered = {t: _zones_offering(ec2, t) for t in types}
    zones = fleet_zones(ctx)
    for name, where in offered.items():
        if not where:
            ctx.problem(CHECK, _not_offered(ctx, name, "EC2"), alternatives(ctx, name))
        elif not where & set(zones):
            ctx.problem(
                CHECK,
                f"{name} is offered in {', '.join(sorted(where))} but in none of the fleet's "
                f"zones ({', '.join(zones)})",
                "use subnets in a zone that offers it (network.vpc), or another type: "
                + alternatives(ctx, name),
            )
    uncovered = [z for z in zones if not any(z in where for where in offered.values())]
    if uncovered and any(offered.values()):
        ctx.problem(
            CHECK,
            f"no fleet type is offered in {', '.join(uncovered)}, a zone of the fleet's subnets: "
            "the Auto Scaling group can never launch there",
            "add a type offered there to fleet.instance_types, or use subnets in other zones",
        )
    served = [f"{n} in {', '.join(sorted(w & set(zones)))}" for n, w in offered.items() if w]
    if served:
        ctx.checked(CHECK, f"EC2 offers {'; '.join(served)} (the fleet's zones)")


def _endpoint(ctx: Context, name: str) -> None:
    listed = name in sagemaker_api_types()
    itype = ctx.loaded.catalog.get(name)
    if itype.provisional and not listed:
        ctx.problem(CHECK, _not_offered(ctx, name, "SageMaker"), alternatives(ctx, name))
        return
    if listed:
        ctx.checked(CHECK, f"SageMaker's API (botocore {botocore.__version__}) lists {name}")
    else:
        ctx.unchecked(
            CHECK,
            f"SageMaker's API model in botocore {botocore.__version__} does not list {name}; "
            "upgrade boto3 to check it",
        )
    ctx.unchecked(
        CHECK,
        f"whether SageMaker hosts {name} in {ctx.region}: no AWS API lists a region's hosting "
        "types; the endpoint quota below is the closest signal",
    )


def _not_offered(ctx: Context, name: str, service: str) -> str:
    itype = ctx.loaded.catalog.get(name)
    where = f"{service} does not offer {name} in {ctx.region}"
    if service == "SageMaker":
        where = f"SageMaker's API does not list {name}"
    if itype.provisional:
        return (
            f"{where}: it is a provisional catalog type "
            f"({itype.sources.get('sizes', 'AWS has published no specification')})"
        )
    return where


def _zones_offering(ec2: Any, name: str) -> set[str]:
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [name]}]
    )
    return {o["Location"] for page in pages for o in page["InstanceTypeOfferings"]}


def fleet_zones(ctx: Context) -> list[str]:
    """The zones of the subnets the fleet launches into.

    An existing VPC: the zones of its subnets. A new VPC: the CDK's `Vpc` takes the first
    `max_azs` zones of the region (in a stack with a region; environment-agnostic stacks take
    two of `Fn::GetAZs`, which are also the first two).
    """
    ec2 = ctx.client("ec2")
    network = ctx.loaded.spec.network
    if not network.creates_vpc:
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [network.vpc]}])
        return sorted({s["AvailabilityZone"] for s in subnets["Subnets"]})
    zones = ec2.describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"]
    names = sorted(z["ZoneName"] for z in zones if z.get("State", "available") == "available")
    return names[: network.max_azs]


def sagemaker_api_types() -> set[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return set(model.shape_for("ProductionVariantInstanceType").enum)


def fallback_types(ctx: Context, name: str) -> list[str]:
    """Generally available catalog types of the same size on the same platform.

    The family whose accelerator the type's own is measured against (the catalog's throughput
    `reference`, e.g. inferentia3 -> inferentia2) comes first; families a fleet cannot run on
    are left out for EC2 types, and for an LLM spec the types its model does not fit or no
    engine build serves.
    """
    catalog, compat, llm = ctx.loaded.catalog, ctx.loaded.compatibility, ctx.loaded.spec.llm
    itype = catalog.get(name)
    size = name.removeprefix(SAGEMAKER_PREFIX).split(".", 1)[1]
    throughput = catalog.accelerator(itype.accelerator).throughput
    reference = throughput.reference if throughput else None
    found = [
        t
        for t in catalog.types(platform=itype.platform)
        if t.is_neuron
        and not t.provisional
        and t.family != itype.family
        and t.name.removeprefix(SAGEMAKER_PREFIX).split(".", 1)[1] == size
        and (itype.platform == "sagemaker" or compat.fleet_problem(t.name) is None)
        and (llm is None or not llm_type_problems(llm, t.name, catalog, compat))
    ]
    found.sort(key=lambda t: t.accelerator != reference)
    return [t.name for t in found]


def alternatives(ctx: Context, name: str) -> str:
    """The fix for a type that cannot run here: the catalog's fallback, and regions offering it."""
    fallbacks = fallback_types(ctx, name)
    parts = []
    if fallbacks and name.startswith(SAGEMAKER_PREFIX):
        parts.append(f"use {' or '.join(fallbacks)} (the catalog's generally available types)")
    elif fallbacks:
        ec2 = ctx.client("ec2")
        here = [f for f in fallbacks if _zones_offering(ec2, f)]
        parts.append(
            f"use {' or '.join(here)}, offered in {ctx.region}"
            if here
            else f"use {' or '.join(fallbacks)} where it is offered"
        )
    if not name.startswith(SAGEMAKER_PREFIX):
        regions = regions_offering(ctx, name)
        if regions:
            parts.append(f"or deploy to a region that offers {name}: {', '.join(regions)}")
    return "; ".join(parts) or "choose a type listed by `inf3kit catalog` that AWS offers here"


def regions_offering(ctx: Context, name: str, limit: int = 5) -> list[str]:
    """Other enabled regions whose EC2 offers `name` (asked only once something failed)."""
    regions = ctx.client("ec2").describe_regions()["Regions"]
    found = []
    for region in sorted(r["RegionName"] for r in regions):
        if region == ctx.region:
            continue
        offers = ctx.client("ec2", region).describe_instance_type_offerings(
            LocationType="region", Filters=[{"Name": "instance-type", "Values": [name]}]
        )["InstanceTypeOfferings"]
        if offers:
            found.append(region)
        if len(found) == limit:
            break
    return found
