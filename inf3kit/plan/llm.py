"""Cost per million output tokens of an LLM service, from a throughput figure with its source.

A figure is measured (a throughput file from a run on the hardware, `--profile`) or published
(a Neuron benchmark, `data/llm_throughput.yaml`), and says which: a published figure is used
only for the exact model shape and instance type it was measured on, with the configuration it
was measured in, and never scaled. No figure, or no price: no estimate, and the row says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.table import Table
from rich.text import Text

from inf3kit.catalog import SAGEMAKER_PREFIX
from inf3kit.llm.fit import engine_cores
from inf3kit.llm.settings import ModelArchitecture
from inf3kit.plan.profile import ProfileError
from inf3kit.spec import LoadedSpec

SHAPE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
)
"""What must match for a published figure to be about the spec's model."""
LLM_PROFILE_KIND = "llm-throughput"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Strict):
    """Output tokens per second of one instance in one configuration, and where it comes from."""

    model: str
    instance_type: str
    output_tokens_per_second: float = Field(gt=0)
    source: str
    engine: str | None = None
    tensor_parallel: int | None = None
    batch_size: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    weights: str | None = None
    shape: str | None = None
    """A `shapes:` key of the published data (the measured file: the spec's model is implied)."""

    def configuration(self) -> str:
        parts = [
            self.engine,
            f"TP {self.tensor_parallel}" if self.tensor_parallel else None,
            f"batch {self.batch_size}" if self.batch_size else None,
            f"{self.input_tokens} in / {self.output_tokens} out tokens"
            if self.input_tokens and self.output_tokens
            else None,
            self.weights,
        ]
        return ", ".join(p for p in parts if p)


class _Published(_Strict):
    shapes: dict[str, dict[str, int]]
    figures: list[Figure]


class _Measured(Figure):
    kind: Literal["llm-throughput"]


@cache
def published() -> _Published:
    text = resources.files("inf3kit.plan").joinpath("data", "llm_throughput.yaml").read_text()
    return _Published.model_validate(yaml.safe_load(text))


def read_llm_profile(path: Path) -> Figure:
    """A measured throughput file: JSON with kind `llm-throughput`, the instance type, output
    tokens per second of the whole instance, and how it was measured (`source`)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        return _Measured.model_validate(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise ProfileError(
            f"{path} is not an LLM throughput file ({exc}). Fix: write JSON with kind "
            f'"{LLM_PROFILE_KIND}", model, instance_type, output_tokens_per_second and source '
            "(see docs/llm.md)"
        ) from None


@dataclass(frozen=True)
class LlmRow:
    """One instance type of the spec: its degree, its figure, and the cost it implies."""

    instance_type: str
    tensor_parallel: int
    replicas_per_instance: int
    figure: Figure | None
    basis: Literal["measured", "published", "none"]
    usd_per_hour: float | None
    price_source: str
    provisional: bool
    why_not: str | None
    """Why there is no cost: no figure, or no price."""

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        if self.figure is None or self.usd_per_hour is None:
            return None
        return self.usd_per_hour / (self.figure.output_tokens_per_second * 3600) * 1e6


def _same_shape(arch: ModelArchitecture, shape: dict[str, int]) -> bool:
    return all(getattr(arch, k) == shape.get(k) for k in SHAPE_KEYS)


def _hardware(instance_type: str) -> str:
    """SageMaker's `ml.` sizes are the same machines as the EC2 ones."""
    return instance_type.removeprefix(SAGEMAKER_PREFIX)


def figure_for(
    arch: ModelArchitecture, instance_type: str, measured: Sequence[Figure] = ()
) -> tuple[Figure, Literal["measured", "published"]] | None:
    """A measured figure for the type, else a published one for this shape and type."""
    for fig in measured:
        if _hardware(fig.instance_type) == _hardware(instance_type):
            return fig, "measured"
    data = published()
    for fig in data.figures:
        shape = data.shapes.get(fig.shape or "", {})
        if fig.instance_type == _hardware(instance_type) and _same_shape(arch, shape):
            return fig, "published"
    return None


