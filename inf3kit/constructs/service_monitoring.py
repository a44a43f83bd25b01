"""ServiceMonitoring: one CloudWatch dashboard and the on-call alarms for a model service.

Built on cdk-monitoring-constructs (a MonitoringFacade with its default dashboard factory), so
the widgets, alarm annotations and alarm naming follow that library's conventions. The library
has no SageMaker endpoint or plain EC2 load balancer monitoring, so those sections are its
`monitor_custom` groups over the metrics NeuronEndpoint and NeuronFleet expose; the Auto
Scaling group uses its `monitor_auto_scaling_group`. Alarms page through one SNS topic,
encrypted with KMS and refusing non-TLS publishers.
"""

from __future__ import annotations

import re

import cdk_monitoring_constructs as mc
from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from inf3kit.constructs.monitored import MonitoredEndpoint, MonitoredFleet
from inf3kit.constructs.monitoring_sections import Thresholds, monitor_endpoint, monitor_fleet
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import email_problems, percent_problems

# Defaults, in one place, as docs/monitoring.md describes them.
DEFAULT_LATENCY_P99_THRESHOLD = Duration.seconds(1)
"""Same as NeuronEndpoint's rollback alarm default."""
DEFAULT_ERROR_RATE_PERCENT = 1.0
DEFAULT_UNHEALTHY_HOSTS_GRACE = Duration.minutes(25)
"""Longer than NeuronFleet's default 20-minute startup: a booting instance fails readiness
until its model is loaded, and that is not worth a page."""
EVALUATION_MINUTES = 5
"""Rate and latency alarms look at the last 5 minutes ..."""
DATAPOINTS_TO_ALARM = 3
"""... and fire when 3 of them breach, so one slow minute does not page."""


