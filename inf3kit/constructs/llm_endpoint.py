"""LlmEndpoint: a SageMaker real-time endpoint serving a large language model with vLLM on Neuron.

The same production defaults as NeuronEndpoint (least-privilege role, KMS, guarded rollouts,
alarms, autoscaling; built by `ManagedEndpoint`), with what an LLM needs instead of a bundle:
the engine's container, an uncompressed model directory (or a pinned Hugging Face model),
engine settings as container environment, timeouts sized for downloading, loading and
compiling a model of its size, scaling on requests in flight rather than invocations, and the
fit check before anything is created.
"""

from __future__ import annotations

import math

from aws_cdk import Duration, Size, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from inf3kit.catalog import Catalog, Compatibility, load_catalog, load_compatibility
from inf3kit.catalog.engines import EngineImage
from inf3kit.constructs.endpoint_access import (
    DataCapture,
    data_capture_config,
    grant_model_prefix,
    vpc_config,
)
from inf3kit.constructs.endpoint_checks import (
    capacity_problems_of,
    deployment_problems,
    instance_problems,
)
from inf3kit.constructs.endpoint_config import add_model
from inf3kit.constructs.endpoint_image import EndpointImage
from inf3kit.constructs.endpoint_managed import ManagedEndpoint
from inf3kit.constructs.endpoint_rollout import EndpointRollout
from inf3kit.constructs.endpoint_scaling import (
    DEFAULT_MAX_CAPACITY,
    DEFAULT_MIN_CAPACITY,
    ConcurrencyScaling,
)
from inf3kit.constructs.hardware_checks import warn_if_provisional
from inf3kit.constructs.llm_container import (
    WeightsLocation,
    lmi_environment,
    locate,
    model_data_source,
)
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture
from inf3kit.llm.fit import engine_cores, fit_problems
from inf3kit.llm.settings import settings_problems
from inf3kit.llm.startup import MAX_SECONDS, LoadEstimate, model_estimate, too_slow_to_start
from inf3kit.rules import default_rollout_strategy, llm_weights_problems

SAGEMAKER_ENGINE = "lmi-neuronx"
"""The matrix's `engines:` entry whose images speak SageMaker's contract and read the OPTION_*
variables `llm_container` sets: the LMI Neuron container."""
DEFAULT_LATENCY_THRESHOLD = Duration.minutes(3)
"""ModelLatency of an LLM request is its whole generation: a p99 above 3 minutes for 3 minutes
means a hung or overloaded engine, not a long answer (4096 tokens at 25 tokens/s take 164 s)."""
CONCURRENCY_TARGET_SHARE = 0.75
"""Default scaling target: three quarters of the engine's batch (max_num_seqs) in flight per
instance, so new instances start before requests queue (a Neuron instance takes minutes)."""
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR


