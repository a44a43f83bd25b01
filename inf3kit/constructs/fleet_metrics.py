"""What a fleet offers dashboards and alarms: its metrics, with the endpoint's option vocabulary."""

from __future__ import annotations

from typing import Unpack

from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from inf3kit.constructs.endpoint_base import (
    DEFAULT_METRIC_PERIOD,
    MetricOptions,
    MetricOrExpression,
)
from inf3kit.constructs.fleet_load_balancer import FleetLoadBalancer

NEURON_METRIC_NAMESPACE = "Inf3kit/Neuron"
"""CloudWatch namespace of the NeuronCore utilisation metric the fleet scales on."""
NEURONCORE_UTILIZATION_METRIC = "NeuronCoreUtilization"
"""Average utilisation (percent) of the instance's NeuronCores, dimension AutoScalingGroupName."""


def metric_defaults(statistic: str, options: MetricOptions) -> MetricOptions:
    """`options` over the defaults: `statistic` per minute."""
    return {"statistic": statistic, "period": DEFAULT_METRIC_PERIOD, **options}


class FleetBase(Construct):
    """An Auto Scaling group behind a target group: its parts, metrics and scaling targets.

    The parts are what the shared building blocks (fleet_group, fleet_lifecycle,
    fleet_user_data) work on, so NeuronFleet and LlmFleet assemble the same blocks.
    """

    group: autoscaling.AutoScalingGroup
    target_group: elbv2.ApplicationTargetGroup
    load_balancer: elbv2.ApplicationLoadBalancer
    frontend: FleetLoadBalancer
    launch_template: ec2.LaunchTemplate
    machine_image: ec2.IMachineImage
    security_group: ec2.SecurityGroup
    role: iam.Role
    key: kms.IKey
    log_group: logs.LogGroup
    load_balancer_public: bool
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
            **metric_defaults("Average", options),
        )

    def metric_requests(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the load balancer sent to the runtime (Sum per minute)."""
        return self.target_group.metrics.request_count(**metric_defaults("Sum", options))

    def metric_request_count_per_target(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """ALB requests per instance per minute, what the request scaling policy tracks."""
        return self.target_group.metrics.request_count_per_target(**metric_defaults("Sum", options))

    def metric_target_response_time(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Time from the load balancer sending a request to the runtime answering (p99)."""
        return self.target_group.metrics.target_response_time(**metric_defaults("p99", options))

    def metric_healthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression:
        """Instances passing the readiness check (minimum per minute)."""
        return self.target_group.metrics.healthy_host_count(**metric_defaults("Minimum", options))

    def metric_unhealthy_hosts(self, **options: Unpack[MetricOptions]) -> MetricOrExpression:
        """Instances failing the readiness check (maximum per minute)."""
        return self.target_group.metrics.unhealthy_host_count(**metric_defaults("Maximum", options))

    def metric_http_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """5xx answers from the runtime (429/503 back-pressure shows as 4xx/5xx here)."""
        return self.target_group.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, **metric_defaults("Sum", options)
        )

    def metric_load_balancer_5xx(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """5xx the load balancer answered itself (no healthy target, timeouts)."""
        return self.load_balancer.metrics.http_code_elb(
            elbv2.HttpCodeElb.ELB_5XX_COUNT, **metric_defaults("Sum", options)
        )
