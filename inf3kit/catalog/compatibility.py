"""The compatibility matrix: which Neuron SDK, DLAMI and serving images suit each family.

Synthesis asks it before building anything, so a combination that cannot work (an image that
does not support the family) fails with a message saying what would work instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
_SET_RELEASE = "set neuron_sdk (spec: fleet.ami.neuron_sdk; NeuronFleet: neuron_sdk=)"
"""The matrix entry of inf3kit's own serving image, the endpoints' default."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilySupport(_Strict):
    min_neuron_sdk: str
    sdk_line: str
    neuron_sdk: str | None = None
    """The Neuron release (a `neuron_releases` key) that boot and bake install for the family;
    None when no release lists it (inf3kit then refuses to guess)."""
    dlami_ssm_parameter: str | None = None
    """None when no current Neuron DLAMI supports the family."""
    dlami_python: str | None = None
    """The DLAMI's python3, which the fleet's boot and the bake make their venv with; a release
    must publish its packages for it. None: not recorded."""
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


class NeuronRelease(_Strict):
    """The exact packages of one Neuron SDK release, with the families it lists."""

    families: list[str]
    python: list[str] = Field(default_factory=list)
    apt: dict[str, str]
    """aws-neuronx-* apt package -> version: driver, runtime, collectives, tools."""
    pip: dict[str, str]
    """pip package -> version: torch-neuronx and neuronx-cc always, torch when sourced."""
    other_torch_neuronx: list[str] = Field(default_factory=list)
    """torch-neuronx builds of the release for other PyTorch versions."""

    @model_validator(mode="after")
    def _pins(self) -> NeuronRelease:
        missing = [n for n in ("torch-neuronx", "neuronx-cc") if n not in self.pip]
        if missing:
            raise ValueError(f"pip needs {' and '.join(missing)} (the compiler and framework)")
        return self

    def requirements(self) -> tuple[str, ...]:
        """The `pip` pins as requirement strings, e.g. 'neuronx-cc==2.22.12471.0'."""
        return tuple(f"{name}=={version}" for name, version in self.pip.items())

    def torch_neuronx_builds(self) -> list[str]:
        return [self.pip["torch-neuronx"], *self.other_torch_neuronx]


class CompatibilityData(_Strict):
    families: dict[str, FamilySupport] = Field(default_factory=dict)
    images: dict[str, ServingImage] = Field(default_factory=dict)
    engines: dict[str, EngineSupport] = Field(default_factory=dict)
    """LLM engines (inf3kit.catalog.engines), in the order `llm.distribution: auto` prefers."""
    neuron_releases: dict[str, NeuronRelease] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _family_releases(self) -> CompatibilityData:
        unknown = {
            name: f.neuron_sdk
            for name, f in self.families.items()
            if f.neuron_sdk is not None and f.neuron_sdk not in self.neuron_releases
        }
        if unknown:
            pairs = ", ".join(f"{n} -> {v}" for n, v in unknown.items())
            raise ValueError(
                f"families name Neuron releases that `neuron_releases` does not list ({pairs}); "
                "add each release with its packages"
            )
        return self


@dataclass(frozen=True)
class ReleaseCheck:
    """The one Neuron release a set of instance types installs, and what is wrong with it."""

    version: str | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompiledVariant:
    """A Neuron variant of a model bundle, as the compile/serve check sees it."""

    target: str
    """The family it was compiled for (inf2, trn2, ...); cpu variants are never checked."""
    compiler: str
    """The manifest's compiler version, e.g. '2.9.0.2.11.19912 (neuronx-cc 2.22.12471.0)'."""
    label: str
    """How messages name it, e.g. "variant inf2 (batch 8, inf2-b8.pt)"."""

    @classmethod
    def of(cls, target: str, compiler: str, batch_size: int, file: str) -> CompiledVariant:
        """From a manifest variant's fields (the catalog does not import the runtime)."""
        return cls(target, compiler, f"variant {target} (batch {batch_size}, {file})")


_NEURONX_CC = re.compile(r"neuronx-cc ([0-9][0-9.]*)")
_LEADING_VERSION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)+)")


def _ships(release: NeuronRelease, torch_neuronx: str) -> bool:
    return any(version_key(torch_neuronx) == version_key(b) for b in release.torch_neuronx_builds())


