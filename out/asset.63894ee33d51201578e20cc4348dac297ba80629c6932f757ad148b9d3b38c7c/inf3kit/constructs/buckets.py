"""The one definition of a log bucket, so every construct's logs get the same secure settings."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from inf3kit.constructs.nag import acknowledge, skip_checkov


def log_bucket(
    scope: Construct,
    id: str,
    *,
    why_unlogged: str,
    key: kms.IKey | None = None,
    keep_days: int = 365,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    object_ownership: s3.ObjectOwnership = s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
) -> s3.Bucket:
    """A private, SSL-only, versioned bucket for logs, whose own access is not logged.

    :param why_unlogged: recorded for cdk-nag (S1) and checkov (CKV_AWS_18).
    :param key: encrypts the bucket. Default: SSE-S3, the only encryption S3 server access
        logs and load balancer logs can be delivered to.
    :param keep_days: how long log objects live; older versions go after 30 days.
    :param object_ownership: Default: ACLs off. S3 server access log targets need
        BUCKET_OWNER_PREFERRED, since the CDK delivers those logs through an ACL.
    """
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        bucket_key_enabled=True if key else None,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=object_ownership,
        removal_policy=removal_policy,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(keep_days),
                noncurrent_version_expiration=Duration.days(30),
            )
        ],
    )
    acknowledge(bucket, "AwsSolutions-S1", why_unlogged)
    skip_checkov(bucket.node.default_child, "CKV_AWS_18", why_unlogged)  # type: ignore[arg-type]
    return bucket
