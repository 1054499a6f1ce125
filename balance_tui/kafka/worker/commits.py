"""Provides the commits: the changelog's pending changes written, and the source offsets with them.

With the changelog, each partition's transaction carries its offset (`send_offsets_to_transaction`);
without it, or on a revoke that needs the offsets outside the group's generation, the consumer
commits them itself, asynchronously. docs/consistency.md has the rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from balance_tui.kafka.changelog_coordinator import ACK_REPORT_SECONDS
from balance_tui.kafka.worker.lag_feed import note_commits
from balance_tui.kafka.worker.state import MemberState, Reporter


class Committer:
    """Flushes the changelog's record cache and commits the source offsets it covers."""

    def __init__(self, state: MemberState, reporter: Reporter, *,
                 on_fenced: Callable[[dict[int, str]], None]) -> None:
        self.state = state
        self.reporter = reporter
        #: Partitions whose writer was fenced or is stuck: the rebalance handler gives them up.
        self._on_fenced = on_fenced

    def flush_and_commit(self, consumer: Consumer, partitions: set[int] | None = None, *, commit_offsets: bool,
                         timeout: float, waits: bool = True) -> bool:
        """Write the changelog's pending changes of owned partitions; commit their offsets if `commit_offsets`.

        With the changelog, the offsets go in each partition's transaction (`commit_offsets`), or
        are committed by the consumer after it when a revoke needs them without the group's
        generation in the way. False when some partition's changes did not commit (they go with
        the next flush); a partition found fenced is given up and a rejoin requested. Without
        `waits` (the loop's periodic flushes) the transactions commit in the background and the
        next flush takes their outcome in: consuming goes on meanwhile.
        """
        state = self.state
        owned = (partitions if partitions is not None else set(state.tracker.assignment)) - state.restoring
        positions = {p: state.offsets.position[p] for p in sorted(owned) if p in state.offsets.position}
        changelog = state.changelog
        if changelog is None or timeout <= 0:
            if changelog is None and commit_offsets:
                self._commit_async(consumer, positions)
            return changelog is None
        outcome = changelog.flush(owned, state.ledger.customers, positions if commit_offsets else None,
                                  consumer.consumer_group_metadata, timeout, time.monotonic(), waits=waits)
        if outcome.offsets:  # each committed transaction carried its partition's offset
            note_commits(state, outcome.offsets)
        if outcome.fenced:
            self._on_fenced(outcome.fenced)
        if outcome.failed or outcome.refused:
            waited = changelog.unflushed_for(time.monotonic())
            reason = next(iter({**outcome.failed, **outcome.refused}.values()))
            if waited >= ACK_REPORT_SECONDS or outcome.refused:
                self.reporter.failure(f"changelog not written for {waited:.0f} s ({reason}); offsets not committed")
            return False
        if not commit_offsets and partitions is not None:
            # A revoke: the consumer commits what the flush covers, for lag and `kafka-consumer-groups`.
            self._commit_async(consumer, {p: positions[p] for p in outcome.committed if p in positions})
        return True

    def _commit_async(self, consumer: Consumer, positions: dict[int, int]) -> None:
        if not positions:
            return
        try:
            # Asynchronous: during a join phase the embedded broker can hold a commit for seconds,
            # and this thread must keep heartbeating the members topic. Positions never depend on
            # commits (the changelog decides), so nothing waits for the answer (`on_commit`).
            consumer.commit(offsets=[TopicPartition(self.state.settings.topic, p, offset)
                                     for p, offset in sorted(positions.items())], asynchronous=True)
        except KafkaException as error:
            self.reporter.kafka_error(error.args[0])
