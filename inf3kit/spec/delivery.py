"""Spec `delivery:` section: GitOps delivery of the service by a self-mutating CDK pipeline.

On every push to `branch` of `repository`, the pipeline synthesizes the spec, then deploys one
stage per `environments:` entry, in the spec's order. The checks that need the rest of the spec
(environments, endpoint) live in `check_delivery`, which `Spec` calls on its `delivery` field.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from inf3kit.spec.base import ACCOUNT_PATTERN, REGION_PATTERN, StrictModel

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}(?<![/.])$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:(codestar-connections|codeconnections):[a-z]{2}(-gov)?-[a-z]+-\d:"
    r"\d{12}:connection/[0-9a-f-]{36}$"
)


def _repo_path(value: str, what: str) -> str:
    """A path inside the repository: relative, forward slashes, never leaving the repository."""
    normalized = posixpath.normpath(value)
    if value.startswith("/") or "\\" in value or normalized.startswith(".."):
        raise ValueError(
            f"{what} {value!r} is not a relative path inside the repository. "
            "Fix: write it relative to the repository root with '/', e.g. services/ranker.yaml"
        )
    return normalized


class SmokeTestSpec(StrictModel):
    """After each stage deploys, `inf3kit invoke` sends this request to its endpoint."""

    input: str = Field(description="request body file, relative to the spec file")
    content_type: str = Field("application/json", pattern=r"^[\w.+-]+/[\w.+-]+$")


class DeliverySpec(StrictModel):
    repository: str = Field(description="the Git repository holding this spec, owner/name")
    branch: str = "main"
    connection_arn: str = Field(
        description="the CodeStar (CodeConnections) connection to GitHub, GitLab or Bitbucket"
    )
    spec_path: str = Field("inf3kit.yaml", description="this spec file, relative to the repo root")
    install: Literal["wheel", "index", "repo"] | None = Field(
        None,
        description="where the synth and smoke steps get inf3kit: `wheel` the wheel of the "
        "inf3kit that synthesized the pipeline (an asset of the pipeline stack), `index` this "
        "version from a package index that publishes it, `repo` the repository itself; "
        "default: `repo` when the repository is inf3kit, else `wheel`",
    )
    index_url: str | None = Field(
        None,
        description="with `install: index`, the package index to install from; default: "
        "pip's own (PyPI, where inf3kit is not published)",
    )
    pipeline_account: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    pipeline_region: str | None = Field(None, pattern=REGION_PATTERN)
    approval: list[str] | None = Field(
        None,
        description="stages that wait for a manual approval; default: every stage but the first",
    )
    smoke_test: SmokeTestSpec | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _REPOSITORY.match(value):
            raise ValueError(
                f"got {value!r}, which is not a repository name. "
                "Fix: write owner/name as in the repository's URL, e.g. acme/ranker-deploy"
            )
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not _BRANCH.match(value):
            raise ValueError(
                f"got {value!r}, which is not a branch name. "
                "Fix: use letters, digits, '.', '_', '-' and '/', e.g. main or release/v2"
            )
        return value

    @field_validator("connection_arn")
    @classmethod
    def _connection(cls, value: str) -> str:
        if not _CONNECTION_ARN.match(value):
            raise ValueError(
                f"got {value!r}, which is not a CodeStar connection ARN. Fix: create a "
                "connection (Developer Tools > Settings > Connections), authorize it, and copy "
                "its ARN, e.g. arn:aws:codeconnections:us-east-1:111111111111:connection/"
                "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
            )
        return value

    @field_validator("spec_path")
    @classmethod
    def _spec_path(cls, value: str) -> str:
        path = _repo_path(value, "spec_path")
        if not path.endswith((".yaml", ".yml")):
            raise ValueError(
                f"spec_path {value!r} is not a YAML file. "
                "Fix: give the path of this spec file, e.g. inf3kit.yaml"
            )
        return path

    @field_validator("index_url")
    @classmethod
    def _index_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = urlsplit(value)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(
                f"got {value!r}, which is not an https URL. Fix: give the index's simple API "
                "URL, e.g. https://pypi.example.com/simple/"
            )
        if parsed.username or parsed.password:
            raise ValueError(
                f"got a URL with credentials ({parsed.hostname}): the pipeline's buildspec is "
                "readable by anyone who can read the pipeline stack. Fix: give the URL without "
                "user:password, and let the index accept the build role (e.g. CodeArtifact)"
            )
        return value

    @model_validator(mode="after")
    def _index_url_needs_index(self) -> DeliverySpec:
        if self.index_url is not None and self.source != "index":
            raise ValueError(
                f"index_url is set but install is {self.source!r}, which does not use it. "
                "Fix: add `install: index`, or remove `index_url`"
            )
        return self

    @property
    def source(self) -> Literal["wheel", "index", "repo"]:
        """`install` when set, else `repo` when the repository is inf3kit itself, else `wheel`."""
        if self.install is not None:
            return self.install
        return "repo" if self.repository.split("/")[1].lower() == "inf3kit" else "wheel"

    def smoke_input_path(self) -> str | None:
        """The smoke request file relative to the repository root (paths in a spec are
        relative to the spec file)."""
        if self.smoke_test is None:
            return None
        spec_dir = posixpath.dirname(self.spec_path)
        return posixpath.normpath(posixpath.join(spec_dir, self.smoke_test.input))

    def approval_stages(self, stages: list[str]) -> list[str]:
        """The stages a manual approval precedes, in deployment order."""
        if self.approval is None:
            return stages[1:]
        return [stage for stage in stages if stage in self.approval]


def check_delivery(delivery: DeliverySpec, spec: Mapping[str, Any]) -> DeliverySpec:
    """The rules that need the rest of the spec; `spec` holds the fields validated so far."""
    environments = spec.get("environments")
    if environments is None:  # environments itself is invalid and already reported
        return delivery
    problems = []
    if not any(env.account and env.region for env in environments.values()):
        problems.append(
            "delivery needs at least one environment with both `account` and `region` "
            "(the pipeline deploys to explicit environments, across accounts when they differ). "
            'Fix: add e.g. `environments: {prod: {account: "111111111111", region: us-east-1}}`'
        )
    unknown = [stage for stage in delivery.approval or [] if stage not in environments]
    if unknown:
        known = ", ".join(environments) or "none"
        problems.append(
            f"delivery.approval names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not in `environments` ({known}). "
            "Fix: list stage names from `environments`"
        )
    if delivery.smoke_test is not None and "endpoint" in spec and spec["endpoint"] is None:
        problems.append(
            "delivery.smoke_test needs an `endpoint:` section: it runs `inf3kit invoke` "
            "against the SageMaker endpoint, and a fleet's internal load balancer is not "
            "reachable from the pipeline. Fix: remove `smoke_test`, or add an `endpoint:` section"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return delivery
