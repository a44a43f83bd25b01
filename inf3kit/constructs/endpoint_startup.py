"""How long a runtime endpoint's model download and first passing /ping may take: the defaults.

SageMaker stops an instance whose download or startup outlasts the variant's
ModelDataDownloadTimeoutInSeconds or ContainerStartupHealthCheckTimeoutInSeconds (60..3600 s
each), so both follow the bundle's size, at the rates a fleet's startup estimate assumes
(inf3kit.constructs.fleet_startup): the download at 50 MB/s; the load at 100 MB/s plus 2
minutes of Neuron runtime start and warm-up; then the same 50 % margin. Each is at least 15
minutes, the container and runtime start of a small model that inf3kit has always allowed, and
at most SageMaker's hour. The rates are assumptions, not measurements; a bundle of unknown size
(an s3:// URI) is taken as 2 GiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aws_cdk import Duration

from inf3kit.constructs.fleet_startup import (
    DOWNLOAD_BYTES_PER_SECOND,
    LOAD_BYTES_PER_SECOND,
    MARGIN,
    UNKNOWN_BUNDLE_BYTES,
    WARM_UP_SECONDS,
)

MIN_SECONDS = 900
MAX_SECONDS = 3600
"""SageMaker API reference, ProductionVariant: both timeouts take 60..3600 seconds."""


@dataclass(frozen=True)
class EndpointTimeouts:
    download_seconds: int
    startup_seconds: int

    @property
    def download(self) -> Duration:
        return Duration.seconds(self.download_seconds)

    @property
    def startup(self) -> Duration:
        return Duration.seconds(self.startup_seconds)


def estimate_endpoint_timeouts(bundle_bytes: int | None) -> EndpointTimeouts:
    """The download and startup timeouts for a bundle of `bundle_bytes` (None: unknown)."""
    size = UNKNOWN_BUNDLE_BYTES if bundle_bytes is None else bundle_bytes
    return EndpointTimeouts(
        download_seconds=_bounded(size / DOWNLOAD_BYTES_PER_SECOND),
        startup_seconds=_bounded(size / LOAD_BYTES_PER_SECOND + WARM_UP_SECONDS),
    )


def _bounded(seconds: float) -> int:
    return min(MAX_SECONDS, max(MIN_SECONDS, math.ceil(seconds * MARGIN)))
