"""Warnings (not errors) about scaling targets, given each instance type's profiled knee.

The knees come from `inf3kit.plan` (the caller computes them), so the spec package stays free
of profiles and measurement: a target above the knee still deploys, it only scales out late.
"""

from __future__ import annotations

from collections.abc import Mapping

from inf3kit.spec.models import Spec


def scaling_target_warnings(spec: Spec, knee_per_minute: Mapping[str, float]) -> list[str]:
    """One warning per scaling target above the profiled knee of the type it scales."""
    checks: list[tuple[str, int | None, str]] = []
    if spec.endpoint is not None:
        checks.append(
            (
                "endpoint.scaling.invocations_per_instance",
                spec.endpoint.scaling.invocations_per_instance,
                spec.endpoint.instance_type,
            )
        )
    if spec.fleet is not None:
        for itype in spec.fleet.instance_types:
            checks.append(
                (
                    "fleet.scaling.requests_per_instance",
                    spec.fleet.scaling.requests_per_instance,
                    itype,
                )
            )
    warnings = []
    for path, target, itype in checks:
        knee = knee_per_minute.get(itype)
        if target is None or knee is None or target <= knee:
            continue
        warnings.append(
            f"{path} ({target} per minute) is above the profiled knee of {itype} "
            f"({knee:.0f} per instance per minute): instances would queue and miss latency "
            f"before scaling out. Fix: set it to at most {int(knee * 0.8)} (80% of the knee), "
            "or run `inf3kit plan` and `--apply`"
        )
    return warnings
