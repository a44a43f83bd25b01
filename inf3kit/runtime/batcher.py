"""Dynamic batching: a bounded queue shared by the event loop and one thread per device worker.

The event loop only appends requests (rows of the batch dimension) to the queue; a request
larger than the compiled batch is appended as consecutive parts of at most one batch each and
reassembled in order. Each worker thread takes its next batch itself the moment its device is
free. Batching is adaptive: when no other device is busy, a free worker takes what is queued at
once, so at low load every request is dispatched as with a zero delay; while other devices are
busy (there is load), it waits for a full batch, up to ``max_delay`` and up to ``FILL_SHARE``
of a batch's device time. Requests that arrive while every device computes pile up, so the
next free worker finds its batch filled. Taking the batch
in the worker thread, not in an event-loop task, means the device never idles waiting for the
loop, which is busy parsing and answering HTTP. The worker pads to the compiled shape (the
device only accepts that shape), runs the batch and hands the rows back to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from inf3kit.runtime.backends import Backend
from inf3kit.runtime.buckets import ShapeBuckets
from inf3kit.runtime.metrics import Metrics

FILL_SHARE = 0.02
"""The longest a free device waits to fill its batch, as a share of a batch's device time: it
keeps every device at least 98% busy under load, however its clients come back."""


class QueueFull(Exception):
    """The request queue is at capacity; the caller should answer 429 at once."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its result was ready."""


@dataclass(slots=True)
class Job:
    """One request: input arrays (batch dim first), row count, deadline (``time.monotonic``)."""

    inputs: Sequence[np.ndarray]
    rows: int
    deadline: float
    future: asyncio.Future[list[np.ndarray]]
    part: bool = False  # one of several parts of a request larger than the batch
    bucket: int = 0
    enqueued: float = field(default_factory=time.monotonic)


def _expire(futures: Sequence[asyncio.Future[list[np.ndarray]]]) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(DeadlineExceeded())


