"""What instances install to run inf3kit: shared by NeuronFleet (at boot) and the AMI pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from inf3kit.catalog import NeuronRelease

NEURON_PIP_INDEX = "https://pip.repos.neuron.amazonaws.com"
INSTALL_DIR = "/opt/inf3kit"
RELEASE_WARNING_ID = "inf3kit:neuronRelease"
"""Annotation id of the warning that a family's Neuron release is unverified (inf3)."""


def default_runtime_requirements(release: NeuronRelease | None) -> tuple[str, ...]:
    """`inf3kit[serve]` pinned to this library's version, and the Neuron release's exact
    torch-neuronx, neuronx-cc and torch.

    Pinning keeps the runtime on instances in step with the constructs that configure it, and
    the Neuron stack on the release the compatibility matrix names (the one bundles are checked
    against), not whatever the index has that day. None: no release (the caller refused or
    warned already), so only inf3kit.
    """
    try:
        pinned = f"inf3kit[serve]=={version('inf3kit')}"
    except PackageNotFoundError:  # a source tree without installation
        pinned = "inf3kit[serve]"
    return (pinned, *(release.requirements() if release else ()))


@dataclass(frozen=True)
class RuntimeWheel:
    """An inf3kit wheel in S3 to install instead of the PyPI release (`bucket`, object `key`).

    The stacks pass the wheel they build at synthesis (an S3 asset, whose key is a content
    hash), so instances run the inf3kit that synthesized them.
    """

    bucket: s3.IBucket
    key: str
    wheel_name: str | None = None
    """The wheel's file name, from which pip reads the package and version, e.g.
    'inf3kit-0.1.0-py3-none-any.whl'. Default: the last part of `key`."""

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.key}"

    @property
    def file_name(self) -> str:
        return self.wheel_name or self.key.rsplit("/", 1)[-1]

    @property
    def object_arn(self) -> str:
        return self.bucket.arn_for_objects(self.key)

    def requirements(self, local_path: str, requirements: Sequence[str]) -> tuple[str, ...]:
        """`requirements` with inf3kit taken from the wheel downloaded to `local_path`."""
        return (
            f"{local_path}[serve]",
            *(r for r in requirements if not r.startswith("inf3kit")),
        )

    def grant_read(self, role: iam.IRole) -> None:
        """Let `role` get this one object: no listing, no other key of the bucket."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRuntimeWheel",
                actions=["s3:GetObject"],
                resources=[self.object_arn],
            )
        )
