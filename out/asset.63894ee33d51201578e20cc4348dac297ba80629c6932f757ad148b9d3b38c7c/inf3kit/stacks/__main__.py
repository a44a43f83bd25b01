"""`python -m inf3kit.stacks`: the CDK app, for `cdk --app` outside this repository."""

from inf3kit.stacks import build_app

build_app().synth()
