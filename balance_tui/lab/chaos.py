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

import functools
import time
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
)
from balance_tui.core.formatting import jsonable
from balance_tui.lab.faults import FaultInjector
from balance_tui.lab.measure import distribution_text
from balance_tui.lab.options import PARTITIONS, LabStepFailed
from balance_tui.lab.processes import stop_processes
from balance_tui.lab.runs import GroupRun, LabRun
from balance_tui.lab.schedule import Schedule
from balance_tui.lab.verdicts import verify_changelog, verify_exports
from balance_tui.session_log import read_session_log

#: After the traffic stops: how long the members may take to consume what is left.
DRAIN_TIMEOUT_S = 60.0


class ChaosRun:
    """One chaos run on one group: the plan, what was done, and what came of it."""

    def __init__(self, lab: LabRun) -> None:
        options = lab.options
        self.lab = lab
        self.plan = plan_faults(options.seed, options.duration_s, options.faults, options.members,
                                options.session_timeout_ms, options.strategy)
        self.records: list[FaultRecord] = []
        self.group: GroupRun | None = None
        #: Carries the faults out once the group is up.
        self.injector: FaultInjector | None = None
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
        schedule = Schedule()
        injector = FaultInjector(lab, group, dict(enumerate(group.start_members(options.members), start=1)), schedule)
        self.injector = injector
        self._wait_converged("the group's first assignment")
        t0, self.started_at = time.monotonic(), utc_now()
        injector.started_at = self.started_at
        lab.say("chaos: faults begin")
        for fault in plan.faults:
            record = FaultRecord(fault)
            self.records.append(record)
            schedule.at(t0 + fault.at_s, functools.partial(injector.carry_out, record), planned=True)
        schedule.run(between=injector.check_members)
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
        self.verdicts.append(verify_changelog(lab, group))
        final = [m for m in group.members if m.live]
        self.ended_at = utc_now()
        group.close()
        injector.check_members()
        self.verdicts.append(verify_exports(lab, group, final))
        failures = self.measure().failures
        if failures:
            self.lab.failure = "; ".join(failures)

    @property
    def incidents(self) -> list[Incident]:
        return self.injector.incidents if self.injector is not None else []

    def _at_s(self, moment: datetime | None = None) -> float:
        assert self.started_at is not None
        return ((moment or utc_now()) - self.started_at).total_seconds()

    # -- converging, draining, verifying -----------------------------------------------------------

    def _check(self) -> None:
        if self.injector is not None:
            self.injector.check_members()

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
            self._check()
            problem[0] = convergence_problem(self._views(), PARTITIONS, utc_now(), quiet, acted_at)
            return problem[0] is None

        self.lab.wait_for(converged, options.step_timeout_s + quiet, lambda: f"{what} not reached: {problem[0]}")

    def _stop_traffic_and_drain(self) -> None:
        group = self.group
        assert group is not None
        if group.producer is not None:
            if self.injector is not None:
                self.injector.exits_seen.add("producer")  # asked to stop: not an incident
            stop_processes([group.producer])
        stopped = utc_now()
        produced = [line for line in (group.directory / "producer.log").read_text(errors="replace").splitlines()
                    if line.startswith(("produced ", "broker restarts", "delivery failures"))] \
            if (group.directory / "producer.log").exists() else []
        behind: list[str] = []

        def drained() -> bool:
            self._check()
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

    # -- results -------------------------------------------------------------------------------------

    def measure(self) -> ChaosOutcome:
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
        plan = self.plan
        self.outcome = ChaosOutcome(plan.seed, plan.duration_s, measures, list(self.verdicts), incidents, silences,
                                    converged_after, problem, self.distribution, self.drain, plan.left_out)
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
