"""CloudWatch Logs rules: what a KMS key must allow for an encrypted log group."""

from __future__ import annotations

import json

from tests.aws_contract.conftest import StackTemplate, text_of

CONTEXT = "kms:EncryptionContext:aws:logs:arn"


def test_log_group_keys_match_the_arn_logs_puts_in_the_context(
    templates: list[StackTemplate],
) -> None:
    """CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS": Logs
    calls KMS with the encryption context aws:logs:arn set to
    arn:PARTITION:logs:REGION:ACCOUNT:log-group:NAME. A key policy condition written
    `log-group/NAME` never matches it, and creating the encrypted log group fails."""
    found = [
        (t.name, text_of(statement["Condition"]["ArnLike"][CONTEXT]))
        for t in templates
        for key in t.resources("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if CONTEXT in json.dumps(statement.get("Condition", {}))
    ]
    assert found, "no example encrypts a log group with its own key"
    wrong = [(name, arn) for name, arn in found if ":logs:" not in arn or ":log-group:" not in arn]
    assert wrong == []
