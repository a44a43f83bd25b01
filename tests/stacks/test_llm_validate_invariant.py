"""The invariant between `inf3kit validate` and synthesis for LLM specs: every LLM endpoint or
fleet spec that validates builds its stack.

Specs are generated around the fit check's and the layout's limits (model sizes from 1B to 70B,
lengths, sequences, quantization, fixed or `auto` degrees, one or two instance types); a refusal
by a construct is a validate bug (two found so far: equal servers per fleet type, and the
endpoint's quantization and startup hour).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import add_service

SHAPES = [
    # Llama 3.2 1B-like, Llama 3.1 8B, Qwen2.5 14B (40 heads), Llama 3.1 70B
    {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
     "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256},
    {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
     "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256},
    {"hidden_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 40,
     "num_key_value_heads": 8, "intermediate_size": 13824, "vocab_size": 152064},
    {"hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
     "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256},
]  # fmt: skip
FLEET_TYPES = ["inf2.xlarge", "inf2.24xlarge", "inf2.48xlarge", "trn1.2xlarge",
               "trn1.32xlarge", "trn2.48xlarge", "trn3.48xlarge"]  # fmt: skip

llm_sections = st.fixed_dictionaries(
    {
        "max_model_len": st.sampled_from([1024, 4096, 8192, 32768]),
        "max_num_seqs": st.sampled_from([1, 4, 8, 32]),
        "architecture": st.sampled_from(SHAPES),
    },
    optional={
        "tensor_parallel": st.sampled_from(["auto", 1, 2, 4, 8, 16, 32]),
        "dtype": st.sampled_from(["bfloat16", "float16"]),
        "quantization": st.sampled_from(["int8", "fp8"]),
    },
)
specs = st.fixed_dictionaries(
    {
        "name": st.just("inv"),
        "model": st.just({"engine": "vllm", "weights": {"s3": "s3://models-bucket/m/"}}),
        "llm": llm_sections,
        "fleet": st.fixed_dictionaries(
            {"instance_types": st.lists(st.sampled_from(FLEET_TYPES), min_size=1, max_size=2)}
        ),
    }
)


@settings(
    max_examples=15,  # valid specs only (assume): each builds the service stack
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(specs)
def test_every_llm_fleet_spec_that_validates_builds_its_stack(
    data: dict[str, Any],
) -> None:
    try:
        loaded = parse_spec(yaml.safe_dump(data))
    except SpecError:
        loaded = None
    assume(loaded is not None)  # validate refused it: nothing to build, draw another
    assert loaded is not None
    add_service(cdk.App(), loaded)  # a construct refusal raises ValueError here


ENDPOINT_TYPES = ["ml.inf2.xlarge", "ml.inf2.24xlarge", "ml.inf2.48xlarge", "ml.trn1.2xlarge",
                  "ml.trn1.32xlarge", "ml.inf3.xlarge"]  # fmt: skip
endpoint_specs = st.fixed_dictionaries(
    {
        "name": st.just("inv"),
        "model": st.just({"engine": "vllm", "weights": {"s3": "s3://models-bucket/m/"}}),
        "llm": llm_sections,
        "endpoint": st.fixed_dictionaries(
            {"instance_type": st.sampled_from(ENDPOINT_TYPES)},
            optional={"instances": st.fixed_dictionaries({"min": st.integers(1, 2)})},
        ),
        "monitoring": st.just({"dashboard": False}),
    }
)


@settings(
    max_examples=15,  # valid specs only (assume): each builds the service stack
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(endpoint_specs)
def test_every_llm_endpoint_spec_that_validates_builds_its_stack(data: dict[str, Any]) -> None:
    try:
        loaded = parse_spec(yaml.safe_dump(data))
    except SpecError:
        loaded = None
    assume(loaded is not None)
    assert loaded is not None
    add_service(cdk.App(), loaded)  # a construct refusal raises ValueError here
