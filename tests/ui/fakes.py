"""A fake worker and deterministic data for UI tests: messages are the only link, so no Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from textual.message import Message

from balance_tui.config import Settings
from balance_tui.control import MessageSink
from balance_tui.core.group import MemberRow, PartitionLag
from balance_tui.core.lag_view import LagView
from balance_tui.core.rows import (
    BalanceRow,
    ConsumerStatus,
    Counters,
    PartitionRow,
    PartitionState,
    TimelineEntry,
)
from balance_tui.messages import GroupChanged, SessionStarted, Snapshot, WorkerStopped
from tests.lag_views import sample_view

T0 = datetime(2026, 2, 8, 22, 0, 0, tzinfo=UTC)
CONSUMER_ID = "balance-worker-labhost-1a2b3c4d"
EXPORT_PATHS = (Path("/tmp/balance-tui/export/balances.csv"), Path("/tmp/balance-tui/export/timeline.json"))


def make_settings(**overrides: object) -> Settings:
    """Defaults without reading the environment or a config file; a fast refresh keeps tests quick."""
    values: dict[str, object] = {"refresh_hz": 30.0, **overrides}
    return Settings.model_construct(**values)


class FakeClock:
    """A clock tests move by hand, so highlights and uptime are deterministic."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeWorker:
    """Implements WorkerControl: records every call; tests post messages through `post`."""

    answer_stop: bool = True
    export_paths: tuple[Path, ...] = EXPORT_PATHS
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    sink: MessageSink | None = None
    room_requests: list[float] = field(default_factory=list)

    def start(self, sink: MessageSink) -> None:
        self.calls.append(("start", ()))
        self.sink = sink

    def set_strategy(self, strategy: str) -> None:
        self.calls.append(("set_strategy", (strategy,)))

    def request_group_strategy(self, strategy: str) -> None:
        self.calls.append(("request_group_strategy", (strategy,)))

    def restart(self) -> None:
        self.calls.append(("restart", ()))

    def toggle_pause(self) -> None:
        self.calls.append(("toggle_pause", ()))

    def change_work_ms(self, delta: float) -> None:
        self.calls.append(("change_work_ms", (delta,)))

    def export(self) -> None:
        self.calls.append(("export", ()))

    def stop(self, reason: str) -> None:
        self.calls.append(("stop", (reason,)))
        if self.answer_stop:
            self.post(WorkerStopped(reason, self.export_paths))

    def make_room(self, seconds: float) -> None:
        self.room_requests.append(seconds)

    def post(self, *messages: Message) -> None:
        assert self.sink is not None, "the app has not started the worker yet"
        for message in messages:
            self.sink(message)

    def called(self, name: str) -> list[tuple[object, ...]]:
        return [args for call, args in self.calls if call == name]


def session_started(strategy: str = "cooperative-sticky") -> SessionStarted:
    return SessionStarted(
        consumer_id=CONSUMER_ID,
        group="balance-service",
        topic="banking.transactions",
        strategy=strategy,
        bootstrap_servers="localhost:9092",
        log_path=Path("/var/tmp/balance-tui/sessions/2026-02-08T22-00-00-1a2b3c4d.jsonl"),
        work_ms=2.0,
    )


def customer_id(number: int) -> str:
    return f"CUST-{number:06d}"


def balance_row(number: int, balance: str | Decimal = "100.00", *, partition: int | None = None,
                currency: str = "EUR", count: int = 1, at: datetime = T0) -> BalanceRow:
    return BalanceRow(
        customer_id=customer_id(number),
        currency=currency,
        balance=Decimal(balance),
        transaction_count=count,
        last_updated=at,
        last_transaction_id=f"TX-{number:08d}-{count:04d}",
        partition=number % 6 if partition is None else partition,
    )


