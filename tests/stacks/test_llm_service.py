"""An LLM spec (`model.engine: vllm`) through the service stack: no model bundle, no crash.

The endpoint builds an LlmEndpoint (tests/stacks/test_llm_endpoint_stack.py), the fleet an
LlmFleet (tests/stacks/test_llm_fleet_stack.py); neither needs a bundle.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Template

from inf3kit.constructs import LlmFleet
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


def test_an_llm_endpoint_stack_has_no_bundle_and_no_model_data_output() -> None:
    (stack,) = add_service(
        cdk.App(), parse_spec(LLM + "endpoint: {instance_type: ml.inf2.xlarge}\n")
    )
    assert stack.bundle is None  # type: ignore[attr-defined]
    outputs = Template.from_stack(stack).to_json()["Outputs"]
    assert "ModelDataUrl" not in outputs and "EndpointName" in outputs


def test_an_llm_fleet_stack_has_no_bundle_and_no_model_data_output() -> None:
    (stack,) = add_service(cdk.App(), parse_spec(LLM + "fleet: {instance_types: [inf2.xlarge]}\n"))
    assert stack.bundle is None  # type: ignore[attr-defined]
    assert isinstance(stack.fleet, LlmFleet)  # type: ignore[attr-defined]
    outputs = Template.from_stack(stack).to_json()["Outputs"]
    assert "ModelDataUrl" not in outputs and "FleetUrl" in outputs
