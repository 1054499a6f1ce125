"""Pure measurements for `balance-tui lab`: the lab's steps matched with the report's rebalances.

A lab run knows what it did and when (a `LabStep`: who joined, left or was killed, and the
assignment it then waited for); the members' session logs, merged by `core.report`, know
what the group did. This module puts the two together into the tables of LAB 1.3B, each
measured value next to the value the lab claims. How every number is taken: docs/lab.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from balance_tui.core.assignment import CLASSIC_STRATEGIES
from balance_tui.core.formatting import format_lab_partitions as format_partitions
from balance_tui.core.formatting import format_ms, ms_between
from balance_tui.core.report import Rebalance, Report

#: The lab's three, then KIP-848's consumer protocol where the broker serves it.
STRATEGY_ORDER = (*CLASSIC_STRATEGIES, "consumer")

#: "Tableau Comparatif des Stratégies" of the lab, word for word; `moved` comes from its
#: sequence diagram "CooperativeSticky vs Eager" (C3 joins C1=[P0,P1,P2], C2=[P3,P4,P5]).
LAB_STRATEGY_CLAIMS: dict[str, dict[str, str]] = {
    "range": {"title": "Range", "distribution": "Partitions consécutives", "rebalancing": "Stop-the-world",
              "duration": "3-5 sec", "interruption": "Tous les consumers",
              "moved": "join: all 6 revoked, 3 change owner"},
    "roundrobin": {"title": "RoundRobin", "distribution": "Circulaire équitable", "rebalancing": "Stop-the-world",
                   "duration": "3-5 sec", "interruption": "Tous les consumers",
                   "moved": "join: all 6 revoked, 3 change owner"},
    "cooperative-sticky": {"title": "CooperativeSticky", "distribution": "Équitable + stable",
                           "rebalancing": "Incrémental", "duration": "1-2 sec",
                           "interruption": "Seulement les partitions affectées",
                           "moved": "join: only [P2,P5] revoked and moved"},
    # Not in the lab (written before KIP-848 shipped in Kafka 4.0): what the KIP itself promises.
    "consumer": {"title": "KIP-848 consumer protocol", "distribution": "(not in the lab) broker-side, uniform",
                 "rebalancing": "(KIP-848) incremental, no group-wide barrier",
                 "duration": "(KIP-848) one heartbeat per member",
                 "interruption": "(KIP-848) only the partitions that move",
                 "moved": "(KIP-848) only the partitions that move"},
}

#: "Scénarios de Scaling E-Banking": workers -> (scenario, partitions/worker, throughput, balance latency).
LAB_SCALE_CLAIMS: dict[int, tuple[str, str, str, str]] = {
    1: ("Jour normal", "6", "100 tx/sec", "~500ms"),
    3: ("Heure de pointe", "2", "300 tx/sec", "~200ms"),
    6: ("Black Friday", "1", "600 tx/sec", "~100ms"),
    8: ("Sur-capacité", "1 (2 idle)", "600 tx/sec", "~100ms ⚠️ gaspillage"),
}

#: "Séquence : Rebalancing lors d'un Crash" (3 workers, W2 killed, session timeout 10 s).
LAB_CRASH_CLAIMS: dict[str, str] = {
    "detect": "SessionTimeout (10s) sans heartbeat de W2",
    "owned": "10 s + PAUSE ~2 s",
    "pause": "PAUSE (stop-the-world ~2s) for W1 and W3",
    "moved": "P2 → W1, P3 → W3 (W1 [P0,P1,P2], W3 [P3,P4,P5])",
    "lag": "Lag de ~12s pendant le rebalancing",
}


@dataclass
class LabStep:
    """One thing the lab did to a group, and the assignment it waited for afterwards."""

    key: str  # what the tables call it: "two", "join", "leave", "crash", "scale-3" ...
    action: str  # start, join, leave or crash
    members: tuple[str, ...]  # consumer ids started, stopped or killed
    at: datetime  # when the lab acted (the SIGKILL for a crash)
    expected: tuple[int, ...]  # assignment sizes waited for, largest first
    label: str = ""
    #: The expected assignment held from then on: the latest `assigned` line among the live members
    #: when the lab saw it (None: never, the run failed there).
    reached_at: datetime | None = None
    #: Live members' assignments then, by consumer id, in the order they were started.
    assignment: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Sum over live members of their latest `stats` after the hold (None: no hold, or no stats).
    group_rate: float | None = None
    group_lag: int | None = None


@dataclass
class StepMeasure:
    """A step as the tables show it."""

    key: str
    action: str
    label: str
    members_after: int
    distribution: str
    #: The report's rebalance that this step triggered (None: not found in the logs).
    rebalance: int | None
    #: Until every partition was owned again: from the trigger (join: the new member's `started`
    #: line, leave: its first closing line, crash: the SIGKILL) to the report's settling event.
    all_owned_ms: float | None
    #: Crash only: from the SIGKILL to the first reaction of a survivor.
    detect_ms: float | None
    #: Members that were there before and after and owned nothing for a while: alias -> pause.
    stopped: dict[str, float]
    #: Members that were there before and after and consumed all along (cooperative).
    kept: list[str]
    #: Members that were there before and after (stopped + kept + members idle throughout).
    stayed: int
    moved: tuple[int, ...]
    interrupted: tuple[int, ...]
    #: The longest time one partition had no consuming owner (a crash's from the SIGKILL), and which.
    longest_pause_ms: float | None = None
    longest_pause_partitions: tuple[int, ...] = ()
    lag_before: int | None = None
    lag_peak: int | None = None
    lag_drained_ms: float | None = None
    group_rate: float | None = None
    group_lag: int | None = None


def balanced_sizes(partitions: int, members: int) -> tuple[int, ...]:
    """What every assignor gives one topic: sizes differing by one at most, largest first."""
    if members <= 0:
        return ()
    base, extra = divmod(partitions, members)
    return tuple([base + 1] * extra + [base] * (members - extra))


def size_summary(sizes: Sequence[int]) -> str:
    """`2+2+2`, `3+3`, `6`, `1×6 + 2 idle`."""
    if not sizes:
        return "no member"
    ordered = sorted(sizes, reverse=True)
    idle = ordered.count(0)
    busy = [s for s in ordered if s]
    if len(ordered) <= 4:
        return "+".join(str(s) for s in ordered)
    parts = [f"{size}×{count}" for size, count in sorted(Counter(busy).items(), reverse=True)]
    if idle:
        parts.append(f"{idle} idle")
    return " + ".join(parts)


def distribution_text(assignment: dict[str, tuple[int, ...]], alias: dict[str, str]) -> str:
    """`2+2+2: W1 [P0,P1], W2 [P2,P3], W3 [P4,P5]` (members in the order they were started)."""
    if not assignment:
        return "–"
    owners = ", ".join(f"{alias.get(member, member)} {format_partitions(parts) if parts else 'idle'}"
                       for member, parts in assignment.items())
    return f"{size_summary([len(p) for p in assignment.values()])}: {owners}"


def find_rebalance(report: Report, step: LabStep) -> Rebalance | None:
    """The report's rebalance triggered by this step: the first with a trigger of its kind and member."""
    if step.action == "start":
        wanted = "join"
    else:
        wanted = step.action
    for rebalance in report.rebalances:
        if any(t.kind == wanted and t.member in step.members for t in rebalance.triggers):
            return rebalance
    return None