_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class ServiceMonitoring(Construct):
    """A dashboard and on-call alarms for a NeuronEndpoint, a NeuronFleet, or both.

    The dashboard shows traffic, errors, latency, instance utilisation and each scaling signal
    next to its target. The alarms are the ones worth waking someone for: the endpoint's 5xx
    rate and p99 latency, and the fleet's 5xx rate, p99 latency, unhealthy hosts and having no
    healthy host at all. They notify `alarm_topic` when they fire and when they recover.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: MonitoredEndpoint | None = None,
        fleet: MonitoredFleet | None = None,
        alarm_topic: sns.ITopic | None = None,
        alarm_email: str | None = None,
        key: kms.IKey | None = None,
        latency_p99_threshold: Duration | None = None,
        error_rate_percent: float = DEFAULT_ERROR_RATE_PERCENT,
        unhealthy_hosts_grace: Duration | None = None,
        dashboard: bool = True,
        dashboard_name: str | None = None,
    ) -> None:
        """Create the dashboard, the alarms and (unless given) the alarm topic.

        :param endpoint: the SageMaker endpoint to watch. At least one of endpoint and fleet.
        :param fleet: the EC2 fleet to watch.
        :param alarm_topic: where alarms notify, on ALARM and on OK. Default: a topic is created,
            encrypted with `key` and refusing publishers that do not use TLS.
        :param alarm_email: subscribe this address to the alarm topic (the owner confirms the
            subscription by mail). Default: no subscription; subscribe your pager yourself.
        :param key: encrypts the created topic; CloudWatch is allowed to use it to publish.
            Default: a key is created with yearly rotation. Not used with `alarm_topic`.
        :param latency_p99_threshold: p99 latency (endpoint ModelLatency, fleet target response
            time) above this in 3 of 5 minutes raises an alarm. Default: 1 second. Keep it below
            the runtime's request timeout: the runtime answers 504 at that deadline, so p99
            latency never exceeds it and an alarm at or above it can never fire.
        :param error_rate_percent: 5xx answers above this share of requests in 3 of 5 minutes
            raise an alarm. Default: 1 percent.
        :param unhealthy_hosts_grace: any fleet target failing its readiness check for this
            long raises an alarm. Default: 25 minutes, longer than the fleet's default startup
            (a booting instance is unhealthy until its model loads). Whole minutes, at most a day.
        :param dashboard: create the dashboard. Default: True; the alarms exist either way.
        :param dashboard_name: Default: the stack name, or a unique name from the construct
            path when the stack name is not known at synthesis.
        """
        super().__init__(scope, id)
        latency = latency_p99_threshold or DEFAULT_LATENCY_P99_THRESHOLD
        grace = unhealthy_hosts_grace or DEFAULT_UNHEALTHY_HOSTS_GRACE
        problems = _validate(
            endpoint=endpoint,
            fleet=fleet,
            alarm_topic=alarm_topic,
            alarm_email=alarm_email,
            key=key,
            latency=latency,
            error_rate_percent=error_rate_percent,
            grace=grace,
            dashboard_name=dashboard_name,
        )
        raise_if_problems("ServiceMonitoring", self, problems)

        self.endpoint = endpoint
        self.fleet = fleet
        self.latency_p99_threshold = latency
        self.key: kms.IKey | None = None
        self.error_rate_percent = error_rate_percent
        self.alarm_topic: sns.ITopic = alarm_topic or self._add_topic(key)
        if alarm_email is not None:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        name = self._add_facade(dashboard_name, dashboard)
        thresholds = Thresholds(latency, error_rate_percent, grace)
        if endpoint is not None:
            monitor_endpoint(self.facade, endpoint, thresholds)
        if fleet is not None:
            monitor_fleet(self.facade, fleet, thresholds)

        self.dashboard: cloudwatch.Dashboard | None = self.dashboard_factory.created_dashboard()
        self.dashboard_name: str | None = name if self.dashboard is not None else None
        self.alarms: list[cloudwatch.AlarmBase] = [a.alarm for a in self.facade.created_alarms()]

    # --- helpers ---------------------------------------------------------------------------

    def _add_topic(self, key: kms.IKey | None) -> sns.ITopic:
        """An SSL-only topic encrypted with a key CloudWatch alarms may publish with."""
        self.key = key or kms.Key(
            self,
            "Key",
            description=f"inf3kit alarm topic {self.node.path}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_cloudwatch(self.key)
        return sns.Topic(
            self,
            "AlarmTopic",
            display_name="inf3kit alarms",
            master_key=self.key,
            enforce_ssl=True,
        )

    def _add_facade(self, dashboard_name: str | None, dashboard: bool) -> str:
        """The monitoring facade, its dashboard and alarm defaults; returns the name used."""
        stack_name = Stack.of(self).stack_name
        name = dashboard_name or (
            stack_name
            if not Token.is_unresolved(stack_name) and _DASHBOARD_NAME.match(stack_name)
            else Names.unique_resource_name(self, max_length=200, separator="-")
        )
        self.dashboard_factory = mc.DefaultDashboardFactory(
            self,
            "Dashboards",
            dashboard_name_prefix=name,
            create_dashboard=dashboard,
            create_alarm_dashboard=False,
            create_summary_dashboard=False,
            rendering_preference=mc.DashboardRenderingPreference.INTERACTIVE_ONLY,
        )
        self.facade = mc.MonitoringFacade(
            self,
            "Facade",
            dashboard_factory=self.dashboard_factory,
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=name,
                action=mc.SnsAlarmActionStrategy(
                    on_alarm_topic=self.alarm_topic, on_ok_topic=self.alarm_topic
                ),
                datapoints_to_alarm=DATAPOINTS_TO_ALARM,
                evaluation_periods=EVALUATION_MINUTES,
            ),
        )
        self.facade.add_large_header(f"inf3kit service {name}")
        return name

    def _allow_cloudwatch(self, key: kms.IKey) -> None:
        """CloudWatch alarms publish to an encrypted topic only if they may use its key.

        Only for alarms of this account and region (confused-deputy conditions).
        """
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )


def _validate(
    *,
    endpoint: MonitoredEndpoint | None,
    fleet: MonitoredFleet | None,
    alarm_topic: sns.ITopic | None,
    alarm_email: str | None,
    key: kms.IKey | None,
    latency: Duration,
    error_rate_percent: float,
    grace: Duration,
    dashboard_name: str | None,
) -> list[str]:
    """Every problem with the props, so one synthesis reports them all."""
    problems = []
    if endpoint is None and fleet is None:
        problems.append(
            "endpoint/fleet: neither given, so there is nothing to monitor. "
            "Fix: pass endpoint=..., fleet=..., or both"
        )
    if alarm_topic is not None and key is not None:
        problems.append(
            "key: only encrypts a topic this construct creates, but alarm_topic was given. "
            "Fix: drop key, or drop alarm_topic"
        )
    if alarm_email is not None:
        problems += [f"alarm_email: {p}" for p in email_problems(alarm_email)]
    if not Token.is_unresolved(latency) and latency.to_milliseconds() <= 0:
        problems.append(
            f"latency_p99_threshold: got {latency.to_human_string()}, must be positive. "
            "Fix: use the p99 your clients tolerate, e.g. Duration.millis(500)"
        )
    problems += [f"error_rate_percent: {p}" for p in percent_problems(error_rate_percent)]
    millis = grace.to_milliseconds()
    if not (millis % 60_000 == 0 and 60_000 <= millis <= 86_400_000):
        problems.append(
            f"unhealthy_hosts_grace: got {grace.to_human_string()}, must be whole minutes "
            "from 1 minute to 1 day. Fix: use e.g. Duration.minutes(25)"
        )
    if dashboard_name is not None and not _DASHBOARD_NAME.match(dashboard_name):
        problems.append(
            f"dashboard_name: got {dashboard_name!r}; CloudWatch allows 1-255 letters, digits, "
            "'-' and '_'. Fix: rename it"
        )
    return problems
