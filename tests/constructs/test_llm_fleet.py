"""LlmFleet: servers per tensor-parallel group behind one target group each, health on vLLM's
route, queue scaling, least-privilege weights, and every validation message."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Annotations, Match, Template

from inf3kit.constructs import LlmFleet, ServiceMonitoring
from inf3kit.constructs.monitored import MonitoredFleet
from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture

REVISION = "0123456789abcdef0123456789abcdef01234567"
LLAMA_70B = ModelArchitecture(
    hidden_size=8192,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    intermediate_size=28672,
    vocab_size=128256,
)
S3_WEIGHTS = LlmWeights(
    s3_prefix="s3://models-bucket/llama-70b/",
    compiled_prefix="s3://models-bucket/llama-70b-trn2-tp16/",
)
SETTINGS = LlmSettings(tensor_parallel=16, max_model_len=8192, max_num_seqs=8)


def _fleet(**props: object) -> tuple[cdk.Stack, LlmFleet]:
    stack = cdk.Stack(cdk.App(), "Llm")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    props.setdefault("instance_types", ["trn2.48xlarge"])
    props.setdefault("weights", S3_WEIGHTS)
    props.setdefault("settings", SETTINGS)
    fleet = LlmFleet(stack, "Fleet", vpc=vpc, **props)  # type: ignore[arg-type]
    return stack, fleet


@pytest.fixture(scope="module")
def built() -> tuple[LlmFleet, Template]:
    """A 70B model on trn2.48xlarge at degree 16: four servers of 16 logical NeuronCores."""
    stack, fleet = _fleet(architecture=LLAMA_70B)
    ServiceMonitoring(stack, "Monitoring", fleet=fleet)
    return fleet, Template.from_stack(stack)


def test_one_server_per_tensor_parallel_group_each_with_its_cores_and_port(
    built: tuple[LlmFleet, Template],
) -> None:
    fleet, _ = built
    assert [(s.index, s.port, s.cores) for s in fleet.servers] == [
        (0, 8000, "0-15"),
        (1, 8001, "16-31"),
        (2, 8002, "32-47"),
        (3, 8003, "48-63"),
    ]
    assert fleet.served_model_name == "llama-70b"


def test_one_target_group_per_server_port_with_health_on_vllms_route(
    built: tuple[LlmFleet, Template],
) -> None:
    _, template = built
    groups = template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert sorted(g["Properties"]["Port"] for g in groups.values()) == [8000, 8001, 8002, 8003]
    for group in groups.values():
        props = group["Properties"]
        assert props["HealthCheckPath"] == "/health"
        assert props["HealthCheckPort"] == "traffic-port"
        attributes = {a["Key"]: a["Value"] for a in props["TargetGroupAttributes"]}
        assert attributes["deregistration_delay.timeout_seconds"] == "120"
        assert attributes["load_balancing.algorithm.type"] == "least_outstanding_requests"
    # The listener spreads evenly over the servers; the group registers each instance in all.
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "DefaultActions": [
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": Match.array_with([Match.object_like({"Weight": 1})] * 4)
                    },
                }
            ]
        },
    )
    (group,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    assert len(group["Properties"]["TargetGroupARNs"]) == 4
    assert group["CreationPolicy"]["ResourceSignal"]["Timeout"] == "PT1H"
    assert group["UpdatePolicy"]["AutoScalingRollingUpdate"]["WaitOnResourceSignals"] is True
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "idle_timeout.timeout_seconds", "Value": "600"}]
            )
        },
    )


def test_instances_admit_the_load_balancer_on_the_server_ports_only(
    built: tuple[LlmFleet, Template],
) -> None:
    _, template = built
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"FromPort": 8000, "ToPort": 8003, "IpProtocol": "tcp"},
    )


def test_scales_on_waiting_requests_and_drains_like_a_neuron_fleet(
    built: tuple[LlmFleet, Template],
) -> None:
    _, template = built
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "CustomizedMetricSpecification": Match.object_like(
                    {
                        "MetricName": "RequestsWaiting",
                        "Namespace": "Inf3kit/LLM",
                        "Statistic": "Average",
                    }
                ),
                "TargetValue": 4,
            },
        },
    )
    template.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 150},
    )


def test_the_role_reads_its_prefixes_and_publishes_only_its_namespace(
    built: tuple[LlmFleet, Template],
) -> None:
    _, template = built
    text = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert '"s3:prefix": ["llama-70b/*"]' in text
    assert '"s3:prefix": ["llama-70b-trn2-tp16/*"]' in text
    assert ":s3:::models-bucket/llama-70b/*" in text
    assert '"cloudwatch:namespace": "Inf3kit/LLM"' in text
    assert "s3:PutObject" not in text


def test_the_image_is_the_multi_framework_dlami_with_the_vllm_environment(
    built: tuple[LlmFleet, Template],
) -> None:
    _, template = built
    parameters = template.to_json()["Parameters"]
    assert any(
        p.get("Default") == "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
        for p in parameters.values()
    )


def test_a_gated_model_reads_its_token_secret_and_the_template_holds_no_token() -> None:
    stack, _ = _fleet(
        instance_types=["inf2.xlarge"],
        weights=LlmWeights(
            huggingface_id="meta-llama/Llama-3.2-1B-Instruct",
            revision=REVISION,
            token_secret="hf/token",
        ),
        settings=LlmSettings(tensor_parallel=2, max_model_len=4096, max_num_seqs=4),
    )
    template = Template.from_stack(stack)
    text = json.dumps(template.to_json())
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": [
                                    "secretsmanager:GetSecretValue",
                                    "secretsmanager:DescribeSecret",
                                ],
                                "Resource": Match.object_like(
                                    {
                                        "Fn::Join": [
                                            "",
                                            Match.array_with([":secret:hf/token-??????"]),
                                        ]
                                    }
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )
    assert "HF_TOKEN=" not in text.replace('HF_TOKEN=\\"$hf_token\\"', "")
    assert "s3:ListBucket" not in text


def test_the_fleet_is_monitored_like_any_fleet(built: tuple[LlmFleet, Template]) -> None:
    fleet, template = built
    monitored: MonitoredFleet = fleet
    assert monitored.neuroncore_utilization_percent is None
    assert template.find_resources("AWS::CloudWatch::Dashboard")


def _fails(**props: object) -> str:
    with pytest.raises(ValueError) as caught:
        _fleet(**props)
    return str(caught.value)


def test_fails_when_the_model_does_not_fit_and_names_what_would() -> None:
    message = _fails(
        instance_types=["inf2.xlarge"],
        settings=LlmSettings(tensor_parallel=2, max_model_len=8192, max_num_seqs=8),
        architecture=LLAMA_70B,
    )
    assert message.startswith("LlmFleet Fleet: 1 problem\n  - instance_types: the model (")
    assert "does not fit inf2.xlarge" in message
    assert "What would fit: " in message


def test_fails_when_the_degree_does_not_tile_the_types_or_makes_too_many_servers() -> None:
    assert _fails(
        instance_types=["inf2.48xlarge", "inf2.24xlarge"],
        settings=LlmSettings(tensor_parallel=1, max_model_len=2048, max_num_seqs=4),
        port=65530,
    ) == (
        "LlmFleet Fleet: 3 problems\n"
        "  - instance_types: the instance types run different numbers of vLLM servers at "
        "tensor_parallel 1 (inf2.48xlarge: 24, inf2.24xlarge: 12); every instance must answer "
        "on every server port the load balancer checks. Fix: list types with the same "
        "NeuronCore count\n"
        "  - settings.tensor_parallel 1 makes 24 vLLM servers per instance; the load balancer "
        "spreads over at most 5 (one target group per server). Fix: a larger tensor_parallel "
        "(or `auto`), or a smaller instance size\n"
        "  - port 65530 leaves no room for 24 servers on consecutive ports. Fix: e.g. 8000"
    )
    assert _fails(
        instance_types=["inf2.24xlarge"],
        settings=LlmSettings(tensor_parallel=5, max_model_len=2048, max_num_seqs=4),
    ) == (
        "LlmFleet Fleet: 1 problem\n"
        "  - settings.tensor_parallel 5 does not divide the 12 NeuronCores of inf2.24xlarge, "
        "so servers cannot tile it. Fix: use a divisor of 12"
    )


def test_fails_when_weights_settings_and_environment_are_wrong() -> None:
    assert _fails(
        weights=LlmWeights(huggingface_id="meta-llama/Llama-3.1-70B"),
        settings=LlmSettings(tensor_parallel=16, max_model_len=0, max_num_seqs=8),
        extra_environment={"NEURON_RT_VISIBLE_CORES": "0", "PATH": "/x"},
        waiting_requests_per_instance=0,
    ) == (
        "LlmFleet Fleet: 4 problems\n"
        "  - weights.revision is required with weights.huggingface: an unpinned model changes "
        "under a running service. Fix: add `revision:` with the commit (40 hex digits) from "
        "the model page's 'Files and versions' history\n"
        "  - settings.max_model_len: got 0, must be a whole number >= 1. Fix: e.g. 2, 4096 and "
        "8 (the spec resolves tensor_parallel `auto` with inf3kit.llm.fit before a construct "
        "sees it)\n"
        "  - extra_environment keys 'NEURON_RT_VISIBLE_CORES', 'PATH' cannot be set. Fix: use "
        "NEURON_*, VLLM_*, XLA_*, HF_* or PROMETHEUS_* variables other than "
        "BASE_COMPILE_WORK_DIR, HF_TOKEN, INF3KIT_VLLM_PORT, NEURON_RT_VISIBLE_CORES, which "
        "each server gets from the boot\n"
        "  - waiting_requests_per_instance 0 must be >= 1. Fix: e.g. 4, or None to turn queue "
        "scaling off"
    )


def test_fails_when_tensor_parallel_is_still_auto() -> None:  # LlmEndpoint: the same check
    assert _fails(
        settings=LlmSettings(tensor_parallel="auto", max_model_len=8192, max_num_seqs=8)  # type: ignore[arg-type]
    ) == (
        "LlmFleet Fleet: 1 problem\n"
        "  - settings.tensor_parallel: got 'auto', must be a whole number >= 1. Fix: e.g. 2, "
        "4096 and 8 (the spec resolves tensor_parallel `auto` with inf3kit.llm.fit before a "
        "construct sees it)"
    )


def test_warns_when_the_dlamis_vllm_plugin_does_not_serve_the_family() -> None:
    stack, _ = _fleet(
        instance_types=["inf2.xlarge"],
        settings=LlmSettings(tensor_parallel=2, max_model_len=4096, max_num_seqs=4),
    )
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert [w.entry.data for w in warnings if "vLLM Neuron plugin" in str(w.entry.data)] == [
        "the DLAMI's vLLM environment carries the vLLM Neuron plugin, and inf2.xlarge: "
        "vllm-neuron does not serve inf2 (it serves trn2, trn3). Fix: pass vllm_environment (and "
        "machine_image) with vLLM for NxD Inference (docs/llm.md, EC2 fleet) "
        "[ack: inf3kit:vllmEnvironmentFamily]"
    ]
    trn2, _ = _fleet()
    assert not [
        w
        for w in Annotations.from_stack(trn2).find_warning("*", Match.any_value())
        if "vLLM Neuron plugin" in str(w.entry.data)
    ]


def test_host_alarms_watch_every_servers_target_group(built: tuple[LlmFleet, Template]) -> None:
    """Four servers per trn2.48xlarge: a dead server 3 must alarm, not only server 0."""
    fleet, template = built
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    expressions = {
        name: [m["Expression"] for m in a["Properties"].get("Metrics", []) if "Expression" in m]
        for name, a in alarms.items()
        if "healthyhosts" in name.lower()
    }
    assert sorted(expressions.values()) == [
        ["MAX([unhealthy0, unhealthy1, unhealthy2, unhealthy3])"],
        ["MIN([healthy0, healthy1, healthy2, healthy3])"],
    ]
    [healthy] = [n for n in alarms if "NoHealthyHosts" in n]
    groups = {
        d["Value"]["Fn::GetAtt"][0]
        for m in alarms[healthy]["Properties"]["Metrics"]
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "TargetGroup"
    }
    assert len(groups) == len(fleet.target_groups) == 4
