"""Admin helpers: thin functions on confluent_kafka's AdminClient.

Every helper takes the librdkafka base properties (`Settings.client_config()`), so
security settings apply. librdkafka's own log lines are routed to a quiet Python
logger: a refused connection must not print half a dozen lines on the terminal.

Topic metadata is always read with a full listing, never `list_topics(topic=...)`:
a metadata request naming a topic makes Tansu (and Kafka brokers with
`auto.create.topics.enable`) create it with the broker's default partition count.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from balance_tui.config import is_secret_property
from balance_tui.core.broker_profile import BrokerProfile
from balance_tui.errors import BrokerUnreachable, ConfigError, UserError
from balance_tui.kafka import error_reason

#: librdkafka logs end up here; without a handler configured by the app they are dropped.
RDKAFKA_LOGGER = logging.getLogger("balance_tui.rdkafka")
RDKAFKA_LOGGER.addHandler(logging.NullHandler())
RDKAFKA_LOGGER.propagate = False


def admin_client(client_config: dict[str, str]) -> AdminClient:
    """An AdminClient on the given properties, with librdkafka logging kept off the terminal."""
    config: dict[str, Any] = dict(client_config)
    config.setdefault("logger", RDKAFKA_LOGGER)
    return AdminClient(config)


def check_client_config(client_config: dict[str, str]) -> None:
    """Raise ConfigError in one line if librdkafka refuses these properties.

    Creating a client without bootstrap servers validates every property (unknown names,
    bad enum values, unreadable TLS files) in about a millisecond and connects to nothing.
    """
    config: dict[str, Any] = {key: value for key, value in client_config.items() if key != "bootstrap.servers"}
    config["logger"] = RDKAFKA_LOGGER
    try:
        Producer(config)
    except KafkaException as error:
        reason = error_reason(error).removeprefix("Failed to create producer: ")
        for key, value in client_config.items():
            if value and is_secret_property(key):
                reason = reason.replace(value, "***")
        raise ConfigError(f"librdkafka refused the client configuration: {reason}") from None


def broker_answers(client_config: dict[str, str], timeout: float = 2.0) -> bool:
    """True if a Kafka metadata request gets an answer within `timeout` seconds."""
    try:
        metadata = admin_client(client_config).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def cluster_id(client_config: dict[str, str], timeout: float = 2.0) -> str | None:
    """The cluster id in a metadata answer, or None if no broker answers within `timeout` s."""
    try:
        return admin_client(client_config).list_topics(timeout=timeout).cluster_id
    except KafkaException:
        return None


def wait_for_broker(client_config: dict[str, str], timeout: float) -> None:
    """Block until a broker answers metadata requests; raise BrokerUnreachable after `timeout` s.

    The error says why where librdkafka knows: refused credentials, or a listener that does
    not speak the configured security protocol, rather than only "nothing answers".
    """
    deadline = time.monotonic() + timeout
    seen: list[KafkaError] = []
    config: dict[str, Any] = dict(client_config)
    config["error_cb"] = seen.append
    client = admin_client(config)
    while True:
        remaining = deadline - time.monotonic()
        try:
            # librdkafka keeps reconnecting (with backoff) inside the call, so one call
            # can cover the whole wait; the loop only guards against early failures.
            if client.list_topics(timeout=max(min(remaining, 1.0), 0.1)).brokers:
                return
        except KafkaException:
            pass
        client.poll(0)  # serve error_cb
        refusal = connection_refusal(client_config, seen)
        if refusal is not None:
            raise BrokerUnreachable(refusal)
        if time.monotonic() >= deadline:
            raise BrokerUnreachable(tls_mismatch(client_config) or
                                    f"no Kafka broker answers at {client_config.get('bootstrap.servers')} "
                                    f"within {timeout:g}s")
        time.sleep(0.1)  # the call failed early: do not spin until the deadline


#: librdkafka's words when the security protocol does not match the listener (or a TLS handshake fails).
_PROTOCOL_MISMATCH_HINTS = ("security.protocol", "SSL handshake", "ssl handshake", "wrong version number",
                            "Disconnected while requesting ApiVersion", "Disconnected: verify that security.protocol")


def tls_mismatch(client_config: dict[str, str], timeout: float = 2.0) -> str | None:
    """With security.protocol ssl/sasl_ssl: why TLS fails at the first bootstrap server, if something
    listens there (a plain listener never answers a TLS handshake: librdkafka waits, then says nothing)."""
    import socket
    import ssl

    protocol = client_config.get("security.protocol", "plaintext").lower()
    if protocol not in ("ssl", "sasl_ssl"):
        return None
    where = client_config.get("bootstrap.servers", "").split(",")[0].strip()
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError:
        return None  # nothing listens: "no Kafka broker answers" says it
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only "does it speak TLS at all": librdkafka verifies for real
    try:
        with raw, context.wrap_socket(raw, server_hostname=host.strip("[]")) as tls:
            tls.settimeout(timeout)
    except (OSError, ssl.SSLError) as error:
        detail = "no answer to the TLS handshake" if isinstance(error, TimeoutError) else str(error)
        return (f"the broker at {where} does not accept security.protocol={protocol}: its listener does not "
                f"speak TLS ({detail}); a PLAINTEXT or SASL_PLAINTEXT listener?")
    return None


def connection_refusal(client_config: dict[str, str], errors: list[KafkaError]) -> str | None:
    """One line for an authentication failure or a security protocol mismatch among `errors`, else None."""
    where = client_config.get("bootstrap.servers")
    protocol = client_config.get("security.protocol", "plaintext")
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            if "mechanism handshake failed" in error.str():
                mechanism = client_config.get("sasl.mechanism", "")
                return (f"the broker at {where} does not offer SASL {mechanism} on this listener (not a SASL "
                        f"listener, or another mechanism): {error.str()}")
            return f"authentication failed at {where}: {error.str()}"
    for error in errors:
        text = error.str()
        if error.code() in (KafkaError._SSL, KafkaError._TRANSPORT) and any(
                hint in text for hint in _PROTOCOL_MISMATCH_HINTS):
            if protocol.lower() in ("ssl", "sasl_ssl"):
                return f"the broker at {where} does not accept security.protocol={protocol}: its listener does not " \
                       f"speak TLS ({text})"
            return (f"the broker at {where} does not accept security.protocol={protocol} (a listener of another "
                    f"protocol?): {text}")
    return None


def topic_partition_count(client_config: dict[str, str], topic: str, timeout: float = 5.0) -> int | None:
    """Number of partitions of `topic`, or None if it does not exist."""
    try:
        metadata = admin_client(client_config).list_topics(timeout=timeout)
    except KafkaException as error:
        raise BrokerUnreachable(
            f"no Kafka broker answers at {client_config.get('bootstrap.servers')}: {error_reason(error)}"
        ) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def ensure_topic(
    client_config: dict[str, str],
    topic: str,
    partitions: int,
    config: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Create `topic` unless it exists; True if this call created it.

    An existing topic is left as it is, whatever its partition count. Returns once
    the metadata shows every partition, so producers and consumers can use it at once.
    """
    deadline = time.monotonic() + timeout
    existing = topic_partition_count(client_config, topic, timeout=timeout)
    if existing is not None:
        return False
    client = admin_client(client_config)
    future = client.create_topics(
        [NewTopic(topic, num_partitions=partitions, config=dict(config or {}))],
        request_timeout=max(deadline - time.monotonic(), 1.0),
    )[topic]
    created = True
    try:
        future.result()
    except KafkaException as error:
        kafka_error: KafkaError = error.args[0]
        if kafka_error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise UserError(f"cannot create topic {topic!r}: {error_reason(error)}") from None
        created = False  # someone else created it between our check and our request
    while True:
        count = topic_partition_count(client_config, topic, timeout=max(deadline - time.monotonic(), 0.5))
        if count is not None and (count >= partitions or not created):
            return created
        if time.monotonic() >= deadline:
            raise UserError(f"topic {topic!r} was created but its {partitions} partitions did not "
                            f"appear in the metadata within {timeout:g}s")
        time.sleep(0.05)  # metadata propagation poll, bounded by the deadline above


