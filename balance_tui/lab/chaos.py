"""`balance-tui lab chaos`: faults at seeded times on real member processes, then convergence and `verify`.

The schedule comes from `core.chaos.plan_faults` (the seed alone decides it). A `ChaosRun`
starts the members (their standard input a pipe, for `group-strategy` commands), waits for the
group's first assignment, then carries out each fault at its time with real signals and
processes: SIGKILL and a new member later, SIGSTOP then SIGCONT, SIGTERM and a new member,
commands written on members' stdin, and the lab's own broker killed and started again on the
same port. A member or the traffic generator that exits by itself is recorded as an incident,
not a reason to stop. Afterwards it waits, with a deadline, for the group to converge, stops
the traffic, waits for the lag to drain, and runs `balance-tui verify` against the changelog,
then against the union of the exports the members write as they leave. How each number is
measured: docs/lab.md, "lab chaos".
"""

from __future__ import annotations

import heapq
import itertools
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from balance_tui.core.assignment import iso_ms, utc_now
from balance_tui.core.chaos import (
    ChaosOutcome,
    FaultRecord,
    Incident,
    MemberView,
    VerifyVerdict,
    convergence_problem,
    find_silences,
    lab_facts,
    measure_faults,
    plan_faults,
    quiet_seconds,
    render_chaos_table,
    verdict_from_verify_json,
)
from balance_tui.core.formatting import jsonable
from balance_tui.lab.measure import distribution_text
from balance_tui.lab.options import PARTITIONS, POLL_S, LabStepFailed
from balance_tui.lab.processes import MemberProcess, stop_processes, tail
from balance_tui.lab.runs import GroupRun, LabRun

#: After the traffic stops: how long the members may take to consume what is left.
DRAIN_TIMEOUT_S = 60.0
#: How long verify may keep saying "not yet applied" (members still writing their last changelog records).
CATCH_UP_TIMEOUT_S = 60.0
#: A member asked to leave (restart) that is still running after this is killed.
LEAVE_TIMEOUT_S = 30.0


