"""`balance-tui lab chaos`, the pure part: the fault schedule, what the group did after each fault, the table.

The schedule is computed up front from a seed alone: the same seed with the same arguments
gives the same faults at the same times on the same member slots, so a run can be replayed.
The measures come from the members' session logs plus what only the lab knows (when it killed,
froze and thawed a process, when the broker was away): a frozen member owns its partitions on
paper but consumes nothing, and a killed one logs nothing about its death.
How each number is taken: docs/lab.md, "lab chaos".
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from balance_tui.core.assignment import CLASSIC_STRATEGIES
from balance_tui.core.events import ASSIGNMENT_EVENTS, Event
from balance_tui.core.formatting import ms_between
from balance_tui.core.report import Report, format_ms, format_partitions, parse_ts

#: Every kind of fault, in the order the tables and `--faults` name them.
FAULT_KINDS = ("kill", "stop", "restart", "switch", "burst", "broker")
#: What each kind does, for `--help` and the docs.
FAULT_HELP = {
    "kill": "kill -9 a member; a new member takes its place 2 session timeouts later",
    "stop": "SIGSTOP a member past its session timeout, then SIGCONT",
    "restart": "SIGTERM a member (clean leave), then a new member",
    "switch": "one member asks the whole group to switch strategy (group-strategy on its stdin)",
    "burst": "three members ask for group-wide switches within 0.2 s",
    "broker": "kill the broker and start it again on the same port (Tansu: a new, empty cluster)",
}
#: The strategies a switch moves the group to: the lab's three, served by every broker.
SWITCH_STRATEGIES = CLASSIC_STRATEGIES
BURST_SENDERS = 3
BURST_WINDOW_S = 0.2
#: Faults are never closer than this, whatever the session timeout.
MIN_GAP_S = 2.0
#: Gaps between faults are drawn from [gap, GAP_SPREAD × gap], gap = max(MIN_GAP_S, session timeout).
GAP_SPREAD = 2.5
#: How long a new member takes before it can be counted on (process start, first join).
STARTUP_S = 2.0
#: A member's state as its `stats` line says it, once the group has settled.
SETTLED_STATUSES = ("Consuming", "Idle")
#: A member refused by the group: a join that cannot succeed while the others use another protocol.
REFUSED_CODE = "INCONSISTENT_GROUP_PROTOCOL"
#: Events that change what a member owns or whether it waits for a join.
CHANGE_EVENTS = (Event.STARTED, *ASSIGNMENT_EVENTS, Event.RESTORED, Event.STRATEGY_CHANGED, Event.RESTARTED)
#: What counts as the group's first reaction to a fault, per kind.
REACTIONS = {
    "kill": ASSIGNMENT_EVENTS, "stop": ASSIGNMENT_EVENTS, "restart": ASSIGNMENT_EVENTS,
    "switch": (Event.STRATEGY_CHANGED, *ASSIGNMENT_EVENTS), "burst": (Event.STRATEGY_CHANGED, *ASSIGNMENT_EVENTS),
    "broker": ASSIGNMENT_EVENTS,
}
#: Faults aimed at one member: its own lines do not count as the group's reaction.
TARGETED = ("kill", "stop", "restart")
#: A running member logs `stats` every 5 s whatever happens: no line for this long means it hung.
SILENCE_S = 12.0
#: Converged members are heard from: a `stats` line at most this old (5 s apart, and a little late under load).
STATS_FRESH_S = 8.0


def parse_fault_kinds(text: str) -> tuple[str, ...]:
    """`kill,stop,switch` -> the kinds in FAULT_KINDS order; ValueError naming what is unknown or empty."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind {', '.join(unknown)} (choose from {','.join(FAULT_KINDS)})")
    if not names:
        raise ValueError(f"no fault kind given (choose from {','.join(FAULT_KINDS)})")
    return tuple(kind for kind in FAULT_KINDS if kind in names)


# -- the schedule ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One planned fault. Times are seconds after fault injection begins; slots are 1..members."""

    number: int
    at_s: float
    kind: str
    #: The member slot acted on (kill, stop, restart) or the senders of the switch commands.
    slots: tuple[int, ...] = ()
    #: switch and burst: the strategy each sender asks for.
    strategies: tuple[str, ...] = ()
    #: burst: when each sender writes its command, after `at_s` (the first is 0).
    offsets_s: tuple[float, ...] = ()
    #: stop: SIGSTOP to SIGCONT; kill: the kill to the new member; broker: the time it is away.
    hold_s: float | None = None

    def describe(self) -> str:
        """`kill -9 slot 2`, as the lab announces the schedule."""
        slots = ", ".join(f"slot {slot}" for slot in self.slots)
        if self.kind == "kill":
            return f"kill -9 {slots}, replaced after {self.hold_s:g} s"
        if self.kind == "stop":
            return f"SIGSTOP {slots} for {self.hold_s:g} s"
        if self.kind == "restart":
            return f"SIGTERM {slots}, then a new member"
        if self.kind == "switch":
            return f"{slots} asks the group to switch to {self.strategies[0]}"
        if self.kind == "burst":
            asks = ", ".join(f"slot {slot} {strategy} at +{offset:.2f} s" for slot, strategy, offset
                             in zip(self.slots, self.strategies, self.offsets_s, strict=False))
            return f"burst: {asks}"
        return f"broker killed, back after {self.hold_s:g} s"


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    duration_s: float
    members: int
    kinds: tuple[str, ...]
    faults: tuple[Fault, ...]
    #: Kinds asked for that found no room in the schedule (too short a duration).
    left_out: tuple[str, ...] = ()