#: librdkafka (2.16.1 here) aborts the process when a coordinator admin request (DescribeConsumerGroups,
#: DeleteConsumerGroups) has timed out while its coordinator was away and the coordinator comes back: the
#: request outlives its timed-out op and is sent then, and its error path frees the op's state twice
#: (librdkafka issue #4605; tests/integration/test_admin_outage.py makes it happen on Apache Kafka).
#: So such a request is never left to time out inside librdkafka: it gets this long, its caller waits
#: on the future only as long as it means to, then drops the client, which cancels the request safely.
COORDINATOR_REQUEST_TIMEOUT_SECONDS = 600.0


def delete_empty_group(client_config: dict[str, str], group: str, timeout: float = 5.0) -> str:
    """Try to delete a consumer group; "deleted", "gone", "not empty", "retry" or "refused: <why>".

    A group-wide strategy switch needs it: the embedded broker keeps an emptied group's
    protocol forever (a group once on range refuses roundrobin), Apache Kafka resets it.
    Only an empty group can be deleted, so this never disturbs running members.
    """
    admin = admin_client(client_config)  # keep it referenced: a collected client never completes its futures
    futures = admin.delete_consumer_groups([group], request_timeout=COORDINATOR_REQUEST_TIMEOUT_SECONDS)
    try:
        futures[group].result(timeout=timeout)
    except KafkaException as error:
        code = error.args[0].code() if error.args and isinstance(error.args[0], KafkaError) else None
        if code == KafkaError.GROUP_ID_NOT_FOUND:
            return "gone"
        if code == KafkaError.NON_EMPTY_GROUP:
            return "not empty"
        if code in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
            return "retry"
        return f"refused: {error}"
    except Exception as error:  # noqa: BLE001 - a future that times out
        return f"retry ({type(error).__name__})"
    return "deleted"


