"""What an EC2 Auto Scaling group with a warm pool accepts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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


SERVERS_PER_INSTANCE = 5
"""vLLM servers one fleet instance may run: each server listens on its own port behind its own
target group, and one ALB forward action spreads over at most 5 target groups (Elastic Load
Balancing user guide, quotas for Application Load Balancers, "Target groups per action")."""


def llm_server_layout_problems(cores: Mapping[str, int], degree: int) -> list[str]:
    """An LLM fleet at tensor-parallel `degree`: each type (name -> logical NeuronCores) tiles
    into whole groups, every type runs the same number of servers (every instance answers on
    every server port the load balancer checks), and no more than SERVERS_PER_INSTANCE."""
    problems = [
        f"tensor_parallel {degree} does not divide the {n} NeuronCores of {name}, so servers "
        f"cannot tile it. Fix: use a divisor of {n}"
        for name, n in cores.items()
        if n % degree
    ]
    counts = {name: n // degree for name, n in cores.items() if n % degree == 0}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name}: {c}" for name, c in counts.items())
        problems.append(
            f"the instance types run different numbers of vLLM servers at tensor_parallel "
            f"{degree} ({listed}); every instance must answer on every server port the load "
            "balancer checks. Fix: list types with the same NeuronCore count"
        )
    most = max(counts.values(), default=1)
    if most > SERVERS_PER_INSTANCE:
        problems.append(
            f"tensor_parallel {degree} makes {most} vLLM servers per instance; the load balancer "
            f"spreads over at most {SERVERS_PER_INSTANCE} (one target group per server). Fix: "
            "a larger tensor_parallel (or `auto`), or a smaller instance size"
        )
    return problems
