"""Provides the consumer's configuration for each protocol, and what librdkafka tells about the membership.

Classic groups (range, roundrobin, cooperative-sticky) take the member's own assignor, session
and heartbeat settings; KIP-848's consumer protocol takes the broker's assignor, and its
session and heartbeat timeouts are the group's, held by the broker (set with
`set_consumer_group_timeouts`). Static membership adds `group.instance.id` to either.
"""

from __future__ import annotations

import gc
import logging
import secrets
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException

from balance_tui.config import CONSUMER_PROTOCOL, Settings

#: Strategies whose rebalances hand partitions over one by one, without stopping the group.
INCREMENTAL_STRATEGIES = frozenset({"cooperative-sticky", CONSUMER_PROTOCOL})


def tune_garbage_collector() -> None:
    """Process-wide GC settings for a long-running consumer (measured +4%, docs/performance.md).

    The ledger keeps many long-lived objects: collect the young generation less often and
    keep start-up objects out of full collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def make_consumer_id() -> str:
    """`balance-worker-<host>-<8 hex>`, as the lab names its workers."""
    return f"balance-worker-{socket.gethostname()}-{secrets.token_hex(4)}"


def generation_from_metadata(metadata: bytes) -> int | None:
    """Read the generation id (the member epoch under KIP-848) from librdkafka's group metadata.

    confluent-kafka hands it over as opaque bytes: magic `CGMDv2:`, then the
    generation id as a native int32.
    """
    if len(metadata) >= 11 and metadata[:7] == b"CGMDv2:":
        (generation,) = struct.unpack("=i", metadata[7:11])
        return generation if generation >= 0 else None
    return None


def membership_of(consumer: Consumer | None) -> tuple[int | None, str | None]:
    """(generation, member id) of a consumer in its group, None for what librdkafka cannot tell now."""
    if consumer is None:
        return None, None
    generation = member_id = None
    try:
        generation = generation_from_metadata(consumer.consumer_group_metadata())
    except (KafkaException, RuntimeError, TypeError, struct.error):
        pass
    try:
        member_id = consumer.memberid() or None
    except (KafkaException, RuntimeError):
        pass
    return generation, member_id


class LibrdkafkaLog(logging.Handler):
    """Keeps librdkafka's own log lines off the terminal (they would tear the UI)."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: deque[str] = deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.recent.append(record.getMessage())


def quiet_logger(consumer_id: str) -> logging.Logger:
    """A logger for librdkafka that keeps its last lines in memory and prints nothing."""
    logger = logging.getLogger(f"balance_tui.librdkafka.{consumer_id}")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(LibrdkafkaLog())
    logger.setLevel(logging.INFO)
    return logger


def consumer_config(settings: Settings, strategy: str, consumer_id: str, logger: logging.Logger,
                    callbacks: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """The librdkafka configuration of this member's consumer (`callbacks`: stats_cb, error_cb, on_commit)."""
    config: dict[str, Any] = {
        "group.id": settings.group,
        "client.id": consumer_id,
        "auto.offset.reset": "earliest",
        # Committed by hand, only once the changelog records they cover are acknowledged.
        "enable.auto.commit": False,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "partition.assignment.strategy": strategy,
        **({"group.instance.id": settings.group_instance_id} if settings.group_instance_id else {}),
        # Keep a deep local prefetch (still capped by queued.max.messages.kbytes, 64 MB):
        # measured on Tansu, the default 100,000 halves throughput when processing is busy.
        "queued.min.messages": 1_000_000,
        "statistics.interval.ms": 1000,
        **callbacks,
        "logger": logger,
    }
    config.update(settings.client_config())
    if strategy == CONSUMER_PROTOCOL:
        # KIP-848: the broker assigns, and session and heartbeat timeouts are the group's.
        for member_side in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
            config.pop(member_side, None)
        config["group.protocol"] = "consumer"
        if settings.remote_assignor:
            config["group.remote.assignor"] = settings.remote_assignor
    return config
