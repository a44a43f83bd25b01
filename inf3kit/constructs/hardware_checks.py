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
    catalog = catalog or load_catalog()
    if instance_type not in catalog:
        close = catalog.close_matches(instance_type, platform=platform)
        guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        return [f"unknown instance type {instance_type!r}{guess} (`inf3kit catalog` lists them)"]
    itype = catalog.get(instance_type)
    if itype.platform != platform:
        wanted = "a SageMaker 'ml.' type" if platform == "sagemaker" else "an EC2 type (no 'ml.')"
        return [f"instance type {instance_type!r} is for {itype.platform}; expected {wanted}"]
    if not itype.is_neuron:
        return [f"instance type {instance_type!r} has no Neuron accelerator ({itype.accelerator})"]
    return []


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
