"""Session-wide fixtures: the demo bundle, and every example spec synthesized once per worker.

`make test` distributes whole files (`--dist loadfile`), so a module's fixtures (a local deploy,
the examples) are built once per worker that runs it, not once per test.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from inf3kit.stacks import SynthResult

REPO = Path(__file__).resolve().parent.parent
DEMO_ARCHIVE = REPO / "build" / "demo" / "model.tar.gz"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


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


@pytest.fixture(scope="session")
def synthesized(
    demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, SynthResult]:
    """Every example spec synthesized with all gates, by file stem."""
    from inf3kit.stacks import synth

    out = tmp_path_factory.mktemp("examples")
    return {path.stem: synth(path, out / path.stem) for path in EXAMPLES}
