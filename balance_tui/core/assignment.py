"""Assignment bookkeeping: what this member owns and how each rebalance changed it.

The tracker is fed the rebalance callbacks in order (with the time they happened)
and turns them into timeline entries with measured durations: how long the join
took, how long each partition was not consumed here, what was kept and what moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from balance_tui.core.rows import PartitionRestore, TimelineEntry

#: The client-side assignors librdkafka implements (the classic protocol), in the lab's order.
CLASSIC_STRATEGIES = ("range", "roundrobin", "cooperative-sticky")


def format_partitions(partitions: tuple[int, ...] | list[int] | set[int]) -> str:
    """`[0, 1, 2]`: the lab's way of printing partition lists."""
    return "[" + ", ".join(str(p) for p in sorted(partitions)) + "]"


@dataclass
class AssignmentTracker:
    """This member's assignment and rebalance history. Pure: times are passed in."""

    assignment: set[int] = field(default_factory=set)
    join_started: datetime | None = None
    revoked_at: dict[int, datetime] = field(default_factory=dict)
    #: Partitions revoked by an eager rebalance, kept in memory until the next
    #: assignment says whether they came back (then nothing moved) or not.
    pending_revoked: set[int] = field(default_factory=set)
    history: list[TimelineEntry] = field(default_factory=list)
    rebalances: int = 0
    #: Partitions revoked eagerly that the last assignment did not give back.
    last_dropped: set[int] = field(default_factory=set)

    def joining(self, now: datetime) -> None:
        """A (re)join started: subscribe, restart or strategy switch."""
        self.join_started = now

    def assigned(self, partitions: list[int], incremental: bool, now: datetime,
                 generation: int | None = None, member_id: str | None = None) -> TimelineEntry:
        """Partitions were assigned; `incremental` for cooperative protocols."""
        added = set(partitions)
        before = set(self.assignment)
        if incremental:
            self.assignment |= added
        else:
            self.assignment = set(added)
        moved_in = tuple(sorted(p for p in added if p not in before and p not in self.pending_revoked))
        kept = tuple(sorted(p for p in self.assignment if p in before or p in self.pending_revoked))
        downtime = {
            p: (now - self.revoked_at[p]).total_seconds() * 1000
            for p in sorted(added) if p in self.revoked_at
        }
        for p in added:
            self.revoked_at.pop(p, None)
        # A partition revoked and not given back has moved to another member: when it returns
        # one day, that is a move in, not a pause of this rebalance.
        for p in [p for p in self.revoked_at if p not in self.assignment]:
            del self.revoked_at[p]
        join_ms = None
        if self.join_started is not None:
            join_ms = (now - self.join_started).total_seconds() * 1000
            self.join_started = None
        self.last_dropped = self.pending_revoked - self.assignment
        self.pending_revoked.clear()
        self.rebalances += 1
        entry = TimelineEntry(
            at=now, kind="assigned", partitions=tuple(sorted(added)),
            assignment=tuple(sorted(self.assignment)), join_ms=join_ms, kept=kept,
            moved_in=moved_in, downtime_ms=downtime, generation=generation, member_id=member_id,
            detail=self._assigned_detail(added, kept, moved_in),
        )
        self.history.append(entry)
        return entry

    def revoked(self, partitions: list[int], incremental: bool, now: datetime,
                generation: int | None = None, member_id: str | None = None) -> TimelineEntry:
        removed = set(partitions)
        self.assignment -= removed
        for p in removed:
            self.revoked_at[p] = now
        if not incremental:
            self.pending_revoked |= removed
            # An eager revoke stops everything until the next assignment: that wait is the pause.
            # A cooperative revoke pauses nothing else, and its next assignment follows at once.
            self.join_started = now
        entry = TimelineEntry(
            at=now, kind="revoked", partitions=tuple(sorted(removed)),
            assignment=tuple(sorted(self.assignment)), generation=generation, member_id=member_id,
            detail=(f"revoked {len(removed)} partition(s), keeps {format_partitions(self.assignment)}"
                    if incremental else f"stop-the-world: revoked all {len(removed)} partition(s)"),
        )
        self.history.append(entry)
        return entry

    def lost(self, partitions: list[int], now: datetime,
             generation: int | None = None, member_id: str | None = None) -> TimelineEntry:
        removed = set(partitions)
        self.assignment -= removed
        # Partitions held back from an eager revoke are gone too: the group moved on without us.
        self.last_dropped = set(self.pending_revoked)
        self.pending_revoked.clear()
        for p in removed:
            self.revoked_at[p] = now
        self.join_started = now
        entry = TimelineEntry(
            at=now, kind="lost", partitions=tuple(sorted(removed)),
            assignment=tuple(sorted(self.assignment)), generation=generation, member_id=member_id,
            detail=f"unexpectedly lost {len(removed)} partition(s) (session expired or fenced)",
        )
        self.history.append(entry)
        return entry

    def note(self, kind: str, now: datetime, detail: str, partitions: tuple[int, ...] = (),
             restores: tuple[PartitionRestore, ...] = ()) -> TimelineEntry:
        """Any other timeline line: strategy change, restart, pause, resume, error, restores."""
        entry = TimelineEntry(at=now, kind=kind, partitions=partitions,
                              assignment=tuple(sorted(self.assignment)), detail=detail, restores=restores)
        self.history.append(entry)
        return entry

    def reset_membership(self) -> None:
        """The consumer was closed: the next join starts from nothing."""
        self.assignment.clear()
        self.pending_revoked.clear()

    @staticmethod
    def _assigned_detail(added: set[int], kept: tuple[int, ...], moved_in: tuple[int, ...]) -> str:
        if not added and not kept:
            return "no partitions: idle (more members than partitions)"
        if not added:
            return "nothing new this round"
        parts = [f"received {len(added)} partition(s)"]
        if moved_in:
            parts.append(f"moved in {format_partitions(moved_in)}")
        if kept:
            parts.append(f"kept {format_partitions(kept)}")
        return ", ".join(parts)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds: `2026-11-25T11:24:30.123Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


