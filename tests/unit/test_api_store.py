"""The API's state store, fed with synthetic worker messages."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from balance_tui.api import documents
from balance_tui.api.store import (
    HISTORY_LIMIT,
    ApiState,
    ApiStore,
)
from balance_tui.api.tee import TeeWorker
from balance_tui.core.rows import (
    ConsumerStatus,
    Counters,
    PartitionRestore,
    TimelineEntry,
)
from balance_tui.messages import (
    KafkaErrorReported,
    PartitionsLost,
    Snapshot,
    TimelineEvent,
    WorkerStopped,
)
from tests.api_messages import (
    CONSUMER,
    T0,
    assigned,
    balances,
    entry,
    group,
    revoked,
    row,
    snapshot,
    started,
    status,
)


def make_store(**kwargs: object) -> ApiStore:
    return ApiStore(CONSUMER, "balance-service", "banking.transactions", clock=lambda: T0, **kwargs)  # type: ignore[arg-type]


def test_before_any_message_the_member_is_connecting_with_nothing() -> None:
    view = make_store().snapshot()
    assert view.status is ConsumerStatus.CONNECTING
    assert view.assignment == () and view.history == () and not view.consuming
    assert view.group_state == "unknown"
    assert view.rejected_by_reason == {}  # nothing rejected, nothing to classify


def test_balances_replace_a_customers_rows_and_leave_with_their_partition() -> None:
    store = make_store()
    store.apply(balances(row("CUST-2", "EUR", "10.00", 1), row("CUST-1", "USD", "1.00", 0),
                         row("CUST-1", "EUR", "5.00", 0)))
    assert [(r.customer_id, r.currency) for r in store.balances()] == [
        ("CUST-1", "EUR"), ("CUST-1", "USD"), ("CUST-2", "EUR")]
    store.apply(balances(row("CUST-1", "EUR", "7.50", 0)))  # a batch carries all of a customer's currencies
    assert [(r.currency, r.balance) for r in store.customer("CUST-1")] == [("EUR", Decimal("7.50"))]
    store.apply(balances(removed=(1,)))
    assert [r.customer_id for r in store.balances()] == ["CUST-1"]
    assert store.customer("CUST-2") == ()


def test_removal_comes_before_the_rows_of_the_same_batch() -> None:
    store = make_store()
    store.apply(balances(row("CUST-1", "EUR", "1.00", 3)))
    store.apply(balances(row("CUST-1", "EUR", "2.00", 3), removed=(3,)))  # revoked and given back
    assert [r.balance for r in store.balances()] == [Decimal("2.00")]


def test_a_customer_that_moved_partition_is_dropped_with_its_new_one_only() -> None:
    store = make_store()
    store.apply(balances(row("CUST-1", "EUR", "1.00", 3)))
    store.apply(balances(row("CUST-1", "EUR", "1.00", 4)))
    store.apply(balances(removed=(3,)))
    assert store.customer("CUST-1")
    store.apply(balances(removed=(4,)))
    assert store.customer("CUST-1") == ()


def test_rebalances_count_by_kind_and_measure_joins_and_pauses() -> None:
    store = make_store()
    store.apply(assigned((0, 1, 2), join_ms=1500.0))
    store.apply(revoked((2,), (0, 1)))
    store.apply(assigned((2,), (0, 1, 2), join_ms=250.0, downtime_ms={2: 250.0}))
    store.apply(PartitionsLost((0, 1, 2), (), entry("lost", (0, 1, 2), ())))
    view = store.snapshot()
    assert dict(view.rebalance_events) == {"assigned": 2, "revoked": 1, "lost": 1}
    assert view.rebalance_duration.count == 2 and view.rebalance_duration.total == 1.75
    assert view.pause_duration.count == 1
    assert view.assignment == ()
    assert [e.kind for e in view.history] == ["assigned", "revoked", "assigned", "lost"]


def test_history_is_bounded_but_the_total_counts_everything() -> None:
    store = make_store()
    for number in range(HISTORY_LIMIT + 5):
        store.apply(TimelineEvent(entry=entry("paused", (), (), at=T0 + timedelta(seconds=number))))
    view = store.snapshot()
    assert len(view.history) == HISTORY_LIMIT and view.history_total == HISTORY_LIMIT + 5
    assert view.history[0].at == T0 + timedelta(seconds=5)


def test_errors_reach_the_history_as_the_dashboard_shows_them() -> None:
    store = make_store()
    store.apply(KafkaErrorReported(code="INCONSISTENT_GROUP_PROTOCOL", reason="refused", fatal=False, hint="press 1"))
    (error,) = store.snapshot().history
    assert error.kind == "error" and error.detail == "INCONSISTENT_GROUP_PROTOCOL: refused — press 1"


def test_consuming_means_status_consuming_and_not_paused() -> None:
    store = make_store()
    store.apply(status(ConsumerStatus.CONSUMING))
    assert store.snapshot().consuming
    store.apply(snapshot({0: 5}, paused=True))  # the worker may still say Consuming: paused wins, as on screen
    view = store.snapshot()
    assert view.status is ConsumerStatus.PAUSED and not view.consuming
    store.apply(WorkerStopped(reason="SIGTERM"))
    view = store.snapshot()
    assert view.status is ConsumerStatus.STOPPED and view.stopped_reason == "SIGTERM"


def test_a_pause_shows_as_soon_as_the_worker_says_so() -> None:
    store = make_store()
    store.apply(snapshot({0: 5}))
    store.apply(status(ConsumerStatus.PAUSED))  # before the next snapshot says `paused`
    view = store.snapshot()
    assert view.paused and view.status is ConsumerStatus.PAUSED
    store.apply(status(ConsumerStatus.CONSUMING))
    assert store.snapshot().consuming


def test_last_message_at_is_when_a_snapshot_first_shows_new_records() -> None:
    now = [T0]
    store = ApiStore(CONSUMER, "g", "t", clock=lambda: now[0])
    store.apply(snapshot({0: 0}, consumed=0))
    assert store.snapshot().last_message_at is None
    now[0] = T0 + timedelta(seconds=2)
    store.apply(snapshot({0: 3}, consumed=3))
    now[0] = T0 + timedelta(seconds=3)
    store.apply(snapshot({0: 3}, consumed=3))
    assert store.snapshot().last_message_at == T0 + timedelta(seconds=2)


def test_the_store_takes_the_workers_exact_figures() -> None:
    store = make_store()
    counters = Counters(consumed=9, errors=5, consumed_by_partition={0: 9}, applied_by_partition={0: 7},
                        rejected_by_reason={"invalid JSON": 2}, last_message_at=T0 - timedelta(seconds=3),
                        processing_errors=1)
    message = snapshot({0: 9})
    store.apply(Snapshot(counters, message.partitions, message.status, 1, None, "range", 0.0, False))
    view = store.snapshot()
    assert dict(view.consumed_by_partition) == {0: 9} and dict(view.applied_by_partition) == {0: 7}
    assert dict(view.rejected_by_reason) == {"invalid JSON": 2}
    assert view.last_message_at == T0 - timedelta(seconds=3)
    assert documents.metrics_document(view)["processingErrors"] == 1
    plain = group((CONSUMER, (0,), "Consuming"))
    store.apply(dataclasses.replace(plain, broker_state="PreparingRebalance"))
    assert store.snapshot().group_state == "rebalancing"


def test_each_partitions_restore_is_one_observation() -> None:
    restores = (PartitionRestore(3, 1024, 2048, 420.0, 77), PartitionRestore(4, 10, 20, 30.0, 5))
    store = make_store()
    store.apply(TimelineEvent(entry=TimelineEntry(at=T0, kind="restored", detail="restored P3-P4", partitions=(3, 4),
                                                  restores=restores)))
    histogram = store.snapshot().restore_duration
    assert histogram.count == 2 and histogram.total == pytest.approx(0.45)


def test_group_state_is_derived_from_statuses_and_unowned_partitions() -> None:
    store = make_store()
    store.apply(status(ConsumerStatus.CONSUMING))
    store.apply(group((CONSUMER, (0, 1, 2), "Consuming"), ("other", (3, 4, 5), "Consuming")))
    assert store.snapshot().group_state == "stable"
    store.apply(group((CONSUMER, (0, 1, 2), "Consuming"), ("other", (), "Joining")))
    assert store.snapshot().group_state == "rebalancing"
    store.apply(group((CONSUMER, (0, 1, 2), "Consuming"), unowned=(3, 4, 5)))
    assert store.snapshot().group_state == "rebalancing"


def test_stream_events_have_increasing_ids_and_status_changes_only_when_the_status_does() -> None:
    store = make_store()
    store.apply(status(ConsumerStatus.JOINING, "0s"))
    store.apply(status(ConsumerStatus.JOINING, "1s"))
    store.apply(assigned((0, 1)))
    store.apply(status(ConsumerStatus.CONSUMING))
    events = store.events_after(0)
    assert [e.kind for e in events] == ["status", "assigned", "status"]
    assert [e.id for e in events] == [1, 2, 3]
    assert [e.kind for e in store.events_after(2)] == ["status"]


def test_snapshots_are_cached_until_something_changes() -> None:
    store = make_store()
    first = store.snapshot()
    assert store.snapshot() is first
    store.apply(started())
    assert store.snapshot() is not first
    rows = store.balances()
    assert store.balances() is rows


def test_the_updater_applies_fed_messages_and_acknowledges_balances_only_when_asked() -> None:
    for acknowledges in (True, False):
        store = make_store(acknowledges_balances=acknowledges)
        heard: list[list[str]] = []
        store.subscribe(lambda events, heard=heard: heard.append([e.kind for e in events]))
        store.start()
        try:
            batch = balances(row("CUST-1", "EUR", "3.00"))
            store.feed(started())
            store.feed(batch)
            store.feed(assigned((0,)))
            assert store.flush(timeout=5)
            assert [r.customer_id for r in store.balances()] == ["CUST-1"]
            assert batch.applied.is_set() is acknowledges
            assert heard and heard[-1][-1] == "assigned"
        finally:
            store.stop()


def test_feeding_never_waits_for_a_reader_holding_the_store() -> None:
    store = make_store()
    store.start()
    try:
        with store._lock:  # a reader in the middle of a copy
            fed = threading.Event()
            threading.Thread(target=lambda: (store.feed(started()), fed.set()), daemon=True).start()
            assert fed.wait(2), "the worker's sink waited for the store's lock"
        assert store.flush(timeout=5)
    finally:
        store.stop()


def test_worker_silence_is_measured_from_the_last_message() -> None:
    now = [100.0]
    store = ApiStore(CONSUMER, "g", "t", monotonic=lambda: now[0])
    now[0] = 130.0
    assert store.worker_silence() == 30.0
    store.feed(started())
    assert store.worker_silence() == 0.0


def test_the_tee_gives_every_message_to_the_screen_and_the_store() -> None:
    class FakeWorker:
        consumer_id = CONSUMER

        def start(self, sink: object) -> None:
            self.sink = sink

    worker = FakeWorker()
    store = make_store()
    seen: list[object] = []
    tee_worker = TeeWorker(worker, store)
    tee_worker.start(seen.append)
    message = started()
    worker.sink(message)  # type: ignore[operator]
    assert seen == [message]
    assert store._inbox.get_nowait() is message
    assert tee_worker.consumer_id == CONSUMER


def test_state_is_pure_and_needs_no_store() -> None:
    state = ApiState(CONSUMER, "g", "t", T0)
    state.apply(assigned((1,)), T0)
    assert state.snapshot(T0).assignment == (1,)
