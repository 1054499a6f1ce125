"""Read a whole topic without a consumer group: every partition from its beginning to its end.

"The end" is where librdkafka reports `_PARTITION_EOF` (`enable.partition.eof`), never
a watermark: the embedded broker's ListOffsets answer is wrong after multi-record
batches (docs in /work/shared/notes/embedded-broker.md). Partitions are `assign()`ed,
so the reader never joins a group and never commits; the `group.id` librdkafka insists
on is a throwaway one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from balance_tui.errors import UserError
from balance_tui.kafka import error_reason
from balance_tui.kafka.admin import RDKAFKA_LOGGER, topic_partition_count

#: Errors after which waiting longer cannot help.
_FATAL_CODES = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
}


def read_partitions(client_config: dict[str, str], topic: str,
                    timeout: float = 30.0) -> Iterator[tuple[int, int, bytes | None, bytes | None]]:
    """Yield (partition, offset, key, value) for every record of `topic`, in offset order per partition.

    Stops once each partition has reported end-of-partition (records arriving later may
    or may not be included, always as an in-order prefix). Raises UserError if the topic
    does not exist (checked with a full topic listing, so it is not auto-created), or if
    `timeout` seconds pass without a record or an end-of-partition (a stalled read),
    BrokerUnreachable if no broker answers the listing.
    """
    partitions = topic_partition_count(client_config, topic, timeout=timeout)
    if partitions is None:
        raise UserError(f"topic {topic!r} does not exist at {client_config.get('bootstrap.servers')}")
    if partitions == 0:
        return
    config: dict[str, Any] = {
        # The broker holds an empty fetch this long before answering: at the end of a
        # partition that is pure waiting (1.6 s instead of 0.6 s for an empty topic).
        "fetch.wait.max.ms": 10,
        **client_config,
        "group.id": f"balance-tui-reader-{uuid.uuid4().hex[:12]}",  # required by librdkafka; never joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "logger": RDKAFKA_LOGGER,
    }
    consumer = Consumer(config)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        at_end: set[int] = set()
        last_error: str | None = None
        stalled_at = time.monotonic() + timeout
        while len(at_end) < partitions:
            try:
                messages = consumer.consume(1000, timeout=0.1)
            except KafkaException as failure:
                raise UserError(f"cannot read {topic!r}: {error_reason(failure)}") from None
            if messages:
                stalled_at = time.monotonic() + timeout
            for message in messages:
                error, partition, offset = message.error(), message.partition(), message.offset()
                if error is None:
                    if partition is not None and offset is not None:  # a record always has both
                        yield partition, offset, message.key(), message.value()
                elif error.code() == KafkaError._PARTITION_EOF:
                    if partition is not None:
                        at_end.add(partition)
                elif error.fatal() or error.code() in _FATAL_CODES:
                    raise UserError(f"cannot read {topic!r}: {error.str()}")
                else:
                    last_error = error.str()  # transient (a broker restarting): librdkafka retries
            if time.monotonic() >= stalled_at:
                waiting = sorted(set(range(partitions)) - at_end)
                cause = f" (last error: {last_error})" if last_error else ""
                raise UserError(f"reading {topic!r}: partitions {waiting} made no progress for "
                                f"{timeout:g}s{cause}")
    finally:
        consumer.close()

