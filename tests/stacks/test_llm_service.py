"""An LLM spec (`model.engine: vllm`) through the service stack: no model bundle, no crash.

Until the LLM endpoint and fleet constructs land, synthesis of an LLM spec stops with a clean
refusal (what `inf3kit synth` prints), never an AttributeError on the missing bundle.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from inf3kit.spec import parse_spec
from inf3kit.stacks import add_service

LLM = """\
name: chat
model:
  engine: vllm
  weights: {s3: s3://models/llama/}
llm:
  max_model_len: 1024
  max_num_seqs: 1
  architecture: {hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32,
    num_key_value_heads: 8, intermediate_size: 8192, vocab_size: 128256}
"""


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("endpoint: {instance_type: ml.inf2.xlarge}", "endpoint"),
        ("fleet: {instance_types: [inf2.xlarge]}", "fleet"),
    ],
)
def test_an_llm_spec_builds_no_bundle_and_refuses_cleanly(section: str, name: str) -> None:
    loaded = parse_spec(LLM + section + "\n")
    with pytest.raises(ValueError, match=rf"^{name}: model\.engine vllm \(an LLM service\)"):
        add_service(cdk.App(), loaded)
