"""NeuronEndpoint: what it puts in the template, and an exact message for every rule it enforces."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from inf3kit.catalog import load_compatibility
from inf3kit.catalog.compatibility import Compatibility
from inf3kit.constructs import (
    PROVISIONAL_WARNING_ID,
    ConstructError,
    DataCapture,
    EndpointImage,
    EndpointRollout,
    EndpointScaling,
    ModelData,
    NeuronEndpoint,
    RuntimeSettings,
    ScaleDownSchedule,
)
from inf3kit.constructs.endpoint_image import SDK_WARNING_ID, requirements, stage_runtime_context
from inf3kit.constructs.runtime_settings import RUNTIME_VARIABLES
from inf3kit.runtime.settings import Settings

ECR_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/ranker:1.4.2"


def _stack() -> tuple[cdk.Stack, s3.IBucket]:
    stack = cdk.Stack(
        cdk.App(), "Test", env=cdk.Environment(account="111122223333", region="us-east-1")
    )
    return stack, s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")


@pytest.fixture(scope="module")
def default() -> tuple[NeuronEndpoint, Template]:
    """Fewest props plus a VPC: the defaults as a user gets them."""
    stack, bucket = _stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    endpoint = NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        vpc=vpc,
        runtime=RuntimeSettings(max_batch_size=8, max_delay=Duration.millis(4)),
    )
    invoker = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    endpoint.grant_invoke(invoker)
    return endpoint, Template.from_stack(stack)


@pytest.fixture(scope="module")
def linear() -> tuple[NeuronEndpoint, Template]:
    """A DLC by name, linear rollout, data capture, a night schedule and a user alarm."""
    stack, bucket = _stack()
    capture = s3.Bucket(stack, "Capture", enforce_ssl=True)
    user_alarm = cloudwatch.Alarm(
        stack,
        "UserAlarm",
        metric=cloudwatch.Metric(namespace="Team", metric_name="Errors"),
        threshold=1,
        evaluation_periods=1,
    )
    endpoint = NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.8xlarge",
        model_data=ModelData.from_bucket(bucket, "llm/model.tar.gz"),
        image=EndpointImage.dlc("djl-neuronx"),
        endpoint_name="llm-prod",
        min_capacity=2,
        max_capacity=6,
        initial_capacity=3,
        scaling=EndpointScaling(
            invocations_per_instance=120,
            scale_in_cooldown=Duration.minutes(10),
            scale_out_cooldown=Duration.minutes(2),
            schedule=ScaleDownSchedule(
                scale_down="cron(0 20 ? * MON-FRI *)",
                scale_up="cron(0 6 ? * MON-FRI *)",
                time_zone="Europe/Berlin",
            ),
        ),
        rollout=EndpointRollout.linear(25, bake_time=Duration.minutes(5)),
        rollback_alarms=[user_alarm],
        data_capture=DataCapture(capture, percent=20),
        startup_timeout=Duration.minutes(30),
        download_timeout=Duration.minutes(20),
        volume_size=Size.gibibytes(200),
        environment={"OPTION_TENSOR_PARALLEL_DEGREE": "2"},
    )
    return endpoint, Template.from_stack(stack)


@pytest.fixture(scope="module")
def rolling() -> Template:
    """An explicit ECR URI, a rolling update and a type with local NVMe storage."""
    stack, bucket = _stack()
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.trn1.2xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        image=EndpointImage.from_uri(ECR_URI, network_isolation=False),
        min_capacity=2,
        max_capacity=3,
        rollout=EndpointRollout.rolling(20, bake_time=Duration.minutes(3)),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def inf3() -> tuple[cdk.Stack, Template]:
    stack, bucket = _stack()
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf3.xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        rollout=EndpointRollout.all_at_once(bake_time=Duration.minutes(15)),
    )
    return stack, Template.from_stack(stack)


def _statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if "EndpointRole" in roles:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


# --- model, image and role ------------------------------------------------------------------


def test_model_reads_the_bundle_with_the_runtime_image_and_isolation(default) -> None:
    _, template = default
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "EnableNetworkIsolation": True,
            "PrimaryContainer": {
                "Image": {"Fn::Sub": Match.string_like_regexp("container-assets")},
                "ModelDataUrl": "s3://models-bucket/ranker/model.tar.gz",
                "Mode": "SingleModel",
                "Environment": {
                    "INF3KIT_MAX_BATCH_SIZE": "8",
                    "INF3KIT_MAX_DELAY_MS": "4",
                    "INF3KIT_QUEUE_SIZE": Match.absent(),
                },
            },
        },
    )


def test_role_has_no_wildcard_action_and_no_managed_policy(default, linear, rolling) -> None:
    for template in (default[1], linear[1], rolling):
        template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": Match.object_like(
                    {
                        "Statement": [
                            Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})
                        ]
                    }
                ),
                "ManagedPolicyArns": Match.absent(),
            },
        )
        for statement in _statements(template):
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, statement


def test_role_reads_that_model_object_only(default) -> None:
    _, template = default
    read = [s for s in _statements(template) if s.get("Sid") == "ReadModelData"]
    assert read == [
        {
            "Sid": "ReadModelData",
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":s3:::models-bucket/ranker/model.tar.gz"],
                ]
            },
        }
    ]


def test_role_pulls_only_its_image_repository(default, rolling) -> None:
    pulls = [s for s in _statements(rolling) if "ecr:BatchGetImage" in s["Action"]]
    assert [s["Resource"] for s in pulls] == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":ecr:eu-west-1:123456789012:repository/team/ranker",
                ],
            ]
        }
    ]
    token = [s for s in _statements(rolling) if s["Action"] == "ecr:GetAuthorizationToken"]
    assert [s["Resource"] for s in token] == ["*"]
    asset_pull = [s for s in _statements(default[1]) if "ecr:BatchGetImage" in s["Action"]]
    assert "container-assets" in json.dumps(asset_pull[0]["Resource"])


def test_dlc_image_comes_from_the_matrix_and_the_regional_dlc_account(linear) -> None:
    _, template = linear
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "EnableNetworkIsolation": False,
            "PrimaryContainer": Match.object_like(
                {
                    "Image": Match.object_like(
                        {
                            "Fn::Join": [
                                "",
                                Match.array_with(["/djl-inference:0.29.0-neuronx-sdk2.19.1"]),
                            ]
                        }
                    ),
                    "Environment": {"OPTION_TENSOR_PARALLEL_DEGREE": "2"},
                }
            ),
        },
    )
    assert "763104351884" in json.dumps(template.to_json())


def test_role_writes_logs_and_namespaced_metrics_and_decrypts_with_the_key(default) -> None:
    endpoint, template = default
    by_sid = {s.get("Sid"): s for s in _statements(template)}
    assert by_sid["WriteLogs"]["Action"] == [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    group_arn, streams_arn = by_sid["WriteLogs"]["Resource"]
    group = f"/aws/sagemaker/Endpoints/{endpoint.endpoint_name}"
    assert group_arn["Fn::Join"][1][-1] == f":logs:us-east-1:111122223333:log-group:{group}"
    assert streams_arn["Fn::GetAtt"][0].startswith("EndpointLogs")
    assert by_sid["PutMetrics"]["Action"] == "cloudwatch:PutMetricData"
    assert by_sid["PutMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "inf3kit*"]}
    }
    assert by_sid["DecryptModelData"]["Action"] == "kms:Decrypt"
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/aws/sagemaker/Endpoints/{endpoint.endpoint_name}",
            "RetentionInDays": 365,
            "KmsKeyId": Match.any_value(),
        },
    )


def test_grant_invoke_allows_invoke_endpoint_on_the_endpoint_arn(default) -> None:
    _, template = default
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("^Caller")}],
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": "sagemaker:InvokeEndpoint",
                        "Effect": "Allow",
                        "Resource": {"Ref": Match.string_like_regexp("^Endpoint")},
                    }
                ],
                "Version": "2012-10-17",
            },
        },
    )


# --- endpoint config ------------------------------------------------------------------------


def test_config_is_kms_encrypted_with_a_stable_variant_and_neuron_timeouts(default) -> None:
    _, template = default
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^EndpointKey"), "Arn"]},
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "InstanceType": "ml.inf2.xlarge",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1,
                    "ModelName": Match.any_value(),
                    "ContainerStartupHealthCheckTimeoutInSeconds": 900,
                    "ModelDataDownloadTimeoutInSeconds": 900,
                }
            ],
            "DataCaptureConfig": Match.absent(),
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_config_takes_timeouts_volume_and_data_capture(linear) -> None:
    _, template = linear
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "AllTraffic",
                        "InitialInstanceCount": 3,
                        "ContainerStartupHealthCheckTimeoutInSeconds": 1800,
                        "ModelDataDownloadTimeoutInSeconds": 1200,
                        "VolumeSizeInGB": 200,
                    }
                )
            ],
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 20,
                "DestinationS3Uri": Match.any_value(),
                "KmsKeyId": Match.any_value(),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            },
        },
    )
    by_sid = {s.get("Sid"): s for s in _statements(template)}
    assert by_sid["WriteDataCapture"]["Action"] == "s3:PutObject"
    assert "data-capture/llm-prod/*" in json.dumps(by_sid["WriteDataCapture"]["Resource"])


def test_local_nvme_types_get_no_kms_key_or_volume_size(rolling) -> None:
    rolling.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": Match.absent(),
            "ProductionVariants": [Match.object_like({"VolumeSizeInGB": Match.absent()})],
        },
    )
    config = next(iter(rolling.find_resources("AWS::SageMaker::EndpointConfig").values()))
    assert [s["id"] for s in config["Metadata"]["checkov"]["skip"]] == ["CKV_AWS_98"]


def test_vpc_placement_with_its_own_https_only_security_group(default) -> None:
    _, template = default
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "VpcConfig": {
                "SecurityGroupIds": [
                    {"Fn::GetAtt": [Match.string_like_regexp("^EndpointSecurityGroup"), "GroupId"]}
                ],
                "Subnets": [
                    {"Ref": Match.string_like_regexp("^VpcPrivateSubnet1")},
                    {"Ref": Match.string_like_regexp("^VpcPrivateSubnet2")},
                ],
            }
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("inf3kit endpoint"),
            "SecurityGroupIngress": Match.absent(),
            "SecurityGroupEgress": [
                Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443})
            ],
        },
    )


def test_network_interface_actions_only_with_a_vpc(default, rolling) -> None:
    """SageMaker attaches a VPC model with ENIs the role makes; without a VPC it needs none."""
    by_sid = {s.get("Sid"): s for s in _statements(default[1])}
    condition = by_sid["ManageVpcInterfaces"]["Condition"]
    vpc_arn = condition["ArnEqualsIfExists"]["ec2:Vpc"]["Fn::Join"][1]
    assert list(condition) == ["ArnEqualsIfExists"]
    assert vpc_arn[-2] == ":ec2:us-east-1:111122223333:vpc/"
    assert vpc_arn[-1]["Ref"].startswith("Vpc")
    assert by_sid["DescribeVpcForInterfaces"]["Resource"] == "*"
    sids = {s.get("Sid") for s in _statements(rolling)}
    assert not {"ManageVpcInterfaces", "DescribeVpcForInterfaces"} & sids


def test_no_vpc_config_without_a_vpc(rolling) -> None:
    rolling.has_resource_properties(
        "AWS::SageMaker::Model", {"VpcConfig": Match.absent(), "EnableNetworkIsolation": False}
    )


# --- autoscaling ----------------------------------------------------------------------------


def test_scalable_target_tracks_invocations_per_instance(default, linear) -> None:
    _, template = linear
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 2,
            "MaxCapacity": 6,
            "ResourceId": {
                "Fn::Join": [
                    "",
                    [
                        "endpoint/",
                        {"Fn::GetAtt": [Match.any_value(), "EndpointName"]},
                        "/variant/AllTraffic",
                    ],
                ]
            },
            "RoleARN": Match.object_like(
                {
                    "Fn::Join": [
                        "",
                        Match.array_with(
                            [
                                Match.string_like_regexp(
                                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                                )
                            ]
                        ),
                    ]
                }
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": 120,
                "ScaleInCooldown": 600,
                "ScaleOutCooldown": 120,
            },
        },
    )
    default[1].has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 1, "MaxCapacity": 2, "ScheduledActions": Match.absent()},
    )


def test_scheduled_scale_down_and_back_up(linear) -> None:
    _, template = linear
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ScheduledActions": [
                {
                    "ScheduledActionName": "ScaleDown",
                    "Schedule": "cron(0 20 ? * MON-FRI *)",
                    "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 1},
                    "Timezone": "Europe/Berlin",
                },
                {
                    "ScheduledActionName": "ScaleUp",
                    "Schedule": "cron(0 6 ? * MON-FRI *)",
                    "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 6},
                    "Timezone": "Europe/Berlin",
                },
            ]
        },
    )


# --- rollouts and alarms --------------------------------------------------------------------


def _rollback_alarms() -> dict[str, Any]:
    return {
        "Alarms": [
            {"AlarmName": {"Ref": Match.string_like_regexp("^EndpointErrors5xxAlarm")}},
            {"AlarmName": {"Ref": Match.string_like_regexp("^EndpointLatencyAlarm")}},
        ]
    }


def test_default_rollout_with_one_instance_is_baked_blue_green_all_at_once(default) -> None:
    endpoint, template = default
    assert re.fullmatch(r"Test-Endpoint-[0-9A-F]{8}", endpoint.endpoint_name)
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": endpoint.endpoint_name,
            "DeploymentConfig": {
                "AutoRollbackConfiguration": _rollback_alarms(),
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "ALL_AT_ONCE",
                        "CanarySize": Match.absent(),
                        "WaitIntervalInSeconds": 600,
                    },
                    "MaximumExecutionTimeoutInSeconds": 3600,
                    "TerminationWaitInSeconds": 0,
                },
            },
        },
    )


def test_default_rollout_with_two_instances_is_a_10_percent_canary() -> None:
    stack, bucket = _stack()
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "m/model.tar.gz"),
        min_capacity=2,
        max_capacity=4,
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": {
                "AutoRollbackConfiguration": _rollback_alarms(),
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                            "WaitIntervalInSeconds": 600,
                        }
                    }
                ),
            }
        },
    )


def test_fixed_capacity_is_not_registered_for_autoscaling() -> None:
    """min == max without a schedule: no scalable target, so the instance type can change."""
    stack, bucket = _stack()
    endpoint = NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "m/model.tar.gz"),
        min_capacity=2,
        max_capacity=2,
    )
    template = Template.from_stack(stack)
    assert endpoint.scalable_target is None
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)


def test_linear_rollout_includes_user_alarms_and_sizes_its_timeout(linear) -> None:
    _, template = linear
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "llm-prod",
            "DeploymentConfig": {
                "AutoRollbackConfiguration": {
                    "Alarms": [
                        Match.object_like({}),
                        Match.object_like({}),
                        {"AlarmName": {"Ref": Match.string_like_regexp("^UserAlarm")}},
                    ]
                },
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                        "WaitIntervalInSeconds": 300,
                        "CanarySize": Match.absent(),
                    },
                    # 4 steps x 5 min + 30 min startup + 20 min download
                    "MaximumExecutionTimeoutInSeconds": 4200,
                    "TerminationWaitInSeconds": 0,
                },
            },
        },
    )


def test_all_at_once_rollout(inf3) -> None:
    _, template = inf3
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": Match.object_like(
                        {
                            "TrafficRoutingConfiguration": {
                                "Type": "ALL_AT_ONCE",
                                "WaitIntervalInSeconds": 900,
                            }
                        }
                    )
                }
            )
        },
    )


def test_rolling_update_does_not_use_blue_green(rolling) -> None:
    rolling.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": {
                "AutoRollbackConfiguration": _rollback_alarms(),
                "BlueGreenUpdatePolicy": Match.absent(),
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
                    "WaitIntervalInSeconds": 180,
                    "MaximumExecutionTimeoutInSeconds": 3600,
                    "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100},
                },
            }
        },
    )


def test_alarms_watch_5xx_errors_and_p99_model_latency(default) -> None:
    endpoint, template = default
    dims = [
        {"Name": "EndpointName", "Value": endpoint.endpoint_name},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": dims,
            "Statistic": "Sum",
            "Threshold": 1,
            "EvaluationPeriods": 2,
            "TreatMissingData": "notBreaching",
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "Threshold": 1_000_000,  # 1 s in microseconds
            "EvaluationPeriods": 3,
            "Dimensions": dims,
        },
    )
    assert len(endpoint.alarms) == 2


def test_latency_alarm_keeps_its_1s_default_whatever_the_request_timeout() -> None:
    # At request_timeout the runtime answers 504, so a threshold at the timeout never fires:
    # the default is not derived from it.
    stack, bucket = _stack()
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        runtime=RuntimeSettings(request_timeout=Duration.seconds(30), queue_size=64),
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Environment": {
                    "INF3KIT_REQUEST_TIMEOUT_MS": "30000",
                    "INF3KIT_QUEUE_SIZE": "64",
                    "INF3KIT_WORKERS": Match.absent(),
                }
            }
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ModelLatency", "Threshold": 1_000_000}
    )


def test_metrics_address_the_variant(default) -> None:
    endpoint, _ = default
    names = {
        m.metric_name: m.statistic
        for m in (
            endpoint.metric_invocations(),
            endpoint.metric_invocations_per_instance(),
            endpoint.metric_invocation_5xx_errors(),
            endpoint.metric_invocation_4xx_errors(),
            endpoint.metric_model_latency(),
        )
    }
    assert names == {
        "Invocations": "Sum",
        "InvocationsPerInstance": "Sum",
        "Invocation5XXErrors": "Sum",
        "Invocation4XXErrors": "Sum",
        "ModelLatency": "p99",
    }
    assert endpoint.metric_invocations().dimensions == {
        "EndpointName": endpoint.endpoint_name,
        "VariantName": "AllTraffic",
    }


def test_metric_options_set_statistic_period_and_label(default) -> None:
    endpoint, _ = default
    metric = endpoint.metric_model_latency(
        statistic="p50", period=Duration.minutes(5), label="median"
    )
    assert (metric.statistic, metric.period.to_minutes(), metric.label) == ("p50", 5, "median")


def test_imported_endpoint_grants_invoke_and_reads_metrics_by_name() -> None:
    stack = cdk.Stack(
        cdk.App(), "Stack", env=cdk.Environment(account="111111111111", region="eu-west-1")
    )
    endpoint = NeuronEndpoint.from_endpoint_name(stack, "Ranker", "Ranker-Prod")
    role = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    endpoint.grant_invoke(role)
    assert endpoint.metric_invocations().dimensions == {
        "EndpointName": "Ranker-Prod",
        "VariantName": "AllTraffic",
    }
    assert endpoint.invocations_per_instance is None
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SageMaker::Endpoint", 0)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like(
                            {
                                "Action": "sagemaker:InvokeEndpoint",
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        [
                                            "arn:",
                                            {"Ref": "AWS::Partition"},
                                            ":sagemaker:eu-west-1:111111111111:endpoint/"
                                            "ranker-prod",
                                        ],
                                    ]
                                },
                            }
                        )
                    ]
                }
            )
        },
    )


# --- catalog checks -------------------------------------------------------------------------


def test_provisional_type_warns_and_waives_the_lint_enum_check(inf3) -> None:
    stack, template = inf3
    warnings = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("provisional")
    )
    assert any(
        PROVISIONAL_WARNING_ID in json.dumps(w.entry.data)
        and "ml.inf3.xlarge is provisional" in json.dumps(w.entry.data)
        for w in warnings
    )
    # The DLC's Neuron 2.27.1 meets the 2.27.0 assumed for inf3: no SDK warning.
    sdk = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(SDK_WARNING_ID))
    assert not sdk
    template.has_resource(
        "AWS::SageMaker::EndpointConfig",
        {"Metadata": Match.object_like({"cfn-lint": {"config": {"ignore_checks": ["E3030"]}}})},
    )


def test_image_older_than_the_family_minimum_warns() -> None:
    c = load_compatibility()
    dlc = c.data.images["pytorch-inference-neuronx"].model_copy(update={"neuron_sdk": "2.21.0"})
    compat = Compatibility(
        c.data.model_copy(update={"images": {**c.data.images, "pytorch-inference-neuronx": dlc}})
    )
    stack, bucket = _stack()
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf3.xlarge",
        model_data=ModelData.from_bucket(bucket, "ranker/model.tar.gz"),
        rollout=EndpointRollout.all_at_once(),
        compatibility=compat,
    )
    sdk = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("Neuron SDK 2.21.0, older than the 2.27.0 assumed for inf3")
    )
    assert sdk and all(SDK_WARNING_ID in json.dumps(w.entry.data) for w in sdk)


def test_listed_type_keeps_the_lint_check(default) -> None:
    _, template = default
    config = next(iter(template.find_resources("AWS::SageMaker::EndpointConfig").values()))
    assert "cfn-lint" not in config.get("Metadata", {})


def test_every_ga_sagemaker_neuron_type_is_known_to_cfn_lint() -> None:
    """The E3030 waiver is only for provisional types: GA ones must be in cfn-lint's list."""
    cfnlint = pytest.importorskip("cfnlint")
    from pathlib import Path

    from inf3kit.catalog import load_catalog

    enum_file = (
        Path(cfnlint.__file__).parent
        / "data/schemas/extensions/aws_sagemaker_hosting/instancetype_enum.json"
    )
    listed = set(json.loads(enum_file.read_text())["us-east-1"]["enum"])
    ga = {
        t.name
        for t in load_catalog().types(platform="sagemaker")
        if t.is_neuron and not t.provisional
    }
    assert ga - listed == set()


