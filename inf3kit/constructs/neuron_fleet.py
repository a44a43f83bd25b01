"""NeuronFleet: an Auto Scaling group of Neuron instances serving a bundle behind an ALB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jsii
from aws_cdk import Annotations, Duration, Size, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from inf3kit.catalog import (
    Catalog,
    Compatibility,
    CompiledVariant,
    family_of,
    load_catalog,
    load_compatibility,
)
from inf3kit.constructs.fleet_checks import group_problems, instance_type_problems
from inf3kit.constructs.fleet_group import (
    acknowledge_findings,
    add_group,
    add_launch_template,
    warn_about_capacity,
)
from inf3kit.constructs.fleet_lifecycle import (
    WarmPool,
    add_drain_hook,
    add_launch_hook,
    add_scaling,
    add_warm_pool,
)
from inf3kit.constructs.fleet_load_balancer import FleetLoadBalancer
from inf3kit.constructs.fleet_metrics import (
    FleetBase,
)
from inf3kit.constructs.fleet_startup import StartupEstimate, estimate_startup
from inf3kit.constructs.fleet_user_data import add_user_data, grant_boot_access
from inf3kit.constructs.hardware_checks import waive_unlisted_types
from inf3kit.constructs.kms_policies import allow_ebs_in_this_account, allow_log_group
from inf3kit.constructs.neuron_ami import NeuronAmi, PipelineImage
from inf3kit.constructs.runtime_install import (
    NEURON_PIP_INDEX,
    RELEASE_WARNING_ID,
    RuntimeWheel,
    default_runtime_requirements,
)
from inf3kit.constructs.runtime_settings import RUNTIME_VARIABLES, RuntimeSettings
from inf3kit.constructs.runtime_wheel import IndexInstall, resolve_runtime_wheel
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import warm_pool_problems


@jsii.implements(ec2.IConnectable)
class NeuronFleet(FleetBase):
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
        bundle_variants: Sequence[CompiledVariant] = (),
        bundle_size: Size | None = None,
        min_capacity: int = 1,
        max_capacity: int = 2,
        desired_capacity: int | None = None,
        machine_image: ec2.IMachineImage | None = None,
        port: int = 8080,
        runtime: RuntimeSettings | None = None,
        extra_environment: Mapping[str, str] | None = None,
        neuron_sdk: str | None = None,
        runtime_requirements: Sequence[str] | None = None,
        pip_extra_index_url: str | None = NEURON_PIP_INDEX,
        runtime_wheel: RuntimeWheel | IndexInstall | None = None,
        spot_percent: int = 0,
        warm_pool: WarmPool | None = None,
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
        :param bundle_variants: the bundle's compiled variants (from its manifest). Each Neuron
            variant for one of the types' families must come from a Neuron release no newer
            than `neuron_sdk`, and from a compiler the matrix knows; otherwise synthesis fails
            with the fix. Default: none, unchecked (the stacks pass a local bundle's variants).
        :param bundle_size: the bundle archive's size, for the default `startup_timeout`.
            Default: unknown, estimated as 2 GiB (the stacks pass a local bundle's size).
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
        :param neuron_sdk: the Neuron release the instances run, a release of the compatibility
            matrix (`neuron_releases`): boot installs its torch-neuronx, neuronx-cc and torch at
            their exact versions, and bundles are checked against it. Default: the release the
            matrix names for the types' families (they must agree); a family no release lists
            yet (inf3) is refused alone and warned about beside a known one. With a baked AMI,
            pass the pipeline's `neuron_sdk`.
        :param runtime_requirements: what pip installs on boot. Default: `inf3kit[serve]` at
            this library's version, plus the `neuron_sdk` release's torch-neuronx, neuronx-cc
            and torch, pinned.
        :param pip_extra_index_url: extra pip index. Default: the AWS Neuron repository (for
            torch-neuronx); None uses PyPI only.
        :param runtime_wheel: `RuntimeWheel(bucket, key, wheel_name)`: install inf3kit from this
            wheel in S3 (the instance may read that object only). Default: this inf3kit's own
            wheel, built at synthesis and uploaded as an asset of the stack, since inf3kit is
            on no public index. `"index"` installs `runtime_requirements` from the package
            index instead (a private index that publishes inf3kit).
        :param spot_percent: share of instances above the base on Spot, with capacity
            rebalancing. Default: 0, all on-demand.
        :param warm_pool: `WarmPool(min_size, state)`: keep `min_size` pre-bootstrapped
            instances so scale-out skips boot and model download. Default: no warm pool. It
            needs a single instance type and no Spot (AWS refuses it otherwise). State default:
            `stopped` (pay only for volumes); `hibernated` is refused: no Inferentia or Trainium
            family supports EC2 hibernation. With a warm pool the group gets a launch lifecycle
            hook that `inf3kit bootstrap` completes (so a pool instance is stopped only once
            prepared), and updates replace the whole group and pool (CloudFormation's rolling
            update skips warm-pool instances, which would keep serving the old bundle); such an
            update briefly doubles the group.
        :param requests_per_instance: target ALB requests per minute per instance. Default:
            400; None turns request scaling off.
        :param neuroncore_utilization_percent: target average NeuronCore utilisation.
            Default: 70; None turns it off.
        :param drain: how long an instance keeps serving in-flight requests when it leaves:
            the target group's deregistration delay, the termination hook's wait and the
            runtime's SIGTERM grace. Default: 30 seconds.
        :param startup_timeout: how long launch-to-ready may take (boot, install, download,
            load, warm-up): the health check grace period, the signal timeout and the rolling
            update pause. Default: estimated from the boot, the pip install of the Neuron
            release (short on a baked AMI), the bundle's download and its load, with a 50 %
            margin, within 10..60 minutes (`startup_estimate`, inf3kit.constructs.fleet_startup;
            24 minutes for a small bundle on the DLAMI). At most 60 minutes.
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
        runtime = runtime or RuntimeSettings()
        release_check = compatibility.check_release(
            []
            if isinstance(instance_types, str)
            else [t for t in instance_types if not Token.is_unresolved(t)],
            neuron_sdk,
            on_dlami=machine_image is None,
        )
        release = compatibility.release(release_check.version) if release_check.version else None
        requirements = (
            tuple(runtime_requirements)
            if runtime_requirements is not None
            else default_runtime_requirements(release)
        )
        self.startup_estimate: StartupEstimate = estimate_startup(
            bundle_bytes=None if bundle_size is None else int(bundle_size.to_bytes()),
            requirements=requirements,
            baked=isinstance(machine_image, PipelineImage),
        )
        """What the default startup timeout is made of (inf3kit.constructs.fleet_startup)."""
        startup_timeout = startup_timeout or self.startup_estimate.timeout
        self.startup_timeout: Duration = startup_timeout
        problems = _validate(
            instance_types=instance_types,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            desired_capacity=desired_capacity,
            port=port,
            spot_percent=spot_percent,
            warm_pool_min_size=warm_pool.min_size if warm_pool else None,
            warm_pool_state=warm_pool.state if warm_pool else "stopped",
            requests_per_instance=requests_per_instance,
            neuroncore_utilization_percent=neuroncore_utilization_percent,
            drain=drain,
            startup_timeout=startup_timeout,
            public=public,
            certificate=certificate,
            imds_hop_limit=imds_hop_limit,
            runtime=runtime,
            extra_environment=extra_environment or {},
            catalog=catalog,
            compatibility=compatibility,
        )
        if release_check.version is not None and not isinstance(instance_types, str):
            known = [t for t in instance_types if not Token.is_unresolved(t)]
            for family, name in {family_of(t): t for t in reversed(known)}.items():
                problems += [
                    f"bundle_variants: {p}"
                    for p in compatibility.serving_problems(
                        bundle_variants,
                        instance_type=name,
                        serving=f"the fleet's {family} instances",
                        serving_sdk=release_check.version,
                    )
                ]
        raise_if_problems("NeuronFleet", self, [*problems, *release_check.problems])
        for warning in release_check.warnings:
            Annotations.of(self).add_warning_v2(RELEASE_WARNING_ID, warning)
        self.neuron_sdk: str | None = release_check.version
        """The Neuron release the instances install (None: only unresolved types)."""
        types = list(instance_types)
        self.instance_types: tuple[str, ...] = tuple(types)
        warn_about_capacity(self, types, catalog)
        mixed = len(types) > 1 or spot_percent > 0
        self.requests_per_instance = requests_per_instance
        self.neuroncore_utilization_percent = neuroncore_utilization_percent
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
        )
        self.load_balancer: elbv2.ApplicationLoadBalancer = self.frontend.load_balancer
        self.target_group: elbv2.ApplicationTargetGroup = self.frontend.target_group
        self.listener: elbv2.ApplicationListener = self.frontend.listener
        self.connections: ec2.Connections = self.load_balancer.connections
        self.launch_template = add_launch_template(
            self, types, mixed, imds_hop_limit, root_volume_size, data_volume_size
        )
        self.group = add_group(
            self,
            vpc,
            types,
            spot_percent if mixed else None,
            capacity=(min_capacity, max_capacity, desired_capacity),
            startup_timeout=startup_timeout,
            replace_on_update=warm_pool is not None,
            notification_topic=notification_topic,
        )
        wheel = resolve_runtime_wheel(self, runtime_wheel)
        grant_boot_access(self, bundle_bucket, bundle_key, wheel)
        add_user_data(
            self,
            bundle_url=f"s3://{bundle_bucket.bucket_name}/{bundle_key}",
            port=port,
            drain=drain,
            startup_timeout=startup_timeout,
            serving_environment=runtime.environment() | dict(extra_environment or {}),
            requirements=requirements,
            pip_extra_index_url=pip_extra_index_url,
            wheel=wheel,
            data_volume=data_volume_size is not None,
            lifecycle_hook=add_launch_hook(self, startup_timeout) if warm_pool else None,
        )
        waive_unlisted_types(
            (self.group if mixed else self.launch_template).node.default_child,  # type: ignore[arg-type]
            types,
            catalog,
            "E3628",
        )
        add_drain_hook(self, drain)
        self.warm_pool = add_warm_pool(self, warm_pool) if warm_pool is not None else None
        add_scaling(self)
        acknowledge_findings(
            self, default_peers=allow_from is None, notified=notification_topic is not None
        )

    @property
    def url(self) -> str:
        """The listener URL: http:// or https:// and the load balancer's DNS name."""
        return self.frontend.url

    # --- helpers ---------------------------------------------------------------------------

    def _add_identity(
        self,
        key: kms.IKey | None,
        types: list[str],
        machine_image: ec2.IMachineImage | None,
        compatibility: Compatibility,
    ) -> None:
        """The key (usable by EBS and the log group), log group, instance role and AMI."""
        self.key: kms.IKey = key or kms.Key(
            self,
            "Key",
            description="inf3kit fleet volumes and logs",
            enable_key_rotation=True,
        )
        allow_ebs_in_this_account(self.key)
        allow_log_group(self.key, "*", sid="FleetLogGroup")
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

    def _add_frontend(self, vpc: ec2.IVpc, *, port: int, **props: Any) -> FleetLoadBalancer:
        """The load balancer, and the instances' group that admits only it on `port`."""
        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="inf3kit fleet instances: runtime port from the load balancer only",
        )
        frontend = FleetLoadBalancer(self, "LoadBalancer", vpc=vpc, port=port, **props)
        self.security_group.add_ingress_rule(
            frontend.security_group,
            ec2.Port.tcp(port),
            "load balancer to the inf3kit runtime",
        )
        frontend.security_group.add_egress_rule(
            self.security_group, ec2.Port.tcp(port), "to the inf3kit runtime on the instances"
        )
        return frontend


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
    imds_hop_limit: int,
    runtime: RuntimeSettings,
    extra_environment: Mapping[str, str],
    catalog: Catalog,
    compatibility: Compatibility,
) -> list[str]:
    problems = instance_type_problems(instance_types, catalog, compatibility)
    if isinstance(instance_types, str):
        return problems
    problems += group_problems(
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
    if not 0 <= spot_percent <= 100:
        problems.append(f"spot_percent {spot_percent} must be 0..100. Fix: e.g. 0 or 50")
    if warm_pool_min_size is not None:
        problems += warm_pool_problems(instance_types, spot_percent, warm_pool_state)
        if warm_pool_min_size < 0:
            problems.append(f"warm_pool.min_size {warm_pool_min_size} must be >= 0. Fix: e.g. 1")
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
