"""The model's shape: read from a Hugging Face `config.json`, checked, and counted.

The fit check needs only the decoder's shape (widths, layers, heads, vocabulary), which every
Llama-style `config.json` states under the same keys; the weights themselves are never read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inf3kit.llm.settings import ModelArchitecture

REQUIRED_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)
"""Keys a config.json must state; `num_key_value_heads` defaults to the attention heads (no GQA),
`head_dim` to hidden_size / num_attention_heads, `tie_word_embeddings` to false, as in
transformers' LlamaConfig."""


class ArchitectureError(ValueError):
    """A config.json cannot describe the model; the message names the file, the key and the fix."""


def head_dim(arch: ModelArchitecture) -> int:
    """The per-head width: `head_dim` when config.json states it, else hidden / heads."""
    return arch.head_dim or arch.hidden_size // arch.num_attention_heads


def architecture_problems(arch: ModelArchitecture) -> list[str]:
    """Why `arch` is not a decoder shape the fit check can size, with the fix; [] when it is."""
    sizes = {
        "hidden_size": arch.hidden_size,
        "num_hidden_layers": arch.num_hidden_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_key_value_heads,
        "intermediate_size": arch.intermediate_size,
        "vocab_size": arch.vocab_size,
        "head_dim": arch.head_dim,
        "parameters": arch.parameters,
        "max_position_embeddings": arch.max_position_embeddings,
    }
    bad = [f"{k} ({v})" for k, v in sizes.items() if v is not None and v < 1]
    if bad:
        return [
            f"{', '.join(bad)} must be positive. Fix: copy the values from the model's config.json"
        ]
    problems = []
    heads, kv_heads = arch.num_attention_heads, arch.num_key_value_heads
    if heads % kv_heads:
        problems.append(
            f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads "
            f"({kv_heads}): grouped-query attention shares each KV head among whole groups of "
            "query heads. Fix: copy both values from the model's config.json"
        )
    if arch.head_dim is None and arch.hidden_size % heads:
        problems.append(
            f"hidden_size ({arch.hidden_size}) is not a multiple of num_attention_heads "
            f"({heads}), so the head width is not hidden_size / heads. Fix: give `head_dim` "
            "from the model's config.json"
        )
    return problems


def architecture_from_config(config: dict[str, Any], *, where: str) -> ModelArchitecture:
    """The shape stated by a parsed config.json; raises ArchitectureError naming `where`."""
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if "text_config" in config and missing:
        text = config["text_config"]
        if not isinstance(text, dict):
            raise ArchitectureError(
                f"{where}: text_config is {type(text).__name__}, not a JSON object. Fix: use the "
                "model's own config.json, or give the shape inline under `llm.architecture`"
            )
        return architecture_from_config(text, where=f"{where} (text_config)")
    if missing:
        raise ArchitectureError(
            f"{where} lacks {', '.join(missing)}. Fix: use the config.json of a decoder-only "
            "model (Llama, Mistral, Qwen...), or give the shape inline under `llm.architecture`"
        )
    values: dict[str, Any] = {k: config[k] for k in REQUIRED_KEYS}
    values["num_key_value_heads"] = (
        config.get("num_key_value_heads") or config["num_attention_heads"]
    )
    values["head_dim"] = config.get("head_dim")
    values["tie_word_embeddings"] = config.get("tie_word_embeddings", False)
    values["max_position_embeddings"] = config.get("max_position_embeddings")
    wrong = [
        k
        for k, v in values.items()
        if k != "tie_word_embeddings" and v is not None and type(v) is not int
    ]
    wrong += [] if isinstance(values["tie_word_embeddings"], bool) else ["tie_word_embeddings"]
    if wrong:
        raise ArchitectureError(
            f"{where}: {', '.join(f'{k} ({values[k]!r})' for k in wrong)} must be whole numbers "
            "(tie_word_embeddings true or false). Fix: use the model's own config.json"
        )
    arch = ModelArchitecture(**values)
    problems = architecture_problems(arch)
    if problems:
        raise ArchitectureError(f"{where}: {'; '.join(problems)}")
    return arch


def read_config(path: Path) -> ModelArchitecture:
    """The shape stated by the config.json at `path`; raises ArchitectureError with the fix."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArchitectureError(
            f"cannot read {path}: {exc.strerror}. Fix: give the path of the model's config.json, "
            "relative to the spec file"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchitectureError(
            f"{path} is not a JSON file ({exc}). Fix: give the model's config.json"
        ) from None
    if not isinstance(config, dict):
        raise ArchitectureError(f"{path} is not a JSON object. Fix: give the model's config.json")
    return architecture_from_config(config, where=str(path))


def parameter_count(arch: ModelArchitecture) -> int:
    """Parameters of a Llama-style decoder, computed from its shape (or `arch.parameters`).

    Per layer: attention q and o (hidden x heads*head_dim each), k and v (hidden x
    kv_heads*head_dim each, smaller with grouped-query attention), the gated MLP (gate, up and
    down: 3 x hidden x intermediate) and two RMS norms (hidden each). Then the token embeddings
    (vocab x hidden), the final norm, and the LM head (vocab x hidden) unless it is tied to the
    embeddings. Biases are not counted: Llama has none, and where a model has them (Qwen's qkv)
    they are a few thousandths of a percent of the weights.
    """
    if arch.parameters is not None:
        return arch.parameters
    hidden, dim = arch.hidden_size, head_dim(arch)
    attention = 2 * hidden * arch.num_attention_heads * dim
    attention += 2 * hidden * arch.num_key_value_heads * dim
    mlp = 3 * hidden * arch.intermediate_size
    layer = attention + mlp + 2 * hidden
    embeddings = arch.vocab_size * hidden
    lm_head = 0 if arch.tie_word_embeddings else arch.vocab_size * hidden
    return arch.num_hidden_layers * layer + embeddings + hidden + lm_head