class LlmEndpoint(ManagedEndpoint):
    """A SageMaker model, endpoint config and endpoint serving an LLM with vLLM on Neuron.

    Only the instance type, the weights and the serving settings are required. With the model's
    `architecture`, synthesis refuses a model that does not fit the tensor-parallel group (and
    says what would) and sizes the download and startup timeouts for the model's size.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        instance_type: str,
        weights: LlmWeights,
        settings: LlmSettings,
        architecture: ModelArchitecture | None = None,
        image: EndpointImage | None = None,
        endpoint_name: str | None = None,
        environment: dict[str, str] | None = None,
        key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: list[ec2.ISecurityGroup] | None = None,
        network_isolation: bool | None = None,
        min_capacity: int = DEFAULT_MIN_CAPACITY,
        max_capacity: int = DEFAULT_MAX_CAPACITY,
        initial_capacity: int | None = None,
        scaling: ConcurrencyScaling | None = None,
        rollout: EndpointRollout | None = None,
        latency_threshold: Duration = DEFAULT_LATENCY_THRESHOLD,
        rollback_alarms: list[cloudwatch.IAlarm] | None = None,
        data_capture: DataCapture | None = None,
        startup_timeout: Duration | None = None,
        download_timeout: Duration | None = None,
        volume_size: Size | None = None,
        log_retention: logs.RetentionDays = DEFAULT_LOG_RETENTION,
        catalog: Catalog | None = None,
        compatibility: Compatibility | None = None,
    ) -> None:
        """Create the endpoint.

        :param instance_type: a Neuron SageMaker type from the catalog, e.g. 'ml.inf2.48xlarge'.
        :param weights: an uncompressed model directory `s3://bucket/prefix/` (SageMaker copies
            it to /opt/ml/model; the role may read and list that prefix only), or a Hugging Face
            id pinned to a revision, with `token_secret` naming the Secrets Manager secret of
            the token for gated models. `compiled_prefix`: pre-compiled Neuron artefacts the
            engine loads instead of compiling at startup.
        :param settings: tensor-parallel degree (a number), max model length, max sequences,
            dtype; set as the container's OPTION_* variables.
        :param architecture: the model's shape. With it, the fit check runs at synthesis and
            the timeouts follow the model's size. Default: no fit check, and both timeouts at
            SageMaker's maximum (1 hour).
        :param image: Default: the LMI Neuron container (`djl-neuronx` in the compatibility
            matrix). It must support the instance family.
        :param endpoint_name: Default: a unique name derived from the construct path.
        :param environment: extra container variables; they win over the derived ones.
        :param key: Default: a key is created with yearly rotation (and retained).
        :param vpc: Default: no VPC. With Hub weights the subnets need a route to the internet.
        :param vpc_subnets: Default: the VPC's private subnets with egress.
        :param security_groups: Default: one that allows only HTTPS egress.
        :param network_isolation: Default: on when SageMaker copies everything the engine
            needs (S3 weights, compiled artefacts inside their prefix); off when the engine
            downloads from the Hub or reads compiled artefacts from S3 itself.
        :param min_capacity: Default: 1.
        :param max_capacity: Default: 2.
        :param initial_capacity: Default: `min_capacity`.
        :param scaling: Default: `ConcurrencyScaling()`: target tracking on SageMaker's
            concurrent requests per model at three quarters of `settings.max_num_seqs`,
            5 minutes scale-in and 1 minute scale-out cooldown.
        :param rollout: Default: as NeuronEndpoint (canary with 2+ instances, else all at once).
        :param latency_threshold: p99 ModelLatency (a whole generation) above this for 3 minutes
            rolls an update back. Default: 3 minutes.
        :param rollback_alarms: Default: none besides the construct's.
        :param data_capture: Default: no data capture.
        :param startup_timeout: Default: sized from the model (engine start, load, compile when
            no compiled artefacts, Hub download), 10 minutes to 1 hour.
        :param download_timeout: Default: sized from the model's S3 download, 10 minutes to
            1 hour.
        :param volume_size: Default: SageMaker's size for the type (none for local NVMe types).
        :param log_retention: Default: one year.
        :param catalog: Default: the shipped catalog (with INF3KIT_CATALOG).
        :param compatibility: Default: the shipped matrix.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        compat = compatibility or load_compatibility()
        rollout = rollout or EndpointRollout(strategy=default_rollout_strategy(min_capacity))
        scaling = scaling or ConcurrencyScaling()
        initial = initial_capacity if initial_capacity is not None else min_capacity
        target = scaling.concurrent_requests_per_model or max(
            1, math.floor(settings.max_num_seqs * CONCURRENCY_TARGET_SHARE)
        )
        problems = instance_problems(instance_type, catalog, compat, image)
        if image is None and not problems:
            image = _engine_image(instance_type, compat, problems)
        problems += _llm_problems(
            instance_type=instance_type,
            instance_known=not problems and not Token.is_unresolved(instance_type),
            catalog=catalog,
            families=compat.llm_families("sagemaker"),
            weights=weights,
            settings=settings,
            architecture=architecture,
            min_instances=min_capacity,
            max_instances=max_capacity,
            initial=initial,
            concurrency_target=target,
            network_isolation=network_isolation,
        )
        sized = _estimate(weights, settings, architecture) if not problems else None
        too_slow = None if sized is None else too_slow_to_start(sized, weights)
        if too_slow is not None and startup_timeout is None:
            problems.append(too_slow)
        startup = startup_timeout or Duration.seconds(
            sized.startup_seconds if sized else MAX_SECONDS
        )
        download = download_timeout or Duration.seconds(
            sized.download_seconds if sized else MAX_SECONDS
        )
        problems += deployment_problems(
            instance_type=instance_type,
            compat=compat,
            min_instances=min_capacity,
            max_instances=max_capacity,
            schedule=scaling.schedule,
            rollout=rollout,
            data_capture_bucket=data_capture.bucket if data_capture else None,
            data_capture_percent=data_capture.percent if data_capture else 10,
            startup_timeout=startup,
            download_timeout=download,
            volume_size_gb=None if volume_size is None else int(volume_size.to_gibibytes()),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            endpoint_name=endpoint_name,
        )
        raise_if_problems("LlmEndpoint", self, problems)
        assert image is not None  # chosen above, or a problem was raised

        if not Token.is_unresolved(instance_type):
            warn_if_provisional(self, catalog.get(instance_type))
            image.warn_if_older_sdk(self, compat, instance_type)
        self.weights = weights
        self.settings = settings
        self.location: WeightsLocation = locate(weights)
        self.startup_timeout = startup
        self.download_timeout = download
        self._add_role(
            instance_type=instance_type,
            endpoint_name=endpoint_name,
            key=key,
            log_retention=log_retention,
            role_description="inf3kit LLM endpoint execution role: read one model prefix, pull "
            "one image",
            grant_model=self._grant_weights,
        )
        self.network_isolation = (
            network_isolation if network_isolation is not None else not self.location.needs_network
        )
        self.model = add_model(
            self,
            image_uri=image.bind(self, self.role, compat),
            env=lmi_environment(
                weights,
                settings,
                self.location,
                loading_timeout_seconds=int(startup.to_seconds()),
            )
            | (environment or {}),
            model_data_source=model_data_source(self.location, weights),
            vpc=vpc_config(self, vpc, vpc_subnets, security_groups) if vpc is not None else None,
            isolation=self.network_isolation,
        )
        self._add_serving(
            catalog=catalog,
            initial=initial,
            startup_timeout=startup,
            download_timeout=download,
            volume_size=volume_size,
            capture=data_capture_config(self, data_capture) if data_capture is not None else None,
            latency_threshold=latency_threshold,
            rollback_alarms=rollback_alarms,
            rollout=rollout,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            scaling=scaling,
            scaling_target=target,
        )
        if self.scalable_target is not None:
            self.concurrent_requests_per_model = target

    def _grant_weights(self) -> None:
        location = self.location
        if location.bucket is not None and location.prefix is not None:
            bucket = s3.Bucket.from_bucket_name(self, "WeightsBucket", location.bucket)
            grant_model_prefix(self, bucket, location.prefix, "Weights")
        if location.compiled_bucket is not None and location.compiled_prefix is not None:
            compiled = s3.Bucket.from_bucket_name(self, "CompiledBucket", location.compiled_bucket)
            grant_model_prefix(self, compiled, location.compiled_prefix, "Compiled")


