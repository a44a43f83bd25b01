"""The plan arithmetic, checked against figures worked out by hand (see each docstring)."""

from __future__ import annotations

import pytest

from inf3kit.catalog import Catalog
from inf3kit.plan.planner import Excluded, Load, Plan, Row, build_plan
from tests.plan.conftest import make_profile

BOTH = ["ec2", "sagemaker"]


def plan_of(catalog: Catalog, load: Load, **kwargs: object) -> Plan:
    return build_plan(catalog, [make_profile()], load, platforms=BOTH, **kwargs)  # type: ignore[arg-type]


def row(plan: Plan, name: str) -> Row:
    return next(r for r in plan.rows if r.instance_type == name)


def test_replicas_instances_monthly_cost_and_cost_per_million(catalog: Catalog) -> None:
    """inf2.xlarge at $0.5/h, 2 NeuronCores, 1 core per replica -> 2 replicas.

    p99 <= 10 ms: the best point within it and not past the knee (concurrency 4) is 400/s per
    replica -> 800/s per instance; 20% headroom -> target 640/s (38,400 per minute).
    1000 req/s -> ceil(1000 / 640) = 2, N+1 -> 3 instances; 3 x 0.5 x 730 = $1095 a month;
    3 x 0.5 / (1000 x 3600) x 1e6 = $0.41667 per million.
    """
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=10)), "inf2.xlarge")
    assert (r.replicas_per_instance, r.replica_rps, r.target_rps_per_instance) == (2, 400, 640)
    assert (r.instances_for_load, r.instances) == (2, 3)
    assert r.monthly_on_demand == pytest.approx(1095.0)
    assert r.cost_per_million == pytest.approx(0.416667, abs=1e-6)
    assert r.scaling_target_per_minute == 38_400
    assert r.knee_rps_per_instance == 800
    assert r.latency_ok and r.p99_ms == 9


def test_sagemaker_rows_use_the_ml_price(catalog: Catalog) -> None:
    """Same capacity as inf2.xlarge (3 instances) at $0.6/h: 3 x 0.6 x 730 = $1314."""
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=10)), "ml.inf2.xlarge")
    assert r.instances == 3 and r.monthly_on_demand == pytest.approx(1314.0)


def test_a_tighter_latency_target_picks_a_lower_concurrency(catalog: Catalog) -> None:
    """p99 <= 7 ms: concurrency 2 (200/s, p99 6) -> 400/s per instance, target 320/s;
    ceil(1000 / 320) = 4, N+1 -> 5 instances."""
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=7)), "inf2.xlarge")
    assert (r.concurrency, r.target_rps_per_instance, r.instances) == (2, 320, 5)


def test_an_unreachable_latency_target_is_marked_and_sorted_last(catalog: Catalog) -> None:
    plan = plan_of(catalog, Load(rps=1000, p99_ms=1))
    r = row(plan, "inf2.xlarge")
    assert not r.latency_ok and r.concurrency == 4  # planned at the knee
    priced = [x for x in plan.rows if x.cost_per_million is not None]
    assert all(x.latency_ok for x in priced[: priced.index(r)] if x.p99_ms <= 1)


def test_rows_are_sorted_by_cost_per_million_with_missing_prices_last(catalog: Catalog) -> None:
    plan = plan_of(catalog, Load(rps=1000, p99_ms=100))
    costs = [r.cost_per_million for r in plan.rows]
    priced = [c for c in costs if c is not None]
    assert priced == sorted(priced)
    assert costs[: len(priced)] == priced  # every missing price comes after every price
    missing = row(plan, "ml.inf2.8xlarge")
    assert missing.monthly_on_demand is None and "price missing" in missing.labels


def test_inf3_is_scaled_by_the_provisional_4x_and_labelled(catalog: Catalog) -> None:
    """Inf3 chip = 4 x Inf2 chip (provisional), same cores per chip: 1600/s per replica,
    p99 9 / 4 = 2.25 ms; 3200/s per instance, target 2560/s -> 1 + 1 = 2 instances."""
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=10)), "inf3.xlarge")
    assert (r.replica_rps, r.p99_ms, r.instances) == (1600, 2.25, 2)
    assert r.basis.kind == "provisional" and r.basis.factor == 4
    assert r.provisional
    assert {"provisional hardware", "provisional ratio", "provisional price"} <= set(r.labels)
    assert any("up to 4x" in s for s in r.basis.sources)


def test_other_families_scale_per_neuroncore_and_gpus_per_chip(catalog: Catalog) -> None:
    """Inf1 chip = 0.25 Inf2 chip over 4 cores -> 0.125 per core: 50/s and p99 72 ms per
    replica. A G5 GPU = 0.95 Inf2 chip = 1.9 Inf2 cores, one replica per GPU."""
    plan = plan_of(catalog, Load(rps=1000, p99_ms=100))
    inf1 = row(plan, "inf1.xlarge")
    assert (inf1.replicas_per_instance, inf1.replica_rps, inf1.p99_ms) == (4, 50, 72)
    g5 = row(plan, "g5.xlarge")
    assert g5.replicas_per_instance == 1 and g5.replica_rps == pytest.approx(760)
    assert g5.basis.kind == "scaled" and "GPU baseline" in g5.labels
    trn1 = row(plan, "trn1.2xlarge")
    assert trn1.basis.factor == 1 and not trn1.provisional


