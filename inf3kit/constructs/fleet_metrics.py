"""What a fleet offers dashboards and alarms: its metrics, with the endpoint's option vocabulary."""

from __future__ import annotations

from typing import Unpack

from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from inf3kit.constructs.endpoint_base import DEFAULT_METRIC_PERIOD, MetricOptions

NEURON_METRIC_NAMESPACE = "Inf3kit/Neuron"
"""CloudWatch namespace of the NeuronCore utilisation metric the fleet scales on."""
NEURONCORE_UTILIZATION_METRIC = "NeuronCoreUtilization"
"""Average utilisation (percent) of the instance's NeuronCores, dimension AutoScalingGroupName."""


def _options(statistic: str, options: MetricOptions) -> MetricOptions:
    """`options` over the defaults: `statistic` per minute."""
    return {"statistic": statistic, "period": DEFAULT_METRIC_PERIOD, **options}


class FleetBase(Construct):
    """An Auto Scaling group behind a target group: its metrics and scaling targets."""

    group: autoscaling.AutoScalingGroup
    target_group: elbv2.ApplicationTargetGroup
    load_balancer: elbv2.ApplicationLoadBalancer
    requests_per_instance: int | None
    """The request scaling target (ALB requests per instance per minute), None when off."""
    neuroncore_utilization_percent: int | None
    """The NeuronCore scaling target (percent), None when off."""

    def metric_neuroncore_utilization(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Average NeuronCore utilisation (percent) across the group, per minute by default.

        Published by `inf3kit neuron-metrics` (which reads neuron-monitor; the bootstrap starts
        it) in namespace `Inf3kit/Neuron` with dimension AutoScalingGroupName (docs/fleet.md).
        """
        return cloudwatch.Metric(
            namespace=NEURON_METRIC_NAMESPACE,
            metric_name=NEURONCORE_UTILIZATION_METRIC,
            dimensions_map={"AutoScalingGroupName": self.group.auto_scaling_group_name},
            unit=cloudwatch.Unit.PERCENT,
            **_options("Average", options),
        )

    def metric_requests(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the load balancer sent to the runtime (Sum per minute)."""
        return self.target_group.metrics.request_count(**_options("Sum", options))

    def metric_request_count_per_target(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """ALB requests per instance per minute, what the request scaling policy tracks."""
        return self.target_group.metrics.request_count_per_target(**_options("Sum", options))

    def metric_target_response_time(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Time from the load balancer sending a request to the runtime answering (p99)."""
        return self.target_group.metrics.target_response_time(**_options("p99", options))

    def metric_healthy_hosts(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Instances passing the readiness check (minimum per minute)."""
        return self.target_group.metrics.healthy_host_count(**_options("Minimum", options))

    def metric_unhealthy_hosts(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Instances failing the readiness check (maximum per minute)."""
        return self.target_group.metrics.unhealthy_host_count(**_options("Maximum", options))

    def metric_http_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """5xx answers from the runtime (429/503 back-pressure shows as 4xx/5xx here)."""
        return self.target_group.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, **_options("Sum", options)
        )

    def metric_load_balancer_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """5xx the load balancer answered itself (no healthy target, timeouts)."""
        return self.load_balancer.metrics.http_code_elb(
            elbv2.HttpCodeElb.ELB_5XX_COUNT, **_options("Sum", options)
        )
