"""Preflight against a moto account: an instance-type change of an autoscaled endpoint."""

from __future__ import annotations

import boto3

from inf3kit.preflight import endpoint_update
from tests.preflight.conftest import context

SPEC = """\
name: ranker
model:
  bundle: s3://models/ranker.tar.gz
endpoint:
  instance_type: ml.inf2.xlarge
"""


def _deployed(session: boto3.Session, instance_type: str, *, autoscaled: bool) -> None:
    """An endpoint as a previous deploy left it (moto's type list lags AWS, so a c5 stands in)."""
    sm = session.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/sm"
    sm.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": "img"})
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
            }
        ],
    )
    sm.create_endpoint(EndpointName="ranker", EndpointConfigName="c")
    if autoscaled:
        session.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/ranker/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=2,
        )


def test_fails_when_an_autoscaled_endpoint_would_change_its_instance_type(
    session: boto3.Session,
) -> None:
    _deployed(session, "ml.c5.large", autoscaled=True)
    ctx = context(session, SPEC)
    endpoint_update.check(ctx)
    assert [str(p) for p in ctx.report.problems] == [
        "endpoint update (us-east-1): endpoint ranker runs ml.c5.large with autoscaling, and "
        "SageMaker refuses to change the instance type of an autoscaled variant (to "
        "ml.inf2.xlarge). Fix: in two deploys: (1) keep instance_type ml.c5.large, set "
        "endpoint.instances.max to instances.min and remove scaling.schedule, deploy (the "
        "scalable target is deregistered); (2) set instance_type ml.inf2.xlarge, restore max "
        "and the schedule, deploy again"
    ]


def test_a_deregistered_endpoint_may_change_its_instance_type(session: boto3.Session) -> None:
    _deployed(session, "ml.c5.large", autoscaled=False)
    ctx = context(session, SPEC)
    endpoint_update.check(ctx)
    assert ctx.report.problems == []


def test_a_first_deploy_has_nothing_to_compare(session: boto3.Session) -> None:
    ctx = context(session, SPEC)
    endpoint_update.check(ctx)
    assert ctx.report.problems == []
    assert ctx.report.checked[0].text == "endpoint ranker is not deployed yet: nothing to compare"
