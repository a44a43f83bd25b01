"""Every example synthesizes and passes cdk-nag, cfn-lint and checkov."""

from __future__ import annotations

import json

import pytest

from inf3kit import __version__
from inf3kit.constructs import PROVISIONAL_WARNING_ID
from inf3kit.stacks import SynthResult
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("example", [p.stem for p in EXAMPLES])
def test_example_synthesizes_and_passes_every_gate(
    synthesized: dict[str, SynthResult], example: str
) -> None:
    result = synthesized[example]
    assert result.stacks
    assert [g.gate for g in result.gates] == ["cdk-nag", "cfn-lint", "checkov"]
    for gate in result.gates:
        assert gate.skipped is None, gate.summary()
        assert gate.findings == [], gate.summary()


def test_multi_env_spec_makes_one_stack_per_stage(synthesized: dict[str, SynthResult]) -> None:
    assert sorted(synthesized["multi-env"].stacks) == ["ranker-prod", "ranker-staging"]


def test_provisional_type_raises_a_synthesis_warning(synthesized: dict[str, SynthResult]) -> None:
    warnings = synthesized["demo"].warnings
    assert any(
        PROVISIONAL_WARNING_ID in w and "ml.inf3.xlarge is provisional" in w for w in warnings
    )
    assert any("inf3.xlarge is provisional" in w for w in synthesized["multi-env"].warnings)


def test_every_acknowledgement_carries_a_specific_reason(
    synthesized: dict[str, SynthResult],
) -> None:
    reasons = []
    for result in synthesized.values():
        for path in result.assembly_dir.glob("**/*.metadata.json"):
            for entries in json.loads(path.read_text()).values():
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        reasons += list(entry["data"].values())
        for path in result.assembly_dir.glob("**/*.template.json"):
            for resource in json.loads(path.read_text())["Resources"].values():
                for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                    reasons.append(skip["comment"])
    assert reasons
    for reason in reasons:
        assert len(reason) >= 20 and "TODO" not in reason, reason


def test_every_fleet_installs_the_runtime_wheel_its_stack_ships(
    synthesized: dict[str, SynthResult],
) -> None:
    """inf3kit is on no public index: fleets and AMI bakes install the wheel synthesis built."""
    checked = 0
    for result in synthesized.values():
        for template_path in result.assembly_dir.glob("*.template.json"):
            template = json.loads(template_path.read_text())
            launch = [
                r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"
            ]
            if not launch or "UserData" not in launch[0]["Properties"]["LaunchTemplateData"]:
                continue
            checked += 1
            assets = json.loads(
                template_path.with_suffix("").with_suffix(".assets.json").read_text()
            )
            wheels = [
                f["source"]["path"]
                for f in assets["files"].values()
                if f["source"]["path"].endswith(".whl")
            ]
            assert len(wheels) == 1, template_path.name
            data = json.dumps(launch[0]["Properties"]["LaunchTemplateData"]["UserData"])
            assert f"/opt/inf3kit/inf3kit-{__version__}-py3-none-any.whl[serve]" in data
    assert checked, "no example has a fleet"
