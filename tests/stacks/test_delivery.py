"""GitOps delivery: the `delivery:` spec rules and the pipeline examples/gitops.yaml becomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import cx_api
from aws_cdk.assertions import Match, Template

from inf3kit import __version__
from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import SPEC_CONTEXT_KEY, SynthResult
from inf3kit.stacks import delivery as delivery_stacks

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
name: ranker
model:
  bundle: s3://models-bucket/ranker/model.tar.gz
endpoint:
  instance_type: ml.inf2.xlarge
environments:
  staging: {account: "111111111111", region: eu-west-1}
  prod: {account: "222222222222", region: eu-west-1}
delivery:
  repository: acme/ranker-deploy
  connection_arn: arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d
"""  # noqa: E501


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="t.yaml")
    return [str(p) for p in info.value.problems]


# --- spec ---


def test_delivery_defaults() -> None:
    delivery = parse_spec(BASE).spec.delivery
    assert delivery is not None
    assert (delivery.branch, delivery.spec_path, delivery.source) == (
        "main",
        "inf3kit.yaml",
        "wheel",
    )
    assert delivery.approval_stages(["staging", "prod"]) == ["prod"]


def test_install_defaults_to_the_repo_when_the_repository_is_inf3kit() -> None:
    delivery = parse_spec(BASE.replace("acme/ranker-deploy", "acme/inf3kit")).spec.delivery
    assert delivery is not None and delivery.source == "repo"


def test_empty_approval_list_means_no_approval() -> None:
    delivery = parse_spec(BASE + "  approval: []\n").spec.delivery
    assert delivery is not None and delivery.approval_stages(["staging", "prod"]) == []


def test_smoke_input_is_relative_to_the_spec_file() -> None:
    text = BASE + "  spec_path: services/ranker/inf3kit.yaml\n  smoke_test: {input: req.json}\n"
    delivery = parse_spec(text).spec.delivery
    assert delivery is not None and delivery.smoke_input_path() == "services/ranker/req.json"


def test_fails_when_no_environment_has_account_and_region() -> None:
    text = BASE.replace('account: "111111111111", ', "").replace('account: "222222222222", ', "")
    assert problems(text) == [
        "delivery (line 10): delivery needs at least one environment with both `account` and "
        "`region` (the pipeline deploys to explicit environments, across accounts when they "
        'differ). Fix: add e.g. `environments: {prod: {account: "111111111111", region: '
        "us-east-1}}`"
    ]


def test_fails_when_there_are_no_environments() -> None:
    text = BASE.replace(
        'environments:\n  staging: {account: "111111111111", region: eu-west-1}\n'
        '  prod: {account: "222222222222", region: eu-west-1}\n',
        "",
    )
    assert problems(text) == [
        "delivery (line 7): delivery needs at least one environment with both `account` and "
        "`region` (the pipeline deploys to explicit environments, across accounts when they "
        'differ). Fix: add e.g. `environments: {prod: {account: "111111111111", region: '
        "us-east-1}}`"
    ]


def test_fails_when_approval_names_an_unknown_stage() -> None:
    assert problems(BASE + "  approval: [production]\n") == [
        "delivery (line 10): delivery.approval names 'production', which is not in "
        "`environments` (staging, prod). Fix: list stage names from `environments`"
    ]


def test_fails_when_smoke_test_has_no_endpoint() -> None:
    text = BASE.replace(
        "endpoint:\n  instance_type: ml.inf2.xlarge\n",
        "fleet:\n  instance_types: [inf2.xlarge]\n",
    )
    assert problems(text + "  smoke_test: {input: req.json}\n") == [
        "delivery (line 10): delivery.smoke_test needs an `endpoint:` section: it runs "
        "`inf3kit invoke` against the SageMaker endpoint, and a fleet's internal load balancer "
        "is not reachable from the pipeline. Fix: remove `smoke_test`, or add an `endpoint:` "
        "section"
    ]


def test_fails_when_repository_is_not_owner_name() -> None:
    assert problems(BASE.replace("acme/ranker-deploy", "https://github.com/acme/x")) == [
        "delivery.repository (line 10): got 'https://github.com/acme/x', which is not a "
        "repository name. Fix: write owner/name as in the repository's URL, e.g. "
        "acme/ranker-deploy"
    ]


def test_fails_when_branch_is_not_a_branch_name() -> None:
    assert problems(BASE + "  branch: feature..x\n") == [
        "delivery.branch (line 12): got 'feature..x', which is not a branch name. Fix: use "
        "letters, digits, '.', '_', '-' and '/', e.g. main or release/v2"
    ]


