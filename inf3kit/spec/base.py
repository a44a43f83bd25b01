"""Shared pieces of the spec models: strict config and catalog access during validation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationInfo

from inf3kit.catalog import SAGEMAKER_PREFIX, Catalog, load_catalog
from inf3kit.catalog.hardware import Platform


ACCOUNT_PATTERN = r"^\d{12}$"
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"


class StrictModel(BaseModel):
    """Every spec section refuses unknown keys, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def catalog_from(info: ValidationInfo) -> Catalog:
    """The catalog the loader passed in (user overrides applied), else the shipped one."""
    context = info.context or {}
    catalog = context.get("catalog")
    return catalog if isinstance(catalog, Catalog) else load_catalog()


def check_neuron_type(value: str, info: ValidationInfo, platform: Platform) -> str:
    """Validate an instance type for an endpoint (`sagemaker`) or a fleet (`ec2`)."""
    catalog = catalog_from(info)
    is_ml = value.startswith(SAGEMAKER_PREFIX)
    if platform == "sagemaker" and not is_ml:
        raise ValueError(
            f"{value!r} is an EC2 type; endpoints take SageMaker types. Fix: use "
            f"'{SAGEMAKER_PREFIX}{value}', or move this type to `fleet.instance_types`"
        )
    if platform == "ec2" and is_ml:
        raise ValueError(
            f"{value!r} is a SageMaker type; fleets take EC2 types. Fix: use "
            f"{value.removeprefix(SAGEMAKER_PREFIX)!r}, or move this type to "
            "`endpoint.instance_type`"
        )
    if value not in catalog:
        close = catalog.close_matches(value, platform=platform)
        guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown instance type {value!r}{guess} Fix: use a type listed by `inf3kit catalog`,"
            " or add it in a catalog override file (spec key `catalog`)"
        )
    itype = catalog.get(value)
    if not itype.is_neuron:
        example = "ml.inf2.xlarge" if platform == "sagemaker" else "inf2.xlarge"
        raise ValueError(
            f"{value!r} is a GPU type ({itype.accelerator}), listed only as a cost baseline; "
            f"inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. {example!r}"
        )
    return value