def measure_step(report: Report, step: LabStep, alias: dict[str, str] | None = None) -> StepMeasure:
    """Match a step with its rebalance in the report and read the lab's numbers off both.

    `alias`: consumer id -> the name the lab uses (default: the report's W1, W2...).
    """
    alias = {**{member.name: member.alias for member in report.members}, **(alias or {})}
    rebalance = find_rebalance(report, step)
    all_owned = detect = None
    stopped: dict[str, float] = {}
    kept: list[str] = []
    stayed = 0
    moved: tuple[int, ...] = ()
    interrupted: tuple[int, ...] = ()
    lag_before = lag_peak = None
    lag_drained = longest = None
    longest_partitions: tuple[int, ...] = ()
    if rebalance is not None:
        if rebalance.settled_at is not None:
            # The logs cannot know when a SIGKILL came (the member's last line is earlier): the lab does.
            all_owned = ms_between(step.at, rebalance.settled_at) if step.action == "crash" else rebalance.settle_ms
        for crash in rebalance.crashes:
            if crash.member in step.members and crash.detected_at is not None:
                detect = ms_between(step.at, crash.detected_at)
        for pause in rebalance.pauses:
            if pause.role not in ("stayed", "rejoined"):
                continue
            stayed += 1
            name = alias.get(pause.member, pause.member)
            if pause.pause_ms:
                stopped[name] = pause.pause_ms
            elif pause.before:
                kept.append(name)
        moved, interrupted = rebalance.moved, rebalance.interrupted
        downtime = partition_downtime(rebalance, step)
        if downtime:
            longest = max(downtime.values())
            longest_partitions = tuple(p for p, ms in downtime.items() if ms == longest)
        if rebalance.lag is not None:
            lag_before, lag_peak = rebalance.lag.before, rebalance.lag.peak
            lag_drained = rebalance.lag.drained_ms
    elif step.reached_at is not None:
        # Not told apart in the logs (see the report's warnings): the lab's own observation.
        all_owned = ms_between(step.at, step.reached_at)
    return StepMeasure(
        key=step.key, action=step.action, label=step.label, members_after=len(step.assignment),
        distribution=distribution_text(step.assignment, alias),
        rebalance=rebalance.number if rebalance is not None else None,
        all_owned_ms=all_owned, detect_ms=detect, stopped=stopped, kept=kept, stayed=stayed,
        moved=moved, interrupted=interrupted, longest_pause_ms=longest, longest_pause_partitions=longest_partitions,
        lag_before=lag_before, lag_peak=lag_peak,
        lag_drained_ms=lag_drained, group_rate=step.group_rate, group_lag=step.group_lag)


