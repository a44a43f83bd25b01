"""The stacks turn an LLM spec's `endpoint:` section into an LlmEndpoint: the degree `auto`
resolved, the engine image the matrix chose, the spec's scaling target and timeouts."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from inf3kit.constructs import LlmEndpoint
from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import add_service

SPEC = """\
name: chat
model:
  engine: vllm
  weights: {s3: s3://models/llama-8b/}
llm:
  max_model_len: 4096
  max_num_seqs: 8
  architecture: {hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256}
endpoint:
  instance_type: ml.inf2.xlarge
  instances: {min: 2, max: 3}
  scaling: {concurrent_requests_per_model: 5, scale_in_cooldown_seconds: 600}
  startup_timeout_seconds: 3000
  rollout: {latency_alarm_ms: 120000}
monitoring: {dashboard: false}
"""


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


@pytest.fixture(scope="module")
def llm_stack() -> tuple[cdk.Stack, dict[str, Any]]:
    (stack,) = add_service(cdk.App(), parse_spec(SPEC))
    return stack, Template.from_stack(stack).to_json()


def test_an_llm_spec_builds_an_llm_endpoint_named_after_the_stack(llm_stack) -> None:
    stack, template = llm_stack
    assert isinstance(stack.endpoint, LlmEndpoint)
    (endpoint,) = _resources(template, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == "chat"
    assert "EndpointName" in template["Outputs"] and "ModelDataUrl" not in template["Outputs"]
    (model,) = _resources(template, "AWS::SageMaker::Model")
    env = model["PrimaryContainer"]["Environment"]
    assert env["OPTION_TENSOR_PARALLEL_DEGREE"] == "2"  # auto: 17 GiB needs both inf2 cores
    assert env["OPTION_MAX_ROLLING_BATCH_SIZE"] == "8"
    assert model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://models/llama-8b/"
    )
    assert "/djl-inference:0.30.0-neuronx-sdk2.20.1" in json.dumps(
        model["PrimaryContainer"]["Image"]
    )


def test_the_spec_sets_scaling_timeouts_and_the_latency_alarm(llm_stack) -> None:
    _, template = llm_stack
    (policy,) = _resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 5 and tracking["ScaleInCooldown"] == 600
    (config,) = _resources(template, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 3000
    # download sized from the model: 16.06e9 bytes at 100 MiB/s x 1.5 = 230 s -> 600 s floor
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 600
    latency = [
        a
        for a in _resources(template, "AWS::CloudWatch::Alarm")
        if a.get("MetricName") == ("ModelLatency")
    ]
    assert [a["Threshold"] for a in latency] == [120_000_000]  # µs


def test_fails_when_an_llm_spec_sets_an_invocations_target() -> None:
    text = SPEC.replace("concurrent_requests_per_model: 5", "invocations_per_instance: 300")
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="t.yaml")
    assert [str(p) for p in info.value.problems] == [
        "endpoint (line 11): scaling.invocations_per_instance is not read for an LLM "
        "(model.engine vllm): one long generation weighs as much as many short requests, so "
        "LLM endpoints scale on requests in flight. Fix: use "
        "scaling.concurrent_requests_per_model (default: three quarters of llm.max_num_seqs)"
    ]


def test_fails_when_a_runtime_spec_sets_a_concurrency_target() -> None:
    text = """\
name: demo
model: {bundle: s3://models/demo/model.tar.gz}
endpoint:
  instance_type: ml.inf2.xlarge
  scaling: {concurrent_requests_per_model: 4}
"""
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="t.yaml")
    assert [str(p) for p in info.value.problems] == [
        "endpoint (line 4): scaling.concurrent_requests_per_model is only read for an LLM "
        "(model.engine vllm). Fix: use scaling.invocations_per_instance for the runtime"
    ]
