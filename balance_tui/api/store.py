"""The API's view of one member: the worker's messages folded into the latest state.

`ApiState` is the pure part: `apply(message, now)` for every message in the order the worker
posted them, `snapshot(now)` for an immutable copy. `ApiStore` makes it safe between threads:
the worker's sink only puts messages on a queue (it never waits for a lock, an HTTP client or
anything else), an updater thread applies them, and HTTP handlers read immutable snapshots.

Some figures are not in the messages yet and are derived here; each says so where it is
computed (look for "derived"), and `docs/api.md` lists the message fields that would make
them exact.
"""

from __future__ import annotations

import bisect
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from balance_tui.core.assignment import utc_now
from balance_tui.core.lag_view import LagView
from balance_tui.core.rows import (
    BalanceRow,
    ConsumerStatus,
    Counters,
    PartitionRow,
    TimelineEntry,
)
from balance_tui.messages import (
    BalancesChanged,
    GroupChanged,
    KafkaErrorReported,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
    SessionStarted,
    Snapshot,
    StatusChanged,
    TimelineEvent,
    WorkerStopped,
)

#: Timeline entries kept for `/rebalancing-history` and the export-shaped `/metrics`; older ones
#: still count in `history_total`.
HISTORY_LIMIT = 1000
#: Stream events kept for clients that reconnect with `Last-Event-ID`.
STREAM_LIMIT = 1000
REBALANCE_KINDS = ("assigned", "revoked", "lost")
#: Seconds. Joins on the embedded broker take about session.timeout/2; eager ones up to tens of seconds.
REBALANCE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0)
RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Kafka's group states (DescribeGroups) in the API's words.
_BROKER_GROUP_STATES = {"Stable": "stable", "PreparingRebalance": "rebalancing", "CompletingRebalance": "rebalancing"}


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A Prometheus histogram: `cumulative[i]` observations <= `buckets[i]`, the last one +Inf."""

    buckets: tuple[float, ...]
    cumulative: tuple[int, ...]
    total: float
    count: int


class Histogram:
    """Fixed-bucket histogram of seconds."""

    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
        self.count += 1

    def frozen(self) -> HistogramSnapshot:
        cumulative, running = [], 0
        for count in self.counts:
            running += count
            cumulative.append(running)
        return HistogramSnapshot(self.buckets, tuple(cumulative), self.total, self.count)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of the live stream: a timeline entry (rebalance, restore, error...) or a status change."""

    id: int
    kind: str
    at: datetime
    entry: TimelineEntry | None = None
    status: str | None = None
    detail: str = ""
    assignment: tuple[int, ...] = ()


@dataclass(frozen=True)
class ApiSnapshot:
    """Everything the API says about this member at one moment, except the balances (see `ApiStore.balances`)."""

    consumer_id: str
    group: str
    topic: str
    strategy: str | None
    work_ms: float | None
    started_at: datetime
    status: ConsumerStatus
    status_detail: str
    paused: bool
    generation: int | None
    member_id: str | None
    assignment: tuple[int, ...]
    counters: Counters
    partitions: tuple[PartitionRow, ...]
    history: tuple[TimelineEntry, ...]
    history_total: int
    last_message_at: datetime | None
    group_view: GroupChanged | None
    stopped_reason: str | None
    rebalance_events: Mapping[str, int]
    rebalance_duration: HistogramSnapshot
    pause_duration: HistogramSnapshot
    restore_duration: HistogramSnapshot
    consumed_by_partition: Mapping[int, int]
    applied_by_partition: Mapping[int, int]
    rejected_by_reason: Mapping[str, int]
    customers: int
    taken_at: datetime
    #: The worker's latest lag view (lag in seconds, Burrow's status, time to drain, the alert); None before one.
    lag: LagView | None = None

    @property
    def consuming(self) -> bool:
        """What the lab's health check calls healthy: consuming, not paused."""
        return self.status is ConsumerStatus.CONSUMING and not self.paused

    @property
    def group_state(self) -> str:
        """`stable`, `rebalancing` or `unknown` (no group view yet).

        The broker's own state (DescribeGroups) where the broker describes groups; else derived
        from this member's view (the embedded broker cannot describe them).
        """
        if self.group_view is None:
            return "unknown"
        broker_state = self.group_view.broker_state
        if broker_state:
            return _BROKER_GROUP_STATES.get(broker_state, "unknown")
        if self.status in (ConsumerStatus.JOINING, ConsumerStatus.REBALANCING):
            return "rebalancing"
        if any(row.status in ("Joining", "Rebalancing") for row in self.group_view.rows):
            return "rebalancing"
        return "rebalancing" if self.group_view.unowned else "stable"


