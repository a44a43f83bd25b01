"""A NeuronAmiPipeline that builds, tests and publishes an AMI while the stack deploys.

Proves what only AWS shows: the pinned Neuron packages install on the DLAMI parent image (apt
waits for unattended-upgrades, the DKMS driver builds on its kernel), the image test passes on
an inf2 build instance, and the AMI id lands in the SSM parameter that fleets read.
"""

import aws_cdk as cdk
from aws_cdk import integ_tests_alpha as integ
from support import WAIT, allow, integ_test, vpc

from inf3kit.constructs import NeuronAmiPipeline

app = cdk.App()
stack = cdk.Stack(app, "Inf3kitIntegAmiPipeline")
pipeline = NeuronAmiPipeline(
    stack,
    "Pipeline",
    instance_types=["inf2.xlarge"],
    vpc=vpc(stack),
    parameter_name="/inf3kit/integ/ami",
    schedule=None,
)
test = integ_test(app, "AmiPipeline", stack)
parameter = test.assertions.aws_api_call("SSM", "getParameter", {"Name": pipeline.parameter_name})
allow(parameter, "ssm:GetParameter")
parameter.expect(
    integ.ExpectedResult.object_like(
        {"Parameter": {"DataType": "aws:ec2:image", "Value": pipeline.image.attr_image_id}}
    )
).wait_for_assertions(total_timeout=WAIT, interval=cdk.Duration.minutes(1))
app.synth()
