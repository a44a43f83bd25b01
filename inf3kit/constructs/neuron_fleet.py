"""NeuronFleet: an Auto Scaling group of Neuron instances serving a bundle behind an ALB."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Literal

import jsii
from aws_cdk import Annotations, ArnFormat, Aws, Duration, Size, Stack, Tags, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from inf3kit.catalog import Catalog, Compatibility, load_catalog, load_compatibility
from inf3kit.constructs.fleet_load_balancer import FleetLoadBalancer
from inf3kit.constructs.hardware_checks import check_instance_type, warn_if_provisional
from inf3kit.constructs.kms_policies import allow_ebs_in_this_account
from inf3kit.constructs.nag import acknowledge, waive_cfn_lint
from inf3kit.constructs.neuron_ami import NeuronAmi
from inf3kit.constructs.runtime_install import (
    INSTALL_DIR,
    NEURON_PIP_INDEX,
    default_runtime_requirements,
)
from inf3kit.constructs.runtime_settings import RUNTIME_VARIABLES, RuntimeSettings
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import (
    capacity_problems,
    duplicate_problems,
    public_listener_problems,
    warm_pool_problems,
)

NEURON_METRIC_NAMESPACE = "Inf3kit/Neuron"
"""CloudWatch namespace of the NeuronCore utilisation metric the fleet scales on."""
NEURONCORE_UTILIZATION_METRIC = "NeuronCoreUtilization"
"""Average utilisation (percent) of the instance's NeuronCores, dimension AutoScalingGroupName."""
NO_FALLBACK_WARNING_ID = "inf3kit:fleetWithoutFallback"
LAUNCH_HOOK_NAME = "inf3kit-bootstrap"
"""The launch lifecycle hook a warm-pool group waits on until `inf3kit bootstrap` completes it."""
FLEET_TAG = "inf3kit:fleet"
"""Tag on the group (unique per fleet) that scopes the instances' lifecycle permission."""
BOOT_SCRIPT = "/var/lib/cloud/scripts/per-boot/inf3kit-bootstrap"
"""cloud-init runs this on every boot; user data itself runs only on the first."""

WarmPoolState = Literal["stopped", "hibernated", "running"]
_POOL_STATES = {
    "stopped": autoscaling.PoolState.STOPPED,
    "hibernated": autoscaling.PoolState.HIBERNATED,
    "running": autoscaling.PoolState.RUNNING,
}


ROOT_DISKS = r"""$(lsblk -lnspo NAME "$(findmnt -nvo SOURCE /)" | tr '\n' ' ')"""
"""Shell: the root filesystem's device and the devices under it (partition, disk), one line."""


def data_volume_discovery(
    by_id: str = "/dev/disk/by-id", root: str = ROOT_DISKS, wait_seconds: int = 60
) -> str:
    """Shell that sets `dev` to the EBS data volume's device, or to '' if none appears.

    Nitro renames /dev/sdf to an NVMe device in attach order, and trn sizes also carry NVMe
    instance storage, so the device name says nothing. EBS volumes have
    `nvme-Amazon_Elastic_Block_Store_*` links in `by_id` (instance storage has
    `nvme-Amazon_EC2_NVMe_Instance_Storage_*`); the first one that is neither a partition nor
    a device of the root filesystem (`root`) is the data volume. Waits up to `wait_seconds`
    for it to attach and never fails under `set -euo pipefail` (no pipeline can SIGPIPE, every
    test is inside `if`), so a missing volume leaves the install on the root volume.
    """
    return (
        f'root=" {root} "; dev=""; for _ in $(seq {wait_seconds}); do '
        f"for l in {by_id}/nvme-Amazon_Elastic_Block_Store_*; do "
        'if [[ -e $l && $l != *-part* ]]; then d=$(readlink -f "$l"); '
        'if [[ $root != *" $d "* ]]; then dev=$d; break 2; fi; fi; done; sleep 1; done'
    )


