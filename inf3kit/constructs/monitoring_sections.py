"""The dashboard sections of `ServiceMonitoring`: each metric group, with its alarm if it pages.

Built with cdk-monitoring-constructs' `monitor_custom` (the library has no SageMaker endpoint or
plain EC2 load balancer monitoring) and its `monitor_auto_scaling_group`. Each scaling target is
drawn from the watched construct's typed attribute, so the line is the value scaling uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cdk_monitoring_constructs as mc
from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch

from inf3kit.constructs.monitored import MonitoredEndpoint, MonitoredFleet

PERIOD = Duration.minutes(1)
NO_HEALTHY_HOSTS_MINUTES = 2
SAGEMAKER_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Where SageMaker publishes the variant's CPU, memory and disk utilisation."""


@dataclass(frozen=True)
class Thresholds:
    """When the alarms fire (validated by `ServiceMonitoring`)."""

    latency_p99: Duration
    error_rate_percent: float
    unhealthy_hosts_grace: Duration


def monitor_endpoint(
    facade: mc.MonitoringFacade, endpoint: MonitoredEndpoint, thresholds: Thresholds
) -> None:
    """Traffic, errors, latency, the scaling signal and instance utilisation; 5xx and p99 alarms."""
    name = endpoint.endpoint_name
    errors = _percent_of(
        endpoint.metric_invocation_5xx_errors(), endpoint.metric_invocations(), "5xx rate (%)"
    )
    # ModelLatency is in microseconds
    latency = _in_ms(endpoint.metric_model_latency, "ModelLatency", "/ 1000")
    facade.monitor_custom(
        alarm_friendly_name="Endpoint",
        human_readable_name=f"SageMaker endpoint {name}",
        metric_groups=[
            mc.CustomMetricGroup(
                title="Invocations (per minute)",
                metrics=[endpoint.metric_invocations(label="Invocations")],
            ),
            mc.CustomMetricGroup(
                title="Errors (per minute)",
                metrics=[
                    endpoint.metric_invocation_4xx_errors(label="4xx"),
                    endpoint.metric_invocation_5xx_errors(label="5xx"),
                ],
            ),
            _rate_group(
                "5xx rate (%)",
                errors,
                thresholds.error_rate_percent,
                f"{name}: more than {thresholds.error_rate_percent:g}% of "
                "invocations answered 5xx in 3 of the last 5 minutes",
            ),
            _latency_group(
                "Model latency (ms)",
                latency,
                thresholds.latency_p99,
                f"{name}: p99 model latency above "
                f"{thresholds.latency_p99.to_human_string()} in 3 of the last 5 minutes",
            ),
            _scaling_group(endpoint),
            mc.CustomMetricGroup(
                title="Instance utilisation (%)",
                metrics=[
                    _instance_metric(endpoint, "CPUUtilization"),
                    _instance_metric(endpoint, "MemoryUtilization"),
                    _instance_metric(endpoint, "DiskUtilization"),
                ],
            ),
        ],
    )


def monitor_fleet(
    facade: mc.MonitoringFacade, fleet: MonitoredFleet, thresholds: Thresholds
) -> None:
    """The load balancer's view, hosts, NeuronCores and the group; 5xx, p99 and host alarms."""
    requests = fleet.metric_requests(label="Requests")
    target_5xx = fleet.metric_http_5xx()
    errors = _percent_of(target_5xx, requests, "target 5xx rate (%)")
    # TargetResponseTime is in seconds
    response_ms = _in_ms(fleet.metric_target_response_time, "TargetResponseTime", "* 1000")
    grace = thresholds.unhealthy_hosts_grace
    grace_minutes = int(grace.to_minutes())
    facade.monitor_custom(
        alarm_friendly_name="Fleet",
        human_readable_name="EC2 fleet load balancer",
        metric_groups=[
            mc.CustomMetricGroup(
                title="Requests (per minute)",
                metrics=[requests],
            ),
            mc.CustomMetricGroup(
                title="Requests per instance vs scaling target",
                metrics=[fleet.metric_request_count_per_target()],
                horizontal_annotations=_target_annotation(fleet.requests_per_instance),
            ),
            mc.CustomMetricGroup(
                title="5xx (per minute)",
                metrics=[
                    target_5xx.with_(label="target 5xx"),
                    fleet.metric_load_balancer_5xx(label="load balancer 5xx"),
                ],
            ),
            _rate_group(
                "Target 5xx rate (%)",
                errors,
                thresholds.error_rate_percent,
                f"fleet: more than {thresholds.error_rate_percent:g}% of requests "
                "answered 5xx by the runtime in 3 of the last 5 minutes",
            ),
            _latency_group(
                "Target response time (ms)",
                response_ms,
                thresholds.latency_p99,
                "fleet: p99 target response time above "
                f"{thresholds.latency_p99.to_human_string()} in 3 of the last 5 minutes",
            ),
            mc.CustomMetricGroup(
                title="Hosts",
                metrics=[
                    mc.CustomMetricWithAlarm(
                        alarm_friendly_name="NoHealthyHosts",
                        metric=fleet.metric_healthy_hosts(label="healthy"),
                        add_alarm={
                            "Critical": mc.CustomThreshold(
                                threshold=1,
                                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                                datapoints_to_alarm=NO_HEALTHY_HOSTS_MINUTES,
                                evaluation_periods=NO_HEALTHY_HOSTS_MINUTES,
                                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                                alarm_description_override="fleet: no target passed the "
                                "readiness check for 2 minutes; the load balancer answers "
                                "503 to every request",
                            )
                        },
                    ),
                    mc.CustomMetricWithAlarm(
                        alarm_friendly_name="UnhealthyHosts",
                        metric=fleet.metric_unhealthy_hosts(label="unhealthy"),
                        add_alarm={
                            "Warning": mc.CustomThreshold(
                                threshold=1,
                                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                datapoints_to_alarm=grace_minutes,
                                evaluation_periods=grace_minutes,
                                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                                alarm_description_override="fleet: a target failed the "
                                f"readiness check for {grace.to_human_string()}, longer "
                                "than an instance takes to start",
                            )
                        },
                    ),
                ],
            ),
            mc.CustomMetricGroup(
                title="NeuronCore utilisation vs scaling target (%)",
                metrics=[fleet.metric_neuroncore_utilization()],
                horizontal_annotations=_target_annotation(fleet.neuroncore_utilization_percent),
                graph_widget_axis=cloudwatch.YAxisProps(min=0, max=100),
            ),
        ],
    )
    facade.monitor_auto_scaling_group(
        auto_scaling_group=fleet.group,
        alarm_friendly_name="FleetGroup",
        human_readable_name="EC2 fleet Auto Scaling group",
    )


