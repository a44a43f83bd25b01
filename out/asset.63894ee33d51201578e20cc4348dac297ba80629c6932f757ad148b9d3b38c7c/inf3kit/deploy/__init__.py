"""Deploying specs: the local AWS emulator and the real CDK CLI."""

from inf3kit.deploy.cdk_cli import CdkCliError
from inf3kit.deploy.emulator import LocalAws, LocalAwsError, running, start, stop
from inf3kit.deploy.local import (
    ResourceChange,
    StackReport,
    deploy,
    destroy,
    read_assembly,
    remaining_stacks,
)

__all__ = [
    "CdkCliError",
    "LocalAws",
    "LocalAwsError",
    "ResourceChange",
    "StackReport",
    "deploy",
    "destroy",
    "read_assembly",
    "remaining_stacks",
    "running",
    "start",
    "stop",
]
