"""Provides what the worker shows of itself: the snapshot for the screen, the `stats` line, the export."""

from __future__ import annotations

from datetime import datetime

from confluent_kafka import Consumer

from balance_tui.core.assignment import iso_ms, utc_now
from balance_tui.core.export import ExportState
from balance_tui.core.group import export_members, export_partitions
from balance_tui.core.lag_view import LagView
from balance_tui.core.lag_view import stats_fields as lag_stats_fields
from balance_tui.core.member_view import (
    PartitionScene,
    counters,
    partition_rows,
    stats_fields,
)
from balance_tui.core.rows import ConsumerStatus
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.consumer_setup import membership_of
from balance_tui.kafka.worker.state import MemberState
from balance_tui.messages import Snapshot


def snapshot(state: MemberState, status: ConsumerStatus, membership: GroupMembership, consumer: Consumer | None,
             now: float, lag: LagView | None = None) -> Snapshot:
    """Counters, the partitions table and the lag view, a few times a second."""
    owned = state.tracker.assignment
    lags = state.offsets.lag_by_partition(owned, state.restoring)
    progress = ({p: (r.records, r.total) for p, r in state.changelog.progress().items()}
                if state.changelog is not None and state.restoring else {})
    scene = PartitionScene(count=state.partition_count, owned=frozenset(owned), restoring=frozenset(state.restoring),
                           paused=frozenset(state.paused_partitions),
                           recently_revoked=frozenset(state.tracker.revoked_at), progress=progress)
    others = {p: membership.view.log_end(p) for p in range(state.partition_count) if p not in owned}
    generation, member_id = membership_of(consumer)
    return Snapshot(
        counters=counters(state.throughput, state.ledger, state.rejections, lags, owned, now),
        partitions=partition_rows(scene, state.offsets, lags, state.offsets.rates(now), others),
        status=status, generation=generation, member_id=member_id, strategy=state.strategy,
        work_ms=state.work_ms, paused=state.paused, lag=lag,
    )


def stats_line(state: MemberState, status: ConsumerStatus, now: float) -> dict[str, object]:
    owned = state.tracker.assignment
    lags = state.offsets.lag_by_partition(owned, state.restoring)
    return {**stats_fields(state.throughput, state.rejections, lags, owned, status.value, now),
            **lag_stats_fields(state.lag.view)}


def export_state(state: MemberState, status: ConsumerStatus, membership: GroupMembership,
                 started_at: datetime) -> ExportState:
    """The export's content: the lab's ConsumerGroupMetrics, the balances, and what we measure besides."""
    settings = state.settings
    return ExportState(
        consumer_id=state.consumer_id, group_id=settings.group, topic=settings.topic, strategy=state.strategy,
        status=status.value, assigned_partitions=sorted(state.tracker.assignment),
        messages_consumed=state.throughput.consumed, balance_updates=state.ledger.applied,
        processing_errors=state.throughput.processing_errors, rejected=state.rejections.total,
        partition_offsets=dict(state.offsets.position), history=list(state.tracker.history), started_at=started_at,
        last_message_at=state.throughput.last_message_at, balances=state.ledger.rows(), exported_at=utc_now(),
        lag=state.lag.view, replayed=state.ledger.replayed,
        extra={"rejectedByReason": dict(sorted(state.rejections.by_reason.items())),
               "recentRejections": [{**entry, "at": iso_ms(entry["at"])} for entry in state.rejections.recent],
               "group": export_members(membership.view, utc_now()),
               "groupPartitions": export_partitions(membership.view, state.partition_count, utc_now()),
               "broker": state.broker.label},
    )