@jsii.implements(ec2.IConnectable)
class NeuronFleet(Construct):
    """EC2 Neuron instances that run `inf3kit serve` on a model bundle, behind an ALB.

    Each instance boots a Neuron AMI, installs the runtime and runs `inf3kit bootstrap`, which
    downloads and verifies the bundle, starts the server as a systemd service pinned to the
    NeuronCores, waits for readiness and signals CloudFormation. The group prefers the instance
    types in the order given and falls back to the next when a type has no capacity; the bundle
    carries one compiled variant per target and the runtime loads the one for the hardware.
    Updates roll one instance at a time and wait for each bootstrap's success signal, so a bad
    bundle or AMI rolls the stack back instead of replacing healthy instances.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        instance_types: Sequence[str],
        bundle_bucket: s3.IBucket,
        bundle_key: str,
        min_capacity: int = 1,
        max_capacity: int = 2,
        desired_capacity: int | None = None,
        machine_image: ec2.IMachineImage | None = None,
        port: int = 8080,
        runtime: RuntimeSettings | None = None,
        extra_environment: Mapping[str, str] | None = None,
        runtime_requirements: Sequence[str] | None = None,
        pip_extra_index_url: str | None = NEURON_PIP_INDEX,
        runtime_wheel_bucket: s3.IBucket | None = None,
        runtime_wheel_key: str | None = None,
        spot_percent: int = 0,
        warm_pool_min_size: int | None = None,
        warm_pool_state: WarmPoolState = "stopped",
        requests_per_instance: int | None = 400,
        neuroncore_utilization_percent: int | None = 70,
        drain: Duration | None = None,
        startup_timeout: Duration | None = None,
        root_volume_size: Size | None = None,
        data_volume_size: Size | None = None,
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
        :param instance_types: EC2 Neuron types in order of preference; the first is preferred,
            the rest are capacity fallback (on-demand allocation strategy `prioritized`).
        :param bundle_bucket: holds the bundle archive; instances may read only `bundle_key`.
        :param bundle_key: the object key of the bundle `.tar.gz`.
        :param min_capacity: Default: 1 instance.
        :param max_capacity: Default: 2 instances.
        :param desired_capacity: Default: unset, so the group starts at `min_capacity` and
            deployments never reset what scaling chose.
        :param machine_image: the AMI. Default: the Neuron DLAMI of the compatibility matrix
            for these types (`NeuronAmi`), read from its public SSM parameter at deploy time.
        :param port: the runtime port. Default: 8080.
        :param runtime: batching, queue, deadline and body limit of the inf3kit runtime, set as
            its INF3KIT_* variables. Default: the runtime's own defaults.
        :param extra_environment: more server variables: NEURON_* (Neuron runtime) and the
            INF3KIT_* settings without a typed prop, such as INF3KIT_LOG_LEVEL
            (docs/runtime.md). Default: none.
        :param runtime_requirements: what pip installs on boot. Default: `inf3kit[serve]` at
            this library's version, plus `torch-neuronx`.
        :param pip_extra_index_url: extra pip index. Default: the AWS Neuron repository (for
            torch-neuronx); None uses PyPI only.
        :param runtime_wheel_bucket: with `runtime_wheel_key`, install inf3kit from this wheel
            in S3 instead of PyPI (the instance may read that object only). Default: PyPI.
        :param spot_percent: share of instances above the base on Spot, with capacity
            rebalancing. Default: 0, all on-demand.
        :param warm_pool_min_size: keep this many pre-bootstrapped instances in a warm pool so
            scale-out skips boot and model download. Default: no warm pool. A warm pool needs a
            single instance type and no Spot (AWS refuses it otherwise).
        :param warm_pool_state: Default: `stopped` (pay only for volumes). `hibernated` is
            refused: no Inferentia or Trainium family supports EC2 hibernation. With a warm
            pool the group gets a launch lifecycle hook that `inf3kit bootstrap` completes
            (so a pool instance is stopped only once prepared), and updates replace the whole
            group and pool (CloudFormation's rolling update skips warm-pool instances, which
            would keep serving the old bundle); such an update briefly doubles the group.
        :param requests_per_instance: target ALB requests per minute per instance. Default:
            400; None turns request scaling off.
        :param neuroncore_utilization_percent: target average NeuronCore utilisation.
            Default: 70; None turns it off.
        :param drain: how long an instance keeps serving in-flight requests when it leaves:
            the target group's deregistration delay, the termination hook's wait and the
            runtime's SIGTERM grace. Default: 30 seconds.
        :param startup_timeout: how long launch-to-ready may take (boot, install, download,
            load, warm-up): the health check grace period, the signal timeout and the rolling
            update pause. Default: 20 minutes. At most 60 minutes.
        :param root_volume_size: Default: 150 GiB gp3, encrypted with `key`.
        :param data_volume_size: an extra encrypted gp3 volume mounted at /opt/inf3kit for
            the runtime and models. Default: none, they live on the root volume.
        :param key: encrypts the volumes and the log group. Default: a key is created with
            yearly rotation, usable by EC2 (and so by the Auto Scaling service-linked role) in
            this account only.
        :param public: put the load balancer in public subnets, reachable from the internet.
            Default: False, an internal load balancer. Public needs a certificate.
        :param certificate: serve HTTPS on 443 with this ACM certificate. Default: HTTP on 80.
        :param allow_from: who may reach the listener. Default: the VPC's CIDR (internal) or
            any IPv4 address (public).
        :param access_logs_bucket: receives ALB access logs; must use SSE-S3. Default: a
            bucket is created.
        :param deletion_protection: protect the load balancer from deletion. Default: False.
        :param imds_hop_limit: IMDSv2 response hop limit. Default: 1, so only the host reaches
            the metadata service; use 2 only if containers on the host need instance
            credentials.
        :param notification_topic: receives the group's launch, terminate and error events.
            Default: none; the events stay in the group's activity history and CloudTrail.
        :param catalog: the hardware catalog to check types against. Default: the shipped one
            merged with the file named by INF3KIT_CATALOG.
        :param compatibility: the matrix that says which families a fleet runs on and their
            DLAMI. Default: the shipped one merged with the file named by INF3KIT_CATALOG.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        compatibility = compatibility or load_compatibility()
        drain = drain or Duration.seconds(30)
        startup_timeout = startup_timeout or Duration.minutes(20)
        runtime = runtime or RuntimeSettings()
        requirements = (
            tuple(runtime_requirements)
            if runtime_requirements is not None
            else default_runtime_requirements()
        )
        problems = _validate(
            instance_types=instance_types,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            desired_capacity=desired_capacity,
            port=port,
            spot_percent=spot_percent,
            warm_pool_min_size=warm_pool_min_size,
            warm_pool_state=warm_pool_state,
            requests_per_instance=requests_per_instance,
            neuroncore_utilization_percent=neuroncore_utilization_percent,
            drain=drain,
            startup_timeout=startup_timeout,
            public=public,
            certificate=certificate,
            runtime_wheel=(runtime_wheel_bucket, runtime_wheel_key),
            imds_hop_limit=imds_hop_limit,
            runtime=runtime,
            extra_environment=extra_environment or {},
            catalog=catalog,
            compatibility=compatibility,
        )
        raise_if_problems("NeuronFleet", self, problems)
        types = list(instance_types)
        self.instance_types: tuple[str, ...] = tuple(types)
        self._warn_about_capacity(types, catalog)
        mixed = len(types) > 1 or spot_percent > 0
        initial = desired_capacity if desired_capacity is not None else min_capacity

        self.key: kms.IKey = key or kms.Key(
            self,
            "Key",
            description="inf3kit fleet volumes and logs",
            enable_key_rotation=True,
        )
        self._allow_ebs_and_logs(self.key)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=self.key,
            retention=logs.RetentionDays.ONE_MONTH,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="inf3kit fleet instance: read its bundle, publish metrics and logs",
        )
        self.machine_image: ec2.IMachineImage = machine_image or NeuronAmi(
            self, "Ami", instance_types=types, compatibility=compatibility
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="inf3kit fleet instances: runtime port from the load balancer only",
        )
        self.frontend = FleetLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            port=port,
            drain=drain,
            public=public,
            certificate=certificate,
            allow_from=allow_from,
            access_logs_bucket=access_logs_bucket,
            deletion_protection=deletion_protection,
        )
        self.load_balancer: elbv2.ApplicationLoadBalancer = self.frontend.load_balancer
        self.target_group: elbv2.ApplicationTargetGroup = self.frontend.target_group
        self.listener: elbv2.ApplicationListener = self.frontend.listener
        self.connections: ec2.Connections = self.load_balancer.connections
        self.security_group.add_ingress_rule(
            self.frontend.security_group,
            ec2.Port.tcp(port),
            "load balancer to the inf3kit runtime",
        )
        self.frontend.security_group.add_egress_rule(
            self.security_group, ec2.Port.tcp(port), "to the inf3kit runtime on the instances"
        )

        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=self.machine_image,
            instance_type=None if mixed else ec2.InstanceType(types[0]),
            role=self.role,
            security_group=self.security_group,
            require_imdsv2=True,
            http_put_response_hop_limit=imds_hop_limit,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            instance_metadata_tags=True,
            detailed_monitoring=True,
            associate_public_ip_address=False,
            block_devices=self._block_devices(root_volume_size, data_volume_size),
            user_data=ec2.UserData.for_linux(),
        )
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Resource",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            desired_capacity=desired_capacity,
            launch_template=None if mixed else self.launch_template,
            mixed_instances_policy=self._mixed_policy(types, spot_percent) if mixed else None,
            capacity_rebalance=spot_percent > 0 or None,
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=startup_timeout,
            ),
            default_instance_warmup=startup_timeout,
            signals=autoscaling.Signals.wait_for_count(initial, timeout=startup_timeout)
            if initial > 0
            else None,
            update_policy=autoscaling.UpdatePolicy.replacing_update()
            if warm_pool_min_size is not None
            else autoscaling.UpdatePolicy.rolling_update(
                max_batch_size=1,
                min_instances_in_service=min(min_capacity, max_capacity - 1),
                pause_time=startup_timeout,
                wait_on_resource_signals=True,
            ),
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=notification_topic)]
            if notification_topic is not None
            else None,
        )
        self.group.attach_to_application_target_group(self.target_group)
        self.group.node.add_dependency(self.role)
        Tags.of(self.group).add(FLEET_TAG, self.node.addr)
        self._grant(bundle_bucket, bundle_key, runtime_wheel_bucket, runtime_wheel_key)
        launch_hook = None
        if warm_pool_min_size is not None:
            launch_hook = self._launch_hook(startup_timeout)
        self._user_data(
            bundle_url=f"s3://{bundle_bucket.bucket_name}/{bundle_key}",
            port=port,
            drain=drain,
            startup_timeout=startup_timeout,
            serving_environment=runtime.environment() | dict(extra_environment or {}),
            requirements=requirements,
            pip_extra_index_url=pip_extra_index_url,
            wheel=(runtime_wheel_bucket, runtime_wheel_key),
            data_volume=data_volume_size is not None,
            lifecycle_hook=launch_hook,
        )
        if mixed:
            self._waive_unlisted_types(types, catalog, self.group.node.default_child)
        else:
            self._waive_unlisted_types(types, catalog, self.launch_template.node.default_child)

        self.group.add_lifecycle_hook(
            "Drain",
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=Duration.seconds(max(30, drain.to_seconds() + 30)),
            default_result=autoscaling.DefaultResult.CONTINUE,
        )
        if warm_pool_min_size is not None:
            self.warm_pool: autoscaling.WarmPool | None = self.group.add_warm_pool(
                min_size=warm_pool_min_size,
                pool_state=_POOL_STATES[warm_pool_state],
                reuse_on_scale_in=True,
            )
        else:
            self.warm_pool = None
        if requests_per_instance is not None:
            self.group.scale_on_request_count(
                "RequestScaling", target_requests_per_minute=requests_per_instance
            )
        if neuroncore_utilization_percent is not None:
            self.group.scale_to_track_metric(
                "NeuronCoreScaling",
                metric=self.metric_neuroncore_utilization(),
                target_value=neuroncore_utilization_percent,
            )
        self.load_balancer_public = public
        self._acknowledge(default_peers=allow_from is None)
        if notification_topic is None:
            acknowledge(
                self.group,
                "AwsSolutions-AS3",
                "No notification_topic was given: launch, terminate and error events stay in "
                "the group's activity history and CloudTrail; pass a topic to be notified.",
            )

    # --- metrics ---------------------------------------------------------------------------

    def metric_neuroncore_utilization(
        self, *, period: Duration | None = None, statistic: str = "Average"
    ) -> cloudwatch.Metric:
        """Average NeuronCore utilisation (percent) across the group, per minute by default.

        Published by `inf3kit neuron-metrics` (which reads neuron-monitor; the bootstrap starts
        it) in namespace `Inf3kit/Neuron` with dimension AutoScalingGroupName (docs/fleet.md).
        """
        return cloudwatch.Metric(
            namespace=NEURON_METRIC_NAMESPACE,
            metric_name=NEURONCORE_UTILIZATION_METRIC,
            dimensions_map={"AutoScalingGroupName": self.group.auto_scaling_group_name},
            statistic=statistic,
            period=period or Duration.minutes(1),
            unit=cloudwatch.Unit.PERCENT,
        )

    def metric_request_count_per_target(self) -> cloudwatch.Metric:
        """ALB requests per instance per minute, what the request scaling policy tracks."""
        return self.target_group.metrics.request_count_per_target(period=Duration.minutes(1))

    def metric_target_response_time(self) -> cloudwatch.Metric:
        """p99 time from the load balancer sending a request to the runtime answering."""
        return self.target_group.metrics.target_response_time(
            statistic="p99", period=Duration.minutes(1)
        )

    def metric_healthy_hosts(self) -> cloudwatch.Metric:
        """Instances passing the readiness check (minimum per minute)."""
        return self.target_group.metrics.healthy_host_count(
            statistic="Minimum", period=Duration.minutes(1)
        )

    def metric_unhealthy_hosts(self) -> cloudwatch.Metric:
        """Instances failing the readiness check (maximum per minute)."""
        return self.target_group.metrics.unhealthy_host_count(
            statistic="Maximum", period=Duration.minutes(1)
        )

    def metric_http_5xx(self) -> cloudwatch.Metric:
        """5xx answers from the runtime (429/503 back-pressure shows as 4xx/5xx here)."""
        return self.target_group.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=Duration.minutes(1)
        )

    @property
    def url(self) -> str:
        """The listener URL: http:// or https:// and the load balancer's DNS name."""
        return self.frontend.url

    # --- helpers ---------------------------------------------------------------------------

    def _warn_about_capacity(self, types: list[str], catalog: Catalog) -> None:
        descriptors = [catalog.get(t) for t in types if not Token.is_unresolved(t)]
        for itype in descriptors:
            warn_if_provisional(self, itype)
        if descriptors and all(t.provisional for t in descriptors):
            example = next(
                (t.name for t in catalog.types(family="inf2", platform="ec2")), "inf2.xlarge"
            )
            Annotations.of(self).add_warning_v2(
                NO_FALLBACK_WARNING_ID,
                f"instance_types {', '.join(t.name for t in descriptors)} are all provisional "
                "and the fleet has no generally available fallback, so it cannot launch when "
                f"that capacity is short. Fix: add a GA type after them, e.g. {example!r}",
            )

    def _allow_ebs_and_logs(self, key: kms.IKey) -> None:
        """Let EBS and the log group use the key (a no-op for imported keys: grant it yourself)."""
        allow_ebs_in_this_account(key)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="FleetLogGroup",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": Stack.of(self).format_arn(
                            service="logs", resource="log-group", resource_name="*"
                        )
                    }
                },
            )
        )

    def _block_devices(
        self, root_volume_size: Size | None, data_volume_size: Size | None
    ) -> list[ec2.BlockDevice]:
        def volume(size: Size) -> ec2.BlockDeviceVolume:
            return ec2.BlockDeviceVolume.ebs(
                int(size.to_gibibytes()),
                encrypted=True,
                kms_key=self.key,
                volume_type=ec2.EbsDeviceVolumeType.GP3,
                delete_on_termination=True,
            )

        devices = [
            ec2.BlockDevice(
                device_name="/dev/sda1", volume=volume(root_volume_size or Size.gibibytes(150))
            )
        ]
        if data_volume_size is not None:
            devices.append(ec2.BlockDevice(device_name="/dev/sdf", volume=volume(data_volume_size)))
        return devices

    def _mixed_policy(
        self, types: list[str], spot_percent: int
    ) -> autoscaling.MixedInstancesPolicy:
        return autoscaling.MixedInstancesPolicy(
            launch_template=self.launch_template,
            launch_template_overrides=[
                autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t))
                for t in types
            ],
            instances_distribution=autoscaling.InstancesDistribution(
                on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                on_demand_base_capacity=0,
                on_demand_percentage_above_base_capacity=100 - spot_percent,
                spot_allocation_strategy=autoscaling.SpotAllocationStrategy.CAPACITY_OPTIMIZED_PRIORITIZED,
            ),
        )

    def _grant(
        self,
        bundle_bucket: s3.IBucket,
        bundle_key: str,
        wheel_bucket: s3.IBucket | None,
        wheel_key: str | None,
    ) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadBundle",
                actions=["s3:GetObject"],
                resources=[bundle_bucket.arn_for_objects(bundle_key)],
            )
        )
        if bundle_bucket.encryption_key is not None:
            bundle_bucket.encryption_key.grant_decrypt(self.role)
        if wheel_bucket is not None and wheel_key is not None:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadRuntimeWheel",
                    actions=["s3:GetObject"],
                    resources=[wheel_bucket.arn_for_objects(wheel_key)],
                )
            )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishNeuronMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": NEURON_METRIC_NAMESPACE}},
            )
        )
        self.log_group.grant_write(self.role)
        # The stack id is the stack's full ARN, so the grant names exactly this stack.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignalBootstrapResult",
                actions=["cloudformation:SignalResource"],
                resources=[Aws.STACK_ID],
            )
        )
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
        )

    def _launch_hook(self, startup_timeout: Duration) -> str:
        """A launch lifecycle hook the bootstrap completes, and the permission to complete it.

        EC2 Auto Scaling stops a warm-pool instance as soon as it launches unless a launch
        lifecycle hook holds it ("Use lifecycle hooks with a warm pool"); an instance that never
        completes it is abandoned (terminated and replaced) after the startup timeout.
        """
        self.group.add_lifecycle_hook(
            "LaunchHook",
            lifecycle_hook_name=LAUNCH_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
            heartbeat_timeout=startup_timeout,
            default_result=autoscaling.DefaultResult.ABANDON,
        )
        # Scoped by the group's tag: naming the group would make the role's policy depend on
        # the group, which already waits for the role.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CompleteLaunchHook",
                actions=["autoscaling:CompleteLifecycleAction"],
                resources=[
                    Stack.of(self).format_arn(
                        service="autoscaling",
                        resource="autoScalingGroup",
                        resource_name="*:autoScalingGroupName/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
                conditions={
                    "StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG}": self.node.addr}
                },
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:"
            "<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/*]",
            "CompleteLifecycleAction is held to this fleet's group by its inf3kit:fleet tag; "
            "the group's name cannot appear here, because the group waits for this role.",
        )
        return LAUNCH_HOOK_NAME

    def _user_data(
        self,
        *,
        bundle_url: str,
        port: int,
        drain: Duration,
        startup_timeout: Duration,
        serving_environment: Mapping[str, str],
        requirements: tuple[str, ...],
        pip_extra_index_url: str | None,
        wheel: tuple[s3.IBucket | None, str | None],
        data_volume: bool,
        lifecycle_hook: str | None,
    ) -> None:
        """Short on purpose: install the runtime, then `inf3kit bootstrap` does the work.

        The bootstrap command goes into a cloud-init per-boot script, so it runs again when a
        warm-pool instance starts into service. A failure before it can run (the install) is
        signalled with the AWS CLI the DLAMI ships, which does not depend on what failed.
        """
        stack = Stack.of(self)
        venv = f"{INSTALL_DIR}/venv"
        env = {
            "INF3KIT_GRACE_SECONDS": str(int(drain.to_seconds())),
            **serving_environment,
        }
        bootstrap = [
            f"{venv}/bin/inf3kit",
            "bootstrap",
            "--bundle",
            bundle_url,
            "--port",
            str(port),
            "--region",
            Aws.REGION,
            "--stack",
            stack.stack_name,
            "--resource",
            stack.get_logical_id(self.group.node.default_child),  # type: ignore[arg-type]
            "--ready-timeout",
            str(int(startup_timeout.to_seconds())),
            *(["--lifecycle-hook", lifecycle_hook] if lifecycle_hook else []),
            *[arg for k, v in env.items() for arg in ("--env", f"{k}={v}")],
        ]
        pip = [f"{venv}/bin/pip", "install", "--quiet"]
        if pip_extra_index_url:
            pip += ["--extra-index-url", pip_extra_index_url]
        wheel_bucket, wheel_key = wheel
        commands = ["set -euo pipefail", f"mkdir -p {INSTALL_DIR}"]
        if data_volume:
            commands += [
                data_volume_discovery(),
                f'if [ -n "$dev" ]; then mkfs.xfs -q "$dev"; mount "$dev" {INSTALL_DIR}; '
                f'echo "UUID=$(blkid -s UUID -o value "$dev") {INSTALL_DIR} xfs '
                'defaults,nofail 0 2" >> /etc/fstab; fi',
            ]
        commands.append(f"python3 -m venv {venv}")
        if wheel_bucket is not None and wheel_key is not None:
            wheel_path = f"{INSTALL_DIR}/{wheel_key.rsplit('/', 1)[-1]}"
            commands.append(
                f"aws s3 cp {shlex.quote(f's3://{wheel_bucket.bucket_name}/{wheel_key}')} "
                f"{wheel_path} --region {Aws.REGION}"
            )
            requirements = (
                f"{wheel_path}[serve]",
                *(r for r in requirements if not r.startswith("inf3kit")),
            )
        commands.append(" ".join([*pip, *map(shlex.quote, requirements)]))
        command = " ".join(shlex.quote(a) if not Token.is_unresolved(a) else a for a in bootstrap)
        commands += [
            f"mkdir -p {BOOT_SCRIPT.rsplit('/', 1)[0]}",
            f"cat > {BOOT_SCRIPT} <<'INF3KIT_BOOT'\n#!/bin/bash\nexec {command}\nINF3KIT_BOOT",
            f"chmod 0755 {BOOT_SCRIPT}",
            BOOT_SCRIPT,
        ]
        signal = " ".join(
            [
                "aws cloudformation signal-resource --status FAILURE",
                *("--region", Aws.REGION, "--stack-name", stack.stack_name),
                *("--logical-resource-id", bootstrap[11]),
                '--unique-id "$(cloud-init query instance_id)"',
            ]
        )
        log_failure = 'logger -s -t inf3kit "user data failed at line $LINENO"'
        self.launch_template.user_data.add_commands(  # type: ignore[union-attr]
            f"trap '{log_failure}; {signal} || true' ERR", *commands
        )

    @staticmethod
    def _waive_unlisted_types(types: list[str], catalog: Catalog, resource: object) -> None:
        provisional = [
            t for t in types if not Token.is_unresolved(t) and catalog.get(t).provisional
        ]
        if provisional and isinstance(
            resource, ec2.CfnLaunchTemplate | autoscaling.CfnAutoScalingGroup
        ):
            waive_cfn_lint(
                resource,
                "E3628",
                f"{', '.join(provisional)}: cfn-lint's instance type list only has published "
                "types; provisional ones (no AWS specification yet) are unknown to it",
            )

    def _acknowledge(self, *, default_peers: bool) -> None:
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonSSMManagedInstanceCore]",
            "AmazonSSMManagedInstanceCore gives Session Manager access instead of SSH (no key "
            "pair, no inbound port); it is the AWS-maintained minimum for the SSM agent.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource-level permissions, so its Resource is '*', "
            "narrowed by a cloudwatch:namespace condition to the Inf3kit/Neuron namespace.",
        )
        acknowledge(
            self.group,
            "AwsSolutions-EC26",
            "Every block device of the launch template is encrypted with the fleet's KMS key "
            "(tested); the rule cannot follow the group's reference to the launch template.",
        )
        if default_peers and not self.load_balancer_public:
            acknowledge(
                self.frontend.security_group,
                "AwsSolutions-EC23",
                "The listener ingress is the VPC's own CIDR block (a reference the rule cannot "
                "evaluate at synthesis), never 0.0.0.0/0, because the load balancer is internal.",
            )