def test_fails_when_connection_arn_is_not_a_connection() -> None:
    text = BASE.replace("connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "connection/x")
    assert problems(text) == [
        "delivery.connection_arn (line 11): got 'arn:aws:codeconnections:eu-west-1:"
        "111111111111:connection/x', which is not a CodeStar connection ARN. Fix: create a "
        "connection (Developer Tools > Settings > Connections), authorize it, and copy its "
        "ARN, e.g. arn:aws:codeconnections:us-east-1:111111111111:connection/"
        "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    ]


def test_fails_when_connection_arn_is_missing() -> None:
    text = "\n".join(line for line in BASE.splitlines() if "connection_arn" not in line)
    assert problems(text) == [
        "delivery.connection_arn (line 10): required but missing. Fix: add it (see "
        "docs/spec.md for its format)"
    ]


def test_fails_when_spec_path_leaves_the_repository() -> None:
    assert problems(BASE + "  spec_path: ../other/inf3kit.yaml\n") == [
        "delivery.spec_path (line 12): spec_path '../other/inf3kit.yaml' is not a relative "
        "path inside the repository. Fix: write it relative to the repository root with '/', "
        "e.g. services/ranker.yaml"
    ]


def test_fails_when_spec_path_is_not_yaml() -> None:
    assert problems(BASE + "  spec_path: inf3kit.json\n") == [
        "delivery.spec_path (line 12): spec_path 'inf3kit.json' is not a YAML file. Fix: give "
        "the path of this spec file, e.g. inf3kit.yaml"
    ]


def test_fails_when_pipeline_account_is_not_an_account_id() -> None:
    assert problems(BASE + "  pipeline_account: '1234'\n") == [
        "delivery.pipeline_account (line 12): got '1234', which does not match ^\\d{12}$. "
        "Fix: use the 12-digit AWS account id, quoted"
    ]


def test_fails_when_pipeline_region_is_not_a_region() -> None:
    assert problems(BASE + "  pipeline_region: Europe\n") == [
        "delivery.pipeline_region (line 12): got 'Europe', which does not match "
        "^[a-z]{2}(-gov)?-[a-z]+-\\d$. Fix: use a region code like us-east-1"
    ]


def test_fails_when_install_is_unknown() -> None:
    assert problems(BASE + "  install: git\n") == [
        "delivery.install (line 12): got 'git'; allowed: 'wheel', 'index' or 'repo'. Fix: use "
        "one of those"
    ]


def test_index_install_pins_this_version_from_the_given_index() -> None:
    text = BASE + "  install: index\n  index_url: https://pypi.example.com/simple/\n"
    delivery = parse_spec(text).spec.delivery
    assert delivery is not None
    assert delivery_stacks.install_commands(delivery, None) == [
        f"pip install --index-url https://pypi.example.com/simple/ 'inf3kit[cdk]=={__version__}'"
    ]


def test_repo_install_installs_the_checkout_and_its_cdk_cli() -> None:
    delivery = parse_spec(BASE + "  install: repo\n").spec.delivery
    assert delivery is not None
    assert delivery_stacks.install_commands(delivery, None) == ["pip install -e '.[cdk]'", "npm ci"]


def test_fails_when_index_url_is_set_without_index_install() -> None:
    assert problems(BASE + "  index_url: https://pypi.example.com/simple/\n") == [
        "delivery (line 10): index_url is set but install is 'wheel', which does not use it. "
        "Fix: add `install: index`, or remove `index_url`"
    ]


def test_fails_when_index_url_carries_credentials() -> None:
    text = BASE + "  install: index\n  index_url: https://me:secret@pypi.example.com/simple/\n"
    assert problems(text) == [
        "delivery.index_url (line 13): got a URL with credentials (pypi.example.com): the "
        "pipeline's buildspec is readable by anyone who can read the pipeline stack. Fix: give "
        "the URL without user:password, and let the index accept the build role (e.g. "
        "CodeArtifact)"
    ]


def test_fails_when_index_url_is_not_https() -> None:
    text = BASE + "  install: index\n  index_url: http://pypi.example.com/simple/\n"
    assert problems(text) == [
        "delivery.index_url (line 13): got 'http://pypi.example.com/simple/', which is not an "
        "https URL. Fix: give the index's simple API URL, e.g. https://pypi.example.com/simple/"
    ]


def test_fails_when_delivery_has_an_unknown_key() -> None:
    [problem] = problems(BASE + "  brnach: main\n")
    assert problem.startswith(
        "delivery.brnach (line 12): unknown key 'brnach'. Did you mean 'branch'? Allowed here: "
        "repository, branch, connection_arn, spec_path, install, index_url, pipeline_account, "
    )


# --- the pipeline of examples/gitops.yaml (synthesized once, by tests/conftest.py) ---


def _template(result: SynthResult, stack: str) -> dict[str, Any]:
    assembly = cx_api.CloudAssembly(str(result.assembly_dir))
    [found] = [s for s in assembly.stacks_recursively if s.stack_name == stack]
    return dict(found.template)


@pytest.fixture(scope="module")
def gitops(synthesized: dict[str, SynthResult]) -> SynthResult:
    return synthesized["gitops"]


@pytest.fixture(scope="module")
def pipeline(gitops: SynthResult) -> Template:
    return Template.from_json(_template(gitops, "ranker-gitops-pipeline"))


def _stages(template: Template) -> list[dict[str, Any]]:
    [resource] = template.find_resources("AWS::CodePipeline::Pipeline").values()
    return list(resource["Properties"]["Stages"])


def _buildspec(template: Template, fragment: str) -> str:
    for project in template.find_resources("AWS::CodeBuild::Project").values():
        source = project["Properties"]["Source"].get("BuildSpec", "")
        if isinstance(source, str) and fragment in source:
            phases = json.loads(source)["phases"]
            return "\n".join(c for phase in phases.values() for c in phase["commands"])
    raise AssertionError(f"no CodeBuild project runs {fragment!r}")


def test_pipeline_and_stage_stacks_are_listed(gitops: SynthResult) -> None:
    assert sorted(gitops.stacks) == [
        "ranker-gitops-pipeline",
        "ranker-gitops-prod",
        "ranker-gitops-staging",
    ]
    assert gitops.stacks["ranker-gitops-prod"]["AWS::SageMaker::Endpoint"] == 1


def test_gates_see_the_nested_stage_templates(gitops: SynthResult) -> None:
    from inf3kit.stacks.gates import templates

    nested = [p for p in templates(gitops.assembly_dir) if p.parent != gitops.assembly_dir]
    assert len(nested) == 2


def test_source_uses_the_connection_and_branch(pipeline: Template) -> None:
    source = _stages(pipeline)[0]
    assert source["Name"] == "Source"
    [action] = source["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"] == {
        "ConnectionArn": "arn:aws:codeconnections:eu-west-1:111111111111:connection/"
        "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
        "FullRepositoryId": "acme/ranker-deploy",
        "BranchName": "main",
        "DetectChanges": True,
    }


def _wheel_asset(gitops: SynthResult) -> dict[str, Any]:
    """The pipeline stack's file asset that is the inf3kit wheel, from its asset manifest."""
    manifest = json.loads((gitops.assembly_dir / "ranker-gitops-pipeline.assets.json").read_text())
    [asset] = [a for a in manifest["files"].values() if a["source"]["path"].endswith(".whl")]
    return dict(asset)


def test_synth_installs_the_wheel_that_synthesized_the_pipeline(
    gitops: SynthResult, pipeline: Template
) -> None:
    """inf3kit is on no public index: the build steps download the pipeline stack's own wheel
    asset (published by `cdk deploy NAME-pipeline`) and may read that one object only."""
    [destination] = _wheel_asset(gitops)["destinations"].values()
    bucket = destination["bucketName"].replace("${AWS::AccountId}", "111111111111")
    bucket = bucket.replace("${AWS::Region}", "eu-west-1")
    wheel = f"/tmp/inf3kit-wheel/inf3kit-{__version__}-py3-none-any.whl"
    for fragment in ("inf3kit validate", "inf3kit invoke"):
        commands = _buildspec(pipeline, fragment).splitlines()
        extras = "[cdk]" if fragment == "inf3kit validate" else ""
        assert commands[:2] == [
            f"aws s3 cp s3://{bucket}/{destination['objectKey']} {wheel}",
            f"pip install '{wheel}{extras}'",
        ]
    object_arn = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket}/{destination['objectKey']}"],
        ]
    }
    reads = [
        s
        for policy in pipeline.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:GetObject" and s["Resource"] == object_arn
    ]
    assert len(reads) == 3  # the synth step and the smoke test of each stage


