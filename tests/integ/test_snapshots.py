"""The integ apps still synthesize to their committed snapshots (no credentials needed).

A template change that is not in the snapshot fails here; if it is intended, `make
integ-snapshots` refreshes the snapshots (docs/deploying.md), and `make integ` proves the new
templates in a real account.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integ import runner

APPS = runner.apps()


def test_every_app_has_a_snapshot() -> None:
    assert [a.name for a in APPS] == [
        "integ_ami_pipeline.py",
        "integ_endpoint_rollout.py",
        "integ_fleet_fallback.py",
        "integ_fleet_warm_pool.py",
    ]
    assert all(runner.snapshot_of(app).is_dir() for app in APPS)


@pytest.mark.parametrize("app", APPS, ids=[a.stem for a in APPS])
def test_app_matches_its_snapshot(app: Path, demo_bundle: Path) -> None:
    runner.compare(app)


def _assembly(folder: Path, resources: dict) -> Path:
    folder.mkdir()
    template = {"Resources": resources}
    (folder / "Stack.template.json").write_text(json.dumps(template))
    (folder / "integ.json").write_text(json.dumps({"testCases": {}}))
    return folder


def test_asset_hashes_and_assertion_salts_do_not_count_as_differences(tmp_path: Path) -> None:
    key = {"Type": "Custom::Call", "Properties": {"Key": "a" * 64 + ".gz", "salt": "17961623"}}
    rebuilt = {"Type": "Custom::Call", "Properties": {"Key": "b" * 64 + ".gz", "salt": "17961699"}}
    old = _assembly(tmp_path / "old", {"Bundle": key})
    assert runner.differences(_assembly(tmp_path / "new", {"Bundle": rebuilt}), old) == []


def test_fails_when_a_template_differs_from_its_snapshot(tmp_path: Path) -> None:
    old = _assembly(tmp_path / "old", {"Topic": {"Type": "AWS::SNS::Topic"}})
    new = _assembly(tmp_path / "new", {"Queue": {"Type": "AWS::SQS::Queue"}})
    (problem,) = runner.differences(new, old)
    assert problem.startswith("Stack.template.json changed:\n--- snapshot\n+++ now\n")
    assert '-  "Topic": {\n-   "Type": "AWS::SNS::Topic"' in problem
    assert '+  "Queue": {\n+   "Type": "AWS::SQS::Queue"' in problem


def test_fails_when_a_stack_is_added_or_the_snapshot_is_missing(tmp_path: Path) -> None:
    old = _assembly(tmp_path / "old", {})
    new = _assembly(tmp_path / "new", {})
    shutil.copy(new / "Stack.template.json", new / "Extra.template.json")
    assert runner.differences(new, old) == ["Extra.template.json: not in the snapshot"]
    assert runner.differences(new, tmp_path / "absent") == ["absent is missing"]


def test_failed_assertions_are_read_from_the_assertion_stack_outputs() -> None:
    cases = {"Case": {"assertionStackName": "Asserts"}}
    outputs = {
        "Asserts": {
            "AssertionResultsAwsApiCallA": json.dumps({"status": "success"}),
            "AssertionResultsAwsApiCallB": json.dumps({"status": "fail", "message": "got 500"}),
            "Other": "x",
        },
        "Inf3kitIntegFleet": {"AssertionResultsX": json.dumps({"status": "fail"})},
    }
    assert runner.failed_assertions(outputs, cases) == ["AssertionResultsAwsApiCallB: got 500"]
