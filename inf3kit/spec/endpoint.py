"""The `endpoint:` section: a SageMaker real-time endpoint on Neuron instances."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from inf3kit.catalog.compatibility import RUNTIME_IMAGE
from inf3kit.rules import (
    RolloutStrategy,
    capacity_problems,
    default_rollout_strategy,
    rollout_capacity_problems,
    rollout_share_problems,
    scale_down_count_problems,
    scaling_schedule_problems,
    time_zone_problems,
)
from inf3kit.spec.base import (
    StrictModel,
    catalog_from,
    check_neuron_type,
    compatibility_from,
    raise_problems,
)
from inf3kit.spec.llm import llm_from, llm_type_problems


class EndpointInstances(StrictModel):
    min: int = Field(1, ge=1, le=100)
    max: int = Field(2, ge=1, le=100)
    initial: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> EndpointInstances:
        raise_problems(
            capacity_problems(self.min, self.max, self.initial, names=("min", "max", "initial"))
        )
        return self


class ScaleDownSchedule(StrictModel):
    """Cron windows (UTC) that pin capacity low while nobody calls the endpoint."""

    scale_down_cron: str = Field(description="e.g. 'cron(0 20 ? * MON-FRI *)'")
    scale_up_cron: str = Field(description="e.g. 'cron(0 6 ? * MON-FRI *)'")
    min_during_scale_down: int = Field(1, ge=1, le=100)
    timezone: str = "UTC"

    @field_validator("scale_down_cron", "scale_up_cron")
    @classmethod
    def _expression(cls, value: str) -> str:
        raise_problems(scaling_schedule_problems(value))
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        raise_problems(time_zone_problems(value))
        return value


class EndpointScaling(StrictModel):
    invocations_per_instance: int = Field(500, ge=1, le=1_000_000)
    """The runtime's target (invocations per instance per minute); not read for an LLM."""
    concurrent_requests_per_model: int | None = Field(None, ge=1, le=10_000)
    """An LLM endpoint's target: requests in flight per instance (SageMaker's
    ConcurrentRequestsPerModel). None: three quarters of `llm.max_num_seqs`."""
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600)
    schedule: ScaleDownSchedule | None = None


class Rollout(StrictModel):
    """SageMaker deployment guardrails; the ranges are SageMaker's own limits."""

    strategy: RolloutStrategy | None = None
    """None: canary with two or more instances, else all at once (see `rollout_strategy`)."""
    canary_percent: int = 10
    linear_step_percent: int = 20
    rolling_batch_percent: int = 25
    bake_minutes: int = Field(10, ge=0, le=60)
    latency_alarm_ms: int | None = Field(None, ge=1, le=600_000)
    """p99 ModelLatency that rolls a deployment back. None: the construct's 1 s. Keep it below
    `serving.request_timeout_ms`: at that deadline the runtime answers 504 instead."""


class DataCapture(StrictModel):
    sampling_percent: int = Field(10, ge=1, le=100)


class EndpointSpec(StrictModel):
    instance_type: str
    image: str | None = Field(
        None,
        description="an ECR image URI; default: the inf3kit runtime image for the family",
    )
    instances: EndpointInstances = EndpointInstances()
    scaling: EndpointScaling = EndpointScaling()
    rollout: Rollout = Rollout()
    startup_timeout_seconds: int | None = Field(None, ge=60, le=3600)
    """None: sized from the bundle for the runtime, from the model for an LLM (docs/llm.md)."""
    download_timeout_seconds: int | None = Field(None, ge=60, le=3600)
    """None: sized from the bundle for the runtime, from the model for an LLM."""
    volume_size_gb: int | None = Field(None, ge=1, le=512)
    data_capture: DataCapture | None = None

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_neuron_type(cls, value: str, info: ValidationInfo) -> str:
        check_neuron_type(value, info, "sagemaker")
        llm = llm_from(info)
        if llm is not None:
            raise_problems(
                llm_type_problems(llm, value, catalog_from(info), compatibility_from(info))
            )
        return value

    @property
    def rollout_strategy(self) -> RolloutStrategy:
        return self.rollout.strategy or default_rollout_strategy(self.instances.min)

    @model_validator(mode="after")
    def _fits_the_family(self, info: ValidationInfo) -> EndpointSpec:
        """The image and the rollout must suit the instance family, as synthesis checks."""
        compat = compatibility_from(info)
        problems = []
        image = self.image or RUNTIME_IMAGE
        if "/" not in image:  # a matrix name; an ECR URI is the user's to vouch for
            try:
                compat.check_image(image, self.instance_type)
            except ValueError as exc:
                problems.append(f"image: {exc}")
        problems += rollout_share_problems(self.rollout_strategy, self.rollout)
        schedule = self.scaling.schedule
        if schedule is not None:
            problems += [
                f"scaling.schedule.min_during_scale_down: {p}"
                for p in scale_down_count_problems(
                    schedule.min_during_scale_down, self.instances.max, max_name="instances.max"
                )
            ]
        problems += rollout_capacity_problems(
            self.rollout_strategy, self.instances.min, min_name="instances.min"
        )
        refusal = compat.guardrails_problem(self.instance_type, self.rollout_strategy)
        problems += [f"rollout: {refusal}"] if refusal else []
        raise_problems(problems)
        return self
