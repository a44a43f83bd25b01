"""EndpointImage: which container an endpoint serves with, and how its role may pull it.

Five sources: inf3kit's runtime built on the Neuron DLC (the default), an AWS deep learning
container by its compatibility-matrix name or by repository and tag (an LLM engine's image), an
explicit ECR image URI, or a Docker image asset the caller built. Each knows its catalog name
(for the image/instance compatibility check), its network-isolation default, and the narrowest
ECR pull grant for its repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from aws_cdk import Annotations, Aws, Stack, Token
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk.region_info import FactName
from constructs import Construct

from inf3kit.catalog import Compatibility, ServingImage, family_of
from inf3kit.catalog.compatibility import RUNTIME_IMAGE

RUNTIME_IMAGE_DIR = Path(__file__).resolve().parent / "runtime_image"
"""The Dockerfile (and .dockerignore, entry point) of inf3kit's serving image."""
SDK_WARNING_ID = "inf3kit:imageNeuronSdk"
PUBLIC_NEURON_REGISTRY = "public.ecr.aws/neuron"
"""The Neuron DLCs' public mirror: the runtime image builds FROM here, so no registry login."""

_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?P<ref>[:@].+)$"
)
_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]
Kind = Literal["runtime", "dlc", "dlc_tag", "uri", "asset"]


@dataclass(frozen=True)
class EndpointImage:
    """A serving image choice; build one with the static constructors."""

    kind: Kind
    name: str
    """Catalog name (runtime, dlc), the URI (uri), or the asset's id (asset)."""
    network_isolation: bool | None = None
    """None: the catalog entry decides (runtime and DLCs), else True."""
    asset: ecr_assets.DockerImageAsset | None = None

    @staticmethod
    def runtime() -> EndpointImage:
        """inf3kit's runtime, built as a Docker image asset FROM the matrix's base DLC."""
        return EndpointImage("runtime", RUNTIME_IMAGE)

    @staticmethod
    def dlc(name: str) -> EndpointImage:
        """An AWS deep learning container by its compatibility-matrix name, e.g. 'djl-neuronx'."""
        return EndpointImage("dlc", name)

    @staticmethod
    def dlc_tag(repository: str, tag: str) -> EndpointImage:
        """An AWS deep learning container by repository and tag, e.g. an LLM engine's image from
        the matrix's `engines:` section, in the DLC account of the stack's region."""
        return EndpointImage("dlc_tag", f"{repository}:{tag}")

    @staticmethod
    def from_uri(uri: str, *, network_isolation: bool = True) -> EndpointImage:
        """An image already in ECR (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`).

        `{account}` and `{region}` in the URI stand for the deploying stack's account and
        region, so one spec serves every environment that pushed the image to its own ECR.

        :param network_isolation: whether it serves with no network access. Default: True; set
            False for images that download weights or call other services at run time.
        """
        return EndpointImage("uri", uri, network_isolation)

    @staticmethod
    def from_asset(
        asset: ecr_assets.DockerImageAsset, *, network_isolation: bool = True
    ) -> EndpointImage:
        """An image the caller builds as a CDK Docker image asset."""
        return EndpointImage("asset", asset.node.id, network_isolation, asset)

    @property
    def catalog_name(self) -> str | None:
        """The name to check against the compatibility matrix, None when it cannot be known."""
        return self.name if self.kind in ("runtime", "dlc") else None

    def problems(self, compat: Compatibility) -> list[str]:
        """What is wrong with this choice on its own (the instance check is separate)."""
        if self.kind == "uri":
            if Token.is_unresolved(self.name) or _ECR_URI.match(_with_placeholders(self.name)):
                return []
            return [
                f"image: got {self.name!r}, which is not an ECR image URI; SageMaker pulls only "
                "from ECR. Fix: push it to ECR and pass "
                "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG"
            ]
        if self.kind == "dlc":
            entry = compat.data.images.get(self.name)
            usable = sorted(n for n, i in compat.data.images.items() if i.repository and i.tag)
            if entry is None or not (entry.repository and entry.tag):
                return [
                    f"image: {self.name!r} is not a deep learning container in the compatibility "
                    f"matrix; known: {', '.join(usable)}. Fix: use one of those, "
                    "EndpointImage.from_uri(...), or add it under `compatibility.images` in a "
                    "catalog override file"
                ]
        if self.kind == "runtime":
            base = _runtime_base(compat)
            if base is None:
                return [
                    f"image: the matrix entry {RUNTIME_IMAGE!r} names no base image with a "
                    "repository and tag. Fix: set `base:` to a DLC entry that has both"
                ]
        return []

    def default_network_isolation(self, compat: Compatibility) -> bool:
        if self.network_isolation is not None:
            return self.network_isolation
        entry = compat.data.images.get(self.name)
        return entry.network_isolation if entry else True

    def warn_if_older_sdk(
        self, scope: Construct, compat: Compatibility, instance_type: str
    ) -> None:
        """Warn at synthesis when the image's Neuron SDK predates the family's minimum."""
        entry = compat.data.images.get(self.catalog_name or "")
        if entry is not None and entry.base:
            entry = compat.data.images.get(entry.base, entry)
        family = compat.data.families.get(family_of(instance_type))
        if entry is None or family is None or entry.neuron_sdk is None:
            return
        if _version(entry.neuron_sdk) < _version(family.min_neuron_sdk):
            Annotations.of(scope).add_warning_v2(
                SDK_WARNING_ID,
                f"image {self.name!r} ships Neuron SDK {entry.neuron_sdk}, older than the "
                f"{family.min_neuron_sdk} assumed for {family_of(instance_type)} "
                f"({family.source}). Check the Neuron release notes before production, and "
                "update the image tag in a catalog override file when a newer DLC is listed.",
            )

    def bind(self, scope: Construct, grantee: iam.IGrantable, compat: Compatibility) -> str:
        """Create what the image needs (the asset), grant pull to `grantee`, return the URI."""
        stack = Stack.of(scope)
        if self.kind == "runtime":
            base = _runtime_base(compat)
            assert base is not None  # checked by problems()
            asset = ecr_assets.DockerImageAsset(
                scope,
                "Image",
                directory=str(stage_runtime_context()),
                build_args={"BASE_IMAGE": f"{PUBLIC_NEURON_REGISTRY}/{base.repository}:{base.tag}"},
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            return _bind_asset(asset, grantee)
        if self.kind == "asset":
            assert self.asset is not None
            return _bind_asset(self.asset, grantee)
        if self.kind in ("dlc", "dlc_tag"):
            if self.kind == "dlc":
                entry = compat.data.images[self.name]
                repository, tag = str(entry.repository), str(entry.tag)
            else:
                repository, _, tag = self.name.partition(":")
            account = stack.regional_fact(FactName.DLC_REPOSITORY_ACCOUNT)
            repo_arn = stack.format_arn(
                service="ecr",
                account=account,
                resource="repository",
                resource_name=repository,
            )
            _grant_pull(grantee, repo_arn)
            return f"{account}.dkr.ecr.{stack.region}.{Aws.URL_SUFFIX}/{repository}:{tag}"
        match = _ECR_URI.match(_with_placeholders(self.name))
        if not match:
            return self.name
        account = stack.account if "{account}" in self.name else match["account"]
        region = stack.region if "{region}" in self.name else match["region"]
        repo_arn = stack.format_arn(
            service="ecr",
            region=region,
            account=account,
            resource="repository",
            resource_name=match["repository"],
        )
        _grant_pull(grantee, repo_arn)
        return self.name.replace("{account}", account).replace("{region}", region)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _with_placeholders(uri: str) -> str:
    """The URI with `{account}`/`{region}` filled by sample values, for the shape check."""
    return uri.replace("{account}", "000000000000").replace("{region}", "us-east-1")


def _runtime_base(compat: Compatibility) -> ServingImage | None:
    entry = compat.data.images.get(RUNTIME_IMAGE)
    base = compat.data.images.get(entry.base or "") if entry else None
    return base if base and base.repository and base.tag else None


def _bind_asset(asset: ecr_assets.DockerImageAsset, grantee: iam.IGrantable) -> str:
    _grant_pull(grantee, asset.repository.repository_arn)
    return asset.image_uri


def _grant_pull(grantee: iam.IGrantable, repository_arn: str) -> None:
    """Pull from one repository; the token call has no resource-level permissions in IAM."""
    iam.Grant.add_to_principal(
        grantee=grantee, actions=_PULL_ACTIONS, resource_arns=[repository_arn]
    )
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"]
    )


