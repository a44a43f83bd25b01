"""Spec `endpoint:` section -> NeuronEndpoint props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inf3kit.constructs.hardware_checks import warn_if_provisional
from inf3kit.spec import EndpointSpec

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_endpoint(stack: ServiceStack, endpoint: EndpointSpec) -> None:
    """Add the SageMaker endpoint (until NeuronEndpoint lands: the catalog checks only)."""
    warn_if_provisional(stack, stack.loaded.catalog.get(endpoint.instance_type))
