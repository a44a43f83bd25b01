"""A NeuronFleet that prefers inf2.xlarge and falls back to inf2.8xlarge, healthy behind its
load balancer.

Proves what only AWS shows: the DLAMI of the compatibility matrix boots on these types, the
bootstrap installs the runtime, fetches and verifies the bundle and starts the service, and the
load balancer's health check on the runtime passes (a healthy target). The load balancer is
internal, so the assertion asks ELBv2 for target health instead of calling it over HTTP.
"""

import aws_cdk as cdk
from aws_cdk import integ_tests_alpha as integ
from support import WAIT, allow, bundle, integ_test, vpc

from inf3kit.constructs import NeuronFleet

app = cdk.App()
stack = cdk.Stack(app, "Inf3kitIntegFleetFallback")
model = bundle(stack)
fleet = NeuronFleet(
    stack,
    "Fleet",
    vpc=vpc(stack),
    instance_types=["inf2.xlarge", "inf2.8xlarge"],
    bundle_bucket=model.bucket,
    bundle_key=model.object_key,
    min_capacity=1,
    max_capacity=2,
)
test = integ_test(app, "FleetFallback", stack)
health = test.assertions.aws_api_call(
    "ElasticLoadBalancingV2",
    "describeTargetHealth",
    {"TargetGroupArn": fleet.frontend.target_group.target_group_arn},
)
allow(health, "elasticloadbalancing:DescribeTargetHealth")
health.expect(
    integ.ExpectedResult.object_like(
        {
            "TargetHealthDescriptions": integ.Match.array_with(
                [integ.Match.object_like({"TargetHealth": {"State": "healthy"}})]
            )
        }
    )
).wait_for_assertions(total_timeout=WAIT, interval=cdk.Duration.minutes(1))
app.synth()
