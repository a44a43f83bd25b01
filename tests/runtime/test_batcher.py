"""The batcher in-process with recording backends: padding, splitting, carry-over, deadlines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from inf3kit.runtime.batcher import Batcher, DeadlineExceeded, QueueFull
from inf3kit.runtime.metrics import Metrics


class Recorder:
    """Returns its input + 1 and records every batch it saw."""

    label = "recorder"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[np.ndarray] = []
        self.entered = threading.Event()
        self._gate = gate

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.entered.set()
        if self._gate is not None:
            self._gate.wait(10)
        self.batches.append(inputs[0].copy())
        return [inputs[0] + 1]


def make(backend: Recorder, batch: int = 4, queue: int = 64, delay: float = 0.05) -> Batcher:
    return Batcher([backend], [((2,), np.dtype(np.float32))], batch, delay, queue, Metrics("t"))


def rows(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + 2 * n, dtype=np.float32).reshape(n, 2)


def test_requests_are_padded_batched_and_split_back() -> None:
    async def scenario() -> tuple[list[list[np.ndarray]], Recorder]:
        gate = threading.Event()
        backend = Recorder(gate)
        batcher = make(backend)
        batcher.start()
        busy = asyncio.ensure_future(batcher.infer([rows(100, 1)], 1, 5.0))
        await asyncio.to_thread(backend.entered.wait, 10)  # the worker is busy: requests queue
        sizes = [1, 2, 3, 1]
        pending = [batcher.infer([rows(10 * i, n)], n, 5.0) for i, n in enumerate(sizes)]
        waiting = asyncio.gather(*pending)
        await asyncio.sleep(0.01)
        gate.set()
        results = await waiting
        await busy
        await batcher.stop()
        return results, backend

    results, backend = asyncio.run(scenario())
    for i, (n, result) in enumerate(zip([1, 2, 3, 1], results, strict=True)):
        np.testing.assert_array_equal(result[0], rows(10 * i, n) + 1)
    assert all(b.shape == (4, 2) for b in backend.batches)
    # 1 + 2 fit in the batch after the busy one; 3 does not fit and is carried to the next.
    assert [int((b.sum(axis=1) != 0).sum()) for b in backend.batches] == [1, 3, 4]
    np.testing.assert_array_equal(backend.batches[1][3], [0, 0])


def test_a_request_larger_than_the_batch_is_split_and_joined_in_order() -> None:
    async def scenario() -> tuple[list[list[np.ndarray]], Recorder]:
        backend = Recorder()
        batcher = make(backend, batch=4, delay=0)
        batcher.start()
        results = await asyncio.gather(
            batcher.infer([rows(0, 10)], 10, 5.0), batcher.infer([rows(1000, 3)], 3, 5.0)
        )
        await batcher.stop()
        return results, backend

    results, backend = asyncio.run(scenario())
    np.testing.assert_array_equal(results[0][0], rows(0, 10) + 1)
    np.testing.assert_array_equal(results[1][0], rows(1000, 3) + 1)
    assert all(b.shape == (4, 2) for b in backend.batches)
    assert sum(int((b.sum(axis=1) != 0).sum()) for b in backend.batches) == 13


def test_adaptive_batching_dispatches_a_lone_request_at_once() -> None:
    """With a long delay, a request on an idle worker runs at once: nothing is waited for."""

    async def scenario() -> Recorder:
        backend = Recorder()
        batcher = make(backend, batch=4, delay=3600.0)
        batcher.start()
        for i in range(3):
            await batcher.infer([rows(i, 1)], 1, 5.0)
        await batcher.stop()
        return backend

    backend = asyncio.run(scenario())
    assert [b[0].tolist() for b in backend.batches] == [[0, 1], [1, 2], [2, 3]]


def test_full_queue_and_expired_requests_are_never_computed() -> None:
    async def scenario() -> tuple[list[object], Recorder]:
        gate = threading.Event()
        backend = Recorder(gate)
        batcher = make(backend, batch=1, queue=1, delay=0)
        batcher.start()
        first = asyncio.ensure_future(batcher.infer([rows(0, 1)], 1, 5.0))
        await asyncio.to_thread(backend.entered.wait, 10)  # it occupies the only worker
        expiring = asyncio.ensure_future(batcher.infer([rows(2, 1)], 1, 0.01))
        await asyncio.sleep(0)  # it fills the one-slot queue
        with pytest.raises(QueueFull):
            await batcher.infer([rows(4, 1)], 1, 5.0)
        outcomes: list[object] = []
        try:
            await expiring
        except DeadlineExceeded as exc:
            outcomes.append(exc)
        gate.set()
        outcomes.append(await first)
        outcomes.append(await batcher.infer([rows(6, 1)], 1, 5.0))
        await batcher.stop()
        return outcomes, backend

    outcomes, backend = asyncio.run(scenario())
    assert isinstance(outcomes[0], DeadlineExceeded)
    # The expired request never reached the device; the ones around it did.
    assert [b.tolist() for b in backend.batches] == [rows(0, 1).tolist(), rows(6, 1).tolist()]


class Counting:
    """Counts the batches that entered the device; each waits for ``gate``."""

    label = "counting"

    def __init__(self, gate: threading.Event) -> None:
        self.entered = threading.Semaphore(0)
        self._gate = gate

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.entered.release()
        self._gate.wait(10)
        return [inputs[0] + 1]


def test_a_free_device_waits_for_company_only_a_share_of_a_batch_time() -> None:
    """With another device busy, a lone request goes after 2% of a batch's device time, not
    after the (hour-long) delay: the free device never idles long waiting to fill."""

    async def scenario() -> bool:
        gate = threading.Event()
        gate.set()
        device = Counting(gate)
        shapes = [((2,), np.dtype(np.float32))]
        batcher = Batcher([device, device], shapes, 4, 3600.0, 64, Metrics("t"))
        batcher.start()
        await batcher.infer([rows(0, 1)], 1, 5.0)  # measures a batch's device time
        device.entered.acquire()
        gate.clear()
        first = asyncio.ensure_future(batcher.infer([rows(2, 1)], 1, 5.0))
        await asyncio.to_thread(device.entered.acquire, True, 5)  # one device is busy
        second = asyncio.ensure_future(batcher.infer([rows(4, 1)], 1, 5.0))
        started = await asyncio.to_thread(device.entered.acquire, True, 5)
        gate.set()
        await asyncio.gather(first, second)
        await batcher.stop()
        return started

    assert asyncio.run(scenario())  # the second entered while the first was still running
