"""Provides the changelog's side of consumption: what is written, what a commit may cover, what is restored.

The coordinator owns the changelog writer and restorer, the source partitions being restored
(assigned but not consumed until their state is read back), and the bookkeeping of failed
or unacknowledged records. The worker's rebalance callbacks ask it what to do with each
partition they are given (`plan_assignment`) and hand the finished restores over to
consumption; the rules are in docs/consistency.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError

from balance_tui.config import Settings
from balance_tui.core.changelog import PartitionRestore
from balance_tui.kafka.admin import ensure_topic, topic_partition_count
from balance_tui.kafka.changelog import (
    ChangelogRestorer,
    ChangelogWriter,
    RestoreProgress,
)

#: Changelog failures in a row (no successful flush between them) before the worker gives up.
CHANGELOG_RETRIES = 3
#: Changelog records unacknowledged for this long are reported (the loop itself never waits for them).
ACK_REPORT_SECONDS = 10.0


@dataclass(frozen=True)
class AssignmentPlan:
    """For the partitions of one assignment: where those kept in memory continue, which are restored."""

    kept_at: dict[int, int]
    to_restore: list[int]


def plan_assignment(partitions: Iterable[int], uninterrupted: bool, held_back: set[int],
                    positions: Mapping[int, int]) -> AssignmentPlan:
    """Keep a partition's in-memory state only if an eager rebalance gave it straight back.

    `uninterrupted`: no other generation came between the revoke and this assignment, so nobody
    else owned the partition meanwhile. Everything else is restored from the changelog.
    """
    kept_at: dict[int, int] = {}
    to_restore: list[int] = []
    for partition in partitions:
        if uninterrupted and partition in held_back and partition in positions:
            kept_at[partition] = positions[partition]
        else:
            to_restore.append(partition)
    return AssignmentPlan(kept_at, to_restore)


@dataclass(frozen=True)
class CommitGate:
    """May the offsets be committed? If not, `report` says why when it is worth saying."""

    ready: bool
    report: str | None = None


class ChangelogCoordinator:
    """The changelog writer and restorer of one member, and the restores in progress."""

    def __init__(self, writer: ChangelogWriter, restorer: ChangelogRestorer) -> None:
        self.writer = writer
        self.restorer = restorer
        #: Source partitions assigned but not consumed until their state is restored.
        self.restoring: set[int] = set()
        #: Failed flushes in a row.
        self.failures = 0
        self._unacknowledged_since: float | None = None

    @classmethod
    def open(cls, settings: Settings, consumer_id: str, partition_count: int) -> tuple[ChangelogCoordinator | None,
                                                                                        int, str | None]:
        """(coordinator, partition count, problem): None and the reason when the changelog cannot be used."""
        topic = settings.changelog_topic_name
        config = settings.client_config()
        # Changelog partition = source partition, so both must have the same count.
        partition_count = topic_partition_count(config, settings.topic) or partition_count
        try:
            ensure_topic(config, topic, partition_count, config={"cleanup.policy": "compact"})
        except Exception:  # noqa: BLE001 - some brokers refuse compaction settings; try plain
            ensure_topic(config, topic, partition_count)
        changelog_count = topic_partition_count(config, topic)
        if changelog_count != partition_count:
            return None, partition_count, (f"{topic} has {changelog_count} partitions but {settings.topic} has "
                                           f"{partition_count}")
        return (cls(ChangelogWriter(config, topic, consumer_id), ChangelogRestorer(config, topic, consumer_id)),
                partition_count, None)

    # -- writing ---------------------------------------------------------------------------

    @property
    def broken(self) -> bool:
        """A record failed: the changelog may end before what this member applied."""
        return self.writer.broken

    @property
    def first_error(self) -> str | None:
        return self.writer.first_error

    def commit_gate(self, wait_seconds: float, now: float) -> CommitGate:
        """Are the records written so far acknowledged (waiting at most `wait_seconds`)?"""
        if self.writer.flush(timeout=wait_seconds):
            self._unacknowledged_since = None
            self.failures = 0
            return CommitGate(ready=True)
        if self._unacknowledged_since is None:
            self._unacknowledged_since = now
            return CommitGate(ready=False)
        waited = now - self._unacknowledged_since
        if self.writer.broken or waited >= ACK_REPORT_SECONDS:
            why = self.writer.first_error or f"for {waited:.0f} s"
            return CommitGate(ready=False, report=f"changelog not acknowledged ({why}); offsets not committed")
        return CommitGate(ready=False)

    def note_failure(self) -> int:
        """A failed write was found: count it; the failures in a row."""
        self.failures += 1
        return self.failures

    def drop_unsent(self) -> None:
        """Forget every record not yet acknowledged and start a fresh writer (see ChangelogWriter.reopen)."""
        self.writer.reopen()

    # -- restoring -------------------------------------------------------------------------

    def start_restores(self, partitions: list[int]) -> None:
        self.restoring |= set(partitions)
        self.restorer.start(partitions)

    def cancel_restores(self, partitions: Iterable[int]) -> list[int]:
        """Stop restoring those of `partitions` that were being restored; the ones stopped."""
        cancelled = [p for p in partitions if p in self.restoring]
        if cancelled:
            self.restorer.cancel(cancelled)
        self.restoring.difference_update(cancelled)
        return cancelled

    def step(self) -> tuple[list[tuple[PartitionRestore, float]], list[KafkaError]]:
        """Read more of the changelog: (restores that reached the end with their seconds, errors met)."""
        finished = [(restore, seconds) for restore, seconds in self.restorer.step()
                    if restore.partition in self.restoring]
        for restore, _ in finished:
            self.restoring.discard(restore.partition)
        errors, self.restorer.errors = list(self.restorer.errors), []
        return finished, errors

    def progress(self) -> dict[int, RestoreProgress]:
        return self.restorer.progress() if self.restoring else {}

    def close(self) -> None:
        for closable in (self.writer, self.restorer):
            try:
                closable.close()
            except Exception:  # noqa: BLE001 - closing on the way out must not hide why we stop
                pass