def test_synth_validates_then_synthesizes_the_spec(pipeline: Template) -> None:
    spec = _buildspec(pipeline, "inf3kit validate")
    assert "inf3kit validate services/ranker/inf3kit.yaml" in spec
    assert (
        f"npx --yes aws-cdk@{delivery_stacks.CDK_CLI_VERSION} synth --app 'python3 -m "
        f"inf3kit.stacks' -c {SPEC_CONTEXT_KEY}=services/ranker/inf3kit.yaml -o cdk.out"
    ) in spec
    assert spec.index("inf3kit validate") < spec.index("synth --app")


def test_one_stage_per_environment_in_spec_order(pipeline: Template) -> None:
    names = [stage["Name"] for stage in _stages(pipeline)]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "staging", "prod"]
    stacks = [
        action["Configuration"]["StackName"]
        for stage in _stages(pipeline)[4:]
        for action in stage["Actions"]
        if action["ActionTypeId"]["Provider"] == "CloudFormation"
    ]
    assert stacks[0] == "ranker-gitops-staging" and stacks[-1] == "ranker-gitops-prod"


def test_manual_approval_precedes_prod_only(pipeline: Template) -> None:
    staging, prod = _stages(pipeline)[4:]
    assert all(a["ActionTypeId"]["Category"] != "Approval" for a in staging["Actions"])
    approval = [a for a in prod["Actions"] if a["ActionTypeId"]["Category"] == "Approval"]
    assert len(approval) == 1 and approval[0]["RunOrder"] == 1
    assert min(a["RunOrder"] for a in prod["Actions"] if a is not approval[0]) > 1


