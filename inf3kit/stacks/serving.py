"""Spec `serving:` section -> the RuntimeSettings both the endpoint and the fleet take."""

from __future__ import annotations

from aws_cdk import Duration

from inf3kit.constructs.runtime_settings import RuntimeSettings
from inf3kit.spec import ServingSpec


def runtime_settings(serving: ServingSpec) -> RuntimeSettings:
    """The spec's runtime tuning as typed props; the spec takes whole milliseconds."""
    return RuntimeSettings(
        max_batch_size=serving.max_batch_size,
        max_delay=Duration.millis(serving.max_delay_ms),
        queue_size=serving.max_queue_size,
        request_timeout=Duration.millis(serving.request_timeout_ms),
        max_body_bytes=serving.max_request_bytes,
    )