def partition_rows(mine: tuple[int, ...] = (0, 1, 2), count: int = 6, *, lag: int = 0) -> tuple[PartitionRow, ...]:
    rows = []
    for number in range(count):
        owned = number in mine
        high = 10_000 + 1_000 * number
        rows.append(PartitionRow(
            partition=number,
            mine=owned,
            state=PartitionState.CONSUMING if owned else PartitionState.NOT_MINE,
            position=high - lag * (number + 1) if owned else None,
            high_watermark=high,
            lag=lag * (number + 1) if owned else None,
            rate=40.0 + number if owned else 0.0,
        ))
    return tuple(rows)


def snapshot(consumed: int = 123_456, *, mine: tuple[int, ...] = (0, 1, 2), lag: int = 0,
             status: ConsumerStatus = ConsumerStatus.CONSUMING, paused: bool = False,
             view: LagView | None = None) -> Snapshot:
    history = tuple(float(200 + (i * 37) % 180) for i in range(60))
    counters = Counters(
        consumed=consumed, applied=consumed - 12, skipped=5, rejected=7,
        last_rejection="insufficient funds: CUST-000042 EUR -1,250.00", errors=1,
        rate=history[-1], rate_history=history, lag=sum((lag * (p + 1)) for p in mine),
        latency_p50_ms=3.2, latency_p99_ms=41.7,
    )
    rows = partition_rows(mine, lag=lag)
    if view is not None:  # the worker's rows and lag view come from the same offsets: say the same lag
        rows = tuple(replace(row, lag=shown.lag, position=row.high_watermark - (shown.lag or 0))
                     if (shown := view.partition(row.partition)) is not None and row.mine else row for row in rows)
        counters = replace(counters, lag=view.lag)
    return Snapshot(counters=counters, partitions=rows, status=status,
                    generation=7, member_id=f"{CONSUMER_ID}-6f1c2d3e-9a8b-4c7d-b6e5-0f1e2d3c4b5a",
                    strategy="cooperative-sticky", work_ms=2.0, paused=paused, lag=view)


def timeline_entry(kind: str, seconds: float, **fields: object) -> TimelineEntry:
    return TimelineEntry(at=T0 + timedelta(seconds=seconds), kind=kind, **fields)  # type: ignore[arg-type]


def member_row(name: str, partitions: tuple[int, ...], *, silent: bool = False, is_self: bool = False,
               status: str = "Consuming", lag: int = 0, lag_seconds: float | None = None,
               lag_status: str | None = None, lag_alert: str | None = None,
               lag_alert_since: datetime | None = None) -> MemberRow:
    return MemberRow(
        consumer_id=f"balance-worker-{name}", host="host", pid=100, strategy="cooperative-sticky", status=status,
        partitions=partitions, generation=7, rate=0.0 if silent else 120.0, lag=lag, work_ms=2.0,
        heartbeat_age=6.0 if silent else 0.4, silent=silent, rebalance_expected_in=4.0 if silent else None,
        last_seen=datetime(2026, 11, 25, 12, 0, tzinfo=UTC), is_self=is_self, lag_seconds=lag_seconds,
        lag_status=lag_status, lag_alert=lag_alert, lag_alert_since=lag_alert_since,
    )


def group_changed(*rows: MemberRow, unowned: tuple[int, ...] = (), capacity: str = "3 members, 6 partitions"
                  ) -> GroupChanged:
    lags = tuple(PartitionLag(p, "x", 10, 12, 2, False) for p in range(6))
    return GroupChanged(rows=rows, unowned=unowned, capacity=capacity, partition_lag=lags,
                        source="source: member heartbeats (broker has no DescribeGroups)")



def lag_view(mine: tuple[int, ...] = (0, 1, 3), *, seconds: int = 600, alert: bool = True) -> LagView:
    """Ten minutes of lag ending at the clock `feed_a_rebalanced_session` ends at (tests/lag_views.py)."""
    return sample_view(T0.timestamp() + 754, mine, seconds=seconds, alert=alert)
