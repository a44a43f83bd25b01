"""Spec `monitoring:` section -> ServiceMonitoring props."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration

from inf3kit.constructs.llm_endpoint import DEFAULT_LATENCY_THRESHOLD as LLM_LATENCY
from inf3kit.constructs.llm_fleet import DEFAULT_STARTUP_MINUTES as LLM_STARTUP_MINUTES
from inf3kit.constructs.monitored import MonitoredEndpoint, MonitoredFleet
from inf3kit.constructs.neuron_fleet import NeuronFleet
from inf3kit.constructs.service_monitoring import ServiceMonitoring
from inf3kit.spec.monitoring import MonitoringSpec

if TYPE_CHECKING:
    from inf3kit.stacks.service import ServiceStack

UNHEALTHY_MARGIN_MINUTES = 5
"""How much longer than the fleet's startup a target may fail readiness before an alarm."""


def add_monitoring(
    stack: ServiceStack,
    monitoring: MonitoringSpec,
    endpoint: MonitoredEndpoint | None,
    fleet: MonitoredFleet | None,
) -> ServiceMonitoring | None:
    """The dashboard and alarms of the service, and the dashboard name as an output.

    The latency alarm keeps the construct's default (1 s) unless the spec sets one: a
    threshold at the request deadline could never fire, since the runtime answers 504 there.
    An LLM's latency is a whole generation, so its default is the LLM endpoint's (3 minutes).
    """
    if endpoint is None and fleet is None:
        return None
    spec = stack.loaded.spec
    unhealthy = monitoring.unhealthy_hosts_minutes or (
        _startup_minutes(stack) + UNHEALTHY_MARGIN_MINUTES if spec.fleet is not None else None
    )
    service = ServiceMonitoring(
        stack,
        "Monitoring",
        endpoint=endpoint,
        fleet=fleet,
        alarm_email=monitoring.alarm_email,
        latency_p99_threshold=Duration.millis(monitoring.latency_p99_ms)
        if monitoring.latency_p99_ms is not None
        else (LLM_LATENCY if spec.model.is_llm else None),
        error_rate_percent=monitoring.error_rate_percent,
        unhealthy_hosts_grace=None if unhealthy is None else Duration.minutes(unhealthy),
        dashboard=monitoring.dashboard,
    )
    CfnOutput(
        stack,
        "AlarmTopicArn",
        value=service.alarm_topic.topic_arn,
        description="subscribe your pager here; every alarm notifies it on ALARM and OK",
    )
    if service.dashboard_name is not None:
        CfnOutput(
            stack,
            "DashboardName",
            value=service.dashboard_name,
            description="the service's CloudWatch dashboard",
        )
    return service


def _startup_minutes(stack: ServiceStack) -> int:
    """The fleet's startup timeout: the spec's, else an LLM fleet's own default or the runtime
    fleet's estimate."""
    fleet, model = stack.loaded.spec.fleet, stack.loaded.spec.model
    if fleet is None:
        return 0
    if fleet.startup_minutes is not None:
        return fleet.startup_minutes
    if model.is_llm:
        return LLM_STARTUP_MINUTES
    assert isinstance(stack.fleet, NeuronFleet)  # a runtime spec's fleet
    return int(stack.fleet.startup_timeout.to_minutes())