def bootstrap_accepts_connections(client_config: dict[str, str], timeout: float = 0.5) -> bool:
    """True if some bootstrap server accepts a TCP connection now (a cheap check before admin requests)."""
    import socket

    for server in client_config.get("bootstrap.servers", "").split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            continue
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def group_state(client_config: dict[str, str], group: str, timeout: float = 5.0) -> str:
    """The group's state from DescribeGroups: "Stable", "Empty", ..., "gone" (no such group), or "retry"."""
    admin = admin_client(client_config)  # referenced until the answer is in
    future = admin.describe_consumer_groups([group], request_timeout=COORDINATOR_REQUEST_TIMEOUT_SECONDS)[group]
    try:
        description = future.result(timeout=timeout)
    except KafkaException as error:
        code = error.args[0].code() if error.args and isinstance(error.args[0], KafkaError) else None
        return "gone" if code == KafkaError.GROUP_ID_NOT_FOUND else "retry"
    except Exception:  # noqa: BLE001 - a future that times out
        return "retry"
    name = getattr(getattr(description, "state", None), "name", "UNKNOWN")
    return "".join(word.capitalize() for word in name.split("_"))


def set_consumer_group_timeouts(client_config: dict[str, str], group: str, session_timeout_ms: int,
                                heartbeat_interval_ms: int, timeout: float = 5.0) -> str | None:
    """Set a KIP-848 group's `consumer.session.timeout.ms` and heartbeat interval; None, or why not.

    With the consumer protocol these are the group's settings, held by the broker, not the
    member's: a broker enforces its `group.consumer.min.session.timeout.ms` (45 s by default).
    """
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("consumer.session.timeout.ms", str(session_timeout_ms),
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("consumer.heartbeat.interval.ms", str(heartbeat_interval_ms),
                    incremental_operation=AlterConfigOpType.SET),
    ])
    admin = admin_client(client_config)
    try:
        for future in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
            future.result(timeout=timeout + 1)
    except KafkaException as error:
        return error_reason(error)
    except Exception as error:  # noqa: BLE001 - a future that times out
        return f"no answer ({type(error).__name__})"
    return None


def describe_broker_of(client_config: dict[str, str]) -> BrokerProfile:
    """The broker at the bootstrap servers: its ApiVersions answer and, if balance-tui started it, its pid file."""
    from balance_tui.core.broker_profile import describe_broker
    from balance_tui.kafka.api_versions import probe
    from balance_tui.kafka.brokers.process import local_broker_record

    apis = probe(client_config)
    record = local_broker_record(client_config.get("bootstrap.servers", ""))
    return describe_broker(record, set(apis.apis) if apis else None, apis.finalized_features if apis else None)