def test_runtime_env_names_follow_the_runtime_contract() -> None:
    # The runtime reads field `x` of Settings from INF3KIT_X.
    read = {f"INF3KIT_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    assert set(RUNTIME_VARIABLES) <= read
    every = RuntimeSettings(
        max_batch_size=1,
        max_delay=Duration.millis(1),
        queue_size=1,
        request_timeout=Duration.millis(1),
        max_body_bytes=1024,
    )
    assert list(every.environment()) == list(RUNTIME_VARIABLES)
    # INF3KIT_WORKERS is not a prop: the runtime ignores it on Neuron (one replica per
    # neuron_cores_per_replica slice), and every endpoint type is Neuron.
    assert "workers" not in inspect.signature(NeuronEndpoint).parameters
    assert "workers" not in {f.name for f in dataclasses.fields(RuntimeSettings)}


def test_runtime_build_context_has_the_dockerfile_source_and_requirements() -> None:
    context = stage_runtime_context()
    dockerfile = (context / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert 'ENTRYPOINT ["inf3kit"]' in dockerfile and 'CMD ["serve"]' in dockerfile
    assert (context / "inf3kit" / "cli" / "__init__.py").is_file()
    assert not list(context.rglob("__pycache__"))
    reqs = (context / "requirements.txt").read_text().split()
    assert reqs == requirements() and any(r.startswith("httptools") for r in reqs)
    assert not any(r.startswith("torch") or r.startswith("aws-cdk") for r in reqs)
    assert stage_runtime_context() == context


def test_runtime_image_builds_from_the_public_neuron_dlc(default) -> None:
    endpoint, _ = default
    stack = cdk.Stack.of(endpoint)
    assembly = stack.node.root.synth()  # type: ignore[attr-defined]
    manifest = json.loads(
        (__import__("pathlib").Path(assembly.directory) / "Test.assets.json").read_text()
    )
    images = list(manifest["dockerImages"].values())
    assert images[0]["source"]["dockerBuildArgs"] == {
        "BASE_IMAGE": "public.ecr.aws/neuron/pytorch-inference-neuronx:"
        "2.9.0-neuronx-py312-sdk2.27.1-ubuntu24.04"
    }
    assert images[0]["source"]["platform"] == "linux/amd64"


def test_dlc_entries_match_the_sagemaker_sdk_registry() -> None:
    """Where the sagemaker SDK lists an image, the matrix must agree with it (offline lookup)."""
    from sagemaker.core import image_uris

    compat = load_compatibility()
    for name, version in (("djl-neuronx", "0.29.0"), ("huggingface-llm-neuronx", "0.3.0")):
        entry = compat.data.images[name]
        uri = image_uris.retrieve(
            name, region="us-east-1", version=version, instance_type="ml.inf2.xlarge"
        )
        assert uri.endswith(f"/{entry.repository}:{entry.tag}"), uri


# --- validation: one exact message per rule -------------------------------------------------


def problems(**overrides: Any) -> list[str]:
    stack, bucket = _stack()
    props: dict[str, Any] = {
        "instance_type": "ml.inf2.xlarge",
        "model_data": ModelData.from_bucket(bucket, "m/model.tar.gz"),
    }
    props.update(overrides)
    with pytest.raises(ConstructError) as info:
        NeuronEndpoint(stack, "Endpoint", **props)
    lines = str(info.value).split("\n")
    assert lines[0].startswith("NeuronEndpoint Endpoint: ")
    assert info.value.path == "Test/Endpoint"
    assert info.value.problems == [line.removeprefix("  - ") for line in lines[1:]]
    assert not stack.node.find_child("Endpoint").node.children  # nothing created before
    return [line.removeprefix("  - ") for line in lines[1:]]


def test_fails_when_instance_type_is_unknown() -> None:
    assert problems(instance_type="ml.inf2.xlarg") == [
        "instance_type: unknown instance type 'ml.inf2.xlarg'; did you mean 'ml.inf2.xlarge' or "
        "'ml.inf2.8xlarge' or 'ml.inf2.48xlarge'? Fix: use a type listed by `inf3kit catalog`, "
        "or add it in a catalog override file"
    ]


def test_fails_when_instance_type_is_an_ec2_type() -> None:
    assert problems(instance_type="inf2.xlarge") == [
        "instance_type: 'inf2.xlarge' is an EC2 type; endpoints take SageMaker types. "
        "Fix: use 'ml.inf2.xlarge'"
    ]


def test_fails_when_instance_type_has_no_neuron_accelerator() -> None:
    assert problems(instance_type="ml.g5.xlarge") == [
        "instance_type: 'ml.g5.xlarge' is a GPU type (nvidia-a10g), listed only as a cost "
        "baseline; inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. "
        "'ml.inf2.xlarge'"
    ]


def test_fails_when_image_does_not_support_the_family() -> None:
    assert problems(instance_type="ml.inf3.xlarge", image=EndpointImage.dlc("djl-neuronx")) == [
        "image: serving image 'djl-neuronx' does not support instance family 'inf3' "
        "(ml.inf3.xlarge); it supports inf2, trn1. Fix: pick an instance type of those families, "
        "or images that support inf3: inf3kit-runtime, pytorch-inference-neuronx."
    ]


def test_fails_when_dlc_name_is_unknown() -> None:
    assert problems(image=EndpointImage.dlc("tgi")) == [
        "image: 'tgi' is not a deep learning container in the compatibility matrix; known: "
        "djl-neuronx, huggingface-llm-neuronx, pytorch-inference-neuron, "
        "pytorch-inference-neuronx. Fix: use one of those, EndpointImage.from_uri(...), or add it "
        "under `compatibility.images` in a catalog override file"
    ]


def test_fails_when_image_uri_is_not_ecr() -> None:
    assert problems(image=EndpointImage.from_uri("docker.io/library/nginx:latest")) == [
        "image: got 'docker.io/library/nginx:latest', which is not an ECR image URI; SageMaker "
        "pulls only from ECR. Fix: push it to ECR and pass "
        "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG"
    ]


def test_fails_when_runtime_base_image_is_missing_from_the_matrix() -> None:
    c = load_compatibility()
    images = {k: v for k, v in c.data.images.items() if k != "pytorch-inference-neuronx"}
    compat = Compatibility(c.data.model_copy(update={"images": images}))
    assert problems(compatibility=compat) == [
        "image: the matrix entry 'inf3kit-runtime' names no base image with a repository and "
        "tag. Fix: set `base:` to a DLC entry that has both"
    ]


def test_fails_when_family_has_no_support_entry() -> None:
    c = load_compatibility()
    families = {k: v for k, v in c.data.families.items() if k != "inf2"}
    compat = Compatibility(c.data.model_copy(update={"families": families}))
    assert problems(compatibility=compat) == [
        "instance_type: instance family 'inf2' (from 'ml.inf2.xlarge') has no Neuron support "
        "entry; supported families: inf1, inf3, trn1, trn2, trn3. Add it to your catalog "
        "override file under `compatibility.families`."
    ]


def test_fails_when_min_capacity_is_zero() -> None:
    assert problems(min_capacity=0) == [
        "min_capacity: got 0, must be >= 1 (a real-time endpoint always runs an instance). "
        "Fix: use 1 or more; delete the stack to stop paying"
    ]


def test_fails_when_max_is_below_min() -> None:
    assert problems(min_capacity=3, max_capacity=2) == [
        "min_capacity (3) is greater than max_capacity (2). Fix: set min_capacity <= "
        "max_capacity, e.g. min_capacity 2 or max_capacity 3"
    ]


def test_fails_when_initial_is_outside_min_max() -> None:
    assert problems(initial_capacity=5) == [
        "initial_capacity (5) is outside min_capacity..max_capacity (1..2). Fix: choose a "
        "count within the range, or leave initial_capacity unset"
    ]


def test_fails_when_invocations_target_is_zero() -> None:
    assert problems(scaling=EndpointScaling(invocations_per_instance=0)) == [
        "scaling.invocations_per_instance: got 0, must be >= 1. Fix: use the requests per "
        "minute one instance serves at your latency target"
    ]


def test_fails_when_a_runtime_setting_is_zero() -> None:
    runtime = RuntimeSettings(
        max_batch_size=0, queue_size=0, max_body_bytes=100, request_timeout=Duration.millis(0)
    )
    assert problems(runtime=runtime) == [
        "runtime.max_batch_size: got 0, must be >= 1. Fix: use 1 or more, or leave it unset",
        "runtime.queue_size: got 0, must be >= 1. Fix: use 1 or more, or leave it unset",
        "runtime.max_body_bytes: got 100, must be >= 1024. Fix: use 1024 or more, or leave it "
        "unset",
        "runtime.request_timeout: got 0 ms, must be a whole number of milliseconds >= 1. "
        "Fix: use Duration.millis(n) with a whole n >= 1, or leave it unset",
    ]


def test_fails_when_schedule_is_not_an_expression() -> None:
    schedule = ScaleDownSchedule(scale_down="0 20 * * *", scale_up="cron(0 6 ? * MON-FRI *)")
    assert problems(scaling=EndpointScaling(schedule=schedule)) == [
        "scaling.schedule.scale_down: got '0 20 * * *', not a cron expression. Fix: write "
        "cron(MIN HOUR DAY MONTH WEEKDAY YEAR), e.g. 'cron(0 20 ? * MON-FRI *)'"
    ]


def test_fails_when_the_schedule_time_zone_is_not_iana() -> None:
    """Application Auto Scaling refuses it at deploy time; synthesis used to accept it."""
    schedule = ScaleDownSchedule(
        scale_down="cron(0 20 ? * MON-FRI *)",
        scale_up="cron(0 6 ? * MON-FRI *)",
        time_zone="Berlin",
    )
    assert problems(scaling=EndpointScaling(schedule=schedule)) == [
        "scaling.schedule.time_zone: got 'Berlin', not an IANA time zone. Fix: use a name "
        "such as 'Europe/Berlin' or 'America/New_York', or UTC"
    ]


def test_fails_when_scale_down_count_exceeds_max() -> None:
    schedule = ScaleDownSchedule(
        scale_down="cron(0 20 ? * MON-FRI *)",
        scale_up="cron(0 6 ? * MON-FRI *)",
        capacity_during_scale_down=3,
    )
    assert problems(scaling=EndpointScaling(schedule=schedule)) == [
        "scaling.schedule.capacity_during_scale_down: got 3, outside 1..2 (max_capacity). "
        "Fix: use a count in that range"
    ]


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        (
            EndpointRollout.canary(60),
            "rollout.canary_percent: got 60, SageMaker allows 1..50 percent of capacity. "
            "Fix: use a value in 1..50",
        ),
        (
            EndpointRollout.linear(5),
            "rollout.linear_step_percent: got 5, SageMaker allows 10..50 percent of capacity. "
            "Fix: use a value in 10..50",
        ),
        (
            EndpointRollout.rolling(2),
            "rollout.rolling_batch_percent: got 2, SageMaker allows 5..50 percent of capacity. "
            "Fix: use a value in 5..50",
        ),
        (
            EndpointRollout.canary(bake_time=Duration.hours(2)),
            "rollout.bake_time: got 7200 s, SageMaker allows 0..3600 s. Fix: bake for an hour "
            "at most; add steps (linear) to watch longer",
        ),
        (
            EndpointRollout(termination_wait=Duration.hours(2)),
            "rollout.termination_wait: got 7200 s, SageMaker allows 0..3600 s. "
            "Fix: use an hour at most",
        ),
        (
            EndpointRollout(timeout=Duration.minutes(5)),
            "rollout.timeout: got 300 s, SageMaker allows 600..14400 s. Fix: use 10 minutes to "
            "4 hours, or leave it unset",
        ),
    ],
)
def test_fails_when_rollout_is_outside_sagemaker_limits(
    rollout: EndpointRollout, message: str
) -> None:
    assert problems(rollout=rollout, min_capacity=2, max_capacity=4) == [message]


