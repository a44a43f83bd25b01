"""What an endpoint's execution role may touch, its log group, VPC placement and capture.

Each function adds one concern's grants and children to the endpoint; together they keep the
role to one model object (or one weights prefix), one image, this endpoint's logs and its own
capture prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from inf3kit.constructs.kms_policies import allow_log_group
from inf3kit.constructs.nag import acknowledge, skip_checkov

if TYPE_CHECKING:
    from inf3kit.constructs.endpoint_managed import ManagedEndpoint

DEFAULT_CAPTURE_PERCENT = 10


class ModelDataSource(Protocol):
    """Where the bundle archive is: a ModelBundle, or ModelData.from_bucket(...)."""

    @property
    def bucket(self) -> s3.IBucket: ...

    @property
    def object_key(self) -> str: ...


@dataclass(frozen=True)
class ModelData:
    """A bundle `.tar.gz` already in a bucket (ModelBundle works too)."""

    bucket: s3.IBucket
    object_key: str

    @staticmethod
    def from_bucket(bucket: s3.IBucket, key: str) -> ModelData:
        return ModelData(bucket, key)


@dataclass(frozen=True)
class DataCapture:
    """Sample `percent` of requests and responses into `bucket`, under `data-capture/<name>/`."""

    bucket: s3.IBucket
    percent: int = DEFAULT_CAPTURE_PERCENT


def log_group_name(endpoint: ManagedEndpoint) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint.endpoint_name}"


def log_group_arn(endpoint: ManagedEndpoint) -> str:
    return Stack.of(endpoint).format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name(endpoint),
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def add_log_group(endpoint: ManagedEndpoint, retention: logs.RetentionDays) -> logs.LogGroup:
    """Created up front, so it has a retention and our key rather than SageMaker's defaults."""
    key = endpoint.key if isinstance(endpoint.key, kms.Key) else None
    if key is not None:
        allow_log_group(key, log_group_name(endpoint))
    group = logs.LogGroup(
        endpoint,
        "Logs",
        log_group_name=log_group_name(endpoint),
        retention=retention,
        encryption_key=key,
        # Kept on update and delete for the record, but removed when the create that made
        # it rolls back: its name is fixed, so a kept group would fail every retry.
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )
    if key is None:
        skip_checkov(
            group.node.default_child,  # type: ignore[arg-type]
            "CKV_AWS_158",
            "The endpoint key was passed in (imported), so its key policy cannot be extended "
            "for CloudWatch Logs; the log group uses the service's default encryption.",
        )
    return group


def grant_model_object(endpoint: ManagedEndpoint, model_data: ModelDataSource) -> None:
    """Read the one model object (a bundle archive), decrypting it where its bucket has a key."""
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadModelData",
            actions=["s3:GetObject"],
            resources=[model_data.bucket.arn_for_objects(model_data.object_key)],
        )
    )
    _grant_decrypt(endpoint, model_data.bucket, "DecryptModelData")


def grant_model_prefix(
    endpoint: ManagedEndpoint, bucket: s3.IBucket, prefix: str, sid: str
) -> None:
    """Read every object under `prefix` (an uncompressed model directory), and list only it.

    SageMaker lists the prefix to download an S3Prefix model data source (SageMaker API
    reference, S3ModelDataSource; "CreateModel API: Execution Role Permissions").
    """
    objects = bucket.arn_for_objects(f"{prefix}*")
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(sid=f"Read{sid}", actions=["s3:GetObject"], resources=[objects])
    )
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"List{sid}",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )
    _grant_decrypt(endpoint, bucket, f"Decrypt{sid}")
    acknowledge(
        endpoint.role,
        f"AwsSolutions-IAM5[Resource::{_nag_resource(endpoint, objects)}]",
        "An uncompressed model is a directory of objects (config, tokenizer, weight shards, "
        "compiled graphs) whose names the engine chooses; the role may read only under this "
        "one prefix, and list only it.",
    )


def _grant_decrypt(endpoint: ManagedEndpoint, bucket: s3.IBucket, sid: str) -> None:
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=sid,
            actions=["kms:Decrypt"],
            resources=_keys(endpoint.key, bucket),
        )
    )


