"""Provides the session logs read into runs: one member process each, how it ended, what it owned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from balance_tui.core.report.model import (
    ASSIGNMENT_EVENTS,
    CLOSING_EVENTS,
    CRASH_SILENCE_MS,
)

# -- reading the logs ---------------------------------------------------------------------------


def parse_ts(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
        for event, at in zip(other.events, other.times, strict=False):
            if at <= run.last_seen or event["event"] not in ASSIGNMENT_EVENTS:
                continue
            if held & set(_partitions(event.get("assignment"))):
                return True  # someone else owns what it held when last seen
            later = event.get("generation")
            if generation is not None and isinstance(later, int) and later > generation:
                return True  # the group moved to a generation it never joined
    return False
