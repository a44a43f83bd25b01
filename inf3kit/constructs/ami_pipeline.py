"""NeuronAmiPipeline: an EC2 Image Builder pipeline that bakes, tests and publishes a Neuron AMI."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, Aws, Duration, Names, Size, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from inf3kit.catalog import Catalog, Compatibility, family_of, load_catalog, load_compatibility
from inf3kit.constructs.ami_build_instance import (
    acknowledge_build_role,
    add_build_infrastructure,
    add_build_role,
)
from inf3kit.constructs.ami_components import (
    add_component,
    add_recipe,
    build_document,
    resource_name,
    test_document,
)
from inf3kit.constructs.buckets import log_bucket
from inf3kit.constructs.hardware_checks import (
    check_instance_type,
    waive_unlisted_types,
    warn_if_provisional,
)
from inf3kit.constructs.kms_policies import allow_ebs_in_this_account
from inf3kit.constructs.neuron_ami import PipelineImage
from inf3kit.constructs.runtime_install import (
    NEURON_PIP_INDEX,
    RELEASE_WARNING_ID,
    RuntimeWheel,
    default_runtime_requirements,
)
from inf3kit.constructs.runtime_wheel import IndexInstall, resolve_runtime_wheel
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import IMAGE_BUILD_SCHEDULE, cron_problems

DEFAULT_SCHEDULE = IMAGE_BUILD_SCHEDULE
"""Weekly, Monday 04:00 UTC: picks up the latest DLAMI (OS and security fixes) every week."""

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_PARENT = re.compile(r"^(ami-[0-9a-f]{8,17}|ssm:\S+|arn:aws[a-z-]*:imagebuilder:\S+)$")
_PARAMETER = re.compile(r"^/[a-zA-Z0-9_.\-/]+$")


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
        neuron_sdk: str | None = None,
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
        test_timeout: Duration | None = None,
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
        :param neuron_sdk: the Neuron release whose packages are pinned, a release of the
            compatibility matrix (`neuron_releases`). Default: the release the matrix names for
            the types' families (the one a fleet on the DLAMI installs at boot), e.g. 2.27.1:
            driver aws-neuronx-dkms 2.25.4.0, runtime-lib 2.29.40.0, collectives 2.29.41.0,
            tools 2.27.33.0; torch-neuronx 2.9.0.2.11.19912, neuronx-cc 2.22.12471.0, torch 2.9.0.
        :param neuron_packages: apt package -> version to pin instead of the release's.
            Default: the release's driver, runtime, collectives and tools.
        :param runtime_requirements: what pip installs into /opt/inf3kit/venv. Default:
            `inf3kit[serve]` at this library's version, plus the release's torch-neuronx,
            neuronx-cc and torch at their exact versions.
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
        :param test_timeout: how long the image tests may run. Default: 60 minutes
            (1..24 hours, whole minutes).
        :param catalog: the hardware catalog. Default: the shipped one merged with the file
            named by INF3KIT_CATALOG.
        :param compatibility: the compatibility matrix. Default: the shipped one merged likewise.
        """
        super().__init__(scope, id)
        catalog = catalog or load_catalog()
        matrix = compatibility or load_compatibility()
        test_timeout = test_timeout or Duration.minutes(60)
        problems = _validate(
            instance_types=instance_types,
            build_instance_type=build_instance_type,
            parent_image=parent_image,
            parameter_name=parameter_name,
            neuron_sdk=neuron_sdk,
            neuron_packages=neuron_packages,
            schedule=schedule,
            test_timeout=test_timeout,
            catalog=catalog,
            matrix=matrix,
        )
        raise_if_problems("NeuronAmiPipeline", self, problems)
        if not Token.is_unresolved(build_instance_type):
            warn_if_provisional(self, catalog.get(build_instance_type))
        check = matrix.check_release(
            _types(instance_types, build_instance_type), neuron_sdk, on_dlami=parent_image is None
        )
        for warning in check.warnings:
            Annotations.of(self).add_warning_v2(RELEASE_WARNING_ID, warning)
        assert check.version is not None  # _validate reported every way it can be None
        neuron_sdk = check.version
        release = matrix.release(neuron_sdk)
        packages = dict(neuron_packages or release.apt)
        requirements = (
            tuple(runtime_requirements)
            if runtime_requirements is not None
            else default_runtime_requirements(release)
        )
        self.neuron_sdk: str = neuron_sdk
        self.neuron_packages: Mapping[str, str] = packages
        known = [t for t in instance_types if not Token.is_unresolved(t)]
        self.parent_image: str = parent_image or "ssm:" + matrix.dlami_parameter(
            (known or [build_instance_type])[0]
        )
        self.parameter_name: str = parameter_name or (
            "/inf3kit/ami/" + Names.unique_resource_name(self, max_length=80, separator="-")
        )
        self._add_storage(key, logs_bucket)
        wheel = self._add_role(logs_prefix, runtime_wheel)
        self._add_recipe(
            neuron_sdk,
            build_document(packages, requirements, pip_extra_index_url, wheel),
            test_document(packages),
            int((volume_size or Size.gibibytes(150)).to_gibibytes()),
        )
        self.security_group, self.infrastructure = add_build_infrastructure(
            self,
            vpc=vpc,
            instance_type=build_instance_type,
            instance_profile=self.instance_profile,
            logs_bucket=self.logs_bucket,
            logs_prefix=logs_prefix,
            notification_topic=notification_topic,
        )
        waive_unlisted_types(self.infrastructure, [build_instance_type], catalog, "E3030")
        self._add_distribution(neuron_sdk, custom=neuron_packages is not None)
        self._add_pipeline(schedule, int(test_timeout.to_minutes()), build_at_deploy)
        self.machine_image: ec2.IMachineImage = PipelineImage(self.parameter_name, self.image)
        acknowledge_build_role(self.role, self.logs_bucket, logs_prefix)

    # --- helpers ---------------------------------------------------------------------------

    def _add_storage(self, key: kms.IKey | None, logs_bucket: s3.IBucket | None) -> None:
        """The key (volumes, snapshots, components, logs) and the build logs bucket."""
        self.key: kms.IKey = key or kms.Key(
            self,
            "Key",
            description="inf3kit AMI pipeline volumes and logs",
            enable_key_rotation=True,
        )
        allow_ebs_in_this_account(self.key)
        self.logs_bucket: s3.IBucket = logs_bucket or log_bucket(
            self,
            "Logs",
            why_unlogged="This bucket holds only Image Builder build and test logs written by "
            "the build instance role; give logs_bucket= to use a bucket with server access "
            "logging.",
            key=self.key,
            keep_days=90,
        )

    def _add_role(
        self, logs_prefix: str, runtime_wheel: RuntimeWheel | IndexInstall | None
    ) -> RuntimeWheel | None:
        """The build instance's role and profile; returns the wheel it may read."""
        wheel = resolve_runtime_wheel(self, runtime_wheel)
        self.role = add_build_role(self, self.logs_bucket, logs_prefix, wheel)
        self.instance_profile = iam.CfnInstanceProfile(
            self, "InstanceProfile", roles=[self.role.role_name]
        )
        return wheel

    def _add_recipe(
        self,
        neuron_sdk: str,
        build: dict[str, Any],
        test: dict[str, Any],
        size: int,
    ) -> None:
        """The build and test components, and the recipe that applies them to the parent."""
        self.build_component = add_component(
            self,
            "BuildComponent",
            "install the pinned Neuron driver, runtime and tools, and the inf3kit runtime",
            build,
            self.key,
        )
        self.test_component = add_component(
            self,
            "TestComponent",
            "check the Neuron packages and device, and the inf3kit runtime",
            test,
            self.key,
        )
        self.recipe = add_recipe(
            self,
            neuron_sdk=neuron_sdk,
            parent_image=self.parent_image,
            components=(self.build_component, self.test_component),
            size=size,
            key=self.key,
        )

    def _add_distribution(self, neuron_sdk: str, *, custom: bool) -> None:
        """Publishes the AMI, tagged with its Neuron packages, to `parameter_name`."""
        tags = {
            "inf3kit:neuron-sdk": "custom" if custom else neuron_sdk,
            "inf3kit:parent-image": self.parent_image,
            **{f"inf3kit:{name}": ver for name, ver in self.neuron_packages.items()},
        }
        self.distribution = imagebuilder.CfnDistributionConfiguration(
            self,
            "Distribution",
            name=resource_name(self, "Distribution"),
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

    def _add_pipeline(self, schedule: str | None, test_minutes: int, build_at_deploy: bool) -> None:
        """The scheduled pipeline, and the image built once while the stack deploys."""
        self.pipeline = imagebuilder.CfnImagePipeline(
            self,
            "Resource",
            name=resource_name(self, "Pipeline"),
            description="bakes and tests the inf3kit Neuron AMI",
            image_recipe_arn=self.recipe.attr_arn,
            infrastructure_configuration_arn=self.infrastructure.attr_arn,
            distribution_configuration_arn=self.distribution.attr_arn,
            image_tests_configuration=imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=test_minutes
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
                    image_tests_enabled=True, timeout_minutes=test_minutes
                ),
                enhanced_image_metadata_enabled=True,
            )
            # The build instance needs the role's inline policy (log writes), not just the role.
            self.image.node.add_dependency(self.role)


