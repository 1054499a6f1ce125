"""The local brokers: the Python API, `balance-tui broker` as a real process, and `down`.

The command tests run `python -m balance_tui broker --engine E` as a subprocess, each with
its own broker, for each engine of the session (tansu and kafka); everything else uses the
session `broker` fixture.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from balance_tui.errors import BrokerUnreachable, UserError
from balance_tui.kafka import admin
from balance_tui.kafka.brokers.process import BrokerProcess, pid_file, write_pid_file
from balance_tui.kafka.brokers.tansu import TansuBroker, tansu_binary
from tests.conftest import KAFKA_TEST_OPTIONS
from tests.helpers import free_port, wait_until
from tests.integration.broker_commands import (
    CLI,
    ENGINE_NAMES,
    BrokerCommand,
    alive,
    engine_flags,
)

pytestmark = pytest.mark.broker

TOPIC = "banking.transactions"  # the default settings.topic the command creates


@pytest.fixture
def broker_command(engine: str, tmp_path: Path) -> Iterator[Callable[..., BrokerCommand]]:
    """Start `balance-tui broker --engine E ARGS` subprocesses; whatever is left is killed at teardown."""
    started: list[BrokerCommand] = []

    def start(*args: str) -> BrokerCommand:
        command = BrokerCommand(engine, *engine_flags(engine, tmp_path), *args)
        started.append(command)
        return command

    yield start
    for command in started:
        command.kill()
        if command.child_pid:
            wait_until(lambda c=command: not alive(c.child_pid), 20, "the broker outlived the test")


@pytest.fixture
def make_local_broker(engine: str, tmp_path: Path) -> Callable[..., BrokerProcess]:
    """`make_local_broker(port=0, log_path=None)`: an unstarted broker of the engine (Kafka: own data dir)."""

    def make(port: int = 0, log_path: Path | None = None, data_dir: Path | None = None) -> BrokerProcess:
        if engine == "kafka":
            from balance_tui.kafka.brokers.apache import KafkaBroker

            return KafkaBroker(port, log_path=log_path, data_dir=data_dir or tmp_path / f"kafka-{port}",
                               **KAFKA_TEST_OPTIONS)  # type: ignore[arg-type]
        return TansuBroker(port, log_path=log_path)

    return make


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False)


def local(broker: object) -> BrokerProcess:
    if not isinstance(broker, BrokerProcess):
        pytest.skip("needs a broker started by the tests, not BALANCE_TUI_TEST_BOOTSTRAP")
    return broker


def round_trip(bootstrap: str, topic: str, partition: int = 0) -> bytes:
    """Produce one record to `partition` and read it back with an assigned consumer (no group join)."""
    value = os.urandom(8).hex().encode()
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"customer-1", value=value, partition=partition)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "round-trip", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])

        def received() -> bytes | None:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None and message.value() == value:
                return message.value()
            return None

        return wait_until(received, 15, f"record not consumed back from {topic}[{partition}]")
    finally:
        consumer.close()


# -- the Python API ---------------------------------------------------------------------------


def test_tansu_binary_is_executable() -> None:
    path = tansu_binary()
    assert path.is_file() and os.access(path, os.X_OK)


def test_local_broker_lifecycle(engine: str, make_local_broker: Callable[..., BrokerProcess],
                                tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    with make_local_broker(log_path=log) as broker:
        assert broker.port > 0 and broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.process is not None and broker.process.poll() is None
        assert admin.broker_answers(broker.client_config())
        assert admin.cluster_id(broker.client_config()) == broker.cluster_id
        text = log.read_text()
        assert ("tansu" in text) if engine == "tansu" else ("Kafka Server started" in text)
        process = broker.process
    assert process.poll() is not None
    assert not admin.broker_answers({"bootstrap.servers": broker.bootstrap}, timeout=0.5)
    broker.stop()  # idempotent


def test_local_broker_on_a_busy_port_fails_in_one_line(make_local_broker: Callable[..., BrokerProcess]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} .*already in use"):
            make_local_broker(port=port).start()


def test_admin_helpers(client_config: dict[str, str], unique: Callable[[str], str]) -> None:
    topic = unique("admin-")
    assert admin.broker_answers(client_config)
    admin.wait_for_broker(client_config, timeout=5)
    assert admin.topic_partition_count(client_config, topic) is None
    # Asking about a missing topic must not create it (Tansu auto-creates on named metadata requests).
    assert admin.topic_partition_count(client_config, topic) is None
    assert admin.ensure_topic(client_config, topic, 3) is True
    assert admin.topic_partition_count(client_config, topic) == 3
    assert admin.ensure_topic(client_config, topic, 5) is False  # existing topics are left alone
    assert admin.topic_partition_count(client_config, topic) == 3


def test_ensure_topic_with_config(client_config: dict[str, str], unique: Callable[[str], str]) -> None:
    topic = unique("compact-")
    assert admin.ensure_topic(client_config, topic, 2, config={"cleanup.policy": "compact"})
    assert admin.topic_partition_count(client_config, topic) == 2


def test_nothing_listening_is_unreachable() -> None:
    config = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}
    assert not admin.broker_answers(config, timeout=0.5)
    with pytest.raises(BrokerUnreachable, match=r"no Kafka broker answers at 127\.0\.0\.1:\d+ within 0\.5s"):
        admin.wait_for_broker(config, timeout=0.5)


# -- `balance-tui broker` as a real process -----------------------------------------------------


def test_broker_command_serves_kafka_until_sigterm(broker_command: Callable[..., BrokerCommand]) -> None:
    command = broker_command("--port", "0").wait_ready()
    config = {"bootstrap.servers": command.bootstrap}
    assert admin.topic_partition_count(config, TOPIC) == 6
    round_trip(command.bootstrap, TOPIC, partition=5)

    command.process.send_signal(signal.SIGTERM)
    code, rest, err = command.finish()
    assert code == 0, err
    assert rest == ""  # exactly one stdout line in the whole run
    assert "Traceback" not in err
    wait_until(lambda: not alive(command.child_pid), 20, "the broker still runs after SIGTERM")
    assert not pid_file("broker", command.port).exists()


def test_broker_command_then_produce_command_leave_1000_keyed_messages(
    broker_command: Callable[..., BrokerCommand],
) -> None:
    """The foundation's end to end: `balance-tui broker --port P`, then `balance-tui produce ... --count 1000`."""
    import json

    from balance_tui.kafka.reader import read_partitions

    command = broker_command("--port", str(free_port())).wait_ready()
    try:
        result = run_cli("produce", "--bootstrap-servers", command.bootstrap, "--count", "1000", "--rate", "0",
                         timeout=120)
        assert result.returncode == 0, result.stderr
        config = {"bootstrap.servers": command.bootstrap}
        assert admin.topic_partition_count(config, TOPIC) == 6
        records = list(read_partitions(config, TOPIC, timeout=60))
        assert len(records) == 1000
        partitions_of: dict[str, set[int]] = {}
        for partition, _offset, key, value in records:
            customer = json.loads(value)["customerId"]
            assert key == customer.encode()
            partitions_of.setdefault(customer, set()).add(partition)
        assert all(len(found) == 1 for found in partitions_of.values()), partitions_of
        assert len({p for found in partitions_of.values() for p in found}) > 1  # spread, not all on one
    finally:
        command.process.send_signal(signal.SIGTERM)
        command.finish()


