"""Synthesize every example spec once per session, with all gates, for the stack tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.stacks import SynthResult, synth

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.fixture(scope="session")
def synthesized(
    demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, SynthResult]:
    out = tmp_path_factory.mktemp("examples")
    return {path.stem: synth(path, out / path.stem) for path in EXAMPLES}
