"""Per-replica performance of a model on one instance type: measured, scaled or provisional.

A profile of the type's own family is used as measured. Otherwise a profile is scaled through
the catalog's per-chip throughput ratios (`accelerators.*.throughput`, each with its source):
per NeuronCore a chip's ratio is divided by its cores, and a GPU counts as one core. A `cpu`
profile stands in for one NeuronCore of the ratios' reference chip (Inferentia2) and every
figure built on it is labelled CPU-measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from inf3kit.catalog import Catalog, InstanceType
from inf3kit.plan.profile import LoadPoint, Profile

REFERENCE = "inferentia2"
CPU = "cpu"


@dataclass(frozen=True)
class Basis:
    """Where a row's performance figures come from."""

    kind: str
    """`measured` (a profile of this family), `scaled` (a profile through a catalog ratio) or
    `provisional` (a provisional ratio or provisional hardware is involved)."""
    profile_target: str
    cpu_measured: bool
    factor: float
    """Per-replica throughput multiplier applied to the profile (1.0 when measured)."""
    sources: tuple[str, ...] = ()

    def label(self) -> str:
        text = self.kind
        if self.kind != "measured":
            text += f" from {self.profile_target} x{self.factor:.3g}"
        return text + (" (CPU-measured)" if self.cpu_measured else "")


@dataclass(frozen=True)
class ReplicaEstimate:
    """Load points of one replica on the type, scaled; the knee per batch size is kept."""

    basis: Basis
    cores_per_replica: int
    points: tuple[LoadPoint, ...]
    knees: tuple[LoadPoint, ...]
    model_bytes: int


class NoEstimate(Exception):
    """The type cannot be estimated; the message is the reason shown in the plan."""


def _per_core_speed(catalog: Catalog, accelerator: str) -> tuple[float, str, bool]:
    """Speed of one core (a GPU is one core) in reference-NeuronCore units, source, provisional."""
    accel = catalog.accelerator(accelerator)
    ref_cores = catalog.accelerator(REFERENCE).neuron_cores_per_chip or 1
    cores = accel.neuron_cores_per_chip or 1
    if accelerator == REFERENCE:
        return 1.0, "", False
    rel = accel.throughput
    if rel is None or rel.reference != REFERENCE:
        raise NoEstimate(
            f"no profile for this family and no throughput ratio for {accelerator} in the "
            f"catalog. Fix: `inf3kit profile` on this hardware, or state `throughput:` for "
            f"{accelerator} in a catalog override"
        )
    return rel.ratio * ref_cores / cores, f"{accelerator}: {rel.source}", rel.provisional


def _speed_of_profile(catalog: Catalog, profile: Profile) -> tuple[float, str, bool]:
    if profile.target == CPU:
        return 1.0, "", False
    families = {t.family: t for t in catalog.types()}
    itype = families.get(profile.target)
    if itype is None:
        raise NoEstimate(f"profile target {profile.target!r} is not a catalog family")
    return _per_core_speed(catalog, itype.accelerator)


def cores_per_replica(itype: InstanceType, profile: Profile) -> int:
    return profile.neuron_cores_per_replica if itype.is_neuron else 1


def pick_profile(itype: InstanceType, profiles: dict[str, Profile]) -> Profile:
    """The type's own family first, then a Neuron family profile, then a CPU profile."""
    if itype.family in profiles:
        return profiles[itype.family]
    others = [p for t, p in sorted(profiles.items()) if t != CPU]
    if others:
        return others[0]
    if CPU in profiles:
        return profiles[CPU]
    raise NoEstimate("no profile. Fix: run `inf3kit profile BUNDLE` first, or pass --profile")


def estimate(
    catalog: Catalog,
    itype: InstanceType,
    profiles: dict[str, Profile],
    cores: int | None = None,
) -> ReplicaEstimate:
    """Scale the best available profile to one replica on `itype`, or raise NoEstimate.

    `cores` is the NeuronCores per replica of the bundle's variant for this family, when it
    has one; otherwise the profile's. Throughput is taken as linear in cores per replica.
    """
    profile = pick_profile(itype, profiles)
    if not itype.is_neuron or cores is None:
        cores = cores_per_replica(itype, profile)
    cpu = profile.target == CPU
    if profile.target == itype.family:
        basis = Basis("measured", profile.target, cpu, 1.0)
        factor, latency_factor = 1.0, 1.0
    else:
        target_speed, target_source, target_prov = _per_core_speed(catalog, itype.accelerator)
        base_speed, base_source, base_prov = _speed_of_profile(catalog, profile)
        base_cores = profile.neuron_cores_per_replica if profile.target != CPU else 1
        factor = (cores * target_speed) / (base_cores * base_speed)
        latency_factor = base_speed / target_speed
        provisional = target_prov or base_prov
        sources = tuple(s for s in (target_source, base_source) if s)
        basis = Basis(
            "provisional" if provisional else "scaled", profile.target, cpu, factor, sources
        )

    def scaled(p: LoadPoint) -> LoadPoint:
        return p.model_copy(
            update={
                "samples_per_s": p.samples_per_s * factor,
                "p50_ms": p.p50_ms * latency_factor,
                "p99_ms": p.p99_ms * latency_factor,
            }
        )

    points = tuple(scaled(p) for p in profile.points)
    knees = tuple(scaled(profile.knee(b)) for b in profile.batch_sizes)
    return ReplicaEstimate(basis, cores, points, knees, profile.model_bytes)