def _feasible(kind: str, free: int, consuming: int, members: int) -> bool:
    if kind in TARGETED:
        return free >= 1 and consuming >= 2  # a free target, and someone left to take over
    if kind == "switch":
        return free >= 1
    if kind == "burst":
        return free >= BURST_SENDERS
    return free == members  # broker: nothing else pending across the outage


def plan_faults(seed: int, duration_s: float, kinds: Sequence[str], members: int, session_timeout_ms: int,
                strategy: str) -> ChaosPlan:
    """The faults of one run, from the seed alone.

    Gaps are drawn from [gap, 2.5 × gap] with gap = max(2 s, session timeout); each kind asked
    for comes once first, in a seeded order, then kinds are drawn at random. A slot that was
    just killed, frozen or replaced is left alone until its member is back plus a gap, a fault
    aimed at one member always leaves another one consuming, and a broker restart waits until
    nothing else is pending.
    """
    rng = random.Random(seed)
    session_s = session_timeout_ms / 1000
    gap = max(MIN_GAP_S, session_s)
    slots = list(range(1, members + 1))
    free_at = dict.fromkeys(slots, 0.0)  # may be aimed at again
    back_at = dict.fromkeys(slots, 0.0)  # consuming again (not dead, frozen or starting)
    coverage = list(kinds)
    rng.shuffle(coverage)
    current = strategy
    faults: list[Fault] = []
    at = round(rng.uniform(gap / 2, gap), 1)
    while at <= duration_s:
        free = [slot for slot in slots if free_at[slot] <= at]
        consuming = [slot for slot in slots if back_at[slot] <= at]
        feasible = [kind for kind in kinds if _feasible(kind, len(free), len(consuming), members)]
        if not feasible:
            later = [moment for moment in (*free_at.values(), *back_at.values()) if moment > at]
            if not later:
                break
            at = round(min(later), 1)
            continue
        kind = next((k for k in coverage if k in feasible), None) or rng.choice(feasible)
        if kind in coverage:
            coverage.remove(kind)
        number = len(faults) + 1
        pause = 0.0
        if kind in TARGETED:
            slot = rng.choice(free)
            if kind == "kill":
                hold = round(2 * session_s + rng.uniform(0.0, 2.0), 1)
                faults.append(Fault(number, at, kind, (slot,), hold_s=hold))
                back_at[slot], free_at[slot] = at + hold + STARTUP_S, at + hold + STARTUP_S + gap
            elif kind == "stop":
                hold = round(1.5 * session_s + rng.uniform(0.5, 2.0), 1)
                faults.append(Fault(number, at, kind, (slot,), hold_s=hold))
                back_at[slot], free_at[slot] = at + hold, at + hold + gap
            else:
                faults.append(Fault(number, at, kind, (slot,)))
                back_at[slot], free_at[slot] = at + STARTUP_S, at + STARTUP_S + gap
        elif kind == "switch":
            target = rng.choice([s for s in SWITCH_STRATEGIES if s != current])
            faults.append(Fault(number, at, kind, (rng.choice(free),), (target,), (0.0,)))
            current = target
        elif kind == "burst":
            senders = tuple(rng.sample(free, BURST_SENDERS))
            # At least one asks for a change; the others ask for anything, the current strategy included.
            asked = [rng.choice([s for s in SWITCH_STRATEGIES if s != current])]
            asked += [rng.choice(SWITCH_STRATEGIES) for _ in range(BURST_SENDERS - 1)]
            rng.shuffle(asked)
            offsets = (0.0, *sorted(round(rng.uniform(0.0, BURST_WINDOW_S), 2) for _ in range(BURST_SENDERS - 1)))
            faults.append(Fault(number, at, kind, senders, tuple(asked), offsets))
            current = asked[-1]  # the last command read is the one the group ends on
        else:
            hold = round(rng.uniform(1.0, 4.0), 1)
            faults.append(Fault(number, at, kind, hold_s=hold))
            for slot in slots:
                free_at[slot] = at + hold + gap
            pause = hold
        at = round(at + pause + rng.uniform(gap, GAP_SPREAD * gap), 1)
    return ChaosPlan(seed, duration_s, members, tuple(kinds), tuple(faults), tuple(k for k in kinds if k in coverage))


