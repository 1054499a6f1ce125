"""Provides a single-node Apache Kafka in KRaft mode (combined broker and controller), run as a child.

The storage is formatted once per data directory with Kafka's own storage tool, so data
survives a restart of the broker (unlike Tansu's memory storage); `fresh=True` wipes it
first. Kafka's own defaults stay as they are where users should see them
(`group.initial.rebalance.delay.ms` is 3 s unless asked otherwise); what is changed is
what one node on a laptop needs: replication factors of 1, fewer threads, a bounded
heap, and lower *minimum* session timeouts so that a group may ask for the lab's short
ones (a group's own settings still decide). docs/broker.md lists every property.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from balance_tui import locations
from balance_tui.errors import UserError
from balance_tui.kafka.brokers.distribution import (
    DEFAULT_KAFKA_VERSION,
    SERVER_CLASS,
    TOOL_CLASSES,
    KafkaDistribution,
    locate_kafka,
    packaged_file,
)
from balance_tui.kafka.brokers.process import (
    OUR_KAFKA_MARKER,
    BrokerProcess,
    free_port,
    log_tail,
)

#: A broker, a traffic generator and eight dashboards on 2 cores and 24 GiB: half a GiB is plenty.
BROKER_HEAP = ("-Xms256m", "-Xmx512m")
BROKER_JVM_OPTIONS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                      "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true")

#: What differs from Kafka's defaults, and why (docs/broker.md has the table).
SINGLE_NODE_PROPERTIES: dict[str, str] = {
    # One node: every internal topic has one replica.
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # Two cores: fewer threads than a server's defaults (3 network, 8 I/O).
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    # balance-tui creates its topics explicitly, with the partition count it needs.
    "auto.create.topics.enable": "false",
    # Minimums only, so a group may use the lab's 10 s (or the tests' 2 s) session timeout; the
    # defaults a member gets when it asks for nothing stay Kafka's (45 s for KIP-848 groups).
    "group.min.session.timeout.ms": "1000",
    "group.consumer.min.session.timeout.ms": "1000",
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.share.min.session.timeout.ms": "1000",
    "group.share.min.heartbeat.interval.ms": "100",
}


@dataclass(frozen=True)
class Listener:
    """An extra listener (SASL, TLS) beside the PLAINTEXT one, on 127.0.0.1:`port` (0: a free one).

    `properties` are listener-scoped settings without the `listener.name.<name>.` prefix.
    """

    name: str
    protocol: str
    port: int = 0
    properties: Mapping[str, str] = field(default_factory=dict)


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64 without padding.

    Never one that starts with `-` (1 in 64 do): the storage tool would take `-t -xyz...` for a
    flag and refuse to format ("expected one argument"). Kafka's own `Uuid.randomUuid` skips them too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def default_data_dir(port: int) -> Path:
    """`<state dir>/kafka/<port>`: one broker's data per port, kept between runs."""
    return locations.state_dir() / "kafka" / str(port)


