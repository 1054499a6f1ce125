"""`balance-tui produce` against a real broker: counts, keys, partitions, stopping, failures.

Topics are read back with a plain consumer assigned to every partition from the
beginning until end-of-partition on each: the embedded broker's ListOffsets answer is
wrong after batched produces, so watermarks are never used to count messages.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from balance_tui.config import load_settings
from balance_tui.core.traffic import TrafficGenerator, murmur2_partition
from balance_tui.core.transaction import Rejection, Transaction, parse_transaction
from balance_tui.kafka.admin import topic_partition_count
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.producer import ProduceReport, produce
from balance_tui.kafka.reader import read_partitions
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


def run_produce(bootstrap: str, topic: str, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in its own process; returns once it has exited by itself."""
    return subprocess.run(
        [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", bootstrap, "--topic", topic, *flags],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
    )


def start_produce(bootstrap: str, topic: str, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", bootstrap, "--topic", topic, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[tuple[int, bytes | None, bytes]]:
    """Every (partition, key, value) of `topic`, read from the beginning to the end of each partition."""
    return [(partition, key, value) for partition, _offset, key, value
            in read_partitions({"bootstrap.servers": bootstrap}, topic, timeout=timeout)]


def wait_for_a_message(bootstrap: str, topic: str, timeout: float = 30.0) -> None:
    """Return once any message of `topic` can be read (the topic is still being written)."""
    wait_until(lambda: topic_partition_count({"bootstrap.servers": bootstrap}, topic) is not None,
               timeout, "the producer never created its topic")
    partitions = topic_partition_count({"bootstrap.servers": bootstrap}, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peek-{topic}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions or 0)])
    try:
        wait_until(lambda: any(m.error() is None for m in consumer.consume(100, timeout=0.2)),
                   timeout, "nothing was produced")
    finally:
        consumer.close()


def summary_counts(stderr: str) -> tuple[int, int]:
    """(delivered, sent) from the command's summary line."""
    found = re.search(r"produced ([\d,]+) of ([\d,]+) transactions", stderr)
    assert found, stderr
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def test_count_rate_zero_gives_exactly_that_many_keyed_messages_on_the_java_partition(broker, unique):
    topic = unique("produce-")
    result = run_produce(broker.bootstrap, topic, "--count", "1000", "--rate", "0", "--seed", "42")
    assert result.returncode == 0, result.stderr
    assert "delivery failures: 0" in result.stderr

    records = read_topic(broker.bootstrap, topic)
    assert len(records) == 1000
    assert topic_partition_count({"bootstrap.servers": broker.bootstrap}, topic) == 6
    partition_of: dict[str, int] = {}
    for partition, key, value in records:
        tx = parse_transaction(value)
        assert isinstance(tx, Transaction), tx
        assert key == tx.customer_id.encode()
        assert partition_of.setdefault(tx.customer_id, partition) == partition, "a customer spans partitions"
        assert partition == murmur2_partition(key, 6)
    assert len(partition_of) == 50
    assert len({json.loads(v)["transactionId"] for _, _, v in records}) == 1000


def test_each_customer_is_read_back_in_the_order_produced(broker, unique):
    topic = unique("produce-order-")
    assert run_produce(broker.bootstrap, topic, "--count", "2000", "--rate", "0", "--seed", "3").returncode == 0
    numbers_by_customer: dict[str, list[int]] = {}
    for _, _, value in read_topic(broker.bootstrap, topic):
        document = json.loads(value)
        number = int(document["transactionId"].rsplit("-", 1)[1])
        numbers_by_customer.setdefault(document["customerId"], []).append(number)
    for customer, numbers in numbers_by_customer.items():
        assert numbers == sorted(numbers), customer


def test_same_seed_same_transactions_apart_from_timestamps(broker, unique):
    first, second = unique("produce-seed-"), unique("produce-seed-")
    for topic in (first, second):
        assert run_produce(broker.bootstrap, topic, "--count", "300", "--rate", "0", "--seed", "77",
                           "--customers", "10").returncode == 0

    def contents(topic: str) -> list[tuple[int, bytes | None, dict]]:
        rows = []
        for partition, key, value in read_topic(broker.bootstrap, topic):
            document = json.loads(value)
            document.pop("timestamp")
            rows.append((partition, key, document))
        return sorted(rows, key=lambda row: row[2]["transactionId"])

    assert contents(first) == contents(second)