# -- what the lab did ------------------------------------------------------------------------------


@dataclass
class FaultRecord:
    """A fault as it was carried out (or skipped), with what only the lab can know."""

    fault: Fault
    #: When the lab acted: the signal, the first command, the broker's kill (None: skipped).
    at: datetime | None = None
    #: Consumer ids acted on: the member killed, stopped or restarted, or the senders.
    targets: tuple[str, ...] = ()
    #: stop: the SIGCONT; broker: back and answering; kill/restart: the new member started.
    until: datetime | None = None
    #: The consumer id of the member started in the target's place (kill, restart).
    replacement: str | None = None
    #: burst: when each command was written, seconds after `at`.
    offsets_s: tuple[float, ...] = ()
    skipped: str | None = None
    #: How much later than `fault.at_s` the schedule had moved when it ran (a slow broker start).
    shifted_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Incident:
    """Something no fault asked for: a member or the traffic generator exiting by itself."""

    at: datetime
    who: str
    text: str


# -- ownership over time ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnershipState:
    """After one moment of the merged logs: what each consuming member owns, and if that covers every partition once."""

    at: datetime
    owners: dict[str, tuple[int, ...]]
    all_owned: bool


def _timed(events: Sequence[Mapping[str, Any]]) -> list[tuple[datetime, Mapping[str, Any]]]:
    timed = []
    for event in events:
        try:
            timed.append((parse_ts(str(event["ts"])), event))
        except (KeyError, ValueError):
            continue
    return timed


def replay_ownership(logs: Mapping[str, Sequence[Mapping[str, Any]]], partitions: int, *,
                     killed: Mapping[str, datetime] | None = None,
                     frozen: Mapping[str, Sequence[tuple[datetime, datetime | None]]] | None = None,
                     until: datetime | None = None) -> list[OwnershipState]:
    """The group's ownership after each event of every log (consumer id -> events), in time order.

    A member counts from its `started` line to its `stopped` line or its kill (`killed`), and not
    while it is frozen (`frozen`: SIGSTOP to SIGCONT): it consumes nothing then, whatever it owns.
    Events after `until` are left out.
    """
    items: list[tuple[datetime, int, str, str, Mapping[str, Any]]] = []
    for consumer_id, events in logs.items():
        for at, event in _timed(events):
            items.append((at, 0, consumer_id, str(event.get("event")), event))
    for consumer_id, at in (killed or {}).items():
        items.append((at, 1, consumer_id, "killed", {}))
    for consumer_id, spans in (frozen or {}).items():
        for start, end in spans:
            items.append((start, 1, consumer_id, "frozen", {}))
            if end is not None:
                items.append((end, 1, consumer_id, "thawed", {}))
    # Stable: a log keeps its own order at equal times; the lab's facts come after the lines of that moment.
    items.sort(key=lambda item: (item[0], item[1]))
    assignment: dict[str, tuple[int, ...]] = {}
    live: set[str] = set()
    stopped: set[str] = set()
    asleep: set[str] = set()
    states: list[OwnershipState] = []
    for at, _, consumer_id, kind, event in items:
        if until is not None and at > until:
            break
        if kind == "started":
            live.add(consumer_id)
            assignment[consumer_id] = ()
        elif kind in ("stopped", "killed"):
            live.discard(consumer_id)
            stopped.add(consumer_id)
        elif kind == "frozen":
            asleep.add(consumer_id)
        elif kind == "thawed":
            asleep.discard(consumer_id)
        elif consumer_id not in stopped:
            live.add(consumer_id)  # a log that does not begin with `started` (cut): count it from its first line
        if isinstance(event.get("assignment"), list):
            assignment[consumer_id] = tuple(sorted(int(p) for p in event["assignment"] if isinstance(p, int)))
        owners = {member: assignment.get(member, ()) for member in sorted(live - asleep)}
        counts = Counter(p for owned in owners.values() for p in owned)
        all_owned = bool(owners) and all(counts.get(p, 0) == 1 for p in range(partitions))
        states.append(OwnershipState(at, owners, all_owned))
    return states


def _first_reaction(logs: Mapping[str, Sequence[Mapping[str, Any]]], after: datetime, observers: Iterable[str],
                    kinds: Sequence[str], until: datetime | None) -> tuple[datetime, str] | None:
    best: tuple[datetime, str] | None = None
    for consumer_id in observers:
        for at, event in _timed(logs.get(consumer_id, ())):
            if at <= after or event.get("event") not in kinds:
                continue
            if until is not None and at > until:
                break
            if best is None or at < best[0]:
                best = (at, consumer_id)
            break
    return best


