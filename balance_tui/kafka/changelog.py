"""The balance changelog on Kafka: transactional writers, one per partition, and a group-less restorer.

Each owned partition has its own transactional producer whose `transactional.id` is tied to the
partition (`<changelog topic>-<partition>`), as Kafka Streams does: a new owner's
`init_transactions` fences the previous owner's producer, so a member that lost a partition
(a frozen process that wakes up) can no longer write to its changelog partition. A flush is one
transaction per partition: the changed customers' states, a position record, and, when a commit
is due, the source offsets (`send_offsets_to_transaction`).

Every call that waits on the transaction coordinator (`init_transactions`, the commit with its
offsets, an abort) runs on a daemon thread of its own, and a flush waits for it only as long as
its caller allows (the loop's periodic flushes not at all: their commits are taken in by the next
flush, so consuming goes on while the broker commits). librdkafka does not always keep to their
timeouts (with the coordinator away, `send_offsets_to_transaction` waits out `socket.timeout.ms`,
60 s, whatever it is given; on a broker back as a new cluster it was seen never to return). A
transaction whose end is still running keeps its writer busy; the next flush takes its result in.

The restorer reads changelog partitions from the beginning to their end (partition EOF, not
ListOffsets: the embedded broker's ListOffsets is wrong) a chunk at a time, so the worker keeps
consuming its other partitions while a moved partition is being restored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
from balance_tui.kafka.admin import RDKAFKA_LOGGER, bootstrap_accepts_connections
from balance_tui.kafka.freeze_points import FreezePoint, freeze_if_armed

#: Under `RDKAFKA_LOGGER`, which keeps librdkafka's logs off the terminal.
_QUIET = RDKAFKA_LOGGER.getChild("changelog")


#: How long `flush` waits for room in librdkafka's queue before it calls the flush failed.
QUEUE_FULL_SECONDS = 30.0
#: How long fencing a partition's previous writer (`init_transactions`) may take.
FENCE_SECONDS = 60.0
#: The timeout given to librdkafka for a commit (with its offsets) or an abort. They run in the
#: background: a flush waits for them only as long as its own timeout says.
END_SECONDS = 10.0

#: Another producer with our `transactional.id` was initialised: another member owns the partition.
FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})
#: The cluster will not let this member write transactions at all: retrying cannot help.
REFUSED_CODES = frozenset({KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                           KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
                           KafkaError.UNSUPPORTED_VERSION, KafkaError._UNSUPPORTED_FEATURE})


T = TypeVar("T")


def in_background(call: Callable[..., T], *args: Any, name: str = "changelog") -> Future[T]:
    """`call(*args)` on a daemon thread of its own, its outcome in the future returned.

    Not a pool: a call stuck inside librdkafka holds only its own thread, never the next
    partition's, and never keeps the process from exiting.
    """
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call(*args))
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def transactional_id(changelog_topic: str, partition: int) -> str:
    """Tied to the partition, not the member: whoever owns partition P writes as `<topic>-P`."""
    return f"{changelog_topic}-{partition}"


@dataclass
class FlushOutcome:
    """What one flush did, partition by partition."""

    #: Partitions whose transaction committed (their records and, if asked, their offsets).
    committed: set[int] = field(default_factory=set)
    #: Partitions whose transaction was begun and is committing in the background (a flush that does
    #: not wait): a later flush says whether it landed.
    pending: set[int] = field(default_factory=set)
    #: Partitions whose previous transaction (pending then, or retried) is now known to have committed.
    landed: set[int] = field(default_factory=set)
    #: Aborted or not attempted, with why: their changes stay pending and go with the next flush.
    failed: dict[int, str] = field(default_factory=dict)
    #: Given up: another member initialised the partition's writer (it owns the partition now), or a
    #: transaction could be neither committed nor aborted. Only a new assignment may write it again.
    fenced: dict[int, str] = field(default_factory=dict)
    #: The cluster refuses transactions to this member (authorisation, an old broker).
    refused: dict[int, str] = field(default_factory=dict)
    records: int = 0
    #: Source offsets known committed by this flush, partition by partition (filled by the coordinator).
    offsets: dict[int, int] = field(default_factory=dict)


class _PartitionWriter:
    """One partition's transactional producer, ready once `init_transactions` (in the background) returned."""

    def __init__(self, config: dict[str, Any], partition: int) -> None:
        self.partition = partition
        self.producer = Producer(config)
        self.fencing: Future[None] = in_background(self.producer.init_transactions, FENCE_SECONDS,
                                                   name=f"changelog-{partition}-fence")
        #: A commit timed out: the transaction is neither committed nor aborted, and is committed
        #: again before anything else is written (librdkafka allows retrying it).
        self.commit_pending = False
        #: The end of the last transaction (its commit, or its abort) still running or not yet taken in.
        self.ending: Future[KafkaError | None] | None = None
        self.ending_is_abort = False
        #: Why the transaction being aborted failed, for the reason given if the abort fails too.
        self.failure = ""

    @property
    def ready(self) -> bool:
        return self.fencing.done() and self.fencing.exception() is None

    @property
    def busy(self) -> bool:
        """A transaction's end is still waiting on the broker: nothing else may be called on this producer."""
        return self.ending is not None and not self.ending.done()

    def end(self, call: Callable[..., KafkaError | None], *args: Any, abort: bool = False) -> Future[KafkaError | None]:
        self.ending, self.ending_is_abort = in_background(call, *args, name=f"changelog-{self.partition}"), abort
        return self.ending

    def discard(self) -> None:
        """Forget this producer (its open transaction, if any, is aborted by whoever initialises the id next).

        One whose commit is still running is left to finish it: a commit that lands before the
        new owner's fence is restored by it, one that does not is aborted by the fence.
        """
        if self.busy:
            return
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
        self._bootstrap = {"bootstrap.servers": client_config.get("bootstrap.servers", "")}
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
            self._writers[partition] = _PartitionWriter(config, partition)

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
              group_metadata: Callable[[], Any] | None, timeout: float, *, waits: bool = True) -> FlushOutcome:
        """Write each partition's records in one transaction (with its offset when `offsets` has one).

        First the end of every writer's previous transaction is taken in (`landed`, or `failed`),
        waiting `timeout` seconds at most for those still running. The records are produced here;
        the commits run in the background, in parallel. With `waits`, this call waits for them
        (within the same `timeout`): one still running then is `failed` this time (its records stay
        in the cache) and keeps its writer busy until a later flush takes its result in: whichever
        way it ends, what it wrote is a prefix of the cache, written again. Without, they are
        `pending` and the next flush says how they ended.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        outcome = self.settle(self._writers, timeout)
        begun: list[_PartitionWriter] = []
        retried: list[_PartitionWriter] = []
        for partition, records in batches.items():
            writer = self._writers.get(partition)
            if writer is None or not writer.ready:
                outcome.failed[partition] = "its writer is still fencing the previous owner"
                continue
            if partition in outcome.failed or partition in outcome.fenced:
                continue  # it said why
            if writer.commit_pending:
                retried.append(writer)  # the timed-out commit first; these records go with the next flush
                continue
            verdict = self._produce_all(writer, records)
            if verdict is None:
                begun.append(writer)
                outcome.records += len(records)
            else:
                self._ended(writer, verdict, outcome)
        metadata = group_metadata() if offsets and group_metadata is not None and begun else None
        # One probe for the whole flush, off this thread, that every partition's commit with offsets waits on.
        reachable = (in_background(bootstrap_accepts_connections, self._bootstrap, name="changelog-probe")
                     if metadata is not None else None)
        ending = {writer: writer.end(self._commit, writer, offsets, metadata, reachable) for writer in begun}
        ending.update({writer: writer.end(self._commit, writer, None, None) for writer in retried})
        if not waits:
            outcome.pending.update(writer.partition for writer in begun)
            for writer in retried:
                outcome.failed[writer.partition] = "an earlier commit is retried; its changes go next"
            return outcome
        if ending:
            wait(ending.values(), timeout=max(deadline - time.monotonic(), 0.0))
        for writer in ending:
            if writer.busy:
                outcome.failed[writer.partition] = "the broker has not answered its commit yet"
            elif not self._settled(writer, outcome):
                continue  # it said why
            elif writer in begun:
                outcome.committed.add(writer.partition)
            else:  # the timed-out commit went through at last: the cache still holds its changes
                outcome.landed.add(writer.partition)
                outcome.failed[writer.partition] = "an earlier commit completed; its changes go with the next flush"
        return outcome

    def settle(self, partitions: Iterable[int], timeout: float) -> FlushOutcome:
        """Take in how each partition's last transaction ended, waiting `timeout` s at most for those still running.

        `landed`: its commit went through; `failed` (or `fenced`): it did not, or is still running.
        """
        outcome = FlushOutcome()
        writers = [self._writers[p] for p in partitions if p in self._writers]
        running = [writer.ending for writer in writers if writer.busy and writer.ending is not None]
        if running and timeout > 0:
            wait(running, timeout=timeout)
        for writer in writers:
            was_commit = writer.ending is not None and not writer.ending_is_abort
            if self._settled(writer, outcome) and was_commit:
                outcome.landed.add(writer.partition)
        return outcome

    def _settled(self, writer: _PartitionWriter, outcome: FlushOutcome) -> bool:
        """Take in the end of the writer's last transaction; True when a new one may begin."""
        if writer.ending is None:
            return True
        if writer.busy:
            outcome.failed[writer.partition] = "its previous commit is still waiting for the broker"
            return False
        error, was_abort = writer.ending.result(), writer.ending_is_abort
        writer.ending = None
        if error is None:
            writer.commit_pending = False
            return True
        if was_abort:
            self._give_up(writer, f"{writer.failure}; then the abort failed: {error_reason(error)}", outcome)
        else:
            self._ended(writer, error, outcome)
        return False

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
                    still_full = f"local queue still full after {QUEUE_FULL_SECONDS:.0f} s"
                    raise KafkaException(KafkaError(KafkaError._QUEUE_FULL, still_full)) from None
                producer.poll(0.05)

    def _commit(self, writer: _PartitionWriter, offsets: Mapping[int, int] | None, metadata: Any,
                reachable: Future[bool] | None = None) -> KafkaError | None:
        """In the background: the transaction's offsets (if any), then its commit."""
        producer, partition = writer.producer, writer.partition
        sends_offsets = offsets is not None and partition in offsets and metadata is not None
        if sends_offsets and (reachable is None or not reachable.result()):
            # The offsets go to the group coordinator through librdkafka's coordinator requests, which
            # abort the process when the connection is down (issue #4605, seen here with a broker killed
            # during a flush). Nothing is sent: the commit is retried, without them, at the next flush.
            return KafkaError(KafkaError._TIMED_OUT, "the broker does not accept connections")
        try:
            if sends_offsets:
                assert offsets is not None
                producer.send_offsets_to_transaction(
                    [TopicPartition(self.source_topic, partition, offsets[partition])], metadata, END_SECONDS)
            producer.commit_transaction(END_SECONDS)
        except KafkaException as error:
            return error.args[0]
        return None

    @staticmethod
    def _abort(writer: _PartitionWriter) -> KafkaError | None:
        """In the background: abort the open transaction."""
        try:
            writer.producer.abort_transaction(END_SECONDS)
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
        writer.failure = reason
        writer.end(self._abort, writer, abort=True)  # taken in by the next flush; failing, it gives the partition up

    def _give_up(self, writer: _PartitionWriter, reason: str, outcome: FlushOutcome) -> None:
        """A transaction that could be neither committed nor aborted: only a new assignment writes here again."""
        outcome.failed.pop(writer.partition, None)
        outcome.fenced[writer.partition] = reason
        self.release([writer.partition])

    def close(self) -> None:
        self.release(sorted(self._writers))


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
            except Exception:  # noqa: BLE001, S110 - progress is cosmetic, never fatal; asked for on every refresh
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
                if partition is None or (restore := self._restores.get(partition)) is None:
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
