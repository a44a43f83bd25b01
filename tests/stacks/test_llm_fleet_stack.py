"""An LLM spec's `fleet:` becomes an LlmFleet: `auto` picks a degree the load balancer can
reach, the runtime-fleet defaults give way to LLM ones, and unsupported options are refused."""

from __future__ import annotations

import json

import pytest

from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import SynthResult

LLAMA_70B_SHAPE = (
    "  architecture: {hidden_size: 8192, num_hidden_layers: 80, num_attention_heads: 64,\n"
    "    num_key_value_heads: 8, intermediate_size: 28672, vocab_size: 128256}\n"
)


def _spec(fleet: str, tensor_parallel: str = "auto") -> str:
    return (
        "name: llm\nmodel:\n  engine: vllm\n  weights: {s3: s3://models-bucket/llama-70b/}\n"
        f"llm:\n  tensor_parallel: {tensor_parallel}\n  max_model_len: 8192\n  max_num_seqs: 8\n"
        f"{LLAMA_70B_SHAPE}fleet:\n  instance_types: [trn2.48xlarge]\n{fleet}"
    )


def test_the_example_serves_four_groups_of_sixteen_cores_per_trn2(
    synthesized: dict[str, SynthResult],
) -> None:
    """`auto` alone would pick 8 (the smallest degree that fits), but eight servers are more
    than one load balancer action reaches; 16 is the smallest that fits and leaves four."""
    result = synthesized["llm-fleet"]
    template = json.loads((result.assembly_dir / "llm-70b.template.json").read_text())
    resources = template["Resources"].values()
    groups = [r for r in resources if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    assert sorted(g["Properties"]["Port"] for g in groups) == [8000, 8001, 8002, 8003]
    (lt,) = [r for r in resources if r["Type"] == "AWS::EC2::LaunchTemplate"]
    user_data = json.dumps(lt["Properties"]["LaunchTemplateData"]["UserData"])
    assert "--tensor-parallel-size 16" in user_data
    assert "aws s3 sync s3://my-models-bucket/llama-3.1-70b-instruct/" in user_data
    assert "TimeoutStopSec=130" in user_data  # the LLM drain default, not the runtime's 30 s
    outputs = template["Outputs"]
    assert outputs["FleetUrl"]["Value"]["Fn::Join"][1][0] == "http://"
    assert "ModelDataUrl" not in outputs


def test_fails_when_a_fixed_degree_makes_more_servers_than_the_load_balancer_reaches() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec("", tensor_parallel="8"))
    assert (
        "tensor_parallel 8 makes 8 vLLM servers per instance; the load balancer spreads over at "
        "most 5 (one target group per server). Fix: a larger tensor_parallel (or `auto`), or a "
        "smaller instance size"
    ) in str(caught.value)


def test_fails_when_the_fleet_asks_for_what_an_llm_fleet_does_not_offer() -> None:
    """Refused at validate, with the line, not first at synthesis."""
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec("  spot_percent: 50\n  ami: {source: pipeline}\n"))
    [problem] = caught.value.problems
    assert str(problem).endswith(
        "an LLM fleet (model.engine vllm) does not support spot_percent (use on-demand "
        "capacity); ami.source pipeline (its image has no vLLM; use dlami or an id). Fix: "
        "remove them"
    )
