"""Rules shared by the deployment spec and the constructs, written once.

Each check returns problem strings in the one format (what is wrong, the value, the fix), so
`inf3kit validate` and construct validation report the same words. No CDK import here: the spec
and the command line use these rules without loading the CDK.
"""

from inf3kit.rules.fleet import (
    SERVERS_PER_INSTANCE,
    duplicate_problems,
    llm_server_layout_problems,
    public_listener_problems,
    warm_pool_problems,
)
from inf3kit.rules.locations import bundle_uri_problems, split_s3_uri
from inf3kit.rules.rollout import (
    SHARE_LIMITS,
    TRAFFIC_SHIFTING,
    RolloutStrategy,
    default_rollout_strategy,
    rollout_capacity_problems,
    rollout_share_problems,
)
from inf3kit.rules.schedules import (
    IMAGE_BUILD_SCHEDULE,
    cron_problems,
    scaling_schedule_problems,
    time_zone_problems,
)
from inf3kit.rules.values import (
    capacity_problems,
    email_problems,
    percent_problems,
    scale_down_count_problems,
)
from inf3kit.rules.weights import llm_weights_problems, s3_prefix_problems

__all__ = [
    "IMAGE_BUILD_SCHEDULE",
    "SERVERS_PER_INSTANCE",
    "SHARE_LIMITS",
    "TRAFFIC_SHIFTING",
    "RolloutStrategy",
    "bundle_uri_problems",
    "capacity_problems",
    "cron_problems",
    "default_rollout_strategy",
    "duplicate_problems",
    "email_problems",
    "llm_server_layout_problems",
    "llm_weights_problems",
    "percent_problems",
    "public_listener_problems",
    "rollout_capacity_problems",
    "rollout_share_problems",
    "s3_prefix_problems",
    "scale_down_count_problems",
    "scaling_schedule_problems",
    "split_s3_uri",
    "time_zone_problems",
    "warm_pool_problems",
]
