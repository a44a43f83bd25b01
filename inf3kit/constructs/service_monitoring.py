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
from typing import Any

import cdk_monitoring_constructs as mc
from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, IConstruct

from inf3kit.constructs.neuron_endpoint import NeuronEndpoint
from inf3kit.constructs.neuron_fleet import NeuronFleet
from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import email_problems, percent_problems

# Defaults, in one place, as docs/monitoring.md describes them.
DEFAULT_LATENCY_P99_THRESHOLD = Duration.seconds(1)
"""Same as NeuronEndpoint's rollback alarm default."""
DEFAULT_ERROR_RATE_PERCENT = 1.0
DEFAULT_UNHEALTHY_HOSTS_GRACE = Duration.minutes(25)
"""Longer than NeuronFleet's default 20-minute startup: a booting instance fails readiness
until its model is loaded, and that is not worth a page."""
PERIOD = Duration.minutes(1)
EVALUATION_MINUTES = 5
"""Rate and latency alarms look at the last 5 minutes ..."""
DATAPOINTS_TO_ALARM = 3
"""... and fire when 3 of them breach, so one slow minute does not page."""
NO_HEALTHY_HOSTS_MINUTES = 2

SAGEMAKER_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Where SageMaker publishes the variant's CPU, memory and disk utilisation."""

_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

_INVOCATIONS_TARGET = "SageMakerVariantInvocationsPerInstance"
_REQUESTS_TARGET = "ALBRequestCountPerTarget"
_NEURONCORE_TARGET = "Inf3kit/Neuron/NeuronCoreUtilization"


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
        endpoint: NeuronEndpoint | None = None,
        fleet: NeuronFleet | None = None,
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
        self.error_rate_percent = error_rate_percent
        self.key: kms.IKey | None = None
        if alarm_topic is None:
            self.key = key or kms.Key(
                self,
                "Key",
                description=f"inf3kit alarm topic {self.node.path}",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self._allow_cloudwatch(self.key)
            alarm_topic = sns.Topic(
                self,
                "AlarmTopic",
                display_name="inf3kit alarms",
                master_key=self.key,
                enforce_ssl=True,
            )
        self.alarm_topic: sns.ITopic = alarm_topic
        if alarm_email is not None:
            alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

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
                    on_alarm_topic=alarm_topic, on_ok_topic=alarm_topic
                ),
                datapoints_to_alarm=DATAPOINTS_TO_ALARM,
                evaluation_periods=EVALUATION_MINUTES,
            ),
        )
        self.facade.add_large_header(f"inf3kit service {name}")
        if endpoint is not None:
            self._monitor_endpoint(endpoint)
        if fleet is not None:
            self._monitor_fleet(fleet, grace)

        self.dashboard: cloudwatch.Dashboard | None = self.dashboard_factory.created_dashboard()
        self.dashboard_name: str | None = name if self.dashboard is not None else None
        self.alarms: list[cloudwatch.AlarmBase] = [a.alarm for a in self.facade.created_alarms()]

    # --- endpoint -------------------------------------------------------------------------

    def _monitor_endpoint(self, endpoint: NeuronEndpoint) -> None:
        name = endpoint.endpoint_name
        errors = cloudwatch.MathExpression(
            expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            using_metrics={
                "errors": endpoint.metric_invocation_5xx_errors(),
                "invocations": endpoint.metric_invocations(),
            },
            label="5xx rate (%)",
            period=PERIOD,
        )
        latency = {
            stat: cloudwatch.MathExpression(
                expression=f"latency{stat} / 1000",  # ModelLatency is in microseconds
                using_metrics={f"latency{stat}": endpoint.metric_model_latency(statistic=stat)},
                label=f"ModelLatency {stat} (ms)",
                period=PERIOD,
            )
            for stat in ("p50", "p99")
        }
        target = _scaling_targets(endpoint).get(_INVOCATIONS_TARGET)
        self.facade.monitor_custom(
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
                mc.CustomMetricGroup(
                    title="5xx rate (%)",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            alarm_friendly_name="5xxRate",
                            metric=errors,
                            add_alarm={
                                "Critical": _above(
                                    self.error_rate_percent,
                                    f"{name}: more than {self.error_rate_percent:g}% of "
                                    "invocations answered 5xx in 3 of the last 5 minutes",
                                )
                            },
                        )
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Model latency (ms)",
                    metrics=[
                        latency["p50"],
                        mc.CustomMetricWithAlarm(
                            alarm_friendly_name="LatencyP99",
                            metric=latency["p99"],
                            add_alarm={
                                "Critical": _above(
                                    self.latency_p99_threshold.to_milliseconds(),
                                    f"{name}: p99 model latency above "
                                    f"{self.latency_p99_threshold.to_human_string()} in 3 of "
                                    "the last 5 minutes",
                                )
                            },
                        ),
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Invocations per instance vs scaling target",
                    metrics=[endpoint.metric_invocations_per_instance(label="per instance")],
                    horizontal_annotations=_target_annotation(target),
                ),
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

    # --- fleet ----------------------------------------------------------------------------

    def _monitor_fleet(self, fleet: NeuronFleet, grace: Duration) -> None:
        tg_metrics = fleet.target_group.metrics
        requests = tg_metrics.request_count(period=PERIOD, label="Requests")
        target_5xx = fleet.metric_http_5xx()
        errors = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"errors": target_5xx, "requests": requests},
            label="target 5xx rate (%)",
            period=PERIOD,
        )
        response_ms = {
            stat: cloudwatch.MathExpression(
                expression=f"response{stat} * 1000",  # TargetResponseTime is in seconds
                using_metrics={
                    f"response{stat}": tg_metrics.target_response_time(
                        statistic=stat, period=PERIOD
                    )
                },
                label=f"TargetResponseTime {stat} (ms)",
                period=PERIOD,
            )
            for stat in ("p50", "p99")
        }
        targets = _scaling_targets(fleet)
        grace_minutes = int(grace.to_minutes())
        self.facade.monitor_custom(
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
                    horizontal_annotations=_target_annotation(targets.get(_REQUESTS_TARGET)),
                ),
                mc.CustomMetricGroup(
                    title="5xx (per minute)",
                    metrics=[
                        target_5xx.with_(label="target 5xx"),
                        fleet.load_balancer.metrics.http_code_elb(
                            elbv2.HttpCodeElb.ELB_5XX_COUNT,
                            period=PERIOD,
                            label="load balancer 5xx",
                        ),
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Target 5xx rate (%)",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            alarm_friendly_name="5xxRate",
                            metric=errors,
                            add_alarm={
                                "Critical": _above(
                                    self.error_rate_percent,
                                    f"fleet: more than {self.error_rate_percent:g}% of requests "
                                    "answered 5xx by the runtime in 3 of the last 5 minutes",
                                )
                            },
                        )
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Target response time (ms)",
                    metrics=[
                        response_ms["p50"],
                        mc.CustomMetricWithAlarm(
                            alarm_friendly_name="LatencyP99",
                            metric=response_ms["p99"],
                            add_alarm={
                                "Critical": _above(
                                    self.latency_p99_threshold.to_milliseconds(),
                                    "fleet: p99 target response time above "
                                    f"{self.latency_p99_threshold.to_human_string()} in 3 of "
                                    "the last 5 minutes",
                                )
                            },
                        ),
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Hosts",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            alarm_friendly_name="NoHealthyHosts",
                            metric=fleet.metric_healthy_hosts().with_(label="healthy"),
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
                            metric=fleet.metric_unhealthy_hosts().with_(label="unhealthy"),
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
                    horizontal_annotations=_target_annotation(targets.get(_NEURONCORE_TARGET)),
                    graph_widget_axis=cloudwatch.YAxisProps(min=0, max=100),
                ),
            ],
        )
        self.facade.monitor_auto_scaling_group(
            auto_scaling_group=fleet.group,
            alarm_friendly_name="FleetGroup",
            human_readable_name="EC2 fleet Auto Scaling group",
        )

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


