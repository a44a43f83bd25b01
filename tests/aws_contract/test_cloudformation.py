"""CloudFormation rules: what a failed create leaves behind."""

from __future__ import annotations

from tests.aws_contract.conftest import StackTemplate


def test_named_log_groups_are_not_kept_by_a_failed_create(templates: list[StackTemplate]) -> None:
    """CloudFormation user guide, "DeletionPolicy attribute": Retain also keeps a resource whose
    create rolled back; a log group with a fixed name then makes every retry fail with "already
    exists". RetainExceptOnCreate keeps it on update and delete only."""
    named = [
        (t.name, group)
        for t in templates
        for group in t.resources("AWS::Logs::LogGroup").values()
        if "LogGroupName" in group["Properties"]
    ]
    assert named, "no example creates a named log group"
    for name, group in named:
        assert group.get("DeletionPolicy", "Delete") != "Retain", name


def test_buckets_never_block_stack_deletion(templates: list[StackTemplate]) -> None:
    """CloudFormation template reference, AWS::S3::Bucket: "You can only delete empty buckets.
    Deletion fails for buckets that have contents." A bucket that fills at run time (artifacts,
    logs, captured data) must be retained, so deleting the stack completes."""
    buckets = [
        (t.name, logical, b)
        for t in templates
        for logical, b in t.resources("AWS::S3::Bucket").items()
    ]
    assert buckets
    deleted = [
        (n, logical) for n, logical, b in buckets if b.get("DeletionPolicy", "Delete") == "Delete"
    ]
    assert deleted == []
