"""LlmEndpoint: the engine container, its weights and settings, sized timeouts, concurrency
scaling, the fit check, and an exact message for every rule it adds to NeuronEndpoint's."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from inf3kit.constructs import (
    ConcurrencyScaling,
    ConstructError,
    EndpointImage,
    LlmEndpoint,
    MonitoredEndpoint,
    ServiceMonitoring,
)
from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture

LLAMA_8B = ModelArchitecture(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    max_position_embeddings=131072,
)
LLAMA_70B = ModelArchitecture(
    hidden_size=8192,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    intermediate_size=28672,
    vocab_size=128256,
    max_position_embeddings=131072,
)
SETTINGS = LlmSettings(tensor_parallel=2, max_model_len=4096, max_num_seqs=8)
S3_WEIGHTS = LlmWeights(
    s3_prefix="s3://models/llama-8b/", compiled_prefix="s3://models/llama-8b/neuron/tp2/"
)
REVISION = "0e9e39f249a16976918f6564b8830bc894c89659"
HUB_WEIGHTS = LlmWeights(
    huggingface_id="meta-llama/Llama-3.1-8B-Instruct", revision=REVISION, token_secret="hf/token"
)


def _stack() -> cdk.Stack:
    return cdk.Stack(
        cdk.App(), "Test", env=cdk.Environment(account="111122223333", region="us-east-1")
    )


@pytest.fixture(scope="module")
def s3_model() -> tuple[LlmEndpoint, Template]:
    """Llama-3.1-8B from an S3 prefix with compiled artefacts inside it, two instances."""
    stack = _stack()
    endpoint = LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=S3_WEIGHTS,
        settings=SETTINGS,
        architecture=LLAMA_8B,
        min_capacity=2,
        max_capacity=4,
    )
    endpoint.grant_invoke_with_response_stream(
        iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    )
    ServiceMonitoring(stack, "Monitoring", endpoint=endpoint)
    return endpoint, Template.from_stack(stack)


@pytest.fixture(scope="module")
def hub_model() -> tuple[LlmEndpoint, Template]:
    """The same model from the Hugging Face Hub, gated, no architecture given."""
    stack = _stack()
    endpoint = LlmEndpoint(
        stack, "Llm", instance_type="ml.inf2.8xlarge", weights=HUB_WEIGHTS, settings=SETTINGS
    )
    return endpoint, Template.from_stack(stack)


def _model(template: Template) -> dict[str, Any]:
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    return dict(model["Properties"])


def _variant(template: Template) -> dict[str, Any]:
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    return dict(variant)


def _statements(template: Template) -> dict[str, dict[str, Any]]:
    found = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found[statement.get("Sid", json.dumps(statement["Action"]))] = statement
    return found


def test_s3_weights_are_an_uncompressed_prefix_with_isolation(s3_model) -> None:
    model = _model(s3_model[1])
    assert model["PrimaryContainer"]["ModelDataSource"] == {
        "S3DataSource": {
            "S3Uri": "s3://models/llama-8b/",
            "S3DataType": "S3Prefix",
            "CompressionType": "None",
        }
    }
    assert "ModelDataUrl" not in model["PrimaryContainer"]
    assert model["EnableNetworkIsolation"] is True


def test_engine_settings_are_the_lmi_containers_variables(s3_model) -> None:
    template = s3_model[1]
    assert _model(template)["PrimaryContainer"]["Environment"] == {
        "OPTION_ROLLING_BATCH": "vllm",
        "OPTION_TENSOR_PARALLEL_DEGREE": "2",
        "OPTION_MAX_ROLLING_BATCH_SIZE": "8",
        "OPTION_MAX_MODEL_LEN": "4096",
        "OPTION_DTYPE": "bf16",
        "OPTION_MODEL_LOADING_TIMEOUT": "600",
        # inside the weights prefix: SageMaker copies it, the engine loads it from the volume
        "OPTION_COMPILED_GRAPH_PATH": "/opt/ml/model/neuron/tp2",
    }


def test_default_image_is_the_newest_lmi_neuronx_engine_image(s3_model) -> None:
    """The matrix's `engines: lmi-neuronx` entry, in the regional DLC account; pull grant on
    that repository only."""
    image = _model(s3_model[1])["PrimaryContainer"]["Image"]["Fn::Join"][1]
    assert image[0] == "763104351884.dkr.ecr.us-east-1."
    assert image[-1] == "/djl-inference:0.30.0-neuronx-sdk2.20.1"
    pull = _statements(s3_model[1])[
        json.dumps(
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        )
    ]
    assert (
        pull["Resource"]["Fn::Join"][1][-1]
        == ":ecr:us-east-1:763104351884:repository/djl-inference"
    )


def test_role_reads_and_lists_only_the_weights_prefix(s3_model) -> None:
    statements = _statements(s3_model[1])
    assert statements["ReadWeights"]["Action"] == "s3:GetObject"
    assert statements["ReadWeights"]["Resource"]["Fn::Join"][1][-1] == ":s3:::models/llama-8b/*"
    assert statements["ListWeights"]["Action"] == "s3:ListBucket"
    assert statements["ListWeights"]["Condition"] == {"StringLike": {"s3:prefix": ["llama-8b/*"]}}
    assert statements["ListWeights"]["Resource"]["Fn::Join"][1][-1] == ":s3:::models"
    assert "ReadCompiled" not in statements  # inside the weights prefix already
    actions = json.dumps([s["Action"] for s in statements.values()])
    assert "secretsmanager" not in actions and "s3:*" not in actions


def test_timeouts_are_sized_for_the_model(s3_model, hub_model) -> None:
    # Llama-3.1-8B, 8.03e9 parameters, 16.06e9 bytes of bfloat16 (tests/llm/test_startup.py):
    # compiled artefacts given -> load only: (300 + 76.6) x 1.5 = 565 s -> the 600 s floor.
    variant = _variant(s3_model[1])
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 600
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 600
    # no architecture: the size is unknown, so both take SageMaker's maximum
    variant = _variant(hub_model[1])
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 3600
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 3600
    assert (
        _model(hub_model[1])["PrimaryContainer"]["Environment"]["OPTION_MODEL_LOADING_TIMEOUT"]
        == "3600"
    )


def test_an_uncompiled_hub_model_waits_for_download_load_and_compile() -> None:
    stack = _stack()
    LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=HUB_WEIGHTS,
        settings=SETTINGS,
        architecture=LLAMA_8B,
    )
    # (300 + 76.58 load + 306.32 Hub download + 600 + 8.03 x 40 compile) x 1.5 = 2406.2 -> 2407
    assert (
        _variant(Template.from_stack(stack))["ContainerStartupHealthCheckTimeoutInSeconds"] == 2407
    )


def test_given_timeouts_win_over_the_sizing() -> None:
    stack = _stack()
    LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=S3_WEIGHTS,
        settings=SETTINGS,
        architecture=LLAMA_8B,
        startup_timeout=Duration.minutes(40),
        download_timeout=Duration.minutes(20),
    )
    template = Template.from_stack(stack)
    assert _variant(template)["ContainerStartupHealthCheckTimeoutInSeconds"] == 2400
    assert _variant(template)["ModelDataDownloadTimeoutInSeconds"] == 1200
    env = _model(template)["PrimaryContainer"]["Environment"]
    assert env["OPTION_MODEL_LOADING_TIMEOUT"] == "2400"


def test_hub_weights_are_pinned_with_the_token_as_a_dynamic_reference(hub_model) -> None:
    model = _model(hub_model[1])
    env = model["PrimaryContainer"]["Environment"]
    assert env["HF_MODEL_ID"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert env["OPTION_REVISION"] == REVISION
    assert env["HF_TOKEN"] == "{{resolve:secretsmanager:hf/token:SecretString:::}}"
    assert "ModelDataSource" not in model["PrimaryContainer"]
    assert model["EnableNetworkIsolation"] is False  # the engine downloads from the Hub
    assert "ReadWeights" not in _statements(hub_model[1])


def test_compiled_artefacts_outside_the_weights_are_read_by_the_engine() -> None:
    stack = _stack()
    LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=LlmWeights(
            s3_prefix="s3://models/llama-8b/", compiled_prefix="s3://compiled/llama-8b/tp2/"
        ),
        settings=SETTINGS,
    )
    template = Template.from_stack(stack)
    model = _model(template)
    env = model["PrimaryContainer"]["Environment"]
    assert env["OPTION_COMPILED_GRAPH_PATH"] == "s3://compiled/llama-8b/tp2/"
    assert model["EnableNetworkIsolation"] is False
    statements = _statements(template)
    assert statements["ReadCompiled"]["Resource"]["Fn::Join"][1][-1] == (
        ":s3:::compiled/llama-8b/tp2/*"
    )
    assert statements["ListCompiled"]["Condition"] == {
        "StringLike": {"s3:prefix": ["llama-8b/tp2/*"]}
    }


def test_environment_prop_wins_over_the_derived_variables() -> None:
    stack = _stack()
    LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=S3_WEIGHTS,
        settings=SETTINGS,
        environment={"OPTION_DTYPE": "fp16", "SERVING_FAIL_FAST": "true"},
    )
    env = _model(Template.from_stack(stack))["PrimaryContainer"]["Environment"]
    assert env["OPTION_DTYPE"] == "fp16" and env["SERVING_FAIL_FAST"] == "true"


def test_scaling_tracks_concurrent_requests_per_model(s3_model) -> None:
    endpoint, template = s3_model
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": (
                        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
                    )
                },
                "TargetValue": 6,  # three quarters of max_num_seqs 8
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        },
    )
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)
    assert endpoint.concurrent_requests_per_model == 6
    assert endpoint.invocations_per_instance is None


def test_scaling_target_can_be_set() -> None:
    stack = _stack()
    endpoint = LlmEndpoint(
        stack,
        "Llm",
        instance_type="ml.inf2.8xlarge",
        weights=S3_WEIGHTS,
        settings=SETTINGS,
        scaling=ConcurrencyScaling(concurrent_requests_per_model=3),
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"TargetTrackingScalingPolicyConfiguration": Match.object_like({"TargetValue": 3})},
    )
    assert endpoint.concurrent_requests_per_model == 3


def test_rollout_and_latency_alarm_suit_whole_generations(s3_model) -> None:
    template = s3_model[1]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ModelLatency", "Threshold": 180_000_000},  # 3 minutes in µs
    )
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": Match.object_like({"Type": "CANARY"}),
                    }
                ),
                "AutoRollbackConfiguration": Match.any_value(),
            },
            "RetainAllVariantProperties": True,
        },
    )


def test_grant_invoke_with_response_stream_allows_only_the_stream(s3_model) -> None:
    template = s3_model[1]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("Caller")}],
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": "sagemaker:InvokeEndpointWithResponseStream",
                        "Effect": "Allow",
                        "Resource": {"Ref": Match.string_like_regexp("Llm")},
                    }
                ]
            },
        },
    )


def test_is_a_monitored_endpoint_whose_dashboard_draws_its_scaling_signal(s3_model) -> None:
    endpoint, template = s3_model
    monitored: MonitoredEndpoint = endpoint
    assert monitored.concurrent_requests_per_model == 6
    metric = endpoint.metric_concurrent_requests_per_model()
    assert (metric.metric_name, metric.namespace, metric.statistic) == (
        "ConcurrentRequestsPerModel",
        "AWS/SageMaker",
        "Average",
    )
    assert set(metric.dimensions) == {"EndpointName", "VariantName"}
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "<token>" for p in parts))
    (widget,) = [
        w["properties"]
        for w in body["widgets"]
        if w["properties"].get("title") == "Requests in flight per instance vs scaling target"
    ]
    assert widget["metrics"][0][:2] == ["AWS/SageMaker", "ConcurrentRequestsPerModel"]
    assert [a["value"] for a in widget["annotations"]["horizontal"]] == [6]


# --- validation: one exact message per rule ---------------------------------------------------


def problems(**overrides: Any) -> list[str]:
    stack = _stack()
    props: dict[str, Any] = {
        "instance_type": "ml.inf2.8xlarge",
        "weights": S3_WEIGHTS,
        "settings": SETTINGS,
    }
    props.update(overrides)
    with pytest.raises(ConstructError) as info:
        LlmEndpoint(stack, "Llm", **props)
    assert str(info.value).startswith("LlmEndpoint Llm: ")
    assert not stack.node.find_child("Llm").node.children  # nothing created before
    return info.value.problems


def test_fails_when_the_model_does_not_fit_with_what_would() -> None:
    found = problems(
        instance_type="ml.inf2.xlarge",
        weights=LlmWeights(s3_prefix="s3://models/llama-70b/"),
        architecture=LLAMA_70B,
    )
    assert len(found) == 1
    assert found[0].startswith(
        "settings: the model (70.55B parameters: 131.4 GiB of bfloat16 weights + 10.0 GiB KV "
        "cache for 4096 tokens x 8 sequences = 141.4 GiB) does not fit ml.inf2.xlarge"
    )
    assert "What would fit: " in found[0]


def test_fails_when_the_degree_does_not_divide_the_neuroncores() -> None:
    assert problems(
        settings=LlmSettings(tensor_parallel=3, max_model_len=4096, max_num_seqs=8)
    ) == [
        "settings.tensor_parallel: got 3, but ml.inf2.8xlarge has 2 NeuronCores; the degree "
        "must divide them: 1, 2. Fix: use one of those"
    ]


def test_fails_when_a_model_cannot_compile_within_the_startup_limit() -> None:
    assert problems(
        instance_type="ml.trn1.32xlarge",
        weights=LlmWeights(s3_prefix="s3://models/llama-70b/"),
        settings=LlmSettings(tensor_parallel=32, max_model_len=4096, max_num_seqs=8),
        architecture=LLAMA_70B,
    ) == [
        # 70.55e9 parameters, 141.1e9 bytes of bfloat16:
        # (300 + 672.9 load + 600 + 70.55 x 40 compile) x 1.5 = 6592.5 -> 6593
        "startup_timeout: this model needs about 6593 s to load and compile "
        "(inf3kit.llm.startup's stated rates), above SageMaker's 3600 s limit for the startup "
        "health check. Fix: pre-compile it (`inf3kit llm compile`) and pass "
        "weights.compiled_prefix, or set startup_timeout (at most 1 hour) if you measured a "
        "faster start"
    ]


def test_fails_when_weights_name_no_source() -> None:
    found = problems(weights=LlmWeights())
    assert found == [
        "neither weights.s3 nor weights.huggingface given. Fix: give one: `s3: "
        "s3://BUCKET/PREFIX/` (an uncompressed model directory) or `huggingface: ORG/NAME` with "
        "its `revision`"
    ]


def test_fails_when_quantization_is_asked() -> None:
    assert problems(
        settings=LlmSettings(
            tensor_parallel=2, max_model_len=4096, max_num_seqs=8, quantization="int8"
        )
    ) == [
        "settings.quantization: got 'int8'; the LMI container's weight-quantization settings "
        "for vLLM on Neuron are not wired in inf3kit yet. Fix: leave quantization unset (serve "
        "in the dtype) or use a larger instance"
    ]


def test_fails_when_isolation_would_block_the_hub_download() -> None:
    assert problems(weights=HUB_WEIGHTS, network_isolation=True) == [
        "network_isolation: True, but the engine downloads the weights from the Hugging Face "
        "Hub at startup, which isolation blocks. Fix: leave network_isolation unset, or copy "
        "the weights (and compiled artefacts, inside their prefix) to S3"
    ]


def test_fails_when_no_lmi_image_serves_the_family() -> None:
    assert problems(instance_type="ml.inf3.xlarge") == [
        "image: ml.inf3.xlarge: lmi-neuronx does not serve inf3 (it serves inf2, trn1). Fix: an "
        "instance type of inf2, trn1; or add the engine to your catalog override file under "
        "`compatibility.engines`"
    ]


def test_fails_when_the_image_does_not_support_the_family() -> None:
    assert problems(instance_type="ml.inf3.xlarge", image=EndpointImage.dlc("djl-neuronx")) == [
        "image: serving image 'djl-neuronx' does not support instance family 'inf3' "
        "(ml.inf3.xlarge); it supports inf2, trn1. Fix: pick an instance type of those "
        "families, or images that support inf3: inf3kit-runtime, pytorch-inference-neuronx."
    ]


def test_fails_when_tensor_parallel_is_still_auto() -> None:
    [problem] = problems(settings=LlmSettings("auto", 4096, 4))  # type: ignore[arg-type]
    assert problem.startswith("settings.tensor_parallel: got 'auto', must be a whole number")


def test_fails_when_a_setting_or_the_target_is_not_positive() -> None:
    assert problems(
        settings=LlmSettings(tensor_parallel=2, max_model_len=0, max_num_seqs=8),
        scaling=ConcurrencyScaling(concurrent_requests_per_model=-1),
    ) == [
        "settings.max_model_len: got 0, must be a whole number >= 1. Fix: e.g. 2, 4096 and 8 "
        "(the spec resolves tensor_parallel `auto` with inf3kit.llm.fit before a construct "
        "sees it)",
        "scaling.concurrent_requests_per_model: got -1, must be >= 1. Fix: use the requests one "
        "instance serves at once at your latency target",
    ]


def test_reports_every_problem_at_once() -> None:
    found = problems(
        min_capacity=3,
        max_capacity=2,
        weights=LlmWeights(s3_prefix="s3://models/llama.tar.gz"),
        startup_timeout=Duration.hours(2),
        endpoint_name="bad_name",
    )
    assert [p.split(" ")[0].rstrip(":") for p in found] == [
        "min_capacity",
        "weights.s3",
        "startup_timeout",
        "endpoint_name",
    ]
