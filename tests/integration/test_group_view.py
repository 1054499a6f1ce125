"""The whole group in every terminal: heartbeats, silence after kill -9, group-wide switches."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime

import pytest

from balance_tui.config import load_settings
from balance_tui.core.report import parse_ts
from balance_tui.kafka.worker import ConsumerWorker
from balance_tui.session_log import export_paths
from balance_tui.ui.app import BalanceApp
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

TARGET = "cooperative-sticky"


def test_a_group_wide_switch_moves_every_member_to_the_new_strategy(cluster):
    group = cluster("range")
    members = [group.start() for _ in range(3)]
    group.wait_for_assignments([2, 2, 2])
    members[0].command(f"group-strategy {TARGET}")
    for member in members:
        wait_until(lambda m=member: any(e["to"] == TARGET for e in m.events("strategy_changed")),
                   30, f"{member.name} never switched")
        command = member.events("group_command")[0]
        assert command["requested_by"] == "balance-worker-test-m1"
    group.wait_for_assignments([2, 2, 2], timeout=90)
    for member in members:
        assert member.events("assigned")[-1]["strategy"] == TARGET


def test_eight_members_show_two_idle_in_every_exports_group(cluster):
    group = cluster("range")
    members = [group.start() for _ in range(8)]
    group.wait_until_stable([1, 1, 1, 1, 1, 1, 0, 0], timeout=120)

    def group_complete(member) -> bool:
        member.command("export")
        try:
            export = json.loads(export_paths(member.log_path)[0].read_text())
        except (OSError, ValueError):
            return False
        entries = export.get("group", [])
        return len(entries) == 8 and sorted(len(e["assignedPartitions"]) for e in entries) == [0, 0, 1, 1, 1, 1, 1, 1]

    for member in members:
        wait_until(lambda m=member: group_complete(m), 30, f"{member.name}'s export never showed 8 members, 2 idle")


async def test_survivors_group_panel_flags_a_killed_member_then_shows_its_partitions_moved(
        cluster, broker, tmp_path):
    group = cluster("range")
    # The victim's session outlives the 2.5 s silence threshold by a few seconds, so there is a
    # window in which it is silent but not yet replaced (with 2 s it can be replaced first).
    others = [group.start("other"), group.start("victim", flags=["--session-timeout-ms", "8000",
                                                                "--heartbeat-interval-ms", "1000"])]
    settings = load_settings({
        "bootstrap_servers": broker.bootstrap, "topic": group.topic, "group": group.group, "strategy": "range",
        # A longer session than the headless members': under the test's load the app's own
        # member must never be the one the broker evicts.
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
        "session_log": str(tmp_path / "pilot.jsonl"),
    })
    worker = ConsumerWorker(settings, consumer_id="balance-worker-test-pilot")
    app = BalanceApp(settings, worker, crash=lambda: None)

    async def until(condition, what: str, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    def rows():
        return app.group.group.rows if app.group.group is not None else ()

    async with app.run_test(size=(140, 45)) as pilot:
        await until(lambda: group.settled([2, 2]) and len(worker.tracker.assignment) == 2
                    and len(rows()) == 3, "three members with two partitions each")
        victim_partitions = set(others[1].assignment())
        others[1].kill()
        await until(lambda: any(r.consumer_id.endswith("victim") and r.silent for r in rows()),
                    "the victim flagged silent")
        silent = next(r for r in rows() if r.consumer_id.endswith("victim"))
        assert silent.rebalance_expected_in is not None
        await pilot.pause()
        app.draw()
        assert "rebalance expected in" in "\n".join(
            strip.text for strip in app.group.render_lines(app.group.size.region)) or \
            silent.rebalance_expected_in == 0
        await until(lambda: not any(r.consumer_id.endswith("victim") for r in rows())
                    and sorted(p for r in rows() for p in r.partitions) == list(range(6)),
                    "the victim's partitions owned by the survivors", timeout=90)
        owners = {p: r.consumer_id for r in rows() for p in r.partitions}
        assert all(not owners[p].endswith("victim") for p in victim_partitions)
        worker.stop("test")
        await until(lambda: app.worker_stopped is not None, "the worker to stop")


def switches_in_members_topic(bootstrap: str, group: str, count: int) -> list[str]:
    """The strategies of the (at least `count`) switch commands in `<group>.members`, in the topic's order."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from balance_tui.core.group import SWITCH_STRATEGY, GroupCommand, decode
    from balance_tui.kafka.members import members_topic

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "switch-reader", "enable.auto.commit": False})
    reader.assign([TopicPartition(members_topic(group), 0, OFFSET_BEGINNING)])
    switches: list[str] = []
    try:
        def all_read() -> bool:
            for record in reader.consume(500, 0.2):
                if record.error() is None:
                    try:
                        message = decode(record.value())
                    except ValueError:
                        continue
                    if isinstance(message, GroupCommand) and message.kind == SWITCH_STRATEGY:
                        switches.append(message.strategy)
            return len(switches) >= count

        wait_until(all_read, 30, f"fewer than {count} switch commands in the members topic")
    finally:
        reader.close()
    return switches


