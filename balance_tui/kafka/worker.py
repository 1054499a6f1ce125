"""The consumer worker: one thread that owns the Kafka consumer and the ledger.

It runs the poll loop, applies transactions, keeps the assignment history, writes
the session log and exports, and reports everything to a sink as messages from
`balance_tui.messages`: assignment changes and errors as they happen, balances in
coalesced batches (at most ten a second), counters and partitions as snapshots.
The UI only ever calls the non-blocking `WorkerControl` methods.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import secrets
import socket
import struct
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from balance_tui.config import CONSUMER_PROTOCOL, Settings
from balance_tui.control import MessageSink
from balance_tui.core.assignment import AssignmentTracker, iso_ms, utc_now
from balance_tui.core.broker_profile import BrokerProfile, consumer_protocol_refusal
from balance_tui.core.changelog import encode_state
from balance_tui.core.group import GROUP_RESET, HEARTBEAT_SECONDS, GroupCommand, GroupView, MemberHeartbeat
from balance_tui.core.export import ExportState, export_document, export_markdown
from balance_tui.core.ledger import Effect, Ledger
from balance_tui.core.metrics import LatencyWindow, RateMeter
from balance_tui.core.rows import ConsumerStatus, Counters, PartitionRow, PartitionState, TimelineEntry
from balance_tui.core.transaction import Rejection, parse_transaction
from balance_tui.kafka.admin import (
    bootstrap_accepts_connections,
    delete_empty_group,
    describe_broker_of,
    ensure_topic,
    group_state,
    set_consumer_group_timeouts,
    topic_partition_count,
)
from balance_tui.errors import UserError
from balance_tui.kafka.changelog import ChangelogRestorer, ChangelogWriter
from balance_tui.kafka.members import MemberBeacon
from balance_tui.messages import (
    BalancesChanged,
    BrokerDescribed,
    MessageRejected,
    Exported,
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
from balance_tui.session_log import SessionLog, default_log_path, export_paths
from balance_tui.static_member import StaticMemberRecord, describe_static_rejoin, load_static_record, save_static_record

BALANCE_BATCH_SECONDS = 0.1
STATS_LOG_SECONDS = 5.0
ERROR_REPEAT_SECONDS = 5.0
PAUSED_WATERMARK_SECONDS = 2.0
#: Changelog failures in a row (no successful flush between them) before the worker gives up.
CHANGELOG_RETRIES = 3
#: Rejections logged (session log, headless output) per reason at most once in this many seconds;
#: the others are counted in the next line's `unlogged_since_last`.
REJECTION_LOG_SECONDS = 5.0
#: Rejections kept with their reason, partition and offset for the export.
RECENT_REJECTIONS = 20
#: A commit that found its changelog records not yet acknowledged is tried again after this long.
COMMIT_RETRY_SECONDS = 0.05
#: A member refused by the group (INCONSISTENT_GROUP_PROTOCOL) this long, or twice its session timeout,
#: adopts the strategy of the group's members.
REFUSAL_HEAL_SECONDS = 15.0
#: How long a revoke waits for changelog acknowledgements before dropping what is unsent.
REVOKE_FLUSH_SECONDS = 5.0
#: Changelog records unacknowledged for this long are reported (the loop itself never waits for them).
CHANGELOG_ACK_REPORT_SECONDS = 10.0
#: After a broker came (back) up, wait this long before coordinator admin requests (librdkafka #4605).
ADMIN_AFTER_UP_SECONDS = 3.0
#: Heartbeats are read four times a second, so the newest one held is never near the silence threshold.
GROUP_READ_SECONDS = 0.25

EXPECTED_COMMIT_FAILURES = {
    KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._STATE,
}
UNREACHABLE_CODES = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}

#: Errors a broker repeats on every retry of a join: reported once per join attempt.
ONCE_PER_JOIN = {"INCONSISTENT_GROUP_PROTOCOL"}

#: Plain-words advice for errors a learner is likely to cause on purpose.
ERROR_HINTS = {
    "_ALL_BROKERS_DOWN": "No broker answers. Is the broker running (`balance-tui broker` or `./scripts/demo`)?",
}


def tune_garbage_collector() -> None:
    """Process-wide GC settings for a long-running consumer (measured +4%, docs/performance.md).

    The ledger keeps many long-lived objects: collect the young generation less often and
    keep start-up objects out of full collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def make_consumer_id() -> str:
    """`balance-worker-<host>-<8 hex>`, as the lab names its workers."""
    return f"balance-worker-{socket.gethostname()}-{secrets.token_hex(4)}"


def generation_from_metadata(metadata: bytes) -> int | None:
    """Read the generation id from librdkafka's serialized consumer group metadata.

    confluent-kafka hands it over as opaque bytes: magic `CGMDv2:`, then the
    generation id as a native int32.
    """
    if len(metadata) >= 11 and metadata[:7] == b"CGMDv2:":
        (generation,) = struct.unpack("=i", metadata[7:11])
        return generation if generation >= 0 else None
    return None


