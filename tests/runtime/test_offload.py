"""Large bodies are parsed off the event loop: /ping keeps answering while they are converted."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from conftest import ServerProcess, running_server

INFER = "/v2/models/sentiment/infer"
ROWS = 28_000  # 16 MiB of JSON: ~0.15 s of orjson + numpy, a single GIL-holding call each


@pytest.fixture(scope="module")
def server(demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(demo_bundle, tmp_path_factory.mktemp("logs") / "offload.log") as server:
        yield server


def offloaded(server: ServerProcess) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith('inf3kit_request_offloaded_total{model="sentiment"}'):
            return float(line.split()[-1])
    raise AssertionError("inf3kit_request_offloaded_total not found")


def test_large_bodies_are_parsed_in_another_process_while_ping_answers(
    server: ServerProcess,
) -> None:
    x = np.random.default_rng(0).random((ROWS, 32), dtype=np.float32)
    tensor = {"name": "INPUT__0", "datatype": "FP32", "shape": [ROWS, 32], "data": x.tolist()}
    body = orjson.dumps({"inputs": [tensor]})
    assert len(body) > 14 << 20
    before = offloaded(server)
    small = {**tensor, "shape": [1, 32], "data": x[0].tolist()}
    assert httpx.post(server.url + INFER, json={"inputs": [small]}).status_code == 200
    assert offloaded(server) == before  # small bodies stay on the loop

    big: list[tuple[int, float]] = []

    def send_big() -> None:
        with httpx.Client(timeout=120) as client:
            for _ in range(3):
                started = time.perf_counter()
                r = client.post(server.url + INFER, content=body)
                big.append((r.status_code, time.perf_counter() - started))

    sender = threading.Thread(target=send_big)
    pings: list[float] = []
    with httpx.Client(timeout=30) as client:
        sender.start()
        while sender.is_alive():
            started = time.perf_counter()
            assert client.get(server.url + "/ping").status_code == 200
            pings.append(time.perf_counter() - started)
        sender.join()

    assert [status for status, _ in big] == [200, 200, 200]

    assert offloaded(server) == before + 3
    # Structural: the helper that parsed them is another process than the server.
    helper = re.search(r"parsed in helper process (\d+)", server.log())
    assert helper is not None and int(helper.group(1)) != server.proc.pid
    # /ping kept answering while the bodies were parsed (latency figures: benchmarks, not here).
    assert len(pings) > 10


def alive(pid: int) -> bool:
    """Running or sleeping (a zombie waiting for its new parent to reap it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_the_helper_process_exits_when_the_server_is_killed(
    demo_bundle: Path, tmp_path: Path
) -> None:
    server = ServerProcess(demo_bundle, tmp_path / "server.log")
    try:
        server.wait_ready()
        deadline = time.monotonic() + 30
        while (found := re.search(r"parsed in helper process (\d+)", server.log())) is None:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        helper = int(found.group(1))
        server.proc.send_signal(signal.SIGKILL)  # no shutdown runs
        server.proc.wait()
        deadline = time.monotonic() + 30
        while alive(helper):
            assert time.monotonic() < deadline, "the helper outlived its server"
            time.sleep(0.1)
    finally:
        server.stop()