def test_rate_with_count_stops_by_itself(broker, unique):
    topic = unique("produce-rate-")
    result = run_produce(broker.bootstrap, topic, "--rate", "200", "--count", "40")
    assert result.returncode == 0, result.stderr
    assert summary_counts(result.stderr) == (40, 40)
    assert len(read_topic(broker.bootstrap, topic)) == 40


def test_duration_stops_by_itself(broker, unique):
    topic = unique("produce-duration-")
    result = run_produce(broker.bootstrap, topic, "--profile", "normal", "--duration", "0.5")
    assert result.returncode == 0, result.stderr
    delivered, sent = summary_counts(result.stderr)
    assert delivered == sent > 0
    assert len(read_topic(broker.bootstrap, topic)) == delivered


def test_bad_ratio_sends_rejectable_messages_keyed_by_customer(broker, unique):
    topic = unique("produce-bad-")
    assert run_produce(broker.bootstrap, topic, "--count", "500", "--rate", "0", "--bad-ratio", "0.3",
                       "--seed", "9").returncode == 0
    records = read_topic(broker.bootstrap, topic)
    assert len(records) == 500
    rejected = [parse_transaction(value) for _, _, value in records]
    assert sum(isinstance(item, Rejection) for item in rejected) > 50
    assert all(key is not None and key.startswith(b"CUST-") for _, key, _ in records)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_flushes_prints_the_summary_and_exits_zero(broker, unique, sig):
    topic = unique("produce-signal-")
    process = start_produce(broker.bootstrap, topic, "--rate", "200")
    try:
        wait_for_a_message(broker.bootstrap, topic)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    delivered, sent = summary_counts(stderr)
    assert delivered == sent > 0
    assert "delivery failures: 0" in stderr
    assert len(read_topic(broker.bootstrap, topic)) == delivered


