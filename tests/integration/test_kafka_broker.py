"""Apache Kafka started by balance-tui: data that survives a restart, Kafka's own tools, and the
one-line explanations when Kafka cannot run (no Java, no Maven, no network, a bad Kafka home)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from balance_tui.kafka import admin
from balance_tui.kafka.brokers.distribution import KafkaUnavailable, cached_jars, find_java, locate_kafka
from tests.conftest import KAFKA_TEST_OPTIONS
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

CLI = [sys.executable, "-m", "balance_tui"]


@pytest.fixture(scope="module")
def kafka_jars() -> Path:
    """The cached jars of the default version (the session broker resolved them), or skip."""
    try:
        distribution = locate_kafka(resolve=False)
    except KafkaUnavailable as error:
        pytest.skip(f"Apache Kafka tests skipped: {error}")
    return distribution.libs


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env=env if env is not None else dict(os.environ), stdin=subprocess.DEVNULL)


def bare_environment(tmp_path: Path, *programs: Path) -> dict[str, str]:
    """The test's environment with a PATH holding only `programs`, no JAVA_HOME/KAFKA_HOME, its own cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in programs:
        (bin_dir / program.name).symlink_to(program)
    env = {key: value for key, value in os.environ.items() if key not in ("JAVA_HOME", "KAFKA_HOME")}
    env["PATH"] = str(bin_dir)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def produce_one(bootstrap: str, topic: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=value, partition=0)
    assert producer.flush(15) == 0


def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[bytes] = []
    try:
        def enough() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
            return len(values) >= expected

        wait_until(enough, 30, f"fewer than {expected} records read back from {topic}")
    finally:
        consumer.close()
    return values


# -- the broker's data -------------------------------------------------------------------------


def test_data_survives_a_restart_and_fresh_starts_empty(kafka_jars: Path, tmp_path: Path) -> None:
    from balance_tui.kafka.brokers.apache import KafkaBroker

    data = tmp_path / "data"
    first = KafkaBroker(data_dir=data, **KAFKA_TEST_OPTIONS).start(timeout=60)  # type: ignore[arg-type]
    try:
        admin.ensure_topic(first.client_config(), "kept", 1)
        produce_one(first.bootstrap, "kept", b"before the restart")
        cluster = first.cluster_id
    finally:
        first.stop()
    assert (data / "kraft" / "meta.properties").is_file()

    again = KafkaBroker(data_dir=data, **KAFKA_TEST_OPTIONS).start(timeout=60)  # type: ignore[arg-type]
    try:
        assert again.cluster_id == cluster and not again.formatted_now  # formatted once, not at each start
        assert admin.topic_partition_count(again.client_config(), "kept") == 1
        assert read_all(again.bootstrap, "kept", 1) == [b"before the restart"]
    finally:
        again.stop()

    fresh = KafkaBroker(data_dir=data, fresh=True, **KAFKA_TEST_OPTIONS).start(timeout=60)  # type: ignore[arg-type]
    try:
        assert fresh.cluster_id != cluster and fresh.formatted_now
        assert admin.topic_partition_count(fresh.client_config(), "kept") is None
    finally:
        fresh.stop()


def test_a_kafka_home_runs_the_broker_from_its_libs(kafka_jars: Path, tmp_path: Path) -> None:
    """A distribution laid out as the lab's /opt/kafka (bin/, libs/) is used instead of the cache."""
    from balance_tui.kafka.brokers.apache import KafkaBroker

    home = tmp_path / "kafka_2.13-4.4.0"
    (home / "bin").mkdir(parents=True)
    (home / "libs").symlink_to(kafka_jars)
    broker = KafkaBroker(kafka_home=home, data_dir=tmp_path / "data", **KAFKA_TEST_OPTIONS)  # type: ignore[arg-type]
    assert broker.distribution.home == home.resolve() and broker.version == kafka_jars.parent.name
    with broker:
        assert admin.broker_answers(broker.client_config())


# -- Kafka's own tools -------------------------------------------------------------------------


