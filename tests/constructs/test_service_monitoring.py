"""ServiceMonitoring: the dashboard, the on-call alarms, the alarm topic, and every message."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from inf3kit.constructs import (
    EndpointScaling,
    ModelData,
    NeuronEndpoint,
    NeuronFleet,
    ServiceMonitoring,
)

TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:pager"


def _stack(name: str) -> tuple[cdk.Stack, s3.IBucket]:
    stack = cdk.Stack(
        cdk.App(), name, env=cdk.Environment(account="111122223333", region="us-east-1")
    )
    return stack, s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")


def _endpoint(stack: cdk.Stack, bucket: s3.IBucket, **props: Any) -> NeuronEndpoint:
    return NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        **props,
    )


def _fleet(stack: cdk.Stack, bucket: s3.IBucket, **props: Any) -> NeuronFleet:
    return NeuronFleet(
        stack,
        "Fleet",
        vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1),
        instance_types=["inf2.xlarge"],
        bundle_bucket=bucket,
        bundle_key="ranker/model.tar.gz",
        **props,
    )


def _dashboard_body(template: Template) -> str:
    """The dashboard JSON with every token replaced by '<token>'."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "<token>" for p in parts)


def _alarm(template: Template, name: str) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("AlarmName") == name
    ]
    assert len(found) == 1, name
    return found[0]


@pytest.fixture(scope="module")
def both() -> tuple[ServiceMonitoring, Template]:
    """Endpoint and fleet with the defaults, plus an email subscription."""
    stack, bucket = _stack("Ranker")
    endpoint = _endpoint(stack, bucket, scaling=EndpointScaling(invocations_per_instance=300))
    fleet = _fleet(stack, bucket, neuroncore_utilization_percent=60)
    monitoring = ServiceMonitoring(
        stack, "Monitoring", endpoint=endpoint, fleet=fleet, alarm_email="oncall@example.com"
    )
    return monitoring, Template.from_stack(stack)


@pytest.fixture(scope="module")
def fleet_only() -> tuple[ServiceMonitoring, Template]:
    """A fleet, an existing pager topic, custom thresholds, no dashboard."""
    stack, bucket = _stack("Embedder")
    fleet = _fleet(stack, bucket, requests_per_instance=None)
    monitoring = ServiceMonitoring(
        stack,
        "Monitoring",
        fleet=fleet,
        alarm_topic=sns.Topic.from_topic_arn(stack, "Pager", TOPIC_ARN),
        latency_p99_threshold=Duration.millis(250),
        error_rate_percent=0.5,
        unhealthy_hosts_grace=Duration.minutes(40),
        dashboard=False,
    )
    return monitoring, Template.from_stack(stack)


# --- dashboard -------------------------------------------------------------------------------


def test_one_dashboard_named_after_the_stack(both: tuple[ServiceMonitoring, Template]) -> None:
    monitoring, template = both
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "Ranker"})
    assert monitoring.dashboard_name == "Ranker"
    assert monitoring.dashboard is not None


@pytest.mark.parametrize(
    "metric",
    [
        '"AWS/SageMaker","Invocations"',
        '"AWS/SageMaker","Invocation4XXErrors"',
        '"AWS/SageMaker","Invocation5XXErrors"',
        '"AWS/SageMaker","InvocationsPerInstance"',
        '"AWS/SageMaker","ModelLatency"',
        '"stat":"p50"',
        '"/aws/sagemaker/Endpoints","CPUUtilization"',
        '"/aws/sagemaker/Endpoints","MemoryUtilization"',
        '"/aws/sagemaker/Endpoints","DiskUtilization"',
        '"AWS/ApplicationELB","RequestCount"',
        '"AWS/ApplicationELB","RequestCountPerTarget"',
        '"AWS/ApplicationELB","HTTPCode_Target_5XX_Count"',
        '"AWS/ApplicationELB","HTTPCode_ELB_5XX_Count"',
        '"AWS/ApplicationELB","TargetResponseTime"',
        '"AWS/ApplicationELB","HealthyHostCount"',
        '"AWS/ApplicationELB","UnHealthyHostCount"',
        '"AWS/AutoScaling","GroupInServiceInstances"',
        '"Inf3kit/Neuron","NeuronCoreUtilization"',
    ],
)
def test_dashboard_shows_the_endpoint_and_fleet_metrics(
    both: tuple[ServiceMonitoring, Template], metric: str
) -> None:
    assert metric in _dashboard_body(both[1])


def _scaling_targets(template: Template) -> dict[str, list[float]]:
    """Each metric widget's title -> the scaling target lines it draws."""
    body = json.loads(_dashboard_body(template))
    return {
        w["properties"]["title"]: [
            a["value"]
            for a in w["properties"].get("annotations", {}).get("horizontal", [])
            if a.get("label") == "scaling target"
        ]
        for w in body["widgets"]
        if w["type"] == "metric"
    }


def test_dashboard_draws_each_scaling_target_the_constructs_use(
    both: tuple[ServiceMonitoring, Template],
) -> None:
    targets = _scaling_targets(both[1])
    assert targets["Invocations per instance vs scaling target"] == [300]
    assert targets["Requests per instance vs scaling target"] == [400]
    assert targets["NeuronCore utilisation vs scaling target (%)"] == [60]


