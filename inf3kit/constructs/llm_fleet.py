"""LlmFleet: an Auto Scaling group of Neuron instances running vLLM servers behind an ALB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Unpack

import jsii
from aws_cdk import Annotations, Duration, Size
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from inf3kit.catalog import Catalog, Compatibility, load_catalog, load_compatibility
from inf3kit.constructs.endpoint_base import MetricOptions, MetricOrExpression
from inf3kit.constructs.fleet_checks import group_problems
from inf3kit.constructs.fleet_group import (
    acknowledge_findings,
    add_group,
    add_launch_template,
    warn_about_capacity,
)
from inf3kit.constructs.fleet_lifecycle import add_drain_hook
from inf3kit.constructs.fleet_load_balancer import FleetLoadBalancer
from inf3kit.constructs.fleet_metrics import FleetBase, metric_defaults
from inf3kit.constructs.fleet_user_data import (
    failure_trap,
    grant_instance_basics,
    install_runtime,
    signal_command,
)
from inf3kit.constructs.hardware_checks import waive_unlisted_types
from inf3kit.constructs.kms_policies import allow_ebs_in_this_account, allow_log_group
from inf3kit.constructs.llm_boot import BootPlan, boot_commands
from inf3kit.constructs.llm_fleet_checks import llm_fleet_problems
from inf3kit.constructs.llm_servers import (
    HEALTH_PATH,
    LLM_METRIC_NAMESPACE,
    REQUESTS_WAITING_METRIC,
    VLLM_DLAMI_PARAMETER,
    VLLM_ENVIRONMENT,
    Server,
    engine_environment,
    server_layout,
    vllm_arguments,
)
from inf3kit.constructs.nag import acknowledge
from inf3kit.constructs.neuron_ami import NeuronAmi
from inf3kit.constructs.runtime_install import RuntimeWheel, default_runtime_requirements
from inf3kit.constructs.runtime_wheel import IndexInstall, resolve_runtime_wheel
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture
from inf3kit.llm.fit import engine_cores
from inf3kit.rules import split_s3_uri

DEFAULT_DRAIN_SECONDS = 120
"""An LLM fleet's drain: generations run far longer than a runtime request."""
DEFAULT_STARTUP_MINUTES = 60
"""Boot, weights download, load and (without compiled artefacts) compile: the most a rolling
update may pause."""
VLLM_ENVIRONMENT_WARNING_ID = "inf3kit:vllmEnvironmentFamily"
PLUGIN_DISTRIBUTION = "vllm-neuron"
"""What the DLAMI's vLLM environment carries: the vLLM Neuron plugin."""


