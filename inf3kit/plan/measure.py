"""Measure a bundle: in-process on this host's device, or over HTTP against a running server.

In-process runs the runtime's own loader, backend and batcher (no HTTP), one replica at a
time, so the numbers are per replica and free of client overhead. Over HTTP, closed-loop
clients call the Open Inference Protocol `infer` route of a server or a fleet's load balancer;
the numbers then include the network and the server's HTTP handling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import platform
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inf3kit.plan.profile import DevicePoint, LoadPoint, Profile, ProfileError
from inf3kit.runtime.backends import Backend
from inf3kit.runtime.bundle import open_bundle, verify_bundle
from inf3kit.runtime.datatypes import NUMPY_DTYPES
from inf3kit.runtime.hardware import probe_hardware
from inf3kit.runtime.loader import load_model
from inf3kit.runtime.manifest import Manifest, ManifestError
from inf3kit.runtime.settings import Settings

DEFAULT_SECONDS = 2.0


def default_concurrencies(batch_size: int) -> list[int]:
    """1, 2, 4, ... up to four compiled batches in flight (capped at 64): past the knee."""
    out, c = [], 1
    while c <= min(64, 4 * batch_size):
        out.append(c)
        c *= 2
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _percentile_ms(seconds: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds), q)) * 1000, 3)


def _point(batch: int, concurrency: int, latencies: list[float], elapsed: float) -> LoadPoint:
    if not latencies:
        raise ProfileError(
            f"no request completed at concurrency {concurrency} within {elapsed:.3f} s. "
            "Fix: measure for longer (--seconds)"
        )
    return LoadPoint(
        batch_size=batch,
        concurrency=concurrency,
        requests=len(latencies),
        seconds=round(elapsed, 4),
        samples_per_s=round(len(latencies) / elapsed, 2),
        p50_ms=_percentile_ms(latencies, 50),
        p99_ms=_percentile_ms(latencies, 99),
    )


def _zeros(manifest: Manifest, rows: int) -> list[np.ndarray]:
    return [np.zeros((rows, *s.shape), dtype=NUMPY_DTYPES[s.datatype]) for s in manifest.inputs]


def _device_point(backend: Backend, manifest: Manifest, batch: int, seconds: float) -> DevicePoint:
    inputs = _zeros(manifest, batch)
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while not times or time.perf_counter() < stop:
        t0 = time.perf_counter()
        backend.run(inputs)
        times.append(time.perf_counter() - t0)
    return DevicePoint(
        batch_size=batch,
        batches=len(times),
        batch_p50_ms=_percentile_ms(times, 50),
        samples_per_s=round(batch * len(times) / sum(times), 2),
    )


async def _closed_loop(
    backend: Backend,
    manifest: Manifest,
    batch: int,
    concurrency: int,
    seconds: float,
    max_delay_ms: float,
) -> LoadPoint:
    from inf3kit.runtime.batcher import Batcher
    from inf3kit.runtime.metrics import Metrics

    shapes = [(s.shape, NUMPY_DTYPES[s.datatype]) for s in manifest.inputs]
    batcher = Batcher(
        [backend], shapes, batch, max_delay_ms / 1000, max(1024, 2 * concurrency), Metrics("p")
    )
    batcher.start()
    row = _zeros(manifest, 1)
    latencies: list[float] = []
    start = time.perf_counter()
    stop = start + seconds

    async def client() -> None:
        while (t0 := time.perf_counter()) < stop:
            await batcher.infer(row, 1, 60.0)
            latencies.append(time.perf_counter() - t0)

    try:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    finally:
        await batcher.stop()
    return _point(batch, concurrency, latencies, time.perf_counter() - start)


def profile_in_process(
    bundle_path: Path,
    *,
    target: str | None = None,
    batch_sizes: Sequence[int] | None = None,
    concurrencies: Sequence[int] | None = None,
    seconds: float = DEFAULT_SECONDS,
    max_delay_ms: float = 2.0,
    torch_threads: int = 1,
) -> Profile:
    """Measure each compiled batch size of this host's variant, one replica, in this process.

    On CPU one replica runs with `torch_threads` threads (1 by default: one core, the closest
    CPU stand-in for one NeuronCore); on a Neuron host a replica owns its variant's cores.
    """
    bundle = open_bundle(bundle_path)
    try:
        verify_bundle(bundle)
        manifest = bundle.manifest
        host = probe_hardware(target)
        want = target or host.target
        variants = [v for v in manifest.variants if v.target == want]
        if batch_sizes:
            variants = [v for v in variants if v.batch_size in batch_sizes]
        if not variants:
            have = ", ".join(f"{v.target}/b{v.batch_size}" for v in manifest.variants) or "none"
            raise ManifestError(
                f"bundle {manifest.name!r} has no {want} variant"
                + (f" with batch size in {list(batch_sizes)}" if batch_sizes else "")
                + f" to measure on this host ({host.detail or host.target}); variants: {have}. "
                f"Fix: compile one with `inf3kit compile ... --target {want}`"
            )
        points: list[LoadPoint] = []
        device_points: list[DevicePoint] = []
        label = ""
        for variant in sorted(variants, key=lambda v: v.batch_size):
            settings = Settings(
                model_dir=str(bundle.root),
                target=want,
                max_batch_size=variant.batch_size,
                workers=1,
                torch_threads=torch_threads,
            )
            loaded = load_model(settings, host)
            backend = loaded.backends[0]
            label = backend.label
            b = variant.batch_size
            device_points.append(_device_point(backend, manifest, b, seconds / 4))
            for c in concurrencies or default_concurrencies(b):
                points.append(
                    asyncio.run(_closed_loop(backend, manifest, b, c, seconds, max_delay_ms))
                )
        first = variants[0]
        device = (
            f"{label} ({_cpu_name()}, {torch_threads} torch thread(s))" if want == "cpu" else label
        )
        return Profile(
            model=manifest.name,
            model_version=manifest.version,
            target=want,
            device=device,
            how="in-process (runtime batcher and backend, no HTTP)",
            when=_now(),
            neuron_cores_per_replica=first.neuron_cores_per_replica,
            model_bytes=max(bundle.path_of(v.file).stat().st_size for v in variants),
            max_delay_ms=max_delay_ms,
            points=tuple(points),
            device_points=tuple(device_points),
        )
    finally:
        bundle.remove()


class _HttpClient:
    """One keep-alive connection to a server; each closed-loop client thread owns one."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        conn_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._conn = conn_type(parts.netloc, timeout=60)
        self._prefix = parts.path.rstrip("/")

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self._conn.request(method, self._prefix + path, body, headers)
        response = self._conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise ProfileError(
                f"{method} {self._prefix + path} answered {response.status}: {payload[:200]!r}. "
                "Fix: check the URL and that the server serves this bundle"
            )
        return payload

    def close(self) -> None:
        self._conn.close()


