"""What every endpoint inf3kit creates shares: key, role, logs, config, endpoint, alarms, scaling.

`NeuronEndpoint` (compiled bundles on inf3kit's runtime) and `LlmEndpoint` (LLMs on an engine
container) differ only in the model they serve and its scaling signal; the rest is built here,
in the same order, so both get the same least-privilege role, KMS, guarded rollout and
autoscaling. A subclass calls `_add_role`, creates its model (`add_model`), then `_add_serving`.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration, Names, RemovalPolicy, Size
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker

from inf3kit.catalog import Catalog
from inf3kit.constructs.endpoint_access import add_log_group, grant_logs_and_metrics
from inf3kit.constructs.endpoint_base import VARIANT_NAME, EndpointBase
from inf3kit.constructs.endpoint_config import add_endpoint_config
from inf3kit.constructs.endpoint_rollout import (
    EndpointRollout,
    add_rollback_alarms,
    deployment_config,
)
from inf3kit.constructs.endpoint_scaling import (
    ConcurrencyScaling,
    EndpointScaling,
    add_autoscaling,
)


class ManagedEndpoint(EndpointBase):
    """An endpoint this stack creates: the children and attributes its subclasses share."""

    instance_type: str
    key: kms.IKey
    role: iam.Role
    log_group: logs.LogGroup
    security_groups: list[ec2.ISecurityGroup]
    model: sagemaker.CfnModel
    endpoint_config: sagemaker.CfnEndpointConfig
    endpoint: sagemaker.CfnEndpoint
    alarms: list[cloudwatch.IAlarm]
    scalable_target: appscaling.ScalableTarget | None

    def _add_role(
        self,
        *,
        instance_type: str,
        endpoint_name: str | None,
        key: kms.IKey | None,
        log_retention: logs.RetentionDays,
        role_description: str,
        grant_model: Callable[[], None],
    ) -> None:
        """Names, the key, the execution role and its log group; `grant_model` lets the role
        read the model, then the role may write its logs and metrics."""
        self.instance_type = instance_type
        self.variant_name = VARIANT_NAME
        self.endpoint_name = endpoint_name or Names.unique_resource_name(
            self, max_length=63, separator="-"
        )
        self.key = key or kms.Key(
            self,
            "Key",
            description=f"inf3kit endpoint {self.node.path}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=role_description,
        )
        self.log_group = add_log_group(self, log_retention)
        grant_model()
        grant_logs_and_metrics(self)
        self.security_groups = []

    def _add_serving(
        self,
        *,
        catalog: Catalog,
        initial: int,
        startup_timeout: Duration,
        download_timeout: Duration,
        volume_size: Size | None,
        capture: sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None,
        latency_threshold: Duration,
        rollback_alarms: list[cloudwatch.IAlarm] | None,
        rollout: EndpointRollout,
        min_capacity: int,
        max_capacity: int,
        scaling: EndpointScaling | ConcurrencyScaling,
        scaling_target: int,
    ) -> None:
        """The config, the rollback alarms, the endpoint and its autoscaling, after the model."""
        self.endpoint_config = add_endpoint_config(
            self,
            catalog,
            initial=initial,
            startup_timeout=startup_timeout,
            download_timeout=download_timeout,
            volume_size=volume_size,
            capture=capture,
        )
        self.alarms = add_rollback_alarms(self, latency_threshold)
        self.alarms += rollback_alarms or []
        self.endpoint = self._add_endpoint(
            deployment_config(rollout, self.alarms, startup_timeout, download_timeout)
        )
        self.endpoint_arn = self.endpoint.ref
        self.scalable_target = add_autoscaling(
            self,
            self.endpoint,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            scaling=scaling,
            target_value=scaling_target,
        )

    def _add_endpoint(
        self, deployment: sagemaker.CfnEndpoint.DeploymentConfigProperty
    ) -> sagemaker.CfnEndpoint:
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=deployment,
            # An update keeps the instance count autoscaling chose (else every rollout starts
            # the new fleet at `initial_capacity`, at peak too); captured-data settings still
            # follow the new config.
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(
                    variant_property_type="DataCaptureConfig"
                )
            ],
        )
        endpoint.node.add_dependency(self.log_group)
        return endpoint
