"""Fixtures: bundles compiled from tiny models, and real servers on loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:  # the demo model lives in examples/, importable from the repo root
    sys.path.insert(0, str(REPO))

from inf3kit.runtime.commands import compile_bundle  # noqa: E402

TINY = str(HERE / "tiny_models.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m inf3kit.runtime serve`` in a subprocess, as a container would run it."""

    def __init__(self, model_dir: Path, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "INF3KIT_MODEL_DIR": str(model_dir),
            "INF3KIT_HOST": "127.0.0.1",
            "INF3KIT_PORT": str(self.port),
            "INF3KIT_TORCH_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }
        full_env.pop("SAGEMAKER_BIND_TO_PORT", None)
        full_env.update(env)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inf3kit.runtime", "serve"],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def wait_live(self, timeout: float = 60) -> None:
        self._wait("/v2/health/live", timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        self._wait("/v2/health/ready", timeout)

    def _wait(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server not up on {path} after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def refusal(bundle: Path, tmp_path: Path, **env: str) -> tuple[int, list[int], str]:
    """Run a server on ``bundle`` until it exits; return (exit code, ready statuses, log)."""
    server = ServerProcess(bundle, tmp_path / "server.log", **env)
    statuses = []
    try:
        while server.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                statuses.append(httpx.get(server.url + "/v2/health/ready", timeout=2).status_code)
            time.sleep(0.02)
        return server.proc.returncode, statuses, server.log()
    finally:
        server.stop()


@contextlib.contextmanager
def running_server(model_dir: Path, log_path: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(model_dir, log_path, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "bundle"
    compile_bundle(
        "examples.demo_model.model:build",
        ["INPUT__0:FP32:32"],
        out,
        batch_size=8,
        name="sentiment",
    )
    return out


@pytest.fixture(scope="session")
def echo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("echo") / "bundle"
    compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], out, batch_size=16, name="echo")
    return out


@pytest.fixture(scope="session")
def multi_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multi") / "bundle"
    compile_bundle(
        f"{TINY}:two_in_two_out",
        ["ids:INT64:3", "weights:FP32:3"],
        out,
        batch_size=4,
        name="multi",
        outputs=["score", "next_ids"],
    )
    return out


@pytest.fixture(scope="session")
def demo_server(
    demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "demo-server.log"
    with running_server(demo_bundle, log) as server:
        yield server