def test_concurrent_group_wide_switches_resolve_to_the_last_one_and_every_member_adopts_it(cluster):
    """Three members ask for three strategies within a fraction of a second, twice: the group must
    end on the strategy of the last command in the members topic, every member in it, none refused."""
    group = cluster("range")
    members = [group.start() for _ in range(3)]
    group.wait_for_assignments([2, 2, 2])
    asked = 0
    for burst in (("range", "roundrobin", "cooperative-sticky"), ("cooperative-sticky", "range", "roundrobin")):
        for member, strategy in zip(members, burst, strict=True):
            member.command(f"group-strategy {strategy}")
        asked += 3
        order = switches_in_members_topic(group.bootstrap, group.group, asked)
        winner = order[-1]

        def converged(target: str = winner) -> bool:
            if not group.settled([2, 2, 2]) or not group.quiet_for(3.0):
                return False
            return all(m.events("assigned")[-1]["strategy"] == target for m in members)

        try:
            wait_until(converged, 120, f"the group did not settle on {winner}")
        except AssertionError as error:
            seen = "; ".join(f"{m.name}: {m.events('assigned')[-1]['strategy']} {m.assignment()}" for m in members)
            raise AssertionError(f"{error}: {seen}") from None
        for member in members:  # each read every command, in the topic's order
            assert [e["strategy"] for e in member.events("group_command")] == order, member.name
            assert not member.events("refusal_healed"), "the switch itself must converge, not the fallback"


def test_a_member_frozen_across_a_switch_joins_the_re_formed_group_without_resetting_it(cluster):
    """W1 is SIGSTOPped while the others switch the group; woken, it reads the old command and must
    join the group they formed, not reset it (on Tansu a reset deletes a group with live members,
    and they all lose their partitions; on Kafka it would wait out its deadline for `Empty`)."""
    group = cluster("range")
    frozen, requester, other = (group.start() for _ in range(3))
    group.wait_for_assignments([2, 2, 2])
    frozen.process.send_signal(signal.SIGSTOP)
    try:
        requester.command(f"group-strategy {TARGET}")

        def formed_without_it() -> bool:
            owned = [m.assignment() or [] for m in (requester, other)]
            on_target = all(m.events("assigned") and m.events("assigned")[-1]["strategy"] == TARGET
                            for m in (requester, other))
            return on_target and sorted(owned[0] + owned[1]) == list(range(6)) and all(owned)

        wait_until(formed_without_it, 90, "the two awake members never formed the group on the new strategy")
        woken = datetime.now(UTC)
    finally:
        frozen.process.send_signal(signal.SIGCONT)

    def joined() -> bool:
        return (group.settled([2, 2, 2]) and group.quiet_for(3.0)
                and all(m.events("assigned")[-1]["strategy"] == TARGET for m in (frozen, requester, other)))

    wait_until(joined, 90, "the woken member never joined the re-formed group")
    after = [e for e in frozen.events("group_reset") if parse_ts(e["ts"]) > woken]
    # It ended its wait on what the others did (their reset, or their heartbeats on the new strategy), never
    # by resetting the group itself.
    assert after and all(e["by"] != "balance-worker-test-m1" for e in after), after
    assert all(e.get("outcome", "reset") in ("reset", "already formed") for e in after), after
    for member in (requester, other):
        lost = [e for e in member.events("lost") if parse_ts(e["ts"]) > woken]
        assert not lost, f"{member.name} lost its partitions when the frozen member woke: {lost}"