def version_key(version: str) -> tuple[int, ...]:
    """'2.27.1' -> (2, 27, 1); a local suffix ('+b4a00d10') is ignored."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0]))


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

    def release(self, version: str) -> NeuronRelease:
        found = self.data.neuron_releases.get(version)
        if found is None:
            raise ValueError(
                f"Neuron release {version!r} is not in the compatibility matrix (known: "
                f"{', '.join(sorted(self.data.neuron_releases, key=version_key))}). Fix: use a "
                "known release, or add it with its packages under "
                "`compatibility.neuron_releases` in a catalog override file"
            )
        return found

    def check_release(
        self,
        instance_types: Sequence[str],
        neuron_sdk: str | None = None,
        *,
        on_dlami: bool = False,
    ) -> ReleaseCheck:
        """The Neuron release one launch template or baked image installs for these types.

        `neuron_sdk` None: the families' own release, which must be one. Given: it must be a
        known release that meets each family's minimum and lists each generally available
        family (or is the release the matrix names for it). A family no release lists
        (provisional inf3) gets the others' release with a warning; alone, it is refused
        rather than guessed. `on_dlami`: the packages go into a venv of the Neuron DLAMI's
        python3, so the release must publish them for that Python.
        """
        families: dict[str, FamilySupport] = {}
        for instance_type in instance_types:
            name = family_of(instance_type)
            if name in self.data.families:
                families.setdefault(name, self.data.families[name])
        if neuron_sdk is None:
            default = self._default_release(families)
            if default.version is None:
                return default
            neuron_sdk = default.version
        try:
            release = self.release(neuron_sdk)
        except ValueError as exc:
            return ReleaseCheck(None, [str(exc)])
        problems, warnings = [], []
        for name, support in families.items():
            if support.fleet_refusal is not None:
                continue  # refused on its own, with its reason
            minimum = support.min_neuron_sdk
            if version_key(neuron_sdk) < version_key(minimum):
                problems.append(
                    f"Neuron {neuron_sdk} does not support {name} (it needs at least {minimum})."
                    f" Fix: pin a release >= {minimum}, or drop {name}"
                )
            elif name not in release.families and neuron_sdk != support.neuron_sdk:
                listed = ", ".join(release.families)
                message = f"Neuron {neuron_sdk} lists {listed}, not {name}"
                if support.status == "provisional" or support.neuron_sdk is None:
                    warnings.append(
                        f"{message}: its packages are installed on {name} unverified "
                        f"({support.source})"
                    )
                else:
                    problems.append(
                        f"{message}. Fix: pin a release that lists {name} "
                        f"(the matrix names {support.neuron_sdk!r}), or drop {name}"
                    )
        if on_dlami:
            problems += self._python_problems(neuron_sdk, release, families.values())
        return ReleaseCheck(neuron_sdk, problems, warnings)

    def _python_problems(
        self, version: str, release: NeuronRelease, families: Iterable[FamilySupport]
    ) -> list[str]:
        problems = []
        for python in sorted({f.dlami_python for f in families if f.dlami_python}):
            if not release.python or python in release.python:
                continue
            fits = [v for v, r in self.data.neuron_releases.items() if python in r.python]
            newest = max(fits, key=version_key, default=None)
            problems.append(
                f"Neuron {version} publishes its packages for Python "
                f"{', '.join(release.python)}, but the Neuron DLAMI's python3 is {python}: pip "
                f"would find no torch-neuronx for it and every boot would fail. Fix: pin a "
                f"release for Python {python}"
                + (f" (e.g. {newest!r})" if newest else "")
                + ", or build on an AMI of your own (spec: fleet.ami.source id; NeuronFleet: "
                "machine_image; NeuronAmiPipeline: parent_image)"
            )
        return problems

    def compiled_release(self, compiler: str) -> str | None:
        """The earliest matrix release whose neuronx-cc (else torch-neuronx) made `compiler`.

        `compiler` is a manifest's compiler version: torch-neuronx's version, followed by
        `(neuronx-cc X)` when the compiler was importable. None when no release ships it.
        """
        cc = _NEURONX_CC.search(compiler)
        framework = _LEADING_VERSION.match(compiler)
        found = [
            name
            for name, release in self.data.neuron_releases.items()
            if (cc and version_key(cc[1]) == version_key(release.pip["neuronx-cc"]))
            or (not cc and framework and _ships(release, framework[1]))
        ]
        return min(found, key=version_key) if found else None

    def serving_problems(
        self,
        variants: Sequence[CompiledVariant],
        *,
        instance_type: str,
        serving: str,
        serving_sdk: str | None,
    ) -> list[str]:
        """Why `serving` (Neuron `serving_sdk`) cannot load the variants for `instance_type`.

        The rule, in one place for the constructs and `inf3kit bundle`: a Neuron variant is
        served by an SDK at least as new as the release whose compiler made it, and a compiler
        no release of the matrix ships is refused, since nothing says what can load it. The
        Neuron runtime checks a model's NEFF version and hardware operators at load and refuses
        what a newer compiler made ("Unsupported NEFF Version", "Unsupported Hardware Operator
        Code": upgrade the runtime; Neuron docs, neuron-runtime/nrt-troubleshoot.rst). CPU
        variants and variants for other families are not checked; nor is an image whose SDK
        the matrix does not know (an image URI of your own).
        """
        if serving_sdk is None:
            return []
        family = family_of(instance_type)
        problems = []
        for variant in variants:
            if variant.target != family:
                continue
            compiled = self.compiled_release(variant.compiler)
            recompile = self._recompile_hint(serving_sdk)
            if compiled is None:
                problems.append(
                    f"{variant.label} was compiled by {variant.compiler!r}, which no Neuron "
                    f"release of the compatibility matrix ships, so nothing says {serving} "
                    f"(Neuron {serving_sdk}) can load it. Fix: {recompile}, or add the release "
                    "that ships this compiler under `compatibility.neuron_releases` in a catalog "
                    "override file"
                )
            elif version_key(serving_sdk) < version_key(compiled):
                problems.append(
                    f"{variant.label} was compiled with Neuron {compiled} (compiler "
                    f"{variant.compiler}), newer than the Neuron {serving_sdk} of {serving}, "
                    "whose runtime cannot load it. Fix: serve it with an image or AMI with "
                    f"Neuron >= {compiled}, or {recompile}"
                )
        return problems

    def _recompile_hint(self, sdk: str) -> str:
        release = self.data.neuron_releases.get(sdk)
        if release is None:
            return f"recompile with Neuron {sdk}"
        return (
            f"recompile with Neuron {sdk} (neuronx-cc {release.pip['neuronx-cc']}, torch-neuronx "
            f"{release.pip['torch-neuronx']})"
        )

    def servers(self, variant: CompiledVariant) -> tuple[list[str], list[str]]:
        """The serving images and the fleet releases (Neuron SDKs) that can load `variant`."""
        compiled = self.compiled_release(variant.compiler)
        if compiled is None:
            return [], []
        images = [
            name
            for name, image in self.data.images.items()
            if variant.target in image.families
            and (sdk := self.image_sdk(name)) is not None
            and version_key(sdk) >= version_key(compiled)
        ]
        releases = [
            name
            for name, release in self.data.neuron_releases.items()
            if version_key(name) >= version_key(compiled)
            and (
                variant.target in release.families
                or name == getattr(self.data.families.get(variant.target), "neuron_sdk", None)
            )
        ]
        return images, sorted(releases, key=version_key)

    def image_sdk(self, name: str | None) -> str | None:
        """The Neuron SDK an image of the matrix ships (an image built on a base: the base's);
        None for an image the matrix does not list (or list an SDK for)."""
        image = self.data.images.get(name or "")
        if image is not None and image.base:
            image = self.data.images.get(image.base, image)
        return image.neuron_sdk if image else None

    def _default_release(self, families: dict[str, FamilySupport]) -> ReleaseCheck:
        """The one release the families name, or why there is none."""
        chosen = {n: f.neuron_sdk for n, f in families.items() if f.neuron_sdk}
        versions = sorted(set(chosen.values()), key=version_key)
        if len(versions) == 1:
            return ReleaseCheck(versions[0])
        if versions:
            pairs = ", ".join(f"{n} -> {v}" for n, v in chosen.items())
            return ReleaseCheck(
                None,
                [
                    f"the instance types' families install different Neuron releases ({pairs}), "
                    f"but one launch template installs one. Fix: {_SET_RELEASE} with a release "
                    f"that lists them all (e.g. {versions[-1]!r}), or split the types"
                ],
            )
        unlisted = [n for n, f in families.items() if f.fleet_refusal is None]
        if not unlisted:
            return ReleaseCheck(None)
        known = ", ".join(sorted(self.data.neuron_releases, key=version_key))
        return ReleaseCheck(
            None,
            [
                f"no Neuron release lists {', '.join(unlisted)} yet, and inf3kit does not guess "
                f"which packages drive it. Fix: {_SET_RELEASE} with the release to install "
                f"(known: {known}), or set `neuron_sdk:` for {unlisted[0]} under "
                "`compatibility.families` in a catalog override file"
            ],
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
