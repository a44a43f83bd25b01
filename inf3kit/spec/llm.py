"""LLM services (`model.engine: vllm`): the weights, the `llm:` section, and the fit check.

The spec states the model's shape (a config.json or inline) so validation can size weights and
KV cache against the instance types before anything deploys; `llm_service` hands the stacks the
typed pieces (`inf3kit.llm`) with `tensor_parallel: auto` already resolved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from inf3kit.catalog import SAGEMAKER_PREFIX, Catalog, Compatibility, EngineImage
from inf3kit.catalog.engines import AUTO
from inf3kit.llm.architecture import ArchitectureError, architecture_problems, read_config
from inf3kit.llm.fit import (
    GIB,
    choose_tensor_parallel,
    engine_cores,
    fit_problems,
    footprint,
    usable_bytes,
)
from inf3kit.llm.settings import (
    TENSOR_PARALLEL_AUTO,
    Dtype,
    LlmSettings,
    LlmWeights,
    ModelArchitecture,
    Quantization,
)
from inf3kit.llm.startup import model_estimate, too_slow_to_start
from inf3kit.rules import SERVERS_PER_INSTANCE, llm_server_layout_problems, llm_weights_problems
from inf3kit.spec.base import StrictModel, raise_problems

Engine = Literal["runtime", "vllm"]
MAX_TENSOR_PARALLEL = 128
"""The most NeuronCores one instance in the catalog has (trn2.48xlarge, physical)."""


class WeightsSpec(StrictModel):
    """`model.weights`: where vLLM loads the model from."""

    s3: str | None = None
    huggingface: str | None = None
    revision: str | None = None
    token_secret: str | None = None
    compiled: str | None = None

    @model_validator(mode="after")
    def _one_pinned_source(self) -> WeightsSpec:
        raise_problems(llm_weights_problems(**self.model_dump()))
        return self

    def typed(self) -> LlmWeights:
        return LlmWeights(
            s3_prefix=self.s3,
            huggingface_id=self.huggingface,
            revision=self.revision,
            token_secret=self.token_secret,
            compiled_prefix=self.compiled,
        )


class ArchitectureSpec(StrictModel):
    """`llm.architecture`: the config.json keys the fit check needs, written inline."""

    hidden_size: int = Field(ge=1)
    num_hidden_layers: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_key_value_heads: int | None = Field(None, ge=1)
    """None: equal to num_attention_heads (no grouped-query attention), as in config.json."""
    intermediate_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    head_dim: int | None = Field(None, ge=1)
    tie_word_embeddings: bool = False
    max_position_embeddings: int | None = Field(None, ge=1)

    def typed(self, parameters: int | None) -> ModelArchitecture:
        values = self.model_dump()
        values["num_key_value_heads"] = self.num_key_value_heads or self.num_attention_heads
        return ModelArchitecture(**values, parameters=parameters)

    @model_validator(mode="after")
    def _a_decoder_shape(self) -> ArchitectureSpec:
        raise_problems(architecture_problems(self.typed(None)))
        return self


class LlmSpec(StrictModel):
    """The top-level `llm:` section: the engine's settings and the model's shape."""

    tensor_parallel: int | Literal["auto"] = "auto"
    max_model_len: int = Field(ge=16, le=1_048_576)
    max_num_seqs: int = Field(ge=1, le=1024)
    dtype: Dtype = "bfloat16"
    quantization: Quantization | None = None
    config: str | None = Field(None, description="the model's config.json, relative to the spec")
    architecture: ArchitectureSpec | None = None
    parameters: int | None = Field(None, ge=1)
    """The published parameter count; default: computed from the shape."""
    distribution: str = AUTO
    """Which build of the engine (`compatibility.engines`); `auto`: the first serving the types."""
    neuron_sdk: str | None = Field(None, pattern=r"^\d+\.\d+\.\d+$")
    """Pin the Neuron SDK line; default: the newest image of the distribution for the family."""
    _architecture: ModelArchitecture | None = PrivateAttr(None)

    @field_validator("tensor_parallel", mode="before")
    @classmethod
    def _auto_or_degree(cls, value: Any) -> Any:
        if value == TENSOR_PARALLEL_AUTO or (
            type(value) is int and 1 <= value <= MAX_TENSOR_PARALLEL
        ):
            return value
        raise ValueError(
            f"got {value!r}; allowed: `auto` or a whole number 1..{MAX_TENSOR_PARALLEL} "
            "(NeuronCores per engine replica). Fix: write `auto` to pick the smallest degree "
            "that fits"
        )

    @model_validator(mode="after")
    def _one_shape(self, info: ValidationInfo) -> LlmSpec:
        if (self.config is None) == (self.architecture is None):
            raise ValueError(
                f"{'both' if self.config else 'neither'} `config` {'and' if self.config else 'nor'}"
                " `architecture` given; the fit check needs the model's shape once. Fix: give "
                "`config: path/to/config.json` (relative to the spec) or `architecture:` with "
                "its keys (hidden_size, num_hidden_layers, num_attention_heads, "
                "num_key_value_heads, intermediate_size, vocab_size)"
            )
        if self.architecture is not None:
            self._architecture = self.architecture.typed(self.parameters)
        else:
            base = (info.context or {}).get("base_dir") or Path.cwd()
            try:
                arch = read_config((Path(base) / str(self.config)).resolve())
            except ArchitectureError as exc:
                raise ValueError(f"config: {exc}") from None
            self._architecture = ModelArchitecture(
                **{**arch.__dict__, "parameters": self.parameters or arch.parameters}
            )
        longest = self._architecture.max_position_embeddings
        if longest is not None and self.max_model_len > longest:
            raise ValueError(
                f"max_model_len {self.max_model_len} is longer than the model's "
                f"max_position_embeddings ({longest}); vLLM refuses it. Fix: use at most {longest}"
            )
        return self

    @property
    def model_architecture(self) -> ModelArchitecture:
        if self._architecture is None:  # set by validation, which every LlmSpec passed
            raise ValueError("llm: the model's shape was not validated")
        return self._architecture

    def settings(self, degree: int | None = None) -> LlmSettings:
        """The typed settings at `degree` (default: the spec's, 1 while it is `auto`)."""
        chosen = degree or (self.tensor_parallel if isinstance(self.tensor_parallel, int) else 1)
        return LlmSettings(
            tensor_parallel=chosen,
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs,
            dtype=self.dtype,
            quantization=self.quantization,
        )

    @property
    def auto(self) -> bool:
        return self.tensor_parallel == TENSOR_PARALLEL_AUTO


class LlmService(NamedTuple):
    """What an LLM construct takes, from a validated spec."""

    architecture: ModelArchitecture
    weights: LlmWeights
    settings: LlmSettings


def engine_problems(engine: Engine, bundle: str | None, weights: WeightsSpec | None) -> list[str]:
    """`bundle` with the runtime, `weights` with vLLM, and never the other."""
    if engine == "runtime":
        problems = (
            []
            if bundle is not None
            else [
                "engine runtime needs `bundle`. Fix: add `bundle:` (a bundle from "
                "`inf3kit bundle`), or set `engine: vllm` with `weights:` to serve an LLM"
            ]
        )
        if weights is not None:
            problems.append(
                "`weights` is only read with engine vllm. Fix: set `engine: vllm` (and remove "
                "`bundle`), or remove `weights`"
            )
        return problems
    problems = (
        []
        if weights is not None
        else [
            "engine vllm needs `weights`. Fix: add `weights: {s3: s3://BUCKET/PREFIX/}` or "
            "`weights: {huggingface: ORG/NAME, revision: COMMIT}`"
        ]
    )
    if bundle is not None:
        problems.append(
            "`bundle` is only read with engine runtime; vLLM loads `weights`. Fix: remove "
            "`bundle`, or set `engine: runtime`"
        )
    return problems


def llm_section_problem(engine: Engine | None, llm: LlmSpec | None) -> str | None:
    """`llm:` is required with engine vllm and refused with the runtime."""
    if engine == "vllm" and llm is None:
        return (
            "required with model.engine vllm. Fix: add `llm:` with max_model_len, max_num_seqs "
            "and the model's shape (`config:` or `architecture:`); see docs/llm.md"
        )
    if engine == "runtime" and llm is not None:
        return (
            "only read with model.engine vllm. Fix: set `model.engine: vllm` with "
            "`model.weights`, or remove `llm:`"
        )
    return None


def llm_from(info: ValidationInfo) -> LlmSpec | None:
    """The validated `llm:` section of an engine vllm spec, which the loader validates first and
    passes in the context so the endpoint's and fleet's instance types are checked against it
    (each problem at its own path and line); None for a runtime spec or an invalid `llm:`."""
    llm = (info.context or {}).get("llm")
    return llm if isinstance(llm, LlmSpec) else None


def prevalidated_llm(data: dict[str, Any], context: dict[str, Any]) -> LlmSpec | None:
    """The spec's `llm:` section validated on its own, for `llm_from`; None when the spec is not
    an engine vllm spec or the section is invalid (the full validation then reports why)."""
    model, llm = data.get("model"), data.get("llm")
    if not isinstance(model, dict) or model.get("engine") != "vllm" or llm is None:
        return None
    try:
        return LlmSpec.model_validate(llm, context=context)
    except ValidationError:
        return None


def llm_type_problems(
    llm: LlmSpec, instance_type: str, catalog: Catalog, compatibility: Compatibility
) -> list[str]:
    """Why the spec's LLM cannot serve on `instance_type`: no engine build for the family (and
    SDK), or the model does not fit; each with what would."""
    if instance_type not in catalog:
        return []  # the type check already said so
    engine = compatibility.engine_choice(
        instance_type, llm.distribution, llm.neuron_sdk, llm.quantization
    )
    if isinstance(engine, str):
        return [engine]
    platform = catalog.get(instance_type).platform
    return fit_problems(
        llm.model_architecture,
        llm.settings(),
        instance_type,
        catalog=catalog,
        auto=llm.auto,
        families=compatibility.llm_families(platform),
        quantizations=compatibility.llm_quantizations(platform),
        max_groups_per_instance=SERVERS_PER_INSTANCE if platform == "ec2" else None,
    )


def fleet_problems(
    llm: LlmSpec, instance_types: list[str], catalog: Catalog, compatibility: Compatibility
) -> list[str]:
    """A fleet's instances share one launch template, one engine image and one compiled model,
    and run one vLLM server per group behind the load balancer: one distribution and one
    degree must suit every type, with the same number of servers on each, at most
    SERVERS_PER_INSTANCE (inf3kit.rules.llm_server_layout_problems)."""
    known = [n for n in instance_types if n in catalog]
    if not known or any(llm_type_problems(llm, n, catalog, compatibility) for n in known):
        return []  # each type's own problem is reported at its own path
    engine = compatibility.engine_choice(known, llm.distribution, llm.neuron_sdk, llm.quantization)
    if isinstance(engine, str):
        return [engine]
    arch, settings = llm.model_architecture, llm.settings()
    cores = {n: engine_cores(catalog.get(n)).count for n in known}
    if not llm.auto:
        return llm_server_layout_problems(cores, settings.tensor_parallel)
    if choose_tensor_parallel(
        arch, settings, known, catalog=catalog, max_groups_per_instance=SERVERS_PER_INSTANCE
    ):
        return []
    smallest = ", ".join(
        f"{n}: {choose_tensor_parallel(arch, settings, n, catalog=catalog)}" for n in known
    )
    return [
        f"no one tensor_parallel degree fits all of {', '.join(known)} with the same number of "
        f"servers on each, at most {SERVERS_PER_INSTANCE} (the smallest degree that fits each: "
        f"{smallest}; NeuronCores: {', '.join(f'{n}: {c}' for n, c in cores.items())}). Fix: "
        "list types with the same NeuronCore count"
    ]


def llm_service(
    llm: LlmSpec, weights: WeightsSpec, instance_types: list[str], catalog: Catalog
) -> LlmService:
    """The typed service with `auto` resolved for `instance_types` (validation made sure it
    resolves): EC2 types are a fleet's, whose servers per instance are limited."""
    degree: int | None = None
    if llm.auto:
        fleet = not any(n.startswith(SAGEMAKER_PREFIX) for n in instance_types)
        degree = choose_tensor_parallel(
            llm.model_architecture,
            llm.settings(),
            instance_types,
            catalog=catalog,
            max_groups_per_instance=SERVERS_PER_INSTANCE if fleet else None,
        )
        if degree is None:
            raise ValueError(
                f"llm.tensor_parallel: the model fits no degree on {', '.join(instance_types)}. "
                "Fix: run `inf3kit validate` for what would fit"
            )
    return LlmService(llm.model_architecture, weights.typed(), llm.settings(degree))


def llm_engine(
    llm: LlmSpec, instance_types: list[str], compatibility: Compatibility
) -> tuple[str, EngineImage]:
    """The engine distribution and image for `instance_types` (validation made sure one
    exists)."""
    engine = compatibility.engine_choice(
        instance_types, llm.distribution, llm.neuron_sdk, llm.quantization
    )
    if isinstance(engine, str):
        raise ValueError(engine)
    return engine


def llm_summary_line(
    place: str,
    instance_types: list[str],
    service: LlmService,
    engine: tuple[str, EngineImage],
    catalog: Catalog,
) -> str:
    """`fleet: tensor_parallel 16; trn2.48xlarge: 4 groups of 16 NeuronCores per instance, each
    needs 173.9 of 345.6 GiB usable; engine vllm-neuron (repository:tag)`, for validate."""
    degree = service.settings.tensor_parallel
    need = footprint(service.architecture, service.settings, degree)
    each = []
    for name in instance_types:
        cores = engine_cores(catalog.get(name))
        groups = cores.count // degree
        each.append(
            f"{name}: {groups} group{'s' if groups != 1 else ''} of {degree} NeuronCores per "
            f"instance, each needs {need.total_bytes / GIB:.1f} of "
            f"{usable_bytes(cores, degree) / GIB:.1f} GiB usable"
        )
    name, image = engine
    return (
        f"{place}: tensor_parallel {degree}; {'; '.join(each)}; engine {name} "
        f"({image.repository}:{image.tag})"
    )


def endpoint_startup_problems(
    llm: LlmSpec,
    weights: WeightsSpec,
    instance_type: str,
    startup_timeout_seconds: int | None,
    catalog: Catalog,
) -> list[str]:
    """An endpoint must start within SageMaker's hour unless the spec sets its own timeout
    (inf3kit.llm.startup, the rule LlmEndpoint applies)."""
    if startup_timeout_seconds is not None:
        return []
    service = llm_service(llm, weights, [instance_type], catalog)
    problem = too_slow_to_start(
        model_estimate(service.weights, service.settings, service.architecture),
        service.weights,
        timeout_name="startup_timeout_seconds",
        compiled_name="model.weights.compiled",
    )
    return [] if problem is None else [problem]
