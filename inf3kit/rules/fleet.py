"""What an EC2 Auto Scaling group with a warm pool accepts."""

from __future__ import annotations

from collections.abc import Sequence


def warm_pool_problems(instance_types: Sequence[str], spot_percent: int, state: str) -> list[str]:
    """A warm pool needs one instance type, no Spot, and a pool state the hardware supports.

    EC2 Auto Scaling user guide, "Warm pools": a group with a mixed instances policy or Spot
    Instances cannot have a warm pool. EC2 user guide, "Prerequisites for EC2 instance
    hibernation": no Inferentia or Trainium family is among the families that hibernate.
    """
    problems = []
    conflicts = []
    if len(instance_types) > 1:
        conflicts.append(f"{len(instance_types)} instance types (a mixed instances policy)")
    if spot_percent:
        conflicts.append(f"spot_percent {spot_percent}")
    if conflicts:
        problems.append(
            f"warm pool: cannot be combined with {' and '.join(conflicts)}; AWS refuses a warm "
            "pool on such a group. Fix: drop the warm pool, or keep a single instance type with "
            "spot_percent 0"
        )
    if state == "hibernated":
        problems.append(
            "warm pool: state 'hibernated' needs an instance family that hibernates, and no "
            "Inferentia or Trainium family does (EC2 hibernation prerequisites). Fix: use state "
            "'stopped' (pay for volumes only) or 'running'"
        )
    return problems


def duplicate_problems(instance_types: Sequence[str]) -> list[str]:
    """Each type once: the order is the capacity fallback order."""
    duplicates = sorted({t for t in instance_types if list(instance_types).count(t) > 1})
    if not duplicates:
        return []
    return [
        f"instance types {', '.join(map(repr, duplicates))} listed more than once. "
        "Fix: list each type once, in order of preference"
    ]


def public_listener_problems(public: bool, has_certificate: bool) -> list[str]:
    if not public or has_certificate:
        return []
    return [
        "a public load balancer without a certificate would serve plain HTTP to the internet. "
        "Fix: give a certificate (an ACM certificate ARN), or keep the load balancer internal"
    ]
