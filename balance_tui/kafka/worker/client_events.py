"""Provides what librdkafka reports from inside `consume()`: statistics (log ends, whether brokers are up)
and the answers to asynchronous commits."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, TopicPartition

from balance_tui.core.offsets import parse_statistics
from balance_tui.core.rows import ConsumerStatus
from balance_tui.kafka.worker.lag_feed import note_commits
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.session_log import Event

EXPECTED_COMMIT_FAILURES = {
    KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._STATE,
}


class ClientEvents:
    """The consumer's `stats_cb` and `on_commit`, called on the worker's thread."""

    def __init__(self, state: MemberState, reporter: Reporter) -> None:
        self.state = state
        self.reporter = reporter

    def on_stats(self, stats_json: str) -> None:
        state = self.state
        statistics = parse_statistics(stats_json, state.settings.topic)
        if statistics is None:
            return
        state.offsets.apply_statistics(statistics, state.paused_partitions, state.restoring)
        now, status = time.monotonic(), self.reporter.status
        state.health.statistics(statistics.all_brokers_up, now, statistics.any_broker_up)
        if status.status == ConsumerStatus.BROKER_UNREACHABLE and statistics.any_broker_up:
            self.reporter.status_from_assignment()
        elif state.health.away and status.status not in (ConsumerStatus.BROKER_UNREACHABLE, ConsumerStatus.STOPPED) \
                and not status.fatal:
            # librdkafka says an outage once, and a `lost` after it would hide it: the statistics still know.
            state.health.unreachable(now, len(state.tracker.assignment))
            status.set(ConsumerStatus.BROKER_UNREACHABLE, "no broker is up")

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            note_commits(self.state, [(tp.partition, tp.offset) for tp in partitions if tp.error is None])
        elif error.code() in EXPECTED_COMMIT_FAILURES:
            # A commit that crossed a rebalance: harmless here (the changelog positions a new
            # owner), so it goes to the session log only, not to the screen.
            if error.code() != KafkaError._NO_OFFSET:
                self.reporter.write(Event.COMMIT_SKIPPED, code=error.name(), reason=error.str())
        else:
            self.reporter.kafka_error(error)
