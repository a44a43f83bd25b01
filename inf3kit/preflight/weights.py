"""Are an LLM's weights (and pre-compiled artefacts, and the Hub token) where the spec says?

vLLM reads an uncompressed model directory: a prefix without `config.json` or any safetensors
fails the engine's load after the instance has booted and the download timeout ran, so it is
asked here first. A Hugging Face model is fetched by the instances from the Hub, which preflight
does not call; its token secret is checked in Secrets Manager.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from inf3kit.preflight.report import Context
from inf3kit.rules import split_s3_uri

CHECK = "weights"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
"""Checkpoint files NxD Inference loads (safetensors, or PyTorch pickles), sharded or not."""


def check(ctx: Context) -> None:
    weights = ctx.loaded.spec.model.weights
    if weights is None:
        return
    if weights.s3 is not None:
        _model_directory(ctx, weights.s3)
    if weights.huggingface is not None:
        ctx.unchecked(
            CHECK,
            f"{weights.huggingface}@{weights.revision} is fetched from the Hugging Face Hub by "
            "the instances; preflight does not call the Hub",
        )
    if weights.token_secret is not None:
        _secret(ctx, weights.token_secret)
    if weights.compiled is not None:
        _compiled(ctx, weights.compiled)


def _names(ctx: Context, uri: str) -> list[str] | None:
    """Object names directly under the prefix; None (and a problem) when the bucket is missing."""
    bucket, prefix = split_s3_uri(uri) or ("", "")
    s3 = ctx.client("s3")
    names: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            names += [o["Key"].removeprefix(prefix) for o in page.get("Contents", [])]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
        ctx.problem(
            CHECK, f"{uri}: bucket {bucket} does not exist", "create it and upload the files"
        )
        return None
    return names


def _model_directory(ctx: Context, uri: str) -> None:
    names = _names(ctx, uri)
    if names is None:
        return
    shards = [n for n in names if n.endswith(WEIGHT_SUFFIXES)]
    missing = [
        w for w, ok in (("config.json", "config.json" in names), ("weights", shards)) if not ok
    ]
    if missing:
        ctx.problem(
            CHECK,
            f"model.weights.s3 {uri} has no {' and no '.join(missing)} "
            f"({len(names)} object{'s' if len(names) != 1 else ''} under it)",
            f"upload the model directory: `aws s3 sync ./MODEL_DIR {uri}` (config.json, the "
            "tokenizer files and *.safetensors)",
        )
        return
    ctx.checked(CHECK, f"{uri}: config.json and {len(shards)} weight file(s)")


def _compiled(ctx: Context, uri: str) -> None:
    """Anything under the prefix, at any depth: the compiled layout is the engine's."""
    bucket, prefix = split_s3_uri(uri) or ("", "")
    try:
        count = (
            ctx.client("s3")
            .list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
            .get("KeyCount", 0)
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
        count = 0
    if not count:
        ctx.problem(
            CHECK,
            f"model.weights.compiled {uri} is empty",
            "run `inf3kit llm compile` on a Neuron host to store the compiled model there, or "
            "remove `compiled` (the engine then compiles at startup)",
        )
        return
    ctx.checked(CHECK, f"{uri}: pre-compiled artefacts present")


def _secret(ctx: Context, secret: str) -> None:
    try:
        ctx.client("secretsmanager").describe_secret(SecretId=secret)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        ctx.problem(
            CHECK,
            f"model.weights.token_secret {secret} does not exist",
            "create it with your Hugging Face token: `aws secretsmanager create-secret --name "
            f"{secret} --secret-string hf_...`",
        )
        return
    ctx.checked(CHECK, f"token secret {secret} exists")