class _LibrdkafkaLog(logging.Handler):
    """Keeps librdkafka's own log lines off the terminal (they would tear the UI)."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: deque[str] = deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.recent.append(record.getMessage())


class ConsumerWorker:
    """Implements `WorkerControl` around a thread running the consumer loop."""

    def __init__(self, settings: Settings, consumer_id: str | None = None,
                 publish_balances: bool = True) -> None:
        self.settings = settings
        self.consumer_id = consumer_id or make_consumer_id()
        self.strategy: str = settings.strategy
        self.work_ms: float = settings.work_ms
        self.log_path: Path = settings.session_log or default_log_path(self.consumer_id)
        self.partition_count = settings.partitions
        #: Headless runs show no balance table, so they skip building its rows.
        self.publish_balances = publish_balances
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sink: MessageSink = lambda message: None
        self._consumer: Consumer | None = None
        self._closing = False
        self._paused = False
        self._status = ConsumerStatus.CONNECTING
        self._status_detail = ""
        self._fatal = False
        self._room_until = 0.0

        self.ledger = Ledger()
        self.tracker = AssignmentTracker()
        self.started_at = utc_now()
        self.last_message_at: datetime | None = None
        self.consumed = 0
        self.rejected = 0
        self.last_rejection: str | None = None
        #: Malformed messages by reason (`RejectionReason` values), and the last few of them.
        self.rejected_by_reason: dict[str, int] = {}
        self.recent_rejections: deque[dict[str, Any]] = deque(maxlen=RECENT_REJECTIONS)
        self._rejection_logged_at: dict[str, float] = {}
        self._rejections_unlogged: dict[str, int] = {}
        self.processing_errors = 0
        self.kafka_errors = 0
        self.position: dict[int, int] = {}
        self.high_watermark: dict[int, int] = {}
        #: librdkafka's fetch position of partitions with nothing read yet (statistics `next_offset`).
        self._fetch_start: dict[int, int] = {}
        #: Where a restore sent each partition (an offset, or OFFSET_BEGINNING), until it is forgotten.
        self._start_offset: dict[int, int] = {}
        #: Set where a rejoin is the only way out (a re-assignment refused); the loop carries it out.
        self._rejoin_requested = False
        self._partition_rate_samples: deque[tuple[float, dict[int, int]]] = deque()
        self._rate = RateMeter()
        self._latency = LatencyWindow()
        self._dirty: set[str] = set()
        self._balances_in_flight: threading.Event | None = None
        self._last_error_at: dict[str, float] = {}
        #: Errors not logged again within ERROR_REPEAT_SECONDS, counted in their next `error` event.
        self._suppressed_errors: dict[str, int] = {}
        self._join_started_mono: float | None = None
        self._librdkafka_log = _LibrdkafkaLog()
        self._logger = logging.getLogger(f"balance_tui.librdkafka.{self.consumer_id}")
        self._logger.propagate = False
        self._logger.addHandler(self._librdkafka_log)
        self._logger.setLevel(logging.INFO)
        # Opened here, in the caller's thread, so a path that cannot be written is a one-line error.
        try:
            self.session: SessionLog | None = SessionLog(self.log_path, self.consumer_id, settings.group,
                                                         settings.topic, self.strategy)
        except OSError as error:
            raise UserError(f"cannot write the session log {self.log_path}: {error.strerror or error}") from None
        self.group_view = GroupView(own_consumer_id=self.consumer_id)
        self._beacon: MemberBeacon | None = None
        self.committed: dict[int, int] = {}
        #: A group-wide switch in progress: rejoin only once the emptied group was reset.
        self._group_switch: GroupCommand | None = None
        self._changelog: ChangelogWriter | None = None
        self._restorer: ChangelogRestorer | None = None
        self._changelog_failures = 0
        #: Since when changelog records have been waiting for acknowledgements at commit time.
        self._changelog_unacknowledged_since: float | None = None
        #: Why the group refuses this member's join, shown beside JOINING until the next attempt.
        self._join_refusal: str | None = None
        self._reported_this_join: set[str] = set()
        #: Since when the group has refused this member's protocol, in this join (None: not refused).
        self._refused_since: float | None = None
        #: The generation an eager revoke happened in: its partitions' state is kept only into the next one.
        self._revoked_generation: int | None = None
        #: Source partitions assigned but not consumed until their state is restored.
        self._restoring: set[int] = set()
        self.final_export: tuple[Path, ...] = ()
        self._last_export_paths: tuple[Path, ...] = ()
        self._stopped_written = False
        self._stopped_lock = threading.Lock()
        #: What the broker is and serves (from its ApiVersions answer and local pid files), once probed.
        self.broker = BrokerProfile(label="", consumer_protocol=None)
        #: Static membership: what this instance id owned in its last run (None: first run, or not static).
        self._static_before: StaticMemberRecord | None = None
        self._static_first_assignment = True
        #: The cluster id at start; a different one after an outage is a broker that lost everything.
        self._cluster_id: str | None = None
        #: Set when the broker came back as a new cluster: (old id, new id); the loop then starts over.
        self._new_cluster: tuple[str | None, str | None] | None = None
        #: When the broker became unreachable (None: it answers).
        self._outage_started: float | None = None
        #: Partitions owned when the broker went away (their state is lost if it comes back empty).
        self._lost_to_restart = 0
        #: Since when every broker the consumer knows has been UP (statistics); None while one is not.
        #: Coordinator admin requests wait for it (librdkafka #4605, see `_admin_requests_safe`).
        self._brokers_up_since: float | None = None
        #: Group configs already asked for this group (KIP-848 session timeouts), so they are set once.
        self._group_timeouts_set = False

    # -- WorkerControl: every method only queues a request ------------------------------

    def start(self, sink: MessageSink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.consumer_id}", daemon=True)
        self._thread.start()

    def set_strategy(self, strategy: str) -> None:
        self._commands.put(("strategy", strategy))

    def request_group_strategy(self, strategy: str) -> None:
        self._commands.put(("group_strategy", strategy))

    def restart(self) -> None:
        self._commands.put(("restart", None))

    def toggle_pause(self) -> None:
        self._commands.put(("pause", None))

    def change_work_ms(self, delta: float) -> None:
        self._commands.put(("work_ms", delta))

    def export(self) -> None:
        self._commands.put(("export", None))

    def stop(self, reason: str) -> None:
        self._commands.put(("stop", reason))

    def make_room(self, seconds: float) -> None:
        self._room_until = time.monotonic() + seconds if seconds > 0 else 0.0

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
        if self.session is not None and self._claim_stopped_line():
            self.session.write("stopped", reason=reason, abandoned=True)
            self.session.close()
        return paths

    def _claim_stopped_line(self) -> bool:
        """True for the one caller (the worker, or `abandon`) that writes the `stopped` line."""
        with self._stopped_lock:
            claimed, self._stopped_written = not self._stopped_written, True
            return claimed

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        settings = self.settings
        assert self.session is not None
        self.session.write("started", config=settings.redacted(), consumer_id_full=self.consumer_id,
                           pid=os.getpid(), host=socket.gethostname())
        self._post(SessionStarted(
            consumer_id=self.consumer_id, group=settings.group, topic=settings.topic,
            strategy=self.strategy, bootstrap_servers=settings.bootstrap_servers,
            log_path=self.log_path, work_ms=self.work_ms,
        ))
        paths: tuple[Path, ...] = ()
        try:
            self._describe_broker()
            self._open_beacon()
            if settings.changelog:
                self._open_changelog()
            while True:
                self._consumer = self._create_consumer()
                reason = self._consume_loop()
                if reason is not None:
                    # Export while still a member, so it shows what this member owned.
                    self._flush_balances()
                    paths = self._write_export()
                    self._close_consumer()
                    self._say_goodbye()
                    break
                self._close_consumer()
                if self._new_cluster is not None:
                    self._start_over(*self._new_cluster)
                elif self._group_switch is not None:
                    self._wait_for_group_reset(self._group_switch)
                    self._group_switch = None
        except Exception as error:  # the worker must report, never die silently
            reason = f"worker crashed: {error!r}"
            self.processing_errors += 1
            self.session.write("error", code="WORKER_CRASH", reason=repr(error), fatal=True)
            self._post(KafkaErrorReported(code="WORKER_CRASH", reason=repr(error), fatal=True))
            paths = self._write_export()
            try:
                self._close_consumer()
            except Exception:
                pass
        for closable in (self._changelog, self._restorer, self._beacon):
            if closable is not None:
                try:
                    closable.close()
                except (KafkaException, RuntimeError):
                    pass
        self.final_export = paths
        self._set_status(ConsumerStatus.STOPPED, reason)
        if self._claim_stopped_line():
            self.session.write("stopped", reason=reason)
            self.session.close()
        self._post(WorkerStopped(reason=reason, export_paths=paths))

    def _post(self, message: Any) -> None:
        self._sink(message)

    def _check_broker_after_outage(self, consumer: Consumer) -> bool:
        """The broker answers again: the same cluster (data kept), or a new one; True if it is new.

        A broker restarted on memory storage (Tansu) comes back as a new, empty cluster: its topics,
        committed offsets and changelog are gone, and every balance this member held belongs to a
        world that no longer exists. A broker that kept its data (Apache Kafka) is the same
        cluster, and consumption simply resumes where it was.
        """
        assert self.session is not None
        outage = time.monotonic() - (self._outage_started or time.monotonic())
        self._outage_started = None
        try:
            cluster = consumer.list_topics(timeout=2).cluster_id
        except KafkaException:
            self._outage_started = time.monotonic() - outage  # not really back: look again later
            return False
        if cluster == self._cluster_id or cluster is None or self._cluster_id is None:
            self.session.write("broker_back", outage_s=round(outage, 1), cluster_id=cluster, same_cluster=True)
            self._post(TimelineEvent(entry=self.tracker.note(
                "broker_back", utc_now(), f"broker reachable again after {outage:.0f} s, same cluster: "
                "consumption resumes where it was")))
            return False
        self._new_cluster = (self._cluster_id, cluster)
        return True

    def _start_over(self, old_cluster: str | None, new_cluster: str | None) -> None:
        """After a broker restart that lost everything: drop every balance, reopen the members topic and
        the changelog on the new cluster, and join its group from scratch."""
        assert self.session is not None
        lost = self._lost_to_restart
        self.session.write("broker_restarted", old_cluster_id=old_cluster, new_cluster_id=new_cluster,
                           partitions_lost=lost)
        text = (f"broker restarted: the topic starts empty, {lost} partition{'s' if lost != 1 else ''}' state "
                f"was lost (cluster {old_cluster} → {new_cluster}); rejoining the new cluster")
        self._post(KafkaErrorReported(code="BROKER_RESTARTED", reason=text, fatal=False,
                                      hint="Balances start again from the new topic's first transaction."))
        self.tracker.note("broker_restarted", utc_now(), text)
        if self._changelog is not None:
            self._changelog.reopen()  # what it still held belongs to the old cluster: never sent
        for closable in (self._changelog, self._restorer, self._beacon):
            if closable is not None:
                try:
                    closable.close()
                except (KafkaException, RuntimeError):
                    pass
        self._changelog = self._restorer = self._beacon = None
        self.ledger = Ledger()
        self.committed.clear()
        self.high_watermark.clear()
        self.group_view = GroupView(own_consumer_id=self.consumer_id)
        self._cluster_id = new_cluster
        self._new_cluster = None
        self._brokers_up_since = None
        try:
            ensure_topic(self.settings.client_config(), self.settings.topic, self.settings.partitions)
        except UserError as error:
            self._post(KafkaErrorReported(code="TOPIC", reason=str(error), fatal=False))
        self._open_beacon()
        if self.settings.changelog:
            self._open_changelog()

    def _describe_broker(self) -> None:
        """Ask the broker what it serves (one ApiVersions round trip), say it, and keep it."""
        assert self.session is not None
        self.broker = describe_broker_of(self.settings.client_config())
        self.session.write("broker", **self.broker.as_log_fields())
        self._post(BrokerDescribed(label=self.broker.label, consumer_protocol=self.broker.consumer_protocol))
        if self.settings.group_instance_id:
            self._static_before = load_static_record(self.settings.group, self.settings.group_instance_id)

    def consumer_protocol_refusal(self, strategy: str) -> str | None:
        """Why `strategy` cannot be used on this broker (None when it can, or when nobody can tell)."""
        return consumer_protocol_refusal(self.broker, strategy)

    def _open_beacon(self) -> None:
        try:
            self._beacon = MemberBeacon(self.settings, self.consumer_id)
        except (UserError, KafkaException) as error:
            self._post(KafkaErrorReported(code="MEMBERS_TOPIC", reason=str(error), fatal=False,
                                          hint="The Group panel shows this terminal only."))

    def _say_goodbye(self) -> None:
        if self._beacon is None:
            return
        try:
            self._beacon.goodbye(self._heartbeat())
        except (KafkaException, RuntimeError):
            pass

    def _heartbeat(self) -> MemberHeartbeat:
        assignment = tuple(sorted(self.tracker.assignment))
        lags = self._lag_by_partition()
        return MemberHeartbeat(
            consumer_id=self.consumer_id, host=socket.gethostname(), pid=os.getpid(),
            strategy=self.strategy, status=self._status.value, assignment=assignment,
            generation=self._membership()[0],
            lag=self._total_lag(lags),
            rate=self._rate.rate(time.monotonic()), work_ms=self.work_ms, sent_at=utc_now(),
            session_timeout_ms=self.settings.session_timeout_ms,
            position_by_partition={p: pos for p in assignment if (pos := self._shown_position(p)) is not None},
            high_watermark_by_partition={p: h for p in assignment if (h := self._known_high(p)) is not None},
            committed_by_partition={p: self.committed[p] for p in assignment if p in self.committed},
        )

    def _read_group(self) -> str | None:
        """Take in the members' heartbeats and carry out group commands; "restart" to rejoin."""
        if self._beacon is None:
            return None
        assert self.session is not None
        now, outcome = utc_now(), None
        commands: list[GroupCommand] = []
        for message in self._beacon.poll(now):
            if isinstance(message, GroupCommand):
                if message.kind != GROUP_RESET:  # a reset only matters while waiting for one
                    commands.append(message)
            else:
                self.group_view.observe(message, now)
        for command in commands:
            if self._adopt_group_command(command):
                outcome = "restart"
        return outcome

    def _adopt_group_command(self, command: GroupCommand) -> bool:
        """Take a group-wide switch in: True if this member must leave and rejoin for it.

        Commands are read in the members topic's order (one partition), the same for every
        member, and the latest one read wins: concurrent requests resolve to the strategy of the
        last, whatever each member was doing when it read the earlier ones.
        """
        assert self.session is not None
        now = utc_now()
        self.session.write("group_command", strategy=command.strategy, requested_by=command.requested_by,
                           requested_at=command.requested_at, command_id=command.command_id)
        self._post(TimelineEvent(entry=self.tracker.note("strategy_requested", now, command.timeline_text())))
        if command.strategy == self.strategy:
            return False
        if self._handle_command("strategy", command.strategy) != "restart":
            return False
        self._group_switch = command
        return True

    def _wait_for_group_reset(self, command: GroupCommand) -> None:
        """Between leaving and rejoining in a group-wide switch: wait until the group is reset.

        Every member left; whoever first finds the group empty deletes it (the embedded broker
        would otherwise keep the old protocol forever and refuse the new one) and tells the
        others. Bounded: after the deadline this member rejoins anyway.
        """
        assert self.session is not None and self._beacon is not None
        self._set_status(ConsumerStatus.REBALANCING, f"switching the whole group to {command.strategy}")
        deadline = time.monotonic() + max(15.0, 2 * self.settings.session_timeout_ms / 1000)
        next_try = next_beat = 0.0
        next_stats = time.monotonic() + STATS_LOG_SECONDS
        attempts: list[str] = []
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_SECONDS
                self._beat()
            if now >= next_stats:  # the session log's contract: stats at least every 5 s, whatever happens
                next_stats = now + STATS_LOG_SECONDS
                self._log_stats(now)
            for message in self._beacon.poll(utc_now()):
                if isinstance(message, GroupCommand):
                    if message.kind == GROUP_RESET:
                        # The group was emptied: rejoin now, with the latest strategy asked for.
                        self.session.write("group_reset", by=message.requested_by)
                        self._post(TimelineEvent(entry=self.tracker.note("group_reset", utc_now(),
                                                                          message.timeline_text())))
                        return
                    self._adopt_group_command(message)  # a newer request while waiting: it wins
                    command = message
                else:
                    self.group_view.observe(message, utc_now())
            if now >= next_try:
                next_try = now + 0.5
                outcome = self._reset_emptied_group()
                attempts.append(outcome)
                if outcome in ("deleted", "gone", "empty") or outcome.startswith("refused"):
                    if outcome in ("deleted", "empty"):  # the one who saw it tells the others to rejoin now
                        self._beacon.send_command(GroupCommand(
                            strategy=self.strategy, requested_by=self.consumer_id,
                            requested_at=utc_now(), kind=GROUP_RESET))
                    self.session.write("group_reset", by=self.consumer_id, outcome=outcome)
                    self._post(TimelineEvent(entry=self.tracker.note(
                        "group_reset", utc_now(), f"group {outcome} before rejoining with {self.strategy}")))
                    return
            time.sleep(0.05)  # a bounded retry loop, the consumer is closed meanwhile
        self.session.write("group_reset", by=None, outcome="deadline passed: rejoining anyway",
                           attempts=sorted(set(attempts)))

    def _admin_requests_safe(self) -> bool:
        """True once every broker has been UP for a while: only then may coordinator admin requests go out.

        librdkafka up to 2.16 (at least) aborts the whole process (`rd_kafka_enq_once_del_source_return:
        Assertion 'eonce->refcnt > 0' failed`, librdkafka issue #4605, fix proposed in PR #5397) when a
        coordinator request of the AdminClient (DescribeConsumerGroups, DeleteConsumerGroups, ...)
        fails to be sent because the connection is down: a broker that went away or is restarting.
        """
        up_since = self._brokers_up_since
        return up_since is not None and time.monotonic() - up_since >= ADMIN_AFTER_UP_SECONDS

    def _reset_emptied_group(self) -> str:
        """Make the emptied group take a new protocol: "empty", "deleted", "gone", "not empty", "retry", ...

        Apache Kafka forgets an empty group's protocol by itself, and its DescribeGroups says when
        the group is empty: nothing is deleted there (the committed offsets stay). Tansu keeps an
        emptied group's protocol forever and cannot describe groups: the group is deleted.
        """
        config, group = self.settings.client_config(), self.settings.group
        if not bootstrap_accepts_connections(config):
            return "retry"  # never a coordinator admin request to a broker that is not there (librdkafka #4605)
        if self._beacon is not None and self._beacon.describe_verdict.usable:
            state = group_state(config, group)
            return "empty" if state in ("Empty", "Dead", "gone") else ("not empty" if state != "retry" else state)
        return delete_empty_group(config, group)

    def _beat(self) -> None:
        """Publish this member's heartbeat and show the group as it stands."""
        heartbeat = self._heartbeat()
        now, view = heartbeat.sent_at, self.group_view
        view.observe(heartbeat, now)
        if self._beacon is not None:
            self._beacon.publish(heartbeat)
            self._beacon.refresh_broker_members(own_partitions=len(self.tracker.assignment),
                                                ask=self._admin_requests_safe())
            view.broker_group = self._beacon.broker_group
            view.broker_describes = self._beacon.describe_verdict.usable
        rows = view.rows(now)
        for gone in view.take_departures():
            kind = "member_left" if gone.reason == "left" else "member_gone"
            self._post(TimelineEvent(entry=self.tracker.note(kind, now, gone.timeline_text(), gone.partitions)))
        partitions = self.partition_count
        self._post(GroupChanged(
            rows=tuple(rows), unowned=tuple(view.unowned_partitions(partitions)),
            capacity=view.capacity_text(partitions), partition_lag=tuple(view.partition_lag(partitions, now)),
            source=view.source_text(), cross_check=tuple(view.cross_check()),
            problem=None if self._beacon is not None else "members topic unavailable",
        ))

    def _open_changelog(self) -> None:
        settings = self.settings
        topic = settings.changelog_topic_name
        config = settings.client_config()
        # Changelog partition = source partition, so both must have the same count.
        self.partition_count = topic_partition_count(config, settings.topic) or self.partition_count
        try:
            ensure_topic(config, topic, self.partition_count, config={"cleanup.policy": "compact"})
        except Exception:  # noqa: BLE001 - some brokers refuse compaction settings; try plain
            ensure_topic(config, topic, self.partition_count)
        changelog_count = topic_partition_count(config, topic)
        if changelog_count != self.partition_count:
            self.session.write("error", code="CHANGELOG_PARTITIONS", fatal=False,
                               reason=f"{topic} has {changelog_count} partitions, {settings.topic} has "
                                      f"{self.partition_count}: changelog off")
            self._post(KafkaErrorReported(
                code="CHANGELOG_PARTITIONS", fatal=False,
                reason=f"{topic} has {changelog_count} partitions but {settings.topic} has {self.partition_count}",
                hint="Balances will not follow moved partitions (changelog off). Delete the changelog topic "
                     "or set changelog_topic to a new name."))
            return
        self._changelog = ChangelogWriter(config, topic, self.consumer_id)
        self._restorer = ChangelogRestorer(config, topic, self.consumer_id)

    def _create_consumer(self) -> Consumer:
        settings = self.settings
        config: dict[str, Any] = {
            "group.id": settings.group,
            "client.id": self.consumer_id,
            "auto.offset.reset": "earliest",
            # Committed by hand, only once the changelog records they cover are acknowledged.
            "enable.auto.commit": False,
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": settings.heartbeat_interval_ms,
            "partition.assignment.strategy": self.strategy,
            **({"group.instance.id": settings.group_instance_id} if settings.group_instance_id else {}),
            # Keep a deep local prefetch (still capped by queued.max.messages.kbytes, 64 MB):
            # measured on Tansu, the default 100,000 halves throughput when processing is busy.
            "queued.min.messages": 1_000_000,
            "statistics.interval.ms": 1000,
            "stats_cb": self._on_stats,
            "error_cb": self._on_error,
            "on_commit": self._on_commit,
            "logger": self._logger,
        }
        config.update(settings.client_config())
        if self.strategy == CONSUMER_PROTOCOL:
            self._use_consumer_protocol(config)
        consumer = Consumer(config)
        self._closing = False
        self._paused_partitions: set[int] = set()
        self._set_status(ConsumerStatus.CONNECTING)
        try:
            # A full listing: naming the topic would make Tansu auto-create it with its default count.
            metadata = consumer.list_topics(timeout=5)
            if self._cluster_id is None:
                self._cluster_id = metadata.cluster_id
            topic = metadata.topics.get(settings.topic)
            if topic is not None and topic.error is None and topic.partitions:
                self.partition_count = len(topic.partitions)
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        consumer.subscribe([settings.topic], on_assign=self._on_assign,
                           on_revoke=self._on_revoke, on_lost=self._on_lost)
        self.tracker.joining(utc_now())
        self._join_started_mono = time.monotonic()
        if self._status != ConsumerStatus.BROKER_UNREACHABLE:
            self._set_status(ConsumerStatus.JOINING, "0s")
        self._join_refusal = None
        self._reported_this_join = set()
        self._refused_since = None
        return consumer

    def _close_consumer(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        self._flush_balances()
        self._closing = True
        try:
            consumer.close()  # revokes (our callback commits what the changelog covers) and leaves the group
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        except RuntimeError as error:  # already closed
            self._report_kafka_error(KafkaError(KafkaError._FAIL, str(error)))
        self._consumer = None
        if self._changelog is not None and self._changelog.broken:
            self._changelog.reopen()  # after the revoke above refused to commit past the failure
        # Out of the group, this process owns nothing: whatever the next join assigns is restored
        # from the changelog, and partitions it does not assign must not linger on screen or in exports.
        held = set(self.tracker.assignment) | self.tracker.pending_revoked | set(self.position)
        self.tracker.reset_membership()
        if self._restorer is not None:
            self._restorer.cancel(sorted(self._restoring))
        self._restoring.clear()
        for partition in sorted(held):
            self._forget_partition(partition)
        if held:
            self._flush_balances(removed_partitions=tuple(sorted(held)))

    def _use_consumer_protocol(self, config: dict[str, Any]) -> None:
        """KIP-848: the broker assigns, and session and heartbeat timeouts are the group's, not the member's."""
        for member_side in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
            config.pop(member_side, None)
        config["group.protocol"] = "consumer"
        if self.settings.remote_assignor:
            config["group.remote.assignor"] = self.settings.remote_assignor
        if self._group_timeouts_set:
            return
        self._group_timeouts_set = True
        refused = set_consumer_group_timeouts(self.settings.client_config(), self.settings.group,
                                              self.settings.session_timeout_ms, self.settings.heartbeat_interval_ms)
        assert self.session is not None
        if refused is None:
            self.session.write("group_config", **{"consumer.session.timeout.ms": self.settings.session_timeout_ms,
                                                  "consumer.heartbeat.interval.ms": self.settings.heartbeat_interval_ms})
            return
        text = (f"the broker keeps its own session timeout for this KIP-848 group ({refused}); a member that dies "
                "is detected after that")
        self.session.write("group_config", refused=refused)
        self._post(TimelineEvent(entry=self.tracker.note("group_config", utc_now(), text)))

    @property
    def _cooperative(self) -> bool:
        """Rebalances hand partitions over one by one: cooperative-sticky, and KIP-848's protocol."""
        return self.strategy in ("cooperative-sticky", CONSUMER_PROTOCOL)

    def _consume_loop(self) -> str | None:
        """Runs until a restart (returns None) or a stop (returns the reason)."""
        consumer = self._consumer
        assert consumer is not None
        now = time.monotonic()
        next_balances = now + BALANCE_BATCH_SECONDS
        next_snapshot = now
        next_stats = now + STATS_LOG_SECONDS
        next_watermarks = now
        commit_every = self.settings.commit_interval_ms / 1000.0
        next_commit = now + commit_every
        next_group_read = now
        next_beat = now
        snapshot_every = 1.0 / self.settings.refresh_hz
        while True:
            while True:
                try:
                    command, argument = self._commands.get_nowait()
                except queue.Empty:
                    break
                outcome = self._handle_command(command, argument)
                if outcome == "restart":
                    return None
                if outcome is not None:
                    return outcome
            while self._room_until > time.monotonic():
                time.sleep(0.002)  # the UI is answering a key: let it have the interpreter
            # Small batches when processing is slow, so commands are answered quickly.
            batch = 1000 if self.work_ms <= 0 else max(1, min(1000, int(50 / self.work_ms)))
            if self._restoring:
                self._restore_step(consumer)
            if self._rejoin_requested:
                self._rejoin_requested = False
                return None
            try:
                messages = consumer.consume(batch, timeout=0.005 if self._restoring else 0.05)
            except KafkaException as error:
                self._report_kafka_error(error.args[0])
                messages = []
            except RuntimeError:
                return "consumer closed"
            if messages:
                self._process(consumer, messages)
            if self._changelog is not None and self._changelog.broken:
                # A changelog record failed: what this process applied is ahead of the changelog.
                # Nothing is committed; every partition is restored from the changelog as it
                # stands and consumed again from there: nothing lost, nothing applied twice.
                self._changelog_failures += 1
                reason = self._changelog.first_error
                if self._changelog_failures > CHANGELOG_RETRIES:
                    self._report_kafka_error(KafkaError(KafkaError._FAIL, f"changelog write failed {self._changelog_failures} "
                                                        f"times in a row ({reason}); stopping: balances could not be kept exact",
                                                        fatal=True))
                    return f"changelog failing: {reason}"
                self._report_kafka_error(KafkaError(KafkaError._FAIL, f"changelog write failed ({reason}); "
                                                    "restoring every partition from the changelog"))
                self._drop_unsent_changelog(consumer)
            now = time.monotonic()
            if now >= next_balances:
                self._flush_balances()
                next_balances = now + BALANCE_BATCH_SECONDS
            if now >= next_commit:
                # Not acknowledged yet (the flush has just sent the lingering records): look again soon.
                next_commit = now + (commit_every if self._commit_covered(consumer) else COMMIT_RETRY_SECONDS)
            if now >= next_group_read:
                next_group_read = now + GROUP_READ_SECONDS
                if self._read_group() == "restart":
                    return None
            if now >= next_beat:
                next_beat = now + HEARTBEAT_SECONDS
                self._beat()
            if self._outage_started is not None and self._brokers_up_since is not None \
                    and self._check_broker_after_outage(consumer):
                return None  # `_run` starts over on the new cluster
            if self._status == ConsumerStatus.JOINING and self._join_started_mono is not None:
                refused = f" · {self._join_refusal}" if self._join_refusal else ""
                self._set_status(ConsumerStatus.JOINING, f"{now - self._join_started_mono:.0f}s{refused}")
                if self._heal_refusal(now) == "restart":
                    return None
            if self._paused and now >= next_watermarks:
                self._refresh_paused_watermarks(consumer)
                next_watermarks = now + PAUSED_WATERMARK_SECONDS
            if now >= next_snapshot:
                self._post(self._snapshot(now))
                next_snapshot = now + snapshot_every
            if now >= next_stats:
                self._log_stats(now)
                next_stats = now + STATS_LOG_SECONDS

    # -- processing ---------------------------------------------------------------------

    def _process(self, consumer: Consumer, messages: list[Any]) -> None:
        ledger_apply = self.ledger.apply
        customers = self.ledger.customers
        dirty = self._dirty
        restoring = self._restoring
        write = self._changelog.write if self._changelog is not None else None
        position = self.position
        produced_at_ms: list[int] = []
        work_seconds = self.work_ms / 1000.0
        paced_until = time.monotonic()
        not_records = 0
        for message in messages:
            error = message.error()
            if error is not None:
                not_records += 1
                if error.code() != KafkaError._PARTITION_EOF:
                    self._report_kafka_error(error)
                continue
            partition = message.partition()
            if partition in restoring:
                not_records += 1
                continue  # fetched before the pause took effect; read again after the restore
            offset = message.offset()
            result = parse_transaction(message.value())
            if isinstance(result, Rejection):
                self._note_rejection(partition, offset, result)
            else:
                try:
                    effect = ledger_apply(result, partition, offset)
                except Exception as error:  # a bug or an absurd value must not stop the service
                    self.processing_errors += 1
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
        count = len(messages) - not_records
        self.consumed += count
        if count:
            self.last_message_at = utc_now()
        self._rate.add(count, time.monotonic())
        if produced_at_ms:
            # End-to-end: from the producer's timestamp to the end of this batch, when the
            # balances it changed are applied (a batch lasts at most ~50 ms of simulated work).
            applied_ms = time.time() * 1000.0
            self._latency.extend([applied_ms - produced for produced in produced_at_ms], time.monotonic())
        if self._changelog is not None:
            self._changelog.poll()

    def _note_rejection(self, partition: int, offset: int, rejection: Rejection) -> None:
        """Count a malformed message by reason; log it (at most one line per reason every few seconds)."""
        assert self.session is not None
        reason = rejection.reason.value
        self.rejected += 1
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1
        self.last_rejection = f"P{partition}:O{offset} {rejection}"
        self.recent_rejections.append({"partition": partition, "offset": offset, "reason": reason,
                                       "detail": rejection.detail, "at": utc_now()})
        now = time.monotonic()
        if now - self._rejection_logged_at.get(reason, -1e9) < REJECTION_LOG_SECONDS:
            self._rejections_unlogged[reason] = self._rejections_unlogged.get(reason, 0) + 1
            return
        self._rejection_logged_at[reason] = now
        unlogged = self._rejections_unlogged.pop(reason, 0)
        self.session.write("rejected", partition=partition, offset=offset, reason=reason, detail=rejection.detail,
                           **({"unlogged_since_last": unlogged} if unlogged else {}))
        self._post(MessageRejected(partition=partition, offset=offset, reason=reason, detail=rejection.detail,
                                   unlogged_since_last=unlogged))

    def _commit_covered(self, consumer: Consumer, partitions: set[int] | None = None,
                        wait_seconds: float = 0.0) -> bool:
        """Commit the positions of owned partitions once the changelog covering them is acknowledged.

        Never waits longer than `wait_seconds` for the acknowledgements (0 in the loop: the next
        commit interval tries again, so a broker outage never freezes the loop). False when the
        changelog was not acknowledged in that time (nothing was committed).
        """
        owned = (partitions if partitions is not None else self.tracker.assignment) - self._restoring
        offsets = [TopicPartition(self.settings.topic, p, self.position[p]) for p in sorted(owned)
                   if p in self.position]
        if not offsets:
            return True
        if self._changelog is not None:
            if not self._changelog.flush(timeout=wait_seconds):
                unacknowledged_for = time.monotonic() - (self._changelog_unacknowledged_since or time.monotonic())
                if self._changelog_unacknowledged_since is None:
                    self._changelog_unacknowledged_since = time.monotonic()
                elif self._changelog.broken or unacknowledged_for >= CHANGELOG_ACK_REPORT_SECONDS:
                    self._report_kafka_error(KafkaError(KafkaError._FAIL, "changelog not acknowledged ("
                                                        f"{self._changelog.first_error or f'for {unacknowledged_for:.0f} s'}); "
                                                        "offsets not committed"))
                return False
            self._changelog_unacknowledged_since = None
            self._changelog_failures = 0
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
        assert self._changelog is not None
        self._changelog.reopen()
        held_back = set(self.tracker.pending_revoked)
        self.tracker.pending_revoked.clear()  # if they come back, they are restored
        owned = sorted(self.tracker.assignment - self._restoring)
        # Forgotten before the flush, as everywhere: a batch re-adding their rows would undo the removal.
        dropped = sorted(held_back | set(owned))
        for partition in dropped:
            self._forget_partition(partition)
        if dropped:
            self._flush_balances(removed_partitions=tuple(dropped))
        if not owned or self._restorer is None:
            return
        consumer.pause([TopicPartition(self.settings.topic, p) for p in owned])
        self._restoring |= set(owned)
        self._restorer.start(owned)
        self._set_status_from_assignment()

    def _flush_balances(self, removed_partitions: tuple[int, ...] = ()) -> None:
        if not self.publish_balances:
            self._dirty.clear()
            return
        if not self._dirty and not removed_partitions:
            return
        if not removed_partitions and self._balances_in_flight is not None \
                and not self._balances_in_flight.is_set():
            return  # the screen has not taken the last batch in: keep coalescing
        rows = tuple(self.ledger.rows_for(self._dirty)) if self._dirty else ()
        self._dirty = set()
        batch = BalancesChanged(rows=rows, removed_partitions=removed_partitions)
        self._balances_in_flight = batch.applied
        self._post(batch)

    # -- rebalance callbacks (run inside consume(), on this thread) ----------------------

    def _membership(self) -> tuple[int | None, str | None]:
        consumer = self._consumer
        if consumer is None:
            return None, None
        generation = member_id = None
        try:
            generation = generation_from_metadata(consumer.consumer_group_metadata())
        except (KafkaException, RuntimeError, TypeError, struct.error):
            pass
        try:
            member_id = consumer.memberid() or None
        except (KafkaException, RuntimeError):
            pass
        return generation, member_id

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        to_restore: list[int] = []
        if self._changelog is not None:
            generation = self._membership()[0]
            # Only if no other generation came between: then nobody else owned the partition meanwhile.
            uninterrupted = (generation is not None and self._revoked_generation is not None
                             and generation == self._revoked_generation + 1)
            for tp in partitions:
                if uninterrupted and tp.partition in self.tracker.pending_revoked and tp.partition in self.position:
                    # An eager rebalance gave back a partition whose state never left this
                    # process: continue exactly where we were, whatever was committed.
                    tp.offset = self.position[tp.partition]
                else:
                    to_restore.append(tp.partition)
        if partitions and (self._paused or self._changelog is not None):
            # Take the assignment ourselves so partitions can get explicit offsets and be paused at once.
            if self._cooperative:
                consumer.incremental_assign(partitions)
            else:
                consumer.assign(partitions)
            hold = [tp for tp in partitions if self._paused or tp.partition in to_restore]
            if hold:
                consumer.pause(hold)
            if self._paused:
                self._paused_partitions |= set(numbers)
        if to_restore:
            assert self._restorer is not None
            # Not kept, even if they were ours before the revoke: their state is read back.
            self.tracker.pending_revoked.difference_update(to_restore)
            for partition in to_restore:
                self._forget_partition(partition)
            self._restoring |= set(to_restore)
            self._restorer.start(to_restore)
        now = utc_now()
        generation, member_id = self._membership()
        entry = self.tracker.assigned(numbers, self._cooperative, now, generation, member_id)
        dropped = tuple(sorted(self.tracker.last_dropped))
        for partition in dropped:
            self._forget_partition(partition)
        if dropped:
            self._flush_balances(removed_partitions=dropped)
        self._join_started_mono = None
        self._log_rebalance("assigned", entry)
        if self._beacon is not None:
            self._beacon.describe_soon()
        self._post(PartitionsAssigned(partitions=entry.partitions, assignment=entry.assignment, entry=entry))
        if self.settings.group_instance_id:
            self._note_static_assignment(entry)
        self._set_status_from_assignment()

    def _note_static_assignment(self, entry: TimelineEntry) -> None:
        """Say whether this static member got its partitions back without a rebalance; remember them."""
        assert self.session is not None and self.settings.group_instance_id is not None
        assignment = tuple(sorted(self.tracker.assignment))
        if self._static_first_assignment:
            self._static_first_assignment = False
            verdict = describe_static_rejoin(self._static_before, entry.generation, assignment)
            if verdict is not None:
                no_rebalance, text = verdict
                self.session.write("static_rejoin", no_rebalance=no_rebalance, generation=entry.generation,
                                   assignment=list(assignment),
                                   previous_generation=self._static_before.generation if self._static_before else None)
                self._post(TimelineEvent(entry=self.tracker.note("static_rejoin", utc_now(), text, assignment)))
        save_static_record(self.settings.group, self.settings.group_instance_id, StaticMemberRecord(
            generation=entry.generation, assignment=assignment, consumer_id=self.consumer_id,
            at=utc_now().isoformat()))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self._flush_balances()
        # A revoke may wait a little for the changelog (the partitions' new owner restores from it);
        # an unreachable broker would make any wait pointless.
        wait = 0.0 if self._status is ConsumerStatus.BROKER_UNREACHABLE else REVOKE_FLUSH_SECONDS
        flushed = self._commit_covered(consumer, set(numbers), wait_seconds=wait)
        self._cancel_restores(numbers)
        # Eager protocols revoke everything and may give some back: keep their state until then.
        incremental = self._cooperative and not self._closing
        generation, member_id = self._membership()
        self._revoked_generation = generation
        entry = self.tracker.revoked(numbers, incremental, utc_now(), generation, member_id)
        if incremental:
            for partition in numbers:
                self._forget_partition(partition)
            self._flush_balances(removed_partitions=tuple(numbers))
        self._paused_partitions -= set(numbers)
        if not flushed and self._changelog is not None:
            self._drop_unsent_changelog(consumer)
        self._join_started_mono = time.monotonic()
        self._log_rebalance("revoked", entry)
        if self._beacon is not None:
            self._beacon.describe_soon()
        self._post(PartitionsRevoked(partitions=entry.partitions, assignment=entry.assignment, entry=entry))
        if not self._closing:
            self._set_status(ConsumerStatus.REBALANCING)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self._flush_balances()
        entry = self.tracker.lost(numbers, utc_now(), *self._membership())
        self._cancel_restores(numbers)
        gone = sorted(set(numbers) | self.tracker.last_dropped)
        for partition in gone:
            self._forget_partition(partition)
        self._flush_balances(removed_partitions=tuple(gone))
        self._paused_partitions -= set(numbers)
        if self._changelog is not None:
            self._drop_unsent_changelog(consumer)  # the group moved on: our late records must not land
        self._join_started_mono = time.monotonic()
        self._log_rebalance("lost", entry)
        if self._beacon is not None:
            self._beacon.describe_soon()
        self._post(PartitionsLost(partitions=entry.partitions, assignment=entry.assignment, entry=entry))
        self._set_status(ConsumerStatus.PARTITIONS_LOST)

    def _cancel_restores(self, partitions: list[int]) -> None:
        cancelled = [p for p in partitions if p in self._restoring]
        if cancelled and self._restorer is not None:
            self._restorer.cancel(cancelled)
        self._restoring.difference_update(cancelled)

    def _restore_step(self, consumer: Consumer) -> None:
        """Read more of the changelog; hand each partition that reached its end over to consumption."""
        assert self._restorer is not None and self.session is not None
        finished = self._restorer.step()
        for error in self._restorer.errors:
            self._report_kafka_error(error)
        self._restorer.errors.clear()
        for restore, seconds in finished:
            partition = restore.partition
            if partition not in self._restoring:
                continue
            self._restoring.discard(partition)
            self.ledger.restore(restore.states.values())
            resume = restore.resume_offset
            source = TopicPartition(self.settings.topic, partition, OFFSET_BEGINNING if resume is None else resume)
            self._start_offset[partition] = source.offset
            self._fetch_start.pop(partition, None)  # what the statistics said was before the seek
            try:
                consumer.seek(source)
            except KafkaException:
                try:
                    self._reassign_at(consumer, source)
                except KafkaException as error:
                    self._report_kafka_error(error.args[0])
                    self._rejoin_requested = True  # a fresh join restores everything again
                    return
            if resume is not None:
                self.position[partition] = resume
            if self._paused:
                self._paused_partitions.add(partition)
            else:
                consumer.resume([TopicPartition(self.settings.topic, partition)])
            self._dirty.update(restore.states)
            duration_ms = round(seconds * 1000, 1)
            self.session.write("restored", partition=partition, customers=len(restore.states),
                               records=restore.records, duration_ms=duration_ms,
                               resume_offset=resume if resume is not None else 0)
            entry = self.tracker.note(
                "restored", utc_now(),
                f"restored P{partition}: {len(restore.states):,} customers from {restore.records:,} changelog "
                f"records in {seconds:.2f}s, resuming at offset {resume if resume is not None else 0}",
                partitions=(partition,))
            self._post(TimelineEvent(entry=entry))
            if not self._restoring:
                self._set_status_from_assignment()

    def _reassign_at(self, consumer: Consumer, source: TopicPartition) -> None:
        """Not fetching yet, so `seek` refused: give the partition its starting offset by re-assigning it."""
        topic = self.settings.topic
        if self._cooperative:
            consumer.incremental_unassign([TopicPartition(topic, source.partition)])
            consumer.incremental_assign([source])
            return
        # Eager protocols only take whole assignments: keep every other partition where it is.
        consumer.assign([source if p == source.partition else TopicPartition(topic, p, self._next_offset(p))
                         for p in sorted(self.tracker.assignment)])
        hold = sorted(p for p in self.tracker.assignment if p in self._restoring or p in self._paused_partitions
                      or (self._paused and p == source.partition))
        if hold:
            consumer.pause([TopicPartition(topic, p) for p in hold])

    def _next_offset(self, partition: int) -> int:
        """Where reading `partition` goes on: after the last record read, else where its restore
        sent it, else (still restoring: it is paused and will be sent) the committed offset."""
        return self.position.get(partition, self._start_offset.get(partition, OFFSET_INVALID))

    def _forget_partition(self, partition: int) -> None:
        removed = self.ledger.drop_partition(partition)
        self._dirty.difference_update(removed)
        self.position.pop(partition, None)
        self._fetch_start.pop(partition, None)
        self._start_offset.pop(partition, None)
        self.committed.pop(partition, None)

    def _log_rebalance(self, event: str, entry: TimelineEntry) -> None:
        assert self.session is not None
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
        self.session.write(event, at=entry.at, **fields)

    # -- librdkafka callbacks -----------------------------------------------------------

    def _on_stats(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        partitions = stats.get("topics", {}).get(self.settings.topic, {}).get("partitions", {})
        for key, values in partitions.items():
            partition = int(key)
            if partition < 0:
                continue
            # The high watermark from fetch responses is right on the embedded broker, where
            # ListOffsets is not (see docs/broker.md).
            high = values.get("hi_offset", -1)
            if high is not None and high >= 0:
                if partition in self._paused_partitions or partition in self._restoring:
                    # Not fetching: the figure is stale, and ListOffsets may have seen further.
                    self.high_watermark[partition] = max(high, self.high_watermark.get(partition, 0))
                else:  # fresh from a fetch response: right even if it went down (a restarted broker)
                    self.high_watermark[partition] = high
            # Where fetching starts, for lag before the first record is read (a partition already
            # at its end never delivers one). Display only: commits use positions of records read.
            next_offset = values.get("next_offset", -1)
            if values.get("fetch_state") == "active" and next_offset is not None and next_offset >= 0 \
                    and values.get("fetchq_cnt", 1) == 0 and partition not in self._restoring:
                self._fetch_start[partition] = next_offset
        brokers = [broker for broker in stats.get("brokers", {}).values() if broker.get("nodeid", -1) >= 0]
        all_up = bool(brokers) and all(broker.get("state") == "UP" for broker in brokers)
        if all_up and self._brokers_up_since is None:
            self._brokers_up_since = time.monotonic()
        elif not all_up:
            self._brokers_up_since = None
        if self._status == ConsumerStatus.BROKER_UNREACHABLE and any(broker.get("state") == "UP" for broker in brokers):
            self._set_status_from_assignment()

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            if error.code() in EXPECTED_COMMIT_FAILURES:
                # A commit that crossed a rebalance: harmless here (the changelog positions a new
                # owner), so it goes to the session log only, not to the screen.
                if self.session is not None and error.code() != KafkaError._NO_OFFSET:
                    self.session.write("commit_skipped", code=error.name(), reason=error.str())
            else:
                self._report_kafka_error(error)
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0 and tp.partition in self.tracker.assignment:
                self.committed[tp.partition] = tp.offset

    def _on_error(self, error: KafkaError) -> None:
        self._report_kafka_error(error)

    def _report_kafka_error(self, error: KafkaError) -> None:
        name = error.name()
        # Our own errors all share `_FAIL`: tell them apart by what they say.
        key = f"{name}:{error.str()[:32]}" if error.code() == KafkaError._FAIL else name
        now = time.monotonic()
        if error.code() in UNREACHABLE_CODES:
            self._brokers_up_since = None
            if self._outage_started is None:
                self._outage_started = time.monotonic()
                self._lost_to_restart = len(self.tracker.assignment)
            if self._status is not ConsumerStatus.STOPPED:
                self._set_status(ConsumerStatus.BROKER_UNREACHABLE, error.str())
        if error.fatal():
            self._fatal = True
            self._set_status(ConsumerStatus.FATAL_ERROR, error.str())
        self.kafka_errors += 1
        # The same error on every poll would flood the log and the timeline: count it instead. The
        # broker refuses every retry of a join the same way: that one is said once per join.
        if now - self._last_error_at.get(key, -1e9) < ERROR_REPEAT_SECONDS \
                or (name in ONCE_PER_JOIN and name in self._reported_this_join):
            self._suppressed_errors[key] = self._suppressed_errors.get(key, 0) + 1
            return
        self._last_error_at[key] = now
        hint = ERROR_HINTS.get(name, "")
        if name in ONCE_PER_JOIN:  # kept in the header until the next join attempt
            self._reported_this_join.add(name)
            if self._refused_since is None:
                self._refused_since = now
            hint = self._refusal_hint()
            self._join_refusal = "refused: " + hint.split(":", 1)[0]
        assert self.session is not None
        repeats = self._suppressed_errors.pop(key, 0)
        self.session.write("error", code=name, reason=error.str(), fatal=error.fatal(),
                           **({"repeated_since_last": repeats} if repeats else {}))
        # Kept in the tracker's history for the export; the UI draws its own line from the message.
        self.tracker.note("error", utc_now(), f"{name}: {error.str()}" + (f" — {hint}" if hint else ""))
        self._post(KafkaErrorReported(code=name, reason=error.str(), fatal=error.fatal(), hint=hint))

    def _heal_refusal(self, now: float) -> str | None:
        """A member must never stay refused when it could fix itself: after a while, adopt the
        strategy every assigned member of the group uses; "restart" when it does."""
        if self._refused_since is None or self.tracker.assignment:
            return None
        refused_for = now - self._refused_since
        if refused_for < max(REFUSAL_HEAL_SECONDS, 2 * self.settings.session_timeout_ms / 1000):
            return None
        theirs = self._group_strategies()
        if len(theirs) != 1 or self.strategy in theirs or self.consumer_protocol_refusal(next(iter(theirs))):
            return None
        (strategy,) = theirs
        assert self.session is not None
        self._refused_since = None
        self.session.write("refusal_healed", **{"from": self.strategy, "to": strategy,
                                                "refused_for_s": round(refused_for, 1)})
        self._post(TimelineEvent(entry=self.tracker.note(
            "strategy_changed", utc_now(), f"the group refused {self.strategy} for {refused_for:.0f} s and every "
            f"member in it uses {strategy}: rejoining with {strategy}")))
        return self._handle_command("strategy", strategy)

    def _group_strategies(self) -> set[str]:
        """The strategies of the other members that are in the group now (they own partitions).

        Members that own nothing may be joining, switching or refused themselves: what the group
        uses is what its assigned members use.
        """
        members = [m for m in self.group_view.members() if m.consumer_id != self.consumer_id]
        assigned = {m.strategy for m in members if m.assignment}
        return assigned or {m.strategy for m in members}

    def _refusal_hint(self) -> str:
        """What to press when the group refuses our strategy, from the strategies its members announce."""
        others = sorted(s for s in self._group_strategies() if s != self.strategy)
        keys = {"range": "1", "roundrobin": "2", "cooperative-sticky": "3", "consumer": "4"}
        if others:
            theirs = " / ".join(others)
            press = " or ".join(keys[s] for s in others if s in keys)
            return (f"the group uses {theirs}, not {self.strategy}: press {press} to rejoin with it, "
                    f"or shift+1/2/3 (! @ #) to move every member together")
        return (f"the group uses another protocol family than {self.strategy} (eager range/roundrobin and "
                "cooperative-sticky cannot be mixed): press 1/2/3 to match it, or shift+1/2/3 (! @ #) "
                "to move every member together")

    def _report_processing_error(self, partition: int, offset: int, error: Exception) -> None:
        key = f"processing:{type(error).__name__}"
        now = time.monotonic()
        if now - self._last_error_at.get(key, -1e9) < ERROR_REPEAT_SECONDS:
            return
        self._last_error_at[key] = now
        assert self.session is not None
        self.session.write("error", code="PROCESSING_ERROR",
                           reason=f"P{partition}:O{offset} {error!r}", fatal=False)
        self._post(KafkaErrorReported(code="PROCESSING_ERROR", reason=f"P{partition}:O{offset} {error!r}",
                                      fatal=False))

    def _refresh_paused_watermarks(self, consumer: Consumer) -> None:
        """While paused nothing is fetched, so ask the broker for the end offsets.

        The embedded broker answers ListOffsets with the start of the last batch + 1,
        never more than the true end: keeping the maximum of what we know stays right
        or slightly low, and lets the lag visibly grow during the pause.
        """
        if self._status is ConsumerStatus.BROKER_UNREACHABLE:
            return  # each request would wait its timeout out: the loop must keep going
        for partition in sorted(self.tracker.assignment):
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self.settings.topic, partition), timeout=0.2, cached=False)
            except KafkaException:
                continue
            if high >= 0:
                self.high_watermark[partition] = max(high, self.high_watermark.get(partition, 0))

    # -- commands -----------------------------------------------------------------------

    def _handle_command(self, command: str, argument: Any) -> str | None:
        assert self.session is not None
        now = utc_now()
        if command == "stop":
            return str(argument or "stopped")
        if command in ("strategy", "group_strategy") and self.consumer_protocol_refusal(str(argument)):
            reason = self.consumer_protocol_refusal(str(argument)) or ""
            self.session.write("error", code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False)
            self.tracker.note("error", now, f"CONSUMER_PROTOCOL_UNSUPPORTED: {reason}")
            self._post(KafkaErrorReported(code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False,
                                          hint=f"staying on {self.strategy}"))
            return None
        if command == "strategy":
            previous, self.strategy = self.strategy, str(argument)
            self.session.strategy = self.strategy
            self.session.write("strategy_changed", **{"from": previous, "to": self.strategy})
            entry = self.tracker.note("strategy_changed", now, f"strategy {previous} → {self.strategy}: "
                                      "leaving the group and rejoining")
            self._post(TimelineEvent(entry=entry))
            return "restart"
        if command == "group_strategy":
            request = GroupCommand(strategy=str(argument), requested_by=self.consumer_id, requested_at=now)
            if self._beacon is None:
                return self._handle_command("strategy", argument)
            self._beacon.send_command(request)  # carried out when read back, by every member alike
            return None
        if command == "restart":
            self.session.write("restarted")
            entry = self.tracker.note("restarted", now, "leaving the group and rejoining")
            self._post(TimelineEvent(entry=entry))
            return "restart"
        if command == "pause":
            self._toggle_pause(now)
        elif command == "work_ms":
            previous = self.work_ms
            self.work_ms = max(0.0, round(self.work_ms + float(argument), 3))
            if self.work_ms != previous:
                self.session.write("work_ms_changed", **{"from": previous, "to": self.work_ms})
        elif command == "export":
            self._write_export()
        return None

    def _toggle_pause(self, now: datetime) -> None:
        assert self.session is not None and self._consumer is not None
        topic = self.settings.topic
        owned = [TopicPartition(topic, p) for p in sorted(self.tracker.assignment)]
        self._paused = not self._paused
        try:
            if self._paused:
                if owned:
                    self._consumer.pause(owned)
                self._paused_partitions = set(self.tracker.assignment)
            else:
                if owned:
                    self._consumer.resume(owned)
                self._paused_partitions = set()
        except KafkaException as error:
            self._report_kafka_error(error.args[0])
        event = "paused" if self._paused else "resumed"
        self.session.write(event, assignment=sorted(self.tracker.assignment))
        entry = self.tracker.note(event, now, "consumption paused: partitions kept, lag grows"
                                  if self._paused else "consumption resumed")
        self._post(TimelineEvent(entry=entry))
        self._set_status_from_assignment()

    # -- status, snapshots, stats and export --------------------------------------------

    def _set_status(self, status: ConsumerStatus, detail: str = "") -> None:
        if status == self._status and detail == self._status_detail:
            return
        self._status = status
        self._status_detail = detail
        self._post(StatusChanged(status=status, detail=detail))

    def _set_status_from_assignment(self) -> None:
        if self._fatal:
            return
        if not self.tracker.assignment:
            self._set_status(ConsumerStatus.IDLE, "in the group with no partitions")
        elif self._paused:
            self._set_status(ConsumerStatus.PAUSED)
        else:
            self._set_status(ConsumerStatus.CONSUMING)

    def _known_high(self, partition: int) -> int | None:
        high = self.high_watermark.get(partition)
        position = self.position.get(partition)
        if position is None or (high is not None and high >= position):
            return high
        return position

    def _shown_position(self, partition: int) -> int | None:
        """The next offset to read; before the first record, librdkafka's fetch position (display only)."""
        position = self.position.get(partition)
        if position is None and partition not in self._restoring:
            position = self._fetch_start.get(partition)
        return position

    def _lag_by_partition(self) -> dict[int, int]:
        lags = {}
        for partition in self.tracker.assignment:
            high = self.high_watermark.get(partition)
            position = self._shown_position(partition)
            if high is None or position is None:
                continue
            lags[partition] = max(0, high - position)
        return lags

    def _total_lag(self, lags: dict[int, int]) -> int | None:
        """Lag over my partitions: 0 when I own none, None while no owned partition's lag is known."""
        if lags:
            return sum(lags.values())
        return None if self.tracker.assignment else 0

    def _partition_rates(self, now: float) -> dict[int, float]:
        samples = self._partition_rate_samples
        samples.append((now, dict(self.position)))
        while len(samples) > 2 and now - samples[0][0] > 5.0:
            samples.popleft()
        if len(samples) < 2:
            return {}
        then, old = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return {}
        # Offsets advance by one per record, so the position's progress is the rate.
        return {p: (position - old[p]) / elapsed for p, position in self.position.items()
                if p in old and position >= old[p]}

    def _snapshot(self, now: float) -> Snapshot:
        lags = self._lag_by_partition()
        rates = self._partition_rates(now)
        rows = []
        progress = self._restorer.progress() if self._restoring and self._restorer is not None else {}
        for partition in range(self.partition_count):
            mine = partition in self.tracker.assignment
            restoring = progress.get(partition) if partition in self._restoring else None
            if mine and partition in self._restoring:
                state = PartitionState.RESTORING
            elif mine:
                state = PartitionState.PAUSED if partition in self._paused_partitions else PartitionState.CONSUMING
            elif partition in self.tracker.revoked_at:
                state = PartitionState.REVOKED
            else:
                state = PartitionState.NOT_MINE
            rows.append(PartitionRow(
                partition=partition, mine=mine, state=state,
                position=self._shown_position(partition) if mine else None,
                # Statistics arrive once a second; what we have read is part of the log too. Another
                # member's partition is not fetched here: its owner's heartbeat says where it ends.
                high_watermark=self._known_high(partition) if mine else self.group_view.log_end(partition),
                lag=lags.get(partition) if mine else None,
                rate=rates.get(partition, 0.0) if mine else 0.0,
                restored=restoring.records if restoring else None,
                restore_total=restoring.total if restoring else None,
            ))
        p50, p99 = self._latency.percentiles(now)
        counters = Counters(
            consumed=self.consumed, applied=self.ledger.applied, skipped=self.ledger.skipped,
            rejected=self.rejected, last_rejection=self.last_rejection,
            rejected_by_reason=dict(self.rejected_by_reason), processing_errors=self.processing_errors,
            last_message_at=self.last_message_at,
            errors=self.processing_errors + self.kafka_errors,
            rate=self._rate.rate(now), rate_history=self._rate.history(now),
            lag=self._total_lag(lags),
            latency_p50_ms=p50, latency_p99_ms=p99,
        )
        generation, member_id = self._membership()
        return Snapshot(
            counters=counters, partitions=tuple(rows), status=self._status, generation=generation,
            member_id=member_id, strategy=self.strategy, work_ms=self.work_ms, paused=self._paused,
        )

    def _log_stats(self, now: float) -> None:
        assert self.session is not None
        lags = self._lag_by_partition()
        self.session.write(
            "stats", consumed=self.consumed, rate=round(self._rate.rate(now), 1),
            lag=self._total_lag(lags), lag_by_partition={str(p): v for p, v in sorted(lags.items())},
            rejected=self.rejected, rejected_by_reason=dict(sorted(self.rejected_by_reason.items())),
            errors=self.processing_errors + self.kafka_errors,
            assignment=sorted(self.tracker.assignment), status=self._status.value,
        )

    def export_state(self) -> ExportState:
        return ExportState(
            consumer_id=self.consumer_id, group_id=self.settings.group, topic=self.settings.topic,
            strategy=self.strategy, status=self._status.value,
            assigned_partitions=sorted(self.tracker.assignment), messages_consumed=self.consumed,
            balance_updates=self.ledger.applied, processing_errors=self.processing_errors,
            rejected=self.rejected, partition_offsets=dict(self.position),
            history=list(self.tracker.history), started_at=self.started_at,
            last_message_at=self.last_message_at, balances=self.ledger.rows(), exported_at=utc_now(),
            extra={"rejectedByReason": dict(sorted(self.rejected_by_reason.items())),
                   "recentRejections": [{**entry, "at": iso_ms(entry["at"])} for entry in self.recent_rejections],
                   "group": self.group_view.export_entries(utc_now()),
                   "groupPartitions": self.group_view.export_partitions(self.partition_count, utc_now()),
                   "broker": self.broker.label},
        )

    def _write_export(self) -> tuple[Path, ...]:
        assert self.session is not None
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