def _live_at(logs: Mapping[str, Sequence[Mapping[str, Any]]], moment: datetime,
             killed: Mapping[str, datetime]) -> list[str]:
    """Members whose process ran at `moment`: started before it, neither stopped nor killed yet."""
    live = []
    for consumer_id, events in logs.items():
        timed = _timed(events)
        if not timed or timed[0][0] > moment:
            continue
        if consumer_id in killed and killed[consumer_id] <= moment:
            continue
        if any(event.get("event") == "stopped" and at <= moment for at, event in timed):
            continue
        live.append(consumer_id)
    return live


@dataclass(frozen=True)
class Silence:
    """A running member that logged nothing for a while, although the lab did not freeze it."""

    member: str
    since: datetime
    until: datetime
    #: True: it never logged again (it was killed, or the logs end).
    to_the_end: bool

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def find_silences(logs: Mapping[str, Sequence[Mapping[str, Any]]], *, killed: Mapping[str, datetime],
                  frozen: Mapping[str, Sequence[tuple[datetime, datetime | None]]], end: datetime | None,
                  threshold_s: float = SILENCE_S) -> list[Silence]:
    """Gaps longer than `threshold_s` between a running member's lines, or from its last line to its kill (or `end`).

    A gap that holds one of the lab's SIGSTOPs is the lab's doing and is left out.
    """
    found = []
    for consumer_id, events in logs.items():
        timed = [(at, event) for at, event in _timed(events) if end is None or at <= end]
        if not timed:
            continue
        times = [at for at, _ in timed]
        stopped = timed[-1][1].get("event") == "stopped"
        last = killed.get(consumer_id) or (None if stopped else end)
        spans = list(pairwise(times))
        if last is not None and last > times[-1]:
            spans.append((times[-1], last))
        for since, until in spans:
            if (until - since).total_seconds() <= threshold_s:
                continue
            if any(start <= until and (thaw is None or thaw >= since) for start, thaw in frozen.get(consumer_id, ())):
                continue
            found.append(Silence(consumer_id, since, until, until == last and until > times[-1]))
    return sorted(found, key=lambda silence: silence.since)


# -- what the group did after each fault -----------------------------------------------------------


@dataclass
class FaultMeasure:
    number: int
    kind: str
    #: Seconds after fault injection began (None: skipped).
    at_s: float | None
    #: The plan's time, moved by whatever a slow broker start moved the schedule by.
    planned_at_s: float
    what: str
    target: str
    #: From the fault to the first reaction of another member (None: none seen).
    detect_ms: float | None
    #: From the fault until every partition was owned by exactly one consuming member again
    #: (0: it never stopped being so; None: not again before the logs end).
    owned_again_ms: float | None
    interrupted: bool
    notes: list[str] = field(default_factory=list)
    #: The report's rebalances (report.md) that overlap the time the group took.
    rebalances: tuple[int, ...] = ()


def _break_after(states: Sequence[OwnershipState], at: datetime, next_at: datetime | None) -> OwnershipState | None:
    """The first moment from `at` (and before the next fault) when a settled group lost an owner: this fault's break."""
    previous = None
    for state in states:
        if next_at is not None and state.at >= next_at and state.at > at:
            return None
        if state.at >= at and not state.all_owned and (previous is None or previous.all_owned):
            return state
        previous = state
    return None


def _what(record: FaultRecord) -> str:
    fault = record.fault
    if fault.kind == "kill":
        return "kill -9"
    if fault.kind == "stop":
        held = ms_between(record.at, record.until) if record.at and record.until else (fault.hold_s or 0) * 1000
        return f"SIGSTOP {format_ms(held)}, SIGCONT"
    if fault.kind == "restart":
        return "SIGTERM, new member"
    if fault.kind == "switch":
        return f"group switch → {fault.strategies[0]}"
    if fault.kind == "burst":
        offsets = record.offsets_s or fault.offsets_s
        return f"burst: {', '.join(fault.strategies)} within {format_ms(max(offsets) * 1000)}"
    held = ms_between(record.at, record.until) if record.at and record.until else (fault.hold_s or 0) * 1000
    return f"broker restart (away {format_ms(held)})"


def _target(record: FaultRecord, alias: Mapping[str, str], started: datetime) -> str:
    names = [alias.get(t, t) for t in record.targets]
    if record.fault.kind == "broker":
        return "the broker"
    text = ", ".join(names) or "–"
    if record.replacement:
        when = f" at +{ms_between(started, record.until) / 1000:.1f} s" if record.until else ""
        text += f" → {alias.get(record.replacement, record.replacement)}{when}"
    return text


