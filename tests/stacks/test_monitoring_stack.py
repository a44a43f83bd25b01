"""The spec's `monitoring:` section becomes a ServiceMonitoring with a dashboard output."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import ServiceStack, SynthResult

FLEET_SPEC = """\
name: ranker
model: {bundle: s3://bucket/ranker/model.tar.gz}
serving: {request_timeout_ms: 2000}
fleet:
  instance_types: [inf2.xlarge]
  startup_minutes: 30
monitoring:
  dashboard: false
  alarm_email: oncall@example.com
  error_rate_percent: 2.5
  latency_p99_ms: 1200
"""


def _template(result: SynthResult, stack: str) -> dict[str, Any]:
    return json.loads((result.assembly_dir / f"{stack}.template.json").read_text())


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and "AlarmName" in r["Properties"]
    }


@pytest.fixture(scope="module")
def fleet_stack() -> Template:
    stack = ServiceStack(cdk.App(), "ranker", loaded=parse_spec(FLEET_SPEC))
    return Template.from_stack(stack)


def test_demo_stack_outputs_its_dashboard_name(synthesized: dict[str, SynthResult]) -> None:
    outputs = _template(synthesized["demo"], "demo")["Outputs"]
    assert outputs["DashboardName"]["Value"] == "demo"
    assert "Ref" in outputs["AlarmTopicArn"]["Value"]


def test_demo_dashboard_covers_endpoint_and_fleet(synthesized: dict[str, SynthResult]) -> None:
    resources = _template(synthesized["demo"], "demo")["Resources"]
    (dashboard,) = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert dashboard["Properties"]["DashboardName"] == "demo"
    body = "".join(
        p for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1] if isinstance(p, str)
    )
    for metric in ("ModelLatency", "InvocationsPerInstance", "HealthyHostCount"):
        assert f'"{metric}"' in body
    assert '"NeuronCoreUtilization"' in body


def test_demo_latency_alarms_default_below_the_request_timeout(
    synthesized: dict[str, SynthResult],
) -> None:
    """At the request deadline the runtime answers 504, so an alarm there could never fire."""
    alarms = _alarms(_template(synthesized["demo"], "demo")["Resources"])
    assert alarms["demo-Endpoint-LatencyP99-Critical"]["Threshold"] == 1000
    assert alarms["demo-Fleet-LatencyP99-Critical"]["Threshold"] == 1000


def test_every_stage_gets_its_own_dashboard(synthesized: dict[str, SynthResult]) -> None:
    for stack in ("ranker-staging", "ranker-prod"):
        assert _template(synthesized["multi-env"], stack)["Outputs"]["DashboardName"] == {
            "Description": "the service's CloudWatch dashboard",
            "Value": stack,
        }


def test_spec_settings_reach_the_alarms(fleet_stack: Template) -> None:
    alarms = _alarms(fleet_stack.to_json()["Resources"])
    assert alarms["ranker-Fleet-LatencyP99-Critical"]["Threshold"] == 1200
    assert alarms["ranker-Fleet-5xxRate-Critical"]["Threshold"] == 2.5
    # startup_minutes (30) plus 5: a booting instance is not worth a page.
    assert alarms["ranker-Fleet-UnhealthyHosts-Warning"]["EvaluationPeriods"] == 35
    fleet_stack.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def test_dashboard_false_drops_the_dashboard_and_its_output(fleet_stack: Template) -> None:
    fleet_stack.resource_count_is("AWS::CloudWatch::Dashboard", 0)
    assert "DashboardName" not in fleet_stack.to_json()["Outputs"]
    assert "AlarmTopicArn" in fleet_stack.to_json()["Outputs"]


def test_fails_when_alarm_email_is_not_an_address() -> None:
    text = FLEET_SPEC.replace("oncall@example.com", "oncall")
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert [str(p) for p in info.value.problems] == [
        "monitoring.alarm_email (line 9): got 'oncall', not an email address. "
        "Fix: use an address such as oncall@example.com"
    ]


def test_fails_when_monitoring_has_an_unknown_key() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(FLEET_SPEC + "  latency_ms: 100\n")
    (problem,) = info.value.problems
    assert str(problem).startswith(
        "monitoring.latency_ms (line 12): unknown key 'latency_ms'. Did you mean 'latency_p99_ms'?"
    )


def test_fails_when_error_rate_is_not_positive() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(FLEET_SPEC.replace("2.5", "0"))
    assert [str(p) for p in info.value.problems] == [
        "monitoring.error_rate_percent (line 10): got 0, must be above 0 and at most 100. "
        "Fix: use a percentage of requests such as 1"
    ]
