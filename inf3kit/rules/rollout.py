"""What an endpoint rollout needs from the fleet it replaces."""

from __future__ import annotations

from typing import Literal, Protocol

RolloutStrategy = Literal["all_at_once", "canary", "linear", "rolling"]

TRAFFIC_SHIFTING = frozenset({"canary", "linear", "rolling"})
"""Strategies that move a share of the instances at a time."""


def default_rollout_strategy(min_instances: int) -> RolloutStrategy:
    """Canary when the endpoint always has two instances to split, else all at once.

    Both are blue/green with baking and alarm rollback; only the traffic shifting differs.
    """
    return "canary" if min_instances >= 2 else "all_at_once"


def rollout_capacity_problems(strategy: str, min_instances: int, *, min_name: str) -> list[str]:
    """Canary, linear and rolling shift a percentage of the instances, so they need two.

    SageMaker: a canary is at most 50% of the variant's instance count and a linear step 10-50%
    (API reference, TrafficRoutingConfig), a rolling batch at most 50% (RollingUpdatePolicy).
    With one instance every share rounds to the whole fleet, so there is no valid step.
    """
    if strategy not in TRAFFIC_SHIFTING or min_instances >= 2:
        return []
    return [
        f"rollout: {strategy} shifts a share of at most 50% of the instances, but {min_name} "
        f"is {min_instances}, so the smallest share is the whole fleet. Fix: set {min_name} "
        "to 2 or more, or use strategy all_at_once (still blue/green, baked and rolled back on "
        "alarms)"
    ]


SHARE_LIMITS: dict[str, tuple[str, int, int]] = {
    "canary": ("canary_percent", 1, 50),
    "linear": ("linear_step_percent", 10, 50),
    "rolling": ("rolling_batch_percent", 5, 50),
}
"""Per strategy: the share field and the percent of capacity SageMaker allows (API reference:
TrafficRoutingConfig CanarySize and LinearStepSize, RollingUpdatePolicy MaximumBatchSize)."""


class RolloutShares(Protocol):
    """The share settings, as the spec's `rollout:` and EndpointRollout both hold them."""

    @property
    def canary_percent(self) -> int: ...
    @property
    def linear_step_percent(self) -> int: ...
    @property
    def rolling_batch_percent(self) -> int: ...


def rollout_share_problems(strategy: str, shares: RolloutShares) -> list[str]:
    """The share of the chosen strategy within SageMaker's limits; other shares are unused."""
    if strategy not in SHARE_LIMITS:
        return []
    field, low, high = SHARE_LIMITS[strategy]
    value = getattr(shares, field)
    if low <= value <= high:
        return []
    return [
        f"rollout.{field}: got {value}, SageMaker allows {low}..{high} percent of capacity. "
        f"Fix: use a value in {low}..{high}"
    ]
