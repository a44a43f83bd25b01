"""LLM engines in the compatibility matrix: which build of vLLM serves which family, on which
Neuron SDK, from which container image.

A (distribution, family, SDK) triple no published image lists does not exist, so it is refused
before a deploy, with the distributions, families or SDKs that do exist.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inf3kit.catalog.hardware import SAGEMAKER_PREFIX, Platform, family_of

AUTO = "auto"
"""`llm.distribution` value that takes the first matrix entry serving the family and platform."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineImage(_Strict):
    """One published container of a distribution, with the SDK it ships and the families its
    release lists."""

    registry: str
    """`public.ecr.aws/neuron`, or `dlc`: the AWS deep learning container account of the region."""
    repository: str
    tag: str
    neuron_sdk: str
    families: list[str]
    vllm: str | None = None


class EngineSupport(_Strict):
    """A distribution of an LLM engine (`vllm-neuron`, `vllm-nxd-inference`, `lmi-neuronx`)."""

    description: str
    maturity: Literal["ga", "beta"] = "ga"
    platforms: list[Platform]
    source: str
    images: list[EngineImage] = Field(min_length=1)
    """Newest first: the first image listing a family is the one a service gets."""
    quantization: list[Literal["int8", "fp8"]] = Field(default_factory=list)
    """Weight quantizations inf3kit's constructs pass to this engine."""
    quantization_note: str | None = None
    """Why a quantization is missing, when it is."""

    @property
    def families(self) -> list[str]:
        return sorted({f for image in self.images for f in image.families})

    def image_for(
        self, families: str | Collection[str], neuron_sdk: str | None = None
    ) -> EngineImage | None:
        """The newest image serving every one of `families` (on `neuron_sdk` when given)."""
        wanted = {families} if isinstance(families, str) else set(families)
        return next(
            (
                i
                for i in self.images
                if wanted <= set(i.families) and neuron_sdk in (None, i.neuron_sdk)
            ),
            None,
        )


def platform_of(instance_type: str) -> Platform:
    return "sagemaker" if instance_type.startswith(SAGEMAKER_PREFIX) else "ec2"


def engine_choice(
    engines: Mapping[str, EngineSupport],
    instance_types: str | Sequence[str],
    distribution: str = AUTO,
    neuron_sdk: str | None = None,
    quantization: str | None = None,
) -> tuple[str, EngineImage] | str:
    """The distribution and image that serve every one of `instance_types` (one platform), or
    why none does, with the fix.

    `auto` takes the first distribution (matrix order) with one image for all the types'
    families on their platform (and `neuron_sdk`, when pinned) that takes `quantization`, when
    given: a fleet's instances share it.
    """
    types = [instance_types] if isinstance(instance_types, str) else list(instance_types)
    families = {family_of(t) for t in types}
    platform = platform_of(types[0])
    if distribution != AUTO and distribution not in engines:
        return (
            f"llm.distribution {distribution!r} is not in the compatibility matrix; known: "
            f"{', '.join(engines)}. Fix: use one of those, or `auto`"
        )
    for name in list(engines) if distribution == AUTO else [distribution]:
        engine = engines[name]
        image = engine.image_for(families, neuron_sdk)
        takes = quantization is None or quantization in engine.quantization
        if platform in engine.platforms and image is not None and takes:
            return name, image
    if quantization is not None:
        plain = engine_choice(engines, types, distribution, neuron_sdk)
        if not isinstance(plain, str):
            return _no_quantization(engines, types, plain[0], quantization)
    if len(types) == 1:
        return _refusal(engines, types[0], distribution, neuron_sdk)
    for t in types:  # the first type no distribution serves on its own is the one to name
        alone = engine_choice(engines, t, distribution, neuron_sdk)
        if isinstance(alone, str):
            return alone
    return (
        f"no {'LLM engine' if distribution == AUTO else distribution} image serves "
        f"{', '.join(sorted(families))} together. Fix: list instance types of families one "
        "image serves (e.g. one family)"
    )


def _no_quantization(
    engines: Mapping[str, EngineSupport], types: list[str], name: str, quantization: str
) -> str:
    note = engines[name].quantization_note
    takers = {n: e for n, e in engines.items() if quantization in e.quantization}
    where = sorted({p for e in takers.values() for p in e.platforms})
    other = (
        f", or serve on {' or '.join('EC2' if p == 'ec2' else 'SageMaker' for p in where)} "
        f"({', '.join(takers)} take it)"
        if takers and platform_of(types[0]) not in where
        else ""
    )
    return (
        f"{', '.join(types)}: {name} does not take quantization {quantization} in inf3kit"
        f"{f' ({note})' if note else ''}. Fix: leave llm.quantization unset{other}"
    )


def _refusal(
    engines: Mapping[str, EngineSupport],
    instance_type: str,
    distribution: str,
    neuron_sdk: str | None,
) -> str:
    family, platform = family_of(instance_type), platform_of(instance_type)
    on_platform = {n: e for n, e in engines.items() if platform in e.platforms}
    serving = [n for n, e in on_platform.items() if e.image_for(family) is not None]
    where = "SageMaker" if platform == "sagemaker" else "EC2"
    if distribution != AUTO:
        engine = engines[distribution]
        if platform not in engine.platforms:
            why = f"{distribution} does not run on {where}"
        elif engine.image_for(family) is None:
            why = f"{distribution} does not serve {family} (it serves {', '.join(engine.families)})"
        else:
            sdks = [i.neuron_sdk for i in engine.images if family in i.families]
            why = (
                f"no {distribution} image for {family} ships Neuron SDK {neuron_sdk} (published: "
                f"{', '.join(sdks)})"
            )
    elif neuron_sdk is not None and serving:
        sdks = sorted(
            {i.neuron_sdk for n in serving for i in engines[n].images if family in i.families},
            key=_version,
            reverse=True,
        )
        why = f"no LLM engine image for {family} ships Neuron SDK {neuron_sdk} (published: "
        why += f"{', '.join(sdks)})"
    else:
        why = f"no LLM engine in the compatibility matrix serves {family} on {where}"
    others = sorted({f for e in on_platform.values() for f in e.families} - {family})
    fix = []
    if serving and distribution != AUTO and distribution not in serving:
        fix.append(f"llm.distribution {' or '.join(serving)} (or auto)")
    if neuron_sdk is not None:
        fix.append("another llm.neuron_sdk from that list, or remove it")
    if not serving and others:
        fix.append(f"an instance type of {', '.join(others)}")
    fix.append("or add the engine to your catalog override file under `compatibility.engines`")
    return f"{instance_type}: {why}. Fix: {'; '.join(fix)}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())