def test_no_dashboard_when_turned_off(fleet_only: tuple[ServiceMonitoring, Template]) -> None:
    monitoring, template = fleet_only
    template.resource_count_is("AWS::CloudWatch::Dashboard", 0)
    assert monitoring.dashboard is None and monitoring.dashboard_name is None


# --- alarms ----------------------------------------------------------------------------------


def test_endpoint_5xx_rate_alarm_pages_the_topic(both: tuple[ServiceMonitoring, Template]) -> None:
    alarm = _alarm(both[1], "Ranker-Endpoint-5xxRate-Critical")
    topic = cdk.Stack.of(both[0]).resolve(both[0].alarm_topic.topic_arn)
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (3, 5)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["Metrics"][0]["Expression"] == "IF(whole > 0, 100 * part / whole, 0)"


def test_endpoint_p99_latency_alarm_is_in_milliseconds(
    both: tuple[ServiceMonitoring, Template],
) -> None:
    monitoring, template = both
    alarm = _alarm(template, "Ranker-Endpoint-LatencyP99-Critical")
    assert alarm["Threshold"] == 1000
    assert alarm["Metrics"][0]["Expression"] == "valuep99 / 1000"
    stat = alarm["Metrics"][1]["MetricStat"]
    assert (stat["Metric"]["MetricName"], stat["Stat"]) == ("ModelLatency", "p99")
    assert alarm["AlarmDescription"] == (
        f"{monitoring.endpoint.endpoint_name}: p99 model latency above 1 second "  # type: ignore[union-attr]
        "in 3 of the last 5 minutes"
    )


def test_fleet_host_alarms(both: tuple[ServiceMonitoring, Template]) -> None:
    none_healthy = _alarm(both[1], "Ranker-Fleet-NoHealthyHosts-Critical")
    assert none_healthy["Threshold"] == 1
    assert none_healthy["ComparisonOperator"] == "LessThanThreshold"
    assert (none_healthy["DatapointsToAlarm"], none_healthy["EvaluationPeriods"]) == (2, 2)
    assert none_healthy["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "HealthyHostCount"
    unhealthy = _alarm(both[1], "Ranker-Fleet-UnhealthyHosts-Warning")
    assert unhealthy["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (unhealthy["DatapointsToAlarm"], unhealthy["EvaluationPeriods"]) == (25, 25)
    assert unhealthy["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "UnHealthyHostCount"


def test_fleet_rate_and_latency_alarms(both: tuple[ServiceMonitoring, Template]) -> None:
    rate = _alarm(both[1], "Ranker-Fleet-5xxRate-Critical")
    assert rate["Metrics"][0]["Expression"] == "IF(whole > 0, 100 * part / whole, 0)"
    latency = _alarm(both[1], "Ranker-Fleet-LatencyP99-Critical")
    assert latency["Threshold"] == 1000
    assert latency["Metrics"][0]["Expression"] == "valuep99 * 1000"


def test_monitoring_makes_exactly_the_on_call_alarms(
    both: tuple[ServiceMonitoring, Template],
) -> None:
    monitoring, template = both
    names = {
        r["Properties"]["AlarmName"]
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("AlarmName", "").startswith("Ranker-")
    }
    assert names == {
        "Ranker-Endpoint-5xxRate-Critical",
        "Ranker-Endpoint-LatencyP99-Critical",
        "Ranker-Fleet-5xxRate-Critical",
        "Ranker-Fleet-LatencyP99-Critical",
        "Ranker-Fleet-NoHealthyHosts-Critical",
        "Ranker-Fleet-UnhealthyHosts-Warning",
    }
    assert len(monitoring.alarms) == len(names)


def test_custom_thresholds_reach_the_alarms_and_a_given_topic(
    fleet_only: tuple[ServiceMonitoring, Template],
) -> None:
    _, template = fleet_only
    template.resource_count_is("AWS::SNS::Topic", 0)
    template.resource_count_is("AWS::SNS::Subscription", 0)
    latency = _alarm(template, "Embedder-Fleet-LatencyP99-Critical")
    assert latency["Threshold"] == 250
    assert latency["AlarmActions"] == [TOPIC_ARN]
    assert _alarm(template, "Embedder-Fleet-5xxRate-Critical")["Threshold"] == 0.5
    unhealthy = _alarm(template, "Embedder-Fleet-UnhealthyHosts-Warning")
    assert unhealthy["EvaluationPeriods"] == 40


# --- topic -----------------------------------------------------------------------------------


def test_created_topic_is_kms_encrypted_and_ssl_only(
    both: tuple[ServiceMonitoring, Template],
) -> None:
    _, template = both
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^MonitoringKey"), "Arn"]}},
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sns:Publish",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_topic_key_rotates_and_lets_only_this_accounts_alarms_publish(
    both: tuple[ServiceMonitoring, Template],
) -> None:
    both[1].has_resource_properties(
        "AWS::KMS::Key",
        {
            "Description": "inf3kit alarm topic Ranker/Monitoring",
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": "111122223333"},
                                    "ArnLike": {
                                        "aws:SourceArn": {
                                            "Fn::Join": [
                                                "",
                                                [
                                                    "arn:",
                                                    {"Ref": "AWS::Partition"},
                                                    ":cloudwatch:us-east-1:111122223333:alarm:*",
                                                ],
                                            ]
                                        }
                                    },
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_topic_key_conditions_use_the_deploy_account_and_region_when_not_known() -> None:
    stack = cdk.Stack(cdk.App(), "Agnostic")
    bucket = s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")
    ServiceMonitoring(stack, "Monitoring", endpoint=_endpoint(stack, bucket))
    keys = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
    (statement,) = [
        s
        for key in keys
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowCloudWatchAlarmsToPublish"
    ]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":cloudwatch:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":alarm:*",
                    ],
                ]
            }
        },
    }


