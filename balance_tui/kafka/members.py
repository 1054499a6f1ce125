"""The members topic `<group>.members`: heartbeats and group commands, read without a group.

`MemberBeacon` is driven by the consumer worker's thread: every call returns at once
(produce and `poll(0)`, `consume(..., 0)`, a DescribeGroups future checked with
`done()`); only opening it (topic creation, start offsets) and `goodbye`/`close`
(a short flush) wait on the broker. See docs/group-view.md.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from balance_tui.config import Settings
from balance_tui.core.assignment import utc_now
from balance_tui.core.broker_profile import DescribeGroupsVerdict
from balance_tui.core.group import (
    BrokerGroup,
    BrokerMember,
    GroupCommand,
    MemberHeartbeat,
    decode,
    encode,
    is_history,
)
from balance_tui.errors import BrokerUnreachable, UserError
from balance_tui.kafka import error_reason
from balance_tui.kafka.admin import (
    COORDINATOR_REQUEST_TIMEOUT_SECONDS,
    RDKAFKA_LOGGER,
    admin_client,
    ensure_topic,
    topic_partition_count,
)

#: Under `RDKAFKA_LOGGER`, which keeps librdkafka's logs off the terminal.
_QUIET = RDKAFKA_LOGGER.getChild("members")

#: One partition: a single total order, so "after" means the same thing to every reader,
#: and a member's goodbye always follows its heartbeats.
MEMBERS_TOPIC_PARTITIONS = 1
#: Read at most this many records back when opening: 30 s of history for 60 members.
#: (Start offsets come from ListOffsets, which the embedded broker may answer a little low:
#: that only means reading a bit more history, which the time filter drops.)
HISTORY_RECORDS = 2_000
#: Records decoded per `poll()` at most, so a backlog never stalls the worker loop.
POLL_BUDGET = 2_000
#: The topic only ever needs the last minute; an hour keeps a long lab session small.
MEMBERS_TOPIC_CONFIG = {"retention.ms": str(3_600_000)}
DESCRIBE_INTERVAL_SECONDS = 10.0
#: A DescribeGroups answer not in after this long is given up, with the admin client that asked it (see
#: COORDINATOR_REQUEST_TIMEOUT_SECONDS: librdkafka must never time the request out itself).
DESCRIBE_PATIENCE_SECONDS = 5.0


def members_topic(group: str) -> str:
    """`<group>.members`: one members topic per consumer group."""
    return f"{group}.members"


class MemberBeacon:
    """Publishes this member's heartbeats and commands; reads everyone's (no group, no commits)."""

    def __init__(self, settings: Settings, consumer_id: str) -> None:
        self.topic = members_topic(settings.group)
        self.group = settings.group
        self.source_topic = settings.topic
        self.consumer_id = consumer_id
        #: Commands requested before this moment are history and never carried out.
        self.started_at = utc_now()
        self.rejected = 0
        self.send_failures = 0
        self.last_error: str | None = None
        #: The broker's DescribeGroups answer: None until one lists members (never on Tansu).
        self.broker_group: BrokerGroup | None = None
        #: Whether this broker's DescribeGroups tells the truth; once proved broken, it is not asked again.
        self.describe_verdict = DescribeGroupsVerdict()
        #: DescribeGroups answers received (errors included): 0 means the broker was not asked yet.
        self.describe_answers = 0
        #: The send time of the newest heartbeat of ours read back: every record before it was read too.
        self.echo_at: datetime | None = None
        self._seen_commands: set[str] = set()
        #: DescribeGroups requests given up unanswered, each with the admin client that sent it.
        self.describes_abandoned = 0
        self._describe: Future[Any] | None = None
        self._describe_asked_at = 0.0
        #: The DescribeGroups answer in flight was asked before a rebalance: drop it when it comes.
        self._discard_in_flight = False
        self._next_describe = 0.0
        config = settings.client_config()
        try:
            ensure_topic(config, self.topic, MEMBERS_TOPIC_PARTITIONS, config=MEMBERS_TOPIC_CONFIG)
        except BrokerUnreachable:
            raise
        except UserError:  # a broker may refuse the retention setting: the topic matters more
            ensure_topic(config, self.topic, MEMBERS_TOPIC_PARTITIONS)
        partitions = topic_partition_count(config, self.topic) or MEMBERS_TOPIC_PARTITIONS
        self._config = config
        self._admin = admin_client(config)
        self._producer = Producer({
            **config,
            "client.id": f"{consumer_id}-members",
            "linger.ms": 5,
            # A heartbeat is worthless after a few seconds: fail fast instead of queueing them up.
            "message.timeout.ms": 5_000,
            "queue.buffering.max.messages": 1_000,
            # A broker back empty must not get the topic back with its default partition count.
            "allow.auto.create.topics": False,
            "logger": _QUIET,
        })
        self._consumer = Consumer({
            **config,
            # librdkafka insists on a group id; it is never joined (assign, no subscribe) and
            # nothing is committed, so every member reads the whole topic.
            "group.id": f"{consumer_id}-members-reader",
            "client.id": f"{consumer_id}-members",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "allow.auto.create.topics": False,
            "logger": _QUIET,
        })
        self._consumer.assign([TopicPartition(self.topic, p, self._start_offset(p)) for p in range(partitions)])

    def _start_offset(self, partition: int) -> int:
        try:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition),
                                                             timeout=5, cached=False)
        except KafkaException:
            return OFFSET_BEGINNING
        if high < 0:
            return OFFSET_BEGINNING
        return max(low, high - HISTORY_RECORDS, 0)

    # -- writing ------------------------------------------------------------------------------

    def publish(self, heartbeat: MemberHeartbeat) -> None:
        """Send a heartbeat (never blocks: dropped if the local queue is full)."""
        self._send(heartbeat.consumer_id, encode(heartbeat))

    def goodbye(self, heartbeat: MemberHeartbeat, timeout: float = 2.0) -> bool:
        """Send the last heartbeat with `goodbye` set and wait for it; True once acknowledged."""
        self._send(heartbeat.consumer_id, encode(dataclasses.replace(heartbeat, goodbye=True)))
        return self._producer.flush(timeout) == 0

    def send_command(self, command: GroupCommand) -> None:
        """Ask every member, this one included: each carries the command out when it reads it."""
        self._send(command.requested_by, encode(command))

    def _send(self, key: str, value: bytes) -> None:
        try:
            self._producer.produce(self.topic, value, key.encode("utf-8"), on_delivery=self._delivered)
        except BufferError:
            self.send_failures += 1  # the broker has been away for a while; the next beat says it all
        except KafkaException as error:
            self.send_failures += 1
            self.last_error = error_reason(error)
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self.send_failures += 1
            self.last_error = error.str()

    # -- reading ------------------------------------------------------------------------------

    def poll(self, now: datetime | None = None) -> list[MemberHeartbeat | GroupCommand]:
        """Heartbeats and commands that arrived since the last call, in log order.

        Left out: undecodable records (counted in `rejected`), heartbeats too old to matter,
        commands requested before this beacon started, and commands already returned once.
        """
        now = now or utc_now()
        self._producer.poll(0)
        received: list[MemberHeartbeat | GroupCommand] = []
        budget = POLL_BUDGET
        while budget > 0:
            try:
                records = self._consumer.consume(min(budget, 500), 0)
            except KafkaException as failure:
                self.last_error = error_reason(failure)
                break
            if not records:
                break
            budget -= len(records)
            for record in records:
                error = record.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        self.last_error = error.str()
                    continue
                try:
                    message = decode(record.value())
                except ValueError:
                    self.rejected += 1
                    continue
                if isinstance(message, GroupCommand):
                    if message.requested_at < self.started_at or message.command_id in self._seen_commands:
                        continue
                    self._seen_commands.add(message.command_id)
                else:
                    if message.consumer_id == self.consumer_id and (self.echo_at is None
                                                                    or message.sent_at > self.echo_at):
                        self.echo_at = message.sent_at
                    if is_history(message, now):
                        continue
                received.append(message)
        return received

    def read_past(self, moment: datetime) -> bool:
        """True once a heartbeat of ours sent at `moment` or later was read back: the topic has one
        partition, so every record appended before it (a command, a reset) was read as well."""
        return self.echo_at is not None and self.echo_at >= moment

    @property
    def broker_members(self) -> list[BrokerMember] | None:
        """The members of the latest DescribeGroups answer, None where the broker lists none."""
        if self.broker_group is None or not self.broker_group.members:
            return None
        return list(self.broker_group.members)

    def refresh_broker_members(self, own_partitions: int = 0, ask: bool = True) -> None:
        """Keep `broker_group` up to date from DescribeGroups, one request at a time, never waiting.

        `own_partitions` is how many partitions this member owns now: a broker that lists no
        members while we own some does not describe groups, and is not asked again. `ask=False`
        only collects an answer in flight: the caller knows the broker cannot take a request now.
        """
        if self._describe is not None and not self._describe.done():
            if time.monotonic() - self._describe_asked_at < DESCRIBE_PATIENCE_SECONDS:
                return
            self._abandon_describe()
        if self._describe is not None:
            stale, self._discard_in_flight = self._discard_in_flight, False
            try:
                answer = group_from_description(self._describe.result(), self.source_topic)
            except KafkaException:
                self.broker_group = None
            else:
                self.describe_verdict.observe(len(answer.members), own_partitions)
                if not stale:
                    self.broker_group = answer if answer.members else None
            self._describe = None
            self.describe_answers += 1
        if self.describe_verdict.usable is False:
            self.broker_group = None
            return
        if ask and time.monotonic() >= self._next_describe:
            self._next_describe = self._describe_asked_at = time.monotonic()
            self._next_describe += DESCRIBE_INTERVAL_SECONDS
            try:
                self._describe = self._admin.describe_consumer_groups(
                    [self.group], request_timeout=COORDINATOR_REQUEST_TIMEOUT_SECONDS)[self.group]
            except KafkaException:
                self.broker_group = None

    def _abandon_describe(self) -> None:
        """Drop the unanswered request with its client: destroying the client cancels the request safely,
        where a request timed out by librdkafka would abort the process once the coordinator is back."""
        self._describe, self._discard_in_flight = None, False
        self.broker_group = None
        self.describes_abandoned += 1
        self._admin = admin_client(self._config)

    def describe_soon(self, seconds: float = 1.0) -> None:
        """After a rebalance: forget the last answer (it is stale) and ask again within `seconds`.

        An answer still in flight was asked before the rebalance too: it is dropped when it arrives.
        """
        self.broker_group = None
        self._discard_in_flight = self._describe is not None
        self._next_describe = min(self._next_describe, time.monotonic() + seconds)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (up to `timeout` s) and close both clients."""
        self._producer.flush(timeout)
        self._consumer.close()


