"""The typed description of an LLM service, shared by the spec, the constructs and the plan.

Plain frozen dataclasses with no CDK types: the spec builds them from YAML, the constructs take
them as props, and the fit check (`inf3kit.llm.fit`) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Dtype = Literal["bfloat16", "float16"]
Quantization = Literal["int8", "fp8"]

TENSOR_PARALLEL_AUTO = "auto"
"""`tensor_parallel` value that asks for the smallest degree that fits (inf3kit.llm.fit)."""


@dataclass(frozen=True)
class ModelArchitecture:
    """The decoder's shape: what the weight and KV-cache sizes follow from.

    Field names follow the Hugging Face `config.json` keys they are read from, so a config can
    be checked against them by eye.
    """

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    head_dim: int | None = None
    """Per-head width; None: hidden_size / num_attention_heads, as in config.json."""
    tie_word_embeddings: bool = False
    parameters: int | None = None
    """The published parameter count, when known; None: computed from the shape."""
    max_position_embeddings: int | None = None
    """The longest context the model was trained for; `max_model_len` may not exceed it."""


@dataclass(frozen=True)
class LlmWeights:
    """Where the engine loads the weights from: exactly one of `s3_prefix` or `huggingface_id`."""

    s3_prefix: str | None = None
    """An uncompressed model directory, `s3://bucket/prefix/` (config.json, safetensors)."""
    huggingface_id: str | None = None
    """A Hugging Face model id, e.g. `meta-llama/Llama-3.1-8B-Instruct`."""
    revision: str | None = None
    """The commit (40 hex digits) a Hugging Face id is pinned to; required with it."""
    token_secret: str | None = None
    """A Secrets Manager secret name or ARN holding the Hugging Face token, for gated models."""
    compiled_prefix: str | None = None
    """Pre-compiled Neuron artefacts (`inf3kit llm compile`), `s3://bucket/prefix/`; None: the
    engine compiles at startup, which takes far longer."""


@dataclass(frozen=True)
class LlmSettings:
    """The engine's serving settings; `tensor_parallel` is a number by the time a construct
    sees it (the spec resolves `auto` with inf3kit.llm.fit)."""

    tensor_parallel: int
    max_model_len: int
    max_num_seqs: int
    dtype: Dtype = "bfloat16"
    quantization: Quantization | None = None


def settings_problems(settings: LlmSettings) -> list[str]:
    """What a construct refuses in `settings` before any sizing: the spec has checked the same
    values, but a construct library user passes them directly."""
    problems = []
    for name in ("tensor_parallel", "max_model_len", "max_num_seqs"):
        value = getattr(settings, name)
        if type(value) is not int or value < 1:
            problems.append(
                f"settings.{name}: got {value!r}, must be a whole number >= 1. Fix: e.g. 2, "
                "4096 and 8 (the spec resolves tensor_parallel `auto` with inf3kit.llm.fit "
                "before a construct sees it)"
            )
    if settings.dtype not in get_args(Dtype):
        problems.append(
            f"settings.dtype: got {settings.dtype!r}. Fix: one of {', '.join(get_args(Dtype))}"
        )
    if settings.quantization is not None and settings.quantization not in get_args(Quantization):
        problems.append(
            f"settings.quantization: got {settings.quantization!r}. Fix: one of "
            f"{', '.join(get_args(Quantization))}, or None"
        )
    return problems
