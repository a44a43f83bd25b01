"""The invariant between `inf3kit validate` and synthesis: a spec that validates builds.

Specs are generated around the limits the spec models and the rules state (capacities,
rollouts, schedules, time zones, warm pools, listeners, instance families); every one that
validates must build its stacks without a construct refusing it. A refusal at synthesis is a
validate bug; each one found becomes a plain regression test in tests/spec.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inf3kit.catalog import load_catalog
from inf3kit.spec import SpecError, parse_spec
from inf3kit.stacks import add_service

CATALOG = load_catalog()
ENDPOINT_TYPES = sorted(t.name for t in CATALOG.types(platform="sagemaker") if t.neuron_cores)
FLEET_TYPES = sorted(t.name for t in CATALOG.types(platform="ec2") if t.neuron_cores)
EXPRESSIONS = [
    "cron(0 20 ? * MON-FRI *)",
    "cron(0 20 * * ? *)",
    "cron(0 20 1 * MON *)",
    "0 20 * * *",
    "rate(1 day)",
    "at(2027-01-01T20:00:00)",
    "cron(0 4 * *)",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Berlin", "CET+1"]


def _capacity(low: int, high: int) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({"min": st.integers(low, 4), "max": st.integers(high, 5)})


endpoints = st.fixed_dictionaries(
    {
        "instance_type": st.sampled_from(ENDPOINT_TYPES),
        "instances": _capacity(1, 1),
        "rollout": st.fixed_dictionaries(
            {},
            optional={
                "strategy": st.sampled_from(["all_at_once", "canary", "linear", "rolling"]),
                "canary_percent": st.integers(0, 60),
                "linear_step_percent": st.integers(5, 60),
                "rolling_batch_percent": st.integers(1, 60),
            },
        ),
        "scaling": st.fixed_dictionaries(
            {},
            optional={
                "schedule": st.fixed_dictionaries(
                    {
                        "scale_down_cron": st.sampled_from(EXPRESSIONS),
                        "scale_up_cron": st.sampled_from(EXPRESSIONS),
                        "timezone": st.sampled_from(ZONES),
                        "min_during_scale_down": st.integers(1, 6),
                    }
                )
            },
        ),
    }
)
fleets = st.fixed_dictionaries(
    {
        "instance_types": st.lists(st.sampled_from(FLEET_TYPES), min_size=1, max_size=3),
        "capacity": _capacity(0, 1),
        "spot_percent": st.sampled_from([0, 0, 30]),
    },
    optional={
        "warm_pool": st.fixed_dictionaries(
            {
                "min_size": st.integers(0, 2),
                "state": st.sampled_from(["stopped", "running", "hibernated"]),
            }
        ),
        "load_balancer": st.fixed_dictionaries({"public": st.booleans()}),
        "ami": st.fixed_dictionaries(
            {"source": st.just("pipeline"), "schedule": st.sampled_from([*EXPRESSIONS, "manual"])}
        ),
    },
)
specs = st.fixed_dictionaries(
    {"name": st.just("inv"), "model": st.just({"bundle": "s3://models/inv/model.tar.gz"})},
    optional={"endpoint": endpoints, "fleet": fleets},
)


@settings(
    max_examples=15,  # valid specs only (assume): each builds its stacks, ~1 s
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(specs)
def test_every_spec_that_validates_builds(data: dict[str, Any]) -> None:
    try:
        loaded = parse_spec(yaml.safe_dump(data))
    except SpecError:
        loaded = None
    assume(loaded is not None)  # validate refused it: nothing to build, draw another
    assert loaded is not None
    add_service(cdk.App(), loaded)  # a construct refusal raises ValueError here
