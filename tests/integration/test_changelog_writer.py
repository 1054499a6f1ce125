"""The changelog writer on a real broker: a flush that does not wait, and the next one that takes its commit in."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.changelog import ChangelogWriter
from tests.helpers import wait_until

pytestmark = pytest.mark.broker


def committed_keys(client_config: dict[str, str], topic: str) -> list[str]:
    """The keys of partition 0's committed records, in order, read to its end."""
    reader = Consumer({**client_config, "group.id": "unused", "enable.auto.commit": False,
                       "isolation.level": "read_committed", "enable.partition.eof": True})
    reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    keys: list[str] = []
    try:
        def at_end() -> bool:
            for message in reader.consume(100, 0.5):
                if message.error() is not None:
                    return message.error().code() == KafkaError._PARTITION_EOF
                keys.append(message.key().decode())
            return False
        wait_until(at_end, 60, "the changelog's end was never reached")
    finally:
        reader.close()
    return keys


def test_a_flush_that_does_not_wait_commits_in_the_background_and_the_next_takes_it_in(
        broker, unique, client_config):
    source, changelog, group = unique("tx"), unique("changelog"), unique("grp")
    ensure_topic(client_config, source, 1)
    ensure_topic(client_config, changelog, 1)
    writer = ChangelogWriter(client_config, changelog, source, "probe")
    consumer = Consumer({**client_config, "group.id": group, "enable.auto.commit": False})
    try:
        writer.fence([0])
        wait_until(lambda: writer.fenced_yet([0])[0] == [0], 60, "the writer never became ready")
        outcome = writer.flush({0: [("A", b"1"), ("B", b"2")]}, {0: 42}, consumer.consumer_group_metadata,
                               10.0, waits=False)
        assert outcome.pending == {0} and not outcome.committed and not outcome.failed and outcome.records == 2

        # The next flush takes in how it ended (waiting for it here), then writes its own records.
        outcome = writer.flush({0: [("C", b"3")]}, None, None, 30.0)
        assert outcome.landed == {0} and outcome.committed == {0} and not outcome.failed, outcome
        [offset] = consumer.committed([TopicPartition(source, 0)], 30)
        assert offset.offset == 42  # the source offset went in the first transaction
        assert committed_keys(client_config, changelog) == ["A", "B", "C"]
    finally:
        writer.close()
        consumer.close()
