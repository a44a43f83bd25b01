"""How an endpoint update replaces the serving fleet, and the alarms that roll it back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker

from inf3kit.constructs.endpoint_base import EndpointBase
from inf3kit.rules import RolloutStrategy

MIN_DEPLOYMENT_TIMEOUT = Duration.hours(1)
DEFAULT_BAKE_TIME = Duration.minutes(10)
DEFAULT_LATENCY_THRESHOLD = Duration.seconds(1)
MAX_DEPLOYMENT_SECONDS = 14_400
"""SageMaker allows a rollout 10 minutes to 4 hours."""


@dataclass(frozen=True)
class EndpointRollout:
    """How an update replaces the serving fleet.

    Blue/green strategies start a full new fleet and shift traffic (all at once, a canary slice
    first, or linear steps), waiting `bake_time` after each shift; any rollback alarm in alarm
    during the rollout sends traffic back. `rolling` replaces instances in batches instead and
    never doubles the fleet, which matters when accelerator capacity is scarce.
    """

    strategy: RolloutStrategy = "canary"
    canary_percent: int = 10
    linear_step_percent: int = 20
    rolling_batch_percent: int = 25
    bake_time: Duration = field(default_factory=lambda: DEFAULT_BAKE_TIME)
    termination_wait: Duration = field(default_factory=lambda: Duration.seconds(0))
    timeout: Duration | None = None
    """Whole-rollout limit. Default: the bake times plus the startup and download timeouts,
    at least one hour (SageMaker allows 10 minutes to 4 hours)."""

    @staticmethod
    def all_at_once(*, bake_time: Duration = DEFAULT_BAKE_TIME) -> EndpointRollout:
        return EndpointRollout("all_at_once", bake_time=bake_time)

    @staticmethod
    def canary(percent: int = 10, *, bake_time: Duration = DEFAULT_BAKE_TIME) -> EndpointRollout:
        return EndpointRollout("canary", canary_percent=percent, bake_time=bake_time)

    @staticmethod
    def linear(
        step_percent: int = 20, *, bake_time: Duration = DEFAULT_BAKE_TIME
    ) -> EndpointRollout:
        return EndpointRollout("linear", linear_step_percent=step_percent, bake_time=bake_time)

    @staticmethod
    def rolling(
        batch_percent: int = 25, *, bake_time: Duration = DEFAULT_BAKE_TIME
    ) -> EndpointRollout:
        return EndpointRollout("rolling", rolling_batch_percent=batch_percent, bake_time=bake_time)

    @property
    def steps(self) -> int:
        """Traffic shifts (blue/green) or batches (rolling) a full rollout takes."""
        if self.strategy == "canary":
            return 2
        if self.strategy == "linear":
            return math.ceil(100 / self.linear_step_percent)
        if self.strategy == "rolling":
            return math.ceil(100 / self.rolling_batch_percent)
        return 1

    def timeout_for(self, startup: Duration, download: Duration) -> Duration:
        """`timeout`, or every bake plus the startup and download timeouts (1 to 4 hours)."""
        if self.timeout is not None:
            return self.timeout
        needed = (
            self.steps * int(self.bake_time.to_seconds())
            + int(self.termination_wait.to_seconds())
            + startup.to_seconds()
            + download.to_seconds()
        )
        return Duration.seconds(
            max(MIN_DEPLOYMENT_TIMEOUT.to_seconds(), min(MAX_DEPLOYMENT_SECONDS, needed))
        )


def add_rollback_alarms(
    endpoint: EndpointBase, latency_threshold: Duration
) -> list[cloudwatch.IAlarm]:
    """The 5xx and p99 latency alarms an update in progress rolls back on."""
    errors = cloudwatch.Alarm(
        endpoint,
        "Errors5xxAlarm",
        alarm_description=f"{endpoint.endpoint_name}: 5xx answers in 2 consecutive minutes; "
        "rolls back an update in progress",
        metric=endpoint.metric_invocation_5xx_errors(),
        threshold=1,
        evaluation_periods=2,
        datapoints_to_alarm=2,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    latency = cloudwatch.Alarm(
        endpoint,
        "LatencyAlarm",
        alarm_description=f"{endpoint.endpoint_name}: p99 model latency above "
        f"{latency_threshold.to_human_string()} for 3 minutes; rolls back an update",
        metric=endpoint.metric_model_latency(),
        threshold=latency_threshold.to_milliseconds() * 1000,  # ModelLatency is in µs
        evaluation_periods=3,
        datapoints_to_alarm=3,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return [errors, latency]


def deployment_config(
    rollout: EndpointRollout,
    alarms: list[cloudwatch.IAlarm],
    startup: Duration,
    download: Duration,
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """The endpoint's DeploymentConfig: rolling or blue/green, rolled back on `alarms`."""
    bake = int(rollout.bake_time.to_seconds())
    timeout = int(rollout.timeout_for(startup, download).to_seconds())
    rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
        alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in alarms]
    )
    percent = sagemaker.CfnEndpoint.CapacitySizeProperty
    if rollout.strategy == "rolling":
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                maximum_batch_size=percent(
                    type="CAPACITY_PERCENT", value=rollout.rolling_batch_percent
                ),
                wait_interval_in_seconds=bake,
                maximum_execution_timeout_in_seconds=timeout,
                rollback_maximum_batch_size=percent(type="CAPACITY_PERCENT", value=100),
            ),
        )
    routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=rollout.strategy.upper(),
        wait_interval_in_seconds=bake,
        canary_size=percent(type="CAPACITY_PERCENT", value=rollout.canary_percent)
        if rollout.strategy == "canary"
        else None,
        linear_step_size=percent(type="CAPACITY_PERCENT", value=rollout.linear_step_percent)
        if rollout.strategy == "linear"
        else None,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        auto_rollback_configuration=rollback,
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            maximum_execution_timeout_in_seconds=timeout,
            termination_wait_in_seconds=int(rollout.termination_wait.to_seconds()),
        ),
    )
