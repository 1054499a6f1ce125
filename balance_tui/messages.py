"""Messages the consumer worker posts to the app: the only link from Kafka to the UI.

The worker thread calls a sink (`App.post_message` in the dashboard, a printer in
headless mode). Snapshots replace each other in the queue (`can_replace`), so a slow
screen never builds a backlog; events and balance batches are never dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message

from balance_tui.core.group import MemberRow, PartitionLag
from balance_tui.core.lag_view import LagView
from balance_tui.core.rows import (
    BalanceRow,
    ConsumerStatus,
    Counters,
    PartitionRow,
    TimelineEntry,
)


@dataclass
class SessionStarted(Message):
    """The worker is about to connect; says who we are and where the log goes."""

    consumer_id: str
    group: str
    topic: str
    strategy: str
    bootstrap_servers: str
    log_path: Path
    work_ms: float


@dataclass
class StatusChanged(Message):
    """The consumer status changed (Joining shows the seconds spent waiting in `detail`)."""

    status: ConsumerStatus
    detail: str = ""


@dataclass
class PartitionsAssigned(Message):
    """Partitions added to this member; `assignment` is the full assignment after it."""

    partitions: tuple[int, ...]
    assignment: tuple[int, ...]
    entry: TimelineEntry


@dataclass
class PartitionsRevoked(Message):
    """Partitions taken away in a rebalance; `assignment` is what remains."""

    partitions: tuple[int, ...]
    assignment: tuple[int, ...]
    entry: TimelineEntry


@dataclass
class PartitionsLost(Message):
    """Partitions lost without a clean revoke (session expired, fenced)."""

    partitions: tuple[int, ...]
    assignment: tuple[int, ...]
    entry: TimelineEntry


@dataclass
class TimelineEvent(Message):
    """Any other timeline entry: strategy change, restart, pause, resume, error."""

    entry: TimelineEntry


@dataclass
class BalancesChanged(Message):
    """A coalesced batch: the current rows of every customer changed since the last batch.

    The receiver sets `applied` once it has taken the rows in; until then the worker keeps
    coalescing, so a busy screen never has more than one batch waiting.
    """

    rows: tuple[BalanceRow, ...]
    removed_partitions: tuple[int, ...] = ()
    applied: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)


@dataclass
class Snapshot(Message):
    """Counters and the partitions table, a few times a second. Newer replaces older."""

    counters: Counters
    partitions: tuple[PartitionRow, ...]
    status: ConsumerStatus
    generation: int | None
    member_id: str | None
    strategy: str
    work_ms: float
    paused: bool
    #: Lag in seconds, Burrow's status, time to drain, the alert and the chart's series (rebuilt about once a second).
    lag: LagView | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Snapshot)


@dataclass
class GroupChanged(Message):
    """The whole group as this terminal sees it, about once a second. Newer replaces older."""

    rows: tuple[MemberRow, ...]
    unowned: tuple[int, ...]
    capacity: str
    partition_lag: tuple[PartitionLag, ...]
    source: str
    cross_check: tuple[str, ...] = ()
    problem: str | None = None
    #: The broker's group state (DescribeGroups: Stable, PreparingRebalance, Empty...), where it describes groups.
    broker_state: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GroupChanged)


@dataclass
class KafkaErrorReported(Message):
    """librdkafka reported an error; `hint` says what to do in plain words when we know."""

    code: str
    reason: str
    fatal: bool
    hint: str = ""


@dataclass
class Exported(Message):
    """The export files were written."""

    paths: tuple[Path, ...]


@dataclass
class WorkerStopped(Message):
    """The worker closed its consumer and will post nothing more."""

    reason: str
    export_paths: tuple[Path, ...] = field(default_factory=tuple)


@dataclass
class BrokerDescribed(Message):
    """What the broker is (`label`: "Apache Kafka 4.4.0", "Tansu 0.6.0", ...) and whether it serves KIP-848."""

    label: str
    consumer_protocol: bool | None


@dataclass
class MessageRejected(Message):
    """A malformed message (at most one per reason every few seconds; `unlogged_since_last` counts the rest)."""

    partition: int
    offset: int
    reason: str
    detail: str
    unlogged_since_last: int = 0
