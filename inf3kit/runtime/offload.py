"""Parse large request bodies, and encode their answers, in a helper process.

orjson and numpy hold the GIL for the whole of one call: parsing 16 MiB of JSON is a single call
of about 0.1 s, so a thread would not free the event loop for that long, and /ping would wait.
A helper process does free it. Only bytes and numpy arrays cross the pipe (a copy, no parse),
and the loop keeps answering while the helper works.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np

from inf3kit.runtime.codec import encode_response, parse_body
from inf3kit.runtime.manifest import Manifest, parse_manifest
from inf3kit.runtime.protocol import InferRequest, RequestError, Schema

log = logging.getLogger("inf3kit.runtime")
T = TypeVar("T")

OFFLOAD_BODY_BYTES = 512 * 1024
"""Bodies from this size go to the helper: below it, parsing takes a few milliseconds and the
round trip to the helper would cost more than it saves."""

_schema: Schema | None = None  # in the helper process only


def _init(manifest_json: str, max_batch_size: int, parent: int) -> None:
    global _schema
    _schema = Schema(parse_manifest(manifest_json), max_batch_size)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """Stop when the server is gone: a server killed outright never shuts its pool down, and
    the helper, which holds both ends of its own work queue, would otherwise wait forever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _pid() -> int:
    return os.getpid()


def _parse(body: bytes, media: str, header_length: int | None, sagemaker: bool) -> InferRequest:
    assert _schema is not None
    return parse_body(_schema, body, media, header_length, sagemaker)


def _encode(
    request: InferRequest, results: Sequence[np.ndarray], answer: str
) -> tuple[bytes, int | None, str]:
    assert _schema is not None
    return encode_response(_schema, request, results, answer)


class Offloader:
    """One helper process (spawned, so no thread state is forked) with the model's schema."""

    def __init__(self, manifest: Manifest, max_batch_size: int) -> None:
        self._args = (manifest.to_json(), max_batch_size, os.getpid())
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(1, mp_context=context, initializer=_init, initargs=self._args)
        pool.submit(_pid).add_done_callback(
            lambda f: log.info(
                "bodies from %d bytes are parsed in helper process %s",
                OFFLOAD_BODY_BYTES,
                f.result() if f.exception() is None else f"failing: {f.exception()}",
            )
        )
        return pool

    async def parse(
        self, body: bytes, media: str, header_length: int | None, sagemaker: bool
    ) -> InferRequest:
        return await self._run(_parse, body, media, header_length, sagemaker)

    async def encode(
        self, request: InferRequest, results: Sequence[np.ndarray], accept: str
    ) -> Any:
        return await self._run(_encode, request, results, accept)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except BrokenProcessPool:
            # The helper died (out of memory?): start another for the next request.
            log.error("the body-parsing helper process died; starting a new one")
            self._pool.shutdown(wait=False)
            self._pool = self._new_pool()
            raise RequestError(503, "the server could not parse this body now; retry") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