class KafkaBroker(BrokerProcess):
    """Apache Kafka on `host:port`, data in `data_dir`, its server log in `data_dir/server.log`."""

    engine = "kafka"
    display_name = "Apache Kafka"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None, *,
                 distribution: KafkaDistribution | None = None, version: str = DEFAULT_KAFKA_VERSION,
                 kafka_home: Path | None = None, data_dir: Path | None = None, fresh: bool = False,
                 initial_rebalance_delay_ms: int | None = None, listeners: Sequence[Listener] = (),
                 properties: Mapping[str, str] | None = None, scram_users: Sequence[str] = (),
                 die_with_parent: bool = True) -> None:
        """`log_path` is Kafka's server log; `scram_users` are `--add-scram` arguments for the format."""
        super().__init__(port, host, None, die_with_parent=die_with_parent)
        self.distribution = distribution or locate_kafka(version, kafka_home)
        self.requested_data_dir = data_dir
        self.data_dir: Path | None = data_dir
        self.fresh = fresh
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.extra_listeners = list(listeners)
        self.properties = dict(properties or {})
        self.scram_users = list(scram_users)
        self.server_log_path = log_path
        self.controller_port = 0
        #: Extra listener name -> the port it got.
        self.listener_ports: dict[str, int] = {}
        self.formatted_now = False

    @property
    def version(self) -> str:
        return self.distribution.version

    def listener_bootstrap(self, name: str) -> str:
        """`127.0.0.1:<port>` of an extra listener (valid once started)."""
        return f"{self.host}:{self.listener_ports[name]}"

    @property
    def kraft_dir(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "kraft"

    @property
    def properties_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "server.properties"

    # -- BrokerProcess ---------------------------------------------------------------------

    def _prepare(self) -> None:
        self.data_dir = (self.requested_data_dir or default_data_dir(self.port)).expanduser().resolve()
        if self.fresh and not self.formatted_now and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.server_log_path is None:
            self.server_log_path = self.data_dir / "server.log"
        self.controller_port = free_port(self.host)
        self.listener_ports = {listener.name: listener.port or free_port(self.host)
                               for listener in self.extra_listeners}
        self.cluster_id = self._existing_cluster_id() or new_cluster_id()
        self._write_properties()
        if not (self.kraft_dir / "meta.properties").is_file():
            self._format()

    def _default_log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "stdout.log"  # what the JVM itself prints; Kafka logs to server.log

    def _command(self) -> list[str]:
        # The main class, also for a distribution: its kafka-server-start.sh would pick its own heap
        # and logging, and ours are what keeps a laptop's broker small and its log bounded.
        assert self.server_log_path is not None
        return self.distribution.java_command(
            SERVER_CLASS, [str(self.properties_path)], jvm_options=(*BROKER_HEAP, *BROKER_JVM_OPTIONS),
            log_config=packaged_file("log4j2-broker.properties"),
            properties={"balance_tui.log_file": str(self.server_log_path),
                        "kafka.logs.dir": str(self.server_log_path.parent)})

    def _environment(self) -> dict[str, str]:
        return self.distribution.tool_environment()

    def _port_taken_in(self, text: str) -> bool:
        return "Address already in use" in text or "BindException" in text

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the JVM's output, then Kafka's last error (with its causes) or last log lines."""
        parts = [log_tail(self.log_path, lines),
                 _last_error(self.server_log_path) or log_tail(self.server_log_path, lines)]
        return " | ".join(part for part in parts if part)

    # -- storage ---------------------------------------------------------------------------

    def _existing_cluster_id(self) -> str | None:
        meta = self.kraft_dir / "meta.properties"
        try:
            for line in meta.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "cluster.id":
                    return value.strip()
        except OSError:
            return None
        return None

    def _format(self) -> None:
        """Kafka's storage tool, once per data directory: `format -t <cluster id> -c <config>`."""
        args = ["format", "-t", self.cluster_id, "-c", str(self.properties_path)]
        for user in self.scram_users:
            args += ["--add-scram", user]
        command = self.distribution.java_command(TOOL_CLASSES["storage"], args,
                                                 log_config=packaged_file("log4j2-tools.properties"))
        result = subprocess.run(command, capture_output=True, text=True, env=self._environment(), timeout=120,
                                check=False, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise UserError(f"Kafka's storage tool could not format {self.kraft_dir}: "
                            f"{detail[-1] if detail else f'exit code {result.returncode}'}")
        self.formatted_now = True

    def _write_properties(self) -> None:
        assert self.data_dir is not None
        host = self.host
        listeners = [f"PLAINTEXT://{host}:{self.port}", f"CONTROLLER://{host}:{self.controller_port}"]
        advertised = [f"PLAINTEXT://{host}:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        scoped: dict[str, str] = {}
        for listener in self.extra_listeners:
            port = self.listener_ports[listener.name]
            listeners.append(f"{listener.name}://{host}:{port}")
            advertised.append(f"{listener.name}://{host}:{port}")
            protocols.append(f"{listener.name}:{listener.protocol}")
            for key, value in listener.properties.items():
                scoped[f"listener.name.{listener.name.lower()}.{key}"] = value
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static voter set: the controller may move to another port between two starts.
            "controller.quorum.voters": f"1@{host}:{self.controller_port}",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(self.kraft_dir),
            **SINGLE_NODE_PROPERTIES,
            **({"group.initial.rebalance.delay.ms": str(self.initial_rebalance_delay_ms)}
               if self.initial_rebalance_delay_ms is not None else {}),
            **scoped,
            **self.properties,
        }
        lines = [f"{OUR_KAFKA_MARKER} for a single-node Apache Kafka {self.version} (rewritten at each start)"]
        lines += [f"{key}={_escape(value)}" for key, value in settings.items()]
        tmp = self.properties_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(self.properties_path)


def _last_error(path: Path | None) -> str:
    """The first ERROR of the broker's last run in its log, with the `Caused by` lines that explain it."""
    try:
        text = path.read_text(errors="replace")[-500_000:] if path is not None else ""
    except OSError:
        return ""
    lines = text.splitlines()
    # Each start logs its configuration first; the log file is appended to across starts.
    starts = [i for i, line in enumerate(lines) if "KafkaConfig values:" in line]
    run = lines[starts[-1]:] if starts else lines
    first = next((i for i, line in enumerate(run) if "] ERROR " in line or "] FATAL " in line), None)
    if first is None:
        return ""
    detail = [run[first].strip()]
    if first + 1 < len(run) and not run[first + 1].startswith(("\tat", "Caused by:", "[")):
        detail.append(run[first + 1].strip())
    detail += [line.strip() for line in run[first + 1:first + 300] if line.startswith("Caused by:")][-2:]
    return " | ".join(detail)


def _escape(value: str) -> str:
    """A Java properties value: backslashes doubled (Windows paths), line breaks written as \\n."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")
