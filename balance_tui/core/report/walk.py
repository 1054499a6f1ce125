"""Provides the walk: every member's events replayed in global time order, cut into rebalance episodes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from balance_tui.core.events import Event
from balance_tui.core.formatting import format_lab_partitions as format_partitions
from balance_tui.core.formatting import format_ms, ms_between
from balance_tui.core.report.model import (
    ASSIGNMENT_EVENTS,
    HISTORY_EVENTS,
    REFUSED_CODES,
    REJOIN_EVENTS,
    STATS_INTERVAL_MS,
    STATS_SLACK_MS,
    CrashDetection,
    HistoryEntry,
    Trigger,
)
from balance_tui.core.report.runs import _partitions, _Run

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
    lag_seconds: float | None = None
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
        #: The group's lag in seconds at each `stats` line: the largest of the live members' latest (None: unknown).
        self.seconds_samples: list[tuple[datetime, float]] = []
        #: Highest group consumption rate (tx/s) seen: one second of it is "no backlog to speak of".
        self.peak_rate = 0.0
        self.timeline: list[tuple[HistoryEntry, _Episode | None]] = []

    # state of the group

    def owners(self) -> dict[int, str | None]:
        owners: dict[int, str | None] = dict.fromkeys(range(self.partitions))
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
        if last is not None and last.settled_at is not None and ms_between(last.settled_at, at) <= self.merge_window_ms:
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
            episode.downtime_ms[partition] = episode.downtime_ms.get(partition, 0.0) + ms_between(since, at)
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
            for index, (event, at) in enumerate(zip(run.events, run.times, strict=False)):
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
        run, at = item.run, item.at
        owners_before = self.owners()
        assignment_before = tuple(sorted(self.live[run.name].assignment)) if run.name in self.live else ()
        self._trigger(item)
        self._update_member(item)
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

    # one handler per kind of trigger

    def _trigger(self, item: _Item) -> None:
        """The rebalance trigger this item is, if any: a join, a rejoin, a leave or a crash."""
        kind = item.kind
        if kind == "started" or (item.run.name not in self.live and kind not in ("crashed", "stopped", "leaving")):
            self._joined(item)
        elif kind in REJOIN_EVENTS:
            self._rejoined(item)
        elif kind == "leaving":
            self._leaving(item)
        elif kind == "crashed":
            self._crashed(item)

    def _joined(self, item: _Item) -> None:
        run = item.run
        self.trigger("join", run, item.at, "started")
        self.live[run.name] = _MemberState(pending=item.kind == "started")
        assert self.open is not None
        self.open.involve(run.name, "joined")
        self.open.join_requested.setdefault(run.name, item.at)

    def _rejoined(self, item: _Item) -> None:
        run, event, kind = item.run, item.event, item.kind
        detail = f"{event.get('from')} → {event.get('to')}" if kind == "strategy_changed" else ""
        self.trigger(REJOIN_EVENTS[Event(kind)], run, item.at, detail)
        self.live[run.name].pending = True
        assert self.open is not None
        self.open.involve(run.name, "rejoined")
        self.open.join_requested[run.name] = item.at
        if kind == "strategy_changed":
            self.open.note_strategy(event.get("from"))

    def _leaving(self, item: _Item) -> None:
        self.trigger("leave", item.run, item.at, item.run.stop_reason or "")
        assert self.open is not None
        self.open.involve(item.run.name, "left")

    def _crashed(self, item: _Item) -> None:
        run = item.run
        self.trigger("crash", run, item.at, "no `stopped` line; last seen")
        assert self.open is not None
        self.open.involve(run.name, "crashed")
        self.open.crashes.append(CrashDetection(run.name, run.last_seen, item.at, _died_by(run)))

    # one update per kind of event

    def _update_member(self, item: _Item) -> None:
        """What the event says of its member: its assignment, whether it still waits, its lag and rate."""
        run, kind, event = item.run, item.kind, item.event
        state = self.live.get(run.name)
        if state is not None and kind not in ("crashed", "leaving"):
            if isinstance(event.get("assignment"), list):
                state.assignment = set(_partitions(event["assignment"]))
            if kind == "assigned" or (kind == "error" and event.get("code") in REFUSED_CODES):
                state.pending = False  # assigned, or refused: no longer waiting to be assigned
            if kind == "stats":
                state.lag = event.get("lag") if isinstance(event.get("lag"), int) else None
                seconds = event.get("lag_seconds")
                state.lag_seconds = float(seconds) if isinstance(seconds, (int, float)) else None
                state.rate = float(event["rate"]) if isinstance(event.get("rate"), (int, float)) else 0.0
        if kind in ("stopped", "crashed"):
            self.live.pop(run.name, None)
        if kind == "stats":
            self.lag_samples.append((item.at, sum(s.lag for s in self.live.values() if s.lag is not None)))
            ages = [s.lag_seconds for s in self.live.values() if s.lag_seconds is not None]
            if ages:
                self.seconds_samples.append((item.at, max(ages)))
            self.peak_rate = max(self.peak_rate, sum(s.rate for s in self.live.values()))

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
                episode.downtime_ms[partition] = episode.downtime_ms.get(partition, 0.0) + ms_between(since, at)
        state = self.live.get(run.name)
        if state is not None:
            if assignment_before and not state.assignment:
                episode.empty_since.setdefault(run.name, at)
            elif state.assignment:
                empty_since = episode.empty_since.pop(run.name, None)
                if empty_since is not None:
                    episode.pause_ms[run.name] = episode.pause_ms.get(run.name, 0.0) + ms_between(empty_since, at)
                if run.name in episode.join_requested:
                    episode.first_partitions.setdefault(run.name, at)
        if kind in ASSIGNMENT_EVENTS:
            for crash in episode.crashes:
                if crash.detected_at is None and run.name != crash.member and at > crash.crashed_at:
                    crash.detected_at = at
                    crash.detect_ms = ms_between(crash.crashed_at, at)
                    crash.detect_min_ms = max(0.0, ms_between(crash.died_by, at))
                    self.timeline.append((HistoryEntry(at, crash.member, "crash_detected",
                                                       detail=f"after {format_ms(crash.detect_ms)}"), episode))

    def _record(self, item: _Item, episode: _Episode | None) -> None:
        entry = history_entry(item, self.live)
        if entry is not None:
            self.timeline.append((entry, episode))


def history_entry(item: _Item, live: Mapping[str, _MemberState]) -> HistoryEntry | None:
    """The line of a member's history this item makes, if any (the report's timeline)."""
    event = item.event
    if item.kind in ("leaving", "crashed"):
        detail = (item.run.stop_reason or "stopped" if item.kind == "leaving"
                  else "last seen: no `stopped` line follows, the process died after this")
        at, assignment = item.at, tuple(sorted(live[item.run.name].assignment)) \
            if item.run.name in live else None
        if item.kind == "crashed":
            # Its history shows when it was last seen, wherever the crash itself was placed.
            at, assignment = item.run.last_seen, item.run.last_assignment()
        return HistoryEntry(at, item.run.name, item.kind, assignment=assignment, detail=detail)
    if item.kind not in HISTORY_EVENTS:
        return None
    assignment = _partitions(event["assignment"]) if isinstance(event.get("assignment"), list) else None
    generation = event.get("generation") if isinstance(event.get("generation"), int) else None
    detail = _detail(event)
    if item.kind in ("revoked", "lost"):
        closing = item.run.leave_index is not None and item.index >= item.run.leave_index
        detail = "on leaving" if closing else ("everything: stop-the-world" if not assignment
                                               else f"keeps {format_partitions(assignment or ())}")
    return HistoryEntry(item.at, item.run.name, item.kind, _partitions(event.get("partitions")), assignment,
                        generation, detail)


def _died_by(run: _Run) -> datetime:
    """The latest moment a crashed member can have died: when its next `stats` line was due.

    The stats timer starts with each consume loop: at start, restart and strategy switch.
    """
    ticks = [at for event, at in zip(run.events, run.times, strict=False)
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
        config: Mapping[str, Any] = event["config"] if isinstance(event.get("config"), Mapping) else {}
        if config.get("session_timeout_ms"):
            parts.append(f"session timeout {config['session_timeout_ms']} ms")
    return ", ".join(part for part in parts if part)
