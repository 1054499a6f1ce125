"""What a broker's transactions do, as the changelog depends on them (docs/consistency.md, "The two brokers").

Usage: python scripts/probe_transactions.py BOOTSTRAP   (e.g. the `bootstrap:` line of `balance-tui broker`)

On a new one-partition topic: a committed, an aborted and an open transaction, then a second producer
with the same transactional.id (fencing), then that producer's own commit; after each step, what a
`read_committed` consumer reads, and what the fenced producer's next commit says.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def read_committed(bootstrap: str, topic: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "isolation.level":
                         "read_committed", "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[str] = []
    try:
        while (message := consumer.poll(5)) is not None and message.error() is None:
            values.append(message.value().decode())
    finally:
        consumer.close()
    return values


def main(bootstrap: str) -> None:
    topic = f"probe-transactions-{time.time_ns()}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    first = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    started = time.monotonic()
    first.init_transactions(30)
    print(f"init_transactions: {1000 * (time.monotonic() - started):.0f} ms")
    first.begin_transaction()
    first.produce(topic, b"committed", partition=0)
    first.commit_transaction(30)
    first.begin_transaction()
    first.produce(topic, b"aborted", partition=0)
    first.flush(10)
    first.abort_transaction(30)
    first.begin_transaction()
    first.produce(topic, b"open", partition=0)
    first.flush(10)
    print("committed, aborted, open:         ", read_committed(bootstrap, topic))
    second = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    started = time.monotonic()
    second.init_transactions(30)
    print(f"fencing init_transactions: {1000 * (time.monotonic() - started):.0f} ms")
    print("after the second producer's init: ", read_committed(bootstrap, topic))
    try:
        first.commit_transaction(10)
        print("the fenced producer's commit:      succeeded (NOT fenced)")
    except KafkaException as error:
        print(f"the fenced producer's commit:      {error.args[0].name()} (fatal={error.args[0].fatal()})")
    second.begin_transaction()
    second.produce(topic, b"new owner", partition=0)
    second.commit_transaction(30)
    print("after the new owner's commit:     ", read_committed(bootstrap, topic))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
