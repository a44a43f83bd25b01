"""Serving benchmark for the inf3kit runtime: prints figures, asserts nothing.

Sections, in one run:
  (a) serving efficiency against a SIMULATED accelerator (a benchmark instrument: each batch
      sleeps a fixed time and burns no host CPU, like a NeuronCore seen from the host), 1 and 4
      simulated cores, concurrency 1/16/64, plus the HTTP ceiling with a zero-time device;
  (b) the demo model on this CPU with the default settings: raw in-process throughput and
      served throughput/latency at concurrency 1/16/64;
  (c) dynamic batching on vs off at concurrency 16;
  (d) a big host: 24 simulated cores served by one process and by several (INF3KIT_PROCESSES);
  (e) server CPU microseconds per request (server CPU time / requests) for JSON, binary and
      gRPC bodies: the host-independent cost of the serving path.

Load comes from Triton's perf_analyzer when it can run (see docs/benchmarks.md for the
install), else from an aiohttp client of ours; the report says which. The server is pinned to
CPU 0 and the load generator to CPU 1 (`taskset`), so they do not fight for a core.

    .venv/bin/python benchmarks/serving.py [--quick] [--loadgen auto|perf_analyzer|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inf3kit.runtime.commands import compile_bundle  # noqa: E402

PERF_VENV = REPO / ".venv" / "opt" / "perf"
PERF_BIN = PERF_VENV / "bin" / "perf_analyzer"
SERVER_CPU, CLIENT_CPU = "0", "1"
BATCH = 16
SIM_MS = 30.0


@dataclass
class Result:
    throughput: float
    p50_ms: float
    p99_ms: float
    utilisation: float | None = None
    avg_batch: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def perf_env() -> dict[str, str]:
    libs = sorted(PERF_VENV.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    env = dict(os.environ)
    if libs:
        env["LD_LIBRARY_PATH"] = ":".join([str(libs[0]), env.get("LD_LIBRARY_PATH", "")])
    return env


def perf_analyzer_works() -> bool:
    if not PERF_BIN.exists():
        return False
    probe = subprocess.run(
        [str(PERF_BIN), "--help"], env=perf_env(), capture_output=True, text=True, check=False
    )
    return "measurement-interval" in probe.stdout + probe.stderr


class Server:
    """`python -m inf3kit.runtime` pinned to ``cpus``, with metrics and CPU-time sampling."""

    def __init__(self, bundle: Path, cpus: str = SERVER_CPU, **env: str) -> None:
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "INF3KIT_MODEL_DIR": str(bundle),
            "INF3KIT_HOST": "127.0.0.1",
            "INF3KIT_PORT": str(self.port),
            "INF3KIT_TORCH_THREADS": "1",
            "INF3KIT_LOG_LEVEL": "warning",
            "INF3KIT_GRPC_PORT": str(self.grpc_port),
            **env,
        }
        cmd = ["taskset", "-c", cpus, sys.executable, "-m", "inf3kit.runtime", "serve"]
        self.proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v2/health/ready").status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready")

    def counters(self) -> dict[str, float]:
        wanted = {
            "inf3kit_compute_duration_seconds_sum": "compute",
            "inf3kit_execution_count_total": "batches",
            "inf3kit_inference_count_total": "samples",
        }
        values = {}
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            name = line.split("{", 1)[0]
            if name in wanted:
                values[wanted[name]] = float(line.split()[-1])
        return values

    def pids(self) -> list[int]:
        """The server process and, with several processes, the ones it forked."""
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of every server process so far."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def answered(self) -> float:
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith("inf3kit_request_success_total"):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def device_figures(
    server: Server, before: dict[str, float], seconds: float, workers: int
) -> tuple[float, float]:
    """(device utilisation, average batch) from server counters since ``before``."""
    after = server.counters()
    batches = after["batches"] - before["batches"]
    util = (after["compute"] - before["compute"]) / (seconds * workers)
    return util, (after["samples"] - before["samples"]) / batches if batches else 0.0


def run_perf_analyzer(
    server: Server,
    model: str,
    concurrency: int,
    seconds: float,
    workers: int,
    protocol: str = "http",
    client_cpus: str = CLIENT_CPU,
) -> Result:
    """perf_analyzer at one concurrency; a run too noisy to stabilise is retried looser once."""
    for window, stability in ((seconds, 25), (2 * seconds, 50)):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.csv"
            cmd = [
                "taskset", "-c", client_cpus, str(PERF_BIN), "-m", model, "-i", protocol,
                "-u", f"127.0.0.1:{server.grpc_port if protocol == 'grpc' else server.port}",
                "--concurrency-range", str(concurrency),
                "--measurement-interval", str(int(window * 1000)), "--max-trials", "8",
                "-s", str(stability), "-f", str(report),
            ]  # fmt: skip
            before, started = server.counters(), time.monotonic()
            done = subprocess.run(cmd, env=perf_env(), capture_output=True, text=True, check=False)
            if done.returncode == 0:
                util, avg_batch = device_figures(
                    server, before, time.monotonic() - started, workers
                )
                with report.open() as fh:
                    row = next(csv.DictReader(fh))
                return Result(
                    float(row["Inferences/Second"]),
                    float(row["p50 latency"]) / 1000,
                    float(row["p99 latency"]) / 1000,
                    util,
                    avg_batch,
                )
    raise RuntimeError(f"perf_analyzer failed:\n{done.stdout}\n{done.stderr}")


async def _aiohttp_load(url: str, model: str, concurrency: int, seconds: float) -> Result:
    import aiohttp
    import orjson

    body = orjson.dumps(
        {"inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [1, 32], "data": [0.5] * 32}]}
    )
    json = {"Content-Type": "application/json"}
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def client() -> None:
            while (now := time.perf_counter()) < stop_at:
                async with session.post(f"/v2/models/{model}/infer", data=body, headers=json) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"status {r.status}")
                if now >= warm_until:
                    latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    measured = stop_at - warm_until
    return Result(
        len(latencies) / measured,
        statistics.median(latencies) * 1000,
        float(np.percentile(latencies, 99)) * 1000,
    )


def run_aiohttp(
    server: Server,
    model: str,
    concurrency: int,
    seconds: float,
    workers: int,
    client_cpus: str = CLIENT_CPU,
) -> Result:
    os.sched_setaffinity(0, {int(c) for c in client_cpus.split(",")})
    before, started = server.counters(), time.monotonic()
    result = asyncio.run(_aiohttp_load(server.url, model, concurrency, seconds))
    result.utilisation, result.avg_batch = device_figures(
        server, before, time.monotonic() - started, workers
    )
    return result


def measure(
    server: Server,
    model: str,
    c: int,
    seconds: float,
    loadgen: str,
    workers: int,
    client_cpus: str = CLIENT_CPU,
) -> Result:
    if loadgen == "perf_analyzer":
        return run_perf_analyzer(server, model, c, seconds, workers, client_cpus=client_cpus)
    return run_aiohttp(server, model, c, seconds, workers, client_cpus)


def raw_throughput(bundle: Path, batch: int, seconds: float = 3.0) -> float:
    """In-process samples/s of the TorchScript file at its compiled batch size, 1 thread, CPU 0."""
    import torch

    os.sched_setaffinity(0, {int(SERVER_CPU)})
    torch.set_num_threads(1)
    module = torch.jit.load(str(bundle / f"model-cpu-b{batch}.pt")).eval()
    x = torch.randn(batch, 32)
    with torch.inference_mode():
        for _ in range(50):
            module(x)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            module(x)
            runs += 1
    return runs * batch / (time.perf_counter() - started)


def section_a(bundle: Path, seconds: float, loadgen: str) -> None:
    print(
        f"\n(a) SIMULATED accelerator (benchmark instrument): {SIM_MS:g} ms per batch of {BATCH},"
    )
    print("    no host CPU burnt while 'computing'; ideal = cores x batch / batch time;")
    print("    util = device busy time / (wall time x cores), from the server's compute metric")
    head = ("cores", "conc", "req/s", "ideal", "%ideal", "util", "avg batch", "p50 ms", "p99 ms")
    print("    " + " ".join(f"{h:>9}" for h in head))
    for cores in (1, 4):
        server = Server(bundle, INF3KIT_SIMULATED_DEVICE_MS=str(SIM_MS), INF3KIT_WORKERS=str(cores))
        try:
            ideal = cores * BATCH / (SIM_MS / 1000)
            for c in (1, 16, 64):
                r = measure(server, "sentiment", c, seconds, loadgen, cores)
                row = (
                    f"{cores}", f"{c}", f"{r.throughput:.1f}", f"{ideal:.0f}",
                    f"{100 * r.throughput / ideal:.1f}%", f"{100 * (r.utilisation or 0):.1f}%",
                    f"{r.avg_batch or 0:.2f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                )  # fmt: skip
                print("    " + " ".join(f"{v:>9}" for v in row))
        finally:
            server.stop()
    server = Server(bundle, INF3KIT_SIMULATED_DEVICE_MS="0", INF3KIT_WORKERS="4")
    try:
        for c in (16, 64):
            r = measure(server, "sentiment", c, seconds, loadgen, 4)
            print(
                f"    HTTP ceiling (zero-time device, 4 workers), c={c}: {r.throughput:.0f} req/s, "
                f"avg batch {r.avg_batch or 0:.2f}, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
            )
    finally:
        server.stop()


def section_b(bundle: Path, seconds: float, loadgen: str) -> Result:
    print("\n(b) demo model (examples/demo_model, MLP 32-64-2) on this CPU")
    print(
        f"    raw in-process, 1 torch thread on CPU {SERVER_CPU}: batch {BATCH}: "
        f"{raw_throughput(bundle, BATCH):.0f} samples/s; batch 1: "
        f"{raw_throughput(bundle, 1):.0f} samples/s"
    )
    print(f"    served: 1 worker, 1 torch thread; event loop and worker share CPU {SERVER_CPU}")
    print("    " + " ".join(f"{h:>9}" for h in ("conc", "req/s", "avg batch", "p50 ms", "p99 ms")))
    server = Server(bundle)
    results = {}
    try:
        for c in (1, 16, 64):
            r = results[c] = measure(server, "sentiment", c, seconds, loadgen, 1)
            row = (f"{c}", f"{r.throughput:.1f}", f"{r.avg_batch or 0:.2f}", f"{r.p50_ms:.2f}")
            print("    " + " ".join(f"{v:>9}" for v in (*row, f"{r.p99_ms:.2f}")))
    finally:
        server.stop()
    return results[16]


def section_c(bundle: Path, seconds: float, loadgen: str, on_cpu: Result) -> None:
    print(
        f"\n(c) batching on (batch-{BATCH} variant, max delay 2 ms) vs off (batch-1 variant), c=16"
    )
    server = Server(bundle, INF3KIT_MAX_BATCH_SIZE="1")
    try:
        off = measure(server, "sentiment", 16, seconds, loadgen, 1)
    finally:
        server.stop()
    print(
        f"    demo model on CPU: on {on_cpu.throughput:.0f} req/s (p99 {on_cpu.p99_ms:.1f} ms), "
        f"off {off.throughput:.0f} req/s (p99 {off.p99_ms:.1f} ms): "
        f"{on_cpu.throughput / off.throughput:.1f}x"
    )
    sim = {}
    for label, extra in (("on", {}), ("off", {"INF3KIT_MAX_BATCH_SIZE": "1"})):
        server = Server(bundle, INF3KIT_SIMULATED_DEVICE_MS=str(SIM_MS), **extra)
        try:
            sim[label] = measure(server, "sentiment", 16, seconds, loadgen, 1)
        finally:
            server.stop()
    print(
        f"    simulated device, 1 core: on {sim['on'].throughput:.0f} req/s, off "
        f"{sim['off'].throughput:.0f} req/s: {sim['on'].throughput / sim['off'].throughput:.1f}x"
    )


SEVERAL = [(4, "2", 64, SIM_MS), (24, "1", 512, 100.0), (24, None, 512, 100.0)]
"""(simulated cores, INF3KIT_PROCESSES or None for automatic, concurrency, ms per batch) for
section (d). 24 cores use 100 ms batches (3,840 req/s ideal): at 30 ms they would need 12,800
req/s, more than this 2-vCPU machine can serve and generate at once with any process count."""


def server_processes(server: Server) -> int:
    """Serving processes: the server and its forked servers, not its body-parsing helpers."""
    count = 0
    for pid in server.pids():
        with contextlib.suppress(OSError):
            count += b"inf3kit.runtime" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return max(1, count - 1) if count > 1 else 1


def section_d(bundle: Path, seconds: float, loadgen: str) -> None:
    print(
        f"\n(d) several processes: simulated cores, batches of {BATCH}; server and load generator "
        "share CPUs 0-1; CPU us/req = server CPU time / requests"
    )
    head = ("cores", "ms/batch", "processes", "conc", "req/s", "%ideal", "util", "avg batch")
    print("    " + " ".join(f"{h:>10}" for h in (*head, "p99 ms", "CPU us/req")))
    for cores, processes, c, ms in SEVERAL:
        ideal = cores * BATCH / (ms / 1000)
        extra = {"INF3KIT_PROCESSES": processes} if processes else {}
        server = Server(
            bundle,
            cpus="0,1",
            INF3KIT_SIMULATED_DEVICE_MS=str(ms),
            INF3KIT_WORKERS=str(cores),
            **extra,
        )
        try:
            count = server_processes(server)
            cpu, answered = server.cpu_seconds(), server.answered()
            r = measure(server, "sentiment", c, seconds, loadgen, cores, "0,1")
            us = 1e6 * (server.cpu_seconds() - cpu) / max(1.0, server.answered() - answered)
            row = (
                f"{cores}", f"{ms:g}", f"{count}{'' if processes else ' (auto)'}", f"{c}",
                f"{r.throughput:.0f}", f"{100 * r.throughput / ideal:.1f}%",
                f"{100 * (r.utilisation or 0):.1f}%", f"{r.avg_batch or 0:.2f}",
                f"{r.p99_ms:.1f}", f"{us:.0f}",
            )  # fmt: skip
            print("    " + " ".join(f"{v:>10}" for v in row))
        finally:
            server.stop()


def section_e(bundle: Path, seconds: float, loadgen: str) -> None:
    print(
        "\n(e) server CPU per request (CPU time of the server process / requests answered), "
        "zero-time simulated device, 4 workers, concurrency 16, server on CPU 0"
    )
    server = Server(bundle, INF3KIT_SIMULATED_DEVICE_MS="0", INF3KIT_WORKERS="4")
    try:
        runs = [("JSON body (aiohttp client)", "json")]
        if loadgen == "perf_analyzer":
            runs += [
                ("binary tensors, HTTP (perf_analyzer)", "http"),
                ("gRPC (perf_analyzer)", "grpc"),
            ]
        else:
            print("    binary and gRPC need perf_analyzer (see docs/benchmarks.md); not measured")
        for label, kind in runs:
            cpu, answered = server.cpu_seconds(), server.answered()
            if kind == "json":
                r = run_aiohttp(server, "sentiment", 16, seconds, 4)
            else:
                r = run_perf_analyzer(server, "sentiment", 16, seconds, 4, protocol=kind)
            us = 1e6 * (server.cpu_seconds() - cpu) / max(1.0, server.answered() - answered)
            print(f"    {label:<38} {us:6.1f} us/request ({r.throughput:.0f} req/s)")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (noisier)")
    parser.add_argument("--loadgen", choices=["auto", "perf_analyzer", "aiohttp"], default="auto")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 4.0
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "perf_analyzer" if perf_analyzer_works() else "aiohttp"
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin server and load generator")
    work = Path(tempfile.mkdtemp(prefix="inf3kit-bench-"))
    bundle = work / "sentiment"
    for batch in (1, BATCH):
        compile_bundle(
            "examples.demo_model.model:build",
            ["INPUT__0:FP32:32"],
            bundle,
            batch_size=batch,
            name="sentiment",
        )
    print(f"inf3kit serving benchmark: load generator {loadgen}, {os.cpu_count()} CPUs, server")
    print(f"pinned to CPU {SERVER_CPU}, load generator to CPU {CLIENT_CPU}, window {seconds:g} s")
    try:
        section_a(bundle, seconds, loadgen)
        on_cpu = section_b(bundle, seconds, loadgen)
        section_c(bundle, seconds, loadgen, on_cpu)
        section_d(bundle, seconds, loadgen)
        section_e(bundle, seconds, loadgen)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
