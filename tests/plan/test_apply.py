"""`plan --apply`: the chosen type, capacity and targets land in the spec, comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.catalog import Catalog
from inf3kit.plan.apply import apply_choices
from inf3kit.plan.planner import Load, Row, build_plan
from inf3kit.spec import SpecError, parse_spec
from tests.plan.conftest import make_profile

REPO = Path(__file__).resolve().parents[2]


def rows(catalog: Catalog) -> dict[str, Row]:
    plan = build_plan(
        catalog, [make_profile()], Load(rps=1000, p99_ms=10), platforms=["ec2", "sagemaker"]
    )
    return {r.instance_type: r for r in plan.rows}


def demo_copy(tmp_path: Path) -> Path:
    spec = tmp_path / "demo.yaml"
    spec.write_text((REPO / "examples" / "demo.yaml").read_text())
    return spec


def test_apply_writes_type_capacity_and_targets_keeping_comments(
    catalog: Catalog, tmp_path: Path
) -> None:
    """3 instances planned (see test_planner): min 3, max 3 x 2 = 6, target 38,400/min."""
    spec = demo_copy(tmp_path)
    before = spec.read_text()
    by_type = rows(catalog)
    changes = apply_choices(
        spec, {"sagemaker": by_type["ml.inf2.xlarge"], "ec2": by_type["inf2.xlarge"]}
    )
    after = spec.read_text()
    assert "endpoint.instance_type: ml.inf3.xlarge -> ml.inf2.xlarge" in changes
    assert (
        "fleet.instance_types: ['inf3.xlarge', 'inf2.xlarge'] -> ['inf2.xlarge', 'inf3.xlarge']"
        in changes
    )
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    assert "  instances: {min: 3, max: 6}\n" in after  # flow style kept
    assert "  scaling: {invocations_per_instance: 38400}\n" in after
    assert "  instance_types: [inf2.xlarge, inf3.xlarge]\n" in after
    assert "  capacity: {min: 3, max: 6}\n" in after
    assert "requests_per_instance: 38400" in after
    loaded = parse_spec(after, base_dir=tmp_path)
    assert loaded.spec.endpoint is not None and loaded.spec.fleet is not None
    assert loaded.spec.endpoint.instance_type == "ml.inf2.xlarge"
    assert loaded.spec.fleet.scaling.neuroncore_utilization_percent == 70  # untouched
    top = [line.split(":")[0] for line in after.splitlines() if line[:1].isalpha()]
    assert top == [line.split(":")[0] for line in before.splitlines() if line[:1].isalpha()]


def test_apply_twice_changes_nothing_the_second_time(catalog: Catalog, tmp_path: Path) -> None:
    spec = demo_copy(tmp_path)
    choice = {"sagemaker": rows(catalog)["ml.inf2.xlarge"]}
    assert apply_choices(spec, choice)
    text = spec.read_text()
    assert apply_choices(spec, choice) == []
    assert spec.read_text() == text


def test_fails_when_the_applied_spec_would_be_invalid(catalog: Catalog, tmp_path: Path) -> None:
    """An endpoint takes at most 100 instances: 3 x 50 = 150 is refused, the file untouched."""
    spec = demo_copy(tmp_path)
    before = spec.read_text()
    with pytest.raises(SpecError) as err:
        apply_choices(spec, {"sagemaker": rows(catalog)["ml.inf2.xlarge"]}, peak=50)
    assert "endpoint.instances.max" in str(err.value.problems[0])
    assert spec.read_text() == before
