"""NeuronAmiPipeline: an EC2 Image Builder pipeline that bakes, tests and publishes a Neuron AMI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsii
import yaml
from aws_cdk import Aws, CfnResource, Names, Size, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from inf3kit.catalog import Catalog, Compatibility, family_of, load_catalog, load_compatibility
from inf3kit.constructs.buckets import log_bucket
from inf3kit.constructs.hardware_checks import check_instance_type, warn_if_provisional
from inf3kit.constructs.kms_policies import allow_ebs_in_this_account
from inf3kit.constructs.nag import acknowledge, waive_cfn_lint
from inf3kit.constructs.runtime_install import (
    INSTALL_DIR,
    NEURON_PIP_INDEX,
    RuntimeWheel,
    default_runtime_requirements,
)
from inf3kit.constructs.runtime_wheel import IndexInstall, resolve_runtime_wheel
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import IMAGE_BUILD_SCHEDULE, cron_problems

DEFAULT_NEURON_SDK = "2.27.1"
"""The Neuron release baked by default: the first that the matrix accepts for every family."""

NEURON_RELEASES: Mapping[str, Mapping[str, str]] = {
    # Neuron SDK "Release Content" page, Neuron 2.27.1 (01/14/2026).
    "2.27.1": {
        "aws-neuronx-dkms": "2.25.4.0",
        "aws-neuronx-runtime-lib": "2.29.40.0",
        "aws-neuronx-collectives": "2.29.41.0",
        "aws-neuronx-tools": "2.27.33.0",
    },
}
"""Driver, runtime and tools package versions of each Neuron release inf3kit knows."""

DEFAULT_SCHEDULE = IMAGE_BUILD_SCHEDULE
"""Weekly, Monday 04:00 UTC: picks up the latest DLAMI (OS and security fixes) every week."""

NEURON_LS = "/opt/aws/neuron/bin/neuron-ls"
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_PARENT = re.compile(r"^(ami-[0-9a-f]{8,17}|ssm:\S+|arn:aws[a-z-]*:imagebuilder:\S+)$")
_PARAMETER = re.compile(r"^/[a-zA-Z0-9_.\-/]+$")


@jsii.implements(ec2.IMachineImage)
class PipelineImage:
    """The AMI a `NeuronAmiPipeline` publishes, resolved by EC2 from SSM at each launch.

    A CloudFormation `AWS::SSM::Parameter::Value` parameter would be resolved before any
    resource of the stack exists, so a fleet in the same stack as its first build could never
    deploy. EC2 resolves `resolve:ssm:` when it launches an instance instead, and whoever uses
    this image (a launch template) is made to depend on the build-at-deploy image, so the first
    instance launches only after the parameter has been published.
    """

    def __init__(self, parameter_name: str, build: IConstruct | None = None) -> None:
        self.parameter_name = parameter_name
        self._build = build
        self._image = ec2.MachineImage.resolve_ssm_parameter_at_launch(
            parameter_name, os=ec2.OperatingSystemType.LINUX
        )

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        """Return `resolve:ssm:<parameter>` and make `scope` wait for the first build."""
        if self._build is not None:
            scope.node.add_dependency(self._build)
        return self._image.get_image(scope)


class NeuronAmiPipeline(Construct):
    """Bakes pinned Neuron driver/runtime/tools and the inf3kit runtime into a tested AMI.

    The pipeline starts from the Neuron DLAMI of the compatibility matrix (read by Image Builder
    from its public SSM parameter at every build, so each build starts from the latest DLAMI),
    installs and holds the pinned Neuron packages, installs inf3kit into /opt/inf3kit/venv (so
    the fleet's boot-time install is a no-op), tests the image on a Neuron instance (driver
    versions, `neuron-ls`, `import inf3kit.runtime`, `inf3kit --help`) and publishes the AMI
    id to an SSM parameter. Fleets read that parameter through `machine_image`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        instance_types: Sequence[str] = ("inf2.xlarge",),
        build_instance_type: str = "inf2.xlarge",
        parent_image: str | None = None,
        parameter_name: str | None = None,
        neuron_sdk: str = DEFAULT_NEURON_SDK,
        neuron_packages: Mapping[str, str] | None = None,
        runtime_requirements: Sequence[str] | None = None,
        pip_extra_index_url: str | None = NEURON_PIP_INDEX,
        runtime_wheel: RuntimeWheel | IndexInstall | None = None,
        vpc: ec2.IVpc | None = None,
        key: kms.IKey | None = None,
        logs_bucket: s3.IBucket | None = None,
        logs_prefix: str = "image-builder/",
        notification_topic: sns.ITopic | None = None,
        schedule: str | None = DEFAULT_SCHEDULE,
        build_at_deploy: bool = True,
        volume_size: Size | None = None,
        test_timeout_minutes: int = 60,
        catalog: Catalog | None = None,
        compatibility: Compatibility | None = None,
    ) -> None:
        """Create the pipeline.

        :param instance_types: the types the image will boot; they must share one DLAMI and
            accept `neuron_sdk`. Default: `inf2.xlarge`.
        :param build_instance_type: an EC2 Neuron type that builds and tests the image (the
            tests need a Neuron device). Default: `inf2.xlarge`, the cheapest.
        :param parent_image: an AMI id, an Image Builder image ARN or `ssm:<parameter>`.
            Default: `ssm:` + the matrix's DLAMI parameter for `instance_types`.
        :param parameter_name: the SSM parameter the AMI id is published to (data type
            `aws:ec2:image`; Image Builder creates it on the first distribution). Default:
            `/inf3kit/ami/<unique name of this construct>`.
        :param neuron_sdk: the Neuron release whose packages are pinned. Default: 2.27.1
            (driver aws-neuronx-dkms 2.25.4.0, runtime-lib 2.29.40.0, collectives 2.29.41.0,
            tools 2.27.33.0).
        :param neuron_packages: apt package -> version to pin instead of the release's.
            Default: the packages of `neuron_sdk` (required for a release inf3kit does not know).
        :param runtime_requirements: what pip installs into /opt/inf3kit/venv. Default:
            `inf3kit[serve]` at this library's version, plus `torch-neuronx`.
        :param pip_extra_index_url: Default: the AWS Neuron pip repository; None uses PyPI only.
        :param runtime_wheel: install inf3kit from this wheel in S3 (the build instance may read
            that object only). Default: this inf3kit's own wheel, built at synthesis and
            uploaded as an asset of the stack; `"index"` installs from the package index.
        :param vpc: build in its first private subnet with egress, with a security group that
            allows no inbound traffic. Default: the account's default VPC and security group.
        :param key: encrypts the image's volumes (and so the AMI's snapshots), the components
            and the default logs bucket. Default: a key is created with yearly rotation.
        :param logs_bucket: receives the build and test logs under `logs_prefix`. Default: a
            KMS-encrypted, SSL-only bucket is created; logs expire after 90 days.
        :param logs_prefix: Default: `image-builder/`.
        :param notification_topic: receives Image Builder's build notifications. Default: none.
        :param schedule: when the pipeline rebuilds, an Image Builder cron expression.
            Default: weekly (`cron(0 4 ? * mon *)`); None builds only when started.
        :param build_at_deploy: also build once while the stack deploys, so the parameter
            exists before anything launches from it. Default: True.
        :param volume_size: the root volume. Default: 150 GiB gp3.
        :param test_timeout_minutes: Default: 60 (60..1440).
        :param catalog: the hardware catalog. Default: the shipped one merged with the file
            named by INF3KIT_CATALOG.
        :param compatibility: the compatibility matrix. Default: the shipped one merged likewise.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        matrix = compatibility or load_compatibility()
        problems = _validate(
            instance_types=instance_types,
            build_instance_type=build_instance_type,
            parent_image=parent_image,
            parameter_name=parameter_name,
            neuron_sdk=neuron_sdk,
            neuron_packages=neuron_packages,
            schedule=schedule,
            test_timeout_minutes=test_timeout_minutes,
            catalog=catalog,
            matrix=matrix,
        )
        raise_if_problems("NeuronAmiPipeline", self, problems)
        if not Token.is_unresolved(build_instance_type):
            warn_if_provisional(self, catalog.get(build_instance_type))
        packages = dict(neuron_packages or NEURON_RELEASES[neuron_sdk])
        requirements = (
            tuple(runtime_requirements)
            if runtime_requirements is not None
            else default_runtime_requirements()
        )
        self.neuron_packages: Mapping[str, str] = packages
        known = [t for t in instance_types if not Token.is_unresolved(t)]
        self.parent_image: str = parent_image or "ssm:" + matrix.dlami_parameter(
            (known or [build_instance_type])[0]
        )
        self.parameter_name: str = parameter_name or (
            "/inf3kit/ami/" + Names.unique_resource_name(self, max_length=80, separator="-")
        )

        self.key: kms.IKey = key or kms.Key(
            self,
            "Key",
            description="inf3kit AMI pipeline volumes and logs",
            enable_key_rotation=True,
        )
        allow_ebs_in_this_account(self.key)
        if logs_bucket is None:
            logs_bucket = log_bucket(
                self,
                "Logs",
                why_unlogged="This bucket holds only Image Builder build and test logs written by "
                "the build instance role; give logs_bucket= to use a bucket with server access "
                "logging.",
                key=self.key,
                keep_days=90,
            )
        self.logs_bucket: s3.IBucket = logs_bucket

        self.role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="inf3kit AMI build instance: Image Builder agent, SSM, its own logs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
                iam.ManagedPolicy.from_aws_managed_policy_name("EC2InstanceProfileForImageBuilder"),
            ],
        )
        wheel = resolve_runtime_wheel(self, runtime_wheel)
        self._grant(logs_prefix, wheel)
        self.instance_profile = iam.CfnInstanceProfile(
            self, "InstanceProfile", roles=[self.role.role_name]
        )

        self.build_component = self._component(
            "BuildComponent",
            "install the pinned Neuron driver, runtime and tools, and the inf3kit runtime",
            _build_document(
                packages,
                requirements,
                pip_extra_index_url,
                wheel,
            ),
        )
        self.test_component = self._component(
            "TestComponent",
            "check the Neuron packages and device, and the inf3kit runtime",
            _test_document(packages),
        )
        size = int((volume_size or Size.gibibytes(150)).to_gibibytes())
        self.recipe = imagebuilder.CfnImageRecipe(
            self,
            "Recipe",
            name=_name(self, "Recipe"),
            version=_version(
                self.parent_image,
                self.build_component.version,
                self.test_component.version,
                str(size),
            ),
            description=f"Neuron {neuron_sdk} packages and the inf3kit runtime on a Neuron DLAMI",
            parent_image=self.parent_image,
            components=[
                imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(component_arn=c.attr_arn)
                for c in (self.build_component, self.test_component)
            ],
            block_device_mappings=[
                imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                    device_name=_ROOT_DEVICE,
                    ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                        encrypted=True,
                        kms_key_id=self.key.key_arn,
                        volume_size=size,
                        volume_type="gp3",
                        delete_on_termination=True,
                    ),
                )
            ],
        )

        self.security_group: ec2.SecurityGroup | None = None
        subnet_id: str | None = None
        if vpc is not None:
            self.security_group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=vpc,
                allow_all_outbound=True,
                description="inf3kit AMI build: no inbound; outbound for apt, pip, S3 and SSM",
            )
            subnet_id = vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids[0]
        self.infrastructure = imagebuilder.CfnInfrastructureConfiguration(
            self,
            "Infrastructure",
            name=_name(self, "Infrastructure"),
            description="inf3kit AMI build and test instances",
            instance_profile_name=self.instance_profile.ref,
            instance_types=[build_instance_type],
            instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=1
            ),
            security_group_ids=[self.security_group.security_group_id]
            if self.security_group is not None
            else None,
            subnet_id=subnet_id,
            logging=imagebuilder.CfnInfrastructureConfiguration.LoggingProperty(
                s3_logs=imagebuilder.CfnInfrastructureConfiguration.S3LogsProperty(
                    s3_bucket_name=self.logs_bucket.bucket_name,
                    s3_key_prefix=logs_prefix.rstrip("/"),
                )
            ),
            sns_topic_arn=notification_topic.topic_arn if notification_topic else None,
            terminate_instance_on_failure=True,
        )
        _waive_unlisted_type(build_instance_type, catalog, self.infrastructure)

        tags = {
            "inf3kit:neuron-sdk": neuron_sdk if neuron_packages is None else "custom",
            "inf3kit:parent-image": self.parent_image,
            **{f"inf3kit:{name}": ver for name, ver in packages.items()},
        }
        self.distribution = imagebuilder.CfnDistributionConfiguration(
            self,
            "Distribution",
            name=_name(self, "Distribution"),
            description=f"publishes the AMI id to {self.parameter_name}",
            distributions=[
                imagebuilder.CfnDistributionConfiguration.DistributionProperty(
                    region=Aws.REGION,
                    # A JSON-typed property in the L1: CloudFormation's own key names.
                    ami_distribution_configuration={
                        "Name": "inf3kit-neuron-{{ imagebuilder:buildDate }}",
                        "Description": f"Neuron {neuron_sdk} and the inf3kit runtime",
                        "AmiTags": tags,
                        "KmsKeyId": self.key.key_arn,
                    },
                    ssm_parameter_configurations=[
                        imagebuilder.CfnDistributionConfiguration.SsmParameterConfigurationProperty(
                            parameter_name=self.parameter_name, data_type="aws:ec2:image"
                        )
                    ],
                )
            ],
        )
        self.pipeline = imagebuilder.CfnImagePipeline(
            self,
            "Resource",
            name=_name(self, "Pipeline"),
            description="bakes and tests the inf3kit Neuron AMI",
            image_recipe_arn=self.recipe.attr_arn,
            infrastructure_configuration_arn=self.infrastructure.attr_arn,
            distribution_configuration_arn=self.distribution.attr_arn,
            image_tests_configuration=imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=test_timeout_minutes
            ),
            enhanced_image_metadata_enabled=True,
            schedule=imagebuilder.CfnImagePipeline.ScheduleProperty(
                schedule_expression=schedule,
                pipeline_execution_start_condition="EXPRESSION_MATCH_ONLY",
            )
            if schedule is not None
            else None,
            status="ENABLED",
        )
        self.image: imagebuilder.CfnImage | None = None
        if build_at_deploy:
            self.image = imagebuilder.CfnImage(
                self,
                "Image",
                image_recipe_arn=self.recipe.attr_arn,
                infrastructure_configuration_arn=self.infrastructure.attr_arn,
                distribution_configuration_arn=self.distribution.attr_arn,
                image_tests_configuration=imagebuilder.CfnImage.ImageTestsConfigurationProperty(
                    image_tests_enabled=True, timeout_minutes=test_timeout_minutes
                ),
                enhanced_image_metadata_enabled=True,
            )
            # The build instance needs the role's inline policy (log writes), not just the role.
            self.image.node.add_dependency(self.role)
        self.machine_image: ec2.IMachineImage = PipelineImage(self.parameter_name, self.image)
        self._acknowledge(logs_prefix)

    # --- helpers ---------------------------------------------------------------------------

    def _grant(self, logs_prefix: str, wheel: RuntimeWheel | None) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteBuildLogs",
                actions=["s3:PutObject"],
                resources=[self.logs_bucket.arn_for_objects(f"{logs_prefix.rstrip('/')}/*")],
            )
        )
        if self.logs_bucket.encryption_key is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="EncryptBuildLogs",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[self.logs_bucket.encryption_key.key_arn],
                )
            )
        if wheel is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadRuntimeWheel",
                    actions=["s3:GetObject"],
                    resources=[wheel.bucket.arn_for_objects(wheel.key)],
                )
            )

    def _component(
        self, id: str, description: str, document: dict[str, Any]
    ) -> imagebuilder.CfnComponent:
        data = yaml.safe_dump(document, sort_keys=False, width=100_000)
        return imagebuilder.CfnComponent(
            self,
            id,
            name=_name(self, id),
            platform="Linux",
            # Hashed resolved: a token's text (the wheel asset's bucket) varies by construction
            # order, its CloudFormation form does not.
            version=_version(json.dumps(Stack.of(self).resolve(data), sort_keys=True)),
            description=description,
            data=data,
            kms_key_id=self.key.key_arn,
        )

    def _acknowledge(self, logs_prefix: str) -> None:
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonSSMManagedInstanceCore]",
            "Image Builder drives the build instance through the SSM agent (no SSH, no inbound "
            "port); AmazonSSMManagedInstanceCore is the AWS-maintained minimum for that agent.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "EC2InstanceProfileForImageBuilder]",
            "EC2InstanceProfileForImageBuilder is the AWS-maintained minimum for the Image "
            "Builder agent (read components, write its logs) and changes with the service.",
        )
        bucket = self.logs_bucket.node.default_child
        if isinstance(bucket, CfnResource):  # an imported bucket's ARN is a different finding
            logical_id = Stack.of(bucket).get_logical_id(bucket)
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{logs_prefix.rstrip('/')}/*]",
                "Image Builder names each build's log objects itself; the role may only put "
                "objects under the pipeline's log prefix of this one bucket.",
            )


_ROOT_DEVICE = "/dev/sda1"  # the Ubuntu DLAMIs' root device name
_APT_LOCK_WAIT = "-o DPkg::Lock::Timeout=600"


def _build_document(
    packages: Mapping[str, str],
    requirements: tuple[str, ...],
    index_url: str | None,
    wheel: RuntimeWheel | None,
) -> dict[str, Any]:
    pins = " ".join(f"'{name}={ver}*'" for name, ver in packages.items())
    venv = f"{INSTALL_DIR}/venv"
    pip = f"{venv}/bin/pip install --quiet"
    if index_url:
        pip += f" --extra-index-url {index_url}"
    steps: list[dict[str, Any]] = [
        {
            "name": "PinNeuronPackages",
            "action": "ExecuteBash",
            "inputs": {
                "commands": [
                    "set -euo pipefail",
                    "export DEBIAN_FRONTEND=noninteractive",
                    # A fresh Ubuntu instance runs unattended-upgrades at boot, which holds the
                    # dpkg lock: stop it, let cloud-init finish, and wait for the lock anyway.
                    "systemctl stop apt-daily.timer apt-daily-upgrade.timer "
                    "unattended-upgrades.service || true",
                    "cloud-init status --wait || true",
                    f"apt-get {_APT_LOCK_WAIT} update -q",
                    f"apt-get {_APT_LOCK_WAIT} install -y -q --allow-downgrades "
                    "--allow-change-held-packages " + pins,
                    "apt-mark hold " + " ".join(packages),
                    # A pinned driver may not build for the parent image's newest kernel: stop
                    # the bake here, with the fix, instead of baking an image with no driver.
                    'dkms status -m aws-neuronx -k "$(uname -r)" | grep -q installed || '
                    '{ echo "aws-neuronx-dkms did not build for kernel $(uname -r): pin a newer '
                    'driver (neuron_packages) or an older parent_image" >&2; exit 1; }',
                ]
            },
        },
    ]
    if wheel is not None:
        wheel_path = f"{INSTALL_DIR}/wheels/{wheel.file_name}"
        steps.append(
            {
                "name": "DownloadRuntimeWheel",
                "action": "S3Download",
                "inputs": [{"source": wheel.s3_url, "destination": wheel_path}],
            }
        )
        requirements = wheel.requirements(wheel_path, requirements)
    steps.append(
        {
            "name": "InstallRuntime",
            "action": "ExecuteBash",
            "inputs": {
                "commands": [
                    "set -euo pipefail",
                    f"mkdir -p {INSTALL_DIR}",
                    f"python3 -m venv {venv}",
                    f"{pip} " + " ".join(f"'{r}'" for r in requirements),
                ]
            },
        }
    )
    return {
        "name": "inf3kit-neuron-runtime",
        "description": "pinned Neuron driver/runtime/tools and the inf3kit runtime",
        "schemaVersion": 1.0,
        "phases": [
            {"name": "build", "steps": steps},
            {
                "name": "validate",
                "steps": [
                    {
                        "name": "RuntimeInstalled",
                        "action": "ExecuteBash",
                        "inputs": {"commands": [f"{venv}/bin/inf3kit --help > /dev/null"]},
                    }
                ],
            },
        ],
    }


def _test_document(packages: Mapping[str, str]) -> dict[str, Any]:
    venv = f"{INSTALL_DIR}/venv"
    checks = [
        f"dpkg-query -W -f='${{Version}}' {name} | grep -q '^{ver}' || "
        f"{{ echo '{name} is not {ver}'; exit 1; }}"
        for name, ver in packages.items()
    ]
    return {
        "name": "inf3kit-neuron-runtime-test",
        "description": "the image boots with the pinned Neuron driver and a working runtime",
        "schemaVersion": 1.0,
        "phases": [
            {
                "name": "test",
                "steps": [
                    {
                        "name": "NeuronPackagesPinned",
                        "action": "ExecuteBash",
                        "inputs": {"commands": ["set -euo pipefail", *checks]},
                    },
                    {
                        "name": "NeuronDevice",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                "set -euo pipefail",
                                "lsmod | grep -q '^neuron '",
                                "test -e /dev/neuron0",
                                NEURON_LS,
                            ]
                        },
                    },
                    {
                        "name": "Inf3kitRuntime",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                "set -euo pipefail",
                                f'{venv}/bin/python -c "import inf3kit.runtime"',
                                f"{venv}/bin/inf3kit --help",
                            ]
                        },
                    },
                ],
            }
        ],
    }


def _name(scope: Construct, suffix: str) -> str:
    """A stable, account-unique Image Builder name (letters, digits and dashes)."""
    return Names.unique_resource_name(scope, max_length=100, separator="-") + "-" + suffix


def _version(*parts: str) -> str:
    """A semantic version derived from the content, so a change is a new version.

    Image Builder components and recipes are immutable per name and version: CloudFormation
    replaces them on any change, and the replacement must not reuse the old version.
    """
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"1.0.{int(digest[:7], 16)}"


def _waive_unlisted_type(name: str, catalog: Catalog, resource: CfnResource) -> None:
    if not Token.is_unresolved(name) and catalog.get(name).provisional:
        waive_cfn_lint(
            resource,
            "E3030",
            f"{name} is provisional: cfn-lint only lists published types, so a provisional one "
            "is unknown to it by definition",
        )


def _validate(
    *,
    instance_types: Sequence[str],
    build_instance_type: str,
    parent_image: str | None,
    parameter_name: str | None,
    neuron_sdk: str,
    neuron_packages: Mapping[str, str] | None,
    schedule: str | None,
    test_timeout_minutes: int,
    catalog: Catalog,
    matrix: Compatibility,
) -> list[str]:
    problems: list[str] = []
    if isinstance(instance_types, str):
        problems.append(
            f"instance_types must be a list, got the string {instance_types!r}. "
            f"Fix: instance_types=[{instance_types!r}]"
        )
        instance_types = []
    elif not instance_types:
        problems.append(
            "instance_types is empty. Fix: list the types the image boots, e.g. ['inf2.xlarge']"
        )
    known = [t for t in instance_types if not Token.is_unresolved(t)]
    for name in known:
        problems += [
            f"instance_types: {p}"
            for p in check_instance_type(name, platform="ec2", catalog=catalog)
        ]
    build_ok = not Token.is_unresolved(build_instance_type)
    if build_ok:
        found = check_instance_type(build_instance_type, platform="ec2", catalog=catalog)
        problems += [
            f"build_instance_type: {p} (the image tests need a Neuron device)" for p in found
        ]
        build_ok = not found
    if not _SEMVER.match(neuron_sdk):
        problems.append(
            f"neuron_sdk {neuron_sdk!r} is not a release number. Fix: e.g. {DEFAULT_NEURON_SDK!r}"
        )
    elif neuron_packages is None and neuron_sdk not in NEURON_RELEASES:
        problems.append(
            f"neuron_sdk {neuron_sdk!r} has no known package versions (known: "
            f"{', '.join(sorted(NEURON_RELEASES))}). Fix: pass neuron_packages= with the "
            "versions from that release's 'Release Content' page, or use a known release"
        )
    else:
        families = {family_of(t): t for t in [*known, *([build_instance_type] * build_ok)]}
        for family, example in sorted(families.items()):
            try:
                support = matrix.family(example)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            minimum = support.min_neuron_sdk
            if _release(minimum)[0] != _release(neuron_sdk)[0]:
                problems.append(
                    f"{family} needs Neuron {minimum.split('.')[0]}.x ({support.sdk_line}), but "
                    f"neuron_sdk is {neuron_sdk!r}. Fix: boot {family} from its DLAMI "
                    "(NeuronAmi) instead of a baked image, or drop it"
                )
            elif _release(neuron_sdk) < _release(minimum):
                problems.append(
                    f"neuron_sdk {neuron_sdk!r} does not support {family} (it needs at least "
                    f"{minimum}). Fix: pin a release >= {minimum}, or drop {family}"
                )
        if parent_image is None:
            dlamis: dict[str, list[str]] = {}
            for t in families.values():
                with contextlib.suppress(ValueError):  # reported above
                    dlamis.setdefault(matrix.dlami_parameter(t), []).append(t)
            if len(dlamis) > 1:
                groups = "; ".join(f"{', '.join(ts)} -> {p}" for p, ts in dlamis.items())
                problems.append(
                    f"instance types and build_instance_type need different DLAMIs ({groups}), "
                    "but one image is baked. Fix: one pipeline per DLAMI, or give parent_image"
                )
    if neuron_packages is not None:
        bad = sorted(n for n in neuron_packages if not n.startswith("aws-neuronx-"))
        if bad:
            problems.append(
                f"neuron_packages {', '.join(map(repr, bad))} are not Neuron apt packages. "
                "Fix: pin aws-neuronx-* packages only (e.g. 'aws-neuronx-dkms')"
            )
    if (
        parent_image is not None
        and not Token.is_unresolved(parent_image)
        and not _PARENT.match(parent_image)
    ):
        problems.append(
            f"parent_image {parent_image!r} is not an AMI id, an Image Builder image ARN or "
            "an SSM parameter. Fix: e.g. 'ami-0123456789abcdef0' or "
            "'ssm:/aws/service/neuron/dlami/base/ubuntu-24.04/latest/image_id'"
        )
    if (
        parameter_name is not None
        and not Token.is_unresolved(parameter_name)
        and (not _PARAMETER.match(parameter_name) or parameter_name.startswith(("/aws", "/ssm")))
    ):
        problems.append(
            f"parameter_name {parameter_name!r} must be an SSM parameter path of letters, "
            "digits and _.-/ starting with '/' (not /aws or /ssm). "
            "Fix: e.g. '/inf3kit/ami/ranker'"
        )
    if schedule is not None and not Token.is_unresolved(schedule):
        problems += [f"schedule: {p}" for p in cron_problems(schedule, DEFAULT_SCHEDULE)]
    if not 60 <= test_timeout_minutes <= 1440:
        problems.append(
            f"test_timeout_minutes {test_timeout_minutes} must be 60..1440 (Image Builder's "
            "limits). Fix: e.g. 60"
        )
    return problems


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))