def test_email_subscription(both: tuple[ServiceMonitoring, Template]) -> None:
    both[1].has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def test_endpoint_only_monitors_without_fleet_widgets() -> None:
    stack, bucket = _stack("Solo")
    ServiceMonitoring(stack, "Monitoring", endpoint=_endpoint(stack, bucket))
    template = Template.from_stack(stack)
    body = _dashboard_body(template)
    assert "AWS/SageMaker" in body and "AWS/ApplicationELB" not in body
    assert (
        len(
            template.find_resources(
                "AWS::CloudWatch::Alarm",
                {"Properties": {"AlarmName": Match.string_like_regexp("^Solo-")}},
            )
        )
        == 2
    )


def test_monitors_an_endpoint_made_elsewhere_without_a_scaling_target() -> None:
    """Any `MonitoredEndpoint` will do; an imported endpoint has no autoscaling to draw."""
    stack, _ = _stack("Imported")
    endpoint = NeuronEndpoint.from_endpoint_name(stack, "Endpoint", "ranker-prod")
    monitoring = ServiceMonitoring(stack, "Monitoring", endpoint=endpoint)
    template = Template.from_stack(stack)
    assert '"EndpointName","ranker-prod"' in _dashboard_body(template)
    assert _scaling_targets(template)["Invocations per instance vs scaling target"] == []
    assert len(monitoring.alarms) == 2


# --- validation ------------------------------------------------------------------------------


def _fails(**props: Any) -> str:
    stack, _ = _stack("Bad")
    with pytest.raises(ValueError) as info:
        ServiceMonitoring(stack, "Monitoring", **props)
    return str(info.value)


def test_fails_when_neither_endpoint_nor_fleet() -> None:
    assert _fails() == (
        "ServiceMonitoring Monitoring: 1 problem\n"
        "  - endpoint/fleet: neither given, so there is nothing to monitor. "
        "Fix: pass endpoint=..., fleet=..., or both"
    )


def test_fails_when_every_prop_is_wrong_and_lists_them_all() -> None:
    stack, _ = _stack("Bad")
    topic = sns.Topic.from_topic_arn(stack, "Pager", TOPIC_ARN)
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    with pytest.raises(ValueError) as info:
        ServiceMonitoring(
            stack,
            "Monitoring",
            alarm_topic=topic,
            key=key,
            alarm_email="oncall-at-example",
            latency_p99_threshold=Duration.millis(0),
            error_rate_percent=0,
            unhealthy_hosts_grace=Duration.seconds(90),
            dashboard_name="ranker dashboard",
        )
    assert str(info.value) == (
        "ServiceMonitoring Monitoring: 7 problems\n"
        "  - endpoint/fleet: neither given, so there is nothing to monitor. "
        "Fix: pass endpoint=..., fleet=..., or both\n"
        "  - key: only encrypts a topic this construct creates, but alarm_topic was given. "
        "Fix: drop key, or drop alarm_topic\n"
        "  - alarm_email: got 'oncall-at-example', not an email address. "
        "Fix: use an address such as oncall@example.com\n"
        "  - latency_p99_threshold: got 0 millis, must be positive. "
        "Fix: use the p99 your clients tolerate, e.g. Duration.millis(500)\n"
        "  - error_rate_percent: got 0, must be above 0 and at most 100. "
        "Fix: use a percentage of requests such as 1\n"
        "  - unhealthy_hosts_grace: got 1 minute 30 seconds, must be whole minutes from "
        "1 minute to 1 day. Fix: use e.g. Duration.minutes(25)\n"
        "  - dashboard_name: got 'ranker dashboard'; CloudWatch allows 1-255 letters, digits, "
        "'-' and '_'. Fix: rename it"
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"error_rate_percent": 150},
            "error_rate_percent: got 150, must be above 0 and at most 100. "
            "Fix: use a percentage of requests such as 1",
        ),
        (
            {"unhealthy_hosts_grace": Duration.days(2)},
            "unhealthy_hosts_grace: got 2 days, must be whole minutes from 1 minute to 1 day. "
            "Fix: use e.g. Duration.minutes(25)",
        ),
    ],
)
def test_fails_when_a_threshold_is_out_of_range(props: dict[str, Any], message: str) -> None:
    assert re.search(re.escape(message), _fails(**props))
