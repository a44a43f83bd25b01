"""Session-wide fixtures: the demo bundle the example specs point at, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_ARCHIVE = REPO / "build" / "demo" / "model.tar.gz"


@pytest.fixture(scope="session")
def demo_bundle() -> Path:
    """build/demo/model.tar.gz (what examples/demo.yaml references), as `make bundle` builds it.

    Built with the real compile and pack steps so the stacks, the local deploy and the runtime
    all see the same archive a user gets.
    """
    if not DEMO_ARCHIVE.exists():
        from inf3kit.runtime.commands import compile_bundle, pack

        sys.path.insert(0, str(REPO))
        bundle_dir = DEMO_ARCHIVE.parent / "bundle"
        compile_bundle(
            "examples.demo_model.model:build",
            ["INPUT__0:FP32:32"],
            bundle_dir,
            target="cpu",
            batch_size=8,
        )
        pack(bundle_dir, DEMO_ARCHIVE)
    return DEMO_ARCHIVE
