"""Provides what one member knows and how it says it: `MemberState` and `Reporter`.

`MemberState` is the data the worker's parts share, and nothing else: the ledger, the
assignment history, the offsets, the counters, the strategy. `Reporter` is the one way out to
the session log and the UI: timeline lines, errors (said once, see `core.error_reports`),
malformed messages, the status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError

from balance_tui.config import Settings
from balance_tui.control import MessageSink
from balance_tui.core.assignment import AssignmentTracker, utc_now
from balance_tui.core.broker_profile import BrokerHealth, BrokerProfile
from balance_tui.core.error_reports import (
    ERROR_HINTS,
    ErrorReports,
    RejectionLog,
    refusal_hint,
)
from balance_tui.core.ledger import Ledger
from balance_tui.core.member_view import Throughput
from balance_tui.core.offsets import PartitionOffsets
from balance_tui.core.rows import ConsumerStatus, PartitionRestore, TimelineEntry
from balance_tui.core.transaction import Rejection
from balance_tui.kafka.changelog_coordinator import ChangelogCoordinator
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.consumer_setup import INCREMENTAL_STRATEGIES
from balance_tui.kafka.worker.lag_feed import LagFeed
from balance_tui.kafka.worker.publishing import StatusBoard
from balance_tui.messages import KafkaErrorReported, MessageRejected, TimelineEvent
from balance_tui.session_log import Event, SessionLog

UNREACHABLE_CODES = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}


@dataclass
class MemberState:
    """What this member knows: shared by the worker's parts, owned by none of them."""

    settings: Settings
    consumer_id: str
    strategy: str
    work_ms: float
    partition_count: int
    broker: BrokerProfile = field(default_factory=lambda: BrokerProfile(label="", consumer_protocol=None))
    ledger: Ledger = field(default_factory=Ledger)
    tracker: AssignmentTracker = field(default_factory=AssignmentTracker)
    offsets: PartitionOffsets = field(default_factory=PartitionOffsets)
    throughput: Throughput = field(default_factory=Throughput)
    rejections: RejectionLog = field(default_factory=RejectionLog)
    health: BrokerHealth = field(default_factory=BrokerHealth)
    changelog: ChangelogCoordinator | None = None
    paused: bool = False
    #: Partitions paused on purpose (the `p` key), so statistics treat their figures as stale.
    paused_partitions: set[int] = field(default_factory=set)
    #: KIP-848 group configs (session and heartbeat timeouts) already asked for, so they are set once.
    group_timeouts_set: bool = False
    #: Lag over time, Burrow's status and the lab's alert rule, kept across joins (`lag_feed.py`).
    lag: LagFeed = field(init=False)

    def __post_init__(self) -> None:
        self.lag = LagFeed.from_settings(self.settings)

    @property
    def incremental(self) -> bool:
        """Rebalances hand partitions over one by one: cooperative-sticky, and KIP-848's protocol."""
        return self.strategy in INCREMENTAL_STRATEGIES

    @property
    def restoring(self) -> set[int]:
        return self.changelog.restoring if self.changelog is not None else set()

    @property
    def owns_partitions(self) -> bool:
        return bool(self.tracker.assignment)

    def start_over(self) -> None:
        """On a new, empty cluster: nothing this member knew of the data holds any more."""
        self.ledger = Ledger()
        self.offsets = PartitionOffsets()
        self.lag.reset()


class Reporter:
    """Session log lines and messages for the UI; errors said once, the rest counted."""

    def __init__(self, session: SessionLog, sink: Callable[[], MessageSink], state: MemberState,
                 membership: GroupMembership) -> None:
        self.session = session
        self._sink = sink
        self.state = state
        self.membership = membership
        self.errors = ErrorReports()
        self.status = StatusBoard(self.post)

    def post(self, message: Any) -> None:
        self._sink()(message)

    def write(self, event: Event, **fields: Any) -> None:
        self.session.write(event, **fields)

    def timeline(self, kind: str, text: str, partitions: tuple[int, ...] = (),
                 restores: tuple[PartitionRestore, ...] = ()) -> TimelineEntry:
        entry = self.state.tracker.note(kind, utc_now(), text, partitions, restores)
        self.post(TimelineEvent(entry=entry))
        return entry

    def status_from_assignment(self) -> None:
        self.status.from_assignment(self.state.owns_partitions, self.state.paused)

    def kafka_error(self, error: KafkaError) -> None:
        """librdkafka's error: the status it implies, then said once (repeats counted, once per join)."""
        name, text, now = error.name(), error.str(), time.monotonic()
        if error.code() in UNREACHABLE_CODES:
            self.state.health.unreachable(now, len(self.state.tracker.assignment))
            if self.status.status is not ConsumerStatus.STOPPED:
                self.status.set(ConsumerStatus.BROKER_UNREACHABLE, text)
        elif error.code() > 0:  # the broker's own error code: it answered
            self.state.health.answered()
        if error.fatal():
            self.status.fatal = True
            self.status.set(ConsumerStatus.FATAL_ERROR, text)
        self.state.throughput.kafka_errors += 1
        verdict = self.errors.decide(ErrorReports.key(name, text, error.code() == KafkaError._FAIL), name, now)
        if not verdict.say:
            return
        hint = ERROR_HINTS.get(name, "")
        if name in self.errors.once_per_join:  # kept in the header until the next join attempt
            hint = refusal_hint(self.state.strategy, self.membership.strategies())
            self.membership.joining.refused(hint, now)
        repeats: dict[str, Any] = {"repeated_since_last": verdict.repeats} if verdict.repeats else {}
        self.session.write(Event.ERROR, code=name, reason=text, fatal=error.fatal(), **repeats)
        # Kept in the tracker's history for the export; the UI draws its own line from the message.
        self.state.tracker.note("error", utc_now(), f"{name}: {text}" + (f" — {hint}" if hint else ""))
        self.post(KafkaErrorReported(code=name, reason=text, fatal=error.fatal(), hint=hint))

    def failure(self, text: str, fatal: bool = False) -> None:
        """One of our own errors (changelog, commits): librdkafka's `_FAIL`, told apart by what it says."""
        self.kafka_error(KafkaError(KafkaError._FAIL, text, fatal=fatal))

    def problem(self, code: str, reason: str, hint: str = "", log: bool = True) -> None:
        """Something that is not librdkafka's error but the user must see (members topic, export, ...)."""
        if log:
            self.session.write(Event.ERROR, code=code, reason=reason, fatal=False)
        self.post(KafkaErrorReported(code=code, reason=reason, fatal=False, hint=hint))

    def processing_error(self, partition: int, offset: int, error: Exception) -> None:
        self.state.throughput.processing_errors += 1
        name = f"processing:{type(error).__name__}"
        if self.errors.decide(name, name, time.monotonic()).say:
            self.problem("PROCESSING_ERROR", f"P{partition}:O{offset} {error!r}")

    def rejection(self, partition: int, offset: int, rejection: Rejection) -> None:
        """Count a malformed message by reason; say it (at most one line per reason every few seconds)."""
        note = self.state.rejections.note(partition, offset, rejection.reason.value, rejection.detail,
                                          time.monotonic(), utc_now())
        if note is None:
            return
        extra: dict[str, Any] = {"unlogged_since_last": note.unlogged_since_last} if note.unlogged_since_last else {}
        self.session.write(Event.REJECTED, partition=partition, offset=offset, reason=note.reason, detail=note.detail,
                           **extra)
        self.post(MessageRejected(partition=partition, offset=offset, reason=note.reason, detail=note.detail,
                                  unlogged_since_last=note.unlogged_since_last))
