"""The CDK bootstrap stack against what the app requires (moto's CloudFormation)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from inf3kit.preflight import bootstrap
from tests.preflight.conftest import context

SPEC = """\
name: ranker
model: {bundle: s3://models/ranker.tar.gz}
fleet: {instance_types: [inf2.xlarge]}
"""


def _toolkit(session: boto3.Session, version: str) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BootstrapVersion": {"Value": version}},
    }
    session.client("cloudformation").create_stack(
        StackName="CDKToolkit", TemplateBody=json.dumps(template)
    )


def test_fails_when_the_region_is_not_bootstrapped(session: boto3.Session) -> None:
    ctx = context(session, SPEC)
    bootstrap.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == "us-east-1 is not bootstrapped (no CDKToolkit stack)"
    assert problem.fix.startswith("bootstrap (or re-bootstrap) it: `npx cdk bootstrap")


def test_fails_when_the_bootstrap_stack_is_older_than_the_assembly_requires(
    session: boto3.Session, tmp_path: Path
) -> None:
    _toolkit(session, "7")
    manifest = {
        "artifacts": {
            "ranker": {
                "properties": {
                    "requiresBootstrapStackVersion": 6,
                    "lookupRole": {"requiresBootstrapStackVersion": 8},
                }
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    ctx = context(session, SPEC, assembly_dir=tmp_path)
    bootstrap.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        f"the CDKToolkit stack is bootstrap version 7; the app needs 8 (required by "
        f"{tmp_path / 'manifest.json'})"
    )


def test_a_recent_bootstrap_stack_passes(session: boto3.Session) -> None:
    _toolkit(session, "28")
    ctx = context(session, SPEC)
    bootstrap.check(ctx)
    assert ctx.report.problems == []
    assert ctx.report.checked[0].text == "CDKToolkit is version 28 (>= 6, the CDK's deploy role)"
