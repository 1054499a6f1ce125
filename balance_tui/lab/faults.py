"""Provides the chaos run's faults carried out on real processes: SIGKILL and a new member later,
SIGSTOP then SIGCONT, SIGTERM and a new member, `group-strategy` commands on members' standard
input (bursts paced to their planned offsets), and the lab's own broker killed and started again.
"""

from __future__ import annotations

import functools
import signal
import time
from collections import Counter
from datetime import datetime

from balance_tui.core.assignment import utc_now
from balance_tui.core.chaos import FaultRecord, Incident
from balance_tui.lab.options import POLL_S
from balance_tui.lab.processes import MemberProcess, tail
from balance_tui.lab.runs import GroupRun, LabRun
from balance_tui.lab.schedule import Schedule

#: A member asked to leave (restart) that is still running after this is killed.
LEAVE_TIMEOUT_S = 30.0
#: How long a fault waits for its targets (or the broker) to be back from an earlier fault, when that
#: fault's follow-up came later than planned (a replacement slow to start on a loaded machine), before
#: it is skipped.
TARGET_PATIENCE_S = 60.0


class FaultInjector:
    """Carries out each fault on the group's members, and records what exited without being asked to."""

    def __init__(self, lab: LabRun, group: GroupRun, slots: dict[int, MemberProcess], schedule: Schedule) -> None:
        self.lab = lab
        self.group = group
        #: Member slot (1..members) -> the process in it now.
        self.slots = slots
        self.schedule = schedule
        self.incidents: list[Incident] = []
        #: When the faults began (the times said are from then).
        self.started_at: datetime | None = None
        #: Members (and "producer") whose exit is known: asked to, or already recorded as an incident.
        self.exits_seen: set[str] = set()
        #: The strategy of the last group-wide switch written (the group's when no member says).
        self.commanded = lab.options.strategy
        #: Slots whose member was killed or asked to leave, and whose new member is not started yet.
        self.replacing: set[int] = set()
        #: The lab's broker is killed and not started again yet.
        self.broker_away = False

    def alias(self) -> dict[str, str]:
        return {m.consumer_id: m.name.upper() for m in self.group.members}

    def at_s(self, moment: datetime | None = None) -> float:
        assert self.started_at is not None
        return ((moment or utc_now()) - self.started_at).total_seconds()

    def check_members(self) -> None:
        """Record a member or the generator that exited without being asked to (an incident, not a stop)."""
        group = self.group
        for member in group.members:
            if member.leaving or member.alive or member.consumer_id in self.exits_seen:
                continue
            self.exits_seen.add(member.consumer_id)
            member.leaving = True
            text = f"exited by itself (code {member.process.returncode}): {tail(member.output_path, 4)}"
            self.incidents.append(Incident(utc_now(), member.consumer_id, text))
            self.lab.say(f"chaos: incident: {member.name} {text}")
        producer = group.producer
        if producer is not None and producer.poll() is not None and "producer" not in self.exits_seen:
            self.exits_seen.add("producer")
            text = f"exited by itself (code {producer.returncode}): {tail(group.directory / 'producer.log', 4)}"
            self.incidents.append(Incident(utc_now(), "producer", text))
            self.lab.say(f"chaos: incident: the traffic generator {text}")

    def member_in(self, record: FaultRecord, slot: int) -> MemberProcess | None:
        member = self.slots.get(slot)
        if member is None or not member.live:
            why = ("is stopped" if member is not None and member.frozen else
                   "is being replaced" if member is not None and member.leaving and member.alive else "is not running")
            name = member.name.upper() if member is not None else f"slot {slot}"
            record.skipped = f"{name} {why}"
            return None
        return member

    def write(self, member: MemberProcess, line: str) -> bool:
        stdin = member.process.stdin
        if stdin is None:
            return False
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except (OSError, ValueError):  # it died meanwhile
            return False
        return True

    def group_strategy(self) -> str:
        """The strategy the group is on now: most live members' (a group-wide switch changes no command line)."""
        live = self.group.live()
        for member in live:
            member.refresh()
        counts = Counter(m.strategy for m in live if m.strategy)
        return counts.most_common(1)[0][0] if counts else self.commanded

    def replace(self, record: FaultRecord, slot: int, old: MemberProcess) -> None:
        """A new member in the slot, as a deployment would start one: on the group's strategy of the moment
        (one started on the strategy the group left would be refused, as documented), with the old one's
        static id, if it had one."""
        strategy = self.group_strategy()
        (new,) = self.group.start_members(1, instance_ids=[old.instance_id], strategy=strategy)
        self.slots[slot] = new
        self.replacing.discard(slot)
        record.replacement, record.until = new.consumer_id, utc_now()
        if strategy != self.lab.options.strategy:
            record.notes.append(f"{new.name.upper()} started on {strategy}, the group's strategy then")
        self.lab.say(f"chaos: #{record.fault.number}: {new.name.upper()} ({strategy}) started in "
                     f"{old.name.upper()}'s place")

    def awaited(self, record: FaultRecord) -> str | None:
        """What the fault waits for before it can be carried out as planned: its targets back from an
        earlier fault (every slot, for a broker restart), or the broker; None when nothing."""
        if self.broker_away:
            return "the broker"
        slots = self.slots if record.fault.kind == "broker" else record.fault.slots
        waits = [f"{self.slots[slot].name.upper()}'s {'replacement' if slot in self.replacing else 'SIGCONT'}"
                 for slot in slots if slot in self.replacing or self.slots[slot].frozen]
        return ", ".join(waits) or None

    def carry_out(self, record: FaultRecord, waited_s: float = 0.0, waited_for: str | None = None) -> None:
        awaited = self.awaited(record)
        if awaited is not None and waited_s < TARGET_PATIENCE_S:
            self.schedule.hold_back(POLL_S, functools.partial(self.carry_out, record, waited_s + POLL_S,
                                                              waited_for or awaited))
            return
        if waited_for is not None:
            record.notes.append(f"waited {waited_s:.1f} s for {waited_for}, later than planned: "
                                f"the faults after it moved as much")
        record.shifted_s = self.schedule.shifted_s
        getattr(self, f"_{record.fault.kind}")(record)
        fault = record.fault
        if record.skipped:
            self.lab.say(f"chaos: #{fault.number} {fault.kind} skipped: {record.skipped}")
        else:
            targets = ", ".join(self.alias().get(t, t) for t in record.targets)
            self.lab.say(f"chaos: #{fault.number} at +{self.at_s(record.at):.1f} s: {fault.kind} {targets}".rstrip())

    # -- the faults ----------------------------------------------------------------------------------

    def _kill(self, record: FaultRecord) -> None:
        slot = record.fault.slots[0]
        member = self.member_in(record, slot)
        if member is None:
            return
        member.leaving = True
        record.at, record.targets = utc_now(), (member.consumer_id,)
        member.process.send_signal(signal.SIGKILL)
        member.process.wait(timeout=10)
        self.replacing.add(slot)
        self.schedule.after(record.fault.hold_s or 0.0, lambda: self.replace(record, slot, member))

    def _stop(self, record: FaultRecord) -> None:
        member = self.member_in(record, record.fault.slots[0])
        if member is None:
            return
        member.frozen = True
        record.at, record.targets = utc_now(), (member.consumer_id,)
        member.process.send_signal(signal.SIGSTOP)

        def thaw() -> None:
            if member.alive:
                member.process.send_signal(signal.SIGCONT)
            member.frozen = False
            record.until = utc_now()
            self.lab.say(f"chaos: #{record.fault.number}: SIGCONT {member.name.upper()}")

        self.schedule.after(record.fault.hold_s or 0.0, thaw)

    def _restart(self, record: FaultRecord) -> None:
        slot = record.fault.slots[0]
        member = self.member_in(record, slot)
        if member is None:
            return
        member.leaving = True
        record.at, record.targets = utc_now(), (member.consumer_id,)
        self.replacing.add(slot)
        member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + LEAVE_TIMEOUT_S

        def when_gone() -> None:
            if member.process.poll() is None and time.monotonic() < deadline:
                self.schedule.after(POLL_S, when_gone)
                return
            if member.process.poll() is None:
                member.process.kill()
                member.process.wait(timeout=10)
                record.notes.append(f"{member.name.upper()} ignored SIGTERM for {LEAVE_TIMEOUT_S:g} s: killed")
            elif member.process.returncode != 0:
                record.notes.append(f"{member.name.upper()} exited with code {member.process.returncode}")
            self.replace(record, slot, member)

        when_gone()

    def _switch(self, record: FaultRecord) -> None:
        member = self.member_in(record, record.fault.slots[0])
        if member is None:
            return
        record.at = utc_now()
        if not self.write(member, f"group-strategy {record.fault.strategies[0]}"):
            record.at, record.skipped = None, f"{member.name.upper()}'s standard input is closed"
            return
        self.commanded = record.fault.strategies[0]
        record.targets, record.offsets_s = (member.consumer_id,), (0.0,)

    def _burst(self, record: FaultRecord) -> None:
        fault = record.fault
        senders = [self.member_in(record, slot) for slot in fault.slots]
        if any(sender is None for sender in senders):
            return
        start = time.monotonic()
        record.at = utc_now()
        written, offsets = [], []
        for sender, strategy, offset in zip(senders, fault.strategies, fault.offsets_s, strict=False):
            assert sender is not None
            wait = start + offset - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # paces the burst's commands to their planned offsets
            if self.write(sender, f"group-strategy {strategy}"):
                self.commanded = strategy
                written.append(sender.consumer_id)
                offsets.append(round(time.monotonic() - start, 3))
            else:
                record.notes.append(f"{sender.name.upper()}'s standard input is closed: no {strategy} command")
        record.targets, record.offsets_s = tuple(written), tuple(offsets)

    def _broker(self, record: FaultRecord) -> None:
        lab = self.lab
        if lab.broker is None:
            record.skipped = "the cluster is not the lab's own broker"
            return
        record.at = utc_now()
        lab.kill_broker()
        self.broker_away = True
        engine = lab.engine_choice.engine if lab.engine_choice is not None else ""

        def back() -> None:
            began = time.monotonic()
            lab.start_broker_again()
            self.broker_away = False
            record.until = utc_now()
            record.notes.append("same data directory: data kept" if engine == "kafka"
                                else "a new, empty cluster (memory storage): the generator recreates the topic")
            # The plan counted the broker back as soon as it was started: what follows keeps its spacing.
            starting = time.monotonic() - began
            self.schedule.shift(starting)
            record.notes.append(f"it answered {starting:.1f} s after its start; the faults after it moved as much")
            lab.say(f"chaos: #{record.fault.number}: {lab.broker.label} back on {lab.bootstrap} "
                    f"after {starting:.1f} s")

        self.schedule.after(record.fault.hold_s or 0.0, back)