@pytest.mark.parametrize("strategy", ["canary", "linear", "rolling"])
def test_fails_when_a_share_of_one_instance_would_be_the_whole_fleet(strategy: str) -> None:
    assert problems(rollout=EndpointRollout(strategy=strategy)) == [  # type: ignore[arg-type]
        f"rollout: {strategy} shifts a share of at most 50% of the instances, but min_capacity "
        "is 1, so the smallest share is the whole fleet. Fix: set min_capacity to 2 or more, "
        "or use strategy all_at_once (still blue/green, baked and rolled back on alarms)"
    ]


def test_fails_when_guardrails_are_asked_of_inf1() -> None:
    found = problems(
        instance_type="ml.inf1.xlarge",
        image=EndpointImage.dlc("pytorch-inference-neuron"),
        min_capacity=2,
        max_capacity=2,
        rollout=EndpointRollout.canary(),
    )
    assert found == [
        "rollout: canary on ml.inf1.xlarge: SageMaker deployment guardrails do not support "
        "Inf1 endpoints: an update falls back to blue/green all at once with no final baking "
        'period (SageMaker developer guide, deployment guardrails "Exclusions"). '
        "Fix: use strategy all_at_once, which is what SageMaker would do anyway"
    ]


def test_fails_when_startup_or_download_timeout_is_out_of_range() -> None:
    assert problems(startup_timeout=Duration.seconds(30), download_timeout=Duration.hours(2)) == [
        "startup_timeout: got 30 s, SageMaker allows 60..3600 s. Fix: use 1 minute to 1 hour",
        "download_timeout: got 7200 s, SageMaker allows 60..3600 s. Fix: use 1 minute to 1 hour",
    ]