def requirements() -> list[str]:
    """inf3kit's base and `serve` requirements from its installed metadata (not torch)."""
    found = []
    for req in metadata.requires("inf3kit") or []:
        spec, _, marker = req.partition(";")
        marker = marker.replace(" ", "")
        if not marker or marker in ("extra=='serve'", 'extra=="serve"'):
            found.append(spec.strip())
    return sorted(found)


@cache
def stage_runtime_context() -> Path:
    """The Docker build context: Dockerfile, entry point, requirements and the inf3kit source.

    Content-addressed under the temp dir, so every synthesis of the same source stages the
    same directory and the asset hash only changes when the image's content does.
    """
    package = Path(__file__).resolve().parent.parent
    files: dict[str, bytes] = {
        name: (RUNTIME_IMAGE_DIR / name).read_bytes()
        for name in ("Dockerfile", ".dockerignore", "inf3kit-entrypoint")
    }
    files["requirements.txt"] = ("\n".join(requirements()) + "\n").encode()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and rel.parts[:2] != ("constructs", "runtime_image")
            and path.suffix not in (".pyc", ".pyo")
        ):
            files[f"inf3kit/{rel.as_posix()}"] = path.read_bytes()
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    target = Path(tempfile.gettempdir()) / "inf3kit-runtime-image" / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=_mkdir(target.parent)))
    for name, data in files.items():
        out = work / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    try:
        os.rename(work, target)
    except OSError:  # another process staged the same content first
        shutil.rmtree(work, ignore_errors=True)
    return target


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