def partition_downtime(rebalance: Rebalance, step: LabStep) -> dict[int, float]:
    """Per partition, how long it had no consuming owner; a killed member's partitions counted from the kill.

    The report counts them from the member's last log line (all it can know), up to 5 s too early.
    """
    downtime = dict(rebalance.partition_downtime_ms)
    if step.action != "crash":
        return downtime
    for crash in rebalance.crashes:
        if crash.member not in step.members:
            continue
        early_ms = max(0.0, ms_between(crash.crashed_at, step.at))
        orphaned = {p for pause in rebalance.pauses if pause.member == crash.member for p in pause.before}
        for partition in orphaned & set(downtime):
            downtime[partition] = max(0.0, downtime[partition] - early_ms)
    return downtime


# -- cells -------------------------------------------------------------------------------------------


def _partition_list(partitions: Sequence[int], total: int = 6) -> str:
    if not partitions:
        return "0"
    if len(partitions) == total:
        return f"{total} (all)"
    return f"{len(partitions)} {format_partitions(partitions)}"


def duration_cell(measure: StepMeasure | None) -> str:
    """`6.1 s, members stopped ≤ 5.0 s` / `15.2 s (detected after 10.1 s)`."""
    if measure is None:
        return "–"
    if measure.all_owned_ms is None:
        return "not settled"
    text = format_ms(measure.all_owned_ms)
    details = []
    if measure.detect_ms is not None:
        details.append(f"detected after {format_ms(measure.detect_ms)}")
    if measure.stopped:
        details.append(f"members stopped ≤ {format_ms(max(measure.stopped.values()))}")
    return text + (f" ({', '.join(details)})" if details else "")


def interruption_cell(measure: StepMeasure | None) -> str:
    """Who stopped consuming: `all 2 members stopped; 6 partitions` or `no member stopped; 2 [P2,P5]`."""
    if measure is None:
        return "–"
    partitions = _partition_list(measure.interrupted)
    if measure.stayed == 0:
        who = "no member stayed"
    elif measure.stopped and len(measure.stopped) == measure.stayed:
        who = (f"all {measure.stayed} members stopped" if measure.stayed > 1
               else f"{next(iter(measure.stopped))}, the only member left, stopped")
    elif measure.stopped:
        who = f"{', '.join(measure.stopped)} stopped, {', '.join(measure.kept) or 'the others'} kept consuming"
    else:
        who = "no member stopped"
    longest = (f" for up to {format_ms(measure.longest_pause_ms)}"
               if measure.interrupted and measure.longest_pause_ms is not None else "")
    return f"{who}; partitions unconsumed: {partitions}{longest}"


def moved_cell(measure: StepMeasure | None) -> str:
    if measure is None:
        return "–"
    return f"{_partition_list(measure.moved)} (revoked or orphaned: {len(measure.interrupted)})"


def rebalancing_cell(measures: Sequence[StepMeasure | None]) -> str:
    """Stop-the-world if every member that stayed stopped, incremental if none did."""
    seen = [m for m in measures if m is not None and m.stayed]
    if not seen:
        return "–"
    if all(len(m.stopped) == m.stayed for m in seen):
        return "stop-the-world: every member stopped at " + ", ".join(m.action for m in seen)
    if not any(m.stopped for m in seen):
        return "incremental: no member stopped at " + ", ".join(m.action for m in seen)
    return "mixed: " + "; ".join(f"{m.action} {len(m.stopped)}/{m.stayed} stopped" for m in seen)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") or " " for c in cells) + " |"


# -- tables ------------------------------------------------------------------------------------------


