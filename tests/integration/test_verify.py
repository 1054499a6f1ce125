"""`balance-tui verify` against a real broker, run as the real CLI in its own process.

The changelog is built here the way the worker writes it (one state per applied
transaction, on the changelog partition numbered like the source partition). Source
records are read back by an independent plain consumer (assign + partition EOF) so that
offsets are known without trusting the reader under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from balance_tui.config import load_settings
from balance_tui.core.changelog import changelog_topic, encode_state
from balance_tui.core.ledger import Effect, Ledger
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.core.transaction import Transaction, parse_transaction
from balance_tui.errors import UserError
from balance_tui.kafka.admin import admin_client, ensure_topic
from balance_tui.kafka.producer import produce
from balance_tui.kafka.reader import read_partitions
from tests.helpers import free_port

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


def run_verify(bootstrap: str, topic: str, group: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balance_tui", "verify", "--bootstrap-servers", bootstrap, "--topic", topic,
         "--group", group, *flags],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )


def read_with_offsets(bootstrap: str, topic: str, timeout: float = 60.0) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record, each partition read to its EOF."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-reader-{topic}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    records: list[tuple[int, int, bytes]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, f"only partitions {sorted(at_end)} reached their end"
            for message in consumer.consume(1000, timeout=0.5):
                error = message.error()
                if error is None:
                    records.append((message.partition(), message.offset(), message.value()))
                    at_end.discard(message.partition())
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise AssertionError(f"consumer error: {error}")
    finally:
        consumer.close()
    return sorted(records)


def produce_transactions(bootstrap: str, topic: str, count: int, seed: int) -> None:
    settings = load_settings({"bootstrap_servers": bootstrap, "topic": topic, "partitions": PARTITIONS})
    report = produce(settings, TrafficGenerator(customers=40, seed=seed, bad_ratio=0.02), rate=None,
                     count=count, duration=None)
    assert report.delivered == count and report.failed == 0, report


class ChangelogBuilder:
    """Applies source records like the worker and writes one changelog record per applied transaction."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.topic = changelog_topic(group)
        ensure_topic({"bootstrap.servers": bootstrap}, self.topic, PARTITIONS, config={"cleanup.policy": "compact"})
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
        self.ledgers: dict[int, Ledger] = {}
        self.next_offset: dict[int, int] = {}

    def apply(self, records: list[tuple[int, int, bytes]]) -> None:
        for partition, offset, raw in records:
            if offset < self.next_offset.get(partition, 0):
                continue  # applied in an earlier round
            self.next_offset[partition] = offset + 1
            result = parse_transaction(raw)
            if not isinstance(result, Transaction):
                continue
            ledger = self.ledgers.setdefault(partition, Ledger())
            if ledger.apply(result, partition, offset) is not Effect.SKIPPED:
                state = ledger.customers[result.customer_id]
                self.producer.produce(self.topic, encode_state(state), result.customer_id, partition)
        self.flush()

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "changelog records not acknowledged"


def export_file(path: Path, topic: str, builder: ChangelogBuilder, partitions: list[int]) -> Path:
    """A dashboard export (docs/session-log.md) of a consumer owning `partitions`."""
    balances = [
        {"customerId": row.customer_id, "balance": str(row.balance), "currency": row.currency,
         "transactionCount": row.transaction_count, "lastUpdated": "2026-02-08T22:00:00.000Z",
         "lastTransactionId": row.last_transaction_id, "partition": row.partition}
        for partition in partitions for row in builder.ledgers[partition].rows()
    ]
    document: dict[str, Any] = {
        "consumerId": path.stem, "groupId": "g", "topic": topic, "status": "Consuming",
        "assignedPartitions": partitions,
        "partitionOffsets": {str(p): builder.next_offset[p] for p in partitions},
        "balances": balances,
    }
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def populated(broker: Any, unique: Any) -> tuple[str, str, ChangelogBuilder]:
    """A 6-partition topic with 600 keyed transactions and the matching changelog."""
    topic, group = unique("verify-tx-"), unique("verify-group-")
    produce_transactions(broker.bootstrap, topic, 600, seed=11)
    builder = ChangelogBuilder(broker.bootstrap, group)
    builder.apply(read_with_offsets(broker.bootstrap, topic))
    assert len(builder.ledgers) == PARTITIONS, "the traffic should reach every partition"
    return topic, group, builder


