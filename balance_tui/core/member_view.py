"""Provides what one member shows of itself: its partitions table, its counters, and its throughput.

The worker keeps the figures (`PartitionOffsets`, the ledger, the rejections, `Throughput`);
the functions here turn them into the immutable rows of `core.rows` for the screen, the
heartbeat and the session log. Pure: no Kafka, no Textual; times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from balance_tui.core.error_reports import RejectionLog
from balance_tui.core.ledger import Ledger
from balance_tui.core.metrics import LatencyWindow, RateMeter
from balance_tui.core.offsets import PartitionOffsets, total_lag
from balance_tui.core.rows import Counters, PartitionRow, PartitionState


@dataclass
class Throughput:
    """Records consumed, their rate, and the end-to-end latency of the balances they changed."""

    consumed: int = 0
    last_message_at: datetime | None = None
    rate: RateMeter = field(default_factory=RateMeter)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    processing_errors: int = 0
    kafka_errors: int = 0
    #: Records consumed and transactions applied, per partition (the worker's hot path counts them).
    consumed_by_partition: dict[int, int] = field(default_factory=dict)
    applied_by_partition: dict[int, int] = field(default_factory=dict)

    def batch(self, records: int, produced_at_ms: list[int], now: float, wall_ms: float,
              at: datetime) -> None:
        """A batch was processed: `records` consumed, `produced_at_ms` the producer timestamps it applied.

        End-to-end latency runs from the producer's timestamp to the end of the batch, when the
        balances it changed are applied (a batch lasts at most ~50 ms of simulated work).
        """
        self.consumed += records
        if records:
            self.last_message_at = at
        self.rate.add(records, now)
        if produced_at_ms:
            self.latency.extend([wall_ms - produced for produced in produced_at_ms], now)

    @property
    def errors(self) -> int:
        return self.processing_errors + self.kafka_errors


@dataclass(frozen=True)
class PartitionScene:
    """Which partitions are where, for the partitions table."""

    count: int
    owned: frozenset[int]
    restoring: frozenset[int]
    paused: frozenset[int]
    recently_revoked: frozenset[int]
    #: Restores in progress: partition -> (records read, total when known).
    progress: Mapping[int, tuple[int, int | None]]


def partition_rows(scene: PartitionScene, offsets: PartitionOffsets, lags: Mapping[int, int],
                   rates: Mapping[int, float], log_end_of_others: Mapping[int, int | None]) -> tuple[PartitionRow, ...]:
    """Every partition of the topic, mine or not. Another member's partition is not fetched here: its
    owner's heartbeat says where it ends (`log_end_of_others`)."""
    rows = []
    restoring = set(scene.restoring)
    for partition in range(scene.count):
        mine = partition in scene.owned
        progress = scene.progress.get(partition) if partition in scene.restoring else None
        if mine and partition in scene.restoring:
            state = PartitionState.RESTORING
        elif mine:
            state = PartitionState.PAUSED if partition in scene.paused else PartitionState.CONSUMING
        elif partition in scene.recently_revoked:
            state = PartitionState.REVOKED
        else:
            state = PartitionState.NOT_MINE
        rows.append(PartitionRow(
            partition=partition, mine=mine, state=state,
            position=offsets.shown_position(partition, restoring) if mine else None,
            high_watermark=offsets.known_high(partition) if mine else log_end_of_others.get(partition),
            lag=lags.get(partition) if mine else None,
            rate=rates.get(partition, 0.0) if mine else 0.0,
            restored=progress[0] if progress else None,
            restore_total=progress[1] if progress else None,
        ))
    return tuple(rows)


def counters(throughput: Throughput, ledger: Ledger, rejections: RejectionLog, lags: Mapping[int, int],
             owned: Iterable[int], now: float) -> Counters:
    """The counters panel's figures."""
    p50, p99 = throughput.latency.percentiles(now)
    return Counters(
        consumed=throughput.consumed, applied=ledger.applied, skipped=ledger.skipped,
        rejected=rejections.total, last_rejection=rejections.last, errors=throughput.errors,
        rate=throughput.rate.rate(now), rate_history=throughput.rate.history(now),
        lag=total_lag(lags, owned), latency_p50_ms=p50, latency_p99_ms=p99,
        rejected_by_reason=dict(rejections.by_reason), processing_errors=throughput.processing_errors,
        last_message_at=throughput.last_message_at, replayed=ledger.replayed,
        consumed_by_partition=dict(throughput.consumed_by_partition),
        applied_by_partition=dict(throughput.applied_by_partition),
    )


def stats_fields(throughput: Throughput, rejections: RejectionLog, lags: Mapping[int, int],
                 owned: Iterable[int], status: str, now: float) -> dict[str, object]:
    """The session log's `stats` line."""
    owned = sorted(owned)
    return {
        "consumed": throughput.consumed, "rate": round(throughput.rate.rate(now), 1),
        "lag": total_lag(lags, owned), "lag_by_partition": {str(p): v for p, v in sorted(lags.items())},
        "rejected": rejections.total, "rejected_by_reason": dict(sorted(rejections.by_reason.items())),
        "errors": throughput.errors, "assignment": owned, "status": status,
    }
