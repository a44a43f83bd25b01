"""What the `integ_*.py` apps share: the bundle they serve, the VPC, the test wrapper.

The apps are CDK integration tests in the construct-library sense (integ-runner's layout, run
by runner.py: docs/deploying.md): each one builds a stack from inf3kit's constructs exactly as
a user would and asserts, with `aws_cdk.integ_tests_alpha`, what only a real deploy can show.
Without credentials they are only synthesized and compared with the committed `*.snapshot/`
folders.

They use Inferentia2 types, not the provisional Inf3 ones: AWS has published no Inf3 instance
type yet, so a deploy asking for one fails at once; inf2 is generally available and shares
NeuronCore-v2 and the Neuron SDK with what Inf3 is expected to need.
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import integ_tests_alpha as integ

from inf3kit.constructs import ModelBundle

REPO = Path(__file__).resolve().parents[2]
BUNDLE_ENV = "INF3KIT_INTEG_BUNDLE"
DEMO_BUNDLE = REPO / "build" / "demo" / "model.tar.gz"
WAIT = cdk.Duration.minutes(40)
"""How long an assertion retries: Neuron instances boot, install and load in 10-25 minutes."""


def bundle(scope: cdk.Stack) -> ModelBundle:
    """The archive the endpoint or fleet serves, uploaded as a file asset.

    A real run needs a bundle with an `inf2` variant (`inf3kit compile ... --target inf2` on a
    machine with the Neuron SDK), named by $INF3KIT_INTEG_BUNDLE: the runtime never serves a CPU
    variant on a Neuron host. Synthesis alone takes the demo bundle (`make bundle`); snapshots
    ignore asset hashes, so both give the same snapshot.
    """
    path = Path(os.environ.get(BUNDLE_ENV) or DEMO_BUNDLE)
    if not path.is_file():
        raise SystemExit(
            f"{BUNDLE_ENV} is unset and {path} does not exist. Fix: run `make bundle`, or set "
            f"{BUNDLE_ENV} to a bundle archive with an inf2 variant"
        )
    return ModelBundle(scope, "Bundle", path=path)


def vpc(scope: cdk.Stack) -> ec2.Vpc:
    """Two zones, one NAT gateway: instances and endpoints reach S3 and pip without a public IP."""
    return ec2.Vpc(scope, "Vpc", max_azs=2, nat_gateways=1)


def integ_test(app: cdk.App, name: str, stack: cdk.Stack) -> integ.IntegTest:
    """One test case per app; the stack is destroyed after the assertions, pass or fail."""
    return integ.IntegTest(app, name, test_cases=[stack], diff_assets=False)


def allow(call: integ.IApiCall, *actions: str) -> None:
    """Grant the assertion provider the IAM actions of its call.

    The provider derives actions from the SDK service name, which for SageMaker Runtime and
    ELBv2 is not the IAM prefix (`sagemaker:`, `elasticloadbalancing:`).
    """
    call.provider.add_to_role_policy(
        {"Effect": "Allow", "Action": list(actions), "Resource": ["*"]}
    )
