"""The Image Builder component documents a `NeuronAmiPipeline` bakes and tests with.

The build document pins the Neuron packages and installs the inf3kit runtime; the test document
checks them on a Neuron device. Components are immutable per name and version, so each version
is derived from the resolved content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from aws_cdk import Names, Stack
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_kms as kms
from constructs import Construct

from inf3kit.constructs.runtime_install import INSTALL_DIR, RuntimeWheel

NEURON_LS = "/opt/aws/neuron/bin/neuron-ls"
_ROOT_DEVICE = "/dev/sda1"  # the Ubuntu DLAMIs' root device name

_APT_LOCK_WAIT = "-o DPkg::Lock::Timeout=600"


def build_document(
    packages: Mapping[str, str],
    requirements: tuple[str, ...],
    index_url: str | None,
    wheel: RuntimeWheel | None,
) -> dict[str, Any]:
    pins = " ".join(f"'{name}={ver}*'" for name, ver in packages.items())
    venv = f"{INSTALL_DIR}/venv"
    pip = f"{venv}/bin/pip install --quiet"
    if index_url:
        pip += f" --extra-index-url {index_url}"
    steps: list[dict[str, Any]] = [
        {
            "name": "PinNeuronPackages",
            "action": "ExecuteBash",
            "inputs": {
                "commands": [
                    "set -euo pipefail",
                    "export DEBIAN_FRONTEND=noninteractive",
                    # A fresh Ubuntu instance runs unattended-upgrades at boot, which holds the
                    # dpkg lock: stop it, let cloud-init finish, and wait for the lock anyway.
                    "systemctl stop apt-daily.timer apt-daily-upgrade.timer "
                    "unattended-upgrades.service || true",
                    "cloud-init status --wait || true",
                    f"apt-get {_APT_LOCK_WAIT} update -q",
                    f"apt-get {_APT_LOCK_WAIT} install -y -q --allow-downgrades "
                    "--allow-change-held-packages " + pins,
                    "apt-mark hold " + " ".join(packages),
                    # A pinned driver may not build for the parent image's newest kernel: stop
                    # the bake here, with the fix, instead of baking an image with no driver.
                    'dkms status -m aws-neuronx -k "$(uname -r)" | grep -q installed || '
                    '{ echo "aws-neuronx-dkms did not build for kernel $(uname -r): pin a newer '
                    'driver (neuron_packages) or an older parent_image" >&2; exit 1; }',
                ]
            },
        },
    ]
    if wheel is not None:
        wheel_path = f"{INSTALL_DIR}/wheels/{wheel.file_name}"
        steps.append(
            {
                "name": "DownloadRuntimeWheel",
                "action": "S3Download",
                "inputs": [{"source": wheel.s3_url, "destination": wheel_path}],
            }
        )
        requirements = wheel.requirements(wheel_path, requirements)
    steps.append(
        {
            "name": "InstallRuntime",
            "action": "ExecuteBash",
            "inputs": {
                "commands": [
                    "set -euo pipefail",
                    f"mkdir -p {INSTALL_DIR}",
                    f"python3 -m venv {venv}",
                    f"{pip} " + " ".join(f"'{r}'" for r in requirements),
                ]
            },
        }
    )
    return {
        "name": "inf3kit-neuron-runtime",
        "description": "pinned Neuron driver/runtime/tools and the inf3kit runtime",
        "schemaVersion": 1.0,
        "phases": [
            {"name": "build", "steps": steps},
            {
                "name": "validate",
                "steps": [
                    {
                        "name": "RuntimeInstalled",
                        "action": "ExecuteBash",
                        "inputs": {"commands": [f"{venv}/bin/inf3kit --help > /dev/null"]},
                    }
                ],
            },
        ],
    }


def test_document(packages: Mapping[str, str]) -> dict[str, Any]:
    venv = f"{INSTALL_DIR}/venv"
    checks = [
        f"dpkg-query -W -f='${{Version}}' {name} | grep -q '^{ver}' || "
        f"{{ echo '{name} is not {ver}'; exit 1; }}"
        for name, ver in packages.items()
    ]
    return {
        "name": "inf3kit-neuron-runtime-test",
        "description": "the image boots with the pinned Neuron driver and a working runtime",
        "schemaVersion": 1.0,
        "phases": [
            {
                "name": "test",
                "steps": [
                    {
                        "name": "NeuronPackagesPinned",
                        "action": "ExecuteBash",
                        "inputs": {"commands": ["set -euo pipefail", *checks]},
                    },
                    {
                        "name": "NeuronDevice",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                "set -euo pipefail",
                                "lsmod | grep -q '^neuron '",
                                "test -e /dev/neuron0",
                                NEURON_LS,
                            ]
                        },
                    },
                    {
                        "name": "Inf3kitRuntime",
                        "action": "ExecuteBash",
                        "inputs": {
                            "commands": [
                                "set -euo pipefail",
                                f'{venv}/bin/python -c "import inf3kit.runtime"',
                                f"{venv}/bin/inf3kit --help",
                            ]
                        },
                    },
                ],
            }
        ],
    }


def resource_name(scope: Construct, suffix: str) -> str:
    """A stable, account-unique Image Builder name (letters, digits and dashes)."""
    return Names.unique_resource_name(scope, max_length=100, separator="-") + "-" + suffix


def content_version(*parts: str) -> str:
    """A semantic version derived from the content, so a change is a new version.

    Image Builder components and recipes are immutable per name and version: CloudFormation
    replaces them on any change, and the replacement must not reuse the old version.
    """
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"1.0.{int(digest[:7], 16)}"


def add_component(
    scope: Construct, id: str, description: str, document: dict[str, Any], key: kms.IKey
) -> imagebuilder.CfnComponent:
    """An encrypted Linux component holding `document`, versioned by its resolved content."""
    data = yaml.safe_dump(document, sort_keys=False, width=100_000)
    return imagebuilder.CfnComponent(
        scope,
        id,
        name=resource_name(scope, id),
        platform="Linux",
        # Hashed resolved: a token's text (the wheel asset's bucket) varies by construction
        # order, its CloudFormation form does not.
        version=content_version(json.dumps(Stack.of(scope).resolve(data), sort_keys=True)),
        description=description,
        data=data,
        kms_key_id=key.key_arn,
    )


def add_recipe(
    scope: Construct,
    *,
    neuron_sdk: str,
    parent_image: str,
    components: Sequence[imagebuilder.CfnComponent],
    size: int,
    key: kms.IKey,
) -> imagebuilder.CfnImageRecipe:
    """The recipe applying `components` to `parent_image`, on an encrypted gp3 root volume."""
    return imagebuilder.CfnImageRecipe(
        scope,
        "Recipe",
        name=resource_name(scope, "Recipe"),
        version=content_version(
            parent_image,
            *(c.version for c in components),
            str(size),
        ),
        description=f"Neuron {neuron_sdk} packages and the inf3kit runtime on a Neuron DLAMI",
        parent_image=parent_image,
        components=[
            imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(component_arn=c.attr_arn)
            for c in components
        ],
        block_device_mappings=[
            imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                device_name=_ROOT_DEVICE,
                ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                    encrypted=True,
                    kms_key_id=key.key_arn,
                    volume_size=size,
                    volume_type="gp3",
                    delete_on_termination=True,
                ),
            )
        ],
    )
