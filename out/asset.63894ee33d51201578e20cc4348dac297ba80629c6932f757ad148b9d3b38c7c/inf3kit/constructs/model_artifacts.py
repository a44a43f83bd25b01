"""ModelArtifacts: the encrypted bucket and KMS key a service keeps its artifacts in."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from inf3kit.constructs.buckets import log_bucket


class ModelArtifacts(Construct):
    """A KMS key and a private, SSL-only, versioned bucket with server access logs.

    Endpoints and fleets write data capture, load balancer logs and model artifacts here, so the
    secure settings live in one place instead of being repeated per resource.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Create the artifact store.

        :param key: encrypts the bucket. Default: a key is created with yearly rotation.
        :param removal_policy: what happens to the buckets and key on stack deletion.
            Default: RETAIN, so deleting a stack never deletes model artifacts or logs.
        """
        super().__init__(scope, id)
        self.key: kms.IKey = key or kms.Key(
            self,
            "Key",
            description="inf3kit model artifacts",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.access_logs = log_bucket(
            self,
            "AccessLogs",
            why_unlogged="This is the server access log bucket; logging it into itself would loop.",
            removal_policy=removal_policy,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        )
        self.bucket = s3.Bucket(
            self,
            "Resource",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=removal_policy,
        )