def test_kafka_tools_run_as_the_lab_prints_them(kafka_broker: object, unique: Callable[[str], str]) -> None:
    bootstrap = kafka_broker.bootstrap  # type: ignore[attr-defined]
    topic = unique("tools-")
    admin.ensure_topic({"bootstrap.servers": bootstrap}, topic, 3)
    for name in ("topics", "kafka-topics", "kafka-topics.sh"):
        result = run_cli("kafka", name, "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
        assert result.returncode == 0, result.stderr
        assert f"Topic: {topic}" in result.stdout and "PartitionCount: 3" in result.stdout
    listed = run_cli("kafka", "--list")
    assert listed.returncode == 0 and "consumer-groups" in listed.stdout.split()


def test_an_unknown_tool_is_one_line(kafka_jars: Path) -> None:
    result = run_cli("kafka", "no-such-tool")
    assert result.returncode != 0
    assert "unknown Kafka tool 'no-such-tool'" in one_line(result)


# -- when Kafka cannot run: one line, and `auto` falls back to Tansu ----------------------------


def test_without_java_kafka_is_refused_and_auto_picks_tansu(tmp_path: Path) -> None:
    env = bare_environment(tmp_path)
    refused = run_cli("broker", "--engine", "kafka", "--port", "0", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    line = one_line(refused)
    assert "Java 17" in line and "no `java` was found" in line and "--engine tansu" in line

    chosen = run_cli("broker", "--engine", "auto", "--prepare", env=env)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.startswith("tansu: Tansu ") and "Apache Kafka cannot run here" in chosen.stdout


def test_without_maven_the_jars_cannot_be_fetched(tmp_path: Path) -> None:
    try:
        java = find_java()
    except KafkaUnavailable as error:
        pytest.skip(str(error))
    env = bare_environment(tmp_path, java.path.resolve())
    result = run_cli("broker", "--engine", "kafka", "--prepare", env=env)
    assert result.returncode == 2
    line = [text for text in result.stderr.splitlines() if "error:" in text]
    assert len(line) == 1 and "Maven (`mvn`) is needed once" in line[0] and "KAFKA_HOME" in line[0], result.stderr


def test_a_maven_that_cannot_reach_its_repository_is_one_line(tmp_path: Path) -> None:
    try:
        java = find_java()
    except KafkaUnavailable as error:
        pytest.skip(str(error))
    fake = tmp_path / "fake-mvn"
    fake.mkdir()
    mvn = fake / "mvn"
    mvn.write_text("#!/bin/sh\necho '[INFO] Scanning for projects...'\n"
                   "echo '[ERROR] Failed to execute goal on project x: Could not resolve dependencies for project "
                   "x: Could not transfer artifact org.apache.kafka:kafka_2.13:pom:4.4.0 from/to central "
                   "(https://repository.invalid/maven2): Unknown host repository.invalid'\nexit 1\n")
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    env = bare_environment(tmp_path, java.path.resolve(), mvn)
    result = run_cli("broker", "--engine", "kafka", "--prepare", env=env)
    assert result.returncode == 2
    errors = [text for text in result.stderr.splitlines() if "error:" in text]
    assert len(errors) == 1, result.stderr
    assert "Maven could not fetch Apache Kafka 4.4.0 (no network?)" in errors[0]
    assert "Could not transfer artifact" in errors[0] and "https://" not in errors[0]
    assert cached_jars("4.4.0") is None or "XDG_CACHE_HOME" in env  # nothing half-resolved was kept
    assert not any((tmp_path / "cache").rglob("libs.partial-*"))


def test_a_kafka_home_that_is_not_a_distribution_is_one_line(tmp_path: Path) -> None:
    try:
        find_java()
    except KafkaUnavailable as error:
        pytest.skip(str(error))
    result = run_cli("broker", "--engine", "kafka", "--kafka-home", str(tmp_path), "--prepare")
    assert result.returncode == 2
    assert "is not an Apache Kafka distribution" in one_line(result)
