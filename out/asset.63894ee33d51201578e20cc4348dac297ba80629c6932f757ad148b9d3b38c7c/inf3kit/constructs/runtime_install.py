"""What instances install to run inf3kit: shared by NeuronFleet (at boot) and the AMI pipeline."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

NEURON_PIP_INDEX = "https://pip.repos.neuron.amazonaws.com"
INSTALL_DIR = "/opt/inf3kit"


def default_runtime_requirements() -> tuple[str, ...]:
    """`inf3kit[serve]` pinned to this library's version, and `torch-neuronx`.

    Pinning keeps the runtime on instances in step with the constructs that configure it.
    """
    try:
        pinned = f"inf3kit[serve]=={version('inf3kit')}"
    except PackageNotFoundError:  # a source tree without installation
        pinned = "inf3kit[serve]"
    return (pinned, "torch-neuronx")
