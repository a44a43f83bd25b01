"""Shared pieces of the spec models: strict config and catalog access during validation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationInfo

from inf3kit.catalog import Catalog, Compatibility, load_catalog, load_compatibility
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


def raise_problems(problems: list[str]) -> None:
    """A validator's problems, in the rules' words; pydantic keeps one message per validator."""
    if problems:
        raise ValueError("; ".join(problems))


def compatibility_from(info: ValidationInfo) -> Compatibility:
    """The matrix the loader passed in (user overrides applied), else the shipped one."""
    context = info.context or {}
    compat = context.get("compatibility")
    return compat if isinstance(compat, Compatibility) else load_compatibility()


def check_neuron_type(value: str, info: ValidationInfo, platform: Platform) -> str:
    """Validate an instance type for an endpoint (`sagemaker`) or a fleet (`ec2`)."""
    other = "`fleet.instance_types`" if platform == "sagemaker" else "`endpoint.instance_type`"
    problem = catalog_from(info).neuron_type_problem(value, platform, other_place=other)
    if problem:
        raise ValueError(problem)
    return value