def render_strategies_table(measures: dict[str, dict[str, StepMeasure]]) -> str:
    """The lab's "Tableau Comparatif des Stratégies": each claimed row, then the measured rows.

    `measures`: strategy -> step key (`two`, `join`, `leave`, `crash`) -> measure.
    """
    strategies = [s for s in STRATEGY_ORDER if s in measures] or list(CLASSIC_STRATEGIES)

    def cells(pick: Any) -> list[str]:
        return [pick(measures.get(s, {})) for s in strategies]

    def step(key: str, render: Any) -> Any:
        return lambda by_key: render(by_key.get(key))

    lines = [_row(["Critère", "", *(LAB_STRATEGY_CLAIMS[s]["title"] for s in strategies)]),
             "|" + "---|" * (len(strategies) + 2)]

    def claim(criterion: str, name: str) -> None:
        lines.append(_row([f"**{name}**", "lab", *(LAB_STRATEGY_CLAIMS[s][criterion] for s in strategies)]))

    claim("distribution", "Distribution")
    lines.append(_row(["", "measured, 2 members", *cells(step("two", lambda m: m.distribution if m else "–"))]))
    lines.append(_row(["", "measured, 3rd joins", *cells(step("join", lambda m: m.distribution if m else "–"))]))
    claim("rebalancing", "Rebalancing")
    lines.append(_row(["", "measured", *cells(lambda by_key: rebalancing_cell(
        [by_key.get(k) for k in ("join", "leave", "crash")]))]))
    claim("duration", "Durée rebalance")
    for key, name in (("join", "join 2 → 3"), ("leave", "leave 3 → 2"), ("crash", "kill -9, 2 → 1")):
        lines.append(_row(["", f"measured, {name}", *cells(step(key, duration_cell))]))
    claim("interruption", "Interruption")
    for key in ("join", "leave", "crash"):
        lines.append(_row(["", f"measured, {key}", *cells(step(key, interruption_cell))]))
    claim("moved", "Partitions moved")
    for key in ("join", "leave", "crash"):
        lines.append(_row(["", f"measured, {key}", *cells(step(key, moved_cell))]))
    return "\n".join(lines)


def _lag_text(lag: int | None, rate: float) -> str:
    if lag is None:
        return "n/a"
    behind = f" (≈ {lag / rate:.1f} s of traffic)" if rate > 0 else ""
    return f"{lag:,}{behind}"


def render_scale_table(measures: Sequence[StepMeasure], produce_rate: float) -> str:
    """One row per step of 1 → 2 → 3 → 6 → 8 → ... → 1, the lab's claimed scenario beside it."""
    lines = [_row(["#", "Members", "Lab: scenario (partitions/worker, throughput, balance latency)",
                   "Measured distribution", "All owned after", "Moved", "Members stopped",
                   "Consumed (tx/s)", "Lag after the step"]),
             "|" + "---|" * 9]
    for number, measure in enumerate(measures, start=1):
        claim = LAB_SCALE_CLAIMS.get(measure.members_after)
        claim_text = f"{claim[0]} ({claim[1]}, {claim[2]}, {claim[3]})" if claim else "–"
        stopped = ", ".join(f"{name} {format_ms(ms)}" for name, ms in measure.stopped.items())
        if not stopped:
            stopped = "none" if measure.stayed else "–"
        rate = f"{measure.group_rate:,.0f}" if measure.group_rate is not None else "n/a"
        lines.append(_row([str(number), f"{measure.label or measure.action} → {measure.members_after}",
                           claim_text, measure.distribution, duration_cell_short(measure),
                           _partition_list(measure.moved) if measure.rebalance else "–", stopped, rate,
                           _lag_text(measure.group_lag, produce_rate)]))
    return "\n".join(lines)


def duration_cell_short(measure: StepMeasure) -> str:
    return format_ms(measure.all_owned_ms) if measure.all_owned_ms is not None else "not settled"


