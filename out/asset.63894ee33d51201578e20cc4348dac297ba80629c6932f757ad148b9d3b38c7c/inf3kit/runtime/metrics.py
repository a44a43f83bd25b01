"""Prometheus metrics for one served model, in a registry of their own.

Names follow Triton's where one exists (success/failure, inference vs execution count) so
dashboards carry over: ``inference_count / execution_count`` is the average batch size.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

FAILURE_REASONS: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "queue_full",
    503: "unavailable",
    504: "timeout",
}
"""The ``reason`` label of a failed request by HTTP status; any other status is ``internal``."""


class Metrics:
    """Bound metric children for one model, created once so the hot path does no label lookups."""

    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        success = Counter(
            "inf3kit_request_success", "Inference requests answered 200.", ["model"], registry=r
        )
        failure = Counter(
            "inf3kit_request_failure",
            "Inference requests answered with an error, by reason.",
            ["model", "reason"],
            registry=r,
        )
        inferences = Counter(
            "inf3kit_inference_count",
            "Samples inferred (batch rows without padding).",
            ["model"],
            registry=r,
        )
        executions = Counter(
            "inf3kit_execution_count", "Batches executed on a device.", ["model"], registry=r
        )
        queue = Histogram(
            "inf3kit_queue_duration_seconds",
            "Time a request waited before its batch started.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        compute = Histogram(
            "inf3kit_compute_duration_seconds",
            "Device time per batch (sum / wall time / workers = device utilisation).",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        request = Histogram(
            "inf3kit_request_duration_seconds",
            "Inference request time inside the server, body read to response.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        inflight = Gauge(
            "inf3kit_inflight_requests",
            "Inference requests being handled.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "inf3kit_ready",
            "1 when the model is ready to serve (in every server process).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.workers = Gauge(
            "inf3kit_workers",
            "Device workers serving the model.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.success = success.labels(model)
        reasons = [*FAILURE_REASONS.values(), "internal"]
        self.failure = {reason: failure.labels(model, reason) for reason in reasons}
        self.inferences = inferences.labels(model)
        self.executions = executions.labels(model)
        self.queue_seconds = queue.labels(model)
        self.compute_seconds = compute.labels(model)
        self.request_seconds = request.labels(model)
        self.inflight = inflight.labels(model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


CONNECTION_EVENTS = (
    "client_disconnect",
    "header_timeout",
    "body_timeout",
    "idle_timeout",
    "headers_too_large",
    "malformed",
    "upgrade_refused",
    "over_limit",
    "evicted_idle",
    "refused",
)
"""The ``event`` label of ``inf3kit_connection_events_total`` (docs/runtime.md explains each)."""


class ConnectionMetrics:
    """HTTP connection counters, kept by the protocol layer below the app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        events = Counter(
            "inf3kit_connection_events",
            "Connection-level events: timeouts, refusals, client disconnects.",
            ["event"],
            registry=registry,
        )
        self.events = {event: events.labels(event) for event in CONNECTION_EVENTS}
        self.open = Gauge(
            "inf3kit_open_connections",
            "HTTP connections open.",
            registry=registry,
            multiprocess_mode="livesum",
        )
