"""Provides the consumer worker: one thread that owns the Kafka consumer and the ledger.

The thread runs the poll loop and applies transactions; its collaborators own their state:
`PartitionOffsets` (positions, log ends, commits), `ChangelogCoordinator` (the changelog and
its restores), `GroupMembership` (the members topic, group-wide switches, refusals),
`ErrorReports` and `RejectionLog` (what is said, and how often), `BrokerHealth` (outages and
restarts), `StatusBoard` and `BalancePublisher` (what the UI is told). The rebalance callbacks
only coordinate them. Everything reaches the UI as messages from `balance_tui.messages`; the
UI only ever calls the non-blocking `WorkerControl` methods. docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from balance_tui.config import Settings
from balance_tui.control import (
    AskGroupStrategy,
    ChangeWorkMs,
    ExportNow,
    MessageSink,
    Restart,
    SetStrategy,
    Stop,
    TogglePause,
    WorkerCommand,
)
from balance_tui.core.assignment import AssignmentTracker, iso_ms, utc_now
from balance_tui.core.broker_profile import BrokerHealth, BrokerProfile, consumer_protocol_refusal
from balance_tui.core.changelog import encode_state
from balance_tui.core.error_reports import ERROR_HINTS, ErrorReports, RejectionLog, refusal_hint
from balance_tui.core.export import ExportState, export_document, export_markdown
from balance_tui.core.group import HEARTBEAT_SECONDS, GroupCommand, GroupView, MemberHeartbeat
from balance_tui.core.ledger import Effect, Ledger
from balance_tui.core.member_view import PartitionScene, Throughput, counters, partition_rows, stats_fields
from balance_tui.core.offsets import PartitionOffsets, parse_statistics, total_lag
from balance_tui.core.rows import ConsumerStatus, TimelineEntry
from balance_tui.core.transaction import Rejection, parse_transaction
from balance_tui.errors import UserError
from balance_tui.kafka.admin import describe_broker_of, ensure_topic, set_consumer_group_timeouts
from balance_tui.kafka.changelog_coordinator import CHANGELOG_RETRIES, ChangelogCoordinator, plan_assignment
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.consumer_setup import (
    INCREMENTAL_STRATEGIES,
    consumer_config,
    make_consumer_id,
    membership_of,
    quiet_logger,
)
from balance_tui.kafka.worker.publishing import BalancePublisher, StatusBoard, rebalance_log_fields
from balance_tui.messages import (
    BrokerDescribed,
    Exported,
    KafkaErrorReported,
    MessageRejected,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
    SessionStarted,
    Snapshot,
    TimelineEvent,
    WorkerStopped,
)
from balance_tui.session_log import STATS_SECONDS, SessionLog, default_log_path, export_paths
from balance_tui.static_member import StaticMembership

BALANCE_BATCH_SECONDS = 0.1
PAUSED_WATERMARK_SECONDS = 2.0
#: Heartbeats are read four times a second, so the newest one held is never near the silence threshold.
GROUP_READ_SECONDS = 0.25
#: A commit that found its changelog records not yet acknowledged is tried again after this long.
COMMIT_RETRY_SECONDS = 0.05
#: How long a revoke waits for changelog acknowledgements before dropping what is unsent.
REVOKE_FLUSH_SECONDS = 5.0

EXPECTED_COMMIT_FAILURES = {
    KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._STATE,
}
UNREACHABLE_CODES = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}


# -- how one consumer's loop ends ---------------------------------------------------------------


@dataclass(frozen=True)
class Rejoin:
    """Close the consumer and join again (a new strategy, a restart, a switch, a refused re-assign)."""


@dataclass(frozen=True)
class Quit:
    """Export, leave the group and stop the worker."""

    reason: str


@dataclass(frozen=True)
class StartOver:
    """The broker came back as a new, empty cluster: drop everything and join it from scratch."""

    old_cluster: str | None
    new_cluster: str | None


LoopOutcome = Rejoin | Quit | StartOver


class ConsumerWorker:
    """Implements `WorkerControl` around a thread running the consumer loop."""

    def __init__(self, settings: Settings, consumer_id: str | None = None, publish_balances: bool = True) -> None:
        self.settings = settings
        self.consumer_id = consumer_id or make_consumer_id()
        self.strategy: str = settings.strategy
        self.work_ms: float = settings.work_ms
        self.log_path: Path = settings.session_log or default_log_path(self.consumer_id)
        self.partition_count = settings.partitions
        self.started_at = utc_now()
        self._commands: queue.SimpleQueue[WorkerCommand] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sink: MessageSink = lambda message: None
        self._consumer: Consumer | None = None
        self._closing = False
        self._paused = False
        self._paused_partitions: set[int] = set()
        self._room_until = 0.0
        #: Set where a rejoin is the only way out (a re-assignment refused); the loop carries it out.
        self._rejoin_requested = False
        #: The generation an eager revoke happened in: its partitions' state is kept only into the next one.
        self._revoked_generation: int | None = None
        self._join_started_mono: float | None = None
        self._group_timeouts_set = False
        self._last_export_paths: tuple[Path, ...] = ()
        self._stopped_lock = threading.Lock()
        self._stopped_written = False
        self.final_export: tuple[Path, ...] = ()

        self.ledger = Ledger()
        self.tracker = AssignmentTracker()
        self.offsets = PartitionOffsets()
        self.throughput = Throughput()
        self.rejections = RejectionLog()
        self.errors = ErrorReports()
        self.health = BrokerHealth()
        self.broker = BrokerProfile(label="", consumer_protocol=None)
        self.status = StatusBoard(self._post)
        self.balances = BalancePublisher(self._post, enabled=publish_balances)
        self.membership = GroupMembership(settings, self.consumer_id)
        self.changelog: ChangelogCoordinator | None = None
        self.static = (StaticMembership(settings.group, settings.group_instance_id)
                       if settings.group_instance_id else None)
        self._logger = quiet_logger(self.consumer_id)
        # Opened here, in the caller's thread, so a path that cannot be written is a one-line error.
        try:
            self.session = SessionLog(self.log_path, self.consumer_id, settings.group, settings.topic, self.strategy)
        except OSError as error:
            raise UserError(f"cannot write the session log {self.log_path}: {error.strerror or error}") from None

    # -- figures others read ------------------------------------------------------------------

    @property
    def consumed(self) -> int:
        return self.throughput.consumed

    @property
    def restoring(self) -> set[int]:
        return self.changelog.restoring if self.changelog is not None else set()

    @property
    def group_view(self) -> GroupView:
        return self.membership.view

    # -- WorkerControl: every method only queues a request --------------------------------------

    def start(self, sink: MessageSink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.consumer_id}", daemon=True)
        self._thread.start()

    def set_strategy(self, strategy: str) -> None:
        self._commands.put(SetStrategy(strategy))

    def request_group_strategy(self, strategy: str) -> None:
        self._commands.put(AskGroupStrategy(strategy))

    def restart(self) -> None:
        self._commands.put(Restart())

    def toggle_pause(self) -> None:
        self._commands.put(TogglePause())

    def change_work_ms(self, delta: float) -> None:
        self._commands.put(ChangeWorkMs(delta))

    def export(self) -> None:
        self._commands.put(ExportNow())

    def stop(self, reason: str) -> None:
        self._commands.put(Stop(reason))

    def make_room(self, seconds: float) -> None:
        self._room_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self, reason: str) -> tuple[Path, ...]:
        """From the caller's thread, when the worker did not stop in time (stuck inside librdkafka):
        make sure the export and the session log's `stopped` line exist anyway; the export's paths.

        The worker is blocked in a Kafka call then, not applying anything, so reading its state
        from this thread is safe enough for a last export; a copy that fails is simply not written.
        """
        paths = self.final_export or self._last_export_paths
        if not paths:
            try:
                paths = self._write_export()
            except RuntimeError:  # the worker woke up and changed the state under us
                paths = ()
        if self._claim_stopped_line():
            self.session.write("stopped", reason=reason, abandoned=True)
            self.session.close()
        return paths

    def _claim_stopped_line(self) -> bool:
        """True for the one caller (the worker, or `abandon`) that writes the `stopped` line."""
        with self._stopped_lock:
            claimed, self._stopped_written = not self._stopped_written, True
            return claimed

    def _post(self, message: Any) -> None:
        self._sink(message)

    def _timeline(self, kind: str, text: str, partitions: tuple[int, ...] = ()) -> TimelineEntry:
        entry = self.tracker.note(kind, utc_now(), text, partitions)
        self._post(TimelineEvent(entry=entry))
        return entry

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        reason, paths = "stopped", ()
        try:
            self._start_session()
            while True:
                self._consumer = self._create_consumer()
                outcome = self._consume_loop()
                if isinstance(outcome, Quit):
                    reason = outcome.reason
                    # Export while still a member, so it shows what this member owned.
                    self.balances.flush(self.ledger)
                    paths = self._write_export()
                    self._close_consumer()
                    self.membership.goodbye(self._heartbeat())
                    break
                self._close_consumer()
                if isinstance(outcome, StartOver):
                    self._start_over(outcome)
                elif self.membership.switch is not None:
                    self._wait_for_group_reset()
        except Exception as error:  # the worker must report, never die silently
            reason = f"worker crashed: {error!r}"
            self.throughput.processing_errors += 1
            self.session.write("error", code="WORKER_CRASH", reason=repr(error), fatal=True)
            self._post(KafkaErrorReported(code="WORKER_CRASH", reason=repr(error), fatal=True))
            paths = self._write_export()
            try:
                self._close_consumer()
            except Exception:  # noqa: BLE001 - already failing: report the first cause
                pass
        self._finish(reason, paths)

    def _start_session(self) -> None:
        settings = self.settings
        self.session.write("started", config=settings.redacted(), consumer_id_full=self.consumer_id,
                           pid=os.getpid(), host=socket.gethostname())
        self._post(SessionStarted(consumer_id=self.consumer_id, group=settings.group, topic=settings.topic,
                                  strategy=self.strategy, bootstrap_servers=settings.bootstrap_servers,
                                  log_path=self.log_path, work_ms=self.work_ms))
        self.broker = describe_broker_of(settings.client_config())
        self.session.write("broker", **self.broker.as_log_fields())
        self._post(BrokerDescribed(label=self.broker.label, consumer_protocol=self.broker.consumer_protocol))
        self._open_collaborators()

    def _open_collaborators(self) -> None:
        """The members topic and the changelog: opened at start, and again on a new cluster."""
        problem = self.membership.open()
        if problem is not None:
            self._post(KafkaErrorReported(code="MEMBERS_TOPIC", reason=problem, fatal=False,
                                          hint="The Group panel shows this terminal only."))
        if not self.settings.changelog:
            return
        self.changelog, self.partition_count, problem = ChangelogCoordinator.open(
            self.settings, self.consumer_id, self.partition_count)
        if problem is not None:
            self.session.write("error", code="CHANGELOG_PARTITIONS", fatal=False, reason=f"{problem}: changelog off")
            self._post(KafkaErrorReported(code="CHANGELOG_PARTITIONS", fatal=False, reason=problem,
                                          hint="Balances will not follow moved partitions (changelog off). Delete "
                                               "the changelog topic or set changelog_topic to a new name."))

    def _finish(self, reason: str, paths: tuple[Path, ...]) -> None:
        if self.changelog is not None:
            self.changelog.close()
        self.membership.close()
        self.final_export = paths
        self.status.set(ConsumerStatus.STOPPED, reason)
        if self._claim_stopped_line():
            self.session.write("stopped", reason=reason)
            self.session.close()
        self._post(WorkerStopped(reason=reason, export_paths=paths))

    # -- one consumer: created, looped, closed ---------------------------------------------------

    def _create_consumer(self) -> Consumer:
        settings = self.settings
        callbacks = {"stats_cb": self._on_stats, "error_cb": self._on_error, "on_commit": self._on_commit}
        config = consumer_config(settings, self.strategy, self.consumer_id, self._logger, callbacks)
        if "group.protocol" in config and not self._group_timeouts_set:
            self._set_group_timeouts()
        consumer = Consumer(config)
        self._closing = False
        self._paused_partitions = set()
        self.status.set(ConsumerStatus.CONNECTING)
        try:
            # A full listing: naming the topic would make Tansu auto-create it with its default count.
            metadata = consumer.list_topics(timeout=5)
            if self.health.cluster_id is None:
                self.health.cluster_id = metadata.cluster_id
            topic = metadata.topics.get(settings.topic)
            if topic is not None and topic.error is None and topic.partitions:
                self.partition_count = len(topic.partitions)
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        consumer.subscribe([settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_lost)
        self.tracker.joining(utc_now())
        self._join_started_mono = time.monotonic()
        if self.status.status != ConsumerStatus.BROKER_UNREACHABLE:
            self.status.set(ConsumerStatus.JOINING, "0s")
        self.errors.new_join()
        self.membership.new_join()
        return consumer

    def _set_group_timeouts(self) -> None:
        """KIP-848: session and heartbeat timeouts are the group's; set them to ours, once."""
        self._group_timeouts_set = True
        settings = self.settings
        refused = set_consumer_group_timeouts(settings.client_config(), settings.group,
                                              settings.session_timeout_ms, settings.heartbeat_interval_ms)
        if refused is None:
            self.session.write("group_config", **{"consumer.session.timeout.ms": settings.session_timeout_ms,
                                                  "consumer.heartbeat.interval.ms": settings.heartbeat_interval_ms})
            return
        self.session.write("group_config", refused=refused)
        self._timeline("group_config", f"the broker keeps its own session timeout for this KIP-848 group ({refused}); "
                                       "a member that dies is detected after that")

    def _close_consumer(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        self.balances.flush(self.ledger)
        self._closing = True
        try:
            consumer.close()  # revokes (our callback commits what the changelog covers) and leaves the group
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        except RuntimeError as error:  # already closed
            self._report_kafka_error(KafkaError(KafkaError._FAIL, str(error)))
        self._consumer = None
        if self.changelog is not None and self.changelog.broken:
            self.changelog.drop_unsent()  # after the revoke above refused to commit past the failure
        # Out of the group, this process owns nothing: whatever the next join assigns is restored
        # from the changelog, and partitions it does not assign must not linger on screen or in exports.
        held = set(self.tracker.assignment) | self.tracker.pending_revoked | set(self.offsets.position)
        self.tracker.reset_membership()
        if self.changelog is not None:
            self.changelog.cancel_restores(sorted(self.changelog.restoring))
        self._forget(sorted(held))

    @property
    def _incremental(self) -> bool:
        return self.strategy in INCREMENTAL_STRATEGIES

    def _consume_loop(self) -> LoopOutcome:
        """Runs until a rejoin, a stop or a new cluster; everything periodic is scheduled here."""
        consumer = self._consumer
        assert consumer is not None
        clock = _Schedule(time.monotonic(), self.settings)
        while True:
            outcome = self._handle_commands()
            if outcome is not None:
                return outcome
            while self._room_until > time.monotonic():
                time.sleep(0.002)  # the UI is answering a key: let it have the interpreter
            if self.restoring:
                self._restore_step(consumer)
            if self._rejoin_requested:
                self._rejoin_requested = False
                return Rejoin()
            try:
                messages = consumer.consume(self._batch_size(), timeout=0.005 if self.restoring else 0.05)
            except KafkaException as error:
                self._report_kafka_error(error.args[0])
                messages = []
            except RuntimeError:
                return Quit("consumer closed")
            if messages:
                self._process(messages)
            outcome = self._check_changelog(consumer) or self._periodic(consumer, clock)
            if outcome is not None:
                return outcome

    def _batch_size(self) -> int:
        """Small batches when processing is slow, so commands are answered quickly."""
        return 1000 if self.work_ms <= 0 else max(1, min(1000, int(50 / self.work_ms)))

    def _periodic(self, consumer: Consumer, clock: _Schedule) -> LoopOutcome | None:
        now = time.monotonic()
        if clock.due("balances", now):
            self.balances.flush(self.ledger)
        if clock.due("commit", now) and not self._commit_covered(consumer):
            clock.soon("commit", now + COMMIT_RETRY_SECONDS)  # just sent the lingering records: look again soon
        if clock.due("group_read", now) and self._read_group():
            return Rejoin()
        if clock.due("beat", now):
            self._beat()
        if self.health.back_after_outage:
            new_cluster = self._check_broker_back(consumer)
            if new_cluster is not None:
                return new_cluster
        if self.status.status == ConsumerStatus.JOINING and self._join_started_mono is not None \
                and self._joining_tick(now):
            return Rejoin()
        if self._paused and clock.due("watermarks", now):
            self._refresh_paused_watermarks(consumer)
        if clock.due("snapshot", now):
            self._post(self._snapshot(now))
        if clock.due("stats", now):
            self._log_stats(now)
        return None

    def _joining_tick(self, now: float) -> bool:
        """While joining: the seconds waited (and why the group refuses us); True to rejoin with the group's
        strategy after being refused too long."""
        assert self._join_started_mono is not None
        refusal = self.membership.refusal
        self.status.set(ConsumerStatus.JOINING, f"{now - self._join_started_mono:.0f}s"
                                                + (f" · {refusal}" if refusal else ""))
        target = self.membership.heal_target(self.strategy, now, bool(self.tracker.assignment))
        if target is None or consumer_protocol_refusal(self.broker, target[0]):
            return False
        strategy, refused_for = target
        self.session.write("refusal_healed", **{"from": self.strategy, "to": strategy,
                                                "refused_for_s": round(refused_for, 1)})
        self._timeline("strategy_changed", f"the group refused {self.strategy} for {refused_for:.0f} s and every "
                                           f"member in it uses {strategy}: rejoining with {strategy}")
        return isinstance(self._change_strategy(strategy), Rejoin)

    # -- processing ----------------------------------------------------------------------------

    def _process(self, messages: list[Any]) -> None:
        """Apply a batch: parse, apply to the ledger, write the changelog, pace the simulated work."""
        ledger_apply, customers, dirty = self.ledger.apply, self.ledger.customers, self.balances.dirty
        restoring = self.restoring
        write = self.changelog.writer.write if self.changelog is not None else None
        position = self.offsets.position
        produced_at_ms: list[int] = []
        work_seconds = self.work_ms / 1000.0
        paced_until = time.monotonic()
        not_records = 0
        for message in messages:
            error = message.error()
            partition = message.partition()
            if error is not None or partition in restoring:
                # Partition EOF, an error; or fetched before a restore's pause took effect: read again after it.
                not_records += 1
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self._report_kafka_error(error)
                continue
            offset = message.offset()
            result = parse_transaction(message.value())
            if isinstance(result, Rejection):
                self._note_rejection(partition, offset, result)
            else:
                try:
                    effect = ledger_apply(result, partition, offset)
                except Exception as error:  # noqa: BLE001 - a bug or an absurd value must not stop the service
                    self.throughput.processing_errors += 1
                    self._report_processing_error(partition, offset, error)
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
        self.throughput.batch(len(messages) - not_records, produced_at_ms, time.monotonic(), time.time() * 1000.0,
                              utc_now())
        if self.changelog is not None:
            self.changelog.writer.poll()

    def _note_rejection(self, partition: int, offset: int, rejection: Rejection) -> None:
        """Count a malformed message by reason; log it (at most one line per reason every few seconds)."""
        note = self.rejections.note(partition, offset, rejection.reason.value, rejection.detail, time.monotonic(),
                                    utc_now())
        if note is None:
            return
        extra = {"unlogged_since_last": note.unlogged_since_last} if note.unlogged_since_last else {}
        self.session.write("rejected", partition=partition, offset=offset, reason=note.reason, detail=note.detail,
                           **extra)
        self._post(MessageRejected(partition=partition, offset=offset, reason=note.reason, detail=note.detail,
                                   unlogged_since_last=note.unlogged_since_last))

    def _check_changelog(self, consumer: Consumer) -> LoopOutcome | None:
        """A changelog record failed: what this process applied is ahead of the changelog.

        Nothing is committed; every partition is restored from the changelog as it stands and
        consumed again from there: nothing lost, nothing applied twice.
        """
        changelog = self.changelog
        if changelog is None or not changelog.broken:
            return None
        failures = changelog.note_failure()
        reason = changelog.first_error
        if failures > CHANGELOG_RETRIES:
            self._report_kafka_error(KafkaError(KafkaError._FAIL, f"changelog write failed {failures} times in a row "
                                                f"({reason}); stopping: balances could not be kept exact", fatal=True))
            return Quit(f"changelog failing: {reason}")
        self._report_kafka_error(KafkaError(KafkaError._FAIL, f"changelog write failed ({reason}); "
                                            "restoring every partition from the changelog"))
        self._drop_unsent_changelog(consumer)
        return None

    def _commit_covered(self, consumer: Consumer, partitions: set[int] | None = None,
                        wait_seconds: float = 0.0) -> bool:
        """Commit the positions of owned partitions once the changelog covering them is acknowledged.

        Never waits longer than `wait_seconds` for the acknowledgements (0 in the loop: the next
        commit interval tries again, so a broker outage never freezes the loop). False when the
        changelog was not acknowledged in that time (nothing was committed).
        """
        owned = (partitions if partitions is not None else self.tracker.assignment) - self.restoring
        offsets = [TopicPartition(self.settings.topic, p, self.offsets.position[p]) for p in sorted(owned)
                   if p in self.offsets.position]
        if not offsets:
            return True
        if self.changelog is not None:
            gate = self.changelog.commit_gate(wait_seconds, time.monotonic())
            if gate.report:
                self._report_kafka_error(KafkaError(KafkaError._FAIL, gate.report))
            if not gate.ready:
                return False
        try:
            # Asynchronous: during a join phase the embedded broker can hold a commit for seconds,
            # and this thread must keep heartbeating the members topic. Positions never depend on
            # commits (the changelog decides), so nothing waits for the answer (`_on_commit`).
            consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        return True

    def _drop_unsent_changelog(self, consumer: Consumer) -> None:
        """Purge changelog records not yet acknowledged; restore what this process still owns.

        Called when partitions leave with records unsent (they must not land after their new
        owner's) and after a write failed. The in-memory state is then ahead of the changelog,
        so every partition still held is restored in place from the changelog as it stands and
        consumed again from there.
        """
        assert self.changelog is not None
        self.changelog.drop_unsent()
        held_back = set(self.tracker.pending_revoked)
        self.tracker.pending_revoked.clear()  # if they come back, they are restored
        owned = sorted(self.tracker.assignment - self.restoring)
        self._forget(sorted(held_back | set(owned)))
        if not owned:
            return
        consumer.pause([TopicPartition(self.settings.topic, p) for p in owned])
        self.changelog.start_restores(owned)
        self.status.from_assignment(bool(self.tracker.assignment), self._paused)

    def _forget(self, partitions: list[int]) -> None:
        """Partitions that left: their balances go from the ledger and the screen, their figures from the offsets.

        Forgotten before the batch that removes their rows: one re-adding them would undo the removal.
        """
        for partition in partitions:
            self.balances.forget(self.ledger.drop_partition(partition))
            self.offsets.forget(partition)
        if partitions:
            self.balances.flush(self.ledger, removed_partitions=tuple(partitions))

    # -- rebalance callbacks (run inside consume(), on this thread): coordination only -----------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        to_restore = self._take_assignment(consumer, partitions)
        if to_restore:
            assert self.changelog is not None
            # Not kept, even if they were ours before the revoke: their state is read back.
            self.tracker.pending_revoked.difference_update(to_restore)
            self._forget_quietly(to_restore)
            self.changelog.start_restores(to_restore)
        generation, member_id = membership_of(consumer)
        entry = self.tracker.assigned(numbers, self._incremental, utc_now(), generation, member_id)
        self._forget(sorted(self.tracker.last_dropped))
        self._join_started_mono = None
        self._rebalanced("assigned", entry, PartitionsAssigned)
        if self.static is not None:
            self._note_static_assignment(entry)
        self.status.from_assignment(bool(self.tracker.assignment), self._paused)

    def _take_assignment(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[int]:
        """Assign the partitions ourselves (explicit offsets, paused at once) where needed; those to restore."""
        to_restore: list[int] = []
        if self.changelog is not None:
            generation = membership_of(consumer)[0]
            # Only if no other generation came between: then nobody else owned the partition meanwhile.
            uninterrupted = (generation is not None and self._revoked_generation is not None
                             and generation == self._revoked_generation + 1)
            plan = plan_assignment([tp.partition for tp in partitions], uninterrupted, self.tracker.pending_revoked,
                                   self.offsets.position)
            for tp in partitions:
                if tp.partition in plan.kept_at:
                    # An eager rebalance gave back a partition whose state never left this process:
                    # continue exactly where we were, whatever was committed.
                    tp.offset = plan.kept_at[tp.partition]
            to_restore = plan.to_restore
        if partitions and (self._paused or self.changelog is not None):
            (consumer.incremental_assign if self._incremental else consumer.assign)(partitions)
            hold = [tp for tp in partitions if self._paused or tp.partition in to_restore]
            if hold:
                consumer.pause(hold)
            if self._paused:
                self._paused_partitions |= {tp.partition for tp in partitions}
        return to_restore

    def _forget_quietly(self, partitions: list[int]) -> None:
        """Forget partitions about to be restored: their rows come back with the restore."""
        for partition in partitions:
            self.balances.forget(self.ledger.drop_partition(partition))
            self.offsets.forget(partition)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self.balances.flush(self.ledger)
        # A revoke may wait a little for the changelog (the partitions' new owner restores from it);
        # an unreachable broker would make any wait pointless.
        wait = 0.0 if self.status.status is ConsumerStatus.BROKER_UNREACHABLE else REVOKE_FLUSH_SECONDS
        flushed = self._commit_covered(consumer, set(numbers), wait_seconds=wait)
        if self.changelog is not None:
            self.changelog.cancel_restores(numbers)
        # Eager protocols revoke everything and may give some back: keep their state until then.
        incremental = self._incremental and not self._closing
        generation, member_id = membership_of(consumer)
        self._revoked_generation = generation
        entry = self.tracker.revoked(numbers, incremental, utc_now(), generation, member_id)
        if incremental:
            self._forget(numbers)
        self._paused_partitions -= set(numbers)
        if not flushed and self.changelog is not None:
            self._drop_unsent_changelog(consumer)
        self._join_started_mono = time.monotonic()
        self._rebalanced("revoked", entry, PartitionsRevoked)
        if not self._closing:
            self.status.set(ConsumerStatus.REBALANCING)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self.balances.flush(self.ledger)
        entry = self.tracker.lost(numbers, utc_now(), *membership_of(consumer))
        if self.changelog is not None:
            self.changelog.cancel_restores(numbers)
        self._forget(sorted(set(numbers) | self.tracker.last_dropped))
        self._paused_partitions -= set(numbers)
        if self.changelog is not None:
            self._drop_unsent_changelog(consumer)  # the group moved on: our late records must not land
        self._join_started_mono = time.monotonic()
        self._rebalanced("lost", entry, PartitionsLost)
        self.status.set(ConsumerStatus.PARTITIONS_LOST)

    def _rebalanced(self, event: str, entry: TimelineEntry, message: type) -> None:
        self.session.write(event, at=entry.at, **rebalance_log_fields(event, entry))
        self.membership.describe_soon()
        self._post(message(partitions=entry.partitions, assignment=entry.assignment, entry=entry))

    def _note_static_assignment(self, entry: TimelineEntry) -> None:
        """Say whether this static member got its partitions back without a rebalance."""
        assert self.static is not None
        assignment = tuple(sorted(self.tracker.assignment))
        verdict = self.static.assigned(entry.generation, assignment, self.consumer_id, utc_now().isoformat())
        if verdict is None:
            return
        no_rebalance, text = verdict
        before = self.static.before
        self.session.write("static_rejoin", no_rebalance=no_rebalance, generation=entry.generation,
                           assignment=list(assignment), previous_generation=before.generation if before else None)
        self._timeline("static_rejoin", text, assignment)

    def _restore_step(self, consumer: Consumer) -> None:
        """Read more of the changelog; hand each partition that reached its end over to consumption."""
        assert self.changelog is not None
        finished, errors = self.changelog.step()
        for error in errors:
            self._report_kafka_error(error)
        for restore, seconds in finished:
            partition, resume = restore.partition, restore.resume_offset
            self.ledger.restore(restore.states.values())
            source = TopicPartition(self.settings.topic, partition, OFFSET_BEGINNING if resume is None else resume)
            self.offsets.restored_to(partition, source.offset, resume)
            if not self._seek(consumer, source):
                return
            if self._paused:
                self._paused_partitions.add(partition)
            else:
                consumer.resume([TopicPartition(self.settings.topic, partition)])
            self.balances.changed(restore.states)
            self.session.write("restored", partition=partition, customers=len(restore.states),
                               records=restore.records, duration_ms=round(seconds * 1000, 1),
                               resume_offset=resume if resume is not None else 0)
            self._timeline("restored", f"restored P{partition}: {len(restore.states):,} customers from "
                                       f"{restore.records:,} changelog records in {seconds:.2f}s, resuming at offset "
                                       f"{resume if resume is not None else 0}", (partition,))
            if not self.restoring:
                self.status.from_assignment(bool(self.tracker.assignment), self._paused)

    def _seek(self, consumer: Consumer, source: TopicPartition) -> bool:
        """Send a restored partition to where it resumes; False when only a new join can (one is requested)."""
        try:
            consumer.seek(source)
            return True
        except KafkaException:
            pass
        try:
            self._reassign_at(consumer, source)
            return True
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
            self._rejoin_requested = True  # a fresh join restores everything again
            return False

    def _reassign_at(self, consumer: Consumer, source: TopicPartition) -> None:
        """Not fetching yet, so `seek` refused: give the partition its starting offset by re-assigning it."""
        topic = self.settings.topic
        if self._incremental:
            consumer.incremental_unassign([TopicPartition(topic, source.partition)])
            consumer.incremental_assign([source])
            return
        # Eager protocols only take whole assignments: keep every other partition where it is.
        consumer.assign([source if p == source.partition else TopicPartition(topic, p, self.offsets.next_offset(p))
                         for p in sorted(self.tracker.assignment)])
        hold = sorted(p for p in self.tracker.assignment if p in self.restoring or p in self._paused_partitions
                      or (self._paused and p == source.partition))
        if hold:
            consumer.pause([TopicPartition(topic, p) for p in hold])

    # -- librdkafka callbacks -------------------------------------------------------------------

    def _on_stats(self, stats_json: str) -> None:
        statistics = parse_statistics(stats_json, self.settings.topic)
        if statistics is None:
            return
        self.offsets.apply_statistics(statistics, self._paused_partitions, self.restoring)
        self.health.statistics(statistics.all_brokers_up, time.monotonic())
        if self.status.status == ConsumerStatus.BROKER_UNREACHABLE and statistics.any_broker_up:
            self.status.from_assignment(bool(self.tracker.assignment), self._paused)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            self.offsets.commits_acknowledged(((tp.partition, tp.offset) for tp in partitions if tp.error is None),
                                              self.tracker.assignment)
        elif error.code() in EXPECTED_COMMIT_FAILURES:
            # A commit that crossed a rebalance: harmless here (the changelog positions a new
            # owner), so it goes to the session log only, not to the screen.
            if error.code() != KafkaError._NO_OFFSET:
                self.session.write("commit_skipped", code=error.name(), reason=error.str())
        else:
            self._report_kafka_error(error)

    def _on_error(self, error: KafkaError) -> None:
        self._report_kafka_error(error)

    def _report_kafka_error(self, error: KafkaError) -> None:
        name, text = error.name(), error.str()
        now = time.monotonic()
        if error.code() in UNREACHABLE_CODES:
            self.health.unreachable(now, len(self.tracker.assignment))
            if self.status.status is not ConsumerStatus.STOPPED:
                self.status.set(ConsumerStatus.BROKER_UNREACHABLE, text)
        if error.fatal():
            self.status.fatal = True
            self.status.set(ConsumerStatus.FATAL_ERROR, text)
        self.throughput.kafka_errors += 1
        # The same error on every poll would flood the log and the timeline: count it instead. The
        # broker refuses every retry of a join the same way: that one is said once per join.
        verdict = self.errors.decide(ErrorReports.key(name, text, error.code() == KafkaError._FAIL), name, now)
        if not verdict.say:
            return
        hint = ERROR_HINTS.get(name, "")
        if name in self.errors.once_per_join:  # kept in the header until the next join attempt
            hint = refusal_hint(self.strategy, self.membership.strategies())
            self.membership.refused(hint, now)
        self.session.write("error", code=name, reason=text, fatal=error.fatal(),
                           **({"repeated_since_last": verdict.repeats} if verdict.repeats else {}))
        # Kept in the tracker's history for the export; the UI draws its own line from the message.
        self.tracker.note("error", utc_now(), f"{name}: {text}" + (f" — {hint}" if hint else ""))
        self._post(KafkaErrorReported(code=name, reason=text, fatal=error.fatal(), hint=hint))

    def _report_processing_error(self, partition: int, offset: int, error: Exception) -> None:
        name = f"processing:{type(error).__name__}"
        if not self.errors.decide(name, name, time.monotonic()).say:
            return
        reason = f"P{partition}:O{offset} {error!r}"
        self.session.write("error", code="PROCESSING_ERROR", reason=reason, fatal=False)
        self._post(KafkaErrorReported(code="PROCESSING_ERROR", reason=reason, fatal=False))

    def _refresh_paused_watermarks(self, consumer: Consumer) -> None:
        """While paused nothing is fetched, so ask the broker for the end offsets.

        The embedded broker answers ListOffsets with the start of the last batch + 1,
        never more than the true end: keeping the maximum of what we know stays right
        or slightly low, and lets the lag visibly grow during the pause.
        """
        if self.status.status is ConsumerStatus.BROKER_UNREACHABLE:
            return  # each request would wait its timeout out: the loop must keep going
        for partition in sorted(self.tracker.assignment):
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.settings.topic, partition), timeout=0.2,
                                                         cached=False)
            except KafkaException:
                continue
            if high >= 0:
                self.offsets.raise_high_watermark(partition, high)

    # -- the broker going away and coming back ----------------------------------------------------

    def _check_broker_back(self, consumer: Consumer) -> StartOver | None:
        """The broker answers again: the same cluster (data kept, None), or a new one (StartOver).

        A broker restarted on memory storage (Tansu) comes back as a new, empty cluster: its topics,
        committed offsets and changelog are gone, and every balance this member held belongs to a
        world that no longer exists. A broker that kept its data (Apache Kafka) is the same
        cluster, and consumption simply resumes where it was.
        """
        now = time.monotonic()
        outage = self.health.outage_over(now)
        try:
            cluster = consumer.list_topics(timeout=2).cluster_id
        except KafkaException:
            self.health.still_out(now, outage)  # not really back: look again later
            return None
        known = self.health.cluster_id
        if cluster == known or cluster is None or known is None:
            self.session.write("broker_back", outage_s=round(outage, 1), cluster_id=cluster, same_cluster=True)
            self._timeline("broker_back", f"broker reachable again after {outage:.0f} s, same cluster: "
                                          "consumption resumes where it was")
            return None
        return StartOver(known, cluster)

    def _start_over(self, outcome: StartOver) -> None:
        """After a broker restart that lost everything: drop every balance, reopen the members topic and
        the changelog on the new cluster, and join its group from scratch."""
        lost = self.health.owned_at_outage
        self.session.write("broker_restarted", old_cluster_id=outcome.old_cluster,
                           new_cluster_id=outcome.new_cluster, partitions_lost=lost)
        text = (f"broker restarted: the topic starts empty, {lost} partition{'s' if lost != 1 else ''}' state was lost "
                f"(cluster {outcome.old_cluster} → {outcome.new_cluster}); rejoining the new cluster")
        self._post(KafkaErrorReported(code="BROKER_RESTARTED", reason=text, fatal=False,
                                      hint="Balances start again from the new topic's first transaction."))
        self.tracker.note("broker_restarted", utc_now(), text)
        if self.changelog is not None:
            self.changelog.drop_unsent()  # what it still held belongs to the old cluster: never sent
            self.changelog.close()
            self.changelog = None
        self.membership.close()
        self.ledger = Ledger()
        self.offsets = PartitionOffsets()
        self.health.new_cluster(outcome.new_cluster)
        try:
            ensure_topic(self.settings.client_config(), self.settings.topic, self.settings.partitions)
        except UserError as error:
            self._post(KafkaErrorReported(code="TOPIC", reason=str(error), fatal=False))
        self.membership.forget_group()
        self._open_collaborators()

    # -- the group ------------------------------------------------------------------------------

    def _heartbeat(self) -> MemberHeartbeat:
        owned = self.tracker.assignment
        lags = self.offsets.lag_by_partition(owned, self.restoring)
        positions, highs, commits = self.offsets.owned_figures(owned, self.restoring)
        return MemberHeartbeat(
            consumer_id=self.consumer_id, host=socket.gethostname(), pid=os.getpid(), strategy=self.strategy,
            status=self.status.status.value, assignment=tuple(sorted(owned)),
            generation=membership_of(self._consumer)[0], lag=total_lag(lags, bool(owned)),
            rate=self.throughput.rate.rate(time.monotonic()), work_ms=self.work_ms, sent_at=utc_now(),
            session_timeout_ms=self.settings.session_timeout_ms, position_by_partition=positions,
            high_watermark_by_partition=highs, committed_by_partition=commits,
        )

    def _beat(self) -> None:
        """Publish this member's heartbeat and show the group as it stands."""
        heartbeat = self._heartbeat()
        changed, departures = self.membership.beat(
            heartbeat, len(self.tracker.assignment), self.health.admin_requests_safe(time.monotonic()),
            self.partition_count)
        for gone in departures:
            kind = "member_left" if gone.reason == "left" else "member_gone"
            self._timeline(kind, gone.timeline_text(), gone.partitions)
        self._post(changed)

    def _read_group(self) -> bool:
        """Take in the members' heartbeats and carry out group commands; True to rejoin for one."""
        switches, _ = self.membership.read()  # a reset only matters while waiting for one
        rejoin = False
        for command in switches:
            rejoin = self._adopt_group_command(command) or rejoin
        return rejoin

    def _adopt_group_command(self, command: GroupCommand) -> bool:
        """Take a group-wide switch in: True if this member must leave and rejoin for it.

        Commands are read in the members topic's order (one partition), the same for every
        member, and the latest one read wins: concurrent requests resolve to the strategy of the
        last, whatever each member was doing when it read the earlier ones.
        """
        self.session.write("group_command", strategy=command.strategy, requested_by=command.requested_by,
                           requested_at=command.requested_at, command_id=command.command_id)
        self._timeline("strategy_requested", command.timeline_text())
        if command.strategy == self.strategy or not isinstance(self._change_strategy(command.strategy), Rejoin):
            return False
        self.membership.switch = command
        return True

    def _wait_for_group_reset(self) -> None:
        """Between leaving and rejoining in a group-wide switch: wait until the group is reset."""
        assert self.membership.switch is not None
        self.status.set(ConsumerStatus.REBALANCING, f"switching the whole group to {self.strategy}")
        beats = _Every(HEARTBEAT_SECONDS)
        stats = _Every(STATS_SECONDS, start=time.monotonic())

        def tick() -> None:
            now = time.monotonic()
            if beats.due(now):
                self._beat()
            if stats.due(now):  # the session log's contract: stats at least every 5 s, whatever happens
                self._log_stats(now)

        ended = self.membership.wait_for_reset(lambda: self.strategy, self._adopt_group_command, tick,
                                               lambda: self.health.admin_requests_safe(time.monotonic()))
        self.membership.switch = None
        if ended.by is None:
            self.session.write("group_reset", by=None, outcome=ended.outcome, attempts=list(ended.attempts))
        elif ended.command is not None:
            self.session.write("group_reset", by=ended.by)
            self._timeline("group_reset", ended.command.timeline_text())
        else:
            self.session.write("group_reset", by=ended.by, outcome=ended.outcome)
            self._timeline("group_reset", f"group {ended.outcome} before rejoining with {self.strategy}")

    # -- commands from the UI -------------------------------------------------------------------

    def _handle_commands(self) -> LoopOutcome | None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return None
            outcome = self._handle(command)
            if outcome is not None:
                return outcome

    def _handle(self, command: WorkerCommand) -> LoopOutcome | None:
        match command:
            case Stop(reason=reason):
                return Quit(reason or "stopped")
            case SetStrategy(strategy=strategy):
                return self._change_strategy(strategy)
            case AskGroupStrategy(strategy=strategy):
                return self._ask_group(strategy)
            case Restart():
                self.session.write("restarted")
                self._timeline("restarted", "leaving the group and rejoining")
                return Rejoin()
            case TogglePause():
                self._toggle_pause()
            case ChangeWorkMs(delta=delta):
                previous, self.work_ms = self.work_ms, max(0.0, round(self.work_ms + float(delta), 3))
                if self.work_ms != previous:
                    self.session.write("work_ms_changed", **{"from": previous, "to": self.work_ms})
            case ExportNow():
                self._write_export()
        return None

    def _refuse_strategy(self, strategy: str) -> bool:
        """True (and said) when the broker cannot serve `strategy` (KIP-848 on a broker without it)."""
        reason = consumer_protocol_refusal(self.broker, strategy)
        if reason is None:
            return False
        self.session.write("error", code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False)
        self.tracker.note("error", utc_now(), f"CONSUMER_PROTOCOL_UNSUPPORTED: {reason}")
        self._post(KafkaErrorReported(code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False,
                                      hint=f"staying on {self.strategy}"))
        return True

    def _change_strategy(self, strategy: str) -> LoopOutcome | None:
        if self._refuse_strategy(strategy):
            return None
        previous, self.strategy = self.strategy, strategy
        self.session.strategy = strategy
        self.session.write("strategy_changed", **{"from": previous, "to": strategy})
        self._timeline("strategy_changed", f"strategy {previous} → {strategy}: leaving the group and rejoining")
        return Rejoin()

    def _ask_group(self, strategy: str) -> LoopOutcome | None:
        if self._refuse_strategy(strategy):
            return None
        request = GroupCommand(strategy=strategy, requested_by=self.consumer_id, requested_at=utc_now())
        if not self.membership.send(request):  # no members topic: this member alone
            return self._change_strategy(strategy)
        return None  # carried out when read back, by every member alike

    def _toggle_pause(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        owned = [TopicPartition(self.settings.topic, p) for p in sorted(self.tracker.assignment)]
        self._paused = not self._paused
        try:
            if owned:
                (consumer.pause if self._paused else consumer.resume)(owned)
            self._paused_partitions = set(self.tracker.assignment) if self._paused else set()
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        event = "paused" if self._paused else "resumed"
        self.session.write(event, assignment=sorted(self.tracker.assignment))
        self._timeline(event, "consumption paused: partitions kept, lag grows" if self._paused
                       else "consumption resumed")
        self.status.from_assignment(bool(self.tracker.assignment), self._paused)

    # -- what the UI, the session log and the export are told -------------------------------------

    def _snapshot(self, now: float) -> Snapshot:
        owned = self.tracker.assignment
        lags = self.offsets.lag_by_partition(owned, self.restoring)
        progress = ({p: (r.records, r.total) for p, r in self.changelog.progress().items()}
                    if self.changelog is not None and self.restoring else {})
        scene = PartitionScene(count=self.partition_count, owned=frozenset(owned), restoring=frozenset(self.restoring),
                               paused=frozenset(self._paused_partitions),
                               recently_revoked=frozenset(self.tracker.revoked_at), progress=progress)
        others = {p: self.membership.view.log_end(p) for p in range(self.partition_count) if p not in owned}
        generation, member_id = membership_of(self._consumer)
        return Snapshot(
            counters=counters(self.throughput, self.ledger, self.rejections, lags, bool(owned), now),
            partitions=partition_rows(scene, self.offsets, lags, self.offsets.rates(now), others),
            status=self.status.status, generation=generation, member_id=member_id, strategy=self.strategy,
            work_ms=self.work_ms, paused=self._paused,
        )

    def _log_stats(self, now: float) -> None:
        owned = self.tracker.assignment
        lags = self.offsets.lag_by_partition(owned, self.restoring)
        self.session.write("stats", **stats_fields(self.throughput, self.rejections, lags, owned,
                                                   self.status.status.value, now))

    def export_state(self) -> ExportState:
        return ExportState(
            consumer_id=self.consumer_id, group_id=self.settings.group, topic=self.settings.topic,
            strategy=self.strategy, status=self.status.status.value,
            assigned_partitions=sorted(self.tracker.assignment), messages_consumed=self.throughput.consumed,
            balance_updates=self.ledger.applied, processing_errors=self.throughput.processing_errors,
            rejected=self.rejections.total, partition_offsets=dict(self.offsets.position),
            history=list(self.tracker.history), started_at=self.started_at,
            last_message_at=self.throughput.last_message_at, balances=self.ledger.rows(), exported_at=utc_now(),
            extra={"rejectedByReason": dict(sorted(self.rejections.by_reason.items())),
                   "recentRejections": [{**entry, "at": iso_ms(entry["at"])} for entry in self.rejections.recent],
                   "group": self.membership.view.export_entries(utc_now()),
                   "groupPartitions": self.membership.view.export_partitions(self.partition_count, utc_now()),
                   "broker": self.broker.label},
        )

    def _write_export(self) -> tuple[Path, ...]:
        json_path, markdown_path = export_paths(self.log_path)
        try:
            state = self.export_state()
            json_path.write_text(json.dumps(export_document(state), indent=2) + "\n", encoding="utf-8")
            markdown_path.write_text(export_markdown(state), encoding="utf-8")
        except Exception as error:  # noqa: BLE001 - an export must never take the worker down (OSError, a bug)
            self.session.write("error", code="EXPORT_FAILED", reason=str(error), fatal=False)
            self._post(KafkaErrorReported(code="EXPORT_FAILED", reason=str(error), fatal=False))
            return ()
        paths = (json_path, markdown_path)
        self._last_export_paths = paths
        self.session.write("exported", paths=[str(p) for p in paths])
        self._post(Exported(paths=paths))
        return paths


class _Every:
    """Due once every `seconds` (first at `start`, default at once)."""

    def __init__(self, seconds: float, start: float = 0.0) -> None:
        self.seconds = seconds
        self.next = start

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.seconds
        return True


class _Schedule:
    """The consume loop's periodic jobs and when each is next due."""

    def __init__(self, now: float, settings: Settings) -> None:
        self._jobs = {
            "balances": _Every(BALANCE_BATCH_SECONDS, now + BALANCE_BATCH_SECONDS),
            "commit": _Every(settings.commit_interval_ms / 1000.0, now + settings.commit_interval_ms / 1000.0),
            "group_read": _Every(GROUP_READ_SECONDS, now),
            "beat": _Every(HEARTBEAT_SECONDS, now),
            "watermarks": _Every(PAUSED_WATERMARK_SECONDS, now),
            "snapshot": _Every(1.0 / settings.refresh_hz, now),
            "stats": _Every(STATS_SECONDS, now + STATS_SECONDS),
        }

    def due(self, job: str, now: float) -> bool:
        return self._jobs[job].due(now)

    def soon(self, job: str, at: float) -> None:
        self._jobs[job].next = at