def _validate(
    *,
    instance_types: Sequence[str],
    min_capacity: int,
    max_capacity: int,
    desired_capacity: int | None,
    port: int,
    spot_percent: int,
    warm_pool_min_size: int | None,
    warm_pool_state: str,
    requests_per_instance: int | None,
    neuroncore_utilization_percent: int | None,
    drain: Duration,
    startup_timeout: Duration,
    public: bool,
    certificate: acm.ICertificate | None,
    runtime_wheel: tuple[s3.IBucket | None, str | None],
    imds_hop_limit: int,
    runtime: RuntimeSettings,
    extra_environment: Mapping[str, str],
    catalog: Catalog,
    compatibility: Compatibility,
) -> list[str]:
    problems: list[str] = []
    if isinstance(instance_types, str):
        return [
            f"instance_types must be a list, got the string {instance_types!r}. "
            f"Fix: instance_types=[{instance_types!r}]"
        ]
    if not instance_types:
        problems.append(
            "instance_types is empty. Fix: list at least one EC2 Neuron type, e.g. ['inf2.xlarge']"
        )
    for name in instance_types:
        if name.startswith("ml."):
            problems.append(
                f"instance_types: {name!r} is a SageMaker type; fleets take EC2 types. "
                f"Fix: use {name.removeprefix('ml.')!r}"
            )
            continue
        found = check_instance_type(name, platform="ec2", catalog=catalog)
        if not found and not Token.is_unresolved(name):
            refusal = compatibility.fleet_problem(name)
            found = [refusal] if refusal else []
        problems += [f"instance_types: {p}" for p in found]
    problems += [f"instance_types: {p}" for p in duplicate_problems(instance_types)]
    if min_capacity < 0 or max_capacity < 1:
        problems.append(
            f"min_capacity ({min_capacity}) must be >= 0 and max_capacity ({max_capacity}) >= 1. "
            "Fix: use non-negative sizes with max_capacity of at least 1"
        )
    problems += capacity_problems(
        min_capacity,
        max_capacity,
        desired_capacity,
        names=("min_capacity", "max_capacity", "desired_capacity"),
    )
    if not 1024 <= port <= 65535:
        problems.append(
            f"port {port} is not allowed; the runtime runs unprivileged on 1024..65535. "
            "Fix: use e.g. 8080"
        )
    if not 0 <= spot_percent <= 100:
        problems.append(f"spot_percent {spot_percent} must be 0..100. Fix: e.g. 0 or 50")
    if warm_pool_min_size is not None:
        problems += warm_pool_problems(instance_types, spot_percent, warm_pool_state)
        if warm_pool_min_size < 0:
            problems.append(f"warm_pool_min_size {warm_pool_min_size} must be >= 0. Fix: e.g. 1")
    if requests_per_instance is not None and requests_per_instance < 1:
        problems.append(
            f"requests_per_instance {requests_per_instance} must be >= 1. "
            "Fix: e.g. 400, or None to turn request scaling off"
        )
    if (
        neuroncore_utilization_percent is not None
        and not 10 <= neuroncore_utilization_percent <= 95
    ):
        problems.append(
            f"neuroncore_utilization_percent {neuroncore_utilization_percent} must be 10..95. "
            "Fix: e.g. 70, or None to turn NeuronCore scaling off"
        )
    if not drain.is_unresolved() and not 0 <= drain.to_seconds() <= 3600:
        problems.append(
            f"drain {drain.to_seconds():g} s must be 0..3600 seconds (the target group's "
            "deregistration delay limit). Fix: e.g. Duration.seconds(30)"
        )
    if not startup_timeout.is_unresolved() and not 60 <= startup_timeout.to_seconds() <= 3600:
        problems.append(
            f"startup_timeout {startup_timeout.to_seconds():g} s must be 1..60 minutes (a rolling "
            "update pauses at most one hour per batch). Fix: e.g. Duration.minutes(20)"
        )
    problems += [f"public: {p}" for p in public_listener_problems(public, certificate is not None)]
    wheel_bucket, wheel_key = runtime_wheel
    if (wheel_bucket is None) != (wheel_key is None):
        problems.append(
            "runtime_wheel_bucket and runtime_wheel_key go together. Fix: give both, or neither "
            "to install the runtime from PyPI"
        )
    if imds_hop_limit not in (1, 2):
        problems.append(
            f"imds_hop_limit {imds_hop_limit} is not allowed. Fix: use 1 (host only) or 2 "
            "(containers on the host need instance credentials)"
        )
    problems += runtime.problems()
    bad_env = sorted(k for k in extra_environment if not k.startswith(("INF3KIT_", "NEURON_")))
    if bad_env:
        problems.append(
            f"extra_environment keys {', '.join(map(repr, bad_env))} are not runtime settings. "
            "Fix: use INF3KIT_* or NEURON_* variables (docs/runtime.md)"
        )
    typed = sorted(k for k in extra_environment if k in RUNTIME_VARIABLES)
    if typed:
        problems.append(
            f"extra_environment keys {', '.join(map(repr, typed))} are typed props. "
            "Fix: set them with runtime=RuntimeSettings(...)"
        )
    return problems
