"""Provides the hot path: one batch of records parsed, applied to the ledger, noted for the next changelog flush."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from balance_tui.core.assignment import utc_now
from balance_tui.core.ledger import Effect
from balance_tui.core.transaction import Rejection, parse_transaction
from balance_tui.kafka.worker.publishing import BalancePublisher
from balance_tui.kafka.worker.state import MemberState, Reporter

#: Records applied between two looks at whether the UI asked for room.
ROOM_EVERY = 64


class BatchApplier:
    """Applies batches of records to this member's ledger, pacing the simulated work per transaction."""

    def __init__(self, state: MemberState, reporter: Reporter, balances: BalancePublisher,
                 give_room: Callable[[], None] = lambda: None) -> None:
        self.state = state
        self.reporter = reporter
        self.balances = balances
        #: Called every ROOM_EVERY records: a batch of 1,000 takes up to 40 ms at a million
        #: customers, too long for a key to wait before the worker holds back.
        self.give_room = give_room

    def apply(self, messages: list[Any]) -> None:
        """Apply a batch: parse, apply to the ledger, note the changed customers, pace the simulated work."""
        state = self.state
        ledger_apply, dirty = state.ledger.apply, self.balances.dirty
        restoring = state.restoring
        # The changelog's record cache: each changed customer once, written at the next flush.
        unflushed = state.changelog.dirty if state.changelog is not None else None
        position = state.offsets.position
        last_read: dict[int, Any] = {}  # the last record of each partition, for its timestamp (lag in seconds)
        produced_at_ms: list[int] = []
        work_seconds = state.work_ms / 1000.0
        paced_until = time.monotonic()
        not_records = 0
        consumed_by_partition = state.throughput.consumed_by_partition
        applied_by_partition = state.throughput.applied_by_partition
        give_room = self.give_room
        for count, message in enumerate(messages):
            if not count % ROOM_EVERY:
                give_room()
            error = message.error()
            partition = message.partition()
            if error is not None or partition in restoring:
                # Partition EOF, an error; or fetched before a restore's pause took effect: read again after it.
                not_records += 1
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self.reporter.kafka_error(error)
                continue
            offset = message.offset()
            consumed_by_partition[partition] = consumed_by_partition.get(partition, 0) + 1
            result = parse_transaction(message.value())
            if isinstance(result, Rejection):
                self.reporter.rejection(partition, offset, result)
            else:
                try:
                    effect = ledger_apply(result, partition, offset)
                except Exception as problem:  # noqa: BLE001 - a bug or an absurd value must not stop the service
                    self.reporter.processing_error(partition, offset, problem)
                else:
                    # Failed/Rejected and replays change nothing, so nothing to write: a new owner
                    # reads them again after the last position and changes nothing again.
                    if effect is not Effect.SKIPPED and effect is not Effect.REPLAYED:
                        applied_by_partition[partition] = applied_by_partition.get(partition, 0) + 1
                        customer_id = result.customer_id
                        dirty.add(customer_id)
                        if unflushed is not None:
                            unflushed[partition].add(customer_id)
                        timestamp = message.timestamp()[1]
                        if timestamp > 0:
                            produced_at_ms.append(timestamp)
            position[partition] = offset + 1
            last_read[partition] = message
            if work_seconds:
                paced_until += work_seconds
                delay = paced_until - time.monotonic()
                if delay > 0.001:
                    time.sleep(delay)
        read_at = state.offsets.last_record_timestamp
        for partition, message in last_read.items():
            stamp = message.timestamp()[1]
            if stamp > 0:
                read_at[partition] = stamp / 1000.0
        state.throughput.batch(len(messages) - not_records, produced_at_ms, time.monotonic(), time.time() * 1000.0,
                               utc_now())