def _errors_between(logs: Mapping[str, Sequence[Mapping[str, Any]]], start: datetime, end: datetime | None,
                    alias: Mapping[str, str]) -> str:
    """`errors: INCONSISTENT_GROUP_PROTOCOL ×4 (W2)`: the error lines members logged in a window."""
    counts: Counter[str] = Counter()
    who: dict[str, set[str]] = {}
    for consumer_id, events in logs.items():
        for at, event in _timed(events):
            if event.get("event") != "error" or at < start or (end is not None and at > end):
                continue
            code = str(event.get("code"))
            counts[code] += 1 + int(event.get("repeated_since_last") or 0)
            who.setdefault(code, set()).add(alias.get(consumer_id, consumer_id))
    if not counts:
        return ""
    parts = [f"{code} ×{count} ({', '.join(sorted(who[code]))})" for code, count in counts.most_common(3)]
    more = len(counts) - 3
    return "errors: " + "; ".join(parts) + (f"; {more} more code(s)" if more > 0 else "")


def _owners_text(owners: Mapping[str, tuple[int, ...]], partitions: Iterable[int], alias: Mapping[str, str]) -> str:
    wanted = set(partitions)
    parts = [f"{alias.get(member, member)} {format_partitions(sorted(wanted & set(owned)))}"
             for member, owned in owners.items() if wanted & set(owned)]
    return ", ".join(parts) or "nobody"


@dataclass(frozen=True)
class LabFacts:
    """What the logs cannot say: when the lab killed each member, and froze and thawed it."""

    killed: dict[str, datetime]
    frozen: dict[str, list[tuple[datetime, datetime | None]]]


def lab_facts(records: Sequence[FaultRecord], incidents: Sequence[Incident] = ()) -> LabFacts:
    """Kills and SIGSTOP spans from the records; a member that exited by itself counts as killed when the lab saw it."""
    killed: dict[str, datetime] = {}
    frozen: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for record in records:
        if record.at is None:
            continue
        if record.fault.kind == "kill":
            killed.update(dict.fromkeys(record.targets, record.at))
        elif record.fault.kind == "stop":
            for target in record.targets:
                frozen.setdefault(target, []).append((record.at, record.until))
    for incident in incidents:
        killed.setdefault(incident.who, incident.at)
    return LabFacts(killed, frozen)


def measure_faults(records: Sequence[FaultRecord], logs: Mapping[str, Sequence[Mapping[str, Any]]], partitions: int,
                   *, started: datetime, end: datetime | None, alias: Mapping[str, str],
                   incidents: Sequence[Incident] = (), report: Report | None = None) -> list[FaultMeasure]:
    """Per fault: its first reaction, and when every partition was owned once again, from the logs and the lab's facts.

    `started`: when fault injection began; `end`: when the lab began taking the group down
    (later lines are its clean leave, not the faults' doing).
    """
    facts = lab_facts(records, incidents)
    killed, frozen = facts.killed, facts.frozen
    states = replay_ownership(logs, partitions, killed=killed, frozen=frozen, until=end)
    done = [r for r in records if r.at is not None]
    measures = []
    for record in records:
        fault = record.fault
        base = FaultMeasure(fault.number, fault.kind, None, fault.at_s + record.shifted_s, _what(record),
                            _target(record, alias, started), None, None, False)
        if record.at is None:
            base.notes.append(f"skipped: {record.skipped}")
            measures.append(base)
            continue
        at = record.at
        base.at_s = ms_between(started, at) / 1000
        later = [r for r in done if r.at is not None and r.at > at]
        following = later[0] if later else None
        next_at = following.at if following is not None else None
        observers = _live_at(logs, at, killed)
        if fault.kind in TARGETED:
            observers = [member for member in observers if member not in record.targets]
        reaction = _first_reaction(logs, at, observers, REACTIONS[fault.kind], end)
        if reaction is not None:
            base.detect_ms = ms_between(at, reaction[0])
            if next_at is not None and reaction[0] > next_at:
                base.notes.append(f"first reaction after #{following.fault.number} began")  # type: ignore[union-attr]
        broke = _break_after(states, at, next_at)
        prior = [s for s in states if s.at < at]
        if prior and not prior[-1].all_owned:
            base.notes.append("the group was still settling when it began")
            if broke is None:  # no break of its own: measure until the settling it fell into ends
                broke = prior[-1]
        if broke is None:
            base.owned_again_ms = 0.0
            base.notes.insert(0, "every partition stayed owned")
        else:
            base.interrupted = True
            again = next((s for s in states if s.at > broke.at and s.all_owned), None)
            if again is not None:
                base.owned_again_ms = max(0.0, ms_between(at, again.at))
                if next_at is not None and again.at > next_at:
                    base.notes.append(f"overlaps #{following.fault.number}")  # type: ignore[union-attr]
                if report is not None:
                    base.rebalances = tuple(
                        r.number for r in report.rebalances
                        if r.started_at <= again.at and (r.settled_at is None or r.settled_at >= broke.at))
            else:
                base.notes.append("not every partition owned again before the end")
        base.notes += _kind_notes(record, states, logs, alias, next_at or end, killed)
        window_end = next_at or end
        errors = _errors_between(logs, at, window_end, alias)
        if errors:
            base.notes.append(errors)
        base.notes += record.notes
        measures.append(base)
    return measures


