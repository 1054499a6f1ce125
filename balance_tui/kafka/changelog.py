"""The balance changelog on Kafka: transactional writers, one per partition, and a group-less restorer.

Each owned partition has its own transactional producer whose `transactional.id` is tied to the
partition (`<changelog topic>-<partition>`), as Kafka Streams does: a new owner's
`init_transactions` fences the previous owner's producer, so a member that lost a partition
(a frozen process that wakes up) can no longer write to its changelog partition. A flush is one
transaction per partition: the changed customers' states, a position record, and, when a commit
is due, the source offsets (`send_offsets_to_transaction`).

The restorer reads changelog partitions from the beginning to their end (partition EOF, not
ListOffsets: the embedded broker's ListOffsets is wrong) a chunk at a time, so the worker keeps
consuming its other partitions while a moved partition is being restored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from balance_tui.core.changelog import PartitionRestore
from balance_tui.kafka import error_reason
from balance_tui.kafka.freeze_points import FreezePoint, freeze_if_armed

_QUIET = logging.getLogger("balance_tui.rdkafka.changelog")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


#: How long `flush` waits for room in librdkafka's queue before it calls the flush failed.
QUEUE_FULL_SECONDS = 30.0
#: How long fencing a partition's previous writer (`init_transactions`) may take.
FENCE_SECONDS = 60.0

#: Another producer with our `transactional.id` was initialised: another member owns the partition.
FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})
#: The cluster will not let this member write transactions at all: retrying cannot help.
REFUSED_CODES = frozenset({KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                           KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
                           KafkaError.UNSUPPORTED_VERSION, KafkaError._UNSUPPORTED_FEATURE})


def transactional_id(changelog_topic: str, partition: int) -> str:
    """Tied to the partition, not the member: whoever owns partition P writes as `<topic>-P`."""
    return f"{changelog_topic}-{partition}"


@dataclass
class FlushOutcome:
    """What one flush did, partition by partition."""

    #: Partitions whose transaction committed (their records and, if asked, their offsets).
    committed: set[int] = field(default_factory=set)
    #: Aborted or not attempted, with why: their changes stay pending and go with the next flush.
    failed: dict[int, str] = field(default_factory=dict)
    #: Given up: another member initialised the partition's writer (it owns the partition now), or a
    #: transaction could be neither committed nor aborted. Only a new assignment may write it again.
    fenced: dict[int, str] = field(default_factory=dict)
    #: The cluster refuses transactions to this member (authorisation, an old broker).
    refused: dict[int, str] = field(default_factory=dict)
    records: int = 0


class _PartitionWriter:
    """One partition's transactional producer, ready once `init_transactions` (in the pool) returned."""

    def __init__(self, config: dict[str, Any], partition: int, pool: ThreadPoolExecutor) -> None:
        self.partition = partition
        self.producer = Producer(config)
        self.fencing: Future[None] = pool.submit(self.producer.init_transactions, FENCE_SECONDS)
        #: A commit timed out: the transaction is neither committed nor aborted, and is committed
        #: again before anything else is written (librdkafka allows retrying it).
        self.commit_pending = False

    @property
    def ready(self) -> bool:
        return self.fencing.done() and self.fencing.exception() is None

    def discard(self) -> None:
        """Forget this producer (its open transaction, if any, is aborted by whoever initialises the id next)."""
        try:
            self.producer.purge(in_queue=True, in_flight=True)
            self.producer.flush(0)
        except (KafkaException, RuntimeError):
            pass


def _classify(error: KafkaError) -> str:
    code = error.code()
    if code in FENCED_CODES:
        return "fenced"
    if code in REFUSED_CODES:
        return "refused"
    return "failed"


