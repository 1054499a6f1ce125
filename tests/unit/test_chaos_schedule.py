"""The chaos run's clock and a fault that waits for its target to be back, on real processes."""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from balance_tui.core.assignment import utc_now
from balance_tui.core.chaos import Fault, FaultRecord
from balance_tui.lab.faults import FaultInjector
from balance_tui.lab.processes import MemberProcess
from balance_tui.lab.schedule import Schedule


def test_a_held_back_fault_moves_the_plan_after_it_but_not_the_follow_ups() -> None:
    schedule, done = Schedule(), []
    start = time.monotonic()

    def first() -> None:
        done.append("first")
        schedule.hold_back(0.05, lambda: done.append("first, held"))

    # All three came due late (in the past): what decides is the order the plan and the follow-ups keep.
    schedule.at(start - 1.0, first, planned=True)
    schedule.at(start - 0.9, lambda: done.append("follow-up"))
    schedule.at(start - 0.8, lambda: done.append("second"), planned=True)
    schedule.run(between=lambda: None)
    assert done == ["first", "follow-up", "first, held", "second"]
    assert schedule.shifted_s >= 1.0  # the plan moved by the first fault's lateness and its wait


def member(tmp_path: Path, name: str) -> MemberProcess:
    # `cat` stands in for a member: it can be stopped and continued, and echoes the commands it reads.
    output = tmp_path / f"{name}.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink)
    return MemberProcess(name, f"balance-worker-{name}", tmp_path / f"{name}.jsonl", output, process)


def test_a_switch_aimed_at_a_member_whose_sigcont_comes_late_waits_for_it(tmp_path: Path) -> None:
    target = member(tmp_path, "w1")
    said: list[str] = []
    lab: Any = SimpleNamespace(options=SimpleNamespace(strategy="range"), say=said.append, broker=None)
    group: Any = SimpleNamespace(members=[target])
    schedule = Schedule()
    injector = FaultInjector(lab, group, {1: target}, schedule)
    injector.started_at = utc_now()
    # The stop's SIGCONT comes after the switch was planned: as when an earlier fault ran late.
    stop = FaultRecord(Fault(1, 0.0, "stop", (1,), hold_s=0.4))
    switch = FaultRecord(Fault(2, 0.1, "switch", (1,), ("roundrobin",), (0.0,)))
    start = time.monotonic()
    for record in (stop, switch):
        schedule.at(start + record.fault.at_s, functools.partial(injector.carry_out, record), planned=True)
    try:
        schedule.run(between=lambda: None)
    finally:
        target.process.stdin.close()  # type: ignore[union-attr]
        target.process.wait(timeout=10)
    assert switch.skipped is None, switch.skipped
    assert stop.until is not None and switch.at is not None and switch.at >= stop.until
    assert any("waited" in note and "W1's SIGCONT" in note for note in switch.notes), switch.notes
    assert target.output_path.read_text() == "group-strategy roundrobin\n"
    assert injector.awaited(switch) is None


def test_a_broker_restart_waits_for_every_member_and_any_fault_for_the_broker(tmp_path: Path) -> None:
    first, second = member(tmp_path, "w1"), member(tmp_path, "w2")
    lab: Any = SimpleNamespace(options=SimpleNamespace(strategy="range"), say=lambda text: None, broker=None)
    injector = FaultInjector(lab, SimpleNamespace(members=[first, second]), {1: first, 2: second}, Schedule())
    try:
        broker = FaultRecord(Fault(1, 0.0, "broker", hold_s=1.0))
        switch = FaultRecord(Fault(2, 0.0, "switch", (1,), ("range",), (0.0,)))
        injector.replacing.add(2)
        assert injector.awaited(broker) == "W2's replacement"
        assert injector.awaited(switch) is None  # slot 1 has nothing to come back from
        injector.replacing.clear()
        injector.broker_away = True
        assert injector.awaited(switch) == "the broker"
    finally:
        for process in (first.process, second.process):
            process.kill()
            process.wait(timeout=10)