def llm_plan(
    loaded: LoadedSpec, profiles: Sequence[Path] = (), region: str = "us-east-1"
) -> list[LlmRow]:
    """One row per instance type of the spec's endpoint and fleet."""
    spec = loaded.spec
    measured = [read_llm_profile(p) for p in profiles]
    types = ([spec.endpoint.instance_type] if spec.endpoint else []) + (
        list(spec.fleet.instance_types) if spec.fleet else []
    )
    # one degree per place, as the stacks resolve it: the endpoint's type, all fleet types
    services = {t: loaded.llm_service(t) for t in types[:1] if spec.endpoint}
    if spec.fleet:
        fleet_service = loaded.llm_service(*spec.fleet.instance_types)
        services |= {t: fleet_service for t in spec.fleet.instance_types}
    rows = []
    for name in types:
        arch, _, settings = services[name]
        cores = engine_cores(loaded.catalog.get(name)).count
        found = figure_for(arch, name, measured)
        price = loaded.catalog.price(name, region)
        why = None
        if found is None:
            why = (
                f"no measured or published throughput for this model on {name}. Fix: measure "
                "one on the hardware and pass it with --profile (docs/llm.md)"
            )
        elif price.usd_per_hour is None:
            why = f"no price for {name}: {price.source}"
        rows.append(
            LlmRow(
                instance_type=name,
                tensor_parallel=settings.tensor_parallel,
                replicas_per_instance=cores // settings.tensor_parallel,
                figure=found[0] if found else None,
                basis=found[1] if found else "none",
                usd_per_hour=price.usd_per_hour,
                price_source=price.source,
                provisional=price.provisional,
                why_not=why,
            )
        )
    return rows


def llm_rows_json(rows: Sequence[LlmRow]) -> list[dict[str, Any]]:
    return [
        {
            "instance_type": r.instance_type,
            "tensor_parallel": r.tensor_parallel,
            "replicas_per_instance": r.replicas_per_instance,
            "basis": r.basis,
            "output_tokens_per_second_per_instance": None
            if r.figure is None
            else r.figure.output_tokens_per_second,
            "figure_model": None if r.figure is None else r.figure.model,
            "figure_configuration": None if r.figure is None else r.figure.configuration(),
            "figure_source": None if r.figure is None else r.figure.source,
            "usd_per_hour": r.usd_per_hour,
            "price_source": r.price_source,
            "price_provisional": r.provisional,
            "usd_per_million_output_tokens": None
            if r.usd_per_million_output_tokens is None
            else round(r.usd_per_million_output_tokens, 4),
            "no_estimate_because": r.why_not,
        }
        for r in rows
    ]


def llm_table(rows: Sequence[LlmRow]) -> Table:
    table = Table(title="LLM cost per million output tokens")
    for name in ("type", "TP", "groups", "tokens/s/inst", "basis", "$/h", "$/M out"):
        table.add_column(name, justify="left" if name in ("type", "basis") else "right")
    for r in rows:
        cost = r.usd_per_million_output_tokens
        table.add_row(
            r.instance_type,
            str(r.tensor_parallel),
            str(r.replicas_per_instance),
            "-" if r.figure is None else f"{r.figure.output_tokens_per_second:.4g}",
            Text(r.basis, style="yellow" if r.basis != "measured" else ""),
            "-" if r.usd_per_hour is None else f"{r.usd_per_hour:.4g}",
            "-" if cost is None else f"{cost:.4g}",
        )
    return table


def llm_source_lines(rows: Sequence[LlmRow]) -> list[str]:
    """Where each figure comes from and in which configuration; why a row has no cost."""
    lines = []
    for r in rows:
        if r.figure is not None:
            lines.append(
                f"{r.instance_type}: {r.basis} {r.figure.output_tokens_per_second:.4g} output "
                f"tokens/s per instance for {r.figure.model} ({r.figure.configuration()}); "
                f"the spec runs TP {r.tensor_parallel} x {r.replicas_per_instance} per instance. "
                f"Source: {r.figure.source}"
            )
        if r.why_not:
            lines.append(f"{r.instance_type}: no estimate, {r.why_not}")
        elif r.provisional:
            lines.append(f"{r.instance_type}: provisional price ({r.price_source})")
    return lines