def _kind_notes(record: FaultRecord, states: Sequence[OwnershipState], logs: Mapping[str, Sequence[Mapping[str, Any]]],
                alias: Mapping[str, str], window_end: datetime | None, killed: Mapping[str, datetime]) -> list[str]:
    fault, at = record.fault, record.at
    assert at is not None
    notes: list[str] = []
    held: tuple[int, ...] = ()
    if fault.kind in TARGETED and record.targets:
        target = record.targets[0]
        prior = [s for s in states if s.at < at]
        held = prior[-1].owners.get(target, ()) if prior else ()
    if fault.kind == "kill" and held:
        settled = next((s for s in states if s.at > at and s.all_owned), None)
        if settled is not None:
            notes.append(f"its {format_partitions(held)} went to {_owners_text(settled.owners, held, alias)}")
    elif fault.kind == "stop":
        target = record.targets[0] if record.targets else ""
        thawed = record.until
        if held and thawed is not None:
            taken = next((state for state in states if at <= state.at <= thawed and all(
                any(p in owned for m, owned in state.owners.items() if m != target) for p in held)), None)
            if taken is not None:
                others = {m: o for m, o in taken.owners.items() if m != target}
                notes.append(f"evicted while stopped: its {format_partitions(held)} went to "
                             f"{_owners_text(others, held, alias)} {format_ms(ms_between(at, taken.at))} "
                             "after the SIGSTOP")
            else:
                notes.append(f"not evicted while stopped: nobody took all of its {format_partitions(held)}")
            woke = next(((ts, e) for ts, e in _timed(logs.get(target, ()))
                         if ts >= thawed and e.get("event") in ASSIGNMENT_EVENTS), None)
            if woke is not None:
                ts, event = woke
                notes.append(f"after SIGCONT its first rebalance line: {event.get('event')} "
                             f"{format_partitions(event.get('partitions') or [])} "
                             f"after {format_ms(ms_between(thawed, ts))}")
    elif fault.kind == "restart" and record.replacement:
        first = next(((ts, e) for ts, e in _timed(logs.get(record.replacement, ()))
                      if e.get("event") == Event.ASSIGNED and e.get("assignment")), None)
        name = alias.get(record.replacement, record.replacement)
        if first is not None:
            notes.append(f"{name} owned {format_partitions(first[1].get('assignment') or [])} "
                         f"{format_ms(ms_between(at, first[0]))} after the SIGTERM")
    elif fault.kind in ("switch", "burst"):
        switched = {alias.get(cid, cid) for cid, events in logs.items() for ts, e in _timed(events)
                    if e.get("event") == "strategy_changed" and ts >= at
                    and (window_end is None or ts <= window_end)}
        senders = ", ".join(f"{alias.get(t, t)} {s}"
                            for t, s in zip(record.targets, record.fault.strategies, strict=False))
        if fault.kind == "burst":
            notes.append(f"asked: {senders}")
        notes.append(f"switched: {', '.join(sorted(switched)) or 'nobody'}")
        if window_end is not None:
            final = _strategies_at(logs, window_end, killed)
            if final:
                notes.append("then on " + ", ".join(f"{alias.get(m, m)} {s}" for m, s in sorted(
                    final.items(), key=lambda item: alias.get(item[0], item[0]))))
    return notes


def _strategies_at(logs: Mapping[str, Sequence[Mapping[str, Any]]], moment: datetime,
                   killed: Mapping[str, datetime]) -> dict[str, str]:
    """Each running member's strategy at `moment`, from its last line before it."""
    strategies = {}
    for consumer_id, events in logs.items():
        if consumer_id in killed and killed[consumer_id] <= moment:
            continue
        last = None
        for at, event in _timed(events):
            if at > moment:
                break
            last = event
        if last is not None and last.get("event") != "stopped" and isinstance(last.get("strategy"), str):
            strategies[consumer_id] = str(last["strategy"])
    return strategies


# -- converged -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    """What the lab knows of one live member from its session log."""

    name: str
    assignment: tuple[int, ...] | None
    #: Waiting for an assignment after a start, a rejoin or a loss.
    pending: bool
    #: Refused by the group (INCONSISTENT_GROUP_PROTOCOL) since its last assignment.
    refused: bool
    last_change_at: datetime | None
    last_stats_at: datetime | None
    status: str | None


def quiet_seconds(session_timeout_ms: int) -> float:
    """How long the group must stay still to count as converged: a `stats` interval (5 s) and a Tansu join round."""
    return max(6.0, session_timeout_ms / 2000 + 1.0)


