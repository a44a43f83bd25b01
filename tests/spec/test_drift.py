"""Rules the spec and the constructs share: `validate` refuses what synthesis would refuse, in
the same words (each case here passed `inf3kit validate` before the rules were shared)."""

from __future__ import annotations

import pytest

from inf3kit.rules import cron_problems, scaling_schedule_problems, time_zone_problems
from inf3kit.spec import SpecError, parse_spec

BASE = """\
name: ranker
model:
  bundle: s3://models/ranker.tar.gz
"""
ENDPOINT = (
    BASE
    + """\
endpoint:
  instance_type: ml.inf2.xlarge
  scaling:
    schedule:
      scale_down_cron: '{down}'
      scale_up_cron: 'cron(0 6 ? * MON-FRI *)'
      timezone: {zone}
"""
)
PIPELINE = (
    BASE
    + """\
fleet:
  instance_types: [inf2.xlarge]
  ami: {{source: pipeline, schedule: '{schedule}'}}
"""
)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return [str(p) for p in info.value.problems]


def test_fails_when_the_scale_down_schedule_is_plain_cron() -> None:
    found = problems(ENDPOINT.format(down="0 20 * * *", zone="UTC"))
    assert found == [
        "endpoint.scaling.schedule.scale_down_cron (line 8): "
        + scaling_schedule_problems("0 20 * * *")[0]
    ]


def test_fails_when_the_ami_schedule_has_four_fields() -> None:
    found = problems(PIPELINE.format(schedule="cron(0 4 * *)"))
    assert found == [
        "fleet.ami.schedule (line 6): " + cron_problems("cron(0 4 * *)", "cron(0 4 ? * mon *)")[0]
    ]
    assert "with 4 fields; AWS cron takes 6" in found[0]


def test_fails_when_cron_sets_both_day_fields() -> None:
    found = problems(PIPELINE.format(schedule="cron(0 4 1 * MON *)"))
    assert "needs '?' in day-of-month or day-of-week" in found[0]


def test_fails_when_the_time_zone_is_not_iana() -> None:
    found = problems(ENDPOINT.format(down="cron(0 20 ? * MON-FRI *)", zone="CET+1"))
    assert found == [
        "endpoint.scaling.schedule.timezone (line 10): " + time_zone_problems("CET+1")[0]
    ]


def test_a_valid_schedule_and_zone_pass() -> None:
    loaded = parse_spec(ENDPOINT.format(down="cron(0 20 ? * MON-FRI *)", zone="Europe/Berlin"))
    assert loaded.spec.endpoint is not None


def test_rate_and_at_expressions_are_scaling_schedules() -> None:
    assert scaling_schedule_problems("rate(1 day)") == []
    assert scaling_schedule_problems("at(2027-01-01T20:00:00)") == []
    assert scaling_schedule_problems("rate(0 days)") != []


def test_fails_when_the_scheduled_count_exceeds_the_maximum() -> None:
    """Found by the validate/synthesis invariant (tests/stacks/test_validate_invariant.py)."""
    text = ENDPOINT.format(down="cron(0 20 ? * MON-FRI *)", zone="UTC").replace(
        "      timezone: UTC\n", "      timezone: UTC\n      min_during_scale_down: 3\n"
    )
    assert problems(text) == [
        "endpoint (line 5): scaling.schedule.min_during_scale_down: got 3, outside 1..2 "
        "(instances.max). Fix: use a count in that range"
    ]


def test_fails_when_the_default_image_cannot_serve_the_family() -> None:
    """Found by the invariant: inf1 endpoints need the Neuron 1.x image."""
    text = BASE + "endpoint:\n  instance_type: ml.inf1.xlarge\n"
    assert problems(text) == [
        "endpoint (line 5): image: serving image 'inf3kit-runtime' does not support instance "
        "family 'inf1' (ml.inf1.xlarge); it supports inf2, trn1, trn2, trn3, inf3. Fix: pick an "
        "instance type of those families, or images that support inf1: pytorch-inference-neuron."
    ]