def profile_http(
    bundle_path: Path,
    url: str,
    *,
    target: str,
    concurrencies: Sequence[int] | None = None,
    seconds: float = DEFAULT_SECONDS,
) -> Profile:
    """Measure a running server (or a load balancer in front of one replica) over HTTP."""
    bundle = open_bundle(bundle_path)
    try:
        manifest = bundle.manifest
        sizes = [bundle.path_of(v.file).stat().st_size for v in manifest.variants]
    finally:
        bundle.remove()
    route = f"/v2/models/{manifest.name}"
    client = _HttpClient(url)
    try:
        config = json.loads(client.request("GET", f"{route}/config"))
    finally:
        client.close()
    batch = int(config.get("max_batch_size") or 1)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": s.name,
                    "shape": [1, *s.shape],
                    "datatype": s.datatype,
                    "data": [0] * int(np.prod(s.shape)),
                }
                for s in manifest.inputs
            ]
        }
    ).encode()
    points = [
        _http_point(url, f"{route}/infer", body, batch, c, seconds)
        for c in concurrencies or default_concurrencies(batch)
    ]
    return Profile(
        model=manifest.name,
        model_version=manifest.version,
        target=target,
        device=f"server at {url}",
        how=f"http {url}",
        when=_now(),
        model_bytes=max(sizes, default=0),
        max_delay_ms=0,
        points=tuple(points),
    )


def _http_point(
    url: str, path: str, body: bytes, batch: int, concurrency: int, seconds: float
) -> LoadPoint:
    latencies: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop = start + seconds

    def client() -> None:
        conn = _HttpClient(url)
        try:
            while (t0 := time.perf_counter()) < stop:
                conn.request("POST", path, body)
                with lock:
                    latencies.append(time.perf_counter() - t0)
        except Exception as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return _point(batch, concurrency, latencies, time.perf_counter() - start)