def render_crash_table(measure: StepMeasure | None, produce_rate: float) -> str:
    """The lab's crash sequence (3 workers, one killed) claimed versus measured."""
    if measure is None:
        return "The crash step did not complete: no measurement."
    pauses = ", ".join(f"{name} {format_ms(ms)}" for name, ms in measure.stopped.items())
    if measure.kept:
        pauses = (pauses + ", " if pauses else "") + ", ".join(measure.kept) + " kept consuming"
    if measure.longest_pause_ms is None:
        behind = "n/a"
    else:
        behind = (f"{format_ms(measure.longest_pause_ms)} {format_partitions(measure.longest_pause_partitions)} "
                  "(longest partition pause)")
    if measure.lag_peak is None:
        lag = "n/a (no `stats` line after the kill)"
    else:
        drained = (f", back to normal after {format_ms(measure.lag_drained_ms)}"
                   if measure.lag_drained_ms is not None else "")
        lag = (f"peak {_lag_text(measure.lag_peak, produce_rate)}, before {measure.lag_before:,}{drained} "
               "(`stats` lines, 5 s apart)")
    rows = [
        ("Detection: kill -9 → first survivor reaction", LAB_CRASH_CLAIMS["detect"],
         format_ms(measure.detect_ms) if measure.detect_ms is not None else "n/a"),
        ("All partitions owned again, from the kill", LAB_CRASH_CLAIMS["owned"], duration_cell_short(measure)),
        ("Survivors", LAB_CRASH_CLAIMS["pause"], pauses or "–"),
        ("Partitions moved", LAB_CRASH_CLAIMS["moved"],
         f"{_partition_list(measure.moved)}; after: {measure.distribution}"),
        ("Balances behind", LAB_CRASH_CLAIMS["lag"], behind),
        ("Group lag (messages)", "–", lag),
    ]
    lines = [_row(["What", "Lab (session timeout 10 s)", "Measured"]), "|---|---|---|"]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


@dataclass
class StaticMeasure:
    """One group of the static scenario: what the kill -9 and immediate restart of W2 did."""

    static: bool
    #: Partitions revoked from, or lost by, the member that lived through it (W1), from its log.
    survivor_revoked: int | None
    #: From the SIGKILL until the restarted member owned partitions and the group was balanced.
    owned_again_ms: float | None
    #: What W2 owned before the kill, and what its replacement got.
    before: tuple[int, ...]
    after: tuple[int, ...]
    distribution: str


#: What KIP-345 promises (the lab predates static membership).
STATIC_CLAIMS = {
    "revoked": "(KIP-345) none: a static member restarted within its session timeout is handed its "
               "partitions back without a rebalance",
    "owned": "(KIP-345) as soon as the restarted member joins",
}


def static_measure(steps: Sequence[LabStep], restarted: tuple[str, str], static: bool,
                   survivor_revoked: int | None, alias: dict[str, str] | None = None) -> StaticMeasure:
    """`restarted`: (the killed member's consumer id, its replacement's); `alias`: consumer id -> W1, ..."""
    by_key = {step.key: step for step in steps}
    two, restart = by_key.get("two"), by_key.get("restart")
    before = two.assignment.get(restarted[0], ()) if two else ()
    after = restart.assignment.get(restarted[1], ()) if restart else ()
    owned = ms_between(restart.at, restart.reached_at) if restart and restart.reached_at else None
    alias = {**(alias or {}), restarted[0]: "W2", restarted[1]: "W2 (restarted)"}
    return StaticMeasure(static=static, survivor_revoked=survivor_revoked, owned_again_ms=owned,
                         before=tuple(before), after=tuple(after),
                         distribution=distribution_text(restart.assignment, alias) if restart else "–")


def render_static_table(measures: dict[str, StaticMeasure]) -> str:
    """Static against dynamic membership, side by side, with what KIP-345 claims."""
    labels = list(measures)
    title = {label: "static (group.instance.id)" if measures[label].static else "dynamic (no instance id)"
             for label in labels}
    lines = [_row(["What", "KIP-345", *(title[label] for label in labels)]), "|" + "---|" * (len(labels) + 2)]

    def revoked(measure: StaticMeasure) -> str:
        if measure.survivor_revoked is None:
            return "n/a"
        return "none" if measure.survivor_revoked == 0 else f"{measure.survivor_revoked} partition(s)"

    def handed_back(measure: StaticMeasure) -> str:
        same = measure.after and tuple(sorted(measure.after)) == tuple(sorted(measure.before))
        return (f"{format_partitions(measure.after) if measure.after else 'nothing'}"
                f" ({'the same as' if same else 'before:'} {format_partitions(measure.before)})")

    rows = [
        ("Partitions revoked from the survivor W1", STATIC_CLAIMS["revoked"], revoked),
        ("Kill → restarted W2 owns partitions, group balanced", STATIC_CLAIMS["owned"],
         lambda m: format_ms(m.owned_again_ms) if m.owned_again_ms is not None else "not settled"),
        ("Restarted W2 got", "its own partitions", handed_back),
        ("Distribution after", "–", lambda m: m.distribution),
    ]
    for what, claim, cell in rows:
        lines.append(_row([what, claim, *(cell(measures[label]) for label in labels)]))
    return "\n".join(lines)
