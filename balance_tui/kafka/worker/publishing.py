"""Provides how the worker tells the UI what happens: its status, and coalesced batches of balances.

Both only post messages (`balance_tui.messages`) to the sink the UI (or the headless printer)
gave the worker; neither touches Kafka.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from balance_tui.control import MessageSink
from balance_tui.core.ledger import NEVER, Ledger
from balance_tui.core.rows import BalanceRow, ConsumerStatus, TimelineEntry
from balance_tui.messages import BalancesChanged, StatusChanged


class StatusBoard:
    """The consumer's status as shown on screen; a change is posted once, repeats are not."""

    def __init__(self, sink: MessageSink) -> None:
        self.sink = sink
        self.status = ConsumerStatus.CONNECTING
        self.detail = ""
        #: A fatal error was reported: the status stays Fatal error whatever the assignment says.
        self.fatal = False

    def set(self, status: ConsumerStatus, detail: str = "") -> None:
        if status == self.status and detail == self.detail:
            return
        self.status = status
        self.detail = detail
        self.sink(StatusChanged(status=status, detail=detail))

    def from_assignment(self, owns_partitions: bool, paused: bool) -> None:
        """Idle, Paused or Consuming, from what this member owns; never over a fatal error."""
        if self.fatal:
            return
        if not owns_partitions:
            self.set(ConsumerStatus.IDLE, "in the group with no partitions")
        elif paused:
            self.set(ConsumerStatus.PAUSED)
        else:
            self.set(ConsumerStatus.CONSUMING)


class BalancePublisher:
    """Changed customers, collected between batches; one `BalancesChanged` at a time in flight.

    The screen sets a batch's `applied` event once it took the rows in; until then changes keep
    coalescing, so a busy screen never has more than one batch waiting. Headless runs publish
    nothing (no balance table), unless something else reads the batches (the HTTP API).
    """

    def __init__(self, sink: MessageSink, enabled: bool) -> None:
        self.sink = sink
        self.enabled = enabled
        #: Customers changed since the last batch (the hot path adds to it directly).
        self.dirty: set[str] = set()
        self._in_flight: threading.Event | None = None

    def changed(self, customers: Iterable[str]) -> None:
        self.dirty.update(customers)

    def forget(self, customers: Iterable[str]) -> None:
        self.dirty.difference_update(customers)

    def flush(self, ledger: Ledger, removed_partitions: tuple[int, ...] = ()) -> None:
        """Post what changed (and the partitions whose rows must go), unless the last batch is still waiting."""
        if not self.enabled:
            self.dirty.clear()
            return
        if not self.dirty and not removed_partitions:
            return
        if not removed_partitions and self._in_flight is not None and not self._in_flight.is_set():
            return  # the screen has not taken the last batch in: keep coalescing
        rows = changed_rows(ledger, self.dirty) if self.dirty else ()
        self.dirty = set()
        batch = BalancesChanged(rows=rows, removed_partitions=removed_partitions)
        self._in_flight = batch.applied
        self.sink(batch)


def changed_rows(ledger: Ledger, customer_ids: Iterable[str]) -> tuple[BalanceRow, ...]:
    """The current rows of these customers (unknown ones skipped), in no particular order.

    `Ledger.rows_for` sorts, and builds through `CustomerState.rows`; the screen and the API
    store sort (or key) the rows themselves, and at a million customers, where nearly every
    transaction changes another customer, this is the worker's largest cost after parsing:
    1.3 µs a row there, about half here (docs/performance.md, "The dashboard at bank scale").
    """
    customers = ledger.customers
    rows: list[BalanceRow] = []
    append = rows.append
    for customer_id in customer_ids:
        state = customers.get(customer_id)
        if state is None:
            continue
        count, updated = state.transaction_count, state.last_updated or NEVER
        last, partition = state.last_transaction_id, state.partition
        for currency, balance in state.balances.items():
            append(BalanceRow(customer_id, currency, balance, count, updated, last, partition))
    return tuple(rows)


def rebalance_log_fields(event: str, entry: TimelineEntry) -> dict[str, Any]:
    """The session log's fields of an assigned / revoked / lost line."""
    fields: dict[str, Any] = {"partitions": list(entry.partitions), "assignment": list(entry.assignment)}
    if entry.generation is not None:
        fields["generation"] = entry.generation
    if entry.member_id:
        fields["member_id"] = entry.member_id
    if entry.join_ms is not None:
        fields["join_ms"] = round(entry.join_ms, 1)
    if event == "assigned":
        fields["kept"] = list(entry.kept)
        fields["moved_in"] = list(entry.moved_in)
    if entry.downtime_ms:
        fields["downtime_ms"] = {str(p): round(ms, 1) for p, ms in entry.downtime_ms.items()}
    return fields
