"""Rules shared by the deployment spec and the constructs, written once.

Each check returns problem strings in the one format (what is wrong, the value, the fix), so
`inf3kit validate` and construct validation report the same words. No CDK import here: the spec
and the command line use these rules without loading the CDK.
"""

from inf3kit.rules.fleet import warm_pool_problems
from inf3kit.rules.rollout import (
    TRAFFIC_SHIFTING,
    RolloutStrategy,
    default_rollout_strategy,
    rollout_capacity_problems,
)

__all__ = [
    "TRAFFIC_SHIFTING",
    "RolloutStrategy",
    "default_rollout_strategy",
    "rollout_capacity_problems",
    "warm_pool_problems",
]
