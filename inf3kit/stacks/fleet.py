"""Spec `fleet:` section -> NeuronFleet props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inf3kit.constructs.hardware_checks import warn_if_provisional
from inf3kit.spec import FleetSpec

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack


def add_fleet(stack: ServiceStack, fleet: FleetSpec) -> None:
    """Add the EC2 fleet (until NeuronFleet lands: the catalog checks only)."""
    for name in fleet.instance_types:
        warn_if_provisional(stack, stack.loaded.catalog.get(name))