class ChaosRun:
    """One chaos run on one group: the plan, what was done, and what came of it."""

    def __init__(self, lab: LabRun) -> None:
        options = lab.options
        self.lab = lab
        self.plan = plan_faults(options.seed, options.duration_s, options.faults, options.members,
                                options.session_timeout_ms, options.strategy)
        self.records: list[FaultRecord] = []
        self.incidents: list[Incident] = []
        self.group: GroupRun | None = None
        #: Member slot (1..members) -> the process in it now.
        self.slots: dict[int, MemberProcess] = {}
        self.started_at: datetime | None = None
        self.faults_done_at: datetime | None = None
        self.converged_at: datetime | None = None
        self.convergence_problem: str | None = None
        self.distribution = ""
        self.drain = ""
        #: When the lab began taking the group down: later lines are the clean leave.
        self.ended_at: datetime | None = None
        self.verdicts: list[VerifyVerdict] = []
        self.outcome: ChaosOutcome | None = None
        self._t0 = 0.0
        self._actions: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._exits_seen: set[str] = set()
        #: Seconds the remaining schedule was moved back (a broker that took long to start).
        self._shift_s = 0.0
        #: The strategy of the last group-wide switch written (the group's when no member says).
        self._commanded = lab.options.strategy

    # -- the run -------------------------------------------------------------------------------------

    def run(self) -> None:
        lab, options, plan = self.lab, self.lab.options, self.plan
        lab.say(f"chaos: seed {plan.seed} (replay with --seed {plan.seed}), {len(plan.faults)} fault(s) in "
                f"{plan.duration_s:g} s on {plan.members} members")
        for fault in plan.faults:
            lab.say(f"  #{fault.number} at +{fault.at_s:.1f} s: {fault.describe()}")
        if plan.left_out:
            lab.say(f"  no room for: {', '.join(plan.left_out)} (a longer --duration makes room)")
        group = lab.group("chaos", options.strategy, directory=lab.output, commands=True)
        group.tolerate_member_exits = True
        self.group = group
        self.slots = dict(enumerate(group.start_members(options.members), start=1))
        self._wait_converged("the group's first assignment")
        self._t0, self.started_at = time.monotonic(), utc_now()
        lab.say("chaos: faults begin")
        for fault in plan.faults:
            record = FaultRecord(fault)
            self.records.append(record)
            self._schedule(self._t0 + fault.at_s, lambda record=record: self._carry_out(record))
        self._run_actions()
        self.faults_done_at = utc_now()
        lab.say("chaos: every fault done; waiting for the group to converge")
        try:
            self._wait_converged("convergence", acted_at=self.faults_done_at)
            self.converged_at = utc_now()
            self.distribution = distribution_text({m.consumer_id: m.assignment or () for m in group.live()},
                                                  self._alias())
            lab.say(f"chaos: converged: {self.distribution}")
        except LabStepFailed as error:
            self.convergence_problem = str(error)
            lab.say(f"chaos: {error}")
        self._stop_traffic_and_drain()
        self.verdicts.append(self._verify_changelog())
        final = [m for m in group.members if m.live]
        self.ended_at = utc_now()
        group.close()
        self._check_members()
        self.verdicts.append(self._verify_exports(final))
        failures = self.measure().failures
        if failures:
            self.lab.failure = "; ".join(failures)

    # -- the clock -----------------------------------------------------------------------------------

    def _schedule(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._actions, (due, next(self._order), action))

    def _shift_pending(self, seconds: float) -> None:
        """Everything still to come happens `seconds` later (the schedule stood still meanwhile)."""
        self._shift_s += seconds
        self._actions = [(due + seconds, order, action) for due, order, action in self._actions]
        heapq.heapify(self._actions)

    def _after(self, seconds: float, action: Callable[[], None]) -> None:
        self._schedule(time.monotonic() + seconds, action)

    def _run_actions(self) -> None:
        """Carry out the planned faults and their follow-ups (SIGCONT, new members, the broker) as they fall due."""
        while self._actions:
            self._check_members()
            due, _, action = self._actions[0]
            now = time.monotonic()
            if now < due:
                time.sleep(min(POLL_S, due - now))  # the schedule's clock: nothing to wait on but the time
                continue
            heapq.heappop(self._actions)
            action()

    def _at_s(self, moment: datetime | None = None) -> float:
        assert self.started_at is not None
        return ((moment or utc_now()) - self.started_at).total_seconds()

    # -- processes -----------------------------------------------------------------------------------

    def _check_members(self) -> None:
        """Record a member or the generator that exited without being asked to (an incident, not a stop)."""
        group = self.group
        if group is None:
            return
        for member in group.members:
            if member.leaving or member.alive or member.consumer_id in self._exits_seen:
                continue
            self._exits_seen.add(member.consumer_id)
            member.leaving = True
            text = f"exited by itself (code {member.process.returncode}): {tail(member.output_path, 4)}"
            self.incidents.append(Incident(utc_now(), member.consumer_id, text))
            self.lab.say(f"chaos: incident: {member.name} {text}")
        producer = group.producer
        if producer is not None and producer.poll() is not None and "producer" not in self._exits_seen:
            self._exits_seen.add("producer")
            text = f"exited by itself (code {producer.returncode}): {tail(group.directory / 'producer.log', 4)}"
            self.incidents.append(Incident(utc_now(), "producer", text))
            self.lab.say(f"chaos: incident: the traffic generator {text}")

    def _member_in(self, record: FaultRecord, slot: int) -> MemberProcess | None:
        member = self.slots.get(slot)
        if member is None or not member.live:
            why = ("is stopped" if member is not None and member.frozen else
                   "is being replaced" if member is not None and member.leaving and member.alive else "is not running")
            name = member.name.upper() if member is not None else f"slot {slot}"
            record.skipped = f"{name} {why}"
            return None
        return member

    def _write(self, member: MemberProcess, line: str) -> bool:
        stdin = member.process.stdin
        if stdin is None:
            return False
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except (OSError, ValueError):  # it died meanwhile
            return False
        return True

    def _group_strategy(self) -> str:
        """The strategy the group is on now: most live members' (a group-wide switch changes no command line)."""
        assert self.group is not None
        live = self.group.live()
        for member in live:
            member.refresh()
        counts = Counter(m.strategy for m in live if m.strategy)
        return counts.most_common(1)[0][0] if counts else self._commanded

    def _replace(self, record: FaultRecord, slot: int, old: MemberProcess) -> None:
        """A new member in the slot, as a deployment would start one: on the group's strategy of the moment
        (one started on the strategy the group left would be refused, as documented), with the old one's
        static id, if it had one."""
        assert self.group is not None
        strategy = self._group_strategy()
        (new,) = self.group.start_members(1, instance_ids=[old.instance_id], strategy=strategy)
        self.slots[slot] = new
        record.replacement, record.until = new.consumer_id, utc_now()
        if strategy != self.lab.options.strategy:
            record.notes.append(f"{new.name.upper()} started on {strategy}, the group's strategy then")
        self.lab.say(f"chaos: #{record.fault.number}: {new.name.upper()} ({strategy}) started in "
                     f"{old.name.upper()}'s place")

    def _carry_out(self, record: FaultRecord) -> None:
        record.shifted_s = self._shift_s
        getattr(self, f"_{record.fault.kind}")(record)
        fault = record.fault
        if record.skipped:
            self.lab.say(f"chaos: #{fault.number} {fault.kind} skipped: {record.skipped}")
        else:
            targets = ", ".join(self._alias().get(t, t) for t in record.targets)
            self.lab.say(f"chaos: #{fault.number} at +{self._at_s(record.at):.1f} s: {fault.kind} {targets}".rstrip())

    # -- the faults ----------------------------------------------------------------------------------

    def _kill(self, record: FaultRecord) -> None:
        slot = record.fault.slots[0]
        member = self._member_in(record, slot)
        if member is None:
            return
        member.leaving = True
        record.at, record.targets = utc_now(), (member.consumer_id,)
        member.process.send_signal(signal.SIGKILL)
        member.process.wait(timeout=10)
        self._after(record.fault.hold_s or 0.0, lambda: self._replace(record, slot, member))

    def _stop(self, record: FaultRecord) -> None:
        member = self._member_in(record, record.fault.slots[0])
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

        self._after(record.fault.hold_s or 0.0, thaw)

    def _restart(self, record: FaultRecord) -> None:
        slot = record.fault.slots[0]
        member = self._member_in(record, slot)
        if member is None:
            return
        member.leaving = True
        record.at, record.targets = utc_now(), (member.consumer_id,)
        member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + LEAVE_TIMEOUT_S

        def when_gone() -> None:
            if member.process.poll() is None and time.monotonic() < deadline:
                self._after(POLL_S, when_gone)
                return
            if member.process.poll() is None:
                member.process.kill()
                member.process.wait(timeout=10)
                record.notes.append(f"{member.name.upper()} ignored SIGTERM for {LEAVE_TIMEOUT_S:g} s: killed")
            elif member.process.returncode != 0:
                record.notes.append(f"{member.name.upper()} exited with code {member.process.returncode}")
            self._replace(record, slot, member)

        when_gone()

    def _switch(self, record: FaultRecord) -> None:
        member = self._member_in(record, record.fault.slots[0])
        if member is None:
            return
        record.at = utc_now()
        if not self._write(member, f"group-strategy {record.fault.strategies[0]}"):
            record.at, record.skipped = None, f"{member.name.upper()}'s standard input is closed"
            return
        self._commanded = record.fault.strategies[0]
        record.targets, record.offsets_s = (member.consumer_id,), (0.0,)

    def _burst(self, record: FaultRecord) -> None:
        fault = record.fault
        senders = [self._member_in(record, slot) for slot in fault.slots]
        if any(sender is None for sender in senders):
            return
        start = time.monotonic()
        record.at = utc_now()
        written, offsets = [], []
        for sender, strategy, offset in zip(senders, fault.strategies, fault.offsets_s):
            assert sender is not None
            wait = start + offset - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # paces the burst's commands to their planned offsets
            if self._write(sender, f"group-strategy {strategy}"):
                self._commanded = strategy
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
        engine = lab.engine_choice.engine if lab.engine_choice is not None else ""

        def back() -> None:
            began = time.monotonic()
            lab.start_broker_again()
            record.until = utc_now()
            record.notes.append("same data directory: data kept" if engine == "kafka"
                                else "a new, empty cluster (memory storage): the generator recreates the topic")
            # The plan counted the broker back as soon as it was started: what follows keeps its spacing.
            starting = time.monotonic() - began
            self._shift_pending(starting)
            record.notes.append(f"it answered {starting:.1f} s after its start; the faults after it moved as much")
            lab.say(f"chaos: #{record.fault.number}: {lab.broker.label} back on {lab.bootstrap} "
                    f"after {starting:.1f} s")

        self._after(record.fault.hold_s or 0.0, back)

    # -- converging, draining, verifying -----------------------------------------------------------

    def _alias(self) -> dict[str, str]:
        return {m.consumer_id: m.name.upper() for m in self.group.members} if self.group else {}

    def _views(self) -> list[MemberView]:
        assert self.group is not None
        live = self.group.live()
        for member in live:
            member.refresh()
        return [MemberView(m.name.upper(), m.assignment, m.pending, m.refused, m.last_change_at, m.last_stats_at,
                           m.status) for m in live]

    def _wait_converged(self, what: str, acted_at: datetime | None = None) -> None:
        options = self.lab.options
        quiet = quiet_seconds(options.session_timeout_ms)
        problem: list[str | None] = [None]

        def converged() -> bool:
            self._check_members()
            problem[0] = convergence_problem(self._views(), PARTITIONS, utc_now(), quiet, acted_at)
            return problem[0] is None

        self.lab.wait_for(converged, options.step_timeout_s + quiet, lambda: f"{what} not reached: {problem[0]}")

    def _stop_traffic_and_drain(self) -> None:
        group = self.group
        assert group is not None
        if group.producer is not None:
            self._exits_seen.add("producer")  # asked to stop: not an incident
            stop_processes([group.producer])
        stopped = utc_now()
        produced = [line for line in (group.directory / "producer.log").read_text(errors="replace").splitlines()
                    if line.startswith(("produced ", "broker restarts", "delivery failures"))] \
            if (group.directory / "producer.log").exists() else []
        behind: list[str] = []

        def drained() -> bool:
            self._check_members()
            behind.clear()
            for member in group.live():
                member.refresh()
                lag = member.stats[-1][2] if member.stats else None
                fresh = member.last_stats_at is not None and member.last_stats_at > stopped
                if not fresh or not (lag == 0 or (lag is None and not member.assignment)):
                    behind.append(f"{member.name.upper()} lag {lag if fresh else '(no stats line yet)'}")
            return not behind and bool(group.live())

        traffic = f"traffic stopped at +{self._at_s(stopped):.1f} s ({'; '.join(produced) or 'no summary'})"
        try:
            self.lab.wait_for(drained, DRAIN_TIMEOUT_S, lambda: "; ".join(behind) or "no live member")
            self.drain = f"{traffic}; every member's lag 0 after {(utc_now() - stopped).total_seconds():.1f} s"
        except LabStepFailed as error:
            self.drain = f"{traffic}; lag not drained: {error}"
        self.lab.say(f"chaos: {self.drain}")

    def _verify(self, label: str, name: str, *args: str) -> tuple[VerifyVerdict, dict[str, Any] | None]:
        """`balance-tui verify --json` as a user would run it; its whole answer stays in verify-<name>.json."""
        lab, group = self.lab, self.group
        assert group is not None
        argv = [sys.executable, "-m", "balance_tui", "verify", "--bootstrap-servers", lab.bootstrap,
                "--topic", group.topic, "--group", group.group, "--json", "--require-caught-up", *args]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=lab.child_environment(),
                                    stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return VerifyVerdict(label, False, error="verify ran for more than 240 s"), None
        (lab.output / f"verify-{name}.json").write_text(result.stdout or result.stderr, encoding="utf-8")
        if result.returncode in (0, 1):
            try:
                document = json.loads(result.stdout)
            except ValueError:
                return VerifyVerdict(label, False, error=f"unreadable output: {result.stdout[:200]!r}"), None
            return verdict_from_verify_json(label, document), document
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return VerifyVerdict(label, False, error=lines[-1] if lines else f"exit code {result.returncode}"), None

    def _verify_changelog(self) -> VerifyVerdict:
        """Against the changelog, until nothing is left to apply (members may still be writing their last records)."""
        assert self.group is not None
        label = "changelog against the topic"
        outcome: list[tuple[VerifyVerdict, dict[str, Any] | None]] = []

        def settled() -> bool:
            outcome[:] = [self._verify(label, "changelog")]
            verdict, document = outcome[0]
            only_behind = (document is not None and not verdict.ok and document.get("notYetApplied")
                           and not (verdict.mismatches or verdict.applied_twice or verdict.missed)
                           and not any(document.get(key) for key in ("missing", "unexpected", "problems")))
            return not only_behind

        try:
            self.lab.wait_for(settled, CATCH_UP_TIMEOUT_S, lambda: "the changelog never caught up")
        except LabStepFailed:
            pass  # the last verdict says how far behind it stayed
        verdict = outcome[0][0]
        self.lab.say(f"chaos: verify (changelog): {'OK' if verdict.ok else verdict.error or 'FAILED'}")
        return verdict

    def _verify_exports(self, final: list[MemberProcess]) -> VerifyVerdict:
        from balance_tui.session_log import export_paths

        names = ", ".join(m.name.upper() for m in final)
        label = f"union of the final exports ({names or 'no member'})"
        missing = [m.name.upper() for m in final if not export_paths(m.log_path)[0].exists()]
        if not final or missing:
            return VerifyVerdict(label, False, error=f"no export from {', '.join(missing) or 'anyone'}")
        verdict, _ = self._verify(label, "exports", "--exports", *(str(export_paths(m.log_path)[0]) for m in final))
        self.lab.say(f"chaos: verify (exports): {'OK' if verdict.ok else verdict.error or 'FAILED'}")
        return verdict

    # -- results -------------------------------------------------------------------------------------

    def measure(self) -> ChaosOutcome:
        from balance_tui.session_log import read_session_log

        group = self.group
        logs = {m.consumer_id: read_session_log(m.log_path) for m in (group.members if group else [])
                if m.log_path.exists()}
        measures = []
        if self.started_at is not None:
            measures = measure_faults(self.records, logs, PARTITIONS, started=self.started_at, end=self.ended_at,
                                      alias=self._alias(), incidents=self.incidents,
                                      report=group.report if group is not None else None)
        converged_after = None
        if self.converged_at is not None and self.faults_done_at is not None:
            converged_after = (self.converged_at - self.faults_done_at).total_seconds()
        alias = self._alias()
        incidents = [(self._at_s(i.at) if self.started_at else 0.0, alias.get(i.who, i.who), i.text)
                     for i in self.incidents]
        silences = []
        if self.started_at is not None:
            facts = lab_facts(self.records, self.incidents)
            # From the faults' start: the group's first join may hold members quiet for a while.
            silences = [(alias.get(s.member, s.member), self._at_s(s.since), s.seconds, s.to_the_end)
                        for s in find_silences(logs, killed=facts.killed, frozen=facts.frozen,
                                               end=self.ended_at or utc_now())
                        if s.until > self.started_at]
        problem = self.convergence_problem
        if self.converged_at is None and problem is None:
            problem = "the run stopped before the faults were done" if self.faults_done_at is None else None
        self.outcome = ChaosOutcome(self.plan.seed, self.plan.duration_s, measures, list(self.verdicts), incidents,
                                    silences, converged_after, problem, self.distribution, self.drain, self.plan.left_out)
        return self.outcome

    def render(self) -> str:
        plan = self.plan
        heading = (f"## Chaos: {len(plan.faults)} fault(s) in {plan.duration_s:g} s on {plan.members} members, "
                   f"seed {plan.seed}")
        if self.started_at is None:
            return heading + "\n\nThe faults never began: the group did not reach its first assignment."
        return heading + "\n\n" + render_chaos_table(self.measure())

    def as_json(self) -> dict[str, Any]:
        outcome = self.outcome or self.measure()
        return {
            "seed": self.plan.seed, "duration_s": self.plan.duration_s, "members": self.plan.members,
            "kinds": list(self.plan.kinds), "left_out": list(self.plan.left_out),
            "schedule": jsonable(list(self.plan.faults)),
            "started_at": iso_ms(self.started_at) if self.started_at else None,
            "faults_done_at": iso_ms(self.faults_done_at) if self.faults_done_at else None,
            "converged_at": iso_ms(self.converged_at) if self.converged_at else None,
            "records": jsonable(self.records), "incidents": jsonable(self.incidents),
            "measures": jsonable(outcome.measures), "verdicts": jsonable(outcome.verdicts),
            "convergence_problem": outcome.convergence_problem, "drain": self.drain,
            "failures": outcome.failures,
        }
