"""The CDK app entry point (`cdk synth`, `cdk deploy`): see inf3kit.stacks.build_app."""

from inf3kit.stacks import build_app

build_app().synth()
