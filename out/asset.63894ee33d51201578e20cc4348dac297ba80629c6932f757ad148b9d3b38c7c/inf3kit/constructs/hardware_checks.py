"""Catalog checks every construct runs on the instance types it is given."""

from __future__ import annotations

from aws_cdk import Annotations, Token
from constructs import IConstruct

from inf3kit.catalog import Catalog, InstanceType, load_catalog
from inf3kit.catalog.hardware import Platform

PROVISIONAL_WARNING_ID = "inf3kit:provisionalInstanceType"


def check_instance_type(
    instance_type: str, *, platform: Platform, catalog: Catalog | None = None
) -> list[str]:
    """Problems with `instance_type` for `platform`, empty when it is a known Neuron type."""
    if Token.is_unresolved(instance_type):
        return []
    problem = (catalog or load_catalog()).neuron_type_problem(instance_type, platform)
    return [problem] if problem else []


def warn_if_provisional(scope: IConstruct, itype: InstanceType) -> None:
    """Attach a synthesis warning, since a provisional type's numbers are assumptions."""
    if itype.provisional:
        Annotations.of(scope).add_warning_v2(
            PROVISIONAL_WARNING_ID,
            f"{itype.name} is provisional: AWS has published no specification, so its catalog "
            f"numbers are assumptions (`inf3kit catalog --family {itype.family}` shows their "
            "sources). Confirm capacity and quotas before production, and override the catalog "
            "when AWS publishes the real figures.",
        )
