"""Tie a plan to a deployment spec: its bundle, stored profiles, platforms, Spot share.

Plan and deployment must never disagree, so everything plan assumes comes from the spec:
endpoint -> SageMaker (`ml.`) types, fleet -> EC2 types, the fleet's Spot share, the serving
batch cap, and the bundle the spec deploys (its variants and the profiles stored next to it).
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

from inf3kit.plan.planner import Load, Plan, build_plan
from inf3kit.plan.profile import Profile, ProfileError, read_profile, stored_profiles
from inf3kit.runtime.manifest import MANIFEST_NAME, Manifest, parse_manifest, read_manifest
from inf3kit.spec import LoadedSpec


def bundle_path(loaded: LoadedSpec) -> Path | None:
    """The local bundle the spec deploys, or None for an s3:// bundle."""
    bundle = loaded.spec.model.bundle
    return None if bundle is None or loaded.spec.model.is_s3 else loaded.resolve(bundle)


def read_bundle_manifest(path: Path) -> Manifest:
    """The manifest of a bundle directory or archive, read without unpacking the archive."""
    if path.is_dir():
        return read_manifest(path)
    with tarfile.open(path, "r:*") as tar:
        member = tar.extractfile(MANIFEST_NAME)
        if member is None:
            raise ProfileError(f"{path} has no {MANIFEST_NAME}")
        return parse_manifest(member.read(), f"{path}:{MANIFEST_NAME}")


def spec_profiles(loaded: LoadedSpec, extra: Sequence[Path] = ()) -> list[Profile]:
    """Profiles stored next to the spec's bundle, replaced per target by `extra` files."""
    by_target: dict[str, Profile] = {}
    path = bundle_path(loaded)
    if path is not None and path.exists():
        by_target.update((p.target, p) for p in stored_profiles(path))
    for file in extra:
        profile = read_profile(file)
        by_target[profile.target] = profile
    return list(by_target.values())


def platforms_of(loaded: LoadedSpec) -> list[str]:
    return [
        platform
        for platform, section in (("sagemaker", loaded.spec.endpoint), ("ec2", loaded.spec.fleet))
        if section is not None
    ]


def plan_for_spec(
    loaded: LoadedSpec,
    *,
    rps: float,
    p99_ms: float,
    profiles: Sequence[Path] = (),
    region: str = "us-east-1",
    headroom: float = 0.2,
    model_gib: float | None = None,
) -> Plan:
    """The plan for the spec's service at `rps` requests per second with p99 <= `p99_ms`."""
    found = spec_profiles(loaded, profiles)
    if not found:
        where = bundle_path(loaded) or loaded.spec.model.bundle
        raise ProfileError(
            f"no profile for the bundle {where}. Fix: run `inf3kit profile {where}` (stores it "
            "next to the bundle), or pass --profile FILE"
        )
    path = bundle_path(loaded)
    variant_cores: dict[str, int] = {}
    if path is not None and path.exists():
        for v in read_bundle_manifest(path).variants:
            variant_cores[v.target] = v.neuron_cores_per_replica
    spec = loaded.spec
    load = Load(
        rps=rps,
        p99_ms=p99_ms,
        region=region,
        headroom=headroom,
        spot_percent=spec.fleet.spot_percent if spec.fleet else 0,
        model_gib=model_gib,
        max_batch_size=spec.serving.max_batch_size,
    )
    return build_plan(
        loaded.catalog,
        found,
        load,
        platforms=platforms_of(loaded),
        variant_cores=variant_cores,
        refusals=refusals(loaded),
    )


def refusals(loaded: LoadedSpec) -> dict[str, str]:
    """Types the spec would refuse in its sections (the compatibility matrix's reasons)."""
    compat, spec, out = loaded.compatibility, loaded.spec, {}
    for itype in loaded.catalog.types():
        problem = None
        if itype.platform == "ec2" and spec.fleet is not None:
            problem = compat.fleet_problem(itype.name)
        elif itype.platform == "sagemaker" and spec.endpoint is not None:
            problem = compat.guardrails_problem(itype.name, spec.endpoint.rollout_strategy)
        if problem:
            # The matrix names the type; dropped so the sizes of a family share one line.
            out[itype.name] = problem.replace(f" on {itype.name}:", ":").replace(
                f"{itype.name}: ", ""
            )
    return out


def knees_per_minute(loaded: LoadedSpec, region: str = "us-east-1") -> dict[str, float]:
    """Per instance type the spec uses: its profiled knee in requests per instance per minute.

    Empty when no profile is stored next to the bundle (nothing measured, nothing to warn of).
    """
    spec = loaded.spec
    used = ([spec.endpoint.instance_type] if spec.endpoint else []) + (
        spec.fleet.instance_types if spec.fleet else []
    )
    try:
        found = spec_profiles(loaded)
    except ProfileError:
        return {}
    if not found:
        return {}
    # Any rps and a p99 no point misses: only the knees matter here.
    load = Load(rps=1.0, p99_ms=float("inf"), region=region, max_batch_size=None)
    plan = build_plan(loaded.catalog, found, load, platforms=platforms_of(loaded))
    return {
        r.instance_type: r.knee_rps_per_instance * 60 for r in plan.rows if r.instance_type in used
    }
