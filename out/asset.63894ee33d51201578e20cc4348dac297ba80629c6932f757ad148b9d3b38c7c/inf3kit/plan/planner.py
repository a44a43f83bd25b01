"""The capacity and cost arithmetic of `inf3kit plan`, one row per instance type.

For a target load (requests of one row per second) and a p99 target, per type:
- the operating point: the highest-throughput profiled point whose p99 meets the target and
  that is not past the knee (else the knee, and the latency target is marked as missed);
- replicas per instance = NeuronCores // cores per replica (a GPU holds one replica);
- per-instance target = replicas x operating throughput x (1 - headroom): the autoscaling
  target, below the knee by the headroom;
- instances = ceil(load / per-instance target) + 1 (N+1: one instance can fail or be replaced
  without the rest passing the knee);
- monthly cost = instances x hourly price x 730 h; with a fleet's Spot share, the Spot part
  at the Spot price when one is recorded;
- cost per million inferences = instances x hourly price / (load x 3600) x 1e6, the price of
  serving this load with this headroom, not of a fully busy instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from inf3kit.catalog import Catalog, InstanceType
from inf3kit.catalog.prices import HOURS_PER_MONTH, Price
from inf3kit.plan.estimate import Basis, NoEstimate, ReplicaEstimate, estimate
from inf3kit.plan.profile import LoadPoint, Profile

GIB = 1 << 30


@dataclass(frozen=True)
class Load:
    """What the plan is for."""

    rps: float
    p99_ms: float
    region: str = "us-east-1"
    headroom: float = 0.2
    spot_percent: int = 0
    model_gib: float | None = None
    """Accelerator memory one replica needs; default: the profiled variant file's size."""
    max_batch_size: int | None = None


@dataclass(frozen=True)
class Row:
    instance_type: str
    platform: str
    family: str
    basis: Basis
    labels: tuple[str, ...]
    batch_size: int
    concurrency: int
    replica_rps: float
    replicas_per_instance: int
    knee_rps_per_instance: float
    target_rps_per_instance: float
    instances_for_load: int
    instances: int
    p99_ms: float
    latency_ok: bool
    price: Price
    monthly_on_demand: float | None
    monthly_with_spot: float | None
    cost_per_million: float | None

    @property
    def provisional(self) -> bool:
        return any(label.startswith("provisional") for label in self.labels)

    @property
    def scaling_target_per_minute(self) -> int:
        """SageMaker InvocationsPerInstance and ALB RequestCountPerTarget count per minute."""
        return max(1, math.floor(self.target_rps_per_instance * 60))


@dataclass(frozen=True)
class Excluded:
    instance_type: str
    reason: str


@dataclass
class Plan:
    load: Load
    profiles: list[Profile]
    rows: list[Row] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)

    def cheapest(self, platform: str, *, allow_provisional: bool = False) -> Row | None:
        """The first row of `platform` that meets the latency target and has a price."""
        return next(
            (
                r
                for r in self.rows
                if r.platform == platform
                and r.latency_ok
                and r.cost_per_million is not None
                and (allow_provisional or not r.provisional)
            ),
            None,
        )


def replica_memory_gib(itype: InstanceType, cores: int) -> float:
    if not itype.is_neuron:
        return itype.accelerator_memory_gib / itype.chips
    return itype.accelerator_memory_gib / itype.neuron_cores * cores


def replicas_per_instance(itype: InstanceType, cores: int) -> int:
    return itype.neuron_cores // cores if itype.is_neuron else itype.chips


def operating_point(est: ReplicaEstimate, p99_ms: float, max_batch: int | None) -> LoadPoint:
    """Best throughput at or below the knee within the p99 target; else the best knee."""
    knees = {k.batch_size: k for k in est.knees if max_batch is None or k.batch_size <= max_batch}
    if not knees:
        sizes = sorted(k.batch_size for k in est.knees)
        raise NoEstimate(
            f"the profile has batch sizes {sizes}, none <= serving.max_batch_size {max_batch}. "
            "Fix: profile a smaller compiled batch size, or raise serving.max_batch_size"
        )
    fitting = [
        p
        for p in est.points
        if p.batch_size in knees
        and p.concurrency <= knees[p.batch_size].concurrency
        and p.p99_ms <= p99_ms
    ]
    if fitting:
        return max(fitting, key=lambda p: p.samples_per_s)
    return max(knees.values(), key=lambda p: p.samples_per_s)