class Batcher:
    """Forms batches for one model and runs them on its workers, off the event loop."""

    def __init__(
        self,
        backends: Sequence[Backend],
        input_shapes: Sequence[tuple[tuple[int, ...], np.dtype]],
        batch_size: int,
        max_delay_s: float,
        queue_size: int,
        metrics: Metrics,
        join_timeout_s: float = 5.0,
        buckets: ShapeBuckets | None = None,
    ) -> None:
        self._backends = list(backends)
        self._join_timeout = join_timeout_s
        self._buckets = buckets or ShapeBuckets.static(input_shapes)
        self.batch_size = batch_size
        self._max_delay = max_delay_s
        self._queue_size = queue_size
        self._metrics = metrics
        self._queues: list[deque[Job]] = [deque() for _ in range(len(self._buckets))]
        self._queued_rows = [0] * len(self._buckets)
        self._queued = 0  # jobs in all queues
        self._busy = 0  # workers running a batch
        self._compute_s: float | None = None  # device time per batch, a moving average
        self._cond = threading.Condition()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i, backend in enumerate(self._backends):
            thread = threading.Thread(
                target=self._work, args=(backend,), name=f"inf3kit-worker-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    async def stop(self, timeout_s: float | None = None) -> None:
        """Stop the workers once their current batch is done (requests are drained before).

        Waits at most ``timeout_s`` (default: ``join_timeout_s``) in all, however many workers
        there are; a worker still busy after that is a daemon thread and dies with the process.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        timeout = self._join_timeout if timeout_s is None else timeout_s
        await asyncio.to_thread(self._join, timeout)

    def _join(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Join every worker against one shared deadline, not ``timeout_s`` per worker."""
        deadline = clock() + max(0.0, timeout_s)
        for thread in self._threads:
            thread.join(max(0.0, deadline - clock()))

    async def infer(
        self,
        inputs: Sequence[np.ndarray],
        rows: int,
        timeout_s: float,
        dims: Mapping[str, int] | None = None,
    ) -> list[np.ndarray]:
        """Queue one request and wait for its rows of every output.

        A request of more rows than the compiled batch is queued as consecutive parts (views,
        not copies) whose outputs are joined in order. ``dims`` (bucketed models) picks the
        bucket; outputs come back cut to the request's own lengths. Raises :class:`QueueFull` at
        once when the queue is full and :class:`DeadlineExceeded` when ``timeout_s`` passes
        first; a request (or part) that expires while queued is never computed.
        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout_s
        bucket = self._buckets.choose(dims) if dims else 0
        size = self.batch_size
        jobs = [
            Job([a[start : start + size] for a in inputs], min(size, rows - start), deadline,
                loop.create_future(), rows > size, bucket)
            for start in range(0, rows, size)
        ]  # fmt: skip
        with self._cond:
            if self._queued >= self._queue_size and not self._drop_dead():
                raise QueueFull
            first = not self._queues[bucket]
            self._queues[bucket].extend(jobs)
            self._queued += len(jobs)
            self._queued_rows[bucket] += rows
            # Wake a worker only when it has something to decide: a first request (it may go
            # at once, or starts the delay clock), or a full batch.
            if first or self._queued_rows[bucket] >= size:
                self._cond.notify(len(jobs))
        futures = [job.future for job in jobs]
        timer = loop.call_later(timeout_s, _expire, futures)
        try:
            parts = [await future for future in futures]
        finally:
            timer.cancel()
            for future in futures:
                if not future.done():
                    future.cancel()  # a failed part: the rest is never computed
                elif not future.cancelled():
                    future.exception()  # retrieved, so asyncio logs nothing for it
        outputs = (
            parts[0] if len(parts) == 1 else [np.concatenate(o) for o in zip(*parts, strict=True)]
        )
        return self._buckets.trim(outputs, dims) if dims else outputs

    def _drop_dead(self) -> bool:
        """Free the slots of queued requests that expired or were cancelled (lock held).

        Without this a full queue would refuse new work until a worker got round to them.
        """
        now = time.monotonic()
        before = self._queued
        for i, queue in enumerate(self._queues):
            live = deque(j for j in queue if not j.future.done() and now < j.deadline)
            self._queued -= len(queue) - len(live)
            self._queued_rows[i] = sum(j.rows for j in live)
            self._queues[i] = live
        return self._queued < before

    # --- worker threads ---------------------------------------------------------------------

    def _pop(self, bucket: int) -> Job:
        job = self._queues[bucket].popleft()
        self._queued -= 1
        self._queued_rows[bucket] -= job.rows
        return job

    def _take(self, finished: bool) -> list[Job] | None:
        """Block until a batch is due; return its jobs in arrival order (None when closed).

        ``finished``: the calling worker has just finished a batch (it is no longer busy).
        """
        idle_since = time.monotonic()
        with self._cond:
            self._busy -= finished
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                for i, queue in enumerate(self._queues):
                    while queue and (queue[0].future.done() or now >= queue[0].deadline):
                        self._pop(i)
                heads = [(q[0].enqueued, i) for i, q in enumerate(self._queues) if q]
                if not heads:
                    self._cond.wait()
                    continue
                bucket = min(heads)[1]  # the bucket whose oldest request waited longest
                queue = self._queues[bucket]
                head = queue[0]
                # Fill only while other devices are busy, for at most the delay since the oldest
                # request arrived and a small share of a batch's device time since this device
                # went idle: it never idles long for company. Parts of a split request never
                # wait (their request is here in full).
                share = self._max_delay if self._compute_s is None else FILL_SHARE * self._compute_s
                due = min(head.enqueued + self._max_delay, idle_since + share)
                filling = (
                    self._busy and self._queued_rows[bucket] < self.batch_size and not head.part
                )
                if filling and now < due:
                    self._cond.wait(due - now)
                    continue
                jobs: list[Job] = []
                rows = 0
                while queue and rows + queue[0].rows <= self.batch_size:
                    job = self._pop(bucket)
                    if not job.future.done() and now < job.deadline:
                        jobs.append(job)
                        rows += job.rows
                if jobs:
                    self._busy += 1
                    return jobs

    def _work(self, backend: Backend) -> None:
        metrics = self._metrics
        finished = False
        while (jobs := self._take(finished)) is not None:
            finished = True
            rows = sum(j.rows for j in jobs)
            started = time.monotonic()
            for job in jobs:
                metrics.queue_seconds.observe(started - job.enqueued)
            try:
                outputs = backend.run(self._assemble(jobs, rows))
            except Exception as exc:
                self._reply(self._fail, jobs, exc)
                continue
            elapsed = time.monotonic() - started
            average = self._compute_s
            self._compute_s = elapsed if average is None else average + 0.2 * (elapsed - average)
            metrics.compute_seconds.observe(elapsed)
            metrics.executions.inc()
            metrics.inferences.inc(rows)
            self._reply(self._deliver, jobs, outputs)

    def _reply(self, callback: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        # RuntimeError: the loop closed during shutdown, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    def _assemble(self, jobs: Sequence[Job], rows: int) -> list[np.ndarray]:
        buckets, bucket = self._buckets, jobs[0].bucket
        shapes = buckets.input_shapes[bucket]
        whole = len(jobs) == 1 and rows == self.batch_size
        if whole and all(
            a.flags.writeable and a.shape[1:] == s
            for a, s in zip(jobs[0].inputs, shapes, strict=True)
        ):
            return list(jobs[0].inputs)
        batch = []
        for i, (shape, dtype, pad) in enumerate(
            zip(shapes, buckets.dtypes, buckets.pads, strict=True)
        ):
            full = (self.batch_size, *shape)
            if not buckets.bucketed:  # static shapes: only the unused rows need zeros
                buf = np.empty(full, dtype=dtype)
                offset = 0
                for job in jobs:
                    buf[offset : offset + job.rows] = job.inputs[i]
                    offset += job.rows
                buf[offset:] = 0
            else:  # bucketed: each request fills its own corner, the rest is the pad value
                buf = np.full(full, pad, dtype=dtype)
                offset = 0
                for job in jobs:
                    a = job.inputs[i]
                    buf[(slice(offset, offset + job.rows), *map(slice, a.shape[1:]))] = a
                    offset += job.rows
            batch.append(buf)
        return batch

    # --- back on the event loop -------------------------------------------------------------

    @staticmethod
    def _deliver(jobs: Sequence[Job], outputs: Sequence[np.ndarray]) -> None:
        offset = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result([out[offset : offset + job.rows] for out in outputs])
            offset += job.rows

    @staticmethod
    def _fail(jobs: Sequence[Job], exc: Exception) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)
