"""The `fleet:` section: an EC2 Auto Scaling fleet of Neuron instances behind a load balancer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from inf3kit.rules import (
    IMAGE_BUILD_SCHEDULE,
    capacity_problems,
    cron_problems,
    duplicate_problems,
    public_listener_problems,
    warm_pool_problems,
)
from inf3kit.spec.base import (
    StrictModel,
    catalog_from,
    check_neuron_type,
    compatibility_from,
    raise_problems,
)
from inf3kit.spec.llm import fleet_problems, llm_from, llm_type_problems


class FleetCapacity(StrictModel):
    min: int = Field(1, ge=0, le=1000)
    max: int = Field(2, ge=1, le=1000)
    desired: int | None = Field(None, ge=0, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> FleetCapacity:
        raise_problems(capacity_problems(self.min, self.max, self.desired))
        return self


class FleetScaling(StrictModel):
    requests_per_instance: int | None = Field(400, ge=1, le=1_000_000)
    neuroncore_utilization_percent: int | None = Field(70, ge=10, le=95)


class AmiSource(StrictModel):
    source: Literal["dlami", "pipeline", "id"] = "dlami"
    id: str | None = Field(None, pattern=r"^ami-[0-9a-f]{8,17}$")
    neuron_sdk: str | None = Field(None, pattern=r"^\d+\.\d+\.\d+$")
    """The Neuron release boot installs (and the pipeline bakes); None: the matrix's release
    for the instance types' families."""
    schedule: str | None = None
    """pipeline only: an Image Builder cron expression or `manual`; None is weekly."""

    @field_validator("schedule")
    @classmethod
    def _cron_or_manual(cls, value: str | None) -> str | None:
        if value is not None and value != "manual":
            raise_problems(cron_problems(value, IMAGE_BUILD_SCHEDULE))
        return value

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
        if self.source != "pipeline" and self.schedule is not None:
            raise ValueError(
                f"`schedule` is only read with source 'pipeline', but source is "
                f"{self.source!r}. Fix: set `source: pipeline`, or remove `schedule`"
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
        raise_problems(public_listener_problems(self.public, self.certificate_arn is not None))
        return self


def _ec2_neuron_type(value: str, info: ValidationInfo) -> str:
    check_neuron_type(value, info, "ec2")
    refusal = compatibility_from(info).fleet_problem(value)
    if refusal:
        raise ValueError(refusal)
    llm = llm_from(info)
    if llm is not None:
        raise_problems(llm_type_problems(llm, value, catalog_from(info), compatibility_from(info)))
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
    startup_minutes: int | None = Field(None, ge=1, le=60)
    """None: estimated from the install, the bundle's size and its load (NeuronFleet), or an
    LLM fleet's own default."""

    @field_validator("instance_types")
    @classmethod
    def _each_once(cls, value: list[str], info: ValidationInfo) -> list[str]:
        raise_problems(duplicate_problems(value))
        llm = llm_from(info)
        if llm is not None:
            raise_problems(fleet_problems(llm, value, catalog_from(info), compatibility_from(info)))
        return value

    @model_validator(mode="after")
    def _one_neuron_release(self, info: ValidationInfo) -> FleetSpec:
        """The runtime's torch-neuronx release; an LLM fleet's engine image brings its own."""
        if llm_from(info) is not None:
            return self
        check = compatibility_from(info).check_release(
            self.instance_types, self.ami.neuron_sdk, on_dlami=self.ami.source != "id"
        )
        raise_problems(check.problems)
        return self

    @model_validator(mode="after")
    def _what_an_llm_fleet_offers(self, info: ValidationInfo) -> FleetSpec:
        """LlmFleet has no Spot share or warm pool, and a baked image carries no vLLM."""
        if llm_from(info) is None:
            return self
        found = []
        if self.warm_pool is not None:
            found.append(
                "warm_pool (pre-compiled artefacts, `model.weights.compiled`, shorten scale-out)"
            )
        if self.spot_percent:
            found.append("spot_percent (use on-demand capacity)")
        if self.ami.source == "pipeline":
            found.append("ami.source pipeline (its image has no vLLM; use dlami or an id)")
        if found:
            raise ValueError(
                "an LLM fleet (model.engine vllm) does not support "
                + "; ".join(found)
                + ". Fix: remove them"
            )
        return self

    @model_validator(mode="after")
    def _warm_pool_allowed(self) -> FleetSpec:
        if self.warm_pool is None:
            return self
        raise_problems(
            warm_pool_problems(self.instance_types, self.spot_percent, self.warm_pool.state)
        )
        return self