class ChangelogWriter:
    """The transactional writers of the partitions this member owns."""

    def __init__(self, client_config: dict[str, str], topic: str, source_topic: str, client_id: str) -> None:
        self.topic = topic
        self.source_topic = source_topic
        self._client_id = client_id
        self._config = {
            **client_config,
            "acks": "all",
            # Few, large batches (docs/broker.md: the embedded broker's reads slow down with the
            # number of batches); a flush waits for them anyway.
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "transaction.timeout.ms": 60_000,
            # A broker back empty (Tansu restarted) would create it with its default partition
            # count: only `ChangelogCoordinator.open` creates the changelog, with the source's.
            "allow.auto.create.topics": False,
            "logger": _QUIET,
        }
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"{client_id}-changelog")
        self._writers: dict[int, _PartitionWriter] = {}

    # -- owning partitions -------------------------------------------------------------------------

    def fence(self, partitions: Sequence[int]) -> None:
        """Start a fresh writer for each partition: its `init_transactions` fences any previous owner's."""
        for partition in partitions:
            old = self._writers.pop(partition, None)
            if old is not None:
                old.discard()
            config = {**self._config, "transactional.id": transactional_id(self.topic, partition),
                      "client.id": f"{self._client_id}-changelog-{partition}"}
            self._writers[partition] = _PartitionWriter(config, partition, self._pool)

    def fenced_yet(self, partitions: Sequence[int]) -> tuple[list[int], dict[int, KafkaError]]:
        """Of `partitions`: those whose writer is ready, and those whose fencing failed (with the error)."""
        ready, failed = [], {}
        for partition in partitions:
            writer = self._writers.get(partition)
            if writer is None or not writer.fencing.done():
                continue
            error = writer.fencing.exception()
            if error is None:
                ready.append(partition)
            else:
                failed[partition] = error.args[0] if isinstance(error, KafkaException) else KafkaError(
                    KafkaError._FAIL, str(error))
        return ready, failed

    def release(self, partitions: Sequence[int]) -> None:
        """Partitions that left: their writers go (the new owner's fence would stop them anyway)."""
        for partition in partitions:
            writer = self._writers.pop(partition, None)
            if writer is not None:
                writer.discard()

    @property
    def partitions(self) -> set[int]:
        return set(self._writers)

    # -- flushing ----------------------------------------------------------------------------------

    def flush(self, batches: Mapping[int, Sequence[tuple[str, bytes]]], offsets: Mapping[int, int] | None,
              group_metadata: Callable[[], Any] | None, timeout: float) -> FlushOutcome:
        """Write each partition's records in one transaction (with its offset when `offsets` has one).

        The records are produced here; the commits, which wait on the broker, run in parallel.
        """
        outcome = FlushOutcome()
        begun: list[_PartitionWriter] = []
        for partition, records in batches.items():
            writer = self._writers.get(partition)
            if writer is None or not writer.ready:
                outcome.failed[partition] = "its writer is still fencing the previous owner"
                continue
            if writer.commit_pending:
                error = self._commit(writer, None, None, timeout)
                if error is not None:
                    self._ended(writer, error, outcome)
                    continue
                writer.commit_pending = False
            verdict = self._produce_all(writer, records)
            if verdict is None:
                begun.append(writer)
                outcome.records += len(records)
            else:
                self._ended(writer, verdict, outcome)
        metadata = group_metadata() if offsets and group_metadata is not None and begun else None
        finishing = {writer: self._pool.submit(self._commit, writer, offsets, metadata, timeout) for writer in begun}
        for writer, future in finishing.items():
            error = future.result()
            if error is None:
                outcome.committed.add(writer.partition)
            else:
                self._ended(writer, error, outcome)
        return outcome

    def _produce_all(self, writer: _PartitionWriter, records: Sequence[tuple[str, bytes]]) -> KafkaError | None:
        producer, partition, topic = writer.producer, writer.partition, self.topic
        try:
            producer.begin_transaction()
            for index, (key, value) in enumerate(records):
                self._produce(producer, topic, key, value, partition)
                if index == 0:
                    freeze_if_armed(FreezePoint.BETWEEN_RECORDS, lambda: producer.flush(10))
            freeze_if_armed(FreezePoint.BEFORE_COMMIT, lambda: producer.flush(10))
        except KafkaException as error:
            return error.args[0]
        return None

    @staticmethod
    def _produce(producer: Producer, topic: str, key: str, value: bytes, partition: int) -> None:
        deadline = None
        while True:
            try:
                producer.produce(topic, value, key, partition)
                return
            except BufferError:
                # The local queue is full: let deliveries drain, but not forever.
                now = time.monotonic()
                deadline = deadline or now + QUEUE_FULL_SECONDS
                if now >= deadline:
                    raise KafkaException(KafkaError(KafkaError._QUEUE_FULL,
                                                    f"local queue still full after {QUEUE_FULL_SECONDS:.0f} s"))
                producer.poll(0.05)

    def _commit(self, writer: _PartitionWriter, offsets: Mapping[int, int] | None, metadata: Any,
                timeout: float) -> KafkaError | None:
        producer, partition = writer.producer, writer.partition
        try:
            if offsets is not None and partition in offsets and metadata is not None:
                producer.send_offsets_to_transaction(
                    [TopicPartition(self.source_topic, partition, offsets[partition])], metadata, timeout)
            producer.commit_transaction(timeout)
        except KafkaException as error:
            return error.args[0]
        return None

    def _ended(self, writer: _PartitionWriter, error: KafkaError, outcome: FlushOutcome) -> None:
        """A transaction that did not commit: retry its commit, abort it, or give the partition up.

        Never re-initialises the writer itself: `init_transactions` fences whoever else holds the
        id, and a member that is not sure it still owns the partition (a zombie's commit times out
        on Tansu) must not take it back from its real owner. A new assignment does that.
        """
        partition, kind, reason = writer.partition, _classify(error), error_reason(error)
        if kind in ("fenced", "refused"):
            (outcome.fenced if kind == "fenced" else outcome.refused)[partition] = reason
            self.release([partition])
            return
        outcome.failed[partition] = reason
        if error.code() == KafkaError._TIMED_OUT and not error.fatal():
            writer.commit_pending = True  # the broker is slow or away: the next flush commits it again
            return
        try:
            writer.producer.abort_transaction(10)
            return
        except KafkaException as abort_error:
            reason = f"{reason}; then the abort failed: {error_reason(abort_error)}"
        del outcome.failed[partition]
        outcome.fenced[partition] = reason
        self.release([partition])

    def close(self) -> None:
        self.release(sorted(self._writers))
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class RestoreProgress:
    partition: int
    records: int
    total: int | None
    started: float