def test_unreachable_broker_is_one_line_and_non_zero(unique):
    result = run_produce(f"127.0.0.1:{free_port()}", unique("nowhere-"), "--count", "5", "--connect-timeout", "1")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("balance-tui: error: no Kafka broker answers at 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_delivery_failures_are_counted_with_the_first_error(tmp_path, unique):
    """A broker that dies mid-run: what was not delivered is counted as failed, never ignored."""
    doomed = TansuBroker(log_path=tmp_path / "tansu.log").start(timeout=30)
    settings = load_settings({"bootstrap_servers": doomed.bootstrap, "topic": unique("produce-doomed-"),
                              "librdkafka": {"message.timeout.ms": "1000"}})
    stop = threading.Event()
    sent_when_killed: list[int] = []

    def on_status(report: ProduceReport) -> None:
        if not sent_when_killed and report.delivered > 0:
            doomed.stop()
            sent_when_killed.append(report.sent)
        elif sent_when_killed and (report.sent > sent_when_killed[0] or report.unreachable_seconds is not None):
            stop.set()  # a message went out after the broker died, or the generator paused for it

    try:
        report = produce(settings, TrafficGenerator(seed=1), rate=200, count=None, duration=None, stop=stop,
                         on_status=on_status, status_interval=0.05, flush_timeout=20)
    finally:
        doomed.stop()
    # Every message is accounted for: delivered, or counted as failed with the reason kept. (Whether any
    # was still in flight when the broker died is a race: the generator pauses as soon as it notices.)
    assert report.delivered + report.failed == report.sent
    if report.failed:
        assert report.first_error


# -- a broker that goes away --------------------------------------------------------------------


class StderrLines:
    """Collects a subprocess's stderr lines as they come (a reader thread), for conditions on its output."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def rest(self, timeout: float = 30.0) -> str:
        """Everything, once the process closed its stderr (it exited)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "stderr never closed"
        return self.text()


def summary_failures(stderr: str) -> int:
    found = re.search(r"delivery failures: ([\d,]+)", stderr)
    assert found, stderr
    return int(found.group(1).replace(",", ""))


def test_produce_survives_a_broker_killed_and_restarted_on_the_same_port(unique):
    """kill -9 of the broker, a new (empty) broker on the same port: the generator says so and goes on there."""
    from tests.integration.broker_commands import BrokerCommand, alive

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = unique("produce-restart-")
    first = BrokerCommand("tansu", "--engine", "tansu", "--port", str(port)).wait_ready()
    second: BrokerCommand | None = None
    producer = start_produce(bootstrap, topic, "--rate", "200", "--seed", "12", "--connect-timeout", "10")
    output = StderrLines(producer)
    try:
        wait_for_a_message(bootstrap, topic)
        os.kill(first.child_pid, signal.SIGKILL)
        wait_until(lambda: not alive(first.child_pid), 10, "tansu survived SIGKILL")
        first.finish(timeout=20)  # `balance-tui broker` exits once its broker died
        wait_until(lambda: "broker unreachable" in output.text(), 20,
                   f"the generator never said the broker went away: {output.text()}")

        second = BrokerCommand("tansu", "--engine", "tansu", "--port", str(port)).wait_ready()
        wait_until(lambda: "broker restarted" in output.text(), 30,
                   f"the generator never noticed the new broker: {output.text()}")
        wait_until(lambda: len(read_topic(bootstrap, topic)) >= 100, 30,
                   "no new transactions reached the restarted broker")
        producer.send_signal(signal.SIGTERM)
        producer.wait(timeout=60)
        stderr = output.rest()
        records = read_topic(bootstrap, topic)
        partitions = topic_partition_count({"bootstrap.servers": bootstrap}, topic)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        for command in (first, second):
            if command is not None:
                command.kill()

    assert "Traceback" not in stderr
    assert producer.returncode in (0, 1), stderr  # 1: some messages failed, which the summary counts
    delivered, sent = summary_counts(stderr)
    failed = summary_failures(stderr)
    assert delivered + failed == sent, stderr  # nothing unaccounted for
    restarted = next(line for line in stderr.splitlines() if "broker restarted" in line)
    assert re.search(r"[\d,]+ messages failed", restarted) and "producing again" in restarted, restarted
    assert "broker restarts: 1" in stderr

    assert partitions == 6  # not Tansu's default 4
    ids = [json.loads(value)["transactionId"] for _, _, value in records]
    assert len(ids) == len(set(ids)), "a transaction arrived twice"
    first_seen: dict[str, Transaction] = {}
    for partition, key, value in records:
        tx = parse_transaction(value)
        assert isinstance(tx, Transaction), tx
        assert partition == murmur2_partition(key, 6)
        first_seen.setdefault(tx.customer_id, tx)
    # The new topic starts every customer with an opening deposit again, as a new world must.
    assert {tx.description for tx in first_seen.values()} == {"Depot initial"}


def test_a_frozen_broker_pauses_the_generator_and_nothing_is_lost_when_it_thaws(tmp_path, unique):
    """SIGSTOP/SIGCONT: the same broker comes back; librdkafka resends, nothing fails, nothing doubles."""
    frozen = TansuBroker(log_path=tmp_path / "tansu.log").start(timeout=30)
    topic = unique("produce-frozen-")
    producer = start_produce(frozen.bootstrap, topic, "--rate", "200", "--seed", "4")
    output = StderrLines(producer)
    try:
        wait_for_a_message(frozen.bootstrap, topic)
        os.kill(frozen.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            wait_until(lambda: "broker unreachable" in output.text(), 30,
                       f"the generator never noticed the broker stopped answering: {output.text()}")
        finally:
            os.kill(frozen.pid, signal.SIGCONT)  # type: ignore[arg-type]
        wait_until(lambda: "broker answers again" in output.text(), 30,
                   f"the generator never noticed the broker is back: {output.text()}")
        producer.send_signal(signal.SIGTERM)
        producer.wait(timeout=60)
        stderr = output.rest()
        records = read_topic(frozen.bootstrap, topic)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        frozen.stop()

    assert producer.returncode == 0, stderr
    delivered, sent = summary_counts(stderr)
    assert delivered == sent > 0 and summary_failures(stderr) == 0, stderr
    assert "broker restarted" not in stderr
    ids = [json.loads(value)["transactionId"] for _, _, value in records]
    assert len(ids) == len(set(ids)) == delivered