@jsii.implements(ec2.IConnectable)
class LlmFleet(FleetBase):
    """EC2 Neuron instances running the vLLM OpenAI-compatible server, behind an internal ALB.

    Each instance boots the Neuron DLAMI, fetches the weights (an S3 prefix, or a Hugging Face
    model at a pinned revision with the token from Secrets Manager) and any pre-compiled
    artefacts, and starts one vLLM server per tensor-parallel group, each on its own NeuronCore
    range and port. The load balancer has one target group per server port and spreads
    requests over them (least outstanding requests within each), with health checks on vLLM's
    `/health`. The instance signals CloudFormation only when every server is healthy, and
    FAILURE at once with the reason when one is not, so a rollout that cannot serve stops.
    The group scales on the servers' own queue (`vllm:num_requests_waiting`), which
    `inf3kit llm metrics` publishes from each instance, and drains like `NeuronFleet`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        instance_types: Sequence[str],
        weights: LlmWeights,
        settings: LlmSettings,
        architecture: ModelArchitecture | None = None,
        served_model_name: str | None = None,
        min_capacity: int = 1,
        max_capacity: int = 2,
        desired_capacity: int | None = None,
        machine_image: ec2.IMachineImage | None = None,
        vllm_environment: str = VLLM_ENVIRONMENT,
        port: int = 8000,
        extra_environment: Mapping[str, str] | None = None,
        runtime_wheel: RuntimeWheel | IndexInstall | None = None,
        waiting_requests_per_instance: int | None = 4,
        drain: Duration | None = None,
        startup_timeout: Duration | None = None,
        request_timeout: Duration | None = None,
        root_volume_size: Size | None = None,
        key: kms.IKey | None = None,
        public: bool = False,
        certificate: acm.ICertificate | None = None,
        allow_from: Sequence[ec2.IPeer] | None = None,
        access_logs_bucket: s3.IBucket | None = None,
        deletion_protection: bool = False,
        imds_hop_limit: int = 1,
        notification_topic: sns.ITopic | None = None,
        catalog: Catalog | None = None,
        compatibility: Compatibility | None = None,
    ) -> None:
        """Create the fleet.

        :param vpc: the instances go in its private subnets (with egress) across all zones.
        :param instance_types: EC2 Neuron types in order of preference (the rest are capacity
            fallback). Every type must run the same number of servers (NeuronCores divided by
            the degree), since the load balancer checks each server port on every instance.
        :param weights: `LlmWeights`: an S3 prefix (the role may list and read that prefix
            only) or a Hugging Face id with its revision and optional token secret (the role
            may read that secret only); `compiled_prefix`: artefacts of `inf3kit llm compile`.
        :param settings: `LlmSettings` with a number for `tensor_parallel`.
        :param architecture: the model's shape. When given, each instance type is checked: the
            weights and KV cache must fit a tensor-parallel group (inf3kit.llm.fit). Default:
            no fit check.
        :param served_model_name: the `model` clients send. Default: the Hugging Face id, or
            the last folder of the S3 prefix.
        :param machine_image: Default: the Neuron multi-framework DLAMI (Ubuntu 24.04), which
            carries the vLLM environment, pinned at synthesis in a stack with an environment.
        :param vllm_environment: the vLLM virtual environment on the image, a path or a glob
            (the newest match is used). Default: the DLAMI's
            `/opt/aws_neuronx_venv_pytorch_inference_vllm_*`.
        :param port: the first server's port; server i listens on port + i. Default: 8000.
        :param extra_environment: more server variables (NEURON_*, VLLM_*, XLA_*, HF_*,
            PROMETHEUS_*). Default: none.
        :param runtime_wheel: where the inf3kit the metrics publisher runs comes from. Default:
            this inf3kit's wheel, built at synthesis and shipped as an asset.
        :param waiting_requests_per_instance: target tracking on the requests waiting in the
            instance's servers (average over the group). Default: 4; None turns it off.
        :param drain: the target groups' deregistration delay, the termination hook's wait and
            the servers' stop timeout. Default: 120 seconds (generations are long).
        :param startup_timeout: launch to every server healthy: boot, weights download, load
            and, without `compiled_prefix`, compilation. Default: 60 minutes, the most a
            rolling update may pause.
        :param request_timeout: the load balancer's idle timeout: how long a request may go
            without a byte (a long non-streamed generation). Default: 10 minutes.
        :param root_volume_size: Default: 500 GiB gp3 (a 70B model in bfloat16 is 140 GB),
            encrypted with `key`.
        :param key, public, certificate, allow_from, access_logs_bucket, deletion_protection,
            imds_hop_limit, notification_topic, catalog, compatibility: as for NeuronFleet.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        compatibility = compatibility or load_compatibility()
        drain = drain or Duration.seconds(DEFAULT_DRAIN_SECONDS)
        startup_timeout = startup_timeout or Duration.minutes(DEFAULT_STARTUP_MINUTES)
        extra_environment = dict(extra_environment or {})
        problems = llm_fleet_problems(
            instance_types=instance_types,
            weights=weights,
            settings=settings,
            architecture=architecture,
            port=port,
            extra_environment=extra_environment,
            waiting_requests_per_instance=waiting_requests_per_instance,
            catalog=catalog,
            compatibility=compatibility,
        ) + group_problems(
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            desired_capacity=desired_capacity,
            port=port,
            drain=drain,
            startup_timeout=startup_timeout,
            public=public,
            certificate_given=certificate is not None,
            imds_hop_limit=imds_hop_limit,
        )
        raise_if_problems("LlmFleet", self, problems)
        types = list(instance_types)
        self.instance_types: tuple[str, ...] = tuple(types)
        warn_about_capacity(self, types, catalog)
        if vllm_environment == VLLM_ENVIRONMENT:
            _warn_if_plugin_cannot_serve(self, types, compatibility)
        self.servers: tuple[Server, ...] = tuple(
            server_layout(engine_cores(catalog.get(types[0])).count, settings.tensor_parallel, port)
        )
        """The vLLM servers each instance runs: index, port and NeuronCore range."""
        self.settings = settings
        self.weights = weights
        self.served_model_name = served_model_name or _default_name(weights)
        self.waiting_requests_per_instance = waiting_requests_per_instance
        self.requests_per_instance: int | None = None
        self.neuroncore_utilization_percent: int | None = None
        self.load_balancer_public = public
        self._add_identity(key, types, machine_image, compatibility)
        self.frontend = self._add_frontend(
            vpc,
            port=port,
            drain=drain,
            public=public,
            certificate=certificate,
            allow_from=allow_from,
            access_logs_bucket=access_logs_bucket,
            deletion_protection=deletion_protection,
            idle_timeout=request_timeout or Duration.minutes(10),
        )
        self.load_balancer: elbv2.ApplicationLoadBalancer = self.frontend.load_balancer
        self.target_group: elbv2.ApplicationTargetGroup = self.frontend.target_group
        self.target_groups = tuple(self.frontend.target_groups)
        """One target group per server port, in server order."""
        self.listener: elbv2.ApplicationListener = self.frontend.listener
        self.connections: ec2.Connections = self.load_balancer.connections
        mixed = len(types) > 1
        self.launch_template = add_launch_template(
            self, types, mixed, imds_hop_limit, root_volume_size or Size.gibibytes(500), None
        )
        self.group = add_group(
            self,
            vpc,
            types,
            0 if mixed else None,
            capacity=(min_capacity, max_capacity, desired_capacity),
            startup_timeout=startup_timeout,
            replace_on_update=False,
            notification_topic=notification_topic,
        )
        wheel = resolve_runtime_wheel(self, runtime_wheel)
        grant_instance_basics(self, wheel, LLM_METRIC_NAMESPACE)
        self._grant_weights(weights)
        self._add_boot(
            wheel=wheel,
            vllm_environment=vllm_environment,
            extra_environment=extra_environment,
            drain=drain,
            startup_timeout=startup_timeout,
        )
        waive_unlisted_types(
            (self.group if mixed else self.launch_template).node.default_child,  # type: ignore[arg-type]
            types,
            catalog,
            "E3628",
        )
        add_drain_hook(self, drain)
        if waiting_requests_per_instance is not None:
            self.group.scale_to_track_metric(
                "QueueScaling",
                metric=self.metric_requests_waiting(),
                target_value=waiting_requests_per_instance,
            )
        acknowledge_findings(
            self,
            default_peers=allow_from is None,
            notified=notification_topic is not None,
            metric_namespace=LLM_METRIC_NAMESPACE,
        )

    @property
    def url(self) -> str:
        """The listener URL; the OpenAI API is under /v1 (e.g. /v1/chat/completions)."""
        return self.frontend.url

    # --- metrics -----------------------------------------------------------------------------

    def metric_requests_waiting(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests waiting in an instance's vLLM servers, averaged over the group per minute.

        Published by `inf3kit llm metrics` on each instance (namespace `Inf3kit/LLM`, dimension
        AutoScalingGroupName): the queue the group scales on.
        """
        return cloudwatch.Metric(
            namespace=LLM_METRIC_NAMESPACE,
            metric_name=REQUESTS_WAITING_METRIC,
            dimensions_map={"AutoScalingGroupName": self.group.auto_scaling_group_name},
            unit=cloudwatch.Unit.COUNT,
            **metric_defaults("Average", options),
        )

    def metric_healthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression:
        """Instances every server of which passes its health check: the fewest healthy targets
        of any server's target group (minimum per minute), so one dead server per instance
        shows, not only server 0's."""
        return self._across_servers("MIN", "healthy_host_count", "Minimum", options)

    def metric_unhealthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression:
        """The most unhealthy targets of any server's target group (maximum per minute)."""
        return self._across_servers("MAX", "unhealthy_host_count", "Maximum", options)

    def _across_servers(
        self, function: str, metric: str, statistic: str, options: MetricOptions
    ) -> cloudwatch.MathExpression:
        """`function` over one target-group metric per server port, per timestamp (CloudWatch
        metric math: MIN/MAX of an array of time series is one time series). The ids name the
        metric (healthy0, unhealthy0...), since one dashboard graph shows both."""
        settings = metric_defaults(statistic, options)
        label = settings.pop("label", None)
        metrics: dict[str, cloudwatch.IMetric] = {
            f"{metric.split('_')[0]}{i}": getattr(group.metrics, metric)(**settings)
            for i, group in enumerate(self.target_groups)
        }
        return cloudwatch.MathExpression(
            expression=f"{function}([{', '.join(metrics)}])",
            using_metrics=metrics,
            label=label,
            period=settings["period"],
        )

    def metric_requests(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the load balancer received, over every server (Sum per minute)."""
        return self.load_balancer.metrics.request_count(**metric_defaults("Sum", options))

    def metric_target_response_time(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Time to the servers' answer over every server (p99): a whole non-streamed
        generation, or the first byte of a streamed one."""
        return self.load_balancer.metrics.target_response_time(**metric_defaults("p99", options))

    def metric_http_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """5xx answers from the servers, over every server (Sum per minute)."""
        return self.load_balancer.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, **metric_defaults("Sum", options)
        )

    # --- helpers -----------------------------------------------------------------------------

    def _add_identity(
        self,
        key: kms.IKey | None,
        types: list[str],
        machine_image: ec2.IMachineImage | None,
        compatibility: Compatibility,
    ) -> None:
        self.key = key or kms.Key(
            self, "Key", description="inf3kit LLM fleet volumes and logs", enable_key_rotation=True
        )
        allow_ebs_in_this_account(self.key)
        allow_log_group(self.key, "*", sid="FleetLogGroup")
        self.log_group = logs.LogGroup(
            self, "Logs", encryption_key=self.key, retention=logs.RetentionDays.ONE_MONTH
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="inf3kit LLM fleet instance: read its weights, publish metrics and logs",
        )
        self.machine_image = machine_image or NeuronAmi(
            self,
            "Ami",
            instance_types=types,
            parameter_name=VLLM_DLAMI_PARAMETER,
            compatibility=compatibility,
        )

    def _add_frontend(self, vpc: ec2.IVpc, *, port: int, **props: object) -> FleetLoadBalancer:
        """The load balancer, and the instances' group that admits only it on the server ports."""
        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="inf3kit LLM fleet instances: vLLM ports from the load balancer only",
        )
        frontend = FleetLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            port=port,
            servers=len(self.servers),
            health_path=HEALTH_PATH,
            least_outstanding_requests=True,
            **props,  # type: ignore[arg-type]
        )
        ports = (
            ec2.Port.tcp(port)
            if len(self.servers) == 1
            else ec2.Port.tcp_range(port, port + len(self.servers) - 1)
        )
        self.security_group.add_ingress_rule(
            frontend.security_group, ports, "load balancer to the vLLM servers"
        )
        frontend.security_group.add_egress_rule(
            self.security_group, ports, "to the vLLM servers on the instances"
        )
        return frontend

    def _grant_weights(self, weights: LlmWeights) -> None:
        """List and read the weight and compiled prefixes only; read the token secret only."""
        for sid, uri in (("Weights", weights.s3_prefix), ("Compiled", weights.compiled_prefix)):
            found = split_s3_uri(uri) if uri else None
            if found is None:
                continue
            bucket = s3.Bucket.from_bucket_name(self, f"{sid}Bucket", found[0])
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"List{sid}",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{found[1]}*"]}},
                )
            )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"Read{sid}",
                    actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(f"{found[1]}*")],
                )
            )
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{found[0]}/{found[1]}*]",
                f"The instances read every object under the {sid.lower()} prefix (aws s3 sync "
                "of a model folder whose file names the model decides), and nothing else.",
            )
        if weights.token_secret is not None:
            secret = (
                secretsmanager.Secret.from_secret_complete_arn(
                    self, "TokenSecret", weights.token_secret
                )
                if weights.token_secret.startswith("arn:")
                else secretsmanager.Secret.from_secret_name_v2(
                    self, "TokenSecret", weights.token_secret
                )
            )
            secret.grant_read(self.role)
            if not weights.token_secret.startswith("arn:"):
                acknowledge(
                    self.role,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
                    f"<AWS::Region>:<AWS::AccountId>:secret:{weights.token_secret}-??????]",
                    "A secret given by name is read through its ARN with the 6-character "
                    "suffix Secrets Manager appends ('-??????'): this one secret only.",
                )

    def _add_boot(
        self,
        *,
        wheel: RuntimeWheel | None,
        vllm_environment: str,
        extra_environment: dict[str, str],
        drain: Duration,
        startup_timeout: Duration,
    ) -> None:
        plan = BootPlan(
            servers=self.servers,
            weights=self.weights,
            settings=self.settings,
            vllm_environment=vllm_environment,
            vllm_arguments=vllm_arguments(
                self.settings,
                served_model_name=self.served_model_name,
                port="${INF3KIT_VLLM_PORT}",
            ),
            environment=engine_environment(
                self.settings, compiled=self.weights.compiled_prefix is not None
            )
            | extra_environment,
            drain_seconds=int(drain.to_seconds()),
            ready_seconds=int(startup_timeout.to_seconds()),
            signal_success=signal_command(self, "SUCCESS"),
            signal_failure=signal_command(self, "FAILURE"),
        )
        # inf3kit is only the metrics publisher here: no torch-neuronx, no Neuron pip index.
        requirements = default_runtime_requirements(None)  # no Neuron release: inf3kit only
        self.launch_template.user_data.add_commands(  # type: ignore[union-attr]
            failure_trap(self),
            "set -euo pipefail",
            "mkdir -p /opt/inf3kit/llm",
            *install_runtime(requirements, None, wheel),
            *boot_commands(plan),
        )


def _warn_if_plugin_cannot_serve(
    fleet: LlmFleet, types: list[str], compatibility: Compatibility
) -> None:
    """The DLAMI's vLLM environment is the vLLM Neuron plugin, which the engines matrix lists
    for some families only (Trn2, Trn3); elsewhere vLLM needs NxD Inference."""
    refusal = compatibility.engine_choice(types, PLUGIN_DISTRIBUTION)
    if isinstance(refusal, str):
        Annotations.of(fleet).add_warning_v2(
            VLLM_ENVIRONMENT_WARNING_ID,
            "the DLAMI's vLLM environment carries the vLLM Neuron plugin, and "
            f"{refusal.split('. Fix:')[0]}. "
            "Fix: pass vllm_environment (and machine_image) with vLLM for NxD Inference "
            "(docs/llm.md, EC2 fleet)",
        )


def _default_name(weights: LlmWeights) -> str:
    if weights.huggingface_id:
        return weights.huggingface_id
    found = split_s3_uri(weights.s3_prefix or "")
    return found[1].rstrip("/").rsplit("/", 1)[-1] if found else "model"