def convergence_problem(members: Sequence[MemberView], partitions: int, now: datetime, quiet_s: float,
                        acted_at: datetime | None = None) -> str | None:
    """None once the group has converged, else what is still missing (for the deadline's message).

    Converged: every partition owned by exactly one live member, nobody joining or refused,
    no rebalance line for `quiet_s`, and every member's `stats` line since then says it is
    consuming (or idle) and is recent: a hung member's last line may say all is well. The quiet
    spell also counts from `acted_at`, the lab's last action: a command just written has not
    been read yet.
    """
    if not members:
        return "no live member"
    problem = _joining_problem(members) or _ownership_problem(members, partitions)
    if problem is not None:
        return problem
    changes = [m.last_change_at for m in members if m.last_change_at is not None]
    last_change = max(changes) if changes else None
    problem = _quiet_problem(now, quiet_s, last_change, acted_at)
    if problem is not None:
        return problem
    if acted_at is not None and (last_change is None or acted_at > last_change):
        last_change = acted_at
    return _stats_problem(members, now, last_change)


def _joining_problem(members: Sequence[MemberView]) -> str | None:
    """The first member refused by the group or still waiting for an assignment."""
    for member in members:
        if member.refused:
            return f"{member.name} is refused by the group ({REFUSED_CODE})"
        if member.pending or member.assignment is None:
            return f"{member.name} is joining"
    return None


def _ownership_problem(members: Sequence[MemberView], partitions: int) -> str | None:
    """The first partition owned by nobody, or by more than one member."""
    owners: dict[int, list[str]] = {}
    for member in members:
        for partition in member.assignment or ():
            owners.setdefault(partition, []).append(member.name)
    for partition in range(partitions):
        held = owners.get(partition, [])
        if len(held) != 1:
            return f"P{partition} is owned by {' and '.join(held) if held else 'nobody'}"
    return None


def _quiet_problem(now: datetime, quiet_s: float, last_change: datetime | None,
                   acted_at: datetime | None) -> str | None:
    """Whether the last rebalance line, or the lab's last action, is less than `quiet_s` old."""
    if last_change is not None and (now - last_change).total_seconds() < quiet_s:
        return f"last rebalance line {(now - last_change).total_seconds():.1f} s ago (waiting for {quiet_s:g} s)"
    if acted_at is not None and (now - acted_at).total_seconds() < quiet_s:
        return f"the last fault's end {(now - acted_at).total_seconds():.1f} s ago (waiting for {quiet_s:g} s)"
    return None


def _stats_problem(members: Sequence[MemberView], now: datetime, since: datetime | None) -> str | None:
    """The first member without a recent `stats` line after `since` saying it consumes (or idles)."""
    for member in members:
        if member.last_stats_at is None or (since is not None and member.last_stats_at <= since):
            return f"{member.name} logged no `stats` line since the last rebalance line"
        if (now - member.last_stats_at).total_seconds() > STATS_FRESH_S:
            return (f"{member.name}'s last `stats` line is {(now - member.last_stats_at).total_seconds():.1f} s old "
                    "(it logs one every 5 s)")
        if member.status not in SETTLED_STATUSES:
            return f"{member.name} says {member.status}"
    return None


# -- the verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyVerdict:
    """One `balance-tui verify` run: against the changelog, or against the union of the final exports."""

    label: str
    ok: bool
    balances_checked: int | None = None
    mismatches: int | None = None
    applied_twice: int | None = None
    missed: int | None = None
    #: Everything else that failed or is worth saying: missing or extra balances, duplicates, problems.
    other: tuple[str, ...] = ()
    #: Why it could not run at all (no such topic, no export...).
    error: str | None = None


def verdict_from_verify_json(label: str, document: Mapping[str, Any]) -> VerifyVerdict:
    """The verdict from `balance-tui verify --json`'s document."""
    other = []
    for key, name in (("missing", "missing"), ("unexpected", "not in the recomputation"),
                      ("duplicates", "duplicates across exports")):
        if document.get(key):
            other.append(f"{name} {len(document[key]):,}")
    if document.get("notYetApplied"):
        other.append(f"not yet applied {int(document['notYetApplied']):,}")
    other += [str(problem) for problem in document.get("problems") or ()]
    return VerifyVerdict(
        label=label, ok=bool(document.get("ok")), balances_checked=int(document.get("balancesChecked") or 0),
        mismatches=len(document.get("mismatches") or ()),
        applied_twice=int((document.get("appliedTwice") or {}).get("transactions") or 0),
        missed=int((document.get("missed") or {}).get("transactions") or 0), other=tuple(other))


