"""Benchmark: what one tail reader costs the embedded broker, by how many batches the partition holds.

Fills one partition with N one-record batches, then reads its tail for 15 s while 50 messages
a second arrive, and prints the broker's CPU use (from /proc) next to the same read on an empty
partition. docs/broker.md explains why balance-tui's producers batch (linger.ms=200).
Usage: python scripts/bench_broker_batches.py [--batches 30000]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from balance_tui.kafka.admin import RDKAFKA_LOGGER
from balance_tui.kafka.brokers.tansu import TansuBroker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_consume import cpu_seconds

READ_SECONDS = 15.0


def tail_read_cpu(bootstrap: str, pid: int, topic: str) -> float:
    """The broker's CPU share while one consumer reads the tail of `topic` under light traffic."""
    stop = time.monotonic() + READ_SECONDS

    def feed() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "logger": RDKAFKA_LOGGER})
        while time.monotonic() < stop:
            producer.produce(topic, b"y" * 200)
            producer.poll(0)
            time.sleep(0.02)
        producer.flush(10)

    feeder = threading.Thread(target=feed)
    feeder.start()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-tail", "enable.auto.commit": False,
                         "logger": RDKAFKA_LOGGER})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    time.sleep(2)
    started, cpu_before = time.monotonic(), cpu_seconds(pid)
    while time.monotonic() < stop:
        consumer.consume(100, 0.1)
    share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
    feeder.join()
    consumer.close()
    return share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=30_000)
    args = parser.parse_args()
    with TansuBroker() as broker:
        assert broker.pid is not None
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": RDKAFKA_LOGGER})
        for topic in ("empty", "batched"):
            admin.create_topics([NewTopic(topic, 1)])[topic].result()
        filler = Producer({"bootstrap.servers": broker.bootstrap, "batch.num.messages": 1, "linger.ms": 0,
                           "logger": RDKAFKA_LOGGER})
        for n in range(args.batches):
            filler.produce("batched", b"x" * 200)
            if n % 1000 == 0:
                filler.poll(0)
        filler.flush(60)
        empty = tail_read_cpu(broker.bootstrap, broker.pid, "empty")
        full = tail_read_cpu(broker.bootstrap, broker.pid, "batched")
    print(f"| tail reader, 50 msg/s | empty partition: broker {empty:.0%} of a core | "
          f"{args.batches:,} one-record batches: broker {full:.0%} of a core |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
