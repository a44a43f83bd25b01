"""Batching as a client sees it: requests above the compiled batch, adaptive dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ServerProcess, running_server

ECHO = "/v2/models/echo/infer"


@pytest.fixture(scope="module")
def echo_server(
    echo_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # A delay of an hour: only adaptive dispatch answers a lone request within the 5 s deadline.
    log = tmp_path_factory.mktemp("logs") / "batching.log"
    env = {"INF3KIT_MAX_DELAY_MS": "3600000", "INF3KIT_REQUEST_TIMEOUT_MS": "5000"}
    with running_server(echo_bundle, log, **env) as server:
        yield server


def values(rows: int) -> np.ndarray:
    return np.arange(rows * 4, dtype=np.float32).reshape(rows, 4)


def test_a_lone_request_is_dispatched_at_once_whatever_the_delay(
    echo_server: ServerProcess,
) -> None:
    for _ in range(3):
        body = {
            "inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]
        }
        r = httpx.post(echo_server.url + ECHO, json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [3.0] * 4


@pytest.mark.parametrize("rows", [17, 100, 1000])
def test_a_request_above_the_compiled_batch_is_split_and_answered_in_order(
    echo_server: ServerProcess, rows: int
) -> None:
    x = values(rows)
    body = {
        "inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [rows, 4], "data": x.tolist()}]
    }
    r = httpx.post(echo_server.url + ECHO, json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [rows, 4]
    np.testing.assert_array_equal(np.asarray(out["data"]).reshape(rows, 4), 2 * x + 1)


def test_many_sagemaker_instances_are_split_and_answered_in_order(
    echo_server: ServerProcess,
) -> None:
    x = values(333)
    r = httpx.post(echo_server.url + "/invocations", json={"instances": x.tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.asarray(r.json()["predictions"]), 2 * x + 1)


def test_binary_request_above_the_batch_is_split(echo_server: ServerProcess) -> None:
    import tritonclient.http as triton

    x = values(50)
    client = triton.InferenceServerClient(echo_server.url.removeprefix("http://"))
    tensor = triton.InferInput("INPUT__0", [50, 4], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer("echo", [tensor])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT__0"), 2 * x + 1)
