"""Several serving processes on one port, for hosts with more NeuronCores than one process feeds.

One Python process answers about 7-10k requests/s on one host core (docs/benchmarks.md), while
an inf2.48xlarge has 24 NeuronCores and a trn2 host more. The supervisor binds the port once,
forks one server per group of NeuronCores (each sees only its group through
``NEURON_RT_VISIBLE_CORES``) and all of them accept on the shared socket. It replaces a process
that dies, forwards SIGTERM so every process drains, and exits 3 if the model cannot load.

Shared state is deliberately small: one byte of shared memory per process says "ready", so
every process answers ``/ping`` 200 only when all are ready; Prometheus metrics are written to
``PROMETHEUS_MULTIPROC_DIR`` files that any process aggregates when scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import mmap
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from types import FrameType

from inf3kit.runtime.app import State
from inf3kit.runtime.hardware import HostHardware
from inf3kit.runtime.server import EXIT_LOAD_FAILED, bind, build_server, new_event_loop
from inf3kit.runtime.settings import Settings

log = logging.getLogger("inf3kit.runtime")

CORES_PER_PROCESS = 4
"""Automatic sizing: one process per 4 NeuronCores (one host core answers ~7-10k requests/s,
four busy NeuronCores of a small model ask for a few thousand), at most one per host CPU."""

_RESPAWN_DELAY_S = 1.0  # before replacing a process that died within _QUICK_DEATH_S
_QUICK_DEATH_S = 10.0
_KILL_AFTER_S = 5.0  # past the grace, what is left is killed


def _core_list(spec: str) -> list[int]:
    """Expand a NEURON_RT_VISIBLE_CORES value such as ``0-3`` or ``0,2,4``."""
    cores: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        cores.extend(range(int(lo), int(hi or lo) + 1))
    return cores


def process_count(settings: Settings, host: HostHardware) -> int:
    """``INF3KIT_PROCESSES`` if set, else one per CORES_PER_PROCESS device cores, <= host CPUs.

    Device cores are the NeuronCores on a Neuron host, the simulated cores with the simulated
    device; a CPU model is served by one process (its workers already share the CPUs).
    """
    units = _device_units(settings, host)
    if settings.processes is not None:
        if units and settings.processes > units:
            raise ValueError(
                f"INF3KIT_PROCESSES={settings.processes}: more processes than the {units} device "
                "cores to share among them; each process needs at least one"
            )
        return settings.processes
    if not units:
        return 1
    cpus = len(os.sched_getaffinity(0))
    count = max(1, min(math.ceil(units / CORES_PER_PROCESS), cpus))
    while units % count:  # equal groups
        count -= 1
    return count


def _device_units(settings: Settings, host: HostHardware) -> int:
    if settings.simulated_device_ms is not None:
        return settings.workers
    return host.neuron_cores if host.has_neuron else 0


@dataclass(frozen=True)
class Slot:
    """What one process serves: its index, settings and NeuronCores."""

    index: int
    settings: Settings
    visible_cores: str | None


def plan(settings: Settings, host: HostHardware, count: int) -> list[Slot]:
    """Split the device cores into ``count`` contiguous groups, as evenly as possible."""
    if settings.simulated_device_ms is not None or not host.has_neuron:
        shares = _split(list(range(settings.workers)), count)
        return [
            Slot(i, settings.with_overrides(workers=max(1, len(share))), None)
            for i, share in enumerate(shares)
        ]
    spec = os.environ.get("NEURON_RT_VISIBLE_CORES")
    cores = _core_list(spec) if spec else list(range(host.neuron_cores))
    return [
        Slot(
            i,
            settings.with_overrides(neuron_cores=len(group)),
            ",".join(str(c) for c in group),
        )
        for i, group in enumerate(_split(cores, count))
    ]


def _split(items: list[int], count: int) -> list[list[int]]:
    size, extra = divmod(len(items), count)
    groups, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


class ReadyBoard:
    """One byte per process in memory shared across ``fork``: 1 while that process is ready."""

    def __init__(self, count: int) -> None:
        self._memory = mmap.mmap(-1, count)
        self.count = count

    def set(self, index: int, ready: bool) -> None:
        self._memory[index] = 1 if ready else 0

    def not_ready(self) -> str | None:
        ready = sum(self._memory[:])
        if ready == self.count:
            return None
        return f"{ready} of {self.count} server processes are ready; retry shortly"


class Supervisor:
    """Bind once, fork the servers, keep them running, drain them all on SIGTERM."""

    def __init__(self, settings: Settings, slots: list[Slot]) -> None:
        self.settings = settings
        self.slots = slots
        self.board = ReadyBoard(len(slots))
        self.pids: dict[int, Slot] = {}
        self.started: dict[int, float] = {}
        self.respawn_at: dict[int, float] = {}
        self.exit_code = 0
        self.stopping = False
        self.signals = 0
        self.metrics_dir = ""

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.stopping = True

    def run(self) -> int:
        self.metrics_dir = tempfile.mkdtemp(prefix="inf3kit-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        sock = bind(self.settings.host, self.settings.port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info(
            "listening on http://%s:%d with %d processes (model: %s)",
            self.settings.host,
            self.settings.port,
            len(self.slots),
            self.settings.model_dir,
        )
        try:
            for slot in self.slots:
                self._spawn(slot, sock)
            self._watch(sock)
        finally:
            sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.exit_code

    def _watch(self, sock: socket.socket) -> None:
        forwarded = 0
        kill_at = math.inf
        while self.pids or (not self.stopping and self.respawn_at):
            if self.stopping and forwarded < self.signals:
                forwarded = self.signals
                if forwarded == 1:
                    kill_at = time.monotonic() + self.settings.grace_seconds + _KILL_AFTER_S
                self._signal_all(signal.SIGTERM if forwarded == 1 else signal.SIGINT)
            if time.monotonic() > kill_at:
                log.warning("processes still running past the grace period; killing them")
                self._signal_all(signal.SIGKILL)
                kill_at = math.inf
            self._reap()
            now = time.monotonic()
            for index, when in list(self.respawn_at.items()):
                if self.stopping:
                    self.respawn_at.clear()
                elif now >= when:
                    del self.respawn_at[index]
                    self._spawn(self.slots[index], sock)
            time.sleep(0.05)

    def _signal_all(self, sig: int) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reap(self) -> None:
        from prometheus_client import multiprocess

        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.pids.pop(pid)
            lived = time.monotonic() - self.started.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            self.board.set(slot.index, False)
            multiprocess.mark_process_dead(pid, self.metrics_dir)
            if self.stopping:
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                    log.warning("server process %d (pid %d) exited with %d", slot.index, pid, code)
                continue
            if code == EXIT_LOAD_FAILED:
                log.error("server process %d could not load the model; stopping", slot.index)
                self.exit_code = code
                self.stopping = True
                self.signals = max(self.signals, 1)
                continue
            delay = _RESPAWN_DELAY_S if lived < _QUICK_DEATH_S else 0.0
            log.warning(
                "server process %d (pid %d) exited with %d after %.0f s; starting a replacement",
                slot.index,
                pid,
                code,
                lived,
            )
            self.respawn_at[slot.index] = time.monotonic() + delay

    def _spawn(self, slot: Slot, sock: socket.socket) -> None:
        pid = os.fork()
        if pid == 0:  # the child never returns into the supervisor
            code = 1
            try:
                code = self._child(slot, sock)
            except BaseException:
                log.exception("server process %d failed", slot.index)
            finally:
                os._exit(code)
        self.pids[pid] = slot
        self.started[pid] = time.monotonic()

    def _child(self, slot: Slot, sock: socket.socket) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        if slot.visible_cores is not None:
            os.environ["NEURON_RT_VISIBLE_CORES"] = slot.visible_cores
        _use_multiprocess_metrics()
        server, app = build_server(slot.settings)
        app.peers_not_ready = self.board.not_ready
        app.render_metrics = _render_multiprocess
        parent = os.getppid()

        def tick() -> None:
            self.board.set(slot.index, app.state is State.READY)
            app.sync_gauges()
            if os.getppid() != parent:  # the supervisor died: leave cleanly
                server.begin_shutdown()

        server.tick = tick
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(server.serve(sock))
        finally:
            self.board.set(slot.index, False)
            loop.close()


def _use_multiprocess_metrics() -> None:
    """Make every metric created from now on write to PROMETHEUS_MULTIPROC_DIR files.

    prometheus_client picks its value class from that variable when first imported, which in a
    forked process has already happened; its own comment says the choice only has to precede
    the first metric, and this process has created none yet.
    """
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()


def _render_multiprocess() -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
