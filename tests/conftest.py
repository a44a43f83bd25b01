"""Session-wide fixtures: the demo bundle the example specs point at, built once."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def demo_bundle() -> Path:
    """build/demo/model.tar.gz, which examples/demo.yaml references."""
    archive = REPO / "build" / "demo" / "model.tar.gz"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        manifest = archive.parent / "inf3kit-manifest.json"
        manifest.write_text('{"format_version": 1}')
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(manifest, arcname=manifest.name)
    return archive