def plan_row(
    catalog: Catalog,
    itype: InstanceType,
    profiles: dict[str, Profile],
    load: Load,
    *,
    variant_cores: dict[str, int],
) -> Row | Excluded:
    """One type's row, or why it is excluded."""
    try:
        est = estimate(catalog, itype, profiles, variant_cores.get(itype.family))
    except NoEstimate as exc:
        return Excluded(itype.name, str(exc))
    cores = est.cores_per_replica
    if itype.is_neuron and cores > itype.neuron_cores:
        return Excluded(
            itype.name,
            f"a replica needs {cores} NeuronCores, {itype.name} has {itype.neuron_cores}. "
            "Fix: use a larger size, or compile with fewer cores per replica",
        )
    need = load.model_gib if load.model_gib is not None else est.model_bytes / GIB
    memory = replica_memory_gib(itype, cores)
    if need > memory:
        where = f"{cores} NeuronCore(s)" if itype.is_neuron else "GPU"
        return Excluded(
            itype.name,
            f"model too big: a replica needs {need:.3g} GiB of accelerator memory, the {where} "
            f"of one replica on {itype.name} hold {memory:.3g} GiB. Fix: compile with more "
            "NeuronCores per replica, or choose a type with more memory per core",
        )
    try:
        point = operating_point(est, load.p99_ms, load.max_batch_size)
    except NoEstimate as exc:
        return Excluded(itype.name, str(exc))
    knee = max(
        (k for k in est.knees if k.batch_size == point.batch_size), key=lambda k: k.samples_per_s
    )
    replicas = replicas_per_instance(itype, cores)
    target = replicas * point.samples_per_s * (1 - load.headroom)
    for_load = max(1, math.ceil(load.rps / target))
    instances = for_load + 1
    price = catalog.price(itype.name, load.region)
    monthly = cost_per_million = with_spot = None
    if price.usd_per_hour is not None:
        monthly = instances * price.usd_per_hour * HOURS_PER_MONTH
        cost_per_million = instances * price.usd_per_hour / (load.rps * 3600) * 1e6
        with_spot = _with_spot(itype, instances, price.usd_per_hour, price, load.spot_percent)
    return Row(
        instance_type=itype.name,
        platform=itype.platform,
        family=itype.family,
        basis=est.basis,
        labels=_labels(itype, est.basis, price, variant_cores, load),
        batch_size=point.batch_size,
        concurrency=point.concurrency,
        replica_rps=point.samples_per_s,
        replicas_per_instance=replicas,
        knee_rps_per_instance=replicas * knee.samples_per_s,
        target_rps_per_instance=target,
        instances_for_load=for_load,
        instances=instances,
        p99_ms=point.p99_ms,
        latency_ok=point.p99_ms <= load.p99_ms,
        price=price,
        monthly_on_demand=monthly,
        monthly_with_spot=with_spot,
        cost_per_million=cost_per_million,
    )


def _with_spot(
    itype: InstanceType, instances: int, on_demand: float, price: Price, spot_percent: int
) -> float | None:
    """Auto Scaling rounds in favour of On-Demand: Spot gets floor(instances x share)."""
    if itype.platform != "ec2" or not spot_percent or price.spot_usd_per_hour is None:
        return None
    spot = math.floor(instances * spot_percent / 100)
    hourly = (instances - spot) * on_demand + spot * price.spot_usd_per_hour
    return hourly * HOURS_PER_MONTH


def _labels(
    itype: InstanceType, basis: Basis, price: Price, variant_cores: dict[str, int], load: Load
) -> tuple[str, ...]:
    labels = []
    if itype.provisional:
        labels.append("provisional hardware")
    if basis.kind == "provisional":
        labels.append("provisional ratio")
    if price.provisional:
        labels.append("provisional price")
    if basis.cpu_measured:
        labels.append("CPU-measured")
    if price.missing:
        labels.append("price missing")
    if itype.platform == "ec2" and load.spot_percent and price.spot_usd_per_hour is None:
        labels.append("no Spot price")
    if not itype.is_neuron:
        labels.append("GPU baseline")
    elif variant_cores and itype.family not in variant_cores:
        labels.append(f"needs `inf3kit compile --target {itype.family}`")
    return tuple(labels)


def _sort_key(row: Row) -> tuple[int, float]:
    rank = 0 if row.latency_ok else 1
    if row.cost_per_million is None:
        return (rank + 2, 0.0)
    return (rank, row.cost_per_million)


def build_plan(
    catalog: Catalog,
    profiles: list[Profile],
    load: Load,
    *,
    platforms: list[str],
    variant_cores: dict[str, int] | None = None,
    refusals: dict[str, str] | None = None,
) -> Plan:
    """Rows for every catalog type of `platforms`, sorted by cost per million (latency first).

    `variant_cores` maps each target the bundle has a variant for to its cores per replica;
    an empty mapping means the bundle's variants are unknown (an s3:// bundle). `refusals`
    excludes the types the spec would refuse, with the spec's own reason.
    """
    if load.rps <= 0 or load.p99_ms <= 0 or not 0 <= load.headroom < 1:
        raise ValueError(
            f"rps ({load.rps}) and p99 ({load.p99_ms} ms) must be > 0 and headroom "
            f"({load.headroom}) in [0, 1). Fix: pass --rps N --p99-ms L [--headroom 0.2]"
        )
    by_target = {p.target: p for p in profiles}
    plan = Plan(load, profiles)
    for itype in catalog.types():
        if itype.platform not in platforms:
            continue
        if refusals and itype.name in refusals:
            plan.excluded.append(
                Excluded(itype.name, f"the spec refuses it: {refusals[itype.name]}")
            )
            continue
        result = plan_row(catalog, itype, by_target, load, variant_cores=variant_cores or {})
        if isinstance(result, Excluded):
            plan.excluded.append(result)
        else:
            plan.rows.append(result)
    plan.rows.sort(key=_sort_key)
    return plan
