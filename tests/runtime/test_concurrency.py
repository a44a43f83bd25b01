"""2,000 requests from 64 concurrent clients: no errors, every answer belongs to its request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import httpx
import numpy as np
from conftest import running_server

REQUESTS = 2000
CLIENTS = 64


def payload(request_id: int) -> tuple[str, dict[str, object]]:
    """Alternate the two contracts; the row encodes the id so the answer identifies it."""
    row = [float(request_id), request_id + 0.25, -float(request_id), 7.0]
    if request_id % 2:
        return "/invocations", {"instances": [row]}
    tensor = {"name": "INPUT__0", "datatype": "FP32", "shape": [1, 4], "data": row}
    return "/v2/models/echo/infer", {"id": str(request_id), "inputs": [tensor]}


def answer(request_id: int, body: dict[str, object]) -> list[float]:
    if request_id % 2:
        return body["predictions"][0]  # type: ignore[index,no-any-return]
    assert body["id"] == str(request_id)
    return body["outputs"][0]["data"]  # type: ignore[index,no-any-return]


async def run_clients(url: str) -> list[tuple[int, int, list[float] | str]]:
    ids = iter(range(REQUESTS))
    results: list[tuple[int, int, list[float] | str]] = []
    # aiohttp (a tritonclient[http] dependency) rather than httpx: it keeps the client's CPU
    # share small on this 2-core machine.
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def worker() -> None:
            for request_id in ids:
                path, body = payload(request_id)
                async with session.post(path, json=body) as r:
                    got = answer(request_id, await r.json()) if r.status == 200 else await r.text()
                    results.append((request_id, r.status, got))

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return results


def test_2000_requests_from_64_clients_each_get_their_own_answer(
    echo_bundle: Path, tmp_path: Path
) -> None:
    env = {"INF3KIT_WORKERS": "2", "INF3KIT_TORCH_THREADS": "1"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server:
        results = asyncio.run(run_clients(server.url))
        metrics = httpx.get(server.url + "/metrics").text
    assert len(results) == REQUESTS
    errors = [(i, status, got) for i, status, got in results if status != 200]
    assert errors == []
    for request_id, _, got in results:
        expected = np.array([request_id, request_id + 0.25, -request_id, 7.0]) * 2 + 1
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"request {request_id}")
    assert sorted(i for i, _, _ in results) == list(range(REQUESTS))
    batches = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("inf3kit_execution_count_total")
    )
    assert batches < REQUESTS  # requests were really batched together