def _percent_of(
    part: cloudwatch.IMetric, whole: cloudwatch.IMetric, label: str
) -> cloudwatch.MathExpression:
    """`part` as a percentage of `whole`, 0 when `whole` is 0 (no traffic is no error rate)."""
    return cloudwatch.MathExpression(
        expression="IF(whole > 0, 100 * part / whole, 0)",
        using_metrics={"part": part, "whole": whole},
        label=label,
        period=PERIOD,
    )


def _in_ms(
    metric: Callable[..., cloudwatch.Metric], name: str, to_ms: str
) -> dict[str, cloudwatch.MathExpression]:
    """p50 and p99 of `metric` in milliseconds (`to_ms`: the arithmetic from its unit)."""
    return {
        stat: cloudwatch.MathExpression(
            expression=f"value{stat} {to_ms}",
            using_metrics={f"value{stat}": metric(statistic=stat)},
            label=f"{name} {stat} (ms)",
            period=PERIOD,
        )
        for stat in ("p50", "p99")
    }


def _rate_group(
    title: str, rate: cloudwatch.MathExpression, percent: float, description: str
) -> mc.CustomMetricGroup:
    """A 5xx-rate graph whose alarm pages above `percent`."""
    alarm = mc.CustomMetricWithAlarm(
        alarm_friendly_name="5xxRate",
        metric=rate,
        add_alarm={"Critical": _above(percent, description)},
    )
    return mc.CustomMetricGroup(title=title, metrics=[alarm])


def _latency_group(
    title: str, ms: dict[str, cloudwatch.MathExpression], p99: Duration, description: str
) -> mc.CustomMetricGroup:
    """p50 and p99 latency in milliseconds; the p99 pages above `p99`."""
    alarm = mc.CustomMetricWithAlarm(
        alarm_friendly_name="LatencyP99",
        metric=ms["p99"],
        add_alarm={"Critical": _above(p99.to_milliseconds(), description)},
    )
    return mc.CustomMetricGroup(title=title, metrics=[ms["p50"], alarm])


def _above(threshold: float, description: str) -> mc.CustomThreshold:
    return mc.CustomThreshold(
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description_override=description,
    )


def _scaling_group(endpoint: MonitoredEndpoint) -> mc.CustomMetricGroup:
    """The signal the endpoint scales on, against its target: requests in flight for an LLM
    endpoint, else invocations per instance."""
    if endpoint.concurrent_requests_per_model is not None:
        return mc.CustomMetricGroup(
            title="Requests in flight per instance vs scaling target",
            metrics=[endpoint.metric_concurrent_requests_per_model(label="per instance")],
            horizontal_annotations=_target_annotation(endpoint.concurrent_requests_per_model),
        )
    return mc.CustomMetricGroup(
        title="Invocations per instance vs scaling target",
        metrics=[endpoint.metric_invocations_per_instance(label="per instance")],
        horizontal_annotations=_target_annotation(endpoint.invocations_per_instance),
    )


def _target_annotation(target: float | None) -> list[cloudwatch.HorizontalAnnotation] | None:
    if target is None or Token.is_unresolved(target):
        return None
    return [cloudwatch.HorizontalAnnotation(value=target, label="scaling target")]


def _instance_metric(endpoint: MonitoredEndpoint, name: str) -> cloudwatch.Metric:
    """Per-variant instance utilisation; CPU is summed over vCPUs, so it can exceed 100."""
    return cloudwatch.Metric(
        namespace=SAGEMAKER_INSTANCE_NAMESPACE,
        metric_name=name,
        dimensions_map={
            "EndpointName": endpoint.endpoint_name,
            "VariantName": endpoint.variant_name,
        },
        statistic="Average",
        period=PERIOD,
        label=name.removesuffix("Utilization"),
    )