class ApiState:
    """The latest state of one member, built from its worker's messages. Pure: time is passed in."""

    def __init__(self, consumer_id: str, group: str, topic: str, started_at: datetime) -> None:
        self.consumer_id, self.group, self.topic = consumer_id, group, topic
        self.strategy: str | None = None
        self.work_ms: float | None = None
        self.started_at = started_at
        self.status = ConsumerStatus.CONNECTING
        self.status_detail = ""
        self.paused = False
        self.generation: int | None = None
        self.member_id: str | None = None
        self.assignment: tuple[int, ...] = ()
        self.counters = Counters()
        self.partitions: tuple[PartitionRow, ...] = ()
        self.history: deque[TimelineEntry] = deque(maxlen=HISTORY_LIMIT)
        self.history_total = 0
        self.last_message_at: datetime | None = None
        self.group_view: GroupChanged | None = None
        self.stopped_reason: str | None = None
        self.rebalance_events = dict.fromkeys(REBALANCE_KINDS, 0)
        self.rebalance_duration = Histogram(REBALANCE_BUCKETS)
        self.pause_duration = Histogram(REBALANCE_BUCKETS)
        self.restore_duration = Histogram(RESTORE_BUCKETS)
        self.consumed_by_partition: dict[int, int] = {}
        self.lag: LagView | None = None
        #: customer -> currency -> row, and the partition index used when partitions leave.
        self.customers: dict[str, dict[str, BalanceRow]] = {}
        self._customer_partition: dict[str, int | None] = {}
        self._partition_customers: dict[int | None, set[str]] = {}
        self.stream: deque[StreamEvent] = deque(maxlen=STREAM_LIMIT)
        self._next_event_id = 1
        self._new_events: list[StreamEvent] = []
        #: Bumped on every change / on every change of the balances: snapshots are cached by it.
        self.version = 0
        self.balances_version = 0

    # -- feeding ----------------------------------------------------------------------------

    def apply(self, message: object, now: datetime) -> None:
        self.version += 1
        match message:
            case Snapshot():
                self._take_snapshot(message, now)
            case BalancesChanged():
                self._take_balances(message.rows, message.removed_partitions)
            case PartitionsAssigned() | PartitionsRevoked() | PartitionsLost():
                self._take_rebalance(message.entry, message.assignment)
            case TimelineEvent():
                self._take_timeline(message.entry)
            case StatusChanged():
                if message.status in (ConsumerStatus.PAUSED, ConsumerStatus.CONSUMING):
                    # The worker says so before its next snapshot does (`Snapshot.paused`).
                    self.paused = message.status is ConsumerStatus.PAUSED
                self._set_status(message.status, message.detail, now)
            case GroupChanged():
                self.group_view = message
            case KafkaErrorReported():
                # As the dashboard does: errors reach the timeline through this message only.
                detail = f"{message.code}: {message.reason}" + (f" — {message.hint}" if message.hint else "")
                self._add_entry(TimelineEntry(at=now, kind="error", detail=detail))
            case SessionStarted():
                self.consumer_id, self.group, self.topic = message.consumer_id, message.group, message.topic
                self.strategy, self.work_ms = message.strategy, message.work_ms
                self.started_at = now
            case WorkerStopped():
                self.stopped_reason = message.reason
                self._set_status(ConsumerStatus.STOPPED, message.reason, now)

    def take_new_events(self) -> list[StreamEvent]:
        """Stream events added since the last call (for live subscribers)."""
        events, self._new_events = self._new_events, []
        return events

    def _take_snapshot(self, message: Snapshot, now: datetime) -> None:
        counters = message.counters
        if counters.consumed > self.counters.consumed:
            # Derived: the worker's last_message_at is not in the messages; this is the snapshot
            # that first showed the new records (1/refresh_hz late at most).
            self.last_message_at = counters.last_message_at or now
        self.counters = counters
        self.partitions = message.partitions
        if message.lag is not None:
            self.lag = message.lag
        self.assignment = tuple(row.partition for row in message.partitions if row.mine)
        self.generation, self.member_id = message.generation, message.member_id
        self.strategy, self.work_ms, self.paused = message.strategy, message.work_ms, message.paused
        status = message.status
        if message.paused and status is ConsumerStatus.CONSUMING:
            status = ConsumerStatus.PAUSED  # as the dashboard shows it
        self._set_status(status, self.status_detail if status is self.status else "", now)
        self.consumed_by_partition = dict(counters.consumed_by_partition)

    def _take_balances(self, rows: Iterable[BalanceRow], removed_partitions: Iterable[int]) -> None:
        # Removal first, as on screen: a partition revoked and given back within one batch keeps
        # the rows that arrived after it came back.
        for partition in removed_partitions:
            for customer_id in self._partition_customers.pop(partition, ()):
                self.customers.pop(customer_id, None)
                self._customer_partition.pop(customer_id, None)
        # A batch carries every currency of each changed customer: the customer's rows are replaced.
        changed: dict[str, dict[str, BalanceRow]] = {}
        for row in rows:
            changed.setdefault(row.customer_id, {})[row.currency] = row
        for customer_id, by_currency in changed.items():
            home = next(iter(by_currency.values())).partition
            if customer_id in self._customer_partition:
                previous = self._customer_partition[customer_id]
                if previous != home:
                    self._partition_customers.get(previous, set()).discard(customer_id)
            self.customers[customer_id] = by_currency
            self._customer_partition[customer_id] = home
            self._partition_customers.setdefault(home, set()).add(customer_id)
        self.balances_version += 1

    def _take_rebalance(self, entry: TimelineEntry, assignment: tuple[int, ...]) -> None:
        self.assignment = assignment
        self.rebalance_events[entry.kind] = self.rebalance_events.get(entry.kind, 0) + 1
        if entry.kind == "assigned":
            if entry.join_ms is not None:
                self.rebalance_duration.observe(entry.join_ms / 1000.0)
            for downtime in entry.downtime_ms.values():
                self.pause_duration.observe(downtime / 1000.0)
        self._add_entry(entry)

    def _take_timeline(self, entry: TimelineEntry) -> None:
        if entry.kind == "restored":
            for restore in entry.restores:  # one line per assignment: each partition's restore is one observation
                self.restore_duration.observe(restore.duration_ms / 1000.0)
        self._add_entry(entry)

    def _add_entry(self, entry: TimelineEntry) -> None:
        self.history.append(entry)
        self.history_total += 1
        self._add_event(StreamEvent(self._next_event_id, entry.kind, entry.at, entry=entry,
                                    assignment=entry.assignment if entry.kind in REBALANCE_KINDS
                                    else self.assignment))

    def _set_status(self, status: ConsumerStatus, detail: str, now: datetime) -> None:
        changed = status is not self.status
        self.status, self.status_detail = status, detail
        if changed:  # the Joining seconds change every second: only a new status is an event
            self._add_event(StreamEvent(self._next_event_id, "status", now, status=status.value,
                                        detail=detail, assignment=self.assignment))

    def _add_event(self, event: StreamEvent) -> None:
        self._next_event_id += 1
        self.stream.append(event)
        self._new_events.append(event)

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self, now: datetime) -> ApiSnapshot:
        counters = self.counters
        return ApiSnapshot(
            consumer_id=self.consumer_id, group=self.group, topic=self.topic, strategy=self.strategy,
            work_ms=self.work_ms, started_at=self.started_at, status=self.status,
            status_detail=self.status_detail, paused=self.paused, generation=self.generation,
            member_id=self.member_id, assignment=self.assignment, counters=counters,
            partitions=self.partitions, history=tuple(self.history), history_total=self.history_total,
            last_message_at=self.last_message_at, group_view=self.group_view,
            stopped_reason=self.stopped_reason,
            rebalance_events=MappingProxyType(dict(self.rebalance_events)),
            rebalance_duration=self.rebalance_duration.frozen(), pause_duration=self.pause_duration.frozen(),
            restore_duration=self.restore_duration.frozen(),
            consumed_by_partition=MappingProxyType(dict(self.consumed_by_partition)),
            applied_by_partition=MappingProxyType(dict(counters.applied_by_partition)),
            rejected_by_reason=MappingProxyType(dict(counters.rejected_by_reason)),
            customers=len(self.customers), taken_at=now, lag=self.lag,
        )

    def balance_rows(self) -> list[BalanceRow]:
        """Every row, unsorted (the caller sorts outside the lock)."""
        return [row for by_currency in self.customers.values() for row in by_currency.values()]

    def events_after(self, event_id: int) -> tuple[StreamEvent, ...]:
        return tuple(event for event in self.stream if event.id > event_id)


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
#: At most this many messages are applied under one hold of the lock.
_BATCH = 256

