"""Preflight against a moto account: an instance-type change of an autoscaled endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from inf3kit.preflight import instance_type_change_problems
from inf3kit.spec import parse_spec

SPEC = """\
name: ranker
model:
  bundle: s3://models/ranker.tar.gz
endpoint:
  instance_type: ml.inf2.xlarge
"""


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


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
    assert instance_type_change_problems(parse_spec(SPEC).spec, session) == [
        "endpoint ranker runs ml.c5.large with autoscaling, and SageMaker refuses to change the "
        "instance type of an autoscaled variant (to ml.inf2.xlarge). Fix, in two deploys: (1) "
        "keep instance_type ml.c5.large, set endpoint.instances.max to instances.min and remove "
        "scaling.schedule, deploy (the scalable target is deregistered); (2) set instance_type "
        "ml.inf2.xlarge, restore max and the schedule, deploy again"
    ]


def test_a_deregistered_endpoint_may_change_its_instance_type(session: boto3.Session) -> None:
    _deployed(session, "ml.c5.large", autoscaled=False)
    assert instance_type_change_problems(parse_spec(SPEC).spec, session) == []


def test_a_first_deploy_has_nothing_to_compare(session: boto3.Session) -> None:
    assert instance_type_change_problems(parse_spec(SPEC).spec, session) == []
