"""Hardware descriptors: every instance size inf3kit knows, loaded from data files.

The catalog is data, not code branches, so a new family (or the real Inf3 numbers once AWS
publishes them) is a YAML edit or a user override file, never a code change.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inf3kit.catalog.prices import BASE_REGION, Price, PriceData, price_in_region

CATALOG_ENV = "INF3KIT_CATALOG"
"""Environment variable naming a user catalog file merged over the shipped one."""

Status = Literal["ga", "provisional"]
Platform = Literal["ec2", "sagemaker"]
SAGEMAKER_PREFIX = "ml."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RelativeThroughput(_Strict):
    """Throughput of one chip relative to one chip of `reference`, with where the ratio comes from.

    `inf3kit plan` estimates a family it has no profile for from one it has, through these
    ratios; a provisional ratio makes every figure derived from it provisional.
    """

    reference: str
    ratio: float = Field(gt=0)
    source: str
    provisional: bool = False


class AcceleratorData(_Strict):
    kind: Literal["neuron", "gpu"]
    neuroncore_generation: str | None = None
    neuron_cores_per_chip: int | None = None
    memory_gib_per_chip: float
    source: str
    logical_neuroncore_config: int = Field(1, ge=1)
    """Physical NeuronCores the Neuron runtime groups into one logical core by default (LNC):
    what frameworks see as one core, and the unit of a tensor-parallel degree."""
    logical_neuroncore_source: str | None = None
    throughput: RelativeThroughput | None = None


class SizeData(_Strict):
    chips: int = Field(ge=1)
    vcpu: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    network: str
    price: float | None = None
    ml_price: float | None = None


class FamilyData(_Strict):
    accelerator: str
    sagemaker: bool = False
    status: Status = "ga"
    price_source: str
    price_as_of: str
    ml_price_source: str | None = None
    ml_price_as_of: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    sizes: dict[str, SizeData]


class CatalogData(_Strict):
    accelerators: dict[str, AcceleratorData] = Field(default_factory=dict)
    families: dict[str, FamilyData] = Field(default_factory=dict)
    prices: dict[str, dict[str, PriceData]] = Field(default_factory=dict)
    """Region -> instance type -> price; wins over the sizes' `price`/`ml_price` (us-east-1)."""