def test_fails_when_volume_size_is_given_for_local_storage() -> None:
    assert problems(instance_type="ml.trn1.2xlarge", volume_size=Size.gibibytes(100)) == [
        "volume_size: ml.trn1.2xlarge has local NVMe storage and SageMaker takes no volume "
        "size for it. Fix: leave volume_size unset"
    ]


def test_fails_when_volume_size_is_out_of_range() -> None:
    assert problems(volume_size=Size.gibibytes(1000)) == [
        "volume_size: got 1000 GiB, SageMaker allows 1..512 GiB. Fix: use a size in that range"
    ]


def test_fails_when_capture_percent_is_zero() -> None:
    other = cdk.Stack(cdk.App(), "Other")
    bucket = s3.Bucket.from_bucket_name(other, "Capture", "capture-bucket")
    assert problems(data_capture=DataCapture(bucket, percent=0)) == [
        "data_capture.percent: got 0, must be 1..100. Fix: use a percentage of requests to sample"
    ]


def test_fails_when_subnets_are_given_without_a_vpc() -> None:
    selection = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    assert problems(vpc_subnets=selection) == [
        "vpc_subnets/security_groups: given without a vpc. Fix: pass vpc=..., or drop them"
    ]


def test_fails_when_endpoint_name_is_not_allowed() -> None:
    assert problems(endpoint_name="my_endpoint") == [
        "endpoint_name: got 'my_endpoint'; SageMaker allows 1-63 letters, digits and '-', "
        "starting and ending with a letter or digit. Fix: rename it"
    ]


