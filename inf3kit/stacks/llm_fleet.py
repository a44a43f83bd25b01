"""Spec `fleet:` section of an LLM service (`model.engine: vllm`) -> LlmFleet props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration

from inf3kit.constructs import FixedImage, LlmFleet
from inf3kit.spec import FleetSpec
from inf3kit.stacks.fleet import output_fleet_addresses, shared_fleet_props

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_llm_fleet(stack: ServiceStack, fleet: FleetSpec) -> LlmFleet:
    """Add the vLLM fleet behind its load balancer and output the load balancer's DNS name.

    `tensor_parallel: auto` resolves to the smallest degree that fits every type and leaves a
    server layout the load balancer can reach (inf3kit.rules.llm_server_layout_problems). The
    drain and startup defaults of a runtime fleet (30 s, 20 min) are too short for LLM
    generations and loads, so the construct's (120 s, 60 min) apply unless the spec sets them.
    """
    service = stack.loaded.llm_service(*fleet.instance_types)
    given = fleet.model_fields_set
    llm_fleet = LlmFleet(
        stack,
        "Fleet",
        **shared_fleet_props(stack, fleet),
        weights=service.weights,
        settings=service.settings,
        architecture=service.architecture,
        machine_image=FixedImage(fleet.ami.id)
        if fleet.ami.source == "id" and fleet.ami.id
        else None,
        drain=Duration.seconds(fleet.drain_seconds) if "drain_seconds" in given else None,
    )
    output_fleet_addresses(
        stack, llm_fleet, "base URL of the fleet's OpenAI-compatible API (/v1/chat/completions)"
    )
    return llm_fleet
