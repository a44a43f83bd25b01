"""Where Image Builder builds and tests: the instance's role, network, logs and notifications."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from inf3kit.constructs.ami_components import resource_name
from inf3kit.constructs.nag import acknowledge
from inf3kit.constructs.runtime_install import RuntimeWheel


def add_build_role(
    scope: Construct, logs_bucket: s3.IBucket, logs_prefix: str, wheel: RuntimeWheel | None
) -> iam.Role:
    """A role that may write logs under `logs_prefix` only and read `wheel` only."""
    role = iam.Role(
        scope,
        "InstanceRole",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        description="inf3kit AMI build instance: Image Builder agent, SSM, its own logs",
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
            iam.ManagedPolicy.from_aws_managed_policy_name("EC2InstanceProfileForImageBuilder"),
        ],
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteBuildLogs",
            actions=["s3:PutObject"],
            resources=[logs_bucket.arn_for_objects(f"{logs_prefix.rstrip('/')}/*")],
        )
    )
    if logs_bucket.encryption_key is not None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptBuildLogs",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[logs_bucket.encryption_key.key_arn],
            )
        )
    if wheel is not None:
        wheel.grant_read(role)
    return role


def acknowledge_build_role(role: iam.Role, logs_bucket: s3.IBucket, logs_prefix: str) -> None:
    """Say why the AWS-managed policies and the log-prefix wildcard are the minimum."""
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "AmazonSSMManagedInstanceCore]",
        "Image Builder drives the build instance through the SSM agent (no SSH, no inbound "
        "port); AmazonSSMManagedInstanceCore is the AWS-maintained minimum for that agent.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "EC2InstanceProfileForImageBuilder]",
        "EC2InstanceProfileForImageBuilder is the AWS-maintained minimum for the Image "
        "Builder agent (read components, write its logs) and changes with the service.",
    )
    bucket = logs_bucket.node.default_child
    if isinstance(bucket, CfnResource):  # an imported bucket's ARN is a different finding
        logical_id = Stack.of(bucket).get_logical_id(bucket)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{logs_prefix.rstrip('/')}/*]",
            "Image Builder names each build's log objects itself; the role may only put "
            "objects under the pipeline's log prefix of this one bucket.",
        )


def add_build_infrastructure(
    scope: Construct,
    *,
    vpc: ec2.IVpc | None,
    instance_type: str,
    instance_profile: iam.CfnInstanceProfile,
    logs_bucket: s3.IBucket,
    logs_prefix: str,
    notification_topic: sns.ITopic | None,
) -> tuple[ec2.SecurityGroup | None, imagebuilder.CfnInfrastructureConfiguration]:
    """The build instances' configuration, in `vpc`'s first private subnet with no inbound."""
    security_group: ec2.SecurityGroup | None = None
    subnet_id: str | None = None
    if vpc is not None:
        security_group = ec2.SecurityGroup(
            scope,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="inf3kit AMI build: no inbound; outbound for apt, pip, S3 and SSM",
        )
        subnet_id = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids[0]
    infrastructure = imagebuilder.CfnInfrastructureConfiguration(
        scope,
        "Infrastructure",
        name=resource_name(scope, "Infrastructure"),
        description="inf3kit AMI build and test instances",
        instance_profile_name=instance_profile.ref,
        instance_types=[instance_type],
        instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
            http_tokens="required", http_put_response_hop_limit=1
        ),
        security_group_ids=[security_group.security_group_id]
        if security_group is not None
        else None,
        subnet_id=subnet_id,
        logging=imagebuilder.CfnInfrastructureConfiguration.LoggingProperty(
            s3_logs=imagebuilder.CfnInfrastructureConfiguration.S3LogsProperty(
                s3_bucket_name=logs_bucket.bucket_name,
                s3_key_prefix=logs_prefix.rstrip("/"),
            )
        ),
        sns_topic_arn=notification_topic.topic_arn if notification_topic else None,
        terminate_instance_on_failure=True,
    )
    return security_group, infrastructure