def _estimate(
    weights: LlmWeights, settings: LlmSettings, architecture: ModelArchitecture | None
) -> LoadEstimate | None:
    """The sized timeouts, None without the architecture (the size is unknown)."""
    return None if architecture is None else model_estimate(weights, settings, architecture)


def _engine_image(
    instance_type: str, compat: Compatibility, problems: list[str]
) -> EndpointImage | None:
    """The newest LMI Neuron image serving the type's family; None and a problem when none
    does."""
    engines = compat.data.engines
    if Token.is_unresolved(instance_type) and SAGEMAKER_ENGINE in engines:
        found: tuple[str, EngineImage] | str = (
            SAGEMAKER_ENGINE,
            engines[SAGEMAKER_ENGINE].images[0],
        )
    else:
        found = compat.engine_choice(instance_type, SAGEMAKER_ENGINE)
    if isinstance(found, str):
        problems.append(f"image: {found}")
        return None
    image = found[1]
    if image.registry != "dlc":
        problems.append(
            f"image: the {SAGEMAKER_ENGINE} image {image.repository}:{image.tag} is in "
            f"{image.registry}; SageMaker pulls only from private ECR. Fix: copy it to ECR and "
            "pass image=EndpointImage.from_uri(...)"
        )
        return None
    return EndpointImage.dlc_tag(image.repository, image.tag)


def _llm_problems(
    *,
    instance_type: str,
    instance_known: bool,
    catalog: Catalog,
    families: list[str],
    weights: LlmWeights,
    settings: LlmSettings,
    architecture: ModelArchitecture | None,
    min_instances: int,
    max_instances: int,
    initial: int,
    concurrency_target: int,
    network_isolation: bool | None,
) -> list[str]:
    """The capacity, weights, settings, fit and scaling target, in prop order."""
    problems = capacity_problems_of(min_instances, max_instances, initial)
    weight_problems = llm_weights_problems(
        s3=weights.s3_prefix,
        huggingface=weights.huggingface_id,
        revision=weights.revision,
        token_secret=weights.token_secret,
        compiled=weights.compiled_prefix,
        prefix="weights.",
    )
    problems += weight_problems
    settings_errors = settings_problems(settings)
    problems += settings_errors
    settings_ok = not settings_errors
    if settings.quantization is not None:
        problems.append(
            f"settings.quantization: got {settings.quantization!r}; the LMI container's "
            "weight-quantization settings for vLLM on Neuron are not wired in inf3kit yet. "
            "Fix: leave quantization unset (serve in the dtype) or use a larger instance"
        )
    if settings_ok and instance_known:
        if architecture is not None:
            problems += [
                f"settings: {p}"
                for p in fit_problems(
                    architecture,
                    settings,
                    instance_type,
                    catalog=catalog,
                    families=families,
                )
            ]
        else:
            cores = engine_cores(catalog.get(instance_type)).count
            if cores % settings.tensor_parallel:
                divisors = [d for d in range(1, cores + 1) if cores % d == 0]
                problems.append(
                    f"settings.tensor_parallel: got {settings.tensor_parallel}, but "
                    f"{instance_type} has {cores} NeuronCores; the degree must divide them: "
                    f"{', '.join(map(str, divisors))}. Fix: use one of those"
                )
    if not Token.is_unresolved(concurrency_target) and concurrency_target < 1:
        problems.append(
            f"scaling.concurrent_requests_per_model: got {concurrency_target}, must be >= 1. "
            "Fix: use the requests one instance serves at once at your latency target"
        )
    if network_isolation and not weight_problems and locate(weights).needs_network:
        problems.append(
            "network_isolation: True, but the engine downloads "
            + (
                "the weights from the Hugging Face Hub"
                if weights.huggingface_id
                else "its compiled artefacts from S3"
            )
            + " at startup, which isolation blocks. Fix: leave network_isolation unset, or copy "
            "the weights (and compiled artefacts, inside their prefix) to S3"
        )
    return problems
