"""MemberBeacon on the real broker: two beacons in one process exchange heartbeats and commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from confluent_kafka import Consumer, Producer

from balance_tui.config import Settings
from balance_tui.core.assignment import utc_now
from balance_tui.core.group import GroupCommand, GroupView, MemberHeartbeat
from balance_tui.kafka.admin import ensure_topic, topic_partition_count
from balance_tui.kafka.members import MemberBeacon, describe_group_members, members_topic
from tests.helpers import wait_until

pytestmark = pytest.mark.broker


def heartbeat(member: str, assignment: tuple[int, ...] = (), status: str = "Consuming") -> MemberHeartbeat:
    return MemberHeartbeat(
        consumer_id=member, host="test", pid=1, strategy="range", status=status, assignment=assignment,
        generation=1, lag=0, rate=0.0, work_ms=0.0, sent_at=utc_now(), session_timeout_ms=2_000,
        position_by_partition={}, high_watermark_by_partition={},
    )


class Inbox:
    """Everything one beacon has read so far."""

    def __init__(self, beacon: MemberBeacon) -> None:
        self.beacon = beacon
        self.messages: list[MemberHeartbeat | GroupCommand] = []

    def read(self) -> list[MemberHeartbeat | GroupCommand]:
        self.messages.extend(self.beacon.poll())
        return self.messages

    def heartbeats(self, member: str) -> list[MemberHeartbeat]:
        return [m for m in self.messages if isinstance(m, MemberHeartbeat) and m.consumer_id == member]

    def commands(self) -> list[GroupCommand]:
        return [m for m in self.messages if isinstance(m, GroupCommand)]

    def wait_for_heartbeat(self, member: str, predicate=lambda h: True, message: str = "") -> MemberHeartbeat:
        def found() -> MemberHeartbeat | None:
            self.read()
            return next((h for h in reversed(self.heartbeats(member)) if predicate(h)), None)

        return wait_until(found, 15, message or f"no heartbeat from {member}")


@pytest.fixture
def beacons(broker, unique):
    settings = Settings(bootstrap_servers=broker.bootstrap, group=unique("grp"), topic=unique("tx"))
    opened: list[MemberBeacon] = []

    def open_beacon(member: str) -> MemberBeacon:
        beacon = MemberBeacon(settings, member)
        opened.append(beacon)
        return beacon

    yield settings, open_beacon
    for beacon in opened:
        beacon.close()


def test_beacons_see_each_other_share_one_command_and_hear_the_goodbye(beacons, client_config):
    settings, open_beacon = beacons
    alice, bob = open_beacon("alice"), open_beacon("bob")
    assert topic_partition_count(client_config, members_topic(settings.group)) == 1
    # The source topic was never named in a metadata request, so it was not auto-created.
    assert topic_partition_count(client_config, settings.topic) is None
    alice_reads, bob_reads = Inbox(alice), Inbox(bob)

    alice.publish(heartbeat("alice", (0, 1, 2)))
    bob.publish(heartbeat("bob", (3, 4, 5)))
    assert bob_reads.wait_for_heartbeat("alice").assignment == (0, 1, 2)
    assert alice_reads.wait_for_heartbeat("bob").assignment == (3, 4, 5)
    alice_reads.wait_for_heartbeat("alice", message="a beacon reads its own heartbeats too")

    # A command from before bob's beacon opened is history; the new one is carried out once,
    # even when the same command is delivered twice.
    stale = GroupCommand(strategy="range", requested_by="alice",
                         requested_at=bob.started_at - timedelta(seconds=5))
    command = GroupCommand(strategy="cooperative-sticky", requested_by="alice", requested_at=utc_now())
    alice.send_command(stale)
    alice.send_command(command)
    alice.send_command(command)
    # A marker sent after the commands: once it is read, everything before it was read too.
    alice.publish(heartbeat("alice", (0, 1, 2), status="marker"))
    bob_reads.wait_for_heartbeat("alice", lambda h: h.status == "marker", "bob never read the marker")
    alice_reads.wait_for_heartbeat("alice", lambda h: h.status == "marker", "alice never read the marker")
    assert bob_reads.commands() == [command]
    assert alice_reads.commands() == [command]

    assert bob.goodbye(heartbeat("bob", (3, 4, 5))), "the goodbye was not acknowledged"
    goodbye = alice_reads.wait_for_heartbeat("bob", lambda h: h.goodbye, "alice never heard bob's goodbye")
    view = GroupView(own_consumer_id="alice")
    now = utc_now()
    for message in alice_reads.messages:
        if isinstance(message, MemberHeartbeat):
            view.observe(message, now)
    assert [row.consumer_id for row in view.rows(now)] == ["alice"]
    assert goodbye.assignment == (3, 4, 5)
    assert alice.send_failures == bob.send_failures == 0


def test_a_late_beacon_reads_recent_heartbeats_skips_junk_and_old_commands(beacons, broker):
    settings, open_beacon = beacons
    alice = open_beacon("alice")
    alice.publish(heartbeat("alice", (0,)))
    alice.send_command(GroupCommand(strategy="roundrobin", requested_by="alice", requested_at=utc_now()))
    junk = Producer({"bootstrap.servers": broker.bootstrap})
    junk.produce(members_topic(settings.group), b"{not json", b"junk")
    assert junk.flush(10) == 0
    assert alice.goodbye(heartbeat("alice", (0,), status="flushed"))

    carol = open_beacon("carol")
    carol_reads = Inbox(carol)
    carol_reads.wait_for_heartbeat("alice", lambda h: h.goodbye, "carol did not read the recent history")
    assert carol_reads.heartbeats("alice")[0].goodbye is False  # the first beat, then the goodbye
    assert carol_reads.commands() == []
    assert carol.rejected == 1


def test_describe_groups_lists_members_only_where_the_broker_supports_it(beacons, client_config, unique):
    settings, open_beacon = beacons
    ensure_topic(client_config, settings.topic, 2)
    member = Consumer({**client_config, "group.id": settings.group, "client.id": "alice",
                       "session.timeout.ms": 2_000, "heartbeat.interval.ms": 500})
    try:
        member.subscribe([settings.topic])
        wait_until(lambda: member.poll(0.1) is None and member.assignment(), 15,
                   "the member never got partitions")
        described = describe_group_members(client_config, settings.group, settings.topic, timeout=5)
        beacon = open_beacon("observer")
        wait_until(lambda: beacon.refresh_broker_members() or beacon.describe_answers, 10,
                   "DescribeGroups never answered")
        if described is None:  # the embedded broker: STABLE, but no members at all
            assert beacon.broker_members is None
        else:
            assert [(m.client_id, m.partitions) for m in described] == [("alice", (0, 1))]
            assert beacon.broker_members == described
    finally:
        member.close()
    assert describe_group_members(client_config, unique("nobody"), timeout=5) is None
