"""Immutable snapshots the worker hands to the UI, the session log and the exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

import msgspec


class ConsumerStatus(str, Enum):
    """What this terminal's consumer is doing, in the words shown on screen."""

    CONNECTING = "Connecting"
    JOINING = "Joining"
    CONSUMING = "Consuming"
    REBALANCING = "Rebalancing"
    IDLE = "Idle"
    PAUSED = "Paused"
    PARTITIONS_LOST = "Partitions lost"
    BROKER_UNREACHABLE = "Broker unreachable"
    FATAL_ERROR = "Fatal error"
    STOPPED = "Stopped"


class BalanceRow(msgspec.Struct, frozen=True, gc=False):
    """One customer's balance in one currency.

    A msgspec Struct, not a frozen dataclass: the worker builds one per changed customer, at a
    million customers one per transaction, and this one is made in C (0.11 µs against 1.5 µs)
    and never tracked by the garbage collector (it holds only atoms).
    """

    customer_id: str
    currency: str
    balance: Decimal
    transaction_count: int
    last_updated: datetime
    last_transaction_id: str
    partition: int | None


class PartitionState(str, Enum):
    CONSUMING = "consuming"
    RESTORING = "restoring"
    PAUSED = "paused"
    REVOKED = "revoked"
    NOT_MINE = "not mine"


@dataclass(frozen=True, slots=True)
class PartitionRow:
    """One partition of the topic as this consumer sees it."""

    partition: int
    mine: bool
    state: PartitionState
    position: int | None
    high_watermark: int | None
    lag: int | None
    rate: float
    #: While restoring from the changelog: records read so far and the total (when known).
    restored: int | None = None
    restore_total: int | None = None


@dataclass(frozen=True, slots=True)
class PartitionRestore:
    """One partition's restore from the changelog, as a `restored` timeline entry details it."""

    partition: int
    customers: int
    records: int
    duration_ms: float
    resume_offset: int


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the rebalance timeline.

    `kind` is one of: assigned, revoked, lost, strategy_changed, restarted, paused,
    resumed, error. Durations are in milliseconds and None when not measured.
    """

    at: datetime
    kind: str
    partitions: tuple[int, ...] = ()
    assignment: tuple[int, ...] = ()
    detail: str = ""
    join_ms: float | None = None
    kept: tuple[int, ...] = ()
    moved_in: tuple[int, ...] = ()
    downtime_ms: dict[int, float] = field(default_factory=dict)
    generation: int | None = None
    member_id: str | None = None
    #: A `restored` entry's partitions one by one (the line says them together, once per assignment).
    restores: tuple[PartitionRestore, ...] = ()


@dataclass(frozen=True, slots=True)
class Counters:
    """Totals and rates of this consumer since it started."""

    consumed: int = 0
    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    last_rejection: str | None = None
    errors: int = 0
    rate: float = 0.0
    rate_history: tuple[float, ...] = ()
    lag: int | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    #: Malformed messages by reason (`RejectionReason` values).
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    #: Processing errors alone (`errors` adds Kafka's).
    processing_errors: int = 0
    #: When the last record was consumed.
    last_message_at: datetime | None = None
    #: Transactions read again after a restore and recognised as already in the restored state
    #: (docs/consistency.md): consumed, not applied a second time.
    replayed: int = 0
    #: Records consumed and transactions applied, per partition, since this member started.
    consumed_by_partition: dict[int, int] = field(default_factory=dict)
    applied_by_partition: dict[int, int] = field(default_factory=dict)
