"""The `fleet:` section: an EC2 Auto Scaling fleet of Neuron instances behind a load balancer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from inf3kit.rules import warm_pool_problems
from inf3kit.spec.base import StrictModel, check_neuron_type, compatibility_from


class FleetCapacity(StrictModel):
    min: int = Field(1, ge=0, le=1000)
    max: int = Field(2, ge=1, le=1000)
    desired: int | None = Field(None, ge=0, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> FleetCapacity:
        if self.min > self.max:
            raise ValueError(
                f"min ({self.min}) is greater than max ({self.max}). "
                f"Fix: set min <= max, e.g. min: {self.max} or max: {self.min}"
            )
        if self.desired is not None and not self.min <= self.desired <= self.max:
            raise ValueError(
                f"desired ({self.desired}) is outside min..max ({self.min}..{self.max}). "
                "Fix: choose a desired count within the range, or drop it"
            )
        return self


class FleetScaling(StrictModel):
    requests_per_instance: int | None = Field(400, ge=1, le=1_000_000)
    neuroncore_utilization_percent: int | None = Field(70, ge=10, le=95)


class AmiSource(StrictModel):
    source: Literal["dlami", "pipeline", "id"] = "dlami"
    id: str | None = Field(None, pattern=r"^ami-[0-9a-f]{8,17}$")
    neuron_sdk: str | None = Field(None, pattern=r"^\d+\.\d+\.\d+$")
    """pipeline only: the Neuron release to pin; None uses the pipeline's default."""
    schedule: str | None = Field(None, pattern=r"^(cron\(.+\)|manual)$")
    """pipeline only: an Image Builder cron expression or `manual`; None is weekly."""

    @model_validator(mode="after")
    def _id_matches_source(self) -> AmiSource:
        if self.source == "id" and self.id is None:
            raise ValueError(
                "source 'id' needs an AMI id. Fix: add `id: ami-...`, or use source 'dlami'"
            )
        if self.source != "id" and self.id is not None:
            raise ValueError(
                f"`id` is only read with source 'id', but source is {self.source!r}. "
                "Fix: set `source: id`, or remove `id`"
            )
        pipeline_only = [f for f in ("neuron_sdk", "schedule") if getattr(self, f) is not None]
        if self.source != "pipeline" and pipeline_only:
            names = " and ".join(f"`{f}`" for f in pipeline_only)
            raise ValueError(
                f"{names} {'is' if len(pipeline_only) == 1 else 'are'} only read with source "
                f"'pipeline', but source is {self.source!r}. Fix: set `source: pipeline`, or "
                f"remove {names}"
            )
        return self


class WarmPool(StrictModel):
    min_size: int = Field(1, ge=0, le=1000)
    state: Literal["stopped", "hibernated", "running"] = "stopped"


class LoadBalancer(StrictModel):
    public: bool = False
    certificate_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:")

    @model_validator(mode="after")
    def _public_needs_tls(self) -> LoadBalancer:
        if self.public and self.certificate_arn is None:
            raise ValueError(
                "public: true without certificate_arn would serve plain HTTP to the internet. "
                "Fix: add `certificate_arn: arn:aws:acm:...`, or set `public: false`"
            )
        return self


def _ec2_neuron_type(value: str, info: ValidationInfo) -> str:
    check_neuron_type(value, info, "ec2")
    refusal = compatibility_from(info).fleet_problem(value)
    if refusal:
        raise ValueError(refusal)
    return value


Ec2NeuronType = Annotated[str, AfterValidator(_ec2_neuron_type)]


class FleetSpec(StrictModel):
    instance_types: list[Ec2NeuronType] = Field(min_length=1, max_length=20)
    capacity: FleetCapacity = FleetCapacity()
    scaling: FleetScaling = FleetScaling()
    ami: AmiSource = AmiSource()
    spot_percent: int = Field(0, ge=0, le=100)
    warm_pool: WarmPool | None = None
    load_balancer: LoadBalancer = LoadBalancer()
    drain_seconds: int = Field(30, ge=0, le=3600)
    startup_minutes: int = Field(20, ge=1, le=60)

    @field_validator("instance_types")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        duplicates = sorted({t for t in value if value.count(t) > 1})
        if duplicates:
            raise ValueError(
                f"{', '.join(map(repr, duplicates))} listed more than once. "
                "Fix: list each type once, in order of preference"
            )
        return value

    @model_validator(mode="after")
    def _warm_pool_allowed(self) -> FleetSpec:
        if self.warm_pool is None:
            return self
        problems = warm_pool_problems(self.instance_types, self.spot_percent, self.warm_pool.state)
        if problems:
            raise ValueError("; ".join(problems))
        return self
