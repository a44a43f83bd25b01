"""The compatibility matrix: which Neuron SDK, DLAMI and serving images suit each family.

Synthesis asks it before building anything, so a combination that cannot work (an image that
does not support the family) fails with a message saying what would work instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inf3kit.catalog.engines import AUTO, EngineImage, EngineSupport, engine_choice
from inf3kit.catalog.hardware import (
    CATALOG_ENV,
    CatalogError,
    Platform,
    deep_merge,
    family_of,
    read_yaml_mapping,
    shipped_file,
)

RUNTIME_IMAGE = "inf3kit-runtime"
"""The matrix entry of inf3kit's own serving image, the endpoints' default."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilySupport(_Strict):
    min_neuron_sdk: str
    sdk_line: str
    dlami_ssm_parameter: str | None = None
    """None when no current Neuron DLAMI supports the family."""
    source: str
    status: Literal["ga", "provisional"] = "ga"
    fleet_refusal: str | None = None
    """Why an inf3kit EC2 fleet cannot run on the family; None when it can."""
    guardrails_refusal: str | None = None
    """Why SageMaker deployment guardrails (canary, linear, rolling) do not apply, or None."""


class ServingImage(_Strict):
    description: str
    families: list[str]
    source: str
    base: str | None = None
    repository: str | None = None
    """ECR repository in the AWS deep learning container account of each region."""
    tag: str | None = None
    neuron_sdk: str | None = None
    """The Neuron SDK the tag ships, compared with the family's `min_neuron_sdk`."""
    network_isolation: bool = True
    """Whether the image serves with no network (model from /opt/ml/model only)."""


class CompatibilityData(_Strict):
    families: dict[str, FamilySupport] = Field(default_factory=dict)
    images: dict[str, ServingImage] = Field(default_factory=dict)
    engines: dict[str, EngineSupport] = Field(default_factory=dict)
    """LLM engines (inf3kit.catalog.engines), in the order `llm.distribution: auto` prefers."""


class Compatibility:
    """Answers 'does X run on Y' and, when it does not, 'what does'."""

    def __init__(self, data: CompatibilityData) -> None:
        self.data = data

    def family(self, instance_type: str) -> FamilySupport:
        name = family_of(instance_type)
        try:
            return self.data.families[name]
        except KeyError:
            known = ", ".join(sorted(self.data.families))
            raise ValueError(
                f"instance family {name!r} (from {instance_type!r}) has no Neuron support entry; "
                f"supported families: {known}. Add it to your catalog override file under "
                "`compatibility.families`."
            ) from None

    def dlami_parameter(self, instance_type: str) -> str:
        """The public SSM parameter of the Neuron DLAMI for the type's family."""
        support = self.family(instance_type)
        if support.dlami_ssm_parameter is None:
            raise ValueError(
                f"no Neuron DLAMI supports {family_of(instance_type)!r} ({instance_type}): "
                f"{support.fleet_refusal or support.sdk_line}. Fix: give your own AMI"
            )
        return support.dlami_ssm_parameter

    def fleet_problem(self, instance_type: str) -> str | None:
        """Why an inf3kit fleet cannot run on `instance_type`, with the fix; None if it can."""
        name = family_of(instance_type)
        support = self.data.families.get(name)
        if support is None or support.fleet_refusal is None:
            return None
        runs = sorted(n for n, f in self.data.families.items() if f.fleet_refusal is None)
        images = ", ".join(self.images_for(instance_type)) or "none"
        return (
            f"{instance_type}: {support.fleet_refusal}. Fix: use a family a fleet runs on "
            f"({', '.join(runs)}), or serve {name} on a SageMaker endpoint (images: {images})"
        )

    def guardrails_problem(self, instance_type: str, strategy: str) -> str | None:
        """Why `strategy` cannot roll out on `instance_type`, with the fix; None if it can."""
        support = self.data.families.get(family_of(instance_type))
        if strategy == "all_at_once" or support is None or support.guardrails_refusal is None:
            return None
        return (
            f"{strategy} on {instance_type}: {support.guardrails_refusal}. "
            "Fix: use strategy all_at_once, which is what SageMaker would do anyway"
        )

    def engine_choice(
        self,
        instance_types: str | Sequence[str],
        distribution: str = AUTO,
        neuron_sdk: str | None = None,
        quantization: str | None = None,
    ) -> tuple[str, EngineImage] | str:
        """The LLM engine distribution and image serving `instance_types`, or why none, with the
        fix (inf3kit.catalog.engines.engine_choice)."""
        return engine_choice(
            self.data.engines, instance_types, distribution, neuron_sdk, quantization
        )

    def llm_families(self, platform: Platform) -> list[str]:
        """Families some LLM engine serves on `platform`: where a model may be moved."""
        return sorted(
            {f for e in self.data.engines.values() if platform in e.platforms for f in e.families}
        )

    def llm_quantizations(self, platform: Platform) -> list[str]:
        """Weight quantizations some LLM engine on `platform` takes, in inf3kit."""
        return sorted(
            {
                q
                for e in self.data.engines.values()
                if platform in e.platforms
                for q in e.quantization
            }
        )

    def images_for(self, instance_type: str) -> list[str]:
        fam = family_of(instance_type)
        return [name for name, img in self.data.images.items() if fam in img.families]

    def check_image(self, image: str, instance_type: str) -> None:
        """Raise ValueError if `image` cannot serve on `instance_type`, naming what can."""
        fam = family_of(instance_type)
        known = self.data.images.get(image)
        if known is None:
            raise ValueError(
                f"serving image {image!r} is not in the compatibility matrix; known images: "
                f"{', '.join(sorted(self.data.images))}"
            )
        if fam not in known.families:
            options = self.images_for(instance_type)
            suggestion = (
                f"images that support {fam}: {', '.join(options)}"
                if options
                else f"no known image supports {fam}"
            )
            raise ValueError(
                f"serving image {image!r} does not support instance family {fam!r} "
                f"({instance_type}); it supports {', '.join(known.families)}. "
                f"Fix: pick an instance type of those families, or {suggestion}."
            )


def load_compatibility(override: Path | str | None = None) -> Compatibility:
    """The shipped matrix merged with the `compatibility:` section of a user catalog file."""
    raw: dict[str, Any] = read_yaml_mapping(
        "inf3kit/catalog/data/compatibility.yaml", shipped_file("compatibility.yaml")
    )
    override = override or os.environ.get(CATALOG_ENV) or None
    if override:
        raw = deep_merge(raw, read_yaml_mapping(override).get("compatibility") or {})
    try:
        return Compatibility(CompatibilityData.model_validate(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise CatalogError(f"compatibility matrix is invalid: {problems}") from None
