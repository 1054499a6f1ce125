"""Provides one consumer's life: created, subscribed, polled until the loop ends, closed.

`ConsumptionLoop.run` is the poll loop: answer the UI's requests, read a batch, apply it,
then the periodic jobs (balances, commits, heartbeats, snapshots, stats). It returns a typed
outcome (`Rejoin`, `Quit`, `StartOver`) and never blocks on Kafka for long: commits never
wait for acknowledgements, an outage is shown as it happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from balance_tui.control import WorkerCommand
from balance_tui.core.assignment import utc_now
from balance_tui.core.broker_profile import consumer_protocol_refusal
from balance_tui.core.group import HEARTBEAT_SECONDS
from balance_tui.core.join_watch import WEDGED
from balance_tui.core.rows import ConsumerStatus
from balance_tui.kafka.admin import set_consumer_group_timeouts
from balance_tui.kafka.worker.applier import BatchApplier
from balance_tui.kafka.worker.client_events import ClientEvents
from balance_tui.kafka.worker.commands import (
    Commands,
    LoopOutcome,
    Quit,
    Rejoin,
    StartOver,
)
from balance_tui.kafka.worker.consumer_setup import consumer_config, quiet_logger
from balance_tui.kafka.worker.group_side import Every, GroupSide
from balance_tui.kafka.worker.lag_feed import observe as observe_lag
from balance_tui.kafka.worker.publishing import BalancePublisher
from balance_tui.kafka.worker.rebalance import RebalanceHandler
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.kafka.worker.views import snapshot, stats_line
from balance_tui.session_log import STATS_SECONDS, Event

BALANCE_BATCH_SECONDS = 0.1
PAUSED_WATERMARK_SECONDS = 2.0
#: Heartbeats are read four times a second, so the newest one held is never near the silence threshold.
GROUP_READ_SECONDS = 0.25
#: How long a periodic changelog flush waits for its commits: one still running goes on in the background,
#: and its changes go with the next flush. Short, so the loop never stops answering for long.
FLUSH_SECONDS = 2.0



class ConsumptionLoop:
    """One consumer of this member, from its creation to its close."""

    def __init__(self, state: MemberState, reporter: Reporter, balances: BalancePublisher, group: GroupSide,
                 commands: Commands, handler: RebalanceHandler, next_command: Callable[[], WorkerCommand | None],
                 room_until: Callable[[], float]) -> None:
        self.state = state
        self.reporter = reporter
        self.balances = balances
        self.group = group
        self.commands = commands
        self.handler = handler
        self._next_command = next_command
        self._room_until = room_until
        self.applier = BatchApplier(state, reporter, balances, self.give_room)
        self.consumer = self._create()
        group.consumer = self.consumer

    # -- created and closed ----------------------------------------------------------------------

    def _create(self) -> Consumer:
        state, reporter = self.state, self.reporter
        events = ClientEvents(state, reporter)
        callbacks: dict[str, Callable[..., Any]] = {"stats_cb": events.on_stats, "error_cb": reporter.kafka_error,
                                                    "on_commit": events.on_commit}
        config = consumer_config(state.settings, state.strategy, state.consumer_id, quiet_logger(state.consumer_id),
                                 callbacks)
        if "group.protocol" in config and not state.group_timeouts_set:
            self._set_group_timeouts()
        consumer = Consumer(config)
        state.paused_partitions = set()
        reporter.status.set(ConsumerStatus.CONNECTING)
        try:
            # A full listing: naming the topic would make Tansu auto-create it with its default count.
            metadata = consumer.list_topics(timeout=5)
            if state.health.cluster_id is None:
                state.health.cluster_id = metadata.cluster_id
            topic = metadata.topics.get(state.settings.topic)
            if topic is not None and topic.error is None and topic.partitions:
                state.partition_count = len(topic.partitions)
        except KafkaException as error:
            reporter.kafka_error(error.args[0])
        consumer.subscribe([state.settings.topic], on_assign=self.handler.on_assign,
                           on_revoke=self.handler.on_revoke, on_lost=self.handler.on_lost)
        state.tracker.joining(utc_now())
        if reporter.status.status != ConsumerStatus.BROKER_UNREACHABLE:
            reporter.status.set(ConsumerStatus.JOINING, "0s")
        reporter.errors.new_join()
        self.group.membership.joining.new_join()
        return consumer

    def _set_group_timeouts(self) -> None:
        """KIP-848: session and heartbeat timeouts are the group's; set them to ours, once."""
        settings = self.state.settings
        self.state.group_timeouts_set = True
        refused = set_consumer_group_timeouts(settings.client_config(), settings.group,
                                              settings.session_timeout_ms, settings.heartbeat_interval_ms)
        if refused is None:
            self.reporter.write(Event.GROUP_CONFIG, **{"consumer.session.timeout.ms": settings.session_timeout_ms,
                                                   "consumer.heartbeat.interval.ms": settings.heartbeat_interval_ms})
            return
        self.reporter.write(Event.GROUP_CONFIG, refused=refused)
        self.reporter.timeline("group_config", f"the broker keeps its own session timeout for this KIP-848 group "
                                               f"({refused}); a member that dies is detected after that")

    def close(self) -> None:
        """Leave the group; out of it, this member owns nothing (the next join restores what it assigns)."""
        state = self.state
        self.balances.flush(state.ledger)
        self.handler.closing = True
        try:
            self.consumer.close()  # revokes (our callback commits what the changelog covers) and leaves the group
        except KafkaException as error:
            self.reporter.kafka_error(error.args[0])
        except RuntimeError as error:  # already closed
            self.reporter.failure(str(error))
        self.group.consumer = None
        # Partitions it does not assign again must not linger on screen or in exports.
        held = set(state.tracker.assignment) | state.tracker.pending_revoked | set(state.offsets.position)
        state.tracker.reset_membership()
        if state.changelog is not None:
            state.changelog.cancel_restores(sorted(state.changelog.restoring))
        self.handler.forget(sorted(held))

    def flush(self, commit_offsets: bool = False, *, waits: bool = True) -> None:
        """Write the changelog's pending changes (before an export `waits` for the commits: both tell the same)."""
        # An unreachable broker would make the flush wait its timeout out: the next one tries again. The
        # statistics (every second) may know before any error says so.
        reachable = self.reporter.status.status is not ConsumerStatus.BROKER_UNREACHABLE and not self.state.health.away
        self.handler.commits.flush_and_commit(self.consumer, commit_offsets=commit_offsets,
                                              timeout=FLUSH_SECONDS if reachable else 0.0, waits=waits)

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> LoopOutcome:
        """Until a rejoin, a stop or a new cluster; everything periodic is scheduled here."""
        schedule = _Schedule(time.monotonic(), self.state.settings)
        while True:
            outcome = self._answer_requests()
            if outcome is not None:
                return outcome
            self.give_room()
            if self.state.restoring:
                self.handler.restore_step(self.consumer)
            if self.handler.rejoin_requested:
                return Rejoin()
            try:
                messages = self.consumer.consume(self._batch_size(), timeout=0.005 if self.state.restoring else 0.05)
            except KafkaException as error:
                self.reporter.kafka_error(error.args[0])
                messages = []
            except RuntimeError:
                return Quit("consumer closed")
            if messages:
                self.applier.apply(messages)
            outcome = self._check_changelog_refused() or self._periodic(schedule)
            if outcome is not None:
                return outcome

    def give_room(self) -> None:
        """While the UI answers a key, let it have the interpreter (it says when, at most 200 ms)."""
        while self._room_until() > time.monotonic():
            time.sleep(0.002)

    def _answer_requests(self) -> LoopOutcome | None:
        while (command := self._next_command()) is not None:
            outcome = self.commands.handle(command, self.consumer)
            if outcome is not None:
                return outcome
        return None

    def _batch_size(self) -> int:
        """Small batches when processing is slow, so requests are answered quickly."""
        work_ms = self.state.work_ms
        return 1000 if work_ms <= 0 else max(1, min(1000, int(50 / work_ms)))

    def _periodic(self, schedule: _Schedule) -> LoopOutcome | None:
        state, now = self.state, time.monotonic()
        if schedule.due("balances", now):
            self.balances.flush(state.ledger)
        if state.changelog is None:
            if schedule.due("commit", now):
                self.handler.commits.flush_and_commit(self.consumer, commit_offsets=True, timeout=0.0)
        elif schedule.due("flush", now):
            self.flush(commit_offsets=schedule.due("commit", now), waits=False)
        if schedule.due("group_read", now) and self.group.read():
            return Rejoin()
        if schedule.due("beat", now):
            self.group.beat()
        if state.health.back_after_outage:
            new_cluster = self._check_broker_back()
            if new_cluster is not None:
                return new_cluster
        if self.reporter.status.status == ConsumerStatus.JOINING and self.handler.join_started is not None \
                and self._joining_tick(now):
            return Rejoin()
        if state.paused and schedule.due("watermarks", now):
            self._refresh_paused_watermarks()
        if schedule.due("snapshot", now):
            self.reporter.post(snapshot(state, self.reporter.status.status, self.group.membership, self.consumer, now,
                                        lag=observe_lag(state, self.reporter)))
        if schedule.due("stats", now):
            self.reporter.write(Event.STATS, **stats_line(state, self.reporter.status.status, now))
        return None

    def _joining_tick(self, now: float) -> bool:
        """While joining: the seconds waited (and why the group refuses us); True to rejoin with the group's
        strategy after being refused too long."""
        assert self.handler.join_started is not None
        state, membership = self.state, self.group.membership
        joining, waited = membership.joining, now - self.handler.join_started
        self.reporter.status.set(ConsumerStatus.JOINING, f"{waited:.0f}s"
                                                         + (f" · {joining.refusal}" if joining.refusal else ""))
        reason = joining.stuck(membership.view, state.strategy, now, waited, state.owns_partitions,
                               state.partition_count)
        if reason is not None:
            self._reset_stuck_group(reason, waited)
            return False
        target = joining.heal_target(membership.strategies(), state.strategy, now, state.owns_partitions)
        if target is None or consumer_protocol_refusal(state.broker, target[0]):
            return False
        strategy, refused_for = target
        self.reporter.write(Event.REFUSAL_HEALED, **{"from": state.strategy, "to": strategy,
                                                 "refused_for_s": round(refused_for, 1)})
        self.reporter.timeline("strategy_changed", f"the group refused {state.strategy} for {refused_for:.0f} s and "
                                                   f"every member in it uses {strategy}: rejoining with {strategy}")
        return isinstance(self.commands.change_strategy(strategy), Rejoin)

    def _reset_stuck_group(self, reason: str, waited: float) -> None:
        """All on our protocol, the group refuses us though nobody owns a partition (wedged) or never assigns
        though partitions have no owner (stalled): reset it, as a group-wide switch would."""
        state = self.state
        outcome = self.group.membership.reset_emptied_group(state.health.admin_requests_safe(time.monotonic()))
        self.reporter.write(Event.GROUP_RESET, by=state.consumer_id, outcome=outcome, reason=reason)
        why = (f"the group refused {state.strategy} though no member owns a partition" if reason == WEDGED else
               f"the join went {waited:.0f} s without an assignment or a refusal while partitions have no owner")
        self.reporter.timeline("group_reset", f"{why}, all on {state.strategy}: reset asked, {outcome}")

    def _check_changelog_refused(self) -> LoopOutcome | None:
        """The cluster refuses this member transactions: balances cannot be kept exact, so stop and say why."""
        changelog = self.state.changelog
        if changelog is None or changelog.refused is None:
            return None
        self.reporter.failure(f"the changelog needs Kafka transactions and the cluster refuses them "
                              f"({changelog.refused}); grant this user transactional ids "
                              f"{self.state.settings.changelog_topic_name}-*, or run with --changelog off",
                              fatal=True)
        return Quit(f"changelog refused: {changelog.refused}")

    # -- librdkafka callbacks and the broker ---------------------------------------------------------

    def _refresh_paused_watermarks(self) -> None:
        """While paused nothing is fetched, so ask the broker for the end offsets.

        The embedded broker answers ListOffsets with the start of the last batch + 1,
        never more than the true end: keeping the maximum of what we know stays right
        or slightly low, and lets the lag visibly grow during the pause.
        """
        if self.reporter.status.status is ConsumerStatus.BROKER_UNREACHABLE:
            return  # each request would wait its timeout out: the loop must keep going
        for partition in sorted(self.state.tracker.assignment):
            try:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(self.state.settings.topic, partition),
                                                              timeout=0.2, cached=False)
            except KafkaException:
                continue
            if high >= 0:
                self.state.offsets.raise_high_watermark(partition, high)

    def _check_broker_back(self) -> StartOver | None:
        """The broker answers again: the same cluster (data kept, None), or a new one (StartOver).

        A broker restarted on memory storage (Tansu) comes back as a new, empty cluster: its topics,
        committed offsets and changelog are gone, and every balance this member held belongs to a
        world that no longer exists. A broker that kept its data (Apache Kafka) is the same
        cluster, and consumption simply resumes where it was.
        """
        health, now = self.state.health, time.monotonic()
        outage = health.outage_over(now)
        try:
            cluster = self.consumer.list_topics(timeout=2).cluster_id
        except KafkaException:
            health.still_out(now, outage)  # not really back: look again later
            return None
        if cluster == health.cluster_id or cluster is None or health.cluster_id is None:
            self.reporter.write(Event.BROKER_BACK, outage_s=round(outage, 1), cluster_id=cluster, same_cluster=True)
            self.reporter.timeline("broker_back", f"broker reachable again after {outage:.0f} s, same cluster: "
                                                  "consumption resumes where it was")
            return None
        return StartOver(health.cluster_id, cluster)


class _Schedule:
    """The consume loop's periodic jobs and when each is next due."""

    def __init__(self, now: float, settings: Any) -> None:
        commit_every = settings.commit_interval_ms / 1000.0
        self._jobs = {
            "balances": Every(BALANCE_BATCH_SECONDS, now + BALANCE_BATCH_SECONDS),
            "commit": Every(commit_every, now + commit_every),
            "flush": Every(settings.flush_interval_ms / 1000.0, now + settings.flush_interval_ms / 1000.0),
            "group_read": Every(GROUP_READ_SECONDS, now),
            "beat": Every(HEARTBEAT_SECONDS, now),
            "watermarks": Every(PAUSED_WATERMARK_SECONDS, now),
            "snapshot": Every(1.0 / settings.refresh_hz, now),
            "stats": Every(STATS_SECONDS, now + STATS_SECONDS),
        }

    def due(self, job: str, now: float) -> bool:
        return self._jobs[job].due(now)
