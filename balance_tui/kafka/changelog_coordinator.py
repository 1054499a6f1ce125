"""Provides the changelog's side of consumption: what a flush writes, which partitions are restored.

The coordinator owns the changelog writer and restorer, the record cache (the customers changed
since the last flush, per partition), the source partitions being fenced and restored (assigned
but not consumed until their state is read back), and the position each partition's changelog
vouches for. The worker's rebalance callbacks ask it what to do with each partition they are
given (`plan_assignment`) and hand the finished restores over to consumption; the rules are in
docs/consistency.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

from balance_tui.config import Settings
from balance_tui.core.changelog import POSITION_KEY, PartitionRestore, encode_position, encode_state
from balance_tui.core.ledger import CustomerState
from balance_tui.kafka.admin import ensure_topic, topic_partition_count
from balance_tui.kafka.changelog import (
    REFUSED_CODES,
    ChangelogRestorer,
    ChangelogWriter,
    FlushOutcome,
    RestoreProgress,
)

#: Compacted, in segments small enough for the log cleaner to reach: Kafka never compacts the active
#: segment, and the defaults (1 GB, 7 days) would leave a restore reading every flush ever written.
CHANGELOG_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(64 * 1024 * 1024),
                          "segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.5"}
#: Unflushed changes this old are reported (the loop itself never waits for the broker).
ACK_REPORT_SECONDS = 10.0

_LOG = logging.getLogger(__name__)


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


class ChangelogCoordinator:
    """The changelog writer and restorer of one member, its record cache, and the restores in progress."""

    def __init__(self, writer: ChangelogWriter, restorer: ChangelogRestorer, writer_name: str) -> None:
        self.writer = writer
        self.restorer = restorer
        self._writer_name = writer_name
        #: Source partitions assigned but not consumed until their state is restored (fencing first).
        self.restoring: set[int] = set()
        #: Of those, the ones whose previous writer is still being fenced (restore starts after).
        self.fencing: set[int] = set()
        #: The record cache: customers changed since the last flush that included them, per partition.
        self.dirty: defaultdict[int, set[str]] = defaultdict(set)
        #: Per partition, the transaction committing in the background: its customers (back into the
        #: cache if it fails) and the source offset it commits (None: none).
        self.in_flight: dict[int, tuple[set[str], int | None]] = {}
        #: Per partition, the position its changelog vouches for (the highest state-changing offset).
        self.position: dict[int, int] = {}
        #: Since when changes wait for a flush that keeps failing (None: the last flush committed).
        self.failing_since: float | None = None
        #: Why the cluster refuses this member transactions (authorisation, an old broker): None while it does not.
        self.refused: str | None = None
        self._errors: list[KafkaError] = []

    @classmethod
    def open(cls, settings: Settings, consumer_id: str, partition_count: int) -> tuple[ChangelogCoordinator | None,
                                                                                        int, str | None]:
        """(coordinator, partition count, problem): None and the reason when the changelog cannot be used."""
        topic = settings.changelog_topic_name
        config = settings.client_config()
        # Changelog partition = source partition, so both must have the same count.
        partition_count = topic_partition_count(config, settings.topic) or partition_count
        try:
            ensure_topic(config, topic, partition_count, config=CHANGELOG_TOPIC_CONFIG)
        except Exception:  # noqa: BLE001 - some brokers refuse compaction settings; try plain
            ensure_topic(config, topic, partition_count)
        changelog_count = topic_partition_count(config, topic)
        if changelog_count != partition_count:
            return None, partition_count, (f"{topic} has {changelog_count} partitions but {settings.topic} has "
                                           f"{partition_count}")
        writer = ChangelogWriter(config, topic, settings.topic, consumer_id)
        return cls(writer, ChangelogRestorer(config, topic, consumer_id), consumer_id), partition_count, None

    # -- writing ---------------------------------------------------------------------------

    def flush(self, partitions: Iterable[int], customers: Mapping[str, CustomerState],
              offsets: Mapping[int, int] | None, group_metadata: Callable[[], Any] | None,
              timeout: float, now: float, *, waits: bool = True) -> FlushOutcome:
        """Write the changed customers of `partitions` (those not restoring), one transaction each.

        A partition is written when customers changed, or when `offsets` (a commit is due) moved
        past what was committed; its position record closes the batch. What did not commit goes
        back in the cache for the next flush. Without `waits`, the commits are taken in by the next
        flush (`landed`, or back in the cache). The outcome's `offsets` are the source offsets known
        committed by this call, this flush's and the earlier ones that landed.
        """
        batches: dict[int, list[tuple[str, bytes]]] = {}
        written: dict[int, set[str]] = {}
        for partition in sorted(set(partitions) - self.restoring):
            changed = self.dirty.get(partition)
            if not changed and (offsets is None or partition not in offsets):
                continue
            batches[partition] = self._records(partition, changed or set(), customers)
            # The changes since go in a set of their own: these are back in the cache unless they commit.
            written[partition] = self.dirty.pop(partition, set())
        if not batches and not self.in_flight:
            return FlushOutcome()
        outcome = self.writer.flush(batches, offsets, group_metadata, timeout, waits=waits)
        if outcome.refused:
            self.refused = self.refused or next(iter(outcome.refused.values()))
        self._take_in(outcome, written, offsets)
        self.failing_since = None if not outcome.failed else (self.failing_since or now)
        return outcome

    def _records(self, partition: int, changed: set[str], customers: Mapping[str, CustomerState]) -> list[
            tuple[str, bytes]]:
        """The changed customers' states in no order (a restore keeps each one's newest), then the position."""
        records: list[tuple[str, bytes]] = []
        position = self.position.get(partition)
        for customer_id in changed:
            state = customers.get(customer_id)
            if state is None:
                continue
            records.append((customer_id, encode_state(state)))
            if state.offset is not None and (position is None or state.offset > position):
                position = state.offset
        if position is not None:
            records.append((POSITION_KEY, encode_position(position, self._writer_name)))
            self.position[partition] = position
        return records

    def _take_in(self, outcome: FlushOutcome, written: dict[int, set[str]], offsets: Mapping[int, int] | None) -> None:
        """What landed leaves the cache with its offset noted; what is committing is held; what failed goes back."""
        for partition in outcome.landed:
            _, offset = self.in_flight.pop(partition, (set(), None))
            if offset is not None:
                outcome.offsets[partition] = offset
        for partition in outcome.committed:
            self.in_flight.pop(partition, None)
            if offsets is not None and partition in offsets:
                outcome.offsets[partition] = offsets[partition]
        for partition in outcome.pending:
            self.in_flight[partition] = (written.pop(partition, set()),
                                         offsets.get(partition) if offsets is not None else None)
        for partition in set(outcome.failed) | set(outcome.refused):
            returned = written.pop(partition, set()) | self.in_flight.pop(partition, (set(), None))[0]
            if returned:
                self.dirty[partition] |= returned

    def unflushed_for(self, now: float) -> float:
        """How long changes have waited for a flush that keeps failing (0: none is failing)."""
        return 0.0 if self.failing_since is None else now - self.failing_since

    def forget(self, partitions: Iterable[int], settle_seconds: float = 0.0) -> dict[int, str]:
        """Partitions that left this member: their cache and position go, so do their writers.

        A transaction still committing is waited for `settle_seconds` at most first; the partitions
        whose writer it shows fenced (another member owns them now) are returned, with why.
        """
        partitions = list(partitions)
        committing = [p for p in partitions if p in self.in_flight]
        fenced = self.writer.settle(committing, settle_seconds).fenced if committing else {}
        for partition in partitions:
            self.dirty.pop(partition, None)
            self.in_flight.pop(partition, None)
            self.position.pop(partition, None)
        self.writer.release(partitions)
        return fenced

    # -- restoring -------------------------------------------------------------------------

    def start_restores(self, partitions: list[int]) -> None:
        """Fence each partition's previous writer, then restore it: nothing it writes later can land."""
        fresh = [p for p in partitions if p not in self.restoring]
        self.restoring |= set(fresh)
        self.fencing |= set(fresh)
        for partition in fresh:
            self.dirty.pop(partition, None)
            self.in_flight.pop(partition, None)
            self.position.pop(partition, None)
        self.writer.fence(fresh)

    def cancel_restores(self, partitions: Iterable[int]) -> list[int]:
        """Stop restoring those of `partitions` that were being restored; the ones stopped."""
        cancelled = [p for p in partitions if p in self.restoring]
        started = [p for p in cancelled if p not in self.fencing]
        if started:
            self.restorer.cancel(started)
        self.restoring.difference_update(cancelled)
        self.fencing.difference_update(cancelled)
        return cancelled

    def step(self) -> tuple[list[tuple[PartitionRestore, float]], list[KafkaError]]:
        """Fence and read more of the changelog: (restores that reached the end with their seconds, errors met)."""
        if self.fencing:
            fenced, failed = self.writer.fenced_yet(sorted(self.fencing))
            self.fencing.difference_update(fenced)
            if fenced:
                self.restorer.start(fenced)
            for partition, error in failed.items():
                if error.code() in REFUSED_CODES:
                    self.refused = self.refused or error.str()
                    continue
                self._errors.append(error)
                self.writer.fence([partition])  # the broker was away or busy: try again
        finished = [(restore, seconds) for restore, seconds in self.restorer.step()
                    if restore.partition in self.restoring]
        for restore, _ in finished:
            self.restoring.discard(restore.partition)
            if restore.position is not None:
                self.position[restore.partition] = restore.position
        errors, self._errors = self._errors + list(self.restorer.errors), []
        self.restorer.errors = []
        return finished, errors

    def progress(self) -> dict[int, RestoreProgress]:
        return self.restorer.progress() if self.restoring else {}

    def close(self) -> None:
        for closable in (self.writer, self.restorer):
            try:
                closable.close()
            except Exception:  # noqa: BLE001 - closing on the way out must not hide why we stop
                _LOG.debug("closing the changelog's %s failed", type(closable).__name__, exc_info=True)
