"""Does the bundle the spec deploys exist, and do its files match the manifest's sha256?

A local bundle is read where the spec points; an s3:// bundle is downloaded once and verified
the way the runtime verifies it before loading, so a corrupt upload fails here, not after a
20-minute endpoint creation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from botocore.exceptions import ClientError

from inf3kit.preflight.report import Context
from inf3kit.runtime.bundle import open_bundle, verify_bundle
from inf3kit.runtime.manifest import ManifestError

CHECK = "bundle"
REBUILD = "re-create it with `inf3kit bundle BUNDLE_DIR --out model.tar.gz` and deploy that"


def check(ctx: Context) -> None:
    """No bundle (an LLM spec) is preflight.weights' to check."""
    model = ctx.loaded.spec.model
    if model.bundle is None:
        return
    if not model.is_s3:
        _verify(ctx, ctx.loaded.resolve(model.bundle), model.bundle)
        return
    bucket, key = model.bundle.removeprefix("s3://").split("/", 1)
    s3 = ctx.client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NoSuchBucket"):
            raise
        ctx.problem(
            CHECK,
            f"model.bundle {model.bundle} does not exist ({exc.response['Error']['Code']})",
            f"upload it: `aws s3 cp model.tar.gz {model.bundle}` (an archive from `inf3kit "
            "bundle`), or point model.bundle at a local archive to upload it with the deploy",
        )
        return
    with tempfile.TemporaryDirectory(prefix="inf3kit-preflight-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        _verify(ctx, archive, f"{model.bundle} ({head['ContentLength']} bytes)")


def _verify(ctx: Context, path: Path, shown: str) -> None:
    try:
        bundle = open_bundle(path)
        try:
            verify_bundle(bundle)
        finally:
            bundle.remove()
    except ManifestError as exc:
        ctx.problem(CHECK, f"model.bundle {shown}: {exc}", REBUILD)
        return
    variants = ", ".join(f"{v.target} b{v.batch_size}" for v in bundle.manifest.variants)
    ctx.checked(CHECK, f"{shown}: every variant matches its sha256 ({variants})")
