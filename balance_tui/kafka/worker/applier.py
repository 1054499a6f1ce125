"""Provides the hot path: one batch of records parsed, applied to the ledger, written to the changelog."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError

from balance_tui.core.assignment import utc_now
from balance_tui.core.changelog import encode_state
from balance_tui.core.ledger import Effect
from balance_tui.core.transaction import Rejection, parse_transaction
from balance_tui.kafka.worker.publishing import BalancePublisher
from balance_tui.kafka.worker.state import MemberState, Reporter


class BatchApplier:
    """Applies batches of records to this member's ledger, pacing the simulated work per transaction."""

    def __init__(self, state: MemberState, reporter: Reporter, balances: BalancePublisher) -> None:
        self.state = state
        self.reporter = reporter
        self.balances = balances

    def apply(self, messages: list[Any]) -> None:
        """Apply a batch: parse, apply to the ledger, write the changelog, pace the simulated work."""
        state = self.state
        ledger_apply, customers, dirty = state.ledger.apply, state.ledger.customers, self.balances.dirty
        restoring = state.restoring
        write = state.changelog.writer.write if state.changelog is not None else None
        position = state.offsets.position
        produced_at_ms: list[int] = []
        work_seconds = state.work_ms / 1000.0
        paced_until = time.monotonic()
        not_records = 0
        for message in messages:
            error = message.error()
            partition = message.partition()
            if error is not None or partition in restoring:
                # Partition EOF, an error; or fetched before a restore's pause took effect: read again after it.
                not_records += 1
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self.reporter.kafka_error(error)
                continue
            offset = message.offset()
            result = parse_transaction(message.value())
            if isinstance(result, Rejection):
                self.reporter.rejection(partition, offset, result)
            else:
                try:
                    effect = ledger_apply(result, partition, offset)
                except Exception as error:  # noqa: BLE001 - a bug or an absurd value must not stop the service
                    self.reporter.processing_error(partition, offset, error)
                else:
                    # Failed/Rejected changed nothing, so no changelog record: a new owner reads it
                    # again after the last record and skips it again.
                    if effect is not Effect.SKIPPED:
                        customer_id = result.customer_id
                        dirty.add(customer_id)
                        if write is not None:
                            write(partition, customer_id, encode_state(customers[customer_id]))
                        timestamp = message.timestamp()[1]
                        if timestamp > 0:
                            produced_at_ms.append(timestamp)
            position[partition] = offset + 1
            if work_seconds:
                paced_until += work_seconds
                delay = paced_until - time.monotonic()
                if delay > 0.001:
                    time.sleep(delay)
        state.throughput.batch(len(messages) - not_records, produced_at_ms, time.monotonic(), time.time() * 1000.0,
                               utc_now())
        if state.changelog is not None:
            state.changelog.writer.poll()

