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

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Size, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from inf3kit.catalog import (
    Catalog,
    Compatibility,
    CompiledVariant,
    load_catalog,
    load_compatibility,
)
from inf3kit.constructs.endpoint_access import (
    DataCapture,
    ModelDataSource,
    data_capture_config,
    grant_model_object,
    vpc_config,
)
from inf3kit.constructs.endpoint_base import EndpointBase, ImportedEndpoint
from inf3kit.constructs.endpoint_checks import (
    capacity_problems_of,
    deployment_problems,
    instance_problems,
)
from inf3kit.constructs.endpoint_config import add_model
from inf3kit.constructs.endpoint_image import EndpointImage
from inf3kit.constructs.endpoint_managed import ManagedEndpoint
from inf3kit.constructs.endpoint_rollout import DEFAULT_LATENCY_THRESHOLD, EndpointRollout
from inf3kit.constructs.endpoint_scaling import (
    DEFAULT_MAX_CAPACITY,
    DEFAULT_MIN_CAPACITY,
    EndpointScaling,
)
from inf3kit.constructs.endpoint_startup import estimate_endpoint_timeouts
from inf3kit.constructs.hardware_checks import warn_if_provisional
from inf3kit.constructs.runtime_settings import RuntimeSettings
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import default_rollout_strategy

# Defaults, in one place, as the docs describe them (docs/endpoint.md).
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR


class NeuronEndpoint(ManagedEndpoint):
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
        bundle_variants: Sequence[CompiledVariant] = (),
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
        startup_timeout: Duration | None = None,
        download_timeout: Duration | None = None,
        bundle_size: Size | None = None,
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
        :param bundle_variants: the bundle's compiled variants (from its manifest). Each Neuron
            variant for this instance family must come from a Neuron release no newer than the
            image's, and from a compiler the matrix knows; otherwise synthesis fails with the
            fix. Default: none, unchecked (the stacks pass a local bundle's variants; an s3://
            bundle, or an image URI whose SDK the matrix does not know, is not checked).
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
            Default: estimated from `bundle_size` (load and warm-up on the NeuronCores, with a
            margin), 15..60 minutes (inf3kit.constructs.endpoint_startup).
        :param download_timeout: how long the model download may take. Default: estimated
            from `bundle_size` the same way, 15..60 minutes.
        :param bundle_size: the bundle archive's size, for the default timeouts. Default:
            unknown, taken as 2 GiB.
        :param volume_size: ML storage volume size (whole GiB). Default: SageMaker's size for
            the type. Types with local NVMe storage (trn*) take none.
        :param log_retention: of the endpoint's log group. Default: one year.
        :param catalog: hardware catalog. Default: the shipped one (with INF3KIT_CATALOG).
        :param compatibility: compatibility matrix. Default: the shipped one.
        """
        super().__init__(scope, id)
        estimate = estimate_endpoint_timeouts(
            None if bundle_size is None else int(bundle_size.to_bytes())
        )
        startup_timeout = startup_timeout or estimate.startup
        download_timeout = download_timeout or estimate.download
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
        if not problems and not Token.is_unresolved(instance_type):
            problems += [
                f"bundle_variants: {p}"
                for p in compat.serving_problems(
                    bundle_variants,
                    instance_type=instance_type,
                    serving=f"image {image.name!r}",
                    serving_sdk=compat.image_sdk(image.catalog_name)
                    if image.catalog_name
                    else None,
                )
            ]
        raise_if_problems("NeuronEndpoint", self, problems)

        if not Token.is_unresolved(instance_type):
            warn_if_provisional(self, catalog.get(instance_type))
            image.warn_if_older_sdk(self, compat, instance_type)
        self._add_role(
            instance_type=instance_type,
            endpoint_name=endpoint_name,
            key=key,
            log_retention=log_retention,
            role_description="inf3kit endpoint execution role: read one model object, pull one "
            "image",
            grant_model=lambda: grant_model_object(self, model_data),
        )
        self.model = add_model(
            self,
            image_uri=image.bind(self, self.role, compat),
            env=runtime.environment() | (environment or {}),
            model_data_url=model_data.bucket.s3_url_for_object(model_data.object_key),
            vpc=vpc_config(self, vpc, vpc_subnets, security_groups) if vpc is not None else None,
            isolation=network_isolation
            if network_isolation is not None
            else image.default_network_isolation(compat),
        )
        self._add_serving(
            catalog=catalog,
            initial=initial,
            startup_timeout=startup_timeout,
            download_timeout=download_timeout,
            volume_size=volume_size,
            capture=data_capture_config(self, data_capture) if data_capture is not None else None,
            latency_threshold=latency_threshold,
            rollback_alarms=rollback_alarms,
            rollout=rollout,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            scaling=scaling,
            scaling_target=scaling.invocations_per_instance,
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
    runtime: RuntimeSettings,
    **deployment: Any,
) -> list[str]:
    """Every problem with the props, so one synthesis reports them all."""
    problems = instance_problems(instance_type, catalog, compat, image)
    problems += capacity_problems_of(min_instances, max_instances, initial)
    if not Token.is_unresolved(invocations_per_instance) and invocations_per_instance < 1:
        problems.append(
            f"scaling.invocations_per_instance: got {invocations_per_instance}, must be >= 1. "
            "Fix: use the requests per minute one instance serves at your latency target"
        )
    problems += runtime.problems()
    return problems + deployment_problems(
        instance_type=instance_type,
        compat=compat,
        min_instances=min_instances,
        max_instances=max_instances,
        **deployment,
    )