@dataclass
class ChaosOutcome:
    """Everything the chaos table shows."""

    seed: int
    duration_s: float
    measures: list[FaultMeasure]
    verdicts: list[VerifyVerdict]
    incidents: list[tuple[float, str, str]] = field(default_factory=list)
    #: Members that logged nothing for a while although running: (member, since s, seconds, to the end).
    silences: list[tuple[str, float, float, bool]] = field(default_factory=list)
    #: From the last fault's end to the converged state (None: not converged).
    converged_after_s: float | None = None
    convergence_problem: str | None = None
    distribution: str = ""
    drain: str = ""
    left_out: tuple[str, ...] = ()

    @property
    def failures(self) -> list[str]:
        """Why the run is not clean (empty: clean)."""
        reasons = [f"{who} {text}" for _, who, text in self.incidents]
        reasons += [f"{who} logged nothing for {seconds:.1f} s from +{since:.1f} s" for who, since, seconds, _ in
                    self.silences]
        if self.converged_after_s is None:
            reasons.append(f"the group did not converge ({self.convergence_problem or 'not reached'})")
        for verdict in self.verdicts:
            if verdict.error:
                reasons.append(f"{verdict.label}: could not verify ({verdict.error})")
            elif not verdict.ok:
                reasons.append(f"{verdict.label}: {_verdict_numbers(verdict)}")
        if not self.verdicts:
            reasons.append("no verify ran")
        return reasons


def _verdict_numbers(verdict: VerifyVerdict) -> str:
    parts = [f"{verdict.mismatches or 0} mismatches", f"{verdict.applied_twice or 0} applied twice",
             f"{verdict.missed or 0} missed", *verdict.other]
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _number(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def render_chaos_table(outcome: ChaosOutcome) -> str:
    """One row per fault, then the convergence, then the verdict: the lab chaos summary."""
    lines = [_row(["#", "At", "Fault", "Target", "Detected after", "All owned again after", "Notes"]),
             "|---|---|---|---|---|---|---|", *(_fault_row(measure) for measure in outcome.measures), ""]
    lines += _run_notes(outcome)
    lines += ["", _row(["Verify", "Verdict", "Balances checked", "Mismatches", "Applied twice", "Missed", "Also"]),
              "|---|---|---|---|---|---|---|", *(_verify_row(verdict) for verdict in outcome.verdicts)]
    failures = outcome.failures
    lines.append("")
    if failures:
        lines.append("**Verdict: not clean**: " + "; ".join(failures) + ".")
    else:
        lines.append("**Verdict: clean**: every balance checked, none wrong, none applied twice, none missed.")
    return "\n".join(lines)


def _fault_row(measure: FaultMeasure) -> str:
    if measure.at_s is None:
        at = f"(+{measure.planned_at_s:.1f} s)"
    else:
        at = f"+{measure.at_s:.1f} s"
        if measure.at_s - measure.planned_at_s > 1.0:
            at += f" (planned +{measure.planned_at_s:.1f} s)"
    detect = format_ms(measure.detect_ms) if measure.detect_ms is not None else (
        "–" if measure.at_s is None else "no reaction")
    if measure.at_s is None:
        owned = "–"
    elif measure.owned_again_ms is None:
        owned = "not again"
    elif not measure.interrupted:
        owned = "never unowned"
    else:
        owned = format_ms(measure.owned_again_ms)
    notes = list(measure.notes)
    if measure.rebalances:
        notes.append("report " + ", ".join(f"#{n}" for n in measure.rebalances))
    return _row([str(measure.number), at, measure.what, measure.target, detect, owned, "; ".join(notes)])


def _run_notes(outcome: ChaosOutcome) -> list[str]:
    """The bullets under the fault table: incidents, silences, what was left out, convergence, drain."""
    lines = [f"- **Incident** at +{at_s:.1f} s: {who} {text}" for at_s, who, text in outcome.incidents]
    for who, since, seconds, to_the_end in outcome.silences:
        lines.append(f"- **Silent**: {who} logged nothing (not even `stats`, due every 5 s) for {seconds:.1f} s "
                     f"from +{since:.1f} s{', until it was killed or the run ended' if to_the_end else ''}; "
                     "the lab had not stopped it")
    if outcome.left_out:
        lines.append(f"- Not scheduled (no room in {outcome.duration_s:g} s): {', '.join(outcome.left_out)}")
    if outcome.converged_after_s is not None:
        lines.append(f"- Converged {outcome.converged_after_s:.1f} s after the last fault: {outcome.distribution}")
    else:
        lines.append(f"- **Did not converge**: {outcome.convergence_problem or 'not reached'}")
    if outcome.drain:
        lines.append(f"- {outcome.drain}")
    return lines


def _verify_row(verdict: VerifyVerdict) -> str:
    if verdict.error:
        return _row([verdict.label, "could not verify", "–", "–", "–", "–", verdict.error])
    return _row([verdict.label, "OK" if verdict.ok else "FAILED", _number(verdict.balances_checked),
                 _number(verdict.mismatches), _number(verdict.applied_twice), _number(verdict.missed),
                 "; ".join(verdict.other) or "–"])
