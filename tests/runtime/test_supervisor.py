"""Process sizing and core planning for multi-process serving (the processes: test_network)."""

from __future__ import annotations

import pytest

from inf3kit.runtime.hardware import HostHardware
from inf3kit.runtime.settings import Settings
from inf3kit.runtime.supervisor import ReadyBoard, plan, process_count

NEURON_24 = HostHardware("inf2", 24, True, "test")
CPU = HostHardware("cpu", 0, False, "test")


@pytest.mark.parametrize(
    ("host", "settings", "cpus", "count"),
    [
        (NEURON_24, Settings(), 192, 6),  # one process per 4 NeuronCores
        (NEURON_24, Settings(), 4, 4),  # at most one per host CPU
        (NEURON_24, Settings(), 5, 4),  # equal groups: 24 % 5 != 0
        (HostHardware("inf2", 2, True, "test"), Settings(), 4, 1),
        (CPU, Settings(workers=8), 64, 1),  # a CPU model: one process
        (CPU, Settings(workers=24, simulated_device_ms=30), 192, 6),
        (NEURON_24, Settings(processes=3), 1, 3),  # the setting wins
    ],
)
def test_process_count(
    monkeypatch: pytest.MonkeyPatch, host: HostHardware, settings: Settings, cpus: int, count: int
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)))
    assert process_count(settings, host) == count


def test_fails_when_there_are_more_processes_than_cores() -> None:
    with pytest.raises(ValueError) as err:
        process_count(Settings(processes=25), NEURON_24)
    assert str(err.value) == (
        "INF3KIT_PROCESSES=25: more processes than the 24 device cores to share among them; "
        "each process needs at least one"
    )


def test_plan_gives_each_process_its_own_neuron_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3,8-9")
    slots = plan(Settings(), HostHardware("inf2", 6, True, "test"), 4)
    assert [s.visible_cores for s in slots] == ["0,1", "2,3", "8", "9"]
    assert [s.settings.neuron_cores for s in slots] == [2, 2, 1, 1]


def test_plan_splits_simulated_cores() -> None:
    slots = plan(Settings(workers=24, simulated_device_ms=30), CPU, 6)
    assert [s.settings.workers for s in slots] == [4] * 6
    assert {s.visible_cores for s in slots} == {None}


def test_ready_board_is_ready_only_when_every_process_is() -> None:
    board = ReadyBoard(3)
    board.set(0, True)
    board.set(2, True)
    assert board.not_ready() == "2 of 3 server processes are ready; retry shortly"
    board.set(1, True)
    assert board.not_ready() is None
