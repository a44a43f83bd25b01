"""Instance types offered in the region and the subnets' zones (moto's EC2 offerings data)."""

from __future__ import annotations

import boto3

from inf3kit.preflight import offerings
from tests.preflight.conftest import context

FLEET = """\
name: ranker
model: {{bundle: s3://models/ranker.tar.gz}}
fleet:
  instance_types: [{types}]
network: {{vpc: {vpc}}}
"""


def test_fails_when_a_provisional_fleet_type_is_not_offered(session: boto3.Session) -> None:
    # No Neuron release lists inf3: a fleet of only inf3 names the one it installs.
    spec = FLEET.format(types="inf3.xlarge", vpc="new").replace(
        "network:", "  ami: {neuron_sdk: '2.27.1'}\nnetwork:"
    )
    ctx = context(session, spec)
    offerings.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message.startswith(
        "EC2 does not offer inf3.xlarge in us-east-1: it is a provisional catalog type"
    )
    assert problem.fix.startswith("use inf2.xlarge, offered in us-east-1")


def test_fails_when_a_provisional_endpoint_type_is_not_in_sagemakers_api(
    session: boto3.Session,
) -> None:
    spec = FLEET.split("fleet:")[0].format() + "endpoint: {instance_type: ml.inf3.xlarge}\n"
    ctx = context(session, spec)
    offerings.check(ctx)
    [problem] = ctx.report.problems
    assert "SageMaker's API does not list ml.inf3.xlarge" in problem.message
    assert problem.fix.startswith("use ml.inf2.xlarge or ml.inf1.xlarge")


def test_a_ga_type_in_the_new_vpcs_zones_passes(session: boto3.Session) -> None:
    ctx = context(session, FLEET.format(types="inf2.xlarge", vpc="new"))
    offerings.check(ctx)
    assert ctx.report.problems == []
    assert [str(n) for n in ctx.report.checked] == [
        "offerings (us-east-1): EC2 offers inf2.xlarge in us-east-1a, us-east-1b "
        "(the fleet's zones)"
    ]


def test_fails_when_the_existing_vpcs_zone_offers_no_fleet_type(session: boto3.Session) -> None:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for cidr, zone in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1d")):
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)
    ctx = context(session, FLEET.format(types="inf2.xlarge", vpc=vpc))
    offerings.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        "no fleet type is offered in us-east-1d, a zone of the fleet's subnets: the Auto "
        "Scaling group can never launch there"
    )
