"""Where an LLM's weights come from: an S3 prefix, or a pinned Hugging Face model.

Plain strings in, problem strings out, so the spec (`model.weights`) and the LLM constructs
(their `weights` prop) refuse the same locations in the same words.
"""

from __future__ import annotations

import re

from inf3kit.rules.locations import split_s3_uri

_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
"""A Hugging Face model id, `org/name` (the Hub's repo-id characters)."""
_REVISION = re.compile(r"^[0-9a-f]{40}$")
_SECRET = re.compile(
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"|[A-Za-z0-9/_+=.@-]{1,512})$"
)
"""A Secrets Manager secret name (its allowed characters) or ARN."""


def s3_prefix_problems(uri: str, field: str) -> list[str]:
    """An uncompressed model directory in S3: `s3://bucket/prefix/`, a valid bucket, a slash."""
    found = split_s3_uri(uri)
    if found is None or not found[1].endswith("/"):
        archive = found is not None and found[1].endswith((".tar.gz", ".tgz", ".tar"))
        why = (
            "vLLM reads an uncompressed model directory, not an archive"
            if archive
            else "it is not an S3 prefix ending in '/'"
        )
        return [
            f"{field} {uri!r}: {why}. Fix: use s3://BUCKET/PREFIX/ (a folder holding "
            "config.json and the *.safetensors files)"
        ]
    return []


def llm_weights_problems(
    *,
    s3: str | None,
    huggingface: str | None,
    revision: str | None,
    token_secret: str | None,
    compiled: str | None,
    prefix: str = "",
) -> list[str]:
    """Exactly one source; a Hugging Face id pinned to a commit; S3 prefixes; a secret's name.

    `prefix` is prepended to field names (`weights.` for a construct prop).
    """
    problems = []
    if (s3 is None) == (huggingface is None):
        problems.append(
            f"{'both' if s3 else 'neither'} {prefix}s3 {'and' if s3 else 'nor'} "
            f"{prefix}huggingface given. Fix: give one: `s3: s3://BUCKET/PREFIX/` (an "
            "uncompressed model directory) or `huggingface: ORG/NAME` with its `revision`"
        )
    if s3 is not None:
        problems += s3_prefix_problems(s3, f"{prefix}s3")
    if s3 is not None and huggingface is None:
        hub_only = [
            f"{prefix}{k}" for k, v in (("revision", revision), ("token_secret", token_secret)) if v
        ]
        if hub_only:
            problems.append(
                f"{' and '.join(hub_only)} {'applies' if len(hub_only) == 1 else 'apply'} only "
                "to `huggingface` weights. Fix: remove "
                f"{'it' if len(hub_only) == 1 else 'them'}"
            )
    if huggingface is not None:
        if not _HF_ID.match(huggingface):
            problems.append(
                f"{prefix}huggingface {huggingface!r} is not a Hugging Face model id. Fix: use "
                "ORG/NAME as on the model's page, e.g. meta-llama/Llama-3.1-8B-Instruct"
            )
        if revision is None:
            problems.append(
                f"{prefix}revision is required with {prefix}huggingface: an unpinned model "
                "changes under a running service. Fix: add `revision:` with the commit (40 hex "
                "digits) from the model page's 'Files and versions' history"
            )
        elif not _REVISION.match(revision):
            problems.append(
                f"{prefix}revision {revision!r} is not a commit id. Fix: use the full 40-digit "
                "lower-case hex commit, not a branch or tag name"
            )
        if token_secret is not None and not _SECRET.match(token_secret):
            problems.append(
                f"{prefix}token_secret {token_secret!r} is neither a Secrets Manager secret "
                "name nor its ARN. Fix: give the secret's name (letters, digits, /_+=.@-) or ARN"
            )
    if compiled is not None:
        problems += s3_prefix_problems(compiled, f"{prefix}compiled")
    return problems
