"""The gate functions report findings: a deliberately insecure stack must fail each gate."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from inf3kit.stacks.gates import GateResult, run_gates, templates


@pytest.fixture(scope="module")
def insecure_gates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GateResult]:
    out: Path = tmp_path_factory.mktemp("insecure")
    app = cdk.App(outdir=str(out))
    stack = cdk.Stack(app, "Throwaway")
    s3.Bucket(stack, "Open")  # no logs, no SSL-only policy, no versioning
    cdk.CfnResource(stack, "Broken", type="AWS::SNS::Topic", properties={"TopicNam": "x"})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    return {g.gate: g for g in run_gates(out)}


def test_nag_gate_reports_an_insecure_bucket(insecure_gates: dict[str, GateResult]) -> None:
    gate = insecure_gates["cdk-nag"]
    assert not gate.passed
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= {f.rule for f in gate.findings}
    assert {f.resource for f in gate.findings} >= {"Throwaway/Open/Resource"}


def test_cfn_lint_gate_reports_a_template_error(insecure_gates: dict[str, GateResult]) -> None:
    gate = insecure_gates["cfn-lint"]
    assert not gate.passed
    assert any(f.rule == "E3002" and "TopicNam" in f.message for f in gate.findings)


def test_checkov_gate_reports_an_insecure_bucket(insecure_gates: dict[str, GateResult]) -> None:
    gate = insecure_gates["checkov"]
    assert not gate.passed
    assert {"CKV_AWS_18", "CKV_AWS_21"} <= {f.rule for f in gate.findings}


def test_gates_judge_only_the_stacks_the_manifest_lists(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.CfnResource(cdk.Stack(app, "Current"), "Topic", type="AWS::SNS::Topic")
    app.synth()
    stale = tmp_path / "Renamed.template.json"  # left by an earlier synthesis
    stale.write_text('{"Resources": {"Broken": {"Type": "AWS::SNS::Topic", "Properties": 1}}}')

    assert templates(tmp_path) == [tmp_path / "Current.template.json"]