Listener = Callable[[list[StreamEvent]], object]


class ApiStore:
    """`ApiState` shared between the worker's sink (`feed`), an updater thread and HTTP handlers.

    `acknowledges_balances`: set where no screen takes the balance batches in (headless), so
    the worker's coalescing waits for this store instead (`BalancesChanged.applied`).
    """

    def __init__(self, consumer_id: str, group: str, topic: str, *, acknowledges_balances: bool = False,
                 clock: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._clock, self._monotonic = clock, monotonic
        self._state = ApiState(consumer_id, group, topic, clock())
        self._lock = threading.Lock()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._listeners: list[Listener] = []
        self.acknowledges_balances = acknowledges_balances
        self._snapshot: ApiSnapshot | None = None
        self._snapshot_version = -1
        self._balances: tuple[BalanceRow, ...] = ()
        self._balances_version = 0
        #: When the worker last posted anything (monotonic seconds); written by the worker's thread.
        self.last_worker_message = monotonic()

    # -- the worker's side: never waits ------------------------------------------------------

    def feed(self, message: object) -> None:
        """Take a message from the worker (any thread); applied later by the updater thread."""
        self.last_worker_message = self._monotonic()
        self._inbox.put(message)

    # -- the updater ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="balance-tui-api-store", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._inbox.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything fed so far is applied; False on timeout (or no updater running)."""
        marker = _Flush()
        self._inbox.put(marker)
        return marker.done.wait(timeout)

    def _run(self) -> None:
        inbox = self._inbox
        while True:
            batch = [inbox.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            messages = [m for m in batch if m is not _STOP and not isinstance(m, _Flush)]
            if messages:
                self.apply_all(messages)
            for item in batch:
                if isinstance(item, _Flush):
                    item.done.set()
            if _STOP in batch:
                return

    def apply(self, message: object) -> None:
        """Apply one message now, in the caller's thread (the updater, or a test)."""
        self.apply_all([message])

    def apply_all(self, messages: list[object]) -> None:
        with self._lock:
            for message in messages:
                self._state.apply(message, self._clock())
            events = self._state.take_new_events()
            listeners = list(self._listeners)
        if self.acknowledges_balances:
            for message in messages:
                if isinstance(message, BalancesChanged):
                    message.applied.set()
        if events:
            for listener in listeners:
                listener(events)

    # -- readers: immutable copies --------------------------------------------------------------

    def snapshot(self) -> ApiSnapshot:
        with self._lock:
            if self._snapshot is None or self._snapshot_version != self._state.version:
                self._snapshot = self._state.snapshot(self._clock())
                self._snapshot_version = self._state.version
            return self._snapshot

    def balances(self) -> tuple[BalanceRow, ...]:
        """Every balance row, sorted by customer then currency (ordinal, as the lab's OrderBy)."""
        with self._lock:
            version = self._state.balances_version
            if version == self._balances_version:
                return self._balances
            rows = self._state.balance_rows()
        rows.sort(key=_row_order)  # outside the lock: the updater never waits for a sort
        with self._lock:
            if version >= self._balances_version:
                self._balances, self._balances_version = tuple(rows), version
        return tuple(rows)

    def customer(self, customer_id: str) -> tuple[BalanceRow, ...]:
        """One customer's rows, sorted by currency; empty when this member does not hold the customer."""
        with self._lock:
            by_currency = self._state.customers.get(customer_id)
            return tuple(by_currency[c] for c in sorted(by_currency)) if by_currency else ()

    def events_after(self, event_id: int) -> tuple[StreamEvent, ...]:
        """Stream events newer than `event_id` that are still kept (for `Last-Event-ID`)."""
        with self._lock:
            return self._state.events_after(event_id)

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(events)` from the updater thread after new stream events; must not block."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def worker_silence(self) -> float:
        """Seconds since the worker last posted a message (or since this store was made)."""
        return max(0.0, self._monotonic() - self.last_worker_message)


def _row_order(row: BalanceRow) -> tuple[str, str]:
    return row.customer_id, row.currency