class ChangelogRestorer:
    """Reads whole changelog partitions (no group, no commits) into `PartitionRestore`s."""

    def __init__(self, client_config: dict[str, str], topic: str, client_id: str) -> None:
        self.topic = topic
        self._consumer = Consumer({
            **client_config,
            "group.id": f"{client_id}-restore",  # required by librdkafka, never joined: we assign()
            "client.id": f"{client_id}-restore",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # Tansu holds an empty fetch for fetch.wait.max.ms: reaching the end of a partition
            # (the point of a restore) is much faster with a short wait.
            "fetch.wait.max.ms": 10,
            # A restore reads whole partitions: large fetches (the default caps one partition's
            # share at 1 MB a round trip, about 4,000 records).
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "queued.min.messages": 1_000_000,
            "auto.offset.reset": "earliest",
            # Apache Kafka hides aborted transactions; Tansu shows them (docs/broker.md), which the
            # restore rule makes harmless (docs/consistency.md).
            "isolation.level": "read_committed",
            "allow.auto.create.topics": False,
            "logger": _QUIET,
        })
        self._restores: dict[int, PartitionRestore] = {}
        self._started: dict[int, float] = {}
        #: Errors met while reading, other than partition EOF; the worker takes and reports them.
        self.errors: list[KafkaError] = []

    @property
    def partitions(self) -> set[int]:
        return set(self._restores)

    def start(self, partitions: list[int]) -> None:
        fresh = [p for p in partitions if p not in self._restores]
        for partition in fresh:
            self._restores[partition] = PartitionRestore(partition)
            self._started[partition] = time.monotonic()
        if fresh:
            self._consumer.incremental_assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in fresh])

    def cancel(self, partitions: list[int]) -> None:
        gone = [p for p in partitions if p in self._restores]
        for partition in gone:
            del self._restores[partition]
            del self._started[partition]
        if gone:
            self._consumer.incremental_unassign([TopicPartition(self.topic, p) for p in gone])

    def progress(self) -> dict[int, RestoreProgress]:
        progress = {}
        for partition, restore in self._restores.items():
            total = None
            try:
                # Cached: the high watermark from fetch responses, right on the embedded broker too.
                _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
                total = high if high >= 0 else None
            except Exception:  # noqa: BLE001 - progress is cosmetic, never fatal
                pass
            progress[partition] = RestoreProgress(partition, restore.records, total, self._started[partition])
        return progress

    def step(self, budget: int = 5_000) -> list[tuple[PartitionRestore, float]]:
        """Read up to `budget` records; return the restores that reached the end, with their seconds."""
        finished: list[tuple[PartitionRestore, float]] = []
        while self._restores and budget > 0:
            messages = self._consumer.consume(min(budget, 1000), 0.002)
            if not messages:
                break
            budget -= len(messages)
            for message in messages:
                partition = message.partition()
                restore = self._restores.get(partition)
                if restore is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        finished.append((restore, time.monotonic() - self._started[partition]))
                        self.cancel([partition])
                    else:  # the partition keeps restoring (librdkafka retries); the worker shows why
                        self.errors.append(error)
                    continue
                restore.add(message.value())
        return finished

    def close(self) -> None:
        self._consumer.close()