def test_changelog_matches_then_a_corrupted_record_is_caught(broker: Any, populated: Any) -> None:
    topic, group, builder = populated

    result = run_verify(broker.bootstrap, topic, group)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 mismatches" in result.stdout
    assert "Customers checked: 40" in result.stdout

    # The source moves on, the changelog does not (a consumer behind): not a failure...
    produce_transactions(broker.bootstrap, topic, 60, seed=12)
    behind = run_verify(broker.bootstrap, topic, group, "--json")
    assert behind.returncode == 0, behind.stdout + behind.stderr
    report = json.loads(behind.stdout)
    assert report["ok"] and report["notYetApplied"] > 0
    assert report["sourceRecords"] == 660
    # ... unless the caller asks for a caught-up service.
    assert run_verify(broker.bootstrap, topic, group, "--require-caught-up").returncode == 1

    # One customer's latest changelog record says one cent more than the source gives.
    partition, ledger = next(iter(sorted(builder.ledgers.items())))
    customer_id, state = sorted(ledger.customers.items())[0]
    currency, balance = sorted(state.balances.items())[0]
    corrupted = Decimal(balance) + Decimal("0.01")
    state.balances[currency] = corrupted
    builder.producer.produce(builder.topic, encode_state(state), customer_id, partition)
    builder.flush()

    caught = run_verify(broker.bootstrap, topic, group)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "1 mismatches" in caught.stdout
    [line] = [line for line in caught.stdout.splitlines() if line.startswith(f"| {customer_id} | {currency} |")]
    assert f"| {balance} | {corrupted} |" in line


def test_exports_union(broker: Any, populated: Any, tmp_path: Path) -> None:
    topic, group, builder = populated
    first = export_file(tmp_path / "first.export.json", topic, builder, [0, 1, 2])
    second = export_file(tmp_path / "second.export.json", topic, builder, [3, 4, 5])

    good = run_verify(broker.bootstrap, topic, group, "--exports", str(first), str(second))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 mismatches" in good.stdout and "Duplicates across exports: 0" in good.stdout

    overlapping = export_file(tmp_path / "overlap.export.json", topic, builder, [2, 3])
    duplicated = run_verify(broker.bootstrap, topic, group, "--exports", str(first), str(second), str(overlapping),
                            "--json")
    assert duplicated.returncode == 1, duplicated.stdout + duplicated.stderr
    report = json.loads(duplicated.stdout)
    assert report["duplicates"]
    assert all(len(item["files"]) == 2 and str(overlapping) in item["files"] for item in report["duplicates"])


def test_a_missing_topic_is_one_line_and_not_created(broker: Any, unique: Any) -> None:
    topic = unique("verify-absent-")
    result = run_verify(broker.bootstrap, topic, unique("verify-group-"))
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"balance-tui: error: source topic '{topic}' does not exist at {broker.bootstrap}"]
    assert topic not in admin_client({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics


def test_a_missing_changelog_is_one_line(broker: Any, unique: Any) -> None:
    topic, group = unique("verify-tx-"), unique("verify-group-")
    produce_transactions(broker.bootstrap, topic, 10, seed=3)
    result = run_verify(broker.bootstrap, topic, group)
    assert result.returncode == 4
    [line] = result.stderr.strip().splitlines()
    assert f"changelog topic '{changelog_topic(group)}' does not exist" in line


def test_no_broker_is_one_line_exit_3() -> None:
    result = run_verify(f"127.0.0.1:{free_port()}", "t", "g", "--connect-timeout", "1")
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert "no Kafka broker answers" in line


def test_reader_reads_every_partition_to_its_end(broker: Any, unique: Any) -> None:
    topic = unique("verify-read-")
    # Fewer customers than partitions: some partitions stay empty and must still end.
    settings = load_settings({"bootstrap_servers": broker.bootstrap, "topic": topic, "partitions": PARTITIONS})
    report = produce(settings, TrafficGenerator(customers=2, seed=5), rate=None, count=50, duration=None)
    assert report.delivered == 50
    records = list(read_partitions({"bootstrap.servers": broker.bootstrap}, topic, timeout=30))
    assert len(records) == 50
    for partition in range(PARTITIONS):
        offsets = [offset for p, offset, _key, _value in records if p == partition]
        assert offsets == list(range(len(offsets)))
    with pytest.raises(UserError, match="does not exist"):
        next(read_partitions({"bootstrap.servers": broker.bootstrap}, unique("verify-none-"), timeout=5))
