"""What `ServiceMonitoring` needs from what it watches: names, scaling targets and metrics.

Small protocols instead of the concrete constructs, so an endpoint or fleet made another way
(an imported endpoint, a fleet of one's own) is monitored the same, and the dashboard draws each
scaling target from the construct's typed attribute, never from its CloudFormation.
"""

from __future__ import annotations

from typing import Protocol, Unpack

from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch

from inf3kit.constructs.endpoint_base import MetricOptions, MetricOrExpression


class MonitoredEndpoint(Protocol):
    """A SageMaker endpoint variant: `EndpointBase` (a NeuronEndpoint, or an imported one)."""

    @property
    def endpoint_name(self) -> str: ...
    @property
    def variant_name(self) -> str: ...
    @property
    def invocations_per_instance(self) -> int | None:
        """The autoscaling target, None without autoscaling."""
        ...

    @property
    def concurrent_requests_per_model(self) -> int | None:
        """The target when scaling on requests in flight (an LLM endpoint), else None."""
        ...

    def metric_invocations(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...
    def metric_concurrent_requests_per_model(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_invocations_per_instance(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_invocation_4xx_errors(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_invocation_5xx_errors(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_model_latency(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...


class MonitoredFleet(Protocol):
    """An Auto Scaling group behind a load balancer: `FleetBase` (a NeuronFleet)."""

    @property
    def group(self) -> autoscaling.IAutoScalingGroup: ...
    @property
    def requests_per_instance(self) -> int | None:
        """The request scaling target (per instance per minute), None when off."""
        ...

    @property
    def neuroncore_utilization_percent(self) -> int | None:
        """The NeuronCore scaling target (percent), None when off."""
        ...

    def metric_requests(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...
    def metric_request_count_per_target(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_http_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...
    def metric_load_balancer_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...
    def metric_target_response_time(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
    def metric_healthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression: ...
    def metric_unhealthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression: ...
    def metric_neuroncore_utilization(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...
