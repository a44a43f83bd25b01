"""A NeuronEndpoint in a VPC with autoscaling and a canary rollout, invoked for real.

Proves what only AWS shows: the execution role can attach the model to the VPC and read the
bundle, the runtime image starts and passes SageMaker's health check on an inf2 instance, and
`InvokeEndpoint` answers 200 from the inf3kit runtime. With the update workflow, integ-runner
first deploys the committed snapshot and then this app as an update, so a changed model or
config goes through the canary rollout with its alarms.
"""

import json

import aws_cdk as cdk
from aws_cdk import integ_tests_alpha as integ
from support import WAIT, allow, bundle, integ_test, vpc

from inf3kit.constructs import EndpointImage, EndpointRollout, NeuronEndpoint

app = cdk.App()
stack = cdk.Stack(app, "Inf3kitIntegEndpointRollout")
endpoint = NeuronEndpoint(
    stack,
    "Endpoint",
    instance_type="ml.inf2.xlarge",
    model_data=bundle(stack),
    image=EndpointImage.runtime(),
    vpc=vpc(stack),
    min_capacity=2,
    max_capacity=3,
    rollout=EndpointRollout.canary(50, bake_time=cdk.Duration.minutes(5)),
)
test = integ_test(app, "EndpointRollout", stack)
invoke = test.assertions.aws_api_call(
    "SageMakerRuntime",
    "invokeEndpoint",
    {
        "EndpointName": endpoint.endpoint_name,
        "ContentType": "application/json",
        "Body": json.dumps({"instances": [[0.1] * 32]}),
    },
)
allow(invoke, "sagemaker:InvokeEndpoint")
invoke.expect(
    integ.ExpectedResult.object_like(
        {"$metadata": {"httpStatusCode": 200}, "InvokedProductionVariant": "AllTraffic"}
    )
).wait_for_assertions(total_timeout=WAIT, interval=cdk.Duration.minutes(1))
app.synth()