def test_sigkill_leaves_no_orphan_and_down_clears_the_stale_record(
    broker_command: Callable[..., BrokerCommand],
) -> None:
    command = broker_command("--port", "0").wait_ready()
    command.process.kill()
    command.process.wait(timeout=10)
    wait_until(lambda: not alive(command.child_pid), 10, "the broker survived the SIGKILL of its parent")
    assert pid_file("broker", command.port).exists()  # nobody was left to remove it

    result = run_cli("down", "--port", str(command.port))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "nothing to stop\n"
    assert not pid_file("broker", command.port).exists()


def test_down_stops_a_recorded_broker(broker_command: Callable[..., BrokerCommand]) -> None:
    command = broker_command("--port", "0").wait_ready()
    other_port = free_port()
    result = run_cli("down", "--port", str(other_port))
    assert (result.returncode, result.stdout) == (0, "nothing to stop\n")
    assert command.process.poll() is None

    result = run_cli("down", "--port", str(command.port))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"stopped {ENGINE_NAMES[command.engine]} broker on port {command.port} "
                             f"(pid {command.process.pid}, {command.engine} pid {command.child_pid})\n")
    code, _, err = command.finish()
    assert code == 0, err  # down sends SIGTERM: an orderly stop
    assert not alive(command.child_pid)
    assert not pid_file("broker", command.port).exists()


