"""`balance-tui demo` starts broker and traffic detached; `balance-tui down` stops them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, TopicPartition

from balance_tui.kafka.admin import broker_answers
from balance_tui.kafka.brokers.distribution import KafkaUnavailable, locate_kafka
from balance_tui.kafka.brokers.process import is_our_process, pid_file, read_pid_file
from tests.conftest import ENGINES
from tests.helpers import free_port, wait_until


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "balance_tui", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                          check=False)


def messages_on(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "peek", "enable.auto.commit": False})
    try:
        total = 0
        for partition in range(6):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)
            total += max(0, high - low)
        return total
    finally:
        consumer.close()


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "external"] or ["tansu"])
def test_demo_starts_detached_broker_and_traffic_then_down_stops_them(engine):
    if engine == "kafka":
        try:
            locate_kafka(resolve=False)
        except KafkaUnavailable as error:
            pytest.skip(f"Apache Kafka tests skipped: {error}")
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    try:
        result = run_cli("demo", "--bootstrap-servers", bootstrap, "--engine", engine,
                         env={"BALANCE_TUI_DEMO_NO_DASHBOARD": "1"})
        assert result.returncode == 0, result.stderr
        name = {"kafka": "Apache Kafka", "tansu": "Tansu"}[engine]
        assert re.search(rf"started {name} [0-9.]+ broker on 127\.0\.0\.1:{port} \(pid \d+\): ", result.stderr), \
            result.stderr
        assert "started traffic generator, profile normal" in result.stderr
        # The demo process is gone; what it started keeps running for the other terminals.
        assert broker_answers({"bootstrap.servers": bootstrap}, timeout=5)
        producer = read_pid_file(pid_file("producer", port))
        assert producer is not None and is_our_process(producer["pid"])
        # Traffic flows (ListOffsets may under-count on Tansu, but never reports growth that is not there).
        wait_until(lambda: messages_on(bootstrap, "banking.transactions") > 0, 30, "no traffic arrived")

        again = run_cli("demo", "--bootstrap-servers", bootstrap, "--engine", engine,
                        env={"BALANCE_TUI_DEMO_NO_DASHBOARD": "1"})
        assert again.returncode == 0, again.stderr
        assert "started" not in again.stderr, "a second demo must reuse the running broker and generator"
    finally:
        down = run_cli("down", "--port", str(port))
    assert down.returncode == 0
    assert "broker" in down.stdout and "producer" in down.stdout
    wait_until(lambda: not broker_answers({"bootstrap.servers": bootstrap}, timeout=1), 15, "broker still answers")


def test_demo_against_an_unreachable_remote_cluster_is_a_one_line_error():
    result = run_cli("demo", "--bootstrap-servers", "kafka.invalid:9092", env={"BALANCE_TUI_DEMO_NO_DASHBOARD": "1"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "kafka.invalid:9092" in result.stderr


@pytest.mark.parametrize("command", [["--headless"], []])
def test_dashboard_with_no_broker_is_a_one_line_error(command):
    port = free_port()
    result = run_cli(*command, "--bootstrap-servers", f"127.0.0.1:{port}", "--connect-timeout", "2")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in result.stderr
