"""Merge the session logs of several members into one rebalance story.

Pure: the input is the event dicts of each session log (see docs/session-log.md), the
output a `Report` and its renderings (`render_markdown`, `render_json`, `render_mermaid`).
How episodes are cut and what each number means is documented in docs/report.md.

The walk replays every member's events in global time order and keeps, per live
member, its assignment (the `assignment` field after each event). The group is
*settled* when it has no live member, or when no live member is waiting for its
first assignment after a (re)join and every partition is owned by exactly one live
member. A rebalance episode starts at a trigger (join, leave, crash, strategy
switch, restart) or at any loss of that state, and ends when it holds again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from balance_tui.core.assignment import iso_ms
from balance_tui.core.safe_text import json_visible, visible

#: The worker logs `stats` this often: a live member is never silent for much longer.
STATS_INTERVAL_MS = 5_000.0
#: How late a `stats` line can be (the timer restarts after each line and waits for the poll).
STATS_SLACK_MS = 500.0
#: A log without `stopped` whose member was silent this long while others kept logging ended in a crash.
CRASH_SILENCE_MS = 2 * STATS_INTERVAL_MS
#: Used when no `started` event tells the session timeout.
DEFAULT_SESSION_TIMEOUT_MS = 10_000
#: A backlog counts as drained at or under max(pre-rebalance lag, one second of the group's
#: highest consumption rate, this many messages).
DRAIN_FLOOR = 10

ASSIGNMENT_EVENTS = ("assigned", "revoked", "lost")
REJOIN_EVENTS = {"strategy_changed": "strategy switch", "restarted": "restart"}
#: Events a member's assignment history shows (plus the synthetic `crashed`).
HISTORY_EVENTS = {"started", "assigned", "revoked", "lost", "strategy_changed", "restarted",
                  "paused", "resumed", "error", "stopped"}
#: Written while closing, between the stop request and `stopped`.
CLOSING_EVENTS = {"exported", "error"}
#: A member refused by the group (mixed protocol families) is no longer waiting to be assigned.
REFUSED_CODES = {"INCONSISTENT_GROUP_PROTOCOL"}


class ReportError(ValueError):
    """The logs cannot make a report (nothing usable, or several groups mixed)."""


# -- the model ------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    """One line of the merged timeline. `member` is the member's name (its consumer id)."""

    at: datetime
    member: str
    event: str
    partitions: tuple[int, ...] = ()
    assignment: tuple[int, ...] | None = None
    generation: int | None = None
    detail: str = ""
    #: Number of the rebalance this happened in (None: between rebalances).
    rebalance: int | None = None


@dataclass
class Member:
    """One run of one consumer process (a log holding two runs of one consumer id gives two)."""

    name: str
    alias: str
    consumer_id: str
    strategies: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    #: `stopped` (clean leave), `crashed` (no `stopped` line) or `running` (log still being written).
    end: str
    stop_reason: str | None
    final_assignment: tuple[int, ...]
    history: list[HistoryEntry] = field(default_factory=list)


@dataclass
class Trigger:
    kind: str  # join, leave, crash, strategy switch, restart, unknown
    member: str | None
    at: datetime
    detail: str = ""


@dataclass
class MemberPause:
    """How one member lived through a rebalance."""

    member: str
    role: str  # joined, rejoined, stayed, left, crashed
    #: joined: time to its first partitions; stayed/rejoined: time it owned nothing; else None.
    pause_ms: float | None
    #: Ended the rebalance without partitions (more members than partitions, or never assigned).
    idle: bool
    before: tuple[int, ...]
    after: tuple[int, ...]


@dataclass
class CrashDetection:
    """When a crash was noticed. The crash itself happened between `crashed_at` and `died_by`."""

    member: str
    last_seen: datetime
    #: Where the rebalance starts: `last_seen`, or the end of the rebalance it was part of then.
    crashed_at: datetime
    #: Its next `stats` line was due then: it died before, or it would have logged it.
    died_by: datetime
    #: First rebalance event (revoked, lost or assigned) at a survivor after `crashed_at`.
    detected_at: datetime | None = None
    #: From `crashed_at` to `detected_at`: the longest the detection can have taken.
    detect_ms: float | None = None
    #: From `died_by` to `detected_at`: the shortest it can have taken (0 if the window overlaps).
    detect_min_ms: float | None = None


@dataclass
class LagSummary:
    """Group lag (sum of every live member's latest `stats.lag`) around one rebalance."""

    before: int
    peak: int
    #: Lag at or under this is "drained": max(before, one second of traffic, DRAIN_FLOOR).
    level: int
    #: From the rebalance start to the first sample back at `level`.
    drained_ms: float | None
    #: False: still above that level when the next rebalance started or the logs ended.
    drained: bool


@dataclass
class Rebalance:
    number: int
    #: The triggers' kinds: `join`, `leave`, `crash`, `strategy switch`, `restart`, `unknown`, joined by ` + `.
    trigger: str
    triggers: list[Trigger]
    started_at: datetime
    settled_at: datetime | None
    #: Until every partition was owned again by exactly one live member (None: never, in these logs).
    settle_ms: float | None
    strategy: str
    members_before: tuple[str, ...]
    members_after: tuple[str, ...]
    #: Partitions whose owner at the end differs from the one at the start.
    moved: tuple[int, ...]
    #: Partitions nobody consumed at some moment of the rebalance (revoked, lost or orphaned by a crash).
    interrupted: tuple[int, ...]
    partition_downtime_ms: dict[int, float]
    pauses: list[MemberPause]
    crashes: list[CrashDetection]
    lag: LagSummary | None


