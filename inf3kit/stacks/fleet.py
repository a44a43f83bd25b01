"""Spec `fleet:` section -> NeuronFleet props."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2

from inf3kit.constructs import (
    FixedImage,
    FleetBase,
    NeuronAmi,
    NeuronAmiPipeline,
    NeuronFleet,
    WarmPool,
)
from inf3kit.spec import FleetSpec
from inf3kit.stacks.serving import runtime_settings

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_fleet(stack: ServiceStack, fleet: FleetSpec) -> NeuronFleet:
    """Add the EC2 fleet behind its load balancer and output the load balancer's DNS name."""
    if stack.bundle is None:
        raise ValueError(
            "fleet: an LLM spec (model.engine vllm) has no bundle; its fleet is an LlmFleet "
            "(inf3kit.stacks.llm_fleet.add_llm_fleet)"
        )
    serving = stack.loaded.spec.serving
    neuron_fleet = NeuronFleet(
        stack,
        "Fleet",
        **shared_fleet_props(stack, fleet),
        bundle_bucket=stack.bundle.bucket,
        bundle_key=stack.bundle.object_key,
        bundle_variants=stack.bundle_variants,
        machine_image=_machine_image(stack, fleet),
        neuron_sdk=fleet.ami.neuron_sdk,
        port=serving.port,
        runtime=runtime_settings(serving),
        spot_percent=fleet.spot_percent,
        warm_pool=WarmPool(fleet.warm_pool.min_size, fleet.warm_pool.state)
        if fleet.warm_pool
        else None,
        requests_per_instance=fleet.scaling.requests_per_instance,
        neuroncore_utilization_percent=fleet.scaling.neuroncore_utilization_percent,
        drain=Duration.seconds(fleet.drain_seconds),
        bundle_size=stack.bundle_size,
    )
    output_fleet_addresses(stack, neuron_fleet, "base URL of the fleet")
    return neuron_fleet


def shared_fleet_props(stack: ServiceStack, fleet: FleetSpec) -> dict[str, Any]:
    """The props every fleet construct takes from the spec alike: placement, capacity, startup,
    encryption, the load balancer and the catalog (NeuronFleet and LlmFleet)."""
    if stack.vpc is None:  # the service stack makes or looks up a VPC whenever a fleet exists
        raise ValueError("fleet: no VPC. Fix: set `network.vpc` to 'new' or a VPC id")
    lb = fleet.load_balancer
    return {
        "vpc": stack.vpc,
        "instance_types": fleet.instance_types,
        "min_capacity": fleet.capacity.min,
        "max_capacity": fleet.capacity.max,
        "desired_capacity": fleet.capacity.desired,
        "startup_timeout": Duration.minutes(fleet.startup_minutes)
        if fleet.startup_minutes is not None
        else None,
        "key": stack.artifacts.key,
        "public": lb.public,
        "certificate": acm.Certificate.from_certificate_arn(
            stack, "Certificate", lb.certificate_arn
        )
        if lb.certificate_arn
        else None,
        "access_logs_bucket": stack.artifacts.access_logs,
        "catalog": stack.loaded.catalog,
        "compatibility": stack.loaded.compatibility,
    }


def output_fleet_addresses(stack: ServiceStack, fleet: FleetBase, url_description: str) -> None:
    """The load balancer's DNS name and the fleet's base URL, as stack outputs."""
    CfnOutput(
        stack,
        "LoadBalancerDnsName",
        value=fleet.load_balancer.load_balancer_dns_name,
        description="DNS name of the fleet's load balancer",
    )
    CfnOutput(stack, "FleetUrl", value=fleet.frontend.url, description=url_description)


def _machine_image(stack: ServiceStack, fleet: FleetSpec) -> ec2.IMachineImage | None:
    """None lets NeuronFleet pick the DLAMI for its types.

    `pipeline` bakes the image in this stack: the pipeline also builds once during the deploy
    and publishes the AMI id to its SSM parameter, the launch template waits for that build and
    EC2 reads the parameter at each launch (a CloudFormation SSM parameter would be read before
    the build and fail the first deploy). Later scheduled builds update the parameter: new
    instances boot the new AMI; an instance refresh rolls the running ones.
    """
    ami = fleet.ami
    if ami.source == "id" and ami.id:
        return FixedImage(ami.id)
    if ami.source == "pipeline":
        options: dict[str, object] = {}
        if ami.neuron_sdk is not None:
            options["neuron_sdk"] = ami.neuron_sdk
        if ami.schedule is not None:
            options["schedule"] = None if ami.schedule == "manual" else ami.schedule
        pipeline = NeuronAmiPipeline(
            stack,
            "AmiPipeline",
            instance_types=fleet.instance_types,
            vpc=stack.vpc,
            key=stack.artifacts.key,
            logs_bucket=stack.artifacts.bucket,
            catalog=stack.loaded.catalog,
            compatibility=stack.loaded.compatibility,
            **options,  # type: ignore[arg-type]
        )
        return NeuronAmi.from_pipeline(pipeline)
    return None
