"""NeuronEndpoint: a SageMaker real-time endpoint on Inferentia/Trainium, production-ready.

What users of the managed service keep asking for, in one construct: a least-privilege execution
role instead of SageMakerFullAccess, KMS on the storage volume and captured data, autoscaling
on invocations per instance (with an optional night/weekend scale-down, since idle accelerators
are the largest cost), blue/green or rolling updates that roll back on alarms, startup timeouts
long enough for Neuron models, and a check that the image suits the instance family.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol

from aws_cdk import (
    Acknowledgment,
    Annotations,
    ArnFormat,
    Duration,
    Names,
    RemovalPolicy,
    Stack,
    TimeZone,
    Token,
    Validations,
)
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from inf3kit.catalog import Catalog, Compatibility, family_of, load_catalog, load_compatibility
from inf3kit.constructs.endpoint_image import EndpointImage
from inf3kit.constructs.hardware_checks import check_instance_type, warn_if_provisional
from inf3kit.constructs.nag import acknowledge, skip_checkov, waive_cfn_lint
from inf3kit.constructs.runtime_settings import RuntimeSettings
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import (
    RolloutStrategy,
    capacity_problems,
    default_rollout_strategy,
    rollout_capacity_problems,
    rollout_share_problems,
    scale_down_count_problems,
    scaling_schedule_problems,
    time_zone_problems,
)

VARIANT_NAME = "AllTraffic"
"""The one production variant. Deployment guardrails and autoscaling address the variant by
name, so it never changes across updates."""
METRICS_NAMESPACE = "AWS/SageMaker"
SDK_WARNING_ID = "inf3kit:imageNeuronSdk"

# Families whose sizes carry local NVMe instance storage. SageMaker encrypts it in hardware and
# refuses both KmsKeyId and VolumeSizeInGB for them (SageMaker API reference,
# CreateEndpointConfig: "You can't request a KmsKeyId when using an instance type with local
# storage"; EC2 instance-type pages list trn1/trn1n/trn2 NVMe storage). inf1/inf2 are EBS-only;
# inf3 is assumed EBS-only like inf2 (provisional).
LOCAL_STORAGE_FAMILIES = frozenset({"trn1", "trn1n", "trn2", "trn3"})

# Defaults, in one place, as the docs describe them (docs/endpoint.md).
DEFAULT_STARTUP_TIMEOUT = Duration.minutes(15)
"""Neuron models load compiled graphs onto the NeuronCores and warm up before /ping is ready."""
DEFAULT_DOWNLOAD_TIMEOUT = Duration.minutes(15)
"""Compiled bundles of large models are several GB."""
DEFAULT_MIN_INSTANCES = 1
DEFAULT_MAX_INSTANCES = 2
DEFAULT_INVOCATIONS_PER_INSTANCE = 500
DEFAULT_SCALE_IN_COOLDOWN = Duration.minutes(5)
DEFAULT_SCALE_OUT_COOLDOWN = Duration.minutes(1)
DEFAULT_LATENCY_THRESHOLD = Duration.seconds(1)
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
MIN_DEPLOYMENT_TIMEOUT = Duration.hours(1)
DEFAULT_BAKE_TIME = Duration.minutes(10)
DEFAULT_METRIC_PERIOD = Duration.minutes(1)


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
class EndpointRollout:
    """How an update replaces the serving fleet.

    Blue/green strategies start a full new fleet and shift traffic (all at once, a canary slice
    first, or linear steps), waiting `bake_time` after each shift; any rollback alarm in alarm
    during the rollout sends traffic back. `rolling` replaces instances in batches instead and
    never doubles the fleet, which matters when accelerator capacity is scarce.
    """

    strategy: RolloutStrategy = "canary"
    canary_percent: int = 10
    linear_step_percent: int = 20
    rolling_batch_percent: int = 25
    bake_time: Duration = field(default_factory=lambda: DEFAULT_BAKE_TIME)
    termination_wait: Duration = field(default_factory=lambda: Duration.seconds(0))
    timeout: Duration | None = None
    """Whole-rollout limit. Default: the bake times plus the startup and download timeouts,
    at least one hour (SageMaker allows 10 minutes to 4 hours)."""

    @staticmethod
    def all_at_once(*, bake_time: Duration = DEFAULT_BAKE_TIME) -> EndpointRollout:
        return EndpointRollout("all_at_once", bake_time=bake_time)

    @staticmethod
    def canary(percent: int = 10, *, bake_time: Duration = DEFAULT_BAKE_TIME) -> EndpointRollout:
        return EndpointRollout("canary", canary_percent=percent, bake_time=bake_time)

    @staticmethod
    def linear(
        step_percent: int = 20, *, bake_time: Duration = DEFAULT_BAKE_TIME
    ) -> EndpointRollout:
        return EndpointRollout("linear", linear_step_percent=step_percent, bake_time=bake_time)

    @staticmethod
    def rolling(
        batch_percent: int = 25, *, bake_time: Duration = DEFAULT_BAKE_TIME
    ) -> EndpointRollout:
        return EndpointRollout("rolling", rolling_batch_percent=batch_percent, bake_time=bake_time)

    @property
    def steps(self) -> int:
        """Traffic shifts (blue/green) or batches (rolling) a full rollout takes."""
        if self.strategy == "canary":
            return 2
        if self.strategy == "linear":
            return math.ceil(100 / self.linear_step_percent)
        if self.strategy == "rolling":
            return math.ceil(100 / self.rolling_batch_percent)
        return 1


@dataclass(frozen=True)
class ScaleDownSchedule:
    """Cron windows that pin capacity low while nobody calls the endpoint (nights, weekends).

    `scale_down` and `scale_up` are Application Auto Scaling expressions, e.g.
    'cron(0 20 ? * MON-FRI *)'.
    """

    scale_down: str
    scale_up: str
    instances_during_scale_down: int = 1
    time_zone: str | None = None
    """An IANA name such as 'Europe/Berlin'. Default: UTC."""


class NeuronEndpoint(Construct):
    """A SageMaker model, endpoint config and endpoint on a Neuron `ml.` instance type.

    Everything optional has a secure default: a rotated KMS key, a role that can read this one
    model object and pull this one image, network isolation where the image allows it, a canary
    rollout that rolls back on 5xx and latency alarms, and autoscaling between 1 and 2 instances.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        instance_type: str,
        model_data: ModelDataSource,
        image: EndpointImage | None = None,
        endpoint_name: str | None = None,
        environment: dict[str, str] | None = None,
        runtime: RuntimeSettings | None = None,
        key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: list[ec2.ISecurityGroup] | None = None,
        network_isolation: bool | None = None,
        initial_instances: int | None = None,
        min_instances: int = DEFAULT_MIN_INSTANCES,
        max_instances: int = DEFAULT_MAX_INSTANCES,
        invocations_per_instance: int = DEFAULT_INVOCATIONS_PER_INSTANCE,
        scale_in_cooldown: Duration = DEFAULT_SCALE_IN_COOLDOWN,
        scale_out_cooldown: Duration = DEFAULT_SCALE_OUT_COOLDOWN,
        scale_down_schedule: ScaleDownSchedule | None = None,
        rollout: EndpointRollout | None = None,
        latency_threshold: Duration = DEFAULT_LATENCY_THRESHOLD,
        rollback_alarms: list[cloudwatch.IAlarm] | None = None,
        data_capture_bucket: s3.IBucket | None = None,
        data_capture_percent: int = 10,
        startup_timeout: Duration = DEFAULT_STARTUP_TIMEOUT,
        download_timeout: Duration = DEFAULT_DOWNLOAD_TIMEOUT,
        volume_size_gb: int | None = None,
        log_retention: logs.RetentionDays = DEFAULT_LOG_RETENTION,
        catalog: Catalog | None = None,
        compatibility: Compatibility | None = None,
    ) -> None:
        """Create the endpoint. Only the instance type and the model data are required.

        :param instance_type: a Neuron SageMaker type from the catalog, e.g. 'ml.inf2.xlarge'.
            Unknown types fail with close matches; provisional types (Inf3) warn at synthesis.
        :param model_data: the bundle archive (a ModelBundle or ModelData.from_bucket). The role
            may read that object only.
        :param image: Default: inf3kit's runtime image, built as a Docker image asset FROM the
            PyTorch Neuron inference DLC the compatibility matrix names (needs Docker at deploy).
        :param endpoint_name: Default: a unique name derived from the construct path.
        :param environment: extra container variables; they win over `runtime`.
        :param runtime: batching, queue, deadline and body limit of the inf3kit runtime, set as
            its INF3KIT_* variables. Default: the runtime's own defaults.
        :param key: encrypts the endpoint's storage volume, captured data and its log group.
            Default: a key is created with yearly rotation (and retained on stack deletion).
        :param vpc: place the model's network interfaces in this VPC. Default: no VPC.
        :param vpc_subnets: Default: the VPC's private subnets with egress.
        :param security_groups: Default: one is created that allows only HTTPS egress.
        :param network_isolation: Default: the image's catalog entry decides (True for the
            inf3kit runtime, which reads its model from /opt/ml/model and needs no network).
        :param initial_instances: Default: `min_instances`.
        :param min_instances: autoscaling floor. Default: 1.
        :param max_instances: autoscaling ceiling. Default: 2. With `max_instances` equal to
            `min_instances` and no `scale_down_schedule` the endpoint is not registered for
            autoscaling at all, which is also step one of changing the instance type of an
            autoscaled endpoint (docs/endpoint.md).
        :param invocations_per_instance: target tracking target, invocations per instance per
            minute. Default: 500; measure yours with the benchmarks.
        :param scale_in_cooldown: Default: 5 minutes (Neuron instances are slow to replace).
        :param scale_out_cooldown: Default: 1 minute.
        :param scale_down_schedule: Default: none, capacity follows traffic only.
        :param rollout: Default: blue/green canary, 10% of capacity, 10 minutes bake time,
            when `min_instances` is 2 or more; blue/green all at once (baked, rolled back on
            alarms) below that, since a share of one instance is the whole fleet.
        :param latency_threshold: p99 ModelLatency above this for 3 minutes trips the latency
            rollback alarm. Default: 1 second. Keep it below `runtime.request_timeout`: the runtime
            answers 504 at that deadline, so latency never exceeds it and an alarm at or above
            it can never fire.
        :param rollback_alarms: more alarms that roll an update back. Default: none.
        :param data_capture_bucket: capture requests and responses here (under
            `data-capture/`). Default: no data capture.
        :param data_capture_percent: sampled share of requests when capturing. Default: 10.
        :param startup_timeout: how long /ping may fail after the container starts.
            Default: 15 minutes (graph load and warm-up on NeuronCores).
        :param download_timeout: how long the model download may take. Default: 15 minutes.
        :param volume_size_gb: ML storage volume size. Default: SageMaker's size for the type.
            Types with local NVMe storage (trn*) take none.
        :param log_retention: of the endpoint's log group. Default: one year.
        :param catalog: hardware catalog. Default: the shipped one (with INF3KIT_CATALOG).
        :param compatibility: compatibility matrix. Default: the shipped one.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        compat = compatibility or load_compatibility()
        image = image or EndpointImage.runtime()
        rollout = rollout or EndpointRollout(strategy=default_rollout_strategy(min_instances))
        runtime = runtime or RuntimeSettings()
        initial = initial_instances if initial_instances is not None else min_instances
        problems = _validate(
            instance_type=instance_type,
            catalog=catalog,
            compat=compat,
            image=image,
            min_instances=min_instances,
            max_instances=max_instances,
            initial=initial,
            invocations_per_instance=invocations_per_instance,
            schedule=scale_down_schedule,
            rollout=rollout,
            data_capture_bucket=data_capture_bucket,
            data_capture_percent=data_capture_percent,
            startup_timeout=startup_timeout,
            download_timeout=download_timeout,
            volume_size_gb=volume_size_gb,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            endpoint_name=endpoint_name,
            runtime=runtime,
        )
        raise_if_problems("NeuronEndpoint", id, problems)

        local_storage = family_of(instance_type) in LOCAL_STORAGE_FAMILIES
        if not Token.is_unresolved(instance_type):
            warn_if_provisional(self, catalog.get(instance_type))
            self._warn_sdk(compat, image, instance_type)

        self.instance_type = instance_type
        self.variant_name = VARIANT_NAME
        self.endpoint_name: str = endpoint_name or Names.unique_resource_name(
            self, max_length=63, separator="-"
        )
        self.key: kms.IKey = key or kms.Key(
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
            description="inf3kit endpoint execution role: read one model object, pull one image",
        )
        self.log_group = self._log_group(log_retention)
        self._grant_runtime_basics(model_data)
        image_uri = image.bind(self, self.role, compat)

        env = runtime.environment() | (environment or {})

        self.security_groups: list[ec2.ISecurityGroup] = []
        vpc_config = None
        if vpc is not None:
            self._grant_vpc_access(vpc)
            self.security_groups = security_groups or [self._security_group(vpc)]
            selection = vpc_subnets or ec2.SubnetSelection(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            )
            subnets = vpc.select_subnets(
                availability_zones=selection.availability_zones,
                one_per_az=selection.one_per_az,
                subnet_filters=selection.subnet_filters,
                subnet_group_name=selection.subnet_group_name,
                subnets=selection.subnets,
                subnet_type=selection.subnet_type,
            )
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[sg.security_group_id for sg in self.security_groups],
                subnets=subnets.subnet_ids,
            )

        isolation = (
            network_isolation
            if network_isolation is not None
            else image.default_network_isolation(compat)
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            enable_network_isolation=isolation,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=model_data.bucket.s3_url_for_object(model_data.object_key),
                environment=env or None,
                mode="SingleModel",
            ),
            vpc_config=vpc_config,
        )
        # SageMaker checks image and model access with the role when it creates the model.
        self.model.node.add_dependency(self.role)
        if not isolation:
            skip_checkov(
                self.model,
                "CKV_AWS_370",
                "The chosen serving image fetches weights or calls services at run time, so "
                "network isolation is off for it; pass network_isolation=True if it does not.",
            )

        capture = None
        if data_capture_bucket is not None:
            capture = self._data_capture(data_capture_bucket, data_capture_percent)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=None if local_storage else self.key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=initial,
                    initial_variant_weight=1,
                    container_startup_health_check_timeout_in_seconds=int(
                        startup_timeout.to_seconds()
                    ),
                    model_data_download_timeout_in_seconds=int(download_timeout.to_seconds()),
                    volume_size_in_gb=volume_size_gb,
                )
            ],
            data_capture_config=capture,
        )
        if local_storage:
            skip_checkov(
                self.endpoint_config,
                "CKV_AWS_98",
                f"{instance_type} has local NVMe storage, which SageMaker encrypts in hardware "
                "and for which it refuses a KmsKeyId.",
            )
        self._waive_unlisted_type(catalog, instance_type)

        self.alarms: list[cloudwatch.IAlarm] = self._alarms(latency_threshold)
        self.alarms += rollback_alarms or []
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._deployment_config(rollout, startup_timeout, download_timeout),
            # An update keeps the instance count autoscaling chose (else every rollout starts
            # the new fleet at `initial_instances`, at peak too); captured-data settings still
            # follow the new config.
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(
                    variant_property_type="DataCaptureConfig"
                )
            ],
        )
        self.endpoint.node.add_dependency(self.log_group)
        self.endpoint_arn: str = self.endpoint.ref

        self.scalable_target: appscaling.ScalableTarget | None = None
        if min_instances == max_instances and scale_down_schedule is None:
            return
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint.attr_endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
            # The service-linked role holds exactly the scaling permissions; a role CDK creates
            # would have none.
            role=iam.Role.from_role_arn(
                self,
                "ScalingRole",
                Stack.of(self).format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                ),
            ),
        )
        self.scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        )
        if scale_down_schedule is not None:
            self._schedule(scale_down_schedule, min_instances, max_instances)

    # --- grants and metrics -------------------------------------------------------------------

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `sagemaker:InvokeEndpoint` on this endpoint's ARN, nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def metric(
        self,
        metric_name: str,
        *,
        statistic: str = "Sum",
        period: Duration = DEFAULT_METRIC_PERIOD,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of this endpoint's variant in the AWS/SageMaker namespace."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT_NAME},
            statistic=statistic,
            period=period,
            label=label,
        )

    def metric_invocations(self, **kwargs: object) -> cloudwatch.Metric:
        """Requests sent to the model (Sum per period)."""
        return self.metric("Invocations", **kwargs)  # type: ignore[arg-type]

    def metric_invocations_per_instance(self, **kwargs: object) -> cloudwatch.Metric:
        """Requests per instance, the autoscaling signal (Sum per period)."""
        return self.metric("InvocationsPerInstance", **kwargs)  # type: ignore[arg-type]

    def metric_invocation_5xx_errors(self, **kwargs: object) -> cloudwatch.Metric:
        """Requests the model answered with 5xx (Sum per period)."""
        return self.metric("Invocation5XXErrors", **kwargs)  # type: ignore[arg-type]

    def metric_invocation_4xx_errors(self, **kwargs: object) -> cloudwatch.Metric:
        """Requests the model answered with 4xx (Sum per period)."""
        return self.metric("Invocation4XXErrors", **kwargs)  # type: ignore[arg-type]

    def metric_model_latency(self, **kwargs: object) -> cloudwatch.Metric:
        """Time the container took to answer, in microseconds (p99 per period by default)."""
        kwargs.setdefault("statistic", "p99")
        return self.metric("ModelLatency", **kwargs)  # type: ignore[arg-type]

    # --- children -----------------------------------------------------------------------------

    def _warn_sdk(self, compat: Compatibility, image: EndpointImage, instance_type: str) -> None:
        entry = compat.data.images.get(image.catalog_name or "")
        if entry is not None and entry.base:
            entry = compat.data.images.get(entry.base, entry)
        family = compat.data.families.get(family_of(instance_type))
        if entry is None or family is None or entry.neuron_sdk is None:
            return
        if _version(entry.neuron_sdk) < _version(family.min_neuron_sdk):
            Annotations.of(self).add_warning_v2(
                SDK_WARNING_ID,
                f"image {image.name!r} ships Neuron SDK {entry.neuron_sdk}, older than the "
                f"{family.min_neuron_sdk} assumed for {family_of(instance_type)} "
                f"({family.source}). Check the Neuron release notes before production, and "
                "update the image tag in a catalog override file when a newer DLC is listed.",
            )

    def _log_group(self, retention: logs.RetentionDays) -> logs.LogGroup:
        """Created up front, so it has a retention and our key rather than SageMaker's defaults."""
        key = self.key if isinstance(self.key, kms.Key) else None
        if key is not None:
            stack = Stack.of(self)
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=[
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                        "kms:ReEncryptFrom",
                        "kms:ReEncryptTo",
                    ],
                    principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                    resources=["*"],
                    conditions={
                        "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self._log_group_arn()}
                    },
                )
            )
        group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=self._log_group_name(),
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

    def _log_group_name(self) -> str:
        return f"/aws/sagemaker/Endpoints/{self.endpoint_name}"

    def _log_group_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self._log_group_name(),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _grant_vpc_access(self, vpc: ec2.IVpc) -> None:
        """SageMaker attaches the model to the VPC with network interfaces made by this role.

        The actions are those the SageMaker developer guide lists for a model with VpcConfig
        ("CreateModel API: Execution Role Permissions"). The Describe actions have no resource
        level; the interface actions are held to this VPC where the request carries it.
        """
        stmt = self.role.add_to_principal_policy
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
                conditions={"ArnEqualsIfExists": {"ec2:Vpc": self._vpc_arn(vpc)}},
            )
        )

    def _vpc_arn(self, vpc: ec2.IVpc) -> str:
        return Stack.of(self).format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)

    def _grant_runtime_basics(self, model_data: ModelDataSource) -> None:
        """Read the one model object, write this endpoint's logs and its own metrics."""
        stmt = self.role.add_to_principal_policy
        stmt(
            iam.PolicyStatement(
                sid="ReadModelData",
                actions=["s3:GetObject"],
                resources=[model_data.bucket.arn_for_objects(model_data.object_key)],
            )
        )
        keys = [self.key.key_arn]
        if model_data.bucket.encryption_key is not None:
            keys.append(model_data.bucket.encryption_key.key_arn)
        stmt(iam.PolicyStatement(sid="DecryptModelData", actions=["kms:Decrypt"], resources=keys))
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
                resources=[self._log_group_arn(), self.log_group.log_group_arn],
            )
        )
        stmt(
            iam.PolicyStatement(
                sid="PutMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "inf3kit*"]}
                },
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Resource '*' only for ecr:GetAuthorizationToken, cloudwatch:PutMetricData and, with "
            "a VPC, the EC2 network-interface actions SageMaker needs, which IAM offers no "
            "resource-level permissions for (the interface actions carry an ec2:Vpc condition; "
            "PutMetricData a cloudwatch:namespace condition). Every other statement names one "
            "object, repository, key or log group.",
        )

    def _security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="inf3kit endpoint: no inbound, HTTPS out for model and image downloads",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")
        return group

    def _data_capture(
        self, bucket: s3.IBucket, percent: int
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
        prefix = f"data-capture/{self.endpoint_name}"
        capture_objects = bucket.arn_for_objects(f"{prefix}/*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteDataCapture",
                actions=["s3:PutObject"],
                resources=[capture_objects],
            )
        )
        keys = [self.key.key_arn]
        if bucket.encryption_key is not None:
            keys.append(bucket.encryption_key.key_arn)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptDataCapture",
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=keys,
            )
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{_nag_resource(self, capture_objects)}]",
            "SageMaker names captured-data objects by date and instance at run time; the role may "
            "only put objects under this endpoint's own data-capture prefix.",
        )
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=percent,
            destination_s3_uri=bucket.s3_url_for_object(prefix),
            kms_key_id=self.key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"]
            ),
        )

    def _waive_unlisted_type(self, catalog: Catalog, instance_type: str) -> None:
        """cfn-lint's instance type enum lags AWS; provisional types are not in it yet (E3030)."""
        if Token.is_unresolved(instance_type) or not catalog.get(instance_type).provisional:
            return
        reason = (
            f"{instance_type} is provisional (no AWS specification yet), so cfn-lint's list of "
            "SageMaker instance types cannot contain it; the catalog validated it instead."
        )
        waive_cfn_lint(self.endpoint_config, "E3030", reason)
        # The CDK's own template validation reports the same enum as W3030.
        Validations.of(self.endpoint_config).acknowledge(
            Acknowledgment(id="CloudFormation-Validate::W3030", reason=reason)
        )

    def _alarms(self, latency_threshold: Duration) -> list[cloudwatch.IAlarm]:
        errors = cloudwatch.Alarm(
            self,
            "Errors5xxAlarm",
            alarm_description=f"{self.endpoint_name}: 5xx answers in 2 consecutive minutes; "
            "rolls back an update in progress",
            metric=self.metric_invocation_5xx_errors(),
            threshold=1,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "LatencyAlarm",
            alarm_description=f"{self.endpoint_name}: p99 model latency above "
            f"{latency_threshold.to_human_string()} for 3 minutes; rolls back an update",
            metric=self.metric_model_latency(),
            threshold=latency_threshold.to_milliseconds() * 1000,  # ModelLatency is in µs
            evaluation_periods=3,
            datapoints_to_alarm=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [errors, latency]

    def _deployment_config(
        self, rollout: EndpointRollout, startup: Duration, download: Duration
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        bake = int(rollout.bake_time.to_seconds())
        termination = int(rollout.termination_wait.to_seconds())
        timeout = rollout.timeout or Duration.seconds(
            max(
                MIN_DEPLOYMENT_TIMEOUT.to_seconds(),
                min(
                    14_400,
                    rollout.steps * bake
                    + termination
                    + startup.to_seconds()
                    + download.to_seconds(),
                ),
            )
        )
        rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[
                sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in self.alarms
            ]
        )
        percent = sagemaker.CfnEndpoint.CapacitySizeProperty
        if rollout.strategy == "rolling":
            return sagemaker.CfnEndpoint.DeploymentConfigProperty(
                auto_rollback_configuration=rollback,
                rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                    maximum_batch_size=percent(
                        type="CAPACITY_PERCENT", value=rollout.rolling_batch_percent
                    ),
                    wait_interval_in_seconds=bake,
                    maximum_execution_timeout_in_seconds=int(timeout.to_seconds()),
                    rollback_maximum_batch_size=percent(type="CAPACITY_PERCENT", value=100),
                ),
            )
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type=rollout.strategy.upper(),
            wait_interval_in_seconds=bake,
            canary_size=percent(type="CAPACITY_PERCENT", value=rollout.canary_percent)
            if rollout.strategy == "canary"
            else None,
            linear_step_size=percent(type="CAPACITY_PERCENT", value=rollout.linear_step_percent)
            if rollout.strategy == "linear"
            else None,
        )
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                maximum_execution_timeout_in_seconds=int(timeout.to_seconds()),
                termination_wait_in_seconds=termination,
            ),
        )

    def _schedule(self, schedule: ScaleDownSchedule, low: int, high: int) -> None:
        zone = None if schedule.time_zone is None else TimeZone.of(schedule.time_zone)
        n = schedule.instances_during_scale_down
        assert self.scalable_target is not None  # created whenever a schedule is given
        self.scalable_target.scale_on_schedule(
            "ScaleDown",
            schedule=appscaling.Schedule.expression(schedule.scale_down),
            min_capacity=n,
            max_capacity=n,
            time_zone=zone,
        )
        self.scalable_target.scale_on_schedule(
            "ScaleUp",
            schedule=appscaling.Schedule.expression(schedule.scale_up),
            min_capacity=low,
            max_capacity=high,
            time_zone=zone,
        )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _validate(
    *,
    instance_type: str,
    catalog: Catalog,
    compat: Compatibility,
    image: EndpointImage,
    min_instances: int,
    max_instances: int,
    initial: int,
    invocations_per_instance: int,
    schedule: ScaleDownSchedule | None,
    rollout: EndpointRollout,
    data_capture_bucket: s3.IBucket | None,
    data_capture_percent: int,
    startup_timeout: Duration,
    download_timeout: Duration,
    volume_size_gb: int | None,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: list[ec2.ISecurityGroup] | None,
    endpoint_name: str | None,
    runtime: RuntimeSettings,
) -> list[str]:
    """Every problem with the props, so one synthesis reports them all."""
    problems = [
        f"instance_type: {p}"
        for p in check_instance_type(instance_type, platform="sagemaker", catalog=catalog)
    ]
    problems += image.problems(compat)
    if not problems and image.catalog_name and not Token.is_unresolved(instance_type):
        try:
            compat.check_image(image.catalog_name, instance_type)
        except ValueError as exc:
            problems.append(f"image: {exc}")
    if not problems and not Token.is_unresolved(instance_type):
        try:
            compat.family(instance_type)
        except ValueError as exc:
            problems.append(f"instance_type: {exc}")

    counts_known = not any(Token.is_unresolved(v) for v in (min_instances, max_instances, initial))
    if counts_known and min_instances < 1:
        problems.append(
            f"min_instances: got {min_instances}, must be >= 1 (a real-time endpoint always runs "
            "an instance). Fix: use 1 or more; delete the stack to stop paying"
        )
    if counts_known:
        names = ("min_instances", "max_instances", "initial_instances")
        problems += capacity_problems(min_instances, max_instances, initial, names=names)
    if not Token.is_unresolved(invocations_per_instance) and invocations_per_instance < 1:
        problems.append(
            f"invocations_per_instance: got {invocations_per_instance}, must be >= 1. "
            "Fix: use the requests per minute one instance serves at your latency target"
        )
    problems += runtime.problems()
    if counts_known:
        problems += rollout_capacity_problems(rollout.strategy, min_instances)
    if not Token.is_unresolved(instance_type):
        refusal = compat.guardrails_problem(instance_type, rollout.strategy)
        problems += [f"rollout: {refusal}"] if refusal else []

    if schedule is not None:
        for name in ("scale_down", "scale_up"):
            expr = getattr(schedule, name)
            if not Token.is_unresolved(expr):
                problems += [
                    f"scale_down_schedule.{name}: {p}" for p in scaling_schedule_problems(expr)
                ]
        if schedule.time_zone is not None and not Token.is_unresolved(schedule.time_zone):
            problems += [
                f"scale_down_schedule.time_zone: {p}"
                for p in time_zone_problems(schedule.time_zone)
            ]
        problems += [
            f"scale_down_schedule.instances_during_scale_down: {p}"
            for p in scale_down_count_problems(
                schedule.instances_during_scale_down, max_instances, max_name="max_instances"
            )
        ]

    problems += rollout_share_problems(rollout.strategy, rollout)
    bake = rollout.bake_time.to_seconds()
    if bake > 3600:
        problems.append(
            f"rollout.bake_time: got {bake:g} s, SageMaker allows 0..3600 s. Fix: bake for an "
            "hour at most; add steps (linear) to watch longer"
        )
    if rollout.termination_wait.to_seconds() > 3600:
        problems.append(
            f"rollout.termination_wait: got {rollout.termination_wait.to_seconds():g} s, "
            "SageMaker allows 0..3600 s. Fix: use an hour at most"
        )
    if rollout.timeout is not None and not 600 <= rollout.timeout.to_seconds() <= 14_400:
        problems.append(
            f"rollout.timeout: got {rollout.timeout.to_seconds():g} s, SageMaker allows "
            "600..14400 s. Fix: use 10 minutes to 4 hours, or leave it unset"
        )

    for name, timeout in (
        ("startup_timeout", startup_timeout),
        ("download_timeout", download_timeout),
    ):
        seconds = timeout.to_seconds()
        if not 60 <= seconds <= 3600:
            problems.append(
                f"{name}: got {seconds:g} s, SageMaker allows 60..3600 s. "
                "Fix: use 1 minute to 1 hour"
            )
    if volume_size_gb is not None:
        if family_of(instance_type) in LOCAL_STORAGE_FAMILIES:
            problems.append(
                f"volume_size_gb: {instance_type} has local NVMe storage and SageMaker takes no "
                "volume size for it. Fix: leave volume_size_gb unset"
            )
        elif not 1 <= volume_size_gb <= 512:
            problems.append(
                f"volume_size_gb: got {volume_size_gb}, SageMaker allows 1..512. "
                "Fix: use a size in that range"
            )
    if data_capture_bucket is not None and not 1 <= data_capture_percent <= 100:
        problems.append(
            f"data_capture_percent: got {data_capture_percent}, must be 1..100. "
            "Fix: use a percentage of requests to sample"
        )
    if vpc is None and (vpc_subnets is not None or security_groups):
        problems.append(
            "vpc_subnets/security_groups: given without a vpc. Fix: pass vpc=..., or drop them"
        )
    if (
        endpoint_name is not None
        and not Token.is_unresolved(endpoint_name)
        and not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", endpoint_name)
    ):
        problems.append(
            f"endpoint_name: got {endpoint_name!r}; SageMaker allows 1-63 letters, digits "
            "and '-', starting and ending with a letter or digit. Fix: rename it"
        )
    return problems


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