def _above(threshold: float, description: str) -> mc.CustomThreshold:
    return mc.CustomThreshold(
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description_override=description,
    )


def _target_annotation(target: float | None) -> list[cloudwatch.HorizontalAnnotation] | None:
    if target is None:
        return None
    return [cloudwatch.HorizontalAnnotation(value=target, label="scaling target")]


def _instance_metric(endpoint: NeuronEndpoint, name: str) -> cloudwatch.Metric:
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


def _scaling_targets(construct: IConstruct) -> dict[str, float]:
    """The target-tracking targets the construct configured, keyed by the metric they track.

    Read from its scaling policies, so the dashboard always draws the value scaling uses.
    """
    stack = Stack.of(construct)
    found: dict[str, float] = {}
    for child in construct.node.find_all():
        config: Any = None
        if isinstance(child, appscaling.CfnScalingPolicy):
            config = stack.resolve(child.target_tracking_scaling_policy_configuration)
        elif isinstance(child, autoscaling.CfnScalingPolicy):
            config = stack.resolve(child.target_tracking_configuration)
        if not isinstance(config, dict) or not isinstance(config.get("targetValue"), int | float):
            continue
        predefined = config.get("predefinedMetricSpecification") or {}
        custom = config.get("customizedMetricSpecification") or {}
        if predefined.get("predefinedMetricType"):
            found[predefined["predefinedMetricType"]] = config["targetValue"]
        elif custom.get("namespace") and custom.get("metricName"):
            found[f"{custom['namespace']}/{custom['metricName']}"] = config["targetValue"]
    return found


def _validate(
    *,
    endpoint: NeuronEndpoint | None,
    fleet: NeuronFleet | None,
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
