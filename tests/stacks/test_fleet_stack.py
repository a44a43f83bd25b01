"""The fleet examples become NeuronFleets that output the load balancer DNS name."""

from __future__ import annotations

import json

import pytest

from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import SynthResult


def _template(result: SynthResult, stack: str) -> dict:
    return json.loads((result.assembly_dir / f"{stack}.template.json").read_text())


@pytest.mark.parametrize(
    ("example", "stack"),
    [
        ("fleet-fallback", "ranker-fleet"),
        ("fleet-warm-pool", "embedder"),
        ("multi-env", "ranker-prod"),
    ],
)
def test_fleet_examples_output_the_load_balancer_dns(
    synthesized: dict[str, SynthResult], example: str, stack: str
) -> None:
    outputs = _template(synthesized[example], stack)["Outputs"]
    assert outputs["LoadBalancerDnsName"]["Value"]["Fn::GetAtt"][1] == "DNSName"
    assert outputs["FleetUrl"]["Value"]["Fn::Join"][1][0] == "http://"


def test_fallback_example_prefers_inf3_then_inf2(synthesized: dict[str, SynthResult]) -> None:
    resources = _template(synthesized["fleet-fallback"], "ranker-fleet")["Resources"]
    (group,) = [r for r in resources.values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    overrides = group["Properties"]["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert overrides == [{"InstanceType": "inf3.xlarge"}, {"InstanceType": "inf2.xlarge"}]
    assert any("inf3.xlarge is provisional" in w for w in synthesized["fleet-fallback"].warnings)


def test_warm_pool_example_has_a_stopped_warm_pool(synthesized: dict[str, SynthResult]) -> None:
    resources = _template(synthesized["fleet-warm-pool"], "embedder")["Resources"]
    (pool,) = [r for r in resources.values() if r["Type"] == "AWS::AutoScaling::WarmPool"]
    assert pool["Properties"]["MinSize"] == 2 and pool["Properties"]["PoolState"] == "Stopped"
    (lt,) = [r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    user_data = json.dumps(lt["Properties"]["LaunchTemplateData"]["UserData"])
    assert "--env INF3KIT_MAX_BATCH_SIZE=32" in user_data
    assert "--env INF3KIT_GRACE_SECONDS=60" in user_data


def test_fails_when_public_load_balancer_has_no_certificate() -> None:
    text = (
        "name: svc\nmodel: {bundle: s3://bucket/m.tar.gz}\n"
        "fleet:\n  instance_types: [inf2.xlarge]\n"
        "  load_balancer: {public: true}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert [str(p) for p in info.value.problems] == [
        "fleet.load_balancer (line 5): public: true without certificate_arn would serve plain "
        "HTTP to the internet. Fix: add `certificate_arn: arn:aws:acm:...`, or set `public: false`"
    ]
