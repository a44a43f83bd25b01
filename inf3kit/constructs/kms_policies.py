"""Key policy statements shared by constructs that put KMS-encrypted volumes on EC2."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from inf3kit.constructs.nag import skip_checkov

_EBS_CHECK = "CKV_AWS_33"


def allow_ebs_in_this_account(key: kms.IKey) -> None:
    """Let any principal of this account use `key`, but only through EC2 in this region.

    EBS calls KMS as the launching principal: for fleet launches that is the Auto Scaling
    service-linked role, for AMI builds Image Builder's. Naming those roles fails in accounts
    where they do not exist yet, so the statement mirrors the AWS-managed aws/ebs key instead.
    Added once per key however many constructs share it; a no-op for imported keys, whose
    owner must grant it.
    """
    if not isinstance(key, kms.Key):
        return
    resource = key.node.default_child
    if not isinstance(resource, CfnResource):
        return
    skips = (resource.get_metadata("checkov") or {}).get("skip", [])
    if any(s.get("id") == _EBS_CHECK for s in skips):
        return
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="EbsThroughEc2InThisAccount",
            principals=[iam.AnyPrincipal()],
            actions=[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
                "kms:CreateGrant",
            ],
            resources=["*"],
            conditions={
                "StringEquals": {
                    "kms:CallerAccount": Aws.ACCOUNT_ID,
                    "kms:ViaService": f"ec2.{Aws.REGION}.amazonaws.com",
                }
            },
        )
    )
    skip_checkov(
        resource,
        _EBS_CHECK,
        "The '*' principal is limited by kms:CallerAccount (this account) and kms:ViaService "
        "(EC2 in this region), like the aws/ebs key, so the Auto Scaling and Image Builder "
        "service-linked roles can use encrypted volumes and AMIs before those roles exist.",
    )


def allow_log_group(key: kms.IKey, log_group_name: str, *, sid: str | None = None) -> None:
    """Let CloudWatch Logs in this region use `key` for the log groups `log_group_name` matches.

    The encryption-context condition holds the key to those groups (a '*' in the name matches
    several), so no other log group of the account can use it. The ARN is built here, in the
    form CloudWatch Logs puts in the context (`...:log-group:NAME`): a `log-group/NAME` ARN
    never matches, and creating the encrypted group fails at deploy.
    """
    log_group_arn = Stack.of(key).format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{Stack.of(key).region}.amazonaws.com")],
            actions=[
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
        )
    )
