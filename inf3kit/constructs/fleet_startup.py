"""How long a fleet instance takes from launch to ready: the default startup timeout.

The timeout is the health check grace period, the creation/update signal timeout and the
rolling update's pause. Too short and a healthy instance is replaced mid-install; too long and
a broken rollout holds the stack for nothing. So it is sized from what the instance does, not a
constant:

- boot: EC2 launch, the DLAMI's boot and cloud-init up to the user data (3 minutes);
- install: pip into a fresh venv, 1 minute plus 3 per pinned Neuron package of the release
  (torch, torch-neuronx and neuronx-cc are each hundreds of MB), or 1 minute on a baked AMI
  whose venv already has them;
- download: the bundle from S3 at 50 MB/s, then read again for its sha256 (at least 30 s);
- load: reading the bundle onto the NeuronCores at 100 MB/s, plus 2 minutes of Neuron runtime
  start and warm-up.

The sum gets a 50 % margin, is rounded up to whole minutes and kept within 10..60 minutes (an
Auto Scaling rolling update pauses at most one hour). The rates are assumptions, not
measurements (nothing here runs on a Neuron host); a bundle of unknown size (an s3:// URI) is
taken as 2 GiB. Pass `startup_timeout` when you know better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration

BOOT_SECONDS = 180
PIP_BASE_SECONDS = 60
SECONDS_PER_NEURON_PACKAGE = 180
NEURON_PACKAGES = ("torch", "torch-neuronx", "neuronx-cc")
DOWNLOAD_BYTES_PER_SECOND = 50e6
LOAD_BYTES_PER_SECOND = 100e6
WARM_UP_SECONDS = 120
UNKNOWN_BUNDLE_BYTES = 2 * 1024**3
MARGIN = 1.5
MIN_MINUTES, MAX_MINUTES = 10, 60


@dataclass(frozen=True)
class StartupEstimate:
    """The parts of launch-to-ready, in seconds, and the timeout they add up to."""

    boot: int
    install: int
    download: int
    load: int

    @property
    def minutes(self) -> int:
        total = (self.boot + self.install + self.download + self.load) * MARGIN
        return min(MAX_MINUTES, max(MIN_MINUTES, math.ceil(total / 60)))

    @property
    def timeout(self) -> Duration:
        return Duration.minutes(self.minutes)

    def describe(self) -> str:
        return (
            f"{self.minutes} min = (boot {self.boot} s + install {self.install} s + download "
            f"{self.download} s + load {self.load} s) x {MARGIN}, within {MIN_MINUTES}.."
            f"{MAX_MINUTES} min"
        )


def estimate_startup(
    *, bundle_bytes: int | None, requirements: Sequence[str], baked: bool
) -> StartupEstimate:
    """The estimate for a bundle of `bundle_bytes` (None: unknown) and what pip installs."""
    size = UNKNOWN_BUNDLE_BYTES if bundle_bytes is None else bundle_bytes
    names = {r.split("==")[0].split("[")[0].strip() for r in requirements}
    heavy = 0 if baked else len(names & set(NEURON_PACKAGES))
    return StartupEstimate(
        boot=BOOT_SECONDS,
        install=PIP_BASE_SECONDS + heavy * SECONDS_PER_NEURON_PACKAGE,
        download=max(30, math.ceil(2 * size / DOWNLOAD_BYTES_PER_SECOND)),
        load=math.ceil(size / LOAD_BYTES_PER_SECOND) + WARM_UP_SECONDS,
    )