def test_a_profile_of_the_family_itself_is_measured(catalog: Catalog) -> None:
    plan = build_plan(catalog, [make_profile("inf2")], Load(rps=1000, p99_ms=10), platforms=["ec2"])
    r = row(plan, "inf2.xlarge")
    assert r.basis.kind == "measured" and not r.basis.cpu_measured
    assert "CPU-measured" not in r.labels
    assert row(plan, "trn1.2xlarge").basis.kind == "scaled"


def test_cpu_profiles_are_labelled_cpu_measured(catalog: Catalog) -> None:
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=10)), "inf2.xlarge")
    assert r.basis.cpu_measured and "CPU-measured" in r.labels
    assert r.basis.label() == "scaled from cpu x1 (CPU-measured)"


def test_fleet_spot_share_prices_the_spot_part_at_the_spot_price(catalog: Catalog) -> None:
    """inf2.8xlarge, 3 instances at 50% Spot: floor(1.5) = 1 on Spot (Auto Scaling rounds for
    On-Demand): (2 x 2.0 + 1 x 0.8) x 730 = $3504, against 3 x 2.0 x 730 = $4380."""
    r = row(plan_of(catalog, Load(rps=1000, p99_ms=10, spot_percent=50)), "inf2.8xlarge")
    assert r.monthly_on_demand == pytest.approx(4380.0)
    assert r.monthly_with_spot == pytest.approx(3504.0)
    no_spot = row(plan_of(catalog, Load(rps=1000, p99_ms=10, spot_percent=50)), "inf2.xlarge")
    assert no_spot.monthly_with_spot is None and "no Spot price" in no_spot.labels


def test_a_model_too_big_for_a_size_is_excluded_with_the_reason(catalog: Catalog) -> None:
    plan = plan_of(catalog, Load(rps=1000, p99_ms=10, model_gib=20))
    excluded = {e.instance_type: e.reason for e in plan.excluded}
    assert excluded["inf2.xlarge"] == (
        "model too big: a replica needs 20 GiB of accelerator memory, the 1 NeuronCore(s) of "
        "one replica on inf2.xlarge hold 16 GiB. Fix: compile with more NeuronCores per "
        "replica, or choose a type with more memory per core"
    )
    assert "ml.inf2.xlarge" in excluded
    assert "g5.xlarge" not in excluded  # one 24 GiB GPU per replica holds it
    assert "inf2.xlarge" not in {r.instance_type for r in plan.rows}


def test_a_variant_with_more_cores_per_replica_fits_and_halves_replicas(
    catalog: Catalog,
) -> None:
    """A 2-core inf2 variant: 32 GiB per replica holds 20 GiB; 1 replica of 2 x 400/s."""
    plan = plan_of(
        catalog, Load(rps=1000, p99_ms=10, model_gib=20), variant_cores={"inf2": 2, "cpu": 1}
    )
    r = row(plan, "inf2.xlarge")
    assert (r.replicas_per_instance, r.replica_rps) == (1, 800)
    assert "trn1.2xlarge" in {e.instance_type for e in plan.excluded}  # no 2-core variant


def test_types_without_a_variant_in_the_bundle_say_what_to_compile(catalog: Catalog) -> None:
    plan = plan_of(catalog, Load(rps=1000, p99_ms=10), variant_cores={"inf2": 1})
    assert "needs `inf3kit compile --target trn1`" in row(plan, "trn1.2xlarge").labels
    assert not any(label.startswith("needs") for label in row(plan, "inf2.xlarge").labels)


def test_families_without_profile_or_ratio_are_excluded_with_the_fix(catalog: Catalog) -> None:
    excluded = {e.instance_type: e.reason for e in plan_of(catalog, Load(1000, 10)).excluded}
    assert excluded["trn2.48xlarge"].startswith(
        "no profile for this family and no throughput ratio for trainium2"
    )
    assert "inf3kit profile" in excluded["g6.xlarge"]


def test_a_region_without_prices_says_so(catalog: Catalog) -> None:
    plan = plan_of(catalog, Load(rps=1000, p99_ms=10, region="eu-west-1"))
    r = row(plan, "inf2.xlarge")
    assert r.cost_per_million is None
    assert "--refresh --region eu-west-1" in r.price.source


def test_serving_max_batch_size_limits_the_profiled_batch(catalog: Catalog) -> None:
    result = build_plan(
        catalog, [make_profile()], Load(1000, 10, max_batch_size=4), platforms=["ec2"]
    )
    assert not result.rows
    assert all(isinstance(e, Excluded) for e in result.excluded)
    assert "none <= serving.max_batch_size 4" in result.excluded[0].reason


def test_fails_when_load_is_not_positive(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match=r"rps \(0\) and p99 \(10 ms\) must be > 0"):
        plan_of(catalog, Load(rps=0, p99_ms=10))


def test_cheapest_skips_provisional_rows_unless_allowed(catalog: Catalog) -> None:
    """At 10,000/s: inf2.xlarge 17 x $0.5 = $8.5/h, provisional inf3.xlarge 5 x $0.7582."""
    plan = plan_of(catalog, Load(rps=10_000, p99_ms=10))
    cheapest = plan.cheapest("ec2")
    assert cheapest is not None and cheapest.instance_type == "inf2.xlarge"
    anything = plan.cheapest("ec2", allow_provisional=True)
    assert anything is not None and anything.instance_type == "inf3.xlarge"
