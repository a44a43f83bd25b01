"""Does the model fit a tensor-parallel group of NeuronCores, and which degree should it use?

A deploy of a model that does not fit dies of out-of-memory after a long download and compile,
so the arithmetic runs at validation instead: the weights and the KV cache the engine allocates
up front, against the accelerator memory of the group of NeuronCores the engine shards over.
A refusal names what would fit, computed from the catalog, never a canned hint.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from inf3kit.catalog import Catalog, InstanceType
from inf3kit.llm.architecture import head_dim, parameter_count
from inf3kit.llm.settings import LlmSettings, ModelArchitecture, Quantization

GIB = 1024**3

RESERVE_FRACTION = 0.10
"""Share of the group's accelerator memory the fit leaves free, for what is neither weights nor
KV cache: the Neuron runtime's per-core scratchpad and I/O tensors, prefill activations,
collective-communication buffers and the compiled graphs' instructions. 10% is the share vLLM's
own default (`gpu_memory_utilization=0.9`) leaves on a GPU for the same things; it is an
estimate, not a figure measured on Neuron (no Neuron host here): a model within the reserve of
the limit should be tried on the hardware before it is trusted."""

WEIGHT_BYTES = {"bfloat16": 2, "float16": 2, "int8": 1, "fp8": 1}
"""Bytes per weight: the dtype's, or the quantized type's (weights only; the KV cache stays in
the dtype, as NxD Inference's weight quantization leaves it)."""


@dataclass(frozen=True)
class Cores:
    """What an engine sees of one instance: logical NeuronCores and the memory of each."""

    instance_type: str
    count: int
    memory_bytes: float
    """Accelerator memory of one logical NeuronCore."""


def engine_cores(itype: InstanceType) -> Cores:
    """The instance's NeuronCores as the engine counts them: logical cores (LNC) on Trn2/Trn3,
    so a trn2.48xlarge is 64 cores of 24 GiB, not 128 of 12 GiB."""
    count = itype.neuron_cores // itype.logical_neuroncore_config
    return Cores(itype.name, count, itype.accelerator_memory_gib * GIB / max(count, 1))


def kv_heads_held(arch: ModelArchitecture, degree: int) -> int:
    """KV heads the group stores: each rank needs at least one, so a degree above the model's
    KV heads replicates them, one per rank (vLLM's LlamaAttention: num_kv_heads = max(1,
    total_num_kv_heads // tp_size))."""
    return max(arch.num_key_value_heads, degree)


def valid_degrees(arch: ModelArchitecture, cores: Cores) -> list[int]:
    """Tensor-parallel degrees the engine accepts for this model on this instance, ascending.

    A degree divides the instance's (logical) NeuronCores, so whole groups tile the instance;
    it divides the attention heads (vLLM's ModelConfig.verify_with_parallel_config refuses
    otherwise); and the KV heads divide among the ranks or the ranks among the KV heads
    (vLLM's attention layers assert one or the other).
    """
    heads, kv = arch.num_attention_heads, arch.num_key_value_heads
    return [
        d
        for d in range(1, cores.count + 1)
        if cores.count % d == 0 and heads % d == 0 and (kv % d == 0 or d % kv == 0)
    ]


@dataclass(frozen=True)
class Footprint:
    """What the engine holds in accelerator memory for one tensor-parallel group."""

    degree: int
    parameters: int
    """Parameters held, counting the KV projections replicated for a degree above the KV heads."""
    weight_bytes: int
    kv_cache_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.kv_cache_bytes


def kv_bytes_per_token(arch: ModelArchitecture, settings: LlmSettings, degree: int) -> int:
    """One token's keys and values over every layer: 2 x layers x KV heads x head_dim x bytes."""
    return (
        2
        * arch.num_hidden_layers
        * kv_heads_held(arch, degree)
        * head_dim(arch)
        * WEIGHT_BYTES[settings.dtype]
    )


def footprint(arch: ModelArchitecture, settings: LlmSettings, degree: int) -> Footprint:
    """Weights at the dtype (or quantized) and the KV cache for max_model_len x max_num_seqs."""
    replicated = kv_heads_held(arch, degree) - arch.num_key_value_heads
    parameters = parameter_count(arch) + (
        2 * arch.num_hidden_layers * replicated * head_dim(arch) * arch.hidden_size
    )
    per_weight = WEIGHT_BYTES[settings.quantization or settings.dtype]
    tokens = settings.max_model_len * settings.max_num_seqs
    return Footprint(
        degree=degree,
        parameters=parameters,
        weight_bytes=parameters * per_weight,
        kv_cache_bytes=kv_bytes_per_token(arch, settings, degree) * tokens,
    )


def usable_bytes(cores: Cores, degree: int) -> float:
    """The group's accelerator memory less the reserve."""
    return degree * cores.memory_bytes * (1 - RESERVE_FRACTION)


def fits(arch: ModelArchitecture, settings: LlmSettings, cores: Cores, degree: int) -> bool:
    return footprint(arch, settings, degree).total_bytes <= usable_bytes(cores, degree)


def choose_tensor_parallel(
    arch: ModelArchitecture,
    settings: LlmSettings,
    instance_types: str | Sequence[str],
    *,
    catalog: Catalog,
    max_groups_per_instance: int | None = None,
) -> int | None:
    """What `tensor_parallel: auto` resolves to: the smallest degree valid on every one of
    `instance_types` at which the model fits each of them, or None when there is none.

    `max_groups_per_instance` (a fleet's servers per instance): the degree must also leave the
    same number of groups on every type, at most this many, since every instance serves on the
    same ports behind the load balancer.

    `settings.tensor_parallel` is not read. One degree for all the types, because a fleet's
    instances share one launch template and one compiled model. The smallest degree leaves the
    most groups, hence engine replicas, per instance.
    """
    names = [instance_types] if isinstance(instance_types, str) else list(instance_types)
    return _choose(arch, settings, [catalog.get(n) for n in names], max_groups_per_instance)


def _choose(
    arch: ModelArchitecture,
    settings: LlmSettings,
    itypes: Sequence[InstanceType],
    max_groups: int | None = None,
) -> int | None:
    every = [engine_cores(t) for t in itypes]
    common = set.intersection(*(set(valid_degrees(arch, c)) for c in every)) if every else set()
    return next(
        (
            d
            for d in sorted(common)
            if all(fits(arch, settings, c, d) for c in every)
            and (
                max_groups is None
                or (len({c.count // d for c in every}) == 1 and every[0].count // d <= max_groups)
            )
        ),
        None,
    )


def fit_problems(
    arch: ModelArchitecture,
    settings: LlmSettings,
    instance_type: str,
    *,
    catalog: Catalog,
    auto: bool = False,
    families: Collection[str] | None = None,
    quantizations: Collection[str] | None = None,
    max_groups_per_instance: int | None = None,
) -> list[str]:
    """Why the model cannot serve on `instance_type` at `settings`, with what would; [] if it can.

    `auto`: the degree is chosen (`settings.tensor_parallel` is not read). `families`: those the
    engine supports, for the alternatives (None: every Neuron family of the catalog).
    `quantizations`: those the engine takes, for the alternatives (None: int8 and fp8).
    `max_groups_per_instance`: a fleet's limit on servers per instance, for the degrees the
    alternatives name (as `choose_tensor_parallel`).
    """
    itype = catalog.get(instance_type)
    cores = engine_cores(itype)
    degrees = valid_degrees(arch, cores)
    if not auto:
        degree = settings.tensor_parallel
        if degree not in degrees:
            return [
                f"tensor_parallel {degree} is not valid for this model on {instance_type} "
                f"({cores.count} NeuronCores, {arch.num_attention_heads} attention heads, "
                f"{arch.num_key_value_heads} KV heads): valid degrees are "
                f"{', '.join(map(str, degrees)) or 'none'}. Fix: use one of those, or `auto`"
            ]
        if fits(arch, settings, cores, degree):
            return []
        larger = next((d for d in degrees if d > degree and fits(arch, settings, cores, d)), None)
        if larger is not None:
            return [
                f"{_needs(arch, settings, degree)} does not fit {instance_type} at "
                f"tensor_parallel {degree}: {_has(cores, degree)}. Fix: tensor_parallel "
                f"{larger} (or `auto`)"
            ]
    elif _choose(arch, settings, [itype]) is not None:
        return []
    shown = degrees[-1]
    alternatives = what_would_fit(
        arch,
        settings,
        itype,
        catalog=catalog,
        families=families,
        quantizations=quantizations,
        max_groups_per_instance=max_groups_per_instance,
    )
    fix = "; ".join(alternatives) if alternatives else "nothing in the catalog; a smaller model"
    return [
        f"{_needs(arch, settings, shown)} does not fit {instance_type}: even its largest valid "
        f"group, {_has(cores, shown)}. What would fit: {fix}"
    ]


def what_would_fit(
    arch: ModelArchitecture,
    settings: LlmSettings,
    itype: InstanceType,
    *,
    catalog: Catalog,
    families: Collection[str] | None = None,
    quantizations: Collection[str] | None = None,
    max_groups_per_instance: int | None = None,
) -> list[str]:
    """Computed alternatives: a bigger size, another family, a shorter length, fewer sequences,
    quantization (when the engine takes one). Each is one the fit check accepts."""
    found = []
    bigger = [
        t
        for t in _by_memory(catalog.types(family=itype.family, platform=itype.platform))
        if t.accelerator_memory_gib > itype.accelerator_memory_gib
    ]
    size = _first_fit(arch, settings, bigger, max_groups_per_instance)
    if size:
        found.append(f"a bigger size, {size}")
    others = []
    for family in catalog.families:
        if family == itype.family or (families is not None and family not in families):
            continue
        sizes = _by_memory(catalog.types(family=family, platform=itype.platform))
        choice = _first_fit(arch, settings, sizes, max_groups_per_instance)
        if choice:
            others.append(choice)
    if others:
        found.append(f"another family, {' or '.join(others)}")
    cores = engine_cores(itype)
    degrees = valid_degrees(arch, cores)
    if degrees:
        top = degrees[-1]
        room = usable_bytes(cores, top) - footprint(arch, settings, top).weight_bytes
        per_token = kv_bytes_per_token(arch, settings, top)
        length = int(room // (per_token * settings.max_num_seqs)) if room > 0 else 0
        if length >= 1:
            found.append(f"max_model_len {length} or less (tensor_parallel {top})")
        seqs = int(room // (per_token * settings.max_model_len)) if room > 0 else 0
        if seqs >= 1:
            found.append(f"max_num_seqs {seqs} or less (tensor_parallel {top})")
    options: tuple[Quantization, ...] = ("int8", "fp8")
    takes = [q for q in options if quantizations is None or q in quantizations]
    if settings.quantization is None and takes:
        quantized = replace(settings, quantization=takes[0])  # both store 1 byte per weight
        candidates = [itype] if size else [itype, *bigger]
        where = _first_fit(arch, quantized, candidates, max_groups_per_instance)
        if where:
            found.append(f"quantization {takes[0]} on {where} (check the model's accuracy)")
    return found


def _first_fit(
    arch: ModelArchitecture,
    settings: LlmSettings,
    types: list[InstanceType],
    max_groups: int | None = None,
) -> str | None:
    for t in types:
        degree = _choose(arch, settings, [t], max_groups)
        if degree is not None:
            return f"{t.name} (tensor_parallel {degree})"
    return None


def _by_memory(types: list[InstanceType]) -> list[InstanceType]:
    neuron = [t for t in types if t.is_neuron and t.neuron_cores]
    return sorted(neuron, key=lambda t: (t.accelerator_memory_gib, t.vcpu, t.name))


def _needs(arch: ModelArchitecture, settings: LlmSettings, degree: int) -> str:
    need = footprint(arch, settings, degree)
    weights = settings.quantization or settings.dtype
    return (
        f"the model ({need.parameters / 1e9:.2f}B parameters: {_gib(need.weight_bytes)} of "
        f"{weights} weights + {_gib(need.kv_cache_bytes)} KV cache for {settings.max_model_len} "
        f"tokens x {settings.max_num_seqs} sequences = {_gib(need.total_bytes)})"
    )


def _has(cores: Cores, degree: int) -> str:
    total = degree * cores.memory_bytes
    return (
        f"{degree} NeuronCore{'s' if degree != 1 else ''} with {_gib(total)}, "
        f"{_gib(usable_bytes(cores, degree))} after the {RESERVE_FRACTION:.0%} reserve"
    )


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"
