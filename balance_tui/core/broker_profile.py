"""Provides what balance-tui knows about the broker it talks to, decided from what the broker answers.

Nothing here is a setting the user must know about: the answers come from the broker's
ApiVersions (which protocols it serves), from the pid file of a broker balance-tui
started on this machine (engine and version), and from how its DescribeGroups answers
while this member is in the group (Tansu answers "Stable" with no members at all).

Pure: no Kafka, no Textual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: DescribeGroups answers without a single member, while this member owned partitions, before the
#: broker's DescribeGroups is taken as broken and no longer asked.
EMPTY_ANSWERS_BEFORE_GIVING_UP = 2


@dataclass(frozen=True)
class BrokerProfile:
    """The broker as the header and the worker need it."""

    #: "Apache Kafka 4.4.0", "Tansu 0.6.0", "Apache Kafka (KRaft)", "Kafka-compatible broker".
    label: str
    #: KIP-848's consumer group protocol: True/False from ApiVersions, None if it could not be asked.
    consumer_protocol: bool | None
    #: "tansu", "kafka", or None when balance-tui did not start it and cannot tell.
    engine: str | None = None
    #: Finalized feature levels (Apache Kafka: metadata.version, group.version, ...).
    features: Mapping[str, int] | None = None

    def as_log_fields(self) -> dict[str, Any]:
        return {"label": self.label, "engine": self.engine, "consumer_protocol": self.consumer_protocol,
                "features": dict(self.features or {})}


def consumer_protocol_refusal(profile: BrokerProfile, strategy: str) -> str | None:
    """Why `strategy` cannot be used on this broker: None when it can, or when nobody can tell."""
    if strategy == "consumer" and profile.consumer_protocol is False:
        return (f"{profile.label or 'the broker'} does not serve KIP-848's consumer group protocol (its ApiVersions "
                "lists no ConsumerGroupHeartbeat): a member would wait forever for partitions; use range, "
                "roundrobin or cooperative-sticky")
    return None


def describe_broker(local_record: Mapping[str, Any] | None, api_keys: set[int] | None,
                    finalized_features: Mapping[str, int] | None, consumer_protocol_api: int = 68) -> BrokerProfile:
    """A profile from a local pid-file record (if balance-tui started the broker) and an ApiVersions answer."""
    consumer_protocol = None if api_keys is None else consumer_protocol_api in api_keys
    engine = None
    if local_record is not None and local_record.get("engine_name"):
        engine = str(local_record.get("engine") or "") or None
        label = f"{local_record['engine_name']} {local_record.get('version', '')}".strip()
    elif local_record is not None:  # written before engines had names: always Tansu
        engine, label = "tansu", "Tansu"
    elif finalized_features and "metadata.version" in finalized_features:
        label = "Apache Kafka (KRaft" + (", KIP-848)" if consumer_protocol else ")")
    elif api_keys is not None:
        label = "Kafka-compatible broker" + ("" if consumer_protocol else " (no KIP-848)")
    else:
        label = "broker (not described)"
    return BrokerProfile(label=label, consumer_protocol=consumer_protocol, engine=engine,
                         features=dict(finalized_features or {}))


class DescribeGroupsVerdict:
    """Does this broker's DescribeGroups tell the truth? Fed with each answer; `usable` says.

    Unknown (None) until an answer can prove something: one listing members proves it
    works; answers with no members while this member owned partitions prove it broken.
    """

    def __init__(self) -> None:
        self.usable: bool | None = None
        self._empty_while_member = 0

    def observe(self, members_listed: int, own_partitions: int) -> None:
        if self.usable is not None:
            return
        if members_listed > 0:
            self.usable = True
        elif own_partitions > 0:
            self._empty_while_member += 1
            if self._empty_while_member >= EMPTY_ANSWERS_BEFORE_GIVING_UP:
                self.usable = False


#: After a broker came (back) up, coordinator admin requests wait this long (librdkafka #4605).
ADMIN_AFTER_UP_SECONDS = 3.0


class BrokerHealth:
    """Is the broker there? Since when, and what was owned when it went away. Fed by errors and statistics.

    Coordinator admin requests (DescribeConsumerGroups, DeleteConsumerGroups) wait until every
    broker has been up for a while: librdkafka up to 2.16 (at least) aborts the whole process
    (`rd_kafka_enq_once_del_source_return: Assertion 'eonce->refcnt > 0' failed`, librdkafka
    issue #4605, fix proposed in PR #5397) when such a request cannot be sent because the
    connection is down: a broker that went away or is restarting.
    """

    def __init__(self, admin_after_up_seconds: float = ADMIN_AFTER_UP_SECONDS) -> None:
        self.admin_after_up_seconds = admin_after_up_seconds
        #: The cluster id at start; a different one after an outage is a broker that lost everything.
        self.cluster_id: str | None = None
        #: When the broker became unreachable (None: it answers).
        self.outage_started: float | None = None
        #: Partitions owned when it went away (their state is lost if it comes back empty).
        self.owned_at_outage = 0
        #: The last statistics knew brokers (or, in an outage, none) and none was up: a flush would only wait its
        #: timeout out.
        self.away = False
        self._up_since: float | None = None
        #: A broker answered this member since the outage began (an assignment, a broker's own error).
        self._answered = False

    def unreachable(self, now: float, owned: int) -> None:
        self._up_since = None
        self._answered = False
        if self.outage_started is None:
            self.outage_started = now
            self.owned_at_outage = owned

    def statistics(self, all_up: bool | None, now: float, any_up: bool = True) -> None:
        # librdkafka drops a killed broker from its statistics (measured on Tansu: from the next
        # document on, only the bootstrap entry, INIT, and the coordinator, TRY_CONNECT): during an
        # outage, no broker listed at all is no broker up, or a `lost` after the outage hid it for good.
        self.away = not any_up and (all_up is not None or self.outage_started is not None)
        if all_up and self._up_since is None:
            self._up_since = now
        elif not all_up:
            self._up_since = None

    def admin_requests_safe(self, now: float) -> bool:
        return self._up_since is not None and now - self._up_since >= self.admin_after_up_seconds

    def answered(self) -> None:
        """A broker answered a request of this member, whatever the statistics say of its connections.

        Seen in CI on Tansu: after a restart, two members were given partitions and refused by the
        group for 90 s while their statistics still listed the broker as not up; waiting for the
        statistics alone, they never looked at the new cluster and missed the group's commands.
        """
        self._answered = True

    @property
    def back_after_outage(self) -> bool:
        """It had gone away, and every broker is up again (or one answered): time to see which cluster answers."""
        return self.outage_started is not None and (self._up_since is not None or self._answered)

    def outage_over(self, now: float) -> float:
        """The outage is over: how long it lasted."""
        lasted = now - (self.outage_started if self.outage_started is not None else now)
        self.outage_started = None
        self._answered = False
        return lasted

    def still_out(self, now: float, lasted: float) -> None:
        """The broker did not really answer: the outage goes on (it began `lasted` seconds ago)."""
        self.outage_started = now - lasted
        self._answered = False

    def new_cluster(self, cluster_id: str | None) -> None:
        self.cluster_id = cluster_id
        self._up_since = None