def _validate(
    *,
    instance_types: Sequence[str],
    build_instance_type: str,
    parent_image: str | None,
    parameter_name: str | None,
    neuron_sdk: str | None,
    neuron_packages: Mapping[str, str] | None,
    schedule: str | None,
    test_timeout: Duration,
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
    families = {family_of(t): t for t in [*known, *([build_instance_type] * build_ok)]}
    generation = []
    for family, example in sorted(families.items()):
        try:
            support = matrix.family(example)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        major = support.min_neuron_sdk.split(".")[0]
        if major != "2":
            generation.append(
                f"{family} needs Neuron {major}.x ({support.sdk_line}), but the image bakes a "
                f"Neuron 2.x release. Fix: boot {family} from its DLAMI (NeuronAmi) instead of "
                "a baked image, or drop it"
            )
    problems += generation
    if neuron_sdk is not None and not _SEMVER.match(neuron_sdk):
        problems.append(f"neuron_sdk {neuron_sdk!r} is not a release number. Fix: e.g. '2.27.1'")
    elif not generation:
        check = matrix.check_release(
            list(families.values()), neuron_sdk, on_dlami=parent_image is None
        )
        problems += check.problems
        if check.version is None and not check.problems:
            problems.append(
                "neuron_sdk is unset and no instance type is known at synthesis, so the matrix "
                "cannot name the release to bake. Fix: pass neuron_sdk=, e.g. '2.27.1'"
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
    minutes = None if test_timeout.is_unresolved() else test_timeout.to_seconds() / 60
    if minutes is not None and not (minutes.is_integer() and 60 <= minutes <= 1440):
        problems.append(
            f"test_timeout {minutes:g} minutes must be whole minutes from 60 to 1440 (Image "
            "Builder's limits). Fix: e.g. Duration.minutes(60)"
        )
    return problems


def _types(instance_types: Sequence[str], build_instance_type: str) -> list[str]:
    """The resolved types the image boots and builds on, whose release it bakes."""
    return [t for t in [*instance_types, build_instance_type] if not Token.is_unresolved(t)]
