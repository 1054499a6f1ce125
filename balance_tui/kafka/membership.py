"""Provides this member's part in the whole group: heartbeats, group-wide commands, refusals.

`GroupMembership` owns the members-topic beacon and the `GroupView` built from everyone's
heartbeats (and the broker's DescribeGroups where it tells the truth), the group-wide
strategy switch in progress, and this member's join attempts (`JoinWatch`).
The worker calls it from its loop; nothing here touches the consumer. docs/group-view.md.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import KafkaException

from balance_tui.config import Settings
from balance_tui.core.assignment import utc_now
from balance_tui.core.group import (
    GROUP_RESET,
    Departure,
    GroupCommand,
    GroupView,
    MemberHeartbeat,
)
from balance_tui.core.join_watch import JoinWatch
from balance_tui.errors import UserError
from balance_tui.kafka.admin import (
    bootstrap_accepts_connections,
    delete_empty_group,
    group_state,
)
from balance_tui.kafka.members import MemberBeacon
from balance_tui.messages import GroupChanged

#: How often a member waiting in a group-wide switch tries to reset the emptied group.
RESET_TRY_SECONDS = 0.5
#: Where a reset deletes the group (Tansu), the requester of the switch does it; the others only
#: after this long without its reset (it may have died): a second delete can hit a group that the
#: first one's members are already joining again, and Tansu then refuses every member's protocol.
RESET_BY_OTHERS_AFTER_SECONDS = 3.0


@dataclass(frozen=True)
class ResetOutcome:
    """How a wait in a group-wide switch ended: `by` who reset the group (None: the deadline passed)."""

    by: str | None
    outcome: str
    attempts: tuple[str, ...] = ()
    #: The reset message read from another member, if that is how the wait ended.
    command: GroupCommand | None = None


class GroupMembership:
    """The beacon, the group view, a group-wide switch in progress, and how the join goes."""

    def __init__(self, settings: Settings, consumer_id: str) -> None:
        self.settings = settings
        self.consumer_id = consumer_id
        self.view = GroupView(own_consumer_id=consumer_id)
        self.beacon: MemberBeacon | None = None
        #: A group-wide switch in progress: rejoin only once the emptied group was reset.
        self.switch: GroupCommand | None = None
        #: This member's join attempts: a refusal, a silent join, and when either is healed.
        self.joining = JoinWatch(consumer_id, settings.session_timeout_ms)
        self._last_heartbeat: MemberHeartbeat | None = None

    # -- the beacon ------------------------------------------------------------------------

    def open(self) -> str | None:
        """Open the members topic; why not, if it cannot be used (the panel then shows this member only)."""
        try:
            self.beacon = MemberBeacon(self.settings, self.consumer_id)
        except (UserError, KafkaException) as error:
            return str(error)
        return None

    def forget_group(self) -> None:
        """On a new cluster: the members it knew belong to the old one."""
        self.view = GroupView(own_consumer_id=self.consumer_id)

    def goodbye(self, heartbeat: MemberHeartbeat) -> None:
        if self.beacon is not None:
            try:
                self.beacon.goodbye(heartbeat)
            except (KafkaException, RuntimeError):
                pass

    def close(self) -> None:
        if self.beacon is not None:
            try:
                self.beacon.close()
            except (KafkaException, RuntimeError):
                pass
            self.beacon = None

    def describe_soon(self) -> None:
        """After a rebalance: the broker's last DescribeGroups answer is stale."""
        if self.beacon is not None:
            self.beacon.describe_soon()

    # -- heartbeats and commands -------------------------------------------------------------

    def beat(self, heartbeat: MemberHeartbeat, own_partitions: int, ask_broker: bool,
             partition_count: int) -> tuple[GroupChanged, list[Departure]]:
        """Publish our heartbeat; the group as it stands, and who left the view since the last beat."""
        now, view = heartbeat.sent_at, self.view
        view.observe(heartbeat, now)
        self._last_heartbeat = heartbeat
        if self.beacon is not None:
            self.beacon.publish(heartbeat)
            self.beacon.refresh_broker_members(own_partitions=own_partitions, ask=ask_broker)
            view.broker_group = self.beacon.broker_group
            view.broker_describes = self.beacon.describe_verdict.usable
        rows = view.rows(now)
        changed = GroupChanged(
            rows=tuple(rows), unowned=tuple(view.unowned_partitions(partition_count)),
            capacity=view.capacity_text(partition_count),
            partition_lag=tuple(view.partition_lag(partition_count, now)),
            source=view.source_text(), cross_check=tuple(view.cross_check()),
            problem=None if self.beacon is not None else "members topic unavailable",
            broker_state=(view.broker_group.state or None) if view.broker_group is not None else None,
        )
        return changed, view.take_departures()

    def read(self, now: datetime | None = None) -> tuple[list[GroupCommand], list[GroupCommand]]:
        """Take in the heartbeats read since the last call: (switch commands, group resets), in log order."""
        if self.beacon is None:
            return [], []
        now = now or utc_now()
        switches: list[GroupCommand] = []
        resets: list[GroupCommand] = []
        for message in self.beacon.poll(now):
            if isinstance(message, GroupCommand):
                (resets if message.kind == GROUP_RESET else switches).append(message)
            else:
                self.view.observe(message, now)
        return switches, resets

    def send(self, command: GroupCommand) -> bool:
        """Send a group command (carried out when read back, by every member alike); False without a beacon."""
        if self.beacon is None:
            return False
        self.beacon.send_command(command)
        return True

    # -- the group-wide switch -----------------------------------------------------------------

    def wait_for_reset(self, strategy: Callable[[], str], adopt: Callable[[GroupCommand], object],
                       tick: Callable[[], None], admin_safe: Callable[[], bool]) -> ResetOutcome:
        """Between leaving and rejoining in a group-wide switch: wait until the group is reset.

        Every member left; whoever first finds the group empty resets it (see `reset_emptied_group`)
        and tells the others. A newer command read meanwhile is adopted (the last one wins).
        Bounded: after the deadline this member rejoins anyway. `tick` keeps heartbeats and the
        session log's stats going meanwhile.
        """
        assert self.beacon is not None
        started = time.monotonic()
        deadline = started + max(15.0, 2 * self.settings.session_timeout_ms / 1000)
        next_try = 0.0
        barrier: datetime | None = None
        attempts: list[str] = []
        while time.monotonic() < deadline:
            tick()
            switches, resets = self.read()
            for command in switches:
                adopt(command)  # a newer request while waiting: it wins
            if resets:
                return ResetOutcome(by=resets[0].requested_by, outcome="reset", command=resets[0])
            formed = self._formed_without_us(strategy())
            if formed is not None:
                return ResetOutcome(by=formed, outcome="already formed")
            now = time.monotonic()
            if now >= next_try and self._may_reset(now - started):
                # Only with everything appended before now read: a command or a reset sent by another
                # member a moment ago changes what (and whether) to reset.
                if barrier is None:
                    barrier = self._send_barrier()
                elif self.beacon.read_past(barrier):
                    barrier, next_try = None, now + RESET_TRY_SECONDS
                    outcome = self.reset_emptied_group(admin_safe())
                    attempts.append(outcome)
                    if outcome in ("deleted", "gone", "empty") or outcome.startswith("refused"):
                        if outcome in ("deleted", "empty"):  # the one who saw it tells the others to rejoin now
                            self.beacon.send_command(GroupCommand(strategy=strategy(), requested_by=self.consumer_id,
                                                                  requested_at=utc_now(), kind=GROUP_RESET))
                        return ResetOutcome(by=self.consumer_id, outcome=outcome)
            time.sleep(0.05)  # a bounded retry loop, the consumer is closed meanwhile
        return ResetOutcome(by=None, outcome="deadline passed: rejoining anyway", attempts=tuple(sorted(set(attempts))))

    def _may_reset(self, waited: float) -> bool:
        """Whether this member may try the reset now: on a broker whose DescribeGroups says when the
        group is empty anyone may; where a reset deletes the group, its requester first."""
        assert self.beacon is not None
        if self.beacon.describe_verdict.usable or self.switch is None:
            return True
        return self.switch.requested_by == self.consumer_id or waited >= RESET_BY_OTHERS_AFTER_SECONDS

    def _send_barrier(self) -> datetime:
        """Publish our heartbeat again, stamped now; once it is read back, everything before it was read."""
        assert self.beacon is not None
        moment = utc_now()
        if self._last_heartbeat is not None:
            self.beacon.publish(dataclasses.replace(self._last_heartbeat, sent_at=moment))
        return moment

    def _formed_without_us(self, strategy: str) -> str | None:
        """Who already owns partitions on `strategy` since the switch was asked for: nothing to reset.

        A member frozen (or slow) across a switch reads it after the others carried it out; a reset
        then would delete a group with live members on Tansu, and wait for an `Empty` that never
        comes on Kafka.
        """
        if self.switch is None:
            return None
        return self.view.formed_on(strategy, self.switch.requested_at)

    def reset_emptied_group(self, admin_safe: bool) -> str:
        """Make the emptied group take a new protocol: "empty", "deleted", "gone", "not empty", "retry", ...

        Apache Kafka forgets an empty group's protocol by itself, and its DescribeGroups says when
        the group is empty: nothing is deleted there (the committed offsets stay). Tansu keeps an
        emptied group's protocol forever and cannot describe groups: the group is deleted. Never a
        coordinator admin request to a broker that is not there (librdkafka #4605).
        """
        config, group = self.settings.client_config(), self.settings.group
        if not bootstrap_accepts_connections(config):
            return "retry"
        if self.beacon is not None and self.beacon.describe_verdict.usable:
            state = group_state(config, group)
            return "empty" if state in ("Empty", "Dead", "gone") else ("not empty" if state != "retry" else state)
        return delete_empty_group(config, group)

    # -- the group's strategies ---------------------------------------------------------------

    def strategies(self) -> set[str]:
        """The strategies of the other members that are in the group now (they own partitions).

        Members that own nothing may be joining, switching or refused themselves: what the group
        uses is what its assigned members use.
        """
        members = [m for m in self.view.members() if m.consumer_id != self.consumer_id]
        assigned = {m.strategy for m in members if m.assignment}
        return assigned or {m.strategy for m in members}
