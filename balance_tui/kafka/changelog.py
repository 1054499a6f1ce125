"""The balance changelog on Kafka: an idempotent writer, and a group-less restorer.

The writer sends one record per applied transaction to the changelog partition
numbered like the source partition. The restorer reads changelog partitions from
the beginning to their end (partition EOF, not ListOffsets: the embedded broker's
ListOffsets is wrong) a chunk at a time, so the worker keeps consuming its other
partitions while a moved partition is being restored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
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

_QUIET = logging.getLogger("balance_tui.rdkafka.changelog")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


#: How long `write` waits for room in librdkafka's queue before it calls the changelog failed.
QUEUE_FULL_SECONDS = 30.0


class ChangelogWriter:
    """Produces changelog records; `flush()` says whether everything sent so far is acknowledged."""

    def __init__(self, client_config: dict[str, str], topic: str, client_id: str) -> None:
        self.topic = topic
        self._config = {
            **client_config,
            "client.id": f"{client_id}-changelog",
            # Idempotence keeps each changelog partition an ordered prefix of what was sent, which
            # is what restoration relies on (docs/consistency.md). A record is never given up on
            # (no message timeout), and should one fail anyway, the gapless guarantee makes the
            # producer stop rather than write records after a hole.
            "enable.idempotence": True,
            "enable.gapless.guarantee": True,
            "message.timeout.ms": 0,
            "acks": "all",
            # Few, large batches (docs/broker.md: the embedded broker's reads slow down with the
            # number of batches); commits flush anyway, so this adds no delay to them.
            "linger.ms": 200,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "logger": _QUIET,
        }
        self._open()

    def _open(self) -> None:
        self.failed = 0
        self.first_error: str | None = None
        self._producer = Producer(self._config)
        self._produce = self._producer.produce
        self._on_delivery = self._delivered

    @property
    def broken(self) -> bool:
        """A record failed: the changelog may end before what this process applied."""
        return self.failed > 0

    def reopen(self) -> None:
        """Drop every record not yet acknowledged and start a fresh producer.

        After a failure (a fatal idempotent producer cannot be used again), and whenever
        partitions leave this process with records still unsent: those must never land after
        what the partitions' new owners write.
        """
        try:
            self._producer.purge(in_queue=True, in_flight=True)
            self._producer.flush(0)
        except KafkaException:
            pass
        self._open()

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._fail(error.str())

    def _fail(self, reason: str) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = reason

    def write(self, partition: int, key: str, value: bytes) -> None:
        if self.failed:
            return  # nothing after a hole: the worker restores from the changelog as it stands
        deadline = None
        while True:
            try:
                self._produce(self.topic, value, key, partition, on_delivery=self._on_delivery)
                return
            except BufferError:
                # The local queue is full: let deliveries drain, but not forever (the changelog
                # may be unreachable while the source is not).
                now = time.monotonic()
                deadline = deadline or now + QUEUE_FULL_SECONDS
                if now >= deadline:
                    self._fail(f"local queue still full after {QUEUE_FULL_SECONDS:.0f} s")
                    return
                self._producer.poll(0.05)
            except KafkaException as error:  # fatal producer
                self._fail(error_reason(error))
                return

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> bool:
        """True when every record written so far is acknowledged and none failed."""
        remaining = self._producer.flush(timeout)
        return remaining == 0 and self.failed == 0

    def close(self) -> None:
        self._producer.flush(10)


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
            "auto.offset.reset": "earliest",
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
            messages = self._consumer.consume(min(budget, 1000), 0)
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
