"""ModelBundle: where a model bundle archive lives in S3, from a local file or an s3:// URI."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from inf3kit.constructs.validation import raise_if_problems
from inf3kit.rules import bundle_uri_problems, split_s3_uri


class ModelBundle(Construct):
    """A bundle `.tar.gz` in S3 that endpoints and fleets read, with a least-privilege grant.

    A local archive is uploaded as a CDK file asset at deploy time; an s3:// URI is used as is.
    Either way consumers get the bucket and the exact object key, so they can grant read on that
    one object instead of a whole bucket.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        path: str | Path | None = None,
        s3_uri: str | None = None,
    ) -> None:
        """Locate the bundle.

        :param path: a local `.tar.gz` bundle (see `inf3kit bundle`), uploaded as an asset.
        :param s3_uri: an existing `s3://bucket/key.tar.gz`. Give exactly one of the two.
        """
        super().__init__(scope, id)
        problems = _validate(path, s3_uri)
        raise_if_problems("ModelBundle", self, problems)
        if path is not None:
            asset = s3_assets.Asset(self, "Asset", path=str(path))
            self.bucket: s3.IBucket = asset.bucket
            self.object_key: str = asset.s3_object_key
            self.s3_url: str = asset.s3_object_url
        else:
            bucket_name, key = split_s3_uri(str(s3_uri)) or ("", "")
            self.bucket = s3.Bucket.from_bucket_name(self, "Bucket", bucket_name)
            self.object_key = key
            self.s3_url = str(s3_uri)

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow s3:GetObject on the bundle object only (no listing, no other objects).

        A bundle in a bucket encrypted with a customer managed key also needs kms:Decrypt on
        that key, which only its owner can grant.
        """
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.bucket.arn_for_objects(self.object_key)],
        )


def _validate(path: str | Path | None, s3_uri: str | None) -> list[str]:
    """Every problem with the props, so one synthesis reports them all."""
    problems: list[str] = []
    if (path is None) == (s3_uri is None):
        problems.append(
            "give exactly one of `path` (a local .tar.gz) or `s3_uri` (s3://bucket/key.tar.gz)"
        )
    if s3_uri is not None:
        problems += [f"s3_uri: {p}" for p in bundle_uri_problems(s3_uri)]
    if path is not None:
        problems += _path_problems(Path(str(path)))
    return problems


def _path_problems(local: Path) -> list[str]:
    if local.is_dir():
        return [
            f"path {str(local)!r} is a directory; SageMaker and fleets read one archive. "
            f"Fix: pack it with `inf3kit bundle {local} -o model.tar.gz` and point to the archive"
        ]
    if not local.is_file():
        return [
            f"path {str(local)!r} does not exist. Fix: build it (`make bundle`, or `inf3kit "
            "compile` then `inf3kit bundle`), or give an s3:// URI"
        ]
    if not local.name.endswith(".tar.gz"):
        return [f"path {str(local)!r} must be a .tar.gz bundle archive (see `inf3kit bundle`)"]
    return []
