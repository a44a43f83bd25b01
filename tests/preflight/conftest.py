"""A moto account (in-process) and a helper that runs one preflight module against it."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from inf3kit.preflight import Context, Report
from inf3kit.runtime.bundle import pack_bundle
from inf3kit.spec import LoadedSpec, parse_spec

REGION = "us-east-1"


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def context(session: boto3.Session, spec: str | LoadedSpec, **kwargs: object) -> Context:
    loaded = parse_spec(spec) if isinstance(spec, str) else spec
    return Context(loaded, session, REGION, Report(), [loaded.spec.name], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A tiny valid bundle: one cpu variant whose manifest records its sha256."""
    root = tmp_path / "bundle"
    root.mkdir()
    data = b"not a real model, only bytes with a checksum"
    (root / "model.pt").write_bytes(data)
    manifest = {
        "format_version": 1,
        "name": "ranker",
        "inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [4]}],
        "outputs": [{"name": "OUTPUT__0", "datatype": "FP32", "shape": [2]}],
        "variants": [
            {
                "target": "cpu",
                "file": "model.pt",
                "batch_size": 1,
                "compiler": {"name": "torch.jit.trace", "version": "2.13.0"},
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
    }
    (root / "inf3kit-manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def archive(bundle_dir: Path) -> Path:
    out = bundle_dir.parent / "model.tar.gz"
    pack_bundle(bundle_dir, out)
    return out


@pytest.fixture
def tampered(bundle_dir: Path) -> Path:
    """An archive whose variant file no longer matches the manifest's sha256."""
    out = bundle_dir.parent / "tampered.tar.gz"
    (bundle_dir / "model.pt").write_bytes(b"changed after compile")
    with tarfile.open(out, "w:gz") as tar:
        for name in ("inf3kit-manifest.json", "model.pt"):
            tar.add(bundle_dir / name, arcname=name)
    return out
