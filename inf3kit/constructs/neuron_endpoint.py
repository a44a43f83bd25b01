"""NeuronEndpoint: a SageMaker real-time endpoint on Inferentia/Trainium, production-ready.

What users of the managed service keep asking for, in one construct: a least-privilege execution
role instead of SageMakerFullAccess, KMS on the storage volume and captured data, autoscaling
on invocations per instance (with an optional night/weekend scale-down, since idle accelerators
are the largest cost), blue/green or rolling updates that roll back on alarms, startup timeouts
long enough for Neuron models, and a check that the image suits the instance family.

Each concern has its own module: endpoint_rollout (deployment config, rollback alarms),
endpoint_scaling (autoscaling, schedule), endpoint_access (role grants, logs, VPC, data
capture), endpoint_base (invoke grant and metrics, shared with imported endpoints).
"""

from __future__ import annotations

import re

from aws_cdk import (
    Duration,
    Names,
    RemovalPolicy,
    Size,
    Token,
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
from inf3kit.constructs.endpoint_access import (
    DataCapture,
    ModelDataSource,
    add_log_group,
    data_capture_config,
    grant_runtime_basics,
    vpc_config,
)
from inf3kit.constructs.endpoint_base import VARIANT_NAME, EndpointBase, ImportedEndpoint
from inf3kit.constructs.endpoint_config import (
    LOCAL_STORAGE_FAMILIES,
    add_endpoint_config,
    add_model,
)
from inf3kit.constructs.endpoint_image import EndpointImage
from inf3kit.constructs.endpoint_rollout import (
    DEFAULT_LATENCY_THRESHOLD,
    EndpointRollout,
    add_rollback_alarms,
    deployment_config,
)
from inf3kit.constructs.endpoint_scaling import (
    DEFAULT_MAX_CAPACITY,
    DEFAULT_MIN_CAPACITY,
    EndpointScaling,
    ScaleDownSchedule,
    add_autoscaling,
)
from inf3kit.constructs.hardware_checks import (
    check_instance_type,
    warn_if_provisional,
)
from inf3kit.constructs.runtime_settings import RuntimeSettings
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import (
    capacity_problems,
    default_rollout_strategy,
    rollout_capacity_problems,
    rollout_share_problems,
    scale_down_count_problems,
    scaling_schedule_problems,
    time_zone_problems,
)

# Defaults, in one place, as the docs describe them (docs/endpoint.md).
DEFAULT_STARTUP_TIMEOUT = Duration.minutes(15)
"""Neuron models load compiled graphs onto the NeuronCores and warm up before /ping is ready."""
DEFAULT_DOWNLOAD_TIMEOUT = Duration.minutes(15)
"""Compiled bundles of large models are several GB."""
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR


class NeuronEndpoint(EndpointBase):
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
        min_capacity: int = DEFAULT_MIN_CAPACITY,
        max_capacity: int = DEFAULT_MAX_CAPACITY,
        initial_capacity: int | None = None,
        scaling: EndpointScaling | None = None,
        rollout: EndpointRollout | None = None,
        latency_threshold: Duration = DEFAULT_LATENCY_THRESHOLD,
        rollback_alarms: list[cloudwatch.IAlarm] | None = None,
        data_capture: DataCapture | None = None,
        startup_timeout: Duration = DEFAULT_STARTUP_TIMEOUT,
        download_timeout: Duration = DEFAULT_DOWNLOAD_TIMEOUT,
        volume_size: Size | None = None,
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
        :param min_capacity: autoscaling floor, in instances. Default: 1.
        :param max_capacity: autoscaling ceiling. Default: 2. With `max_capacity` equal to
            `min_capacity` and no `scaling.schedule` the endpoint is not registered for
            autoscaling at all, which is also step one of changing the instance type of an
            autoscaled endpoint (docs/endpoint.md).
        :param initial_capacity: Default: `min_capacity`.
        :param scaling: the target-tracking target (invocations per instance per minute), the
            cooldowns and an optional `ScaleDownSchedule`. Default: `EndpointScaling()`, 500
            invocations, 5 minutes scale-in and 1 minute scale-out cooldown, no schedule.
        :param rollout: Default: blue/green canary, 10% of capacity, 10 minutes bake time,
            when `min_capacity` is 2 or more; blue/green all at once (baked, rolled back on
            alarms) below that, since a share of one instance is the whole fleet.
        :param latency_threshold: p99 ModelLatency above this for 3 minutes trips the latency
            rollback alarm. Default: 1 second. Keep it below `runtime.request_timeout`: the runtime
            answers 504 at that deadline, so latency never exceeds it and an alarm at or above
            it can never fire.
        :param rollback_alarms: more alarms that roll an update back. Default: none.
        :param data_capture: capture requests and responses into `DataCapture(bucket, percent)`
            (under `data-capture/`, 10% by default). Default: no data capture.
        :param startup_timeout: how long /ping may fail after the container starts.
            Default: 15 minutes (graph load and warm-up on NeuronCores).
        :param download_timeout: how long the model download may take. Default: 15 minutes.
        :param volume_size: ML storage volume size (whole GiB). Default: SageMaker's size for
            the type. Types with local NVMe storage (trn*) take none.
        :param log_retention: of the endpoint's log group. Default: one year.
        :param catalog: hardware catalog. Default: the shipped one (with INF3KIT_CATALOG).
        :param compatibility: compatibility matrix. Default: the shipped one.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        compat = compatibility or load_compatibility()
        image = image or EndpointImage.runtime()
        rollout = rollout or EndpointRollout(strategy=default_rollout_strategy(min_capacity))
        runtime = runtime or RuntimeSettings()
        scaling = scaling or EndpointScaling()
        initial = initial_capacity if initial_capacity is not None else min_capacity
        problems = _validate(
            instance_type=instance_type,
            catalog=catalog,
            compat=compat,
            image=image,
            min_instances=min_capacity,
            max_instances=max_capacity,
            initial=initial,
            invocations_per_instance=scaling.invocations_per_instance,
            schedule=scaling.schedule,
            rollout=rollout,
            data_capture_bucket=data_capture.bucket if data_capture else None,
            data_capture_percent=data_capture.percent if data_capture else 10,
            startup_timeout=startup_timeout,
            download_timeout=download_timeout,
            volume_size_gb=None if volume_size is None else int(volume_size.to_gibibytes()),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            endpoint_name=endpoint_name,
            runtime=runtime,
        )
        raise_if_problems("NeuronEndpoint", self, problems)

        if not Token.is_unresolved(instance_type):
            warn_if_provisional(self, catalog.get(instance_type))
            image.warn_if_older_sdk(self, compat, instance_type)
        self.instance_type = instance_type
        self.variant_name = VARIANT_NAME
        self.endpoint_name = endpoint_name or Names.unique_resource_name(
            self, max_length=63, separator="-"
        )
        self._add_role(key, model_data, log_retention)
        self.model = add_model(
            self,
            model_data,
            image.bind(self, self.role, compat),
            runtime.environment() | (environment or {}),
            vpc_config(self, vpc, vpc_subnets, security_groups) if vpc is not None else None,
            network_isolation
            if network_isolation is not None
            else image.default_network_isolation(compat),
        )
        self.endpoint_config = add_endpoint_config(
            self,
            catalog,
            initial=initial,
            startup_timeout=startup_timeout,
            download_timeout=download_timeout,
            volume_size=volume_size,
            capture=data_capture_config(self, data_capture) if data_capture is not None else None,
        )
        self.alarms: list[cloudwatch.IAlarm] = add_rollback_alarms(self, latency_threshold)
        self.alarms += rollback_alarms or []
        self.endpoint = self._add_endpoint(
            deployment_config(rollout, self.alarms, startup_timeout, download_timeout)
        )
        self.endpoint_arn = self.endpoint.ref
        self.scalable_target: appscaling.ScalableTarget | None = add_autoscaling(
            self,
            self.endpoint,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            scaling=scaling,
        )
        if self.scalable_target is not None:
            self.invocations_per_instance = scaling.invocations_per_instance

    @staticmethod
    def from_endpoint_name(scope: Construct, id: str, endpoint_name: str) -> EndpointBase:
        """An endpoint made elsewhere, by name: `grant_invoke` and the `metric_*` methods.

        Read-only: nothing about the endpoint changes, and it is assumed to serve its traffic
        from the variant `AllTraffic` (what NeuronEndpoint creates) for its metrics.
        """
        return ImportedEndpoint(scope, id, endpoint_name=endpoint_name)

    # --- children -----------------------------------------------------------------------------

    def _add_role(
        self, key: kms.IKey | None, model_data: ModelDataSource, retention: logs.RetentionDays
    ) -> None:
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
        self.log_group = add_log_group(self, retention)
        grant_runtime_basics(self, model_data)
        self.security_groups: list[ec2.ISecurityGroup] = []

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
            f"min_capacity: got {min_instances}, must be >= 1 (a real-time endpoint always runs "
            "an instance). Fix: use 1 or more; delete the stack to stop paying"
        )
    if counts_known:
        names = ("min_capacity", "max_capacity", "initial_capacity")
        problems += capacity_problems(min_instances, max_instances, initial, names=names)
    if not Token.is_unresolved(invocations_per_instance) and invocations_per_instance < 1:
        problems.append(
            f"scaling.invocations_per_instance: got {invocations_per_instance}, must be >= 1. "
            "Fix: use the requests per minute one instance serves at your latency target"
        )
    problems += runtime.problems()
    if counts_known:
        problems += rollout_capacity_problems(
            rollout.strategy, min_instances, min_name="min_capacity"
        )
    if not Token.is_unresolved(instance_type):
        refusal = compat.guardrails_problem(instance_type, rollout.strategy)
        problems += [f"rollout: {refusal}"] if refusal else []

    if schedule is not None:
        for name in ("scale_down", "scale_up"):
            expr = getattr(schedule, name)
            if not Token.is_unresolved(expr):
                problems += [
                    f"scaling.schedule.{name}: {p}" for p in scaling_schedule_problems(expr)
                ]
        if schedule.time_zone is not None and not Token.is_unresolved(schedule.time_zone):
            problems += [
                f"scaling.schedule.time_zone: {p}" for p in time_zone_problems(schedule.time_zone)
            ]
        problems += [
            f"scaling.schedule.capacity_during_scale_down: {p}"
            for p in scale_down_count_problems(
                schedule.capacity_during_scale_down, max_instances, max_name="max_capacity"
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
                f"volume_size: {instance_type} has local NVMe storage and SageMaker takes no "
                "volume size for it. Fix: leave volume_size unset"
            )
        elif not 1 <= volume_size_gb <= 512:
            problems.append(
                f"volume_size: got {volume_size_gb} GiB, SageMaker allows 1..512 GiB. "
                "Fix: use a size in that range"
            )
    if data_capture_bucket is not None and not 1 <= data_capture_percent <= 100:
        problems.append(
            f"data_capture.percent: got {data_capture_percent}, must be 1..100. "
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
