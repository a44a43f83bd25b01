"""What every SageMaker endpoint offers other constructs: its name, invoke grant and metrics.

`NeuronEndpoint` and the read-only endpoint `NeuronEndpoint.from_endpoint_name` returns share it,
so alarms, dashboards and grants work the same on an endpoint made elsewhere.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

VARIANT_NAME = "AllTraffic"
"""The one production variant. Deployment guardrails and autoscaling address the variant by
name, so it never changes across updates."""
METRICS_NAMESPACE = "AWS/SageMaker"
DEFAULT_METRIC_PERIOD = Duration.minutes(1)


class MetricOptions(TypedDict, total=False):
    """How a `metric_*` method aggregates: the statistic, the period and the graph label."""

    statistic: str
    period: Duration
    label: str


MetricOrExpression = cloudwatch.Metric | cloudwatch.MathExpression
"""What a `metric_*` method returns when it may combine several metrics (a fleet's host counts
over every server's target group)."""


class EndpointBase(Construct):
    """A SageMaker endpoint's variant `AllTraffic`, by name: grants and metrics."""

    endpoint_name: str
    endpoint_arn: str
    variant_name: str = VARIANT_NAME
    invocations_per_instance: int | None = None
    """The autoscaling target (invocations per instance per minute), None without autoscaling."""
    concurrent_requests_per_model: int | None = None
    """The autoscaling target when the endpoint scales on requests in flight per instance (an
    LlmEndpoint), else None."""

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `sagemaker:InvokeEndpoint` on this endpoint's ARN, nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def grant_invoke_with_response_stream(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `sagemaker:InvokeEndpointWithResponseStream` on this endpoint's ARN, nothing
        else: what token-streaming clients (`inf3kit invoke --stream`) call."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpointWithResponseStream"],
            resource_arns=[self.endpoint_arn],
        )

    def metric(self, metric_name: str, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """A metric of this endpoint's variant in the AWS/SageMaker namespace (Sum per minute)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name},
            statistic=options.get("statistic", "Sum"),
            period=options.get("period", DEFAULT_METRIC_PERIOD),
            label=options.get("label"),
        )

    def metric_invocations(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests sent to the model (Sum per period)."""
        return self.metric("Invocations", **options)

    def metric_invocations_per_instance(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Requests per instance, the autoscaling signal (Sum per period)."""
        return self.metric("InvocationsPerInstance", **options)

    def metric_invocation_5xx_errors(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the model answered with 5xx (Sum per period)."""
        return self.metric("Invocation5XXErrors", **options)

    def metric_invocation_4xx_errors(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the model answered with 4xx (Sum per period)."""
        return self.metric("Invocation4XXErrors", **options)

    def metric_concurrent_requests_per_model(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Requests in flight per instance, streams until their last token: an LLM endpoint's
        scaling signal (Average per period; SageMaker emits it every 10 seconds)."""
        options.setdefault("statistic", "Average")
        return self.metric("ConcurrentRequestsPerModel", **options)

    def metric_model_latency(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Time the container took to answer, in microseconds (p99 per period by default)."""
        options.setdefault("statistic", "p99")
        return self.metric("ModelLatency", **options)


class ImportedEndpoint(EndpointBase):
    """An endpoint made elsewhere, known by name: read-only (grants and metrics, no changes)."""

    def __init__(self, scope: Construct, id: str, *, endpoint_name: str) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint_name
        # SageMaker lower-cases the name in the endpoint's ARN.
        name = endpoint_name if Token.is_unresolved(endpoint_name) else endpoint_name.lower()
        self.endpoint_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=name
        )