def describe_group_members(client_config: dict[str, str], group: str, topic: str | None = None,
                           timeout: float = 5.0) -> list[BrokerMember] | None:
    """The group's members from DescribeGroups, or None when the broker lists none.

    None covers the embedded broker (it answers STABLE with no members at all), an empty
    group and an unreachable broker alike: the caller then relies on the heartbeats.
    """
    # Keep the client referenced until the answer is in: a collected AdminClient never completes it.
    client = admin_client(client_config)
    future = client.describe_consumer_groups([group], request_timeout=COORDINATOR_REQUEST_TIMEOUT_SECONDS)[group]
    try:
        description = future.result(timeout=timeout)
    except (KafkaException, TimeoutError):
        return None
    return members_from_description(description, topic)


def members_from_description(description: Any, topic: str | None) -> list[BrokerMember] | None:
    """BrokerMembers from a ConsumerGroupDescription (partitions of `topic` only, if given)."""
    members = list(group_from_description(description, topic).members)
    return members or None


def group_from_description(description: Any, topic: str | None) -> BrokerGroup:
    """The BrokerGroup of a ConsumerGroupDescription (assignments on `topic` only, if given)."""
    members = []
    for member in getattr(description, "members", None) or ():
        assignment = getattr(member, "assignment", None)
        partitions = tuple(sorted(
            tp.partition for tp in (getattr(assignment, "topic_partitions", None) or ())
            if topic is None or tp.topic == topic
        ))
        members.append(BrokerMember(client_id=member.client_id, member_id=member.member_id,
                                    host=member.host or "", partitions=partitions,
                                    group_instance_id=getattr(member, "group_instance_id", None) or None))
    state = getattr(description, "state", None)
    group_type = getattr(description, "type", None)
    return BrokerGroup(
        state=_enum_words(state),
        group_type=_enum_words(group_type),
        assignor=str(getattr(description, "partition_assignor", "") or ""),
        members=tuple(sorted(members, key=lambda m: m.client_id)),
    )


#: confluent-kafka's state names that Kafka itself spells otherwise (kafka-consumer-groups prints these).
_KAFKA_STATE_NAMES = {"PREPARING_REBALANCING": "PreparingRebalance", "COMPLETING_REBALANCING": "CompletingRebalance"}


def _enum_words(value: Any) -> str:
    """`ConsumerGroupState.PREPARING_REBALANCING` -> `PreparingRebalance`, `ConsumerGroupType.CLASSIC` -> `classic`."""
    name = getattr(value, "name", None)
    if not name or name == "UNKNOWN":
        return ""
    if type(value).__name__.endswith("Type"):
        return name.lower()
    return _KAFKA_STATE_NAMES.get(name) or "".join(word.capitalize() for word in name.split("_"))