def test_a_group_emptied_on_another_protocol_takes_new_members(cluster, broker):
    """A plain consumer leaves the group on roundrobin; members on range must end up owning every
    partition. Kafka forgets an emptied group's protocol; Tansu keeps it forever and refuses range
    until a member sees the group wedged (nobody owns anything, all on range) and resets it."""
    from confluent_kafka import Consumer

    group = cluster("range")
    earlier = Consumer({"bootstrap.servers": group.bootstrap, "group.id": group.group,
                        "partition.assignment.strategy": "roundrobin", "session.timeout.ms": 6000})
    earlier.subscribe([group.topic])
    try:
        wait_until(lambda: earlier.poll(0.2) is None and bool(earlier.assignment()), 60,
                   "the earlier roundrobin consumer never got partitions")
    finally:
        earlier.close()  # a clean leave: the group is empty, on roundrobin
    members = [group.start() for _ in range(2)]
    try:
        group.wait_for_assignments([3, 3], timeout=90)
    except AssertionError as error:
        refusals = [e for m in members for e in m.events("error") if e["code"] == "INCONSISTENT_GROUP_PROTOCOL"]
        raise AssertionError(f"{error} ({len(refusals)} protocol refusals)") from None
    resets = [e for m in members for e in m.events("group_reset") if e.get("reason") == "wedged"]
    if broker.engine == "tansu":
        assert len(resets) == 1 and resets[0]["consumer_id"] == "balance-worker-test-m1", resets
    else:
        assert resets == []  # Kafka took range at once: nothing wedged


class PlainLeader:
    """A plain consumer that joins first, so it leads the group; it counts its revokes and is polled while
    the test waits, so the group sees it alive until `leave`."""

    def __init__(self, group, strategy: str) -> None:
        from confluent_kafka import Consumer

        self.revoked: list[int] = []
        self.consumer = Consumer({"bootstrap.servers": group.bootstrap, "group.id": group.group,
                                  "partition.assignment.strategy": strategy, "session.timeout.ms": 2000,
                                  "heartbeat.interval.ms": 500})
        self.consumer.subscribe([group.topic],
                                on_revoke=lambda consumer, partitions: self.revoked.append(len(partitions)))
        try:
            self.wait(lambda: len(self.owned()) == 6, 60, "the leader never got the six partitions")
        except AssertionError:
            self.leave()
            raise

    def owned(self) -> list:
        return self.consumer.assignment()

    def wait(self, condition, timeout: float, what: str) -> None:
        wait_until(lambda: self.consumer.poll(0.05) is None and condition(), timeout, what)

    def leave(self) -> None:
        self.consumer.close()


def test_a_group_whose_leader_left_mid_rebalance_still_takes_a_new_member(cluster, broker):
    """A plain consumer leads the group; a member joins, and the leader leaves the moment it is
    revoked, while the group re-forms. Kafka elects the member leader at once. Tansu 0.6.0 keeps the
    departed leader and names it in every JoinGroup answer, so no assignment is ever made: the member
    sees its join answered but never assigned for a window, nobody owning anything, and resets the group."""
    group = cluster("range")
    leader = PlainLeader(group, "range")
    try:
        member = group.start()
        leader.wait(lambda: bool(leader.revoked), 60, "the leader was never revoked for the member's join")
    finally:
        leader.leave()  # while the group re-forms
    group.wait_for_assignments([6], timeout=90)
    resets = member.events("group_reset")
    if broker.engine == "tansu":
        assert [(e["reason"], e["outcome"]) for e in resets] == [("stalled", "deleted")], member.story()
    else:
        assert resets == [], member.story()  # Kafka re-formed the group by itself


def test_a_cooperative_group_whose_leader_left_mid_rebalance_gives_its_partitions_to_the_others(cluster, broker):
    """The same on cooperative-sticky, where the others keep what they own meanwhile: a plain consumer
    leads, a member owns half, a second member joins and the leader leaves at its incremental revoke.
    On Tansu the group never forms again (the first member keeps its three, the leader's three have no
    owner): the joining member sees partitions without an owner for a stall window and resets the group."""
    group = cluster("cooperative-sticky")
    leader = PlainLeader(group, "cooperative-sticky")
    try:
        first = group.start()
        leader.wait(lambda: len(leader.owned()) == 3 and len(first.assignment() or ()) == 3, 90,
                    "the leader and the first member never owned 3 + 3")
        revokes = len(leader.revoked)
        joining = group.start()
        leader.wait(lambda: len(leader.revoked) > revokes, 60,
                    "the leader was never revoked for the second member's join")
    finally:
        leader.leave()  # while the group re-forms
    group.wait_for_assignments([3, 3], timeout=90)
    resets = [e for m in (first, joining) for e in m.events("group_reset")]
    if broker.engine == "tansu":
        assert [(e["consumer_id"], e["reason"], e["outcome"]) for e in resets] == [
            ("balance-worker-test-m2", "stalled", "deleted")], joining.story()
    else:
        assert resets == [], joining.story()  # Kafka re-formed the group by itself
