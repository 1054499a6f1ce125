"""Provides what a static member (KIP-345, `group.instance.id`) remembers between two of its runs.

A static member that comes back within its session timeout is handed its old partitions
without a rebalance: the group's generation does not change. To say so on the timeline
("rejoined as static member: no rebalance"), each run records the generation and the
assignment it last had, in a small file per group and instance id in the state directory.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from balance_tui import locations
from balance_tui.core.assignment import format_partitions


@dataclass(frozen=True)
class StaticMemberRecord:
    """The last assignment a static member saw: its generation (epoch), partitions, and who it was."""

    generation: int | None
    assignment: tuple[int, ...]
    consumer_id: str
    at: str


def record_path(group: str, instance_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{group}--{instance_id}")
    path = locations.state_dir() / "static-members"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{safe}.json"


def load_static_record(group: str, instance_id: str) -> StaticMemberRecord | None:
    try:
        data = json.loads(record_path(group, instance_id).read_text())
        return StaticMemberRecord(generation=data.get("generation"), assignment=tuple(data.get("assignment", ())),
                                  consumer_id=str(data.get("consumer_id", "")), at=str(data.get("at", "")))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def save_static_record(group: str, instance_id: str, record: StaticMemberRecord) -> None:
    path = record_path(group, instance_id)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({**asdict(record), "assignment": list(record.assignment)}))
        tmp.replace(path)
    except OSError:
        pass  # a timeline nicety: never worth stopping the consumer for


def describe_static_rejoin(before: StaticMemberRecord | None, generation: int | None,
                           assignment: tuple[int, ...]) -> tuple[bool, str] | None:
    """(no rebalance?, timeline text) for the first assignment of a run, None when there was no run before."""
    if before is None:
        return None
    owned = format_partitions(assignment)
    if generation is not None and generation == before.generation and tuple(sorted(assignment)) == tuple(
            sorted(before.assignment)):
        return True, (f"rejoined as static member: no rebalance (generation {generation} unchanged, "
                      f"{owned} handed back as they were)")
    return False, (f"rejoined as static member after a rebalance: generation {before.generation} → {generation}, "
                   f"owned {format_partitions(before.assignment)} before, {owned} now")


class StaticMembership:
    """One run of a static member: what it owned last time, and whether the first assignment shows a rebalance."""

    def __init__(self, group: str, instance_id: str) -> None:
        self.group = group
        self.instance_id = instance_id
        self.before = load_static_record(group, instance_id)
        self._first = True

    def assigned(self, generation: int | None, assignment: tuple[int, ...], consumer_id: str,
                 at: str) -> tuple[bool, str] | None:
        """Remember this assignment; for the run's first one, (no rebalance?, timeline text) or None."""
        verdict = describe_static_rejoin(self.before, generation, assignment) if self._first else None
        self._first = False
        save_static_record(self.group, self.instance_id,
                           StaticMemberRecord(generation=generation, assignment=assignment, consumer_id=consumer_id,
                                              at=at))
        return verdict
