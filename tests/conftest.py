"""Session-wide fixtures: the demo bundle, and every example spec synthesized once per run.

`make test` distributes whole files (`--dist loadfile`), so a module's fixtures (a local deploy)
are built once per worker that runs it, not once per test. The examples are the costly part
(CDK synthesis and three gates each), so the workers share them: each example is synthesized by
whichever worker takes its lock first, and the others read the result.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
    DEMO_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    with _locked(DEMO_ARCHIVE.with_suffix(".lock")):
        if DEMO_ARCHIVE.exists():
            return DEMO_ARCHIVE
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
    demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> dict[str, SynthResult]:
    """Every example spec synthesized with all gates, by file stem, once per test run.

    Under xdist the workers' temporary folders share a parent, where the first worker to lock an
    example synthesizes it and pickles the result; each worker starts at its own share of the
    list, so they split the work instead of queueing behind each other.
    """
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "examples"
    shared.mkdir(exist_ok=True)
    index = int(worker_id[2:]) if worker_id.startswith("gw") else 0
    start = index * len(EXAMPLES) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    order = EXAMPLES[start:] + EXAMPLES[:start]
    results = {path.stem: _synthesized_once(path, shared) for path in order}
    return {path.stem: results[path.stem] for path in EXAMPLES}


def _synthesized_once(spec: Path, shared: Path) -> SynthResult:
    from inf3kit.stacks import synth

    result = shared / f"{spec.stem}.pickle"
    with _locked(shared / f"{spec.stem}.lock"):
        if not result.exists():
            synthesized = synth(spec, shared / spec.stem)
            partial = result.with_suffix(f".{os.getpid()}")
            partial.write_bytes(pickle.dumps(synthesized))
            partial.rename(result)
        return pickle.loads(result.read_bytes())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` across the xdist workers (released on close)."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