def grant_logs_and_metrics(endpoint: ManagedEndpoint) -> None:
    """Write this endpoint's logs and its own metrics."""
    stmt = endpoint.role.add_to_principal_policy
    stmt(
        iam.PolicyStatement(
            sid="WriteLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            # CreateLogGroup names the group itself, the stream actions its streams.
            resources=[log_group_arn(endpoint), endpoint.log_group.log_group_arn],
        )
    )
    stmt(
        iam.PolicyStatement(
            sid="PutMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "inf3kit*"]}},
        )
    )
    acknowledge(
        endpoint.role,
        "AwsSolutions-IAM5[Resource::*]",
        "Resource '*' only for ecr:GetAuthorizationToken, cloudwatch:PutMetricData and, with "
        "a VPC, the EC2 network-interface actions SageMaker needs, which IAM offers no "
        "resource-level permissions for (the interface actions carry an ec2:Vpc condition; "
        "PutMetricData a cloudwatch:namespace condition). Every other statement names one "
        "object, repository, key or log group.",
    )


def vpc_config(
    endpoint: ManagedEndpoint,
    vpc: ec2.IVpc,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: list[ec2.ISecurityGroup] | None,
) -> sagemaker.CfnModel.VpcConfigProperty:
    """Let the role attach the model to `vpc`, and place it in the selected subnets."""
    _grant_vpc_access(endpoint, vpc)
    endpoint.security_groups = security_groups or [_security_group(endpoint, vpc)]
    selection = vpc_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
    subnets = vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    )
    return sagemaker.CfnModel.VpcConfigProperty(
        security_group_ids=[sg.security_group_id for sg in endpoint.security_groups],
        subnets=subnets.subnet_ids,
    )


def _grant_vpc_access(endpoint: ManagedEndpoint, vpc: ec2.IVpc) -> None:
    """SageMaker attaches the model to the VPC with network interfaces made by this role.

    The actions are those the SageMaker developer guide lists for a model with VpcConfig
    ("CreateModel API: Execution Role Permissions"). The Describe actions have no resource
    level; the interface actions are held to this VPC where the request carries it.
    """
    stmt = endpoint.role.add_to_principal_policy
    stmt(
        iam.PolicyStatement(
            sid="DescribeVpcForInterfaces",
            actions=[
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            resources=["*"],
        )
    )
    vpc_arn = Stack.of(endpoint).format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
    stmt(
        iam.PolicyStatement(
            sid="ManageVpcInterfaces",
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            resources=["*"],
            conditions={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
        )
    )


def _security_group(endpoint: ManagedEndpoint, vpc: ec2.IVpc) -> ec2.SecurityGroup:
    group = ec2.SecurityGroup(
        endpoint,
        "SecurityGroup",
        vpc=vpc,
        description="inf3kit endpoint: no inbound, HTTPS out for model and image downloads",
        allow_all_outbound=False,
    )
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")
    return group


def data_capture_config(
    endpoint: ManagedEndpoint, capture: DataCapture
) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
    """Let the role write the endpoint's capture prefix, and configure the sampling."""
    prefix = f"data-capture/{endpoint.endpoint_name}"
    capture_objects = capture.bucket.arn_for_objects(f"{prefix}/*")
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteDataCapture",
            actions=["s3:PutObject"],
            resources=[capture_objects],
        )
    )
    endpoint.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="EncryptDataCapture",
            actions=["kms:Encrypt", "kms:GenerateDataKey"],
            resources=_keys(endpoint.key, capture.bucket),
        )
    )
    acknowledge(
        endpoint.role,
        f"AwsSolutions-IAM5[Resource::{_nag_resource(endpoint, capture_objects)}]",
        "SageMaker names captured-data objects by date and instance at run time; the role may "
        "only put objects under this endpoint's own data-capture prefix.",
    )
    config = sagemaker.CfnEndpointConfig
    return config.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=capture.percent,
        destination_s3_uri=capture.bucket.s3_url_for_object(prefix),
        kms_key_id=endpoint.key.key_arn,
        capture_options=[
            config.CaptureOptionProperty(capture_mode="Input"),
            config.CaptureOptionProperty(capture_mode="Output"),
        ],
        capture_content_type_header=config.CaptureContentTypeHeaderProperty(
            json_content_types=["application/json"]
        ),
    )


def _keys(key: kms.IKey, bucket: s3.IBucket) -> list[str]:
    """The endpoint's key, and the bucket's when it has one."""
    keys = [key.key_arn]
    if bucket.encryption_key is not None:
        keys.append(bucket.encryption_key.key_arn)
    return keys


def _nag_resource(scope: Construct, value: str) -> str:
    """A resource as cdk-nag spells it in finding ids: Ref -> <Id>, Fn::GetAtt -> <Id.Attr>."""

    def flat(node: object) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return f"<{'.'.join(node['Fn::GetAtt'])}>"
        if isinstance(node, dict) and "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return str(sep).join(flat(p) for p in parts)
        return str(node)

    return flat(Stack.of(scope).resolve(value))
