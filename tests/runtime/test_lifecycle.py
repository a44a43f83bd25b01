"""Start-up refusal, back-pressure, deadlines and SIGTERM draining, on real server processes."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, refusal, running_server

from inf3kit.runtime.manifest import MANIFEST_NAME

ECHO = "/v2/models/echo/infer"


def echo_body(value: float, timeout_us: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [1, 4], "data": [value] * 4}]
    }
    if timeout_us is not None:
        body["parameters"] = {"timeout": timeout_us}
    return body


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not found")


def test_fails_when_one_byte_of_a_variant_is_flipped(demo_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    model = bundle / "model-cpu-b8.pt"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    code, statuses, log = refusal(bundle, tmp_path)
    assert code == 3
    assert 200 not in statuses
    assert "sha256 mismatch for 'model-cpu-b8.pt'" in log


def test_fails_when_only_a_neuron_variant_exists_on_cpu(demo_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["variants"][0]["target"] = "inf2"
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, statuses, log = refusal(bundle, tmp_path)
    assert code == 3
    assert 200 not in statuses
    assert "bundle 'sentiment' has only Neuron variants (inf2/b8)" in log
    assert "a Neuron variant is never run on CPU" in log


def test_fails_when_variant_file_is_missing(demo_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    (bundle / "model-cpu-b8.pt").unlink()
    code, _, log = refusal(bundle, tmp_path)
    assert code == 3
    assert "file 'model-cpu-b8.pt' is missing" in log


def test_full_queue_answers_429_at_once(echo_bundle: Path, tmp_path: Path) -> None:
    env = {"INF3KIT_SIMULATED_DEVICE_MS": "1000", "INF3KIT_QUEUE_SIZE": "2"}
    with (
        running_server(echo_bundle, tmp_path / "log", **env) as server,
        ThreadPoolExecutor(40) as pool,
    ):
        responses = list(
            pool.map(
                lambda i: httpx.post(server.url + ECHO, json=echo_body(i), timeout=30),
                range(40),
            )
        )
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}
    # At most 16 computing and 2 queued can be accepted.
    assert statuses.count(429) >= 22
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json() == {
        "error": "the request queue is full (2 requests waiting); retry with backoff"
    }
    assert rejected.headers["retry-after"] == "1"


def test_expired_request_gets_504_and_is_never_computed(echo_bundle: Path, tmp_path: Path) -> None:
    env = {"INF3KIT_SIMULATED_DEVICE_MS": "1000", "INF3KIT_MAX_DELAY_MS": "0"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, server.url + ECHO, json=echo_body(1), timeout=30)
            deadline = time.monotonic() + 10
            while metric(server, "inf3kit_queue_duration_seconds_count") < 1:
                assert time.monotonic() < deadline, "first request never started"
                time.sleep(0.01)
            late = httpx.post(server.url + ECHO, json=echo_body(2, timeout_us=100_000), timeout=30)
            assert first.result().status_code == 200
        assert (late.status_code, late.json()) == (
            504,
            {"error": "no result within the 100 ms deadline; the request was dropped"},
        )
        assert metric(server, "inf3kit_execution_count_total") == 1
        assert metric(server, "inf3kit_inference_count_total") == 1
        assert metric(server, 'inf3kit_request_failure_total{model="echo",reason="timeout"}') == 1


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(
    echo_bundle: Path, tmp_path: Path
) -> None:
    # 2 s per batch: the first request runs alone (nothing else is queued yet), and all 20 must
    # be in flight before it finishes, even on a loaded machine.
    env = {"INF3KIT_SIMULATED_DEVICE_MS": "2000", "INF3KIT_GRACE_SECONDS": "15"}
    server = ServerProcess(echo_bundle, tmp_path / "log", **env)
    try:
        server.wait_ready()
        with ThreadPoolExecutor(20) as pool:
            inflight = [
                pool.submit(httpx.post, server.url + ECHO, json=echo_body(i), timeout=30)
                for i in range(20)
            ]
            deadline = time.monotonic() + 10
            while metric(server, "inf3kit_inflight_requests") < 20:
                assert time.monotonic() < deadline, "requests never got in flight"
                time.sleep(0.01)
            server.proc.send_signal(signal.SIGTERM)
            ready = httpx.get(server.url + "/ping")
            late = httpx.post(server.url + ECHO, json=echo_body(99))
            statuses = [f.result().status_code for f in inflight]
        assert statuses == [200] * 20
        assert ready.status_code == 503
        assert (late.status_code, late.json()) == (
            503,
            {"error": "the server is shutting down; retry on another instance"},
        )
        assert server.proc.wait(timeout=20) == 0
    finally:
        server.stop()


def test_liveness_answers_while_the_device_is_busy(echo_bundle: Path, tmp_path: Path) -> None:
    # 3 s: long enough that two health checks answer first even on a loaded machine.
    env = {"INF3KIT_SIMULATED_DEVICE_MS": "3000"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server:
        done = threading.Event()

        def busy() -> None:
            httpx.post(server.url + ECHO, json=echo_body(1), timeout=30)
            done.set()

        thread = threading.Thread(target=busy)
        thread.start()
        while metric(server, "inf3kit_inflight_requests") < 1:
            time.sleep(0.01)
        assert httpx.get(server.url + "/ping").status_code == 200
        assert httpx.get(server.url + "/v2/health/live").status_code == 200
        assert not done.is_set()
        thread.join()


@pytest.mark.parametrize("port_var", ["SAGEMAKER_BIND_TO_PORT"])
def test_sagemaker_bind_to_port_wins(demo_bundle: Path, tmp_path: Path, port_var: str) -> None:
    from conftest import free_port

    port = free_port()
    server = ServerProcess(demo_bundle, tmp_path / "log", **{port_var: str(port)})
    server.url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready()
        assert httpx.get(server.url + "/ping").status_code == 200
    finally:
        server.stop()