def test_start_stops_a_stale_broker_left_on_its_port(engine: str, broker_command: Callable[..., BrokerCommand],
                                                      make_local_broker: Callable[..., BrokerProcess],
                                                      tmp_path: Path) -> None:
    # A broker whose `balance-tui broker` died without PDEATHSIG (e.g. on macOS).
    orphan = make_local_broker(port=free_port(), log_path=tmp_path / "orphan.log",
                               data_dir=tmp_path / "orphan-data").start()
    try:
        write_pid_file("broker", orphan.port, pid=_reaped_pid(), engine=engine, engine_name=orphan.display_name,
                       **{f"{engine}_pid": orphan.pid})
        command = broker_command("--port", str(orphan.port)).wait_ready(timeout=60)
        assert orphan.process is not None
        orphan.process.wait(timeout=20)  # stopped by the new command
        assert command.port == orphan.port and command.child_pid != orphan.pid
        round_trip(command.bootstrap, TOPIC)
    finally:
        orphan.stop()
    command.process.send_signal(signal.SIGINT)
    code, _, err = command.finish()
    assert code == 0
    assert f"stopped a stale {ENGINE_NAMES[engine]} broker on port {orphan.port}" in err


def _reaped_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_port_taken_by_something_else(broker_command: Callable[..., BrokerCommand]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code, out, err = broker_command("--port", str(port)).finish(timeout=60)
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"port {port}" in lines[0] and "not a Kafka broker" in lines[0]


def test_port_served_by_kafka(broker: object) -> None:
    port = local(broker).port
    result = run_cli("broker", "--port", str(port))
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already served by a Kafka broker" in lines[0] and "--reuse" in lines[0]


def test_reuse_ensures_the_topic_prints_the_line_and_exits(broker: object, unique: Callable[[str], str]) -> None:
    port = local(broker).port
    topic = unique("reuse-")
    result = run_cli("broker", "--port", str(port), "--reuse", "--topic", topic, "--partitions", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"bootstrap: 127.0.0.1:{port}\n"
    assert admin.topic_partition_count({"bootstrap.servers": f"127.0.0.1:{port}"}, topic) == 4


@pytest.mark.parametrize("protocol, says", [
    ("sasl_plaintext", "does not offer SASL SCRAM-SHA-512 on this listener"),
    ("ssl", "does not accept security.protocol=ssl: its listener does not speak TLS"),
    ("sasl_ssl", "does not accept security.protocol=sasl_ssl: its listener does not speak TLS"),
])
def test_security_settings_the_listener_does_not_speak_are_one_line(broker: object, protocol: str, says: str) -> None:
    """Not "no broker answers": what is wrong, without the password (issue 9, defect 9)."""
    result = subprocess.run([*CLI, "--headless", "--bootstrap-servers", broker.bootstrap,  # type: ignore[attr-defined]
                             "--security-protocol", protocol, "--sasl-mechanism", "SCRAM-SHA-512",
                             "--sasl-username", "alice", "--connect-timeout", "5"],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
                            env={**os.environ, "BALANCE_TUI_SASL_PASSWORD": "pw-never-shown-7"})
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "pw-never-shown-7" not in result.stderr + result.stdout
