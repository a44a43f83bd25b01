"""The stacks turn the spec's `endpoint:` section into a NeuronEndpoint and output its name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

from inf3kit.constructs import PROVISIONAL_WARNING_ID
from inf3kit.spec import parse_spec
from inf3kit.stacks import SynthResult, add_service

SPEC = """\
name: demo
model:
  bundle: {bundle}
serving: {{max_batch_size: 8, max_delay_ms: 2, request_timeout_ms: 2000}}
endpoint:
  instance_type: {instance_type}
  instances: {{min: 2, max: 3}}
  scaling:
    invocations_per_instance: 300
    schedule:
      scale_down_cron: 'cron(0 20 ? * MON-FRI *)'
      scale_up_cron: 'cron(0 6 ? * MON-FRI *)'
  rollout: {{strategy: canary, canary_percent: 20, bake_minutes: 5, latency_alarm_ms: 1500}}
  data_capture: {{sampling_percent: 5}}
network: {{vpc: new}}
"""


def _template(demo_bundle: Path, instance_type: str) -> tuple[cdk.Stack, dict[str, Any]]:
    loaded = parse_spec(SPEC.format(bundle=demo_bundle, instance_type=instance_type))
    (stack,) = add_service(cdk.App(), loaded)
    return stack, Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def inf2_and_inf3(demo_bundle: Path) -> dict[str, tuple[cdk.Stack, dict[str, Any]]]:
    return {t: _template(demo_bundle, t) for t in ("ml.inf2.xlarge", "ml.inf3.xlarge")}


def _without_instance_type(template: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """A copy with every InstanceType and cfn-lint waiver removed, and what was removed."""
    removed: list[Any] = []

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "InstanceType" or key == "cfn-lint":
                    removed.append({key: value})
                    continue
                out[key] = strip(value)
            return {k: v for k, v in out.items() if not (k == "Metadata" and v == {})}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(template), removed


def test_switching_inf2_to_inf3_changes_only_the_instance_type(inf2_and_inf3) -> None:
    (_, inf2), (_, inf3) = inf2_and_inf3.values()
    assert inf2 != inf3
    rest2, removed2 = _without_instance_type(inf2)
    rest3, removed3 = _without_instance_type(inf3)
    assert removed2 == [{"InstanceType": "ml.inf2.xlarge"}]
    assert removed3 == [
        {"InstanceType": "ml.inf3.xlarge"},
        {"cfn-lint": {"config": {"ignore_checks": ["E3030"]}}},
    ]
    assert json.dumps(rest2, sort_keys=True) == json.dumps(rest3, sort_keys=True)


def test_only_inf3_carries_the_provisional_warning(inf2_and_inf3) -> None:
    def provisional(stack: cdk.Stack) -> list[Any]:
        return Annotations.from_stack(stack).find_warning(
            "*", Match.string_like_regexp("is provisional")
        )

    (inf2_stack, _), (inf3_stack, _) = inf2_and_inf3.values()
    assert provisional(inf2_stack) == []
    assert len(provisional(inf3_stack)) == 1


def test_spec_settings_reach_the_endpoint(inf2_and_inf3) -> None:
    stack, _ = inf2_and_inf3["ml.inf2.xlarge"]
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "demo",
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": Match.object_like(
                        {
                            "TrafficRoutingConfiguration": {
                                "Type": "CANARY",
                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
                                "WaitIntervalInSeconds": 300,
                            }
                        }
                    )
                }
            ),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {
                    "Environment": {
                        "INF3KIT_MAX_BATCH_SIZE": "8",
                        "INF3KIT_MAX_DELAY_MS": "2",
                        "INF3KIT_QUEUE_SIZE": "256",
                        "INF3KIT_REQUEST_TIMEOUT_MS": "2000",
                        "INF3KIT_MAX_BODY_BYTES": str(6 * 1024 * 1024),
                    }
                }
            ),
            "VpcConfig": Match.object_like({"Subnets": Match.any_value()}),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^ArtifactsKey"), "Arn"]},
            "DataCaptureConfig": Match.object_like({"InitialSamplingPercentage": 5}),
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 2,
            "MaxCapacity": 3,
            "ScheduledActions": Match.array_with(
                [Match.object_like({"Schedule": "cron(0 20 ? * MON-FRI *)"})]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ModelLatency", "Threshold": 1_500_000}
    )
    template.has_output(
        "EndpointName",
        {"Value": {"Fn::GetAtt": [Match.string_like_regexp("^Endpoint"), "EndpointName"]}},
    )


def test_spec_image_uri_and_dlc_name(demo_bundle: Path) -> None:
    base = SPEC.format(bundle=demo_bundle, instance_type="ml.inf2.xlarge")
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/model:1"
    for image, expected in ((uri, uri), ("djl-neuronx", "djl-inference:0.29.0-neuronx-sdk2.19.1")):
        text = base.replace("  instances:", f"  image: {image}\n  instances:")
        (stack,) = add_service(cdk.App(), parse_spec(text))
        models = Template.from_stack(stack).find_resources("AWS::SageMaker::Model")
        assert expected in json.dumps(models)


def test_examples_output_the_endpoint_name(synthesized: dict[str, SynthResult]) -> None:
    with_endpoint = set()
    for name, result in synthesized.items():
        for path in result.assembly_dir.glob("*.template.json"):
            template = json.loads(path.read_text())
            endpoints = [
                r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
            ]
            if not endpoints:
                continue
            with_endpoint.add(name)
            assert len(endpoints) == 1, name
            assert "EndpointName" in template["Outputs"], name
            assert endpoints[0]["Properties"]["EndpointName"] == path.name.split(".")[0]
    assert {"demo", "multi-env"} <= with_endpoint


def test_demo_warns_once_for_the_provisional_endpoint_type(
    synthesized: dict[str, SynthResult],
) -> None:
    warnings = [
        w
        for w in synthesized["demo"].warnings
        if PROVISIONAL_WARNING_ID in w and "ml.inf3.xlarge" in w
    ]
    assert len(warnings) == 1
