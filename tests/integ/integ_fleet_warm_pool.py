"""A NeuronFleet with a warm pool: pool instances are prepared, then stopped, and serve.

Proves what only AWS shows: a warm-pool instance runs the bootstrap to the end before EC2 Auto
Scaling stops it (the launch lifecycle hook that `inf3kit bootstrap` completes), so the pool
holds `Warmed:Stopped` instances, and the in-service instance is a healthy target.
"""

import aws_cdk as cdk
from aws_cdk import integ_tests_alpha as integ
from support import WAIT, allow, bundle, integ_test, vpc

from inf3kit.constructs import NeuronFleet, WarmPool

app = cdk.App()
stack = cdk.Stack(app, "Inf3kitIntegFleetWarmPool")
model = bundle(stack)
fleet = NeuronFleet(
    stack,
    "Fleet",
    vpc=vpc(stack),
    instance_types=["inf2.xlarge"],
    bundle_bucket=model.bucket,
    bundle_key=model.object_key,
    min_capacity=1,
    max_capacity=2,
    warm_pool=WarmPool(min_size=1),
)
test = integ_test(app, "FleetWarmPool", stack)
pool = test.assertions.aws_api_call(
    "AutoScaling",
    "describeWarmPool",
    {"AutoScalingGroupName": fleet.group.auto_scaling_group_name},
)
allow(pool, "autoscaling:DescribeWarmPool")
pool.expect(
    integ.ExpectedResult.object_like(
        {
            "Instances": integ.Match.array_with(
                [integ.Match.object_like({"LifecycleState": "Warmed:Stopped"})]
            )
        }
    )
).wait_for_assertions(total_timeout=WAIT, interval=cdk.Duration.minutes(1))
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