def test_stages_deploy_into_their_accounts(pipeline: Template) -> None:
    roles = json.dumps(_stages(pipeline)[4:])
    assert "cdk-hnb659fds-deploy-role-111111111111-eu-west-1" in roles
    assert "cdk-hnb659fds-deploy-role-222222222222-eu-west-1" in roles


def test_cross_account_artifacts_use_a_rotated_kms_key(pipeline: Template) -> None:
    pipeline.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "PipelineType": "V2",
            "ArtifactStore": Match.object_like(
                {"EncryptionKey": Match.object_like({"Type": "KMS"}), "Type": "S3"}
            ),
        },
    )
    pipeline.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    pipeline.has_resource_properties(
        "AWS::S3::Bucket",
        {"BucketEncryption": Match.object_like({}), "LoggingConfiguration": Match.any_value()},
    )


def test_codebuild_is_unprivileged_and_logs_to_a_kms_log_group(pipeline: Template) -> None:
    for project in pipeline.find_resources("AWS::CodeBuild::Project").values():
        props = project["Properties"]
        if "inf3kit" not in json.dumps(props.get("Source", {})):
            continue  # asset publishing projects (Docker assets need privileged mode)
        assert props["Environment"]["PrivilegedMode"] is False
        assert props["LogsConfig"]["CloudWatchLogs"]["Status"] == "ENABLED"
    pipeline.has_resource_properties(
        "AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value(), "RetentionInDays": 365}
    )


def test_smoke_test_invokes_the_stage_endpoint_through_its_role(pipeline: Template) -> None:
    spec = _buildspec(pipeline, "inf3kit invoke")
    assert (
        'AWS_PROFILE=smoke inf3kit invoke --endpoint "$ENDPOINT_NAME" --input '
        "services/ranker/requests/smoke.json --content-type application/json --region eu-west-1"
    ) in spec
    pipeline.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sts:AssumeRole",
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        [
                                            "arn:",
                                            {"Ref": "AWS::Partition"},
                                            ":iam::222222222222:role/ranker-gitops-prod-smoke-test",
                                        ],
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_stage_stack_has_a_smoke_role_trusting_the_pipeline_account(gitops: SynthResult) -> None:
    stage = Template.from_json(_template(gitops, "ranker-gitops-prod"))
    stage.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "ranker-gitops-prod-smoke-test",
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"AWS": Match.any_value()}})]}
            ),
        },
    )
    [role] = stage.find_resources(
        "AWS::IAM::Role", {"Properties": {"RoleName": "ranker-gitops-prod-smoke-test"}}
    ).values()
    trust = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    assert ":iam::111111111111:root" in trust
    stage.has_output("SmokeTestRoleArn", {})
    stage.has_output("EndpointName", {})


def test_stage_stacks_have_no_lambda_backed_custom_resources(gitops: SynthResult) -> None:
    for name in ("ranker-gitops-staging", "ranker-gitops-prod"):
        stage = Template.from_json(_template(gitops, name))
        stage.resource_count_is("AWS::Lambda::Function", 0)


def test_spec_without_delivery_has_no_pipeline(synthesized: dict[str, SynthResult]) -> None:
    for name, result in synthesized.items():
        if name != "gitops":
            assert not any(s.endswith("-pipeline") for s in result.stacks), name
            assert not list(result.assembly_dir.glob("assembly-*")), name


def test_cdk_cli_version_matches_the_repo(gitops: SynthResult) -> None:
    lock = json.loads((ROOT / "node_modules" / "aws-cdk" / "package.json").read_text())
    assert lock["version"] == delivery_stacks.CDK_CLI_VERSION
    assert delivery_stacks.SPEC_CONTEXT_KEY == SPEC_CONTEXT_KEY


def test_pipeline_acknowledgements_carry_reasons(gitops: SynthResult) -> None:
    reasons = []
    for path in gitops.assembly_dir.glob("*.metadata.json"):
        for entries in json.loads(path.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    reasons += list(entry["data"].values())
    assert reasons
    assert all(len(r) >= 60 for r in reasons)
