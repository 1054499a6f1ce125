"""Provides what the worker does for each request of the UI (`balance_tui.control`), and how a loop ends.

Requests are typed dataclasses, handled with `match`; a loop ends with a typed outcome
(`Rejoin`, `Quit`, `StartOver`) instead of a string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from balance_tui.control import (
    AskGroupStrategy,
    ChangeWorkMs,
    ExportNow,
    Restart,
    SetStrategy,
    Stop,
    TogglePause,
    WorkerCommand,
)
from balance_tui.core.assignment import utc_now
from balance_tui.core.broker_profile import consumer_protocol_refusal
from balance_tui.core.group import GroupCommand
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.messages import KafkaErrorReported
from balance_tui.session_log import Event


@dataclass(frozen=True)
class Rejoin:
    """Close the consumer and join again (a new strategy, a restart, a switch, a refused re-assign)."""


@dataclass(frozen=True)
class Quit:
    """Export, leave the group and stop the worker."""

    reason: str


@dataclass(frozen=True)
class StartOver:
    """The broker came back as a new, empty cluster: drop everything and join it from scratch."""

    old_cluster: str | None
    new_cluster: str | None


LoopOutcome = Rejoin | Quit | StartOver


class Commands:
    """Carries out the UI's requests on this member's state; the consumer only for pausing."""

    def __init__(self, state: MemberState, reporter: Reporter, membership: GroupMembership,
                 export: Callable[[], object]) -> None:
        self.state = state
        self.reporter = reporter
        self.membership = membership
        self._export = export

    def handle(self, command: WorkerCommand, consumer: Consumer | None) -> LoopOutcome | None:
        match command:
            case Stop(reason=reason):
                return Quit(reason or "stopped")
            case SetStrategy(strategy=strategy):
                return self.change_strategy(strategy)
            case AskGroupStrategy(strategy=strategy):
                return self._ask_group(strategy)
            case Restart():
                self.reporter.write(Event.RESTARTED)
                self.state.lag.mark("restarted")
                self.reporter.timeline("restarted", "leaving the group and rejoining")
                return Rejoin()
            case TogglePause():
                if consumer is not None:
                    self._toggle_pause(consumer)
            case ChangeWorkMs(delta=delta):
                previous = self.state.work_ms
                self.state.work_ms = max(0.0, round(previous + float(delta), 3))
                if self.state.work_ms != previous:
                    self.reporter.write(Event.WORK_MS_CHANGED, **{"from": previous, "to": self.state.work_ms})
            case ExportNow():
                self._export()
        return None

    def change_strategy(self, strategy: str) -> LoopOutcome | None:
        """Leave and rejoin with `strategy` (Rejoin), unless the broker cannot serve it (None)."""
        if self._refused(strategy):
            return None
        previous, self.state.strategy = self.state.strategy, strategy
        self.reporter.session.strategy = strategy
        self.reporter.write(Event.STRATEGY_CHANGED, **{"from": previous, "to": strategy})
        self.state.lag.mark("strategy", f"{previous} → {strategy}")
        self.reporter.timeline("strategy_changed", f"strategy {previous} → {strategy}: leaving the group and "
                                                   "rejoining")
        return Rejoin()

    def _refused(self, strategy: str) -> bool:
        """True (and said) when the broker cannot serve `strategy` (KIP-848 on a broker without it)."""
        reason = consumer_protocol_refusal(self.state.broker, strategy)
        if reason is None:
            return False
        self.reporter.write(Event.ERROR, code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False)
        self.state.tracker.note("error", utc_now(), f"CONSUMER_PROTOCOL_UNSUPPORTED: {reason}")
        self.reporter.post(KafkaErrorReported(code="CONSUMER_PROTOCOL_UNSUPPORTED", reason=reason, fatal=False,
                                              hint=f"staying on {self.state.strategy}"))
        return True

    def _ask_group(self, strategy: str) -> LoopOutcome | None:
        if self._refused(strategy):
            return None
        request = GroupCommand(strategy=strategy, requested_by=self.state.consumer_id, requested_at=utc_now())
        if not self.membership.send(request):  # no members topic: this member alone
            return self.change_strategy(strategy)
        return None  # carried out when read back, by every member alike

    def _toggle_pause(self, consumer: Consumer) -> None:
        state = self.state
        owned = [TopicPartition(state.settings.topic, p) for p in sorted(state.tracker.assignment)]
        state.paused = not state.paused
        try:
            if owned:
                (consumer.pause if state.paused else consumer.resume)(owned)
            state.paused_partitions = set(state.tracker.assignment) if state.paused else set()
        except KafkaException as error:
            self.reporter.kafka_error(error.args[0])
        event = Event.PAUSED if state.paused else Event.RESUMED
        self.reporter.write(event, assignment=sorted(state.tracker.assignment))
        state.lag.mark(event.value)
        self.reporter.timeline(event, "consumption paused: partitions kept, lag grows" if state.paused
                               else "consumption resumed")
        self.reporter.status_from_assignment()
