"""`inf3kit deploy --local` of examples/llm-fleet.yaml: the LLM fleet's stack deploys into the
local AWS API through the real CDK CLI (issue 13's done-means); the emulator is stopped after.

The emulator runs no instance, so what this proves is the wiring: the load balancer with one
target group per vLLM server checking /health, the group attached to all of them, the launch
template carrying the boot script. tests/constructs/test_llm_boot.py runs that script.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.deploy import LocalAws, running, stop

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    work = tmp_path_factory.mktemp("llm-fleet-deploy")
    (work / "home").mkdir()
    shutil.copytree(REPO / "examples" / "llm", work / "examples" / "llm")
    shutil.copy(REPO / "examples" / "llm-fleet.yaml", work / "examples")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("HOME", str(work / "home"))
        try:
            result = runner.invoke(
                app, ["deploy", "examples/llm-fleet.yaml", "--local", "-o", "out"]
            )
            assert result.exit_code == 0, result.output
            assert "stack llm-70b: CREATE_COMPLETE" in result.output
            aws = running()
            assert aws is not None
            yield aws  # no destroy: tests/deploy/test_local_deploy.py covers it; stopping is enough
        finally:
            leftover = running()
            if leftover is not None:
                stop(leftover)


def test_one_target_group_per_vllm_server_checks_its_health_route(deployed: LocalAws) -> None:
    elbv2 = deployed.client("elbv2")
    groups = elbv2.describe_target_groups()["TargetGroups"]
    assert sorted(g["Port"] for g in groups) == [8000, 8001, 8002, 8003]
    assert {g["HealthCheckPath"] for g in groups} == {"/health"}
    (group,) = deployed.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert sorted(group["TargetGroupARNs"]) == sorted(g["TargetGroupArn"] for g in groups)


def test_the_launch_template_carries_the_vllm_boot(deployed: LocalAws) -> None:
    ec2 = deployed.client("ec2")
    (template,) = ec2.describe_launch_templates()["LaunchTemplates"]
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    script = base64.b64decode(data["UserData"]).decode()
    assert "NEURON_RT_VISIBLE_CORES=48-63" in script
    assert "--tensor-parallel-size 16" in script
    assert "signal-resource --status SUCCESS" in script
