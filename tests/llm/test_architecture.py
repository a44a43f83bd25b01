"""Reading a model's shape from its config.json: bad files are clear errors, not tracebacks."""

from __future__ import annotations

import pytest

from inf3kit.llm.architecture import ArchitectureError, architecture_from_config


@pytest.mark.parametrize("text_config", [None, "llama", [1, 2]])
def test_fails_when_text_config_is_not_an_object(text_config: object) -> None:
    with pytest.raises(ArchitectureError, match=r"^m/config.json: text_config is \w+, not a JSON"):
        architecture_from_config({"text_config": text_config}, where="m/config.json")


def test_a_multimodal_config_reads_its_text_config() -> None:
    text = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
    }
    arch = architecture_from_config({"text_config": text}, where="m/config.json")
    assert (arch.hidden_size, arch.num_key_value_heads) == (4096, 8)