@dataclass
class Report:
    group: str
    topic: str
    partitions: int
    started_at: datetime
    ended_at: datetime
    members: list[Member]
    rebalances: list[Rebalance]
    #: The merged timeline, with synthetic `leaving`, `crashed`, `crash_detected` and `settled` entries.
    timeline: list[HistoryEntry]
    warnings: list[str] = field(default_factory=list)

    def alias(self, name: str | None) -> str:
        for member in self.members:
            if member.name == name:
                return member.alias
        return name or "?"


# -- reading the logs ---------------------------------------------------------------------------


def parse_ts(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def valid_events(events: Sequence[Any]) -> list[dict[str, Any]]:
    """The events a report can use: objects with a parseable `ts`, an `event` and a `consumer_id`."""
    usable = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if not all(isinstance(event.get(key), str) for key in ("ts", "event", "consumer_id")):
            continue
        try:
            parse_ts(event["ts"])
        except ValueError:
            continue
        usable.append(dict(event))
    return usable


def _partitions(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(sorted(int(p) for p in value if isinstance(p, int) and not isinstance(p, bool)))


@dataclass
class _Run:
    consumer_id: str
    events: list[dict[str, Any]]
    times: list[datetime]
    name: str = ""
    alias: str = ""
    end: str = "running"
    stop_reason: str | None = None
    #: Index in `events` where the clean leave starts (the stop request), if it stopped.
    leave_index: int | None = None

    @property
    def last_seen(self) -> datetime:
        return self.times[-1]

    def last_assignment(self) -> tuple[int, ...]:
        for event in reversed(self.events):
            if "assignment" in event:
                return _partitions(event["assignment"])
        return ()

    def last_generation(self) -> int | None:
        for event in reversed(self.events):
            if event["event"] in ASSIGNMENT_EVENTS and isinstance(event.get("generation"), int):
                return event["generation"]
        return None


def _split_runs(logs: Sequence[Sequence[Any]]) -> list[_Run]:
    """One run per process: a log is split at each `started` and wherever the consumer id changes."""
    runs: list[_Run] = []
    for log in logs:
        current: _Run | None = None
        for event in valid_events(log):
            if current is None or event["event"] == "started" or event["consumer_id"] != current.consumer_id:
                current = _Run(event["consumer_id"], [], [])
                runs.append(current)
            current.events.append(event)
            current.times.append(parse_ts(event["ts"]))
    runs.sort(key=lambda run: run.times[0])
    seen: dict[str, int] = {}
    for number, run in enumerate(runs, start=1):
        seen[run.consumer_id] = seen.get(run.consumer_id, 0) + 1
        run.name = run.consumer_id if seen[run.consumer_id] == 1 else f"{run.consumer_id}#{seen[run.consumer_id]}"
        run.alias = f"W{number}"
    return runs


def _leave_index(events: list[dict[str, Any]], stopped: int) -> int:
    """Where the clean leave starts: the closing revoke and the export written just before `stopped`."""
    index = stopped
    if index > 0 and events[index - 1]["event"] in ("revoked", "lost"):
        index -= 1
    while index > 0 and events[index - 1]["event"] in CLOSING_EVENTS:
        index -= 1
    return index


def _classify_ends(runs: list[_Run]) -> None:
    """`stopped`, `crashed` or `running` for each run (see docs/report.md, "Crash or still running")."""
    global_end = max(run.last_seen for run in runs)
    for run in runs:
        stopped = next((i for i, e in enumerate(run.events) if e["event"] == "stopped"), None)
        if stopped is not None:
            run.end = "stopped"
            run.stop_reason = str(run.events[stopped].get("reason", "")) or None
            run.leave_index = _leave_index(run.events, stopped)
            del run.events[stopped + 1:], run.times[stopped + 1:]
            continue
        run.end = "crashed" if _was_replaced(run, runs, global_end) else "running"


def _was_replaced(run: _Run, runs: list[_Run], global_end: datetime) -> bool:
    """True if the others went on without this member: it is dead, not merely still running."""
    if (global_end - run.last_seen) / timedelta(milliseconds=1) > CRASH_SILENCE_MS:
        return True
    held = set(run.last_assignment())
    generation = run.last_generation()
    for other in runs:
        if other is run:
            continue
        for event, at in zip(other.events, other.times):
            if at <= run.last_seen or event["event"] not in ASSIGNMENT_EVENTS:
                continue
            if held & set(_partitions(event.get("assignment"))):
                return True  # someone else owns what it held when last seen
            later = event.get("generation")
            if generation is not None and isinstance(later, int) and later > generation:
                return True  # the group moved to a generation it never joined
    return False


# -- the walk ---------------------------------------------------------------------------------------


@dataclass
class _Item:
    at: datetime
    run: _Run
    kind: str  # an event name, or the synthetic `leaving` / `crashed`
    event: dict[str, Any]
    index: int = -1  # in the run's events


@dataclass
class _MemberState:
    assignment: set[int] = field(default_factory=set)
    #: Waiting for its first `assigned` after a join, restart or strategy switch.
    pending: bool = False
    lag: int | None = None
    rate: float = 0.0


@dataclass
class _Episode:
    """A rebalance being measured; becomes a `Rebalance` once it settles."""

    started_at: datetime
    triggers: list[Trigger]
    members_before: tuple[str, ...]
    owners_before: dict[int, str | None]
    assignments_before: dict[str, tuple[int, ...]]
    strategies: list[str] = field(default_factory=list)
    involved: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    interrupted: set[int] = field(default_factory=set)
    unowned_since: dict[int, datetime] = field(default_factory=dict)
    downtime_ms: dict[int, float] = field(default_factory=dict)
    empty_since: dict[str, datetime] = field(default_factory=dict)
    pause_ms: dict[str, float] = field(default_factory=dict)
    join_requested: dict[str, datetime] = field(default_factory=dict)
    first_partitions: dict[str, datetime] = field(default_factory=dict)
    crashes: list[CrashDetection] = field(default_factory=list)
    #: Index of the first group-lag sample taken while this episode was open.
    first_sample: int = 0
    settled_at: datetime | None = None
    members_after: tuple[str, ...] = ()
    owners_after: dict[int, str | None] = field(default_factory=dict)
    assignments_after: dict[str, tuple[int, ...]] = field(default_factory=dict)
    number: int | None = None

    def involve(self, name: str, role: str | None = None) -> None:
        if name not in self.involved:
            self.involved.append(name)
        if role is not None and _ROLE_RANK[role] > _ROLE_RANK[self.roles.get(name, "stayed")]:
            self.roles[name] = role

    def note_strategy(self, strategy: Any) -> None:
        if isinstance(strategy, str) and strategy and strategy not in self.strategies:
            self.strategies.append(strategy)


_ROLE_RANK = {"stayed": 0, "rejoined": 1, "joined": 2, "left": 3, "crashed": 4}


def _ms(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(milliseconds=1)


class _Walk:
    """Replays the merged events; collects rebalances, lag samples and the timeline."""

    def __init__(self, runs: list[_Run], partitions: int, merge_window_ms: float,
                 crash_at: Mapping[str, datetime]) -> None:
        self.runs = runs
        self.partitions = partitions
        self.merge_window_ms = merge_window_ms
        #: Crashed member -> where its crash goes in the timeline (a member not here never dies).
        self.crash_at = crash_at
        #: (time, settled after that step), for placing crashes (see `_crash_moments`).
        self.settled_steps: list[tuple[datetime, bool]] = []
        self.live: dict[str, _MemberState] = {}
        self.open: _Episode | None = None
        self.closed: list[_Episode] = []
        self.lag_samples: list[tuple[datetime, int]] = []
        #: Highest group consumption rate (tx/s) seen: one second of it is "no backlog to speak of".
        self.peak_rate = 0.0
        self.timeline: list[tuple[HistoryEntry, _Episode | None]] = []

    # state of the group

    def owners(self) -> dict[int, str | None]:
        owners: dict[int, str | None] = {p: None for p in range(self.partitions)}
        for name, state in self.live.items():
            for partition in state.assignment:
                owners[partition] = name
        return owners

    def settled(self) -> bool:
        if not self.live:
            return True
        if any(state.pending for state in self.live.values()):
            return False
        counts = [0] * self.partitions
        for state in self.live.values():
            for partition in state.assignment:
                if partition < self.partitions:
                    counts[partition] += 1
        return all(count == 1 for count in counts)

    def assignments(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(sorted(state.assignment)) for name, state in self.live.items()}

    # episodes

    def _new_episode(self, at: datetime, trigger: Trigger) -> _Episode:
        episode = _Episode(started_at=at, triggers=[trigger], members_before=tuple(self.live),
                           owners_before=self.owners(), assignments_before=self.assignments(),
                           first_sample=len(self.lag_samples))
        for partition, owner in episode.owners_before.items():
            if owner is None:
                episode.unowned_since[partition] = at
        for name in self.live:
            episode.involve(name)
        return episode

    def trigger(self, kind: str, run: _Run, at: datetime, detail: str = "") -> None:
        trigger = Trigger(kind, run.name, at, detail)
        if self.open is None:
            self.open = self._new_episode(at, trigger)
        else:
            self.open.triggers.append(trigger)

    def _open_unexplained(self, at: datetime) -> None:
        """The group lost its settled state without a trigger in these logs."""
        last = self.closed[-1] if self.closed else None
        if last is not None and last.settled_at is not None and _ms(last.settled_at, at) <= self.merge_window_ms:
            # A follow-up round of the same rebalance (cooperative rounds, a survivor's late revoke).
            self.closed.pop()
            last.settled_at = None
            self.timeline = [(entry, episode) for entry, episode in self.timeline
                             if not (entry.event == "settled" and episode is last)]
            for partition, owner in self.owners().items():
                if owner is None:
                    last.unowned_since.setdefault(partition, at)
            self.open = last
            return
        self.open = self._new_episode(at, Trigger("unknown", None, at, "no join, leave or crash in these logs"))

    def _close(self, at: datetime) -> None:
        episode = self.open
        assert episode is not None
        self.open = None
        episode.settled_at = at
        episode.members_after = tuple(self.live)
        episode.owners_after = self.owners()
        episode.assignments_after = self.assignments()
        for partition, since in episode.unowned_since.items():
            episode.downtime_ms[partition] = episode.downtime_ms.get(partition, 0.0) + _ms(since, at)
        episode.unowned_since.clear()
        if self.live:
            self.closed.append(episode)
        # else: the group emptied (everybody left or died): nobody rebalanced, so no rebalance.

    # the walk

    def run(self) -> None:
        for item in self._items():
            self._step(item)
        if self.open is not None and self.live:
            self.open.members_after = tuple(self.live)
            self.open.owners_after = self.owners()
            self.open.assignments_after = self.assignments()
            self.closed.append(self.open)

    def _items(self) -> list[_Item]:
        items: list[_Item] = []
        for run in self.runs:
            for index, (event, at) in enumerate(zip(run.events, run.times)):
                if index == run.leave_index:
                    items.append(_Item(at, run, "leaving", event, index))
                items.append(_Item(at, run, event["event"], event, index))
            if run.name in self.crash_at:
                items.append(_Item(self.crash_at[run.name], run, "crashed", {}))
        # Stable: equal times keep each run's own order and the `leaving` marker its place; a crash
        # goes after everything logged at its moment.
        items.sort(key=lambda item: (item.at, item.kind == "crashed"))
        return items

    def _step(self, item: _Item) -> None:
        run, at, kind, event = item.run, item.at, item.kind, item.event
        owners_before = self.owners()
        assignment_before = tuple(sorted(self.live[run.name].assignment)) if run.name in self.live else ()

        if kind == "started" or (run.name not in self.live and kind not in ("crashed", "stopped", "leaving")):
            self.trigger("join", run, at, "started")
            self.live[run.name] = _MemberState(pending=kind == "started")
            self.open.involve(run.name, "joined")  # type: ignore[union-attr]
            self.open.join_requested.setdefault(run.name, at)  # type: ignore[union-attr]
        elif kind in REJOIN_EVENTS:
            detail = f"{event.get('from')} → {event.get('to')}" if kind == "strategy_changed" else ""
            self.trigger(REJOIN_EVENTS[kind], run, at, detail)
            self.live[run.name].pending = True
            self.open.involve(run.name, "rejoined")  # type: ignore[union-attr]
            self.open.join_requested[run.name] = at  # type: ignore[union-attr]
            if kind == "strategy_changed":
                self.open.note_strategy(event.get("from"))  # type: ignore[union-attr]
        elif kind == "leaving":
            self.trigger("leave", run, at, run.stop_reason or "")
            self.open.involve(run.name, "left")  # type: ignore[union-attr]
        elif kind == "crashed":
            self.trigger("crash", run, at, "no `stopped` line; last seen")
            self.open.involve(run.name, "crashed")  # type: ignore[union-attr]
            self.open.crashes.append(  # type: ignore[union-attr]
                CrashDetection(run.name, run.last_seen, at, _died_by(run)))

        state = self.live.get(run.name)
        if state is not None and kind not in ("crashed", "leaving"):
            if isinstance(event.get("assignment"), list):
                state.assignment = set(_partitions(event["assignment"]))
            if kind == "assigned":
                state.pending = False
            if kind == "error" and event.get("code") in REFUSED_CODES:
                state.pending = False
            if kind == "stats":
                state.lag = event.get("lag") if isinstance(event.get("lag"), int) else None
                state.rate = float(event["rate"]) if isinstance(event.get("rate"), (int, float)) else 0.0
        if kind in ("stopped", "crashed"):
            self.live.pop(run.name, None)
        if kind == "stats":
            self.lag_samples.append((at, sum(s.lag for s in self.live.values() if s.lag is not None)))
            self.peak_rate = max(self.peak_rate, sum(s.rate for s in self.live.values()))

        if self.open is None and not self.settled():
            self._open_unexplained(at)
        episode = self.open
        if episode is not None:
            self._measure(episode, item, owners_before, assignment_before)
        self._record(item, episode)
        if episode is not None and self.settled():
            self._close(at)
            self.timeline.append((HistoryEntry(at, "", "settled"), episode))
        self.settled_steps.append((at, self.open is None))

    def _measure(self, episode: _Episode, item: _Item, owners_before: dict[int, str | None],
                 assignment_before: tuple[int, ...]) -> None:
        run, at, kind = item.run, item.at, item.kind
        if kind not in ("crashed", "leaving"):
            episode.note_strategy(item.event.get("strategy"))
        if kind == "strategy_changed":
            episode.note_strategy(item.event.get("to"))
        episode.involve(run.name)
        owners_after = self.owners()
        for partition in range(self.partitions):
            was, now = owners_before.get(partition), owners_after.get(partition)
            if was is not None and now is None:
                episode.interrupted.add(partition)
                episode.unowned_since.setdefault(partition, at)
            elif now is not None and partition in episode.unowned_since:
                since = episode.unowned_since.pop(partition)
                episode.downtime_ms[partition] = episode.downtime_ms.get(partition, 0.0) + _ms(since, at)
        state = self.live.get(run.name)
        if state is not None:
            if assignment_before and not state.assignment:
                episode.empty_since.setdefault(run.name, at)
            elif state.assignment:
                since = episode.empty_since.pop(run.name, None)
                if since is not None:
                    episode.pause_ms[run.name] = episode.pause_ms.get(run.name, 0.0) + _ms(since, at)
                if run.name in episode.join_requested:
                    episode.first_partitions.setdefault(run.name, at)
        if kind in ASSIGNMENT_EVENTS:
            for crash in episode.crashes:
                if crash.detected_at is None and run.name != crash.member and at > crash.crashed_at:
                    crash.detected_at = at
                    crash.detect_ms = _ms(crash.crashed_at, at)
                    crash.detect_min_ms = max(0.0, _ms(crash.died_by, at))
                    self.timeline.append((HistoryEntry(at, crash.member, "crash_detected",
                                                       detail=f"after {format_ms(crash.detect_ms)}"), episode))

    def _record(self, item: _Item, episode: _Episode | None) -> None:
        event = item.event
        if item.kind in ("leaving", "crashed"):
            detail = (item.run.stop_reason or "stopped" if item.kind == "leaving"
                      else "last seen: no `stopped` line follows, the process died after this")
            at, assignment = item.at, tuple(sorted(self.live[item.run.name].assignment)) \
                if item.run.name in self.live else None
            if item.kind == "crashed":
                # Its history shows when it was last seen, wherever the crash itself was placed.
                at, assignment = item.run.last_seen, item.run.last_assignment()
            self.timeline.append((HistoryEntry(at, item.run.name, item.kind, assignment=assignment,
                                               detail=detail), episode))
            return
        if item.kind not in HISTORY_EVENTS:
            return
        assignment = _partitions(event["assignment"]) if isinstance(event.get("assignment"), list) else None
        generation = event.get("generation") if isinstance(event.get("generation"), int) else None
        detail = _detail(event)
        if item.kind in ("revoked", "lost"):
            closing = item.run.leave_index is not None and item.index >= item.run.leave_index
            detail = "on leaving" if closing else ("everything: stop-the-world" if not assignment
                                                   else f"keeps {format_partitions(assignment or ())}")
        self.timeline.append((HistoryEntry(item.at, item.run.name, item.kind, _partitions(event.get("partitions")),
                                           assignment, generation, detail), episode))


def _died_by(run: _Run) -> datetime:
    """The latest moment a crashed member can have died: when its next `stats` line was due.

    The stats timer starts with each consume loop: at start, restart and strategy switch.
    """
    ticks = [at for event, at in zip(run.events, run.times)
             if event["event"] in ("stats", "started", *REJOIN_EVENTS)]
    due = (ticks[-1] if ticks else run.times[0]) + timedelta(milliseconds=STATS_INTERVAL_MS + STATS_SLACK_MS)
    return max(due, run.last_seen)


def _crash_moments(runs: list[_Run], partitions: int, merge_window_ms: float) -> dict[str, datetime]:
    """Where each crash goes: when its member was last seen, or, if a rebalance was still under
    way then, when that rebalance completed (if it did before the member's next `stats` was due).

    A member killed right after its assignment, while others were still being assigned, was part
    of that generation: the coordinator counted it in, so its crash starts the next rebalance
    instead of blending into this one. The group's settled moments come from a first walk in
    which nobody dies.
    """
    crashed = [run for run in runs if run.end == "crashed"]
    if not crashed:
        return {}
    rehearsal = _Walk(runs, partitions, merge_window_ms, crash_at={})
    rehearsal.run()
    moments = {}
    for run in crashed:
        moment = run.last_seen
        settled_then = [settled for at, settled in rehearsal.settled_steps if at <= run.last_seen]
        if settled_then and not settled_then[-1]:
            later = next((at for at, settled in rehearsal.settled_steps if at > run.last_seen and settled), None)
            if later is not None and later <= _died_by(run):
                moment = later
        moments[run.name] = moment
    return moments


def _detail(event: Mapping[str, Any]) -> str:
    kind = event["event"]
    parts: list[str] = []
    if kind == "assigned":
        if isinstance(event.get("join_ms"), (int, float)):
            parts.append(f"join {format_ms(event['join_ms'])}")
        if event.get("kept"):
            parts.append(f"kept {format_partitions(_partitions(event['kept']))}")
        if event.get("moved_in"):
            parts.append(f"moved in {format_partitions(_partitions(event['moved_in']))}")
        if not event.get("assignment"):
            parts.append("idle")
    elif kind == "strategy_changed":
        parts.append(f"{event.get('from')} → {event.get('to')}")
    elif kind == "error":
        parts.append(f"{event.get('code')}: {event.get('reason')}" + (" (fatal)" if event.get("fatal") else ""))
    elif kind == "stopped":
        parts.append(str(event.get("reason", "")))
    elif kind == "started":
        config = event.get("config") if isinstance(event.get("config"), Mapping) else {}
        if config.get("session_timeout_ms"):
            parts.append(f"session timeout {config['session_timeout_ms']} ms")
    return ", ".join(part for part in parts if part)


# -- building the report --------------------------------------------------------------------------


def _partition_count(runs: list[_Run]) -> int:
    """Max partition seen + 1; the `started` config's `partitions` (a topic creation default) otherwise."""
    seen = [p for run in runs for event in run.events
            for key in ("assignment", "partitions") for p in _partitions(event.get(key))]
    if seen:
        return max(seen) + 1
    for run in runs:
        config = run.events[0].get("config")
        if isinstance(config, Mapping) and isinstance(config.get("partitions"), int):
            return int(config["partitions"])
    return 0


def _session_timeout_ms(runs: list[_Run]) -> float:
    timeouts = [run.events[0]["config"].get("session_timeout_ms") for run in runs
                if isinstance(run.events[0].get("config"), Mapping)]
    numbers = [t for t in timeouts if isinstance(t, (int, float))]
    return float(max(numbers)) if numbers else float(DEFAULT_SESSION_TIMEOUT_MS)


def _lag(episode: _Episode, window: list[tuple[datetime, int]], before: int | None,
         threshold: int) -> LagSummary | None:
    """Peak and drain time of the group lag over the samples taken from this rebalance to the next."""
    if not window:
        return None
    baseline = before or 0
    level = max(baseline, threshold, DRAIN_FLOOR)
    peak_index = max(range(len(window)), key=lambda i: window[i][1])
    peak = window[peak_index][1]
    if peak <= level:
        return LagSummary(baseline, peak, level, None, True)
    for at, lag in window[peak_index:]:
        if lag <= level:
            return LagSummary(baseline, peak, level, _ms(episode.started_at, at), True)
    return LagSummary(baseline, peak, level, None, False)


def _pauses(episode: _Episode) -> list[MemberPause]:
    pauses = []
    for name in episode.involved:
        role = episode.roles.get(name, "stayed")
        before = episode.assignments_before.get(name, ())
        after = episode.assignments_after.get(name, ())
        if role in ("left", "crashed"):
            pauses.append(MemberPause(name, role, None, False, before, after))
            continue
        if name not in episode.assignments_after:
            continue  # joined and went away again: its own leave or crash says it
        idle = not after
        if role == "joined":
            got = episode.first_partitions.get(name)
            pause = _ms(episode.join_requested[name], got) if got is not None else None
        else:
            pause = episode.pause_ms.get(name, 0.0)
        pauses.append(MemberPause(name, role, pause, idle, before, after))
    return pauses


def build_report(logs: Sequence[Sequence[Any]], partitions: int | None = None,
                 drain_threshold: int | None = None) -> Report:
    """Merge the event lists of several session logs (one list per log) into a `Report`.

    `partitions` overrides the inferred partition count; `drain_threshold` (messages) the
    lag under which a backlog counts as drained (default: one second of peak traffic).
    """
    runs = _split_runs(logs)
    if not runs:
        raise ReportError("no usable events in these logs")
    groups = sorted({(str(e.get("group")), str(e.get("topic"))) for run in runs for e in run.events})
    if len(groups) > 1:
        listed = ", ".join(f"group {g} / topic {t}" for g, t in groups)
        raise ReportError(f"the logs come from different groups or topics ({listed}): report one group at a time")
    _classify_ends(runs)
    count = partitions if partitions is not None else _partition_count(runs)
    merge_window_ms = _session_timeout_ms(runs) + STATS_INTERVAL_MS
    walk = _Walk(runs, count, merge_window_ms, _crash_moments(runs, count, merge_window_ms))
    walk.run()

    if drain_threshold is None:
        drain_threshold = round(walk.peak_rate)
    rebalances: list[Rebalance] = []
    for number, episode in enumerate(walk.closed, start=1):
        episode.number = number
        window_end = walk.closed[number].first_sample if number < len(walk.closed) else len(walk.lag_samples)
        window = walk.lag_samples[episode.first_sample:window_end]
        before = walk.lag_samples[episode.first_sample - 1][1] if episode.first_sample > 0 else None
        moved = tuple(p for p in range(count) if episode.owners_before.get(p) != episode.owners_after.get(p)
                      and episode.settled_at is not None)
        rebalances.append(Rebalance(
            number=number,
            trigger=" + ".join(t.kind for t in episode.triggers),
            triggers=episode.triggers,
            started_at=episode.started_at,
            settled_at=episode.settled_at,
            settle_ms=_ms(episode.started_at, episode.settled_at) if episode.settled_at else None,
            strategy=" → ".join(episode.strategies),
            members_before=episode.members_before,
            members_after=episode.members_after,
            moved=moved,
            interrupted=tuple(sorted(episode.interrupted)),
            partition_downtime_ms={p: round(ms, 1) for p, ms in sorted(episode.downtime_ms.items())},
            pauses=_pauses(episode),
            crashes=episode.crashes,
            lag=_lag(episode, window, before, drain_threshold),
        ))

    timeline = []
    for entry, episode in walk.timeline:
        if episode is not None and episode.number is None and entry.event == "settled":
            continue  # the settling of a dropped (group emptied) episode
        entry.rebalance = episode.number if episode is not None else None
        if entry.event == "settled" and episode is not None:
            entry.detail = f"rebalance {episode.number} settled"
        timeline.append(entry)

    members = []
    for run in runs:
        strategies = tuple(dict.fromkeys(str(e["strategy"]) for e in run.events if e.get("strategy")))
        history = [entry for entry in timeline if entry.member == run.name
                   and entry.event not in ("leaving", "crash_detected", "settled")]
        members.append(Member(run.name, run.alias, run.consumer_id, strategies, run.times[0], run.last_seen,
                              run.end, run.stop_reason, run.last_assignment() if run.end != "stopped" else (),
                              history))

    warnings = []
    for rebalance in rebalances:
        if rebalance.settled_at is None:
            warnings.append(f"rebalance {rebalance.number} had not settled when the logs end "
                            "(a member still waiting, or a partition owned by a member whose log is missing)")
    group, topic = groups[0]
    return Report(group=group, topic=topic, partitions=count, started_at=min(r.times[0] for r in runs),
                  ended_at=max(r.last_seen for r in runs), members=members, rebalances=rebalances,
                  timeline=timeline, warnings=warnings)


# -- rendering ------------------------------------------------------------------------------------
# Names, reasons and details come from the logs, written from what Kafka said: every rendering
# shows their control characters through `visible` (render_json as JSON escapes, exactly).


def format_partitions(partitions: Sequence[int]) -> str:
    """`[P0,P1,P2]`, as the lab's diagrams write them."""
    return "[" + ",".join(f"P{p}" for p in partitions) + "]"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    if ms == 0:
        return "0 s"
    if abs(ms) < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def _cell(text: str) -> str:
    return visible(text).replace("|", "\\|") or " "


def _clock(moment: datetime) -> str:
    return iso_ms(moment)[11:23]


def _offset(report: Report, moment: datetime) -> str:
    return f"+{_ms(report.started_at, moment) / 1000:.1f}s"


def _partition_cell(partitions: Sequence[int], total: int) -> str:
    if not partitions:
        return "0"
    if len(partitions) == total and total > 1:
        return f"{len(partitions)} (all)"
    return f"{len(partitions)} {format_partitions(partitions)}" if len(partitions) <= 8 else str(len(partitions))


def _trigger_text(report: Report, rebalance: Rebalance) -> str:
    """`crash W2`, `join W3 + leave W1`: kinds with the members' short names."""
    return " + ".join(t.kind if t.member is None else f"{t.kind} {report.alias(t.member)}"
                      for t in rebalance.triggers)


def _members_cell(report: Report, rebalance: Rebalance) -> str:
    before, after = rebalance.members_before, rebalance.members_after
    changes = [f"+{report.alias(m)}" for m in after if m not in before]
    changes += [f"−{report.alias(m)}" for m in before if m not in after]
    return f"{len(before)} → {len(after)}" + (f" ({' '.join(changes)})" if changes else "")


def _pause_text(report: Report, pause: MemberPause) -> str | None:
    alias = report.alias(pause.member)
    if pause.role in ("left", "crashed"):
        return None
    if pause.role == "joined":
        return f"{alias} joined, idle" if pause.pause_ms is None else f"{alias} joined in {format_ms(pause.pause_ms)}"
    text = f"{alias} {format_ms(pause.pause_ms)}"
    return text + ", then idle" if pause.idle and pause.before else text


def _detect_text(crash: CrashDetection) -> str:
    """`2.5 s` or a range `0.4–5.4 s`: the crash happened between last seen and its next `stats` line."""
    if crash.detect_ms is None:
        return "not detected"
    if crash.detect_min_ms is None or crash.detect_ms - crash.detect_min_ms < 100:
        return format_ms(crash.detect_ms)
    if crash.detect_min_ms == 0:
        return f"≤ {format_ms(crash.detect_ms)}"
    low, high = format_ms(crash.detect_min_ms), format_ms(crash.detect_ms)
    if low.endswith(" s") and high.endswith(" s"):
        low = low.removesuffix(" s")
    return f"{low}–{high}"


def _longest_partition_pause(rebalance: Rebalance) -> str:
    if not rebalance.partition_downtime_ms:
        return "0 s"
    longest = max(rebalance.partition_downtime_ms.values())
    worst = [p for p, ms in rebalance.partition_downtime_ms.items() if ms == longest]
    return f"{format_ms(longest)} {format_partitions(worst)}" if len(worst) <= 8 else format_ms(longest)


def _lag_cells(lag: LagSummary | None, last: bool) -> tuple[str, str]:
    if lag is None:
        return "n/a", "n/a"
    peak = f"{lag.peak:,} (before {lag.before:,})"
    if lag.drained_ms is None:
        if lag.drained:
            return peak, f"stayed ≤ {lag.level:,}"
        return peak, "not drained when the logs end" if last else "not drained before the next rebalance"
    return peak, format_ms(lag.drained_ms)


REBALANCE_HEADER = ("| # | Start | Trigger | Strategy | Members | Moved | Interrupted | Pause per member "
                    "| Longest partition pause | Crash detected after | All owned after | Lag peak "
                    "| Lag drained after |")


def render_markdown(report: Report) -> str:
    lines = [
        f"# Rebalance report: group `{visible(report.group)}`, topic `{visible(report.topic)}`",
        "",
        f"{len(report.members)} member(s), {report.partitions} partitions, {len(report.rebalances)} rebalance(s), "
        f"from {iso_ms(report.started_at)} to {iso_ms(report.ended_at)} "
        f"({_ms(report.started_at, report.ended_at) / 1000:.1f} s). "
        "How each column is measured: docs/report.md.",
        "",
    ]
    for warning in report.warnings:
        lines.append(f"> **Warning:** {visible(warning)}")
    if report.warnings:
        lines.append("")
    lines += ["## Members", "", "| Member | Consumer id | Strategy | First seen | Last seen | End | Last assignment |",
              "|---|---|---|---|---|---|---|"]
    for member in report.members:
        end = {"stopped": f"stopped ({member.stop_reason})", "crashed": "💥 crashed (no `stopped` line)",
               "running": "still running"}[member.end]
        lines.append("| " + " | ".join(_cell(c) for c in (
            member.alias, member.name, ", ".join(member.strategies), _offset(report, member.first_seen),
            _offset(report, member.last_seen), end,
            format_partitions(member.final_assignment) if member.end != "stopped" else "–")) + " |")
    lines += ["", "## Rebalances", ""]
    if not report.rebalances:
        lines.append("No rebalance in these logs.")
    else:
        lines += [REBALANCE_HEADER, "|" + "---|" * REBALANCE_HEADER.count(" | ") + "---|"]
        for rebalance in report.rebalances:
            pauses = [t for t in (_pause_text(report, p) for p in rebalance.pauses) if t]
            detect = ", ".join(_detect_text(c) for c in rebalance.crashes) or "–"
            settled = format_ms(rebalance.settle_ms) if rebalance.settled_at else "not settled"
            peak, drained = _lag_cells(rebalance.lag, rebalance is report.rebalances[-1])
            lines.append("| " + " | ".join(_cell(c) for c in (
                str(rebalance.number), _offset(report, rebalance.started_at), _trigger_text(report, rebalance),
                rebalance.strategy,
                _members_cell(report, rebalance), _partition_cell(rebalance.moved, report.partitions),
                _partition_cell(rebalance.interrupted, report.partitions), ", ".join(pauses) or "–",
                _longest_partition_pause(rebalance), detect, settled, peak, drained)) + " |")
    lines += ["", "## Assignment history", ""]
    for member in report.members:
        lines += [f"### {member.alias}: {visible(member.name)}", "",
                  "| Time (UTC) | Since start | Rebalance | Event | Partitions | Assignment after | Gen | Detail |",
                  "|---|---|---|---|---|---|---|---|"]
        for entry in member.history:
            lines.append("| " + " | ".join(_cell(c) for c in (
                _clock(entry.at), _offset(report, entry.at),
                str(entry.rebalance) if entry.rebalance else "", entry.event,
                format_partitions(entry.partitions) if entry.partitions else "",
                format_partitions(entry.assignment) if entry.assignment is not None else "",
                str(entry.generation) if entry.generation is not None else "", entry.detail)) + " |")
        lines.append("")
    lines += ["## Sequence", "", "```mermaid", render_mermaid(report), "```", ""]
    return "\n".join(lines)


def _note_text(text: str) -> str:
    # `;` ends a statement and `#` starts an entity code in Mermaid.
    return text.replace(";", ",").replace("#", "no. ")


def _span(report: Report, names: Sequence[str]) -> str:
    aliases = [m.alias for m in report.members if m.name in names]
    if not aliases:
        return "Coord"
    return aliases[0] if len(aliases) == 1 else f"{aliases[0]},{aliases[-1]}"


def render_mermaid(report: Report) -> str:
    """A `sequenceDiagram` in the style of the lab's: members, the coordinator, notes for what happened."""
    lines = ["sequenceDiagram"]
    for member in report.members:
        lines.append(f"    participant {member.alias} as 💰 {member.alias} {_note_text(member.name)}")
    lines.append("    participant Coord as 👑 Group Coordinator")
    by_number = {r.number: r for r in report.rebalances}
    for entry in report.timeline:
        alias = report.alias(entry.member)
        rebalance = by_number.get(entry.rebalance or 0)
        if entry.event == "started":
            lines += [f"    Note over {alias}: ▶ {alias} starts", f"    {alias}->>Coord: JoinGroup()"]
        elif entry.event in REJOIN_EVENTS:
            what = f"strategy {entry.detail}" if entry.event == "strategy_changed" else "restart"
            lines += [f"    Note over {alias}: 🔁 {_note_text(what)}",
                      f"    {alias}->>Coord: LeaveGroup() + JoinGroup()"]
        elif entry.event == "leaving":
            lines += [f"    Note over {alias}: ⏹ {alias} leaves ({_note_text(entry.detail)})",
                      f"    {alias}->>Coord: LeaveGroup()"]
        elif entry.event == "crashed":
            lines.append(f"    Note over {alias}: 💥 CRASH {alias} (last seen {_clock(entry.at)})")
        elif entry.event == "crash_detected":
            lines.append(f"    Note over Coord: ⏳ no heartbeat from {alias}: rebalance {entry.detail}")
        elif entry.event == "revoked" and entry.detail != "on leaving":  # its own doing, not the coordinator's
            everything = " ALL" if entry.assignment == () and entry.partitions else ""
            lines.append(f"    Coord->>{alias}: Revoke{everything} {format_partitions(entry.partitions)}")
        elif entry.event == "lost" and entry.detail != "on leaving":
            lines.append(f"    Coord-x{alias}: Lost {format_partitions(entry.partitions)}")
        elif entry.event == "assigned":
            if entry.partitions:
                lines.append(f"    Coord->>{alias}: Assign {format_partitions(entry.partitions)}")
            elif not entry.assignment:
                lines.append(f"    Coord->>{alias}: Assign [] (idle)")
        elif entry.event in ("paused", "resumed"):
            lines.append(f"    Note over {alias}: {'⏸ paused' if entry.event == 'paused' else '▶ resumed'}")
        elif entry.event == "error" and (entry.detail.split(":")[0] in REFUSED_CODES or "(fatal)" in entry.detail):
            lines.append(f"    Note over {alias}: ⚠️ {_note_text(entry.detail.split(':')[0])}")
        elif entry.event == "settled" and rebalance is not None:
            span = _span(report, rebalance.members_after)
            lines.append(f"    Note over {span}: ✅ {_settled_note(report, rebalance)}")
    # One statement per line: a newline in a name or detail would end it early.
    return "\n".join(visible(line) for line in lines)


def _settled_note(report: Report, rebalance: Rebalance) -> str:
    text = (f"rebalance {rebalance.number} ({_trigger_text(report, rebalance)}): all {report.partitions} partitions "
            f"owned after {format_ms(rebalance.settle_ms)}")
    stopped = [p for p in rebalance.pauses if p.role in ("stayed", "rejoined") and p.pause_ms]
    kept = [p for p in rebalance.pauses if p.role == "stayed" and not p.pause_ms and p.before]
    if stopped:
        text += ", PAUSE " + ", ".join(f"{report.alias(p.member)} {format_ms(p.pause_ms)}" for p in stopped)
    if kept:
        text += ", " + ", ".join(report.alias(p.member) for p in kept) + " kept consuming"
    if rebalance.interrupted:
        text += (f", {format_partitions(rebalance.interrupted)} unconsumed up to "
                 f"{format_ms(max(rebalance.partition_downtime_ms[p] for p in rebalance.interrupted))}")
    return _note_text(text)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 1)
    return value


def render_json(report: Report) -> str:
    """The report as JSON (`version` 1): the model's fields, times as ISO strings, durations in ms."""
    document = {"version": 1, **_jsonable(report)}
    document.pop("timeline")  # the members' histories and the rebalances say it all
    text = json_visible(json.dumps(document, indent=2, ensure_ascii=False))
    # Partition lists on one line: `[0, 1, 2]`, not one number per line.
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text) + "\n"


_NUMBER_LIST = re.compile(r"\[\s*(-?\d+(?:\.\d+)?(?:,\s*-?\d+(?:\.\d+)?)*)\s*\]")
