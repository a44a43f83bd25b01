"""Quotas against recorded-shaped Service Quotas answers (botocore's Stubber).

moto does not emulate ListServiceQuotas, and its GetServiceQuota answers only a few services,
so the answers below follow the shape AWS returns (GetServiceQuota for L-1945791B, a
ListServiceQuotas page for SageMaker), stubbed on the real client the check calls.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from inf3kit.preflight import quotas
from tests.preflight.conftest import context

ENDPOINT = """\
name: ranker
model: {bundle: s3://models/ranker.tar.gz}
endpoint:
  instance_type: ml.inf2.xlarge
  instances: {min: 2, max: 3}
"""
FLEET = """\
name: ranker
model: {bundle: s3://models/ranker.tar.gz}
fleet:
  instance_types: [inf2.xlarge, inf2.8xlarge]
  capacity: {min: 1, max: 4}
"""


def _quota(service: str, code: str, name: str, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": service,
        "QuotaArn": f"arn:aws:servicequotas:us-east-1:123456789012:{service}/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def test_fails_when_the_endpoint_quota_cannot_hold_a_blue_green_update(
    session: boto3.Session,
) -> None:
    ctx = context(session, ENDPOINT)
    with Stubber(ctx.client("service-quotas")) as stub:
        stub.add_response(
            "list_service_quotas",
            {
                "Quotas": [_quota("sagemaker", "L-1A2B3C4D", "ml.g5.xlarge for endpoint usage", 4)],
                "NextToken": "page2",
            },
            {"ServiceCode": "sagemaker"},
        )
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota("sagemaker", "L-5E6F7A8B", "ml.inf2.xlarge for endpoint usage", 4)]},
            {"ServiceCode": "sagemaker", "NextToken": "page2"},
        )
        quotas.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        "ml.inf2.xlarge for endpoint usage (sagemaker L-5E6F7A8B) is 4 instances, below the 6 "
        "the spec needs (instances.max 3 twice: a canary update is blue/green)"
    )
    assert problem.fix.startswith(
        "ask for an increase: aws service-quotas request-service-quota-increase --service-code "
        "sagemaker --quota-code L-5E6F7A8B --desired-value 6 --region us-east-1"
    )


def test_fails_when_the_inf_vcpu_quota_is_below_the_fleets_largest_type(
    session: boto3.Session,
) -> None:
    ctx = context(session, FLEET)
    with Stubber(ctx.client("service-quotas")) as stub:
        stub.add_response(
            "get_service_quota",
            {"Quota": _quota("ec2", "L-1945791B", "Running On-Demand Inf instances", 128)},
            {"ServiceCode": "ec2", "QuotaCode": "L-1945791B"},
        )
        quotas.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        "Running On-Demand Inf instances (ec2 L-1945791B) is 128 vCPUs, below the 160 the spec "
        "needs (capacity.max 4 + 1 rolling-update instance, x 32 vCPU (inf2.xlarge, "
        "inf2.8xlarge))"
    )


def test_a_quota_that_covers_the_update_passes(session: boto3.Session) -> None:
    ctx = context(session, FLEET)
    with Stubber(ctx.client("service-quotas")) as stub:
        stub.add_response(
            "get_service_quota",
            {"Quota": _quota("ec2", "L-1945791B", "Running On-Demand Inf instances", 160)},
        )
        quotas.check(ctx)
    assert ctx.report.problems == []
    assert len(ctx.report.checked) == 1


def test_a_rolling_endpoint_needs_one_batch_more() -> None:
    from inf3kit.spec import parse_spec

    spec = ENDPOINT.replace("max: 3}", "max: 4}\n  rollout: {strategy: rolling}")
    endpoint = parse_spec(spec).spec.endpoint
    assert endpoint is not None
    assert quotas.endpoint_need(endpoint) == (5, "instances.max 4 + a rolling batch of 1")


def test_a_type_without_a_sagemaker_quota_here_is_reported_as_not_checked(
    session: boto3.Session,
) -> None:
    ctx = context(session, ENDPOINT)
    with Stubber(ctx.client("service-quotas")) as stub:
        stub.add_response("list_service_quotas", {"Quotas": []})
        quotas.check(ctx)
    assert ctx.report.problems == []
    assert "lists no 'ml.inf2.xlarge for endpoint usage'" in ctx.report.unchecked[0].text
