"""The root of the deployment spec (`inf3kit.yaml`): one deployable model service."""

from __future__ import annotations

import re

from pydantic import Field, ValidationInfo, field_validator, model_validator

from inf3kit.rules import bundle_uri_problems
from inf3kit.spec.base import (
    ACCOUNT_PATTERN,
    REGION_PATTERN,
    StrictModel,
    catalog_from,
    raise_problems,
)
from inf3kit.spec.delivery import DeliverySpec, check_delivery
from inf3kit.spec.endpoint import EndpointSpec
from inf3kit.spec.fleet import FleetSpec
from inf3kit.spec.llm import (
    Engine,
    LlmSpec,
    WeightsSpec,
    endpoint_startup_problems,
    engine_problems,
    llm_section_problem,
)
from inf3kit.spec.monitoring import MonitoringSpec


class ModelSpec(StrictModel):
    engine: Engine = "runtime"
    """`runtime`: inf3kit's server with a compiled `bundle`; `vllm`: an LLM from `weights`."""
    bundle: str | None = Field(
        None,
        description="a bundle directory or .tar.gz, relative to the spec file, or s3://bucket/key",
    )
    weights: WeightsSpec | None = None

    @field_validator("bundle")
    @classmethod
    def _bundle_location(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("s3://"):
            raise_problems(bundle_uri_problems(value))
        elif "://" in value:
            raise ValueError(
                f"{value!r} uses an unsupported scheme. Fix: give a local path or an s3:// URI"
            )
        return value

    @model_validator(mode="after")
    def _engine_inputs(self) -> ModelSpec:
        raise_problems(engine_problems(self.engine, self.bundle, self.weights))
        return self

    @property
    def is_s3(self) -> bool:
        return self.bundle is not None and self.bundle.startswith("s3://")

    @property
    def is_llm(self) -> bool:
        return self.engine == "vllm"


class ServingSpec(StrictModel):
    max_batch_size: int | None = Field(None, ge=1, le=256)
    """Cap on the dynamic batch: the runtime loads the largest variant compiled at <= this.
    None: the bundle's largest compiled batch size."""
    max_delay_ms: int = Field(2, ge=0, le=1000)
    max_queue_size: int = Field(256, ge=1, le=100_000)
    request_timeout_ms: int = Field(5000, ge=10, le=600_000)
    max_request_bytes: int = Field(6 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    port: int = Field(8080, ge=1024, le=65535)


class NetworkSpec(StrictModel):
    vpc: str = Field("new", pattern=r"^(new|vpc-[0-9a-f]{8,17})$")
    max_azs: int = Field(2, ge=1, le=6)

    @property
    def creates_vpc(self) -> bool:
        return self.vpc == "new"


class EnvironmentSpec(StrictModel):
    account: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    region: str | None = Field(None, pattern=REGION_PATTERN)


class Spec(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
    description: str | None = Field(None, max_length=256)
    catalog: str | None = Field(None, description="a catalog override file, relative to the spec")
    model: ModelSpec
    serving: ServingSpec = ServingSpec()
    llm: LlmSpec | None = Field(None, validate_default=True)
    endpoint: EndpointSpec | None = None
    fleet: FleetSpec | None = None
    network: NetworkSpec = NetworkSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    tags: dict[str, str] = Field(default_factory=dict, max_length=40)
    environments: dict[str, EnvironmentSpec] = Field(default_factory=dict)
    delivery: DeliverySpec | None = None  # after environments and endpoint: its checks read them

    @field_validator("environments")
    @classmethod
    def _stage_names(cls, value: dict[str, EnvironmentSpec]) -> dict[str, EnvironmentSpec]:
        bad = [stage for stage in value if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", stage)]
        if bad:
            raise ValueError(
                f"stage names {', '.join(map(repr, bad))} are not DNS-safe. "
                "Fix: use lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator("llm")
    @classmethod
    def _llm_with_vllm(cls, value: LlmSpec | None, info: ValidationInfo) -> LlmSpec | None:
        model = info.data.get("model")
        problem = llm_section_problem(model.engine if model else None, value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("endpoint")
    @classmethod
    def _scaling_follows_the_engine(
        cls, value: EndpointSpec | None, info: ValidationInfo
    ) -> EndpointSpec | None:
        """An LLM scales on requests in flight, the runtime on invocations: refuse the other's
        target rather than ignore it."""
        model = info.data.get("model")
        if value is None or model is None:
            return value
        scaling = value.scaling
        if model.is_llm and "invocations_per_instance" in scaling.model_fields_set:
            raise ValueError(
                "scaling.invocations_per_instance is not read for an LLM (model.engine vllm): "
                "one long generation weighs as much as many short requests, so LLM endpoints "
                "scale on requests in flight. Fix: use scaling.concurrent_requests_per_model "
                "(default: three quarters of llm.max_num_seqs)"
            )
        if not model.is_llm and scaling.concurrent_requests_per_model is not None:
            raise ValueError(
                "scaling.concurrent_requests_per_model is only read for an LLM (model.engine "
                "vllm). Fix: use scaling.invocations_per_instance for the runtime"
            )
        return value

    @field_validator("endpoint")
    @classmethod
    def _llm_starts_in_time(
        cls, value: EndpointSpec | None, info: ValidationInfo
    ) -> EndpointSpec | None:
        model, llm = info.data.get("model"), info.data.get("llm")
        if value is None or model is None or llm is None or model.weights is None:
            return value
        raise_problems(
            endpoint_startup_problems(
                llm,
                model.weights,
                value.instance_type,
                value.startup_timeout_seconds,
                catalog_from(info),
            )
        )
        return value

    @field_validator("delivery")
    @classmethod
    def _delivery(cls, value: DeliverySpec | None, info: ValidationInfo) -> DeliverySpec | None:
        return value if value is None else check_delivery(value, info.data)

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if k.lower().startswith("aws:") or not 1 <= len(k) <= 128]
        if bad:
            raise ValueError(
                f"tag keys {', '.join(map(repr, bad))} are not allowed. "
                "Fix: use 1-128 characters and do not start with 'aws:'"
            )
        return value

    @model_validator(mode="after")
    def _something_to_deploy(self) -> Spec:
        if self.endpoint is None and self.fleet is None:
            raise ValueError(
                "nothing to deploy: the spec has neither `endpoint` nor `fleet`. "
                "Fix: add an `endpoint:` section (SageMaker) or a `fleet:` section (EC2)"
            )
        return self

    @model_validator(mode="after")
    def _latency_alarms_below_the_deadline(self) -> Spec:
        """At the request deadline the runtime answers 504, so an alarm there never fires.
        (An LLM has no such deadline: vLLM streams until the generation ends.)"""
        if self.model.is_llm:
            return self
        deadline = self.serving.request_timeout_ms
        thresholds = {
            "endpoint.rollout.latency_alarm_ms": self.endpoint.rollout.latency_alarm_ms
            if self.endpoint
            else None,
            "monitoring.latency_p99_ms": self.monitoring.latency_p99_ms,
        }
        late = [f"{k} ({v})" for k, v in thresholds.items() if v is not None and v >= deadline]
        if late:
            raise ValueError(
                f"{' and '.join(late)} must be below serving.request_timeout_ms ({deadline}): "
                "requests that slow are answered 504 at the deadline, so the alarm could never "
                "fire. Fix: lower the threshold, or raise serving.request_timeout_ms"
            )
        return self
