"""Synthetic worker messages for the API's tests, and the lab's transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from balance_tui.core.group import MemberRow, PartitionLag
from balance_tui.core.ledger import Ledger
from balance_tui.core.rows import BalanceRow, ConsumerStatus, Counters, PartitionRow, PartitionState, TimelineEntry
from balance_tui.core.transaction import Transaction, parse_transaction
from balance_tui.messages import (
    BalancesChanged,
    GroupChanged,
    PartitionsAssigned,
    PartitionsRevoked,
    SessionStarted,
    Snapshot,
    StatusChanged,
)

T0 = datetime(2026, 2, 8, 22, 0, tzinfo=UTC)
CONSUMER = "balance-worker-test-1"

#: The lab's two Sandbox transactions: CUST-001 ends at 5000 - 1200 = 3800.00 EUR.
LAB_TRANSACTIONS = (
    b'{"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789","amount":5000.00,'
    b'"currency":"EUR","type":3,"description":"Depot initial","customerId":"CUST-001",'
    b'"timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}',
    b'{"transactionId":"BAL-002","fromAccount":"FR7630001000123456789","toAccount":"FR7630001000987654321",'
    b'"amount":1200.00,"currency":"EUR","type":1,"description":"Virement loyer","customerId":"CUST-001",'
    b'"timestamp":"2026-02-08T22:01:00Z","riskScore":0,"status":1}',
)


def lab_transactions() -> list[Transaction]:
    parsed = [parse_transaction(raw) for raw in LAB_TRANSACTIONS]
    assert all(isinstance(tx, Transaction) for tx in parsed)
    return parsed  # type: ignore[return-value]


def lab_ledger(partition: int = 2) -> Ledger:
    ledger = Ledger()
    for offset, tx in enumerate(lab_transactions()):
        ledger.apply(tx, partition, offset)
    return ledger


def started(consumer_id: str = CONSUMER) -> SessionStarted:
    return SessionStarted(consumer_id=consumer_id, group="balance-service", topic="banking.transactions",
                          strategy="range", bootstrap_servers="localhost:9092", log_path=Path("/tmp/none.jsonl"),
                          work_ms=2.0)


def row(customer: str, currency: str, balance: str, partition: int | None = 0, count: int = 1,
        tx_id: str = "TX-1") -> BalanceRow:
    return BalanceRow(customer, currency, Decimal(balance), count, T0, tx_id, partition)


def balances(*rows: BalanceRow, removed: tuple[int, ...] = ()) -> BalancesChanged:
    return BalancesChanged(rows=rows, removed_partitions=removed)


def entry(kind: str, partitions: tuple[int, ...], assignment: tuple[int, ...], at: datetime = T0,
          **fields: object) -> TimelineEntry:
    return TimelineEntry(at=at, kind=kind, partitions=partitions, assignment=assignment, detail=f"{kind} test",
                         **fields)  # type: ignore[arg-type]


def assigned(partitions: tuple[int, ...], assignment: tuple[int, ...] | None = None, **fields: object
             ) -> PartitionsAssigned:
    assignment = assignment if assignment is not None else partitions
    return PartitionsAssigned(partitions, assignment, entry("assigned", partitions, assignment, **fields))


def revoked(partitions: tuple[int, ...], assignment: tuple[int, ...] = ()) -> PartitionsRevoked:
    return PartitionsRevoked(partitions, assignment, entry("revoked", partitions, assignment))


def status(value: ConsumerStatus, detail: str = "") -> StatusChanged:
    return StatusChanged(status=value, detail=detail)


def partition_rows(positions: dict[int, int | None], partitions: int = 6, high: int = 100,
                   state: PartitionState = PartitionState.CONSUMING) -> tuple[PartitionRow, ...]:
    rows = []
    for partition in range(partitions):
        mine = partition in positions
        position = positions.get(partition)
        rows.append(PartitionRow(
            partition=partition, mine=mine, state=state if mine else PartitionState.NOT_MINE,
            position=position, high_watermark=high if mine else None,
            lag=(high - position) if mine and position is not None else None, rate=1.5))
    return tuple(rows)


def snapshot(positions: dict[int, int | None], consumed: int = 0, status_: ConsumerStatus = ConsumerStatus.CONSUMING,
             paused: bool = False, state: PartitionState = PartitionState.CONSUMING, **counters: object) -> Snapshot:
    return Snapshot(counters=Counters(consumed=consumed, **counters),  # type: ignore[arg-type]
                    partitions=partition_rows(positions, state=state), status=status_, generation=4,
                    member_id="member-1", strategy="range", work_ms=2.0, paused=paused)


def group(*members: tuple[str, tuple[int, ...], str], unowned: tuple[int, ...] = ()) -> GroupChanged:
    rows = tuple(MemberRow(consumer_id=name, host="host", pid=1, strategy="range", status=state, partitions=parts,
                           generation=4, rate=2.0, lag=0, work_ms=2.0, heartbeat_age=0.5, silent=False,
                           rebalance_expected_in=None, last_seen=T0 + timedelta(seconds=1),
                           is_self=name == CONSUMER)
                 for name, parts, state in members)
    owners = {p: name for name, parts, _ in members for p in parts}
    lags = tuple(PartitionLag(p, owners.get(p), 10, 12, 2, p not in owners) for p in range(6))
    return GroupChanged(rows=rows, unowned=unowned, capacity=f"{len(rows)} members, 6 partitions",
                        partition_lag=lags, source="source: member heartbeats")