def test_reports_every_problem_at_once() -> None:
    found = problems(
        min_capacity=3,
        max_capacity=2,
        scaling=EndpointScaling(invocations_per_instance=0),
        startup_timeout=Duration.seconds(1),
        endpoint_name="bad_name",
    )
    assert [p.split(":")[0].split(" ")[0] for p in found] == [
        "min_capacity",
        "scaling.invocations_per_instance",
        "startup_timeout",
        "endpoint_name",
    ]


def test_unresolved_tokens_are_not_validated() -> None:
    stack, bucket = _stack()
    count = cdk.CfnParameter(stack, "Target", type="Number").value_as_number
    NeuronEndpoint(
        stack,
        "Endpoint",
        instance_type="ml.inf2.xlarge",
        model_data=ModelData.from_bucket(bucket, "m/model.tar.gz"),
        endpoint_name=cdk.CfnParameter(stack, "Name").value_as_string,
        image=EndpointImage.from_uri(cdk.CfnParameter(stack, "Image").value_as_string),
        scaling=EndpointScaling(invocations_per_instance=count),
        runtime=RuntimeSettings(max_batch_size=count),
    )
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": {"Ref": "Name"}})
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": {"Ref": "Image"},
                "Environment": {"INF3KIT_MAX_BATCH_SIZE": {"Ref": "Target"}},
            }
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {"TargetValue": {"Ref": "Target"}}
            )
        },
    )
