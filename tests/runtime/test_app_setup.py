"""Start-up and shutdown of the ASGI app in-process: the unpacked bundle copy, fatal setup errors.

The lifespan is driven by hand (no server, no port), so each test sees exactly one start and
one shutdown; nothing here waits on a clock.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from inf3kit.runtime import app as app_module
from inf3kit.runtime.app import InferenceApp, State
from inf3kit.runtime.batcher import Batcher
from inf3kit.runtime.bundle import open_bundle, pack_bundle
from inf3kit.runtime.hardware import HostHardware
from inf3kit.runtime.loader import load_model
from inf3kit.runtime.manifest import ManifestError
from inf3kit.runtime.metrics import Metrics
from inf3kit.runtime.server import EXIT_LOAD_FAILED, build_server
from inf3kit.runtime.settings import Settings

CPU = HostHardware("cpu", detail="test host")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary directory: every mkdtemp of the code under test lands here."""
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def unpacked(scratch: Path) -> list[Path]:
    return sorted(scratch.glob("inf3kit-bundle-*"))


@pytest.fixture
def tarball(echo_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model.tar.gz"
    pack_bundle(echo_bundle, out)
    return out


@pytest.fixture
def corrupt_tarball(echo_bundle: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / "corrupt"
    bundle.mkdir()
    for f in echo_bundle.iterdir():
        (bundle / f.name).write_bytes(f.read_bytes())
    model = next(bundle.glob("*.pt"))
    out = tmp_path / "corrupt.tar.gz"
    pack_bundle(bundle, out)  # checksums are right when packing...
    with tarfile.open(out, "r:gz") as tar:
        members = [(m, tar.extractfile(m)) for m in tar.getmembers()]
        data = {m.name: (fh.read() if fh else None) for m, fh in members}
    broken = bytearray(data[model.name] or b"")
    broken[len(broken) // 2] ^= 0x01  # ...and one byte of the model differs inside the archive
    with tarfile.open(out, "w:gz") as tar:
        for m, _ in members:
            payload = bytes(broken) if m.name == model.name else data[m.name]
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
    return out


class Lifespan:
    """Drive an ASGI app's lifespan protocol by hand."""

    def __init__(self, app: InferenceApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def start(self) -> None:
        await self.inbox.put({"type": "lifespan.startup"})
        self.task = asyncio.create_task(self.app({"type": "lifespan"}, self.inbox.get, self._send))
        while not self.sent:
            await asyncio.sleep(0)
        assert self.app._load_task is not None
        await self.app._load_task  # loading (or failing) is done

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert self.task is not None
        await self.task
        assert self.sent[-1] == {"type": "lifespan.shutdown.complete"}


def run_app(settings: Settings, between: Any = None) -> tuple[InferenceApp, list[str], Any]:
    """Start, optionally call ``between(app)``, shut down; return (app, fatal messages, result)."""
    fatal: list[str] = []

    async def scenario() -> Any:
        app = InferenceApp(settings, host=CPU, on_fatal=fatal.append)
        life = Lifespan(app)
        await life.start()
        result = between(app) if between else None
        await life.stop()
        return app, result

    app, result = asyncio.run(scenario())
    return app, fatal, result


# --- the unpacked copy of a .tar.gz --------------------------------------------------------------


def test_unpacked_tarball_is_removed_at_shutdown(tarball: Path, scratch: Path) -> None:
    settings = Settings(model_dir=str(tarball), torch_threads=1)

    def while_ready(app: InferenceApp) -> list[str]:
        assert app.state is State.READY, app.error
        return [sorted(p.name for p in d.iterdir())[0] for d in unpacked(scratch)]

    _, fatal, during = run_app(settings, while_ready)
    assert fatal == []
    assert during == ["inf3kit-manifest.json"]  # one unpacked copy while serving
    assert unpacked(scratch) == []


def test_unpacked_tarball_is_removed_when_loading_fails(
    corrupt_tarball: Path, scratch: Path
) -> None:
    settings = Settings(model_dir=str(corrupt_tarball), torch_threads=1)

    def after_failure(app: InferenceApp) -> list[Path]:
        return unpacked(scratch)  # before shutdown: the failure itself cleans up

    app, fatal, during = run_app(settings, after_failure)
    assert app.state is State.FAILED
    assert len(fatal) == 1 and "sha256 mismatch" in fatal[0]
    assert during == []
    assert unpacked(scratch) == []


def test_a_bundle_directory_is_never_copied_or_removed(echo_bundle: Path, scratch: Path) -> None:
    app, fatal, _ = run_app(Settings(model_dir=str(echo_bundle), torch_threads=1))
    assert fatal == [] and app.state is State.READY
    assert list(scratch.iterdir()) == []
    assert (echo_bundle / "inf3kit-manifest.json").is_file()


def test_open_bundle_removes_its_own_directory_when_the_archive_is_bad(
    tmp_path: Path, scratch: Path
) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(ManifestError, match="cannot unpack the bundle archive"):
        open_bundle(bad)
    assert unpacked(scratch) == []


def test_load_model_without_unpack_dir_hands_the_copy_to_the_caller(
    tarball: Path, corrupt_tarball: Path, scratch: Path
) -> None:
    model = load_model(Settings(model_dir=str(tarball), torch_threads=1), CPU)
    assert model.bundle is not None and model.bundle.temporary
    assert unpacked(scratch) == [model.bundle.root]
    model.bundle.remove()
    assert unpacked(scratch) == []
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        load_model(Settings(model_dir=str(corrupt_tarball), torch_threads=1), CPU)
    assert unpacked(scratch) == []


def test_tarball_refused_clearly_without_extraction_filters(
    tarball: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(tarfile, "data_filter")  # as on Python 3.10 before 3.10.12
    with pytest.raises(ManifestError, match="cannot unpack archives safely"):
        open_bundle(tarball)
    assert unpacked(scratch) == []


# --- any setup failure is fatal ------------------------------------------------------------------


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize("part", ["Metrics", "Schema", "Batcher"])
def test_setup_failure_after_load_is_fatal_with_exit_3(
    part: str,
    tarball: Path,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(app_module, part, _boom)
    settings = Settings(model_dir=str(tarball), torch_threads=1)
    server, app = build_server(settings, CPU)

    async def scenario() -> None:
        life = Lifespan(app)
        await life.start()
        assert app.state is State.FAILED
        assert app._ping()[0] == 503
        await life.stop()

    with caplog.at_level(logging.ERROR, logger="inf3kit.runtime"):
        asyncio.run(scenario())
    assert server.should_exit and server.exit_code == EXIT_LOAD_FAILED
    assert app.error == "model failed to start: RuntimeError: boom"
    assert "model failed to start: RuntimeError: boom" in caplog.text
    assert unpacked(scratch) == []


# --- worker shutdown -----------------------------------------------------------------------------


class HungThread:
    """A worker that never finishes: ``join`` uses its whole timeout (on a fake clock)."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def join(self, timeout: float | None = None) -> None:
        assert timeout is not None, "an unbounded join could hang the shutdown"
        self.waits.append(timeout)
        self.clock[0] += timeout


def test_worker_join_shares_one_deadline() -> None:
    batcher = Batcher([], [], 1, 0.0, 1, Metrics("join"))
    now = [100.0]
    threads = [HungThread(now) for _ in range(4)]
    batcher._threads = threads  # type: ignore[assignment]
    batcher._join(5.0, clock=lambda: now[0])
    assert now[0] - 100.0 == 5.0  # not 4 x 5 s
    assert [t.waits for t in threads] == [[5.0], [0.0], [0.0], [0.0]]


def test_stop_waits_for_idle_workers() -> None:
    class Idle:
        label = "idle"

        def run(self, inputs: Any) -> Any:
            return inputs

    async def scenario() -> list[threading.Thread]:
        batcher = Batcher([Idle(), Idle(), Idle()], [((4,), float)], 2, 0.0, 8, Metrics("s"))
        batcher.start()
        await batcher.stop(timeout_s=60)
        return batcher._threads

    assert not any(t.is_alive() for t in asyncio.run(scenario()))


def test_join_budget_is_bounded_by_what_is_left_of_the_grace() -> None:
    app = InferenceApp(Settings(grace_seconds=20), host=CPU)
    assert app._join_budget() == 5.0  # not draining: the usual cap
    assert InferenceApp(Settings(grace_seconds=2), host=CPU)._join_budget() == 2.0
    app.begin_drain()
    app._drain_started = time.monotonic() - 60  # the drain used up the whole grace period
    assert app._join_budget() == 0.0