@dataclass(frozen=True)
class InstanceType:
    """One purchasable instance size, on EC2 (`inf2.xlarge`) or SageMaker (`ml.inf2.xlarge`)."""

    name: str
    platform: Platform
    family: str
    accelerator: str
    accelerator_kind: Literal["neuron", "gpu"]
    chips: int
    neuron_cores: int
    logical_neuroncore_config: int
    """Physical cores per logical core (LNC); `neuron_cores // this` is what an engine sees."""
    neuroncore_generation: str | None
    accelerator_memory_gib: float
    vcpu: int
    memory_gib: float
    network: str
    price_usd_per_hour: float | None
    price_source: str
    price_as_of: str
    status: Status
    sources: dict[str, str]

    @property
    def provisional(self) -> bool:
        return self.status == "provisional"

    @property
    def is_neuron(self) -> bool:
        return self.accelerator_kind == "neuron"


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file and the field."""


class Catalog:
    """Instance types by name, with the lookups validation and synthesis need."""

    def __init__(self, data: CatalogData) -> None:
        self.data = data
        self._types: dict[str, InstanceType] = {}
        for family_name, family in data.families.items():
            accel = data.accelerators.get(family.accelerator)
            if accel is None:
                raise CatalogError(
                    f"family {family_name!r} names accelerator {family.accelerator!r}, which is "
                    f"not defined; defined: {', '.join(sorted(data.accelerators))}"
                )
            for size_name, size in family.sizes.items():
                self._add(family_name, family, accel, size_name, size, "ec2")
                if family.sagemaker:
                    self._add(family_name, family, accel, size_name, size, "sagemaker")
        for region, entries in data.prices.items():
            unknown = sorted(set(entries) - set(self._types))
            if unknown:
                raise CatalogError(
                    f"prices.{region} names unknown instance types {', '.join(unknown)}. "
                    "Fix: use names listed by `inf3kit catalog`, or add the family first"
                )

    def _add(
        self,
        family_name: str,
        family: FamilyData,
        accel: AcceleratorData,
        size_name: str,
        size: SizeData,
        platform: Platform,
    ) -> None:
        on_sagemaker = platform == "sagemaker"
        sources = dict(family.sources)
        if family.status == "provisional":
            sources.setdefault("accelerator", accel.source)
        name = f"{SAGEMAKER_PREFIX}{size_name}" if on_sagemaker else size_name
        self._types[name] = InstanceType(
            name=name,
            platform=platform,
            family=family_name,
            accelerator=family.accelerator,
            accelerator_kind=accel.kind,
            chips=size.chips,
            neuron_cores=size.chips * (accel.neuron_cores_per_chip or 0),
            logical_neuroncore_config=accel.logical_neuroncore_config,
            neuroncore_generation=accel.neuroncore_generation,
            accelerator_memory_gib=size.chips * accel.memory_gib_per_chip,
            vcpu=size.vcpu,
            memory_gib=size.memory_gib,
            network=size.network,
            price_usd_per_hour=size.ml_price if on_sagemaker else size.price,
            price_source=(family.ml_price_source or family.price_source)
            if on_sagemaker
            else family.price_source,
            price_as_of=(family.ml_price_as_of or family.price_as_of)
            if on_sagemaker
            else family.price_as_of,
            status=family.status,
            sources=sources,
        )

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str) -> InstanceType:
        """Return the descriptor, or raise KeyError naming close matches."""
        try:
            return self._types[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = self.close_matches(name)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown instance type {name!r}" + (f"; {hint}" if hint else "")

    def close_matches(self, name: str, platform: Platform | None = None) -> list[str]:
        names = [n for n, t in self._types.items() if platform is None or t.platform == platform]
        return difflib.get_close_matches(name, names, n=3, cutoff=0.6)

    def neuron_type_problem(
        self, name: str, platform: Platform, *, other_place: str | None = None
    ) -> str | None:
        """Why `name` cannot serve on `platform` (a Neuron type of it is needed), else None.

        The one check behind the spec and every construct; `other_place` names where a type of
        the other platform belongs, for the fix.
        """
        is_ml = name.startswith(SAGEMAKER_PREFIX)
        move = f", or move this type to {other_place}" if other_place else ""
        if platform == "sagemaker" and not is_ml:
            return (
                f"{name!r} is an EC2 type; endpoints take SageMaker types. "
                f"Fix: use '{SAGEMAKER_PREFIX}{name}'{move}"
            )
        if platform == "ec2" and is_ml:
            return (
                f"{name!r} is a SageMaker type; fleets take EC2 types. "
                f"Fix: use {name.removeprefix(SAGEMAKER_PREFIX)!r}{move}"
            )
        if name not in self:
            close = self.close_matches(name, platform=platform)
            guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            return (
                f"unknown instance type {name!r}{guess} Fix: use a type listed by "
                "`inf3kit catalog`, or add it in a catalog override file"
            )
        itype = self.get(name)
        if not itype.is_neuron:
            example = "ml.inf2.xlarge" if platform == "sagemaker" else "inf2.xlarge"
            return (
                f"{name!r} is a GPU type ({itype.accelerator}), listed only as a cost baseline; "
                f"inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. {example!r}"
            )
        return None

    def types(
        self, *, family: str | None = None, platform: Platform | None = None
    ) -> list[InstanceType]:
        return [
            t
            for t in self._types.values()
            if (family is None or t.family == family)
            and (platform is None or t.platform == platform)
        ]

    @property
    def families(self) -> list[str]:
        return list(self.data.families)

    def price(self, name: str, region: str = BASE_REGION) -> Price:
        """The on-demand (and, where recorded, Spot) price of `name` in `region`, with its source.

        A price the catalog does not hold comes back with `usd_per_hour=None` and a source that
        says how to add it, never as a guess.
        """
        return price_in_region(self.get(name), region, self.data.prices.get(region, {}))

    def accelerator(self, name: str) -> AcceleratorData:
        return self.data.accelerators[name]


def family_of(instance_type: str) -> str:
    """`ml.inf2.xlarge` -> `inf2`; `inf2.xlarge` -> `inf2`."""
    name = instance_type.removeprefix(SAGEMAKER_PREFIX)
    return name.split(".", 1)[0]


def read_yaml_mapping(path: Path | str, text: str | None = None) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text if text is not None else Path(path).read_text())
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise CatalogError(f"catalog file {path} must be a mapping with `families:`")
    return raw


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings so an override file can change one number of one size."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validated(raw: dict[str, Any], origin: str) -> CatalogData:
    try:
        return CatalogData.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise CatalogError(f"catalog {origin} is invalid: {problems}") from None


def shipped_file(name: str) -> str:
    return resources.files("inf3kit.catalog").joinpath("data", name).read_text()


@cache
def _shipped_raw() -> dict[str, Any]:
    return read_yaml_mapping("inf3kit/catalog/data/instances.yaml", shipped_file("instances.yaml"))


def load_catalog(override: Path | str | None = None) -> Catalog:
    """The shipped catalog merged with `override`, else with the file named by INF3KIT_CATALOG."""
    raw = _shipped_raw()
    origin = "shipped with inf3kit"
    override = override or os.environ.get(CATALOG_ENV) or None
    if override:
        user = read_yaml_mapping(override)
        user.pop("compatibility", None)
        raw = deep_merge(raw, user)
        origin = f"merged with {override}"
    return Catalog(_validated(raw, origin))
