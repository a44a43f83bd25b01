"""Write a plan's choice into the spec, keeping its comments, key order and flow style.

ruamel.yaml round-trips the file; only the planned keys change. The edited text is validated
as a spec before it replaces the file, so `--apply` never leaves an invalid spec behind.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from inf3kit.plan.planner import Row
from inf3kit.spec import parse_spec
from inf3kit.spec.endpoint import EndpointScaling
from inf3kit.spec.fleet import FleetScaling


def _yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise ValueError(
            "--apply needs ruamel.yaml to keep the spec's comments. "
            "Fix: pip install 'inf3kit[plan]'"
        ) from None

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    return yaml


def _section(parent: Any, key: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if parent.get(key) is None:
        parent[key] = CommentedMap()
    return parent[key]


def _set(mapping: Any, key: str, value: object, path: str, changes: list[str]) -> None:
    old = mapping.get(key)
    if old != value:
        mapping[key] = value
        changes.append(f"{path}.{key}: {old} -> {value}")


def _capped(model: type[BaseModel], field: str, value: int, changes: list[str]) -> int:
    """The spec's own upper bound for a scaling target: a tiny model can plan beyond it."""
    limit = next((m.le for m in model.model_fields[field].metadata if hasattr(m, "le")), None)
    if limit is not None and value > limit:
        changes.append(f"{field} {value} capped at the spec's maximum {limit}")
        return int(limit)
    return value


def apply_choices(spec_path: Path, choices: dict[str, Row], *, peak: float = 2.0) -> list[str]:
    """Set type, capacity and scaling target from the chosen row per platform; return changes.

    endpoint: `instance_type`, `instances.min` = planned instances, `instances.max` =
    ceil(min x peak), `scaling.invocations_per_instance`. fleet: the chosen type first in
    `instance_types` (the others stay as fallbacks), `capacity.min/max` likewise,
    `scaling.requests_per_instance`. `serving.max_batch_size` takes the planned batch size.
    """
    yaml = _yaml()
    text = spec_path.read_text()
    data = yaml.load(text)
    changes: list[str] = []
    endpoint, fleet = choices.get("sagemaker"), choices.get("ec2")
    if endpoint is not None and data.get("endpoint") is not None:
        section = data["endpoint"]
        _set(section, "instance_type", endpoint.instance_type, "endpoint", changes)
        instances = _section(section, "instances")
        _set(instances, "min", endpoint.instances, "endpoint.instances", changes)
        _set(instances, "max", math.ceil(endpoint.instances * peak), "endpoint.instances", changes)
        if "initial" in instances:
            _set(instances, "initial", endpoint.instances, "endpoint.instances", changes)
        scaling = _section(section, "scaling")
        target = _capped(
            EndpointScaling, "invocations_per_instance", endpoint.scaling_target_per_minute, changes
        )
        _set(scaling, "invocations_per_instance", target, "endpoint.scaling", changes)
    if fleet is not None and data.get("fleet") is not None:
        section = data["fleet"]
        types = section["instance_types"]
        if not types or types[0] != fleet.instance_type:
            old = list(types)
            rest = [t for t in old if t != fleet.instance_type]
            types.clear()
            types.extend([fleet.instance_type, *rest])
            changes.append(f"fleet.instance_types: {old} -> {list(types)}")
        capacity = _section(section, "capacity")
        _set(capacity, "min", fleet.instances, "fleet.capacity", changes)
        _set(capacity, "max", math.ceil(fleet.instances * peak), "fleet.capacity", changes)
        if "desired" in capacity:
            _set(capacity, "desired", fleet.instances, "fleet.capacity", changes)
        scaling = _section(section, "scaling")
        target = _capped(
            FleetScaling, "requests_per_instance", fleet.scaling_target_per_minute, changes
        )
        _set(scaling, "requests_per_instance", target, "fleet.scaling", changes)
    batches = {r.batch_size for r in (endpoint, fleet) if r is not None}
    if len(batches) == 1:
        _set(_section(data, "serving"), "max_batch_size", batches.pop(), "serving", changes)
    out = io.StringIO()
    yaml.dump(data, out)
    new_text = out.getvalue()
    parse_spec(new_text, source=str(spec_path), base_dir=spec_path.parent)  # raises SpecError
    if new_text != text:
        spec_path.write_text(new_text)
    return changes
