"""Does the image each instance boots or serves exist: the fleet's AMI, the endpoint's image?"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from inf3kit.catalog.compatibility import RUNTIME_IMAGE
from inf3kit.preflight.report import Context
from inf3kit.spec import EndpointSpec, FleetSpec

AMI, IMAGE = "ami", "image"
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+?)(:(?P<tag>[\w.-]+))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def check(ctx: Context) -> None:
    spec = ctx.loaded.spec
    if spec.fleet is not None:
        _fleet_ami(ctx, spec.fleet)
    if spec.endpoint is not None:
        _endpoint_image(ctx, spec.endpoint)


def _fleet_ami(ctx: Context, fleet: FleetSpec) -> None:
    if fleet.ami.source == "id" and fleet.ami.id is not None:
        _ami_id(ctx, fleet.ami.id)
        return
    # dlami boots the DLAMI; pipeline bakes on top of it (its parent image)
    by_parameter: dict[str, list[str]] = {}
    for name in fleet.instance_types:
        try:
            parameter = ctx.loaded.compatibility.dlami_parameter(name)
        except ValueError as exc:  # a family no DLAMI supports; the matrix says why and the fix
            message, _, fix = str(exc).partition(". Fix: ")
            ctx.problem(AMI, message, fix or "set fleet.ami {source: id, id: ami-...}")
            continue
        by_parameter.setdefault(parameter, []).append(name)
    for parameter, names in by_parameter.items():
        try:
            value = ctx.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
            ctx.problem(
                AMI,
                f"the DLAMI parameter {parameter} (for {', '.join(names)}, from the "
                f"compatibility matrix) does not resolve in {ctx.region}",
                "deploy to a region where `aws ssm get-parameter --name "
                f"{parameter}` answers, or give an AMI (fleet.ami {{source: id, id: ami-...}}), "
                "or correct dlami_ssm_parameter in your catalog override file",
            )
            continue
        use = "the Image Builder pipeline's parent image" if fleet.ami.source == "pipeline" else ""
        ctx.checked(AMI, f"{parameter} resolves to {value}" + (f" ({use})" if use else ""))


def _ami_id(ctx: Context, ami: str) -> None:
    try:
        images = ctx.client("ec2").describe_images(ImageIds=[ami])["Images"]
    except ClientError as exc:
        if not exc.response["Error"]["Code"].startswith("InvalidAMIID"):
            raise
        images = []
    if images:
        ctx.checked(AMI, f"{ami} exists ({images[0].get('Name', 'no name')})")
        return
    ctx.problem(
        AMI,
        f"fleet.ami.id {ami} does not exist in {ctx.region}, or is not shared with this account",
        "copy the AMI to this region (aws ec2 copy-image) or share it, or use source dlami",
    )


def _endpoint_image(ctx: Context, endpoint: EndpointSpec) -> None:
    if ctx.loaded.spec.llm is not None and endpoint.image is None:
        name, engine = ctx.loaded.llm_engine(endpoint.instance_type)
        where = (
            "the AWS deep learning container account"
            if engine.registry == "dlc"
            else (engine.registry)
        )
        ctx.unchecked(
            IMAGE,
            f"{engine.repository}:{engine.tag} (the {name} image the compatibility matrix names "
            f"for {endpoint.instance_type}) is in {where}; its tags are not listed to other "
            "accounts",
        )
        return
    image = endpoint.image or RUNTIME_IMAGE
    if image == RUNTIME_IMAGE:
        ctx.checked(IMAGE, f"{RUNTIME_IMAGE} is built from its Dockerfile by the deploy (Docker)")
        return
    if "/" not in image:
        ctx.unchecked(
            IMAGE,
            f"{image} is an AWS deep learning container in AWS's registry, located by the "
            "compatibility matrix; its tags are not listed to other accounts",
        )
        return
    match = _ECR_URI.match(image)
    if match is None:
        ctx.unchecked(IMAGE, f"{image} is not an ECR image URI; only ECR images are looked up")
        return
    wanted = (
        {"imageDigest": match["digest"]}
        if match["digest"]
        else {"imageTag": match["tag"] or "latest"}
    )
    ecr = ctx.client("ecr", match["region"])
    try:
        ecr.describe_images(
            registryId=match["account"], repositoryName=match["repository"], imageIds=[wanted]
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code not in ("RepositoryNotFoundException", "ImageNotFoundException"):
            raise
        what = "repository" if code == "RepositoryNotFoundException" else "image"
        ctx.problem(
            IMAGE,
            f"endpoint.image {image}: the {what} does not exist in ECR ({code})",
            f"push it first (docker push {image}), or leave endpoint.image out to build "
            "inf3kit's runtime image during the deploy",
        )
        return
    ctx.checked(IMAGE, f"{image} exists in ECR")
