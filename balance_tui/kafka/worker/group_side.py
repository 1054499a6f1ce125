"""Provides this member's side of the whole group, driven from the worker's loop: its heartbeat, the
group-wide switches it reads (the last one wins), and the wait for the emptied group's reset."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer

from balance_tui.core.assignment import utc_now
from balance_tui.core.group import HEARTBEAT_SECONDS, GroupCommand, MemberHeartbeat
from balance_tui.core.lag_view import LagView
from balance_tui.core.offsets import total_lag
from balance_tui.core.rows import ConsumerStatus
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.commands import LoopOutcome, Rejoin
from balance_tui.kafka.worker.consumer_setup import membership_of
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.session_log import STATS_SECONDS, Event


def lag_fields(view: LagView | None) -> dict[str, Any]:
    """The heartbeat's lag fields from this member's lag view: the Group panel of every terminal shows them."""
    if view is None:
        return {}
    alert = view.alert
    return {"lag_seconds": view.lag_seconds, "lag_status": view.status.name,
            "lag_alert": alert.state.value if alert is not None else None,
            "lag_alert_since": (datetime.fromtimestamp(alert.raised_at, UTC)
                                if alert is not None and alert.firing and alert.raised_at is not None else None)}


class Every:
    """Due once every `seconds` (first at `start`, default at once)."""

    def __init__(self, seconds: float, start: float = 0.0) -> None:
        self.seconds = seconds
        self.next = start

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.seconds
        return True


class GroupSide:
    """Heartbeats out, group commands in, for the member whose state is `state`."""

    def __init__(self, state: MemberState, reporter: Reporter, membership: GroupMembership,
                 change_strategy: Callable[[str], LoopOutcome | None], log_stats: Callable[[], None]) -> None:
        self.state = state
        self.reporter = reporter
        self.membership = membership
        self._change_strategy = change_strategy
        self._log_stats = log_stats
        #: The consumer in use, for the generation in the heartbeat (None between two joins).
        self.consumer: Consumer | None = None

    def heartbeat(self) -> MemberHeartbeat:
        state = self.state
        owned = state.tracker.assignment
        lags = state.offsets.lag_by_partition(owned, state.restoring)
        positions, highs, commits = state.offsets.owned_figures(owned, state.restoring)
        return MemberHeartbeat(
            consumer_id=state.consumer_id, host=socket.gethostname(), pid=os.getpid(), strategy=state.strategy,
            status=self.reporter.status.status.value, assignment=tuple(sorted(owned)),
            generation=membership_of(self.consumer)[0], lag=total_lag(lags, owned),
            rate=state.throughput.rate.rate(time.monotonic()), work_ms=state.work_ms, sent_at=utc_now(),
            session_timeout_ms=state.settings.session_timeout_ms, position_by_partition=positions,
            high_watermark_by_partition=highs, committed_by_partition=commits, **lag_fields(state.lag.view),
        )

    def beat(self) -> None:
        """Publish this member's heartbeat and show the group as it stands."""
        state = self.state
        changed, departures = self.membership.beat(
            self.heartbeat(), len(state.tracker.assignment), state.health.admin_requests_safe(time.monotonic()),
            state.partition_count)
        for gone in departures:
            kind = "member_left" if gone.reason == "left" else "member_gone"
            self.reporter.timeline(kind, gone.timeline_text(), gone.partitions)
        self.reporter.post(changed)

    def read(self) -> bool:
        """Take in the members' heartbeats and carry out group commands; True to rejoin for one."""
        switches, resets = self.membership.read()
        rejoin = False
        for command in switches:
            rejoin = self.adopt(command) or rejoin
        switch = self.membership.switch
        done = next((reset for reset in resets if switch is not None and reset.strategy == switch.strategy
                     and reset.requested_at >= switch.requested_at), None)
        if done is not None:
            # Read late (this member was frozen, or slow): the others already reset the group for this
            # switch and rejoined. Join them; resetting again would hurt the group they formed.
            self.membership.switch = None
            self._reset_by(done)
        return rejoin

    def _reset_by(self, reset: GroupCommand) -> None:
        """Another member reset the emptied group for the switch: say so (the rejoin follows)."""
        self.reporter.write(Event.GROUP_RESET, by=reset.requested_by)
        self.reporter.timeline("group_reset", reset.timeline_text())

    def adopt(self, command: GroupCommand) -> bool:
        """Take a group-wide switch in: True if this member must leave and rejoin for it.

        Commands are read in the members topic's order (one partition), the same for every
        member, and the latest one read wins: concurrent requests resolve to the strategy of the
        last, whatever each member was doing when it read the earlier ones.
        """
        self.reporter.write(Event.GROUP_COMMAND, strategy=command.strategy, requested_by=command.requested_by,
                            requested_at=command.requested_at, command_id=command.command_id)
        self.reporter.timeline("strategy_requested", command.timeline_text())
        if command.strategy == self.state.strategy or not isinstance(self._change_strategy(command.strategy),
                                                                     Rejoin):
            return False
        self.membership.switch = command
        return True

    def wait_for_reset(self) -> None:
        """Between leaving and rejoining in a group-wide switch: wait until the group is reset."""
        state, reporter = self.state, self.reporter
        reporter.status.set(ConsumerStatus.REBALANCING, f"switching the whole group to {state.strategy}")
        beats = Every(HEARTBEAT_SECONDS)
        stats = Every(STATS_SECONDS, start=time.monotonic() + STATS_SECONDS)

        def tick() -> None:
            now = time.monotonic()
            if beats.due(now):
                self.beat()
            if stats.due(now):  # the session log's contract: stats at least every 5 s, whatever happens
                self._log_stats()

        ended = self.membership.wait_for_reset(lambda: state.strategy, self.adopt, tick,
                                               lambda: state.health.admin_requests_safe(time.monotonic()))
        self.membership.switch = None
        if ended.by is None:
            reporter.write(Event.GROUP_RESET, by=None, outcome=ended.outcome, attempts=list(ended.attempts))
        elif ended.command is not None:
            self._reset_by(ended.command)
        else:
            reporter.write(Event.GROUP_RESET, by=ended.by, outcome=ended.outcome)
            if ended.outcome == "already formed":
                reporter.timeline("group_reset", f"the group already runs {state.strategy} ({ended.by} owns "
                                                 "partitions): rejoining without a reset")
            else:
                reporter.timeline("group_reset", f"group {ended.outcome} before rejoining with {state.strategy}")
