"""The worker's side of lag (kafka/worker/lag_feed.py) and of restores said once per assignment, without a broker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from balance_tui.config import load_settings
from balance_tui.core.lag import AlertState, LagStatus, LagThreshold
from balance_tui.core.ledger import CustomerState
from balance_tui.core.offsets import PartitionOffsets
from balance_tui.core.rows import PartitionRestore
from balance_tui.kafka.worker.lag_feed import LagFeed, note_commits, observe
from balance_tui.kafka.worker.rebalance import RebalanceHandler
from balance_tui.kafka.worker.restore_summary import (
    RestoreSummary,
    partition_runs,
    restored_text,
)
from balance_tui.kafka.worker.worker import ConsumerWorker
from balance_tui.messages import TimelineEvent
from balance_tui.session_log import read_session_log


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def offsets_at(log_end: int, position: int, committed: int | None = None, partitions: tuple[int, ...] = (0, 1)
               ) -> PartitionOffsets:
    offsets = PartitionOffsets()
    for partition in partitions:
        offsets.high_watermark[partition] = log_end
        offsets.position[partition] = position
        if committed is not None:
            offsets.committed[partition] = committed
        offsets.last_record_timestamp[partition] = 1_800_000_000.0
    return offsets


def test_readings_leave_out_restoring_and_unknown_partitions() -> None:
    feed = LagFeed(60.0, None, 300.0)
    offsets = offsets_at(100, 90, 80)
    offsets.high_watermark[2] = 50  # no position and no commit: nothing to measure
    feed.commits([0])
    readings = feed.readings(offsets, {0, 1, 2, 3}, restoring={1})
    assert list(readings) == [0]
    assert readings[0].log_end == 100 and readings[0].position == 90 and readings[0].committed == 80
    assert readings[0].last_commit_time is not None and readings[0].last_record_timestamp == 1_800_000_000.0


def test_the_view_is_rebuilt_about_once_a_second_or_after_a_marker_or_a_move() -> None:
    clock = Clock()
    feed = LagFeed(60.0, None, 300.0, clock=clock)
    offsets = offsets_at(100, 90)
    first, _ = feed.observe(offsets, {0, 1}, set())
    clock.now += 0.2
    assert feed.observe(offsets, {0, 1}, set())[0] is first  # the same object: the screen skips it
    feed.mark("paused")
    marked, _ = feed.observe(offsets, {0, 1}, set())
    assert marked is not first and [m.kind for m in marked.markers] == ["paused"]
    assert feed.observe(offsets, {0}, set())[0].partitions[0].partition == 0  # a move: at once
    clock.now += 1.0
    assert feed.observe(offsets, {0}, set())[0] is not marked


def test_a_clock_stepped_back_never_takes_the_feed_down() -> None:
    clock = Clock()
    feed = LagFeed(60.0, None, 300.0, clock=clock)
    feed.observe(offsets_at(100, 90), {0}, set())
    clock.now -= 30  # NTP: the series refuse samples out of order, the feed keeps its own clock going
    feed.mark("assigned")
    view, _ = feed.observe(offsets_at(100, 95), {0}, set())
    assert view.lag == 5


def test_the_alert_rises_and_clears_with_my_lag_and_a_member_with_nothing_has_none() -> None:
    clock = Clock()
    feed = LagFeed(60.0, LagThreshold(messages=50), 2.0, clock=clock)
    transitions = []
    for step in range(6):
        clock.now += 1.0
        transitions += feed.observe(offsets_at(1000 + 100 * step, 1000), {0, 1}, set())[1]
    assert [t.kind for t in transitions] == ["raised"]
    assert feed.view is not None and feed.view.alert is not None and feed.view.alert.firing
    clock.now += 1.0
    cleared = feed.observe(offsets_at(2000, 2000), {0, 1}, set())[1]
    assert [t.kind for t in cleared] == ["cleared"] and feed.raised_total == 1
    clock.now += 1.0
    feed.observe(offsets_at(5000, 1000), {0, 1}, {0, 1})  # restoring: nothing known, nothing changes
    assert feed.alert is not None and feed.alert.state is AlertState.OK
    clock.now += 1.0
    assert feed.observe(PartitionOffsets(), set(), set())[0].lag == 0


def test_forget_and_reset_drop_the_history() -> None:
    clock = Clock()
    feed = LagFeed(60.0, None, 300.0, clock=clock)
    feed.commits([0, 1])
    feed.observe(offsets_at(100, 90), {0, 1}, set())
    feed.forget([1])
    assert sorted(feed.tracker.partitions) == [0] and list(feed.commit_times) == [0]
    feed.mark("lost")
    feed.reset()
    assert feed.tracker.partitions == {} and feed.tracker.markers() == [] and feed.commit_times == {}


@pytest.fixture
def worker(tmp_path: Path) -> ConsumerWorker:
    settings = load_settings({"session_log": tmp_path / "w.jsonl", "bootstrap_servers": "127.0.0.1:9",
                              "lag_alert_threshold": "10", "lag_alert_for": "0s", "lag_window": "5s"})
    return ConsumerWorker(settings, consumer_id="balance-worker-unit")


def test_commits_from_either_path_reach_the_offsets_and_the_feed(worker: ConsumerWorker) -> None:
    state = worker.state
    state.tracker.assignment = {0, 1}
    note_commits(state, {0: 40, 2: 7})  # 2 is not mine
    note_commits(state, [(1, -1001)])  # librdkafka's "no offset"
    assert state.offsets.committed == {0: 40} and list(state.lag.commit_times) == [0]


def test_an_alert_is_written_to_the_session_log_and_the_timeline(worker: ConsumerWorker, tmp_path: Path) -> None:
    posted: list[Any] = []
    worker._sink = posted.append
    state = worker.state
    state.tracker.assignment = {0}
    state.offsets = offsets_at(500, 100, 100, partitions=(0,))
    view = observe(state, worker.reporter)
    assert view.lag == 400
    state.offsets = offsets_at(600, 600, 600, partitions=(0,))
    state.lag._built_at -= 2  # the next second
    observe(state, worker.reporter)
    lines = [line for line in read_session_log(tmp_path / "w.jsonl") if line["event"].startswith("lag_alert")]
    assert [line["event"] for line in lines] == ["lag_alert_raised", "lag_alert_cleared"]
    assert lines[0]["threshold"] == "10 messages" and lines[0]["value"] == 400 and lines[0]["partitions"] == [0]
    assert lines[1]["raised_at"] and lines[1]["lag"] == 0
    kinds = [message.entry.kind for message in posted if isinstance(message, TimelineEvent)]
    assert kinds == ["alert", "alert"]


def test_the_stats_line_carries_the_lag_view(worker: ConsumerWorker) -> None:
    from balance_tui.core.rows import ConsumerStatus
    from balance_tui.kafka.worker.views import stats_line

    state = worker.state
    state.tracker.assignment = {0}
    state.offsets = offsets_at(500, 100, 100, partitions=(0,))
    observe(state, worker.reporter)
    line = stats_line(state, ConsumerStatus.CONSUMING, 0.0)
    assert line["lag"] == 400 and line["lag_status"] == LagStatus.OK.name and line["lag_alert"] == "firing"


def test_the_heartbeat_carries_the_lag_view_for_every_terminals_group_panel(worker: ConsumerWorker) -> None:
    from balance_tui.core.group import decode, encode

    state = worker.state
    before = worker.group.heartbeat()
    assert (before.lag_seconds, before.lag_status, before.lag_alert, before.lag_alert_since) == (None,) * 4
    state.tracker.assignment = {0}
    state.offsets = offsets_at(500, 100, 100, partitions=(0,))
    view = observe(state, worker.reporter)
    beat = decode(encode(worker.group.heartbeat()))
    assert view.alert is not None and view.alert.raised_at is not None and view.lag_seconds is not None
    assert beat.lag_status == "OK" and beat.lag_alert == "firing"
    assert beat.lag_seconds == pytest.approx(view.lag_seconds, abs=0.05)
    assert beat.lag_alert_since is not None and beat.lag_alert_since.timestamp() == pytest.approx(
        view.alert.raised_at, abs=1e-3)


# -- restores said once per assignment ------------------------------------------------------------------


def test_partition_runs_fold_consecutive_partitions() -> None:
    assert partition_runs([5, 0, 1, 2, 4]) == "P0-P2,P4-P5"
    assert partition_runs([3]) == "P3" and partition_runs([]) == ""


def test_restores_done_together_are_one_line() -> None:
    restores = [PartitionRestore(p, 9 + p, 1_640 + p, 50.0 + 10 * p, 100 * p) for p in range(6)]
    assert restored_text(restores) == "restored P0-P5: 69 customers from 9,855 records in 0.10 s"
    assert restored_text(restores[:1]) == ("restored P0: 9 customers from 1,640 records in 0.05 s, "
                                           "resuming at offset 0")
    summary = RestoreSummary()
    assert summary.take() is None
    for restore in reversed(restores):
        summary.add(restore)
    _, partitions, figures = summary.take()  # type: ignore[misc]
    assert partitions == tuple(range(6)) and [r.partition for r in figures] == list(range(6))
    assert summary.take() is None


class FakeChangelog:
    """Finishes one restore per step, as partitions of one assignment reach their changelog's end."""

    def __init__(self, partitions: list[int]) -> None:
        self.restoring = set(partitions)
        self.pending = list(partitions)

    def step(self) -> tuple[list[tuple[Any, float]], list[Any]]:
        partition = self.pending.pop(0)
        self.restoring.discard(partition)
        restore = SimpleNamespace(partition=partition, consume_from=10 * partition, records=100,
                                  states={f"CUST-{partition}": CustomerState(f"CUST-{partition}", partition=partition,
                                                                             offset=10 * partition - 1)})
        return [(restore, 0.05)], []

    def forget(self, partitions: list[int], settle_seconds: float = 0.0) -> dict[int, str]:
        return {}


class FakeConsumer:
    def seek(self, source: Any) -> None:
        pass

    def resume(self, partitions: Any) -> None:
        pass


def test_the_timeline_says_restored_once_and_the_session_log_once_per_partition(worker: ConsumerWorker,
                                                                               tmp_path: Path) -> None:
    posted: list[Any] = []
    worker._sink = posted.append
    state = worker.state
    state.tracker.assignment = {0, 1, 2}
    state.changelog = FakeChangelog([0, 1, 2])  # type: ignore[assignment]
    handler = RebalanceHandler(state, worker.reporter, worker.balances, worker.membership, None)
    for _ in range(3):
        handler.restore_step(FakeConsumer())  # type: ignore[arg-type]
    entries = [message.entry for message in posted if isinstance(message, TimelineEvent)]
    assert [entry.detail for entry in entries] == ["restored P0-P2: 3 customers from 300 records in 0.05 s"]
    assert entries[0].partitions == (0, 1, 2) and [r.resume_offset for r in entries[0].restores] == [0, 10, 20]
    restored = [line for line in read_session_log(tmp_path / "w.jsonl") if line["event"] == "restored"]
    assert [line["partition"] for line in restored] == [0, 1, 2]
    assert [m.kind for m in state.lag.tracker.markers()] == ["restored"]
    state.changelog = None


class FakeChangelogInBatches(FakeChangelog):
    """The last partitions reach their changelog's end in the same step (seen in the demo: three lines)."""

    def __init__(self, steps: list[list[int]]) -> None:
        super().__init__([p for step in steps for p in step])
        self.steps = steps

    def step(self) -> tuple[list[tuple[Any, float]], list[Any]]:
        finished = []
        for partition in self.steps.pop(0):
            self.pending = [p for p in self.pending if p != partition]
            self.restoring.discard(partition)
            finished.append((SimpleNamespace(partition=partition, consume_from=10 * partition, records=100,
                                             states={}), 0.05))
        return finished, []


def test_restores_finishing_in_one_step_are_still_one_line(worker: ConsumerWorker) -> None:
    posted: list[Any] = []
    worker._sink = posted.append
    state = worker.state
    state.tracker.assignment = {0, 1, 2, 3}
    state.changelog = FakeChangelogInBatches([[0], [1, 2, 3]])  # type: ignore[assignment]
    handler = RebalanceHandler(state, worker.reporter, worker.balances, worker.membership, None)
    for _ in range(2):
        handler.restore_step(FakeConsumer())  # type: ignore[arg-type]
    entries = [message.entry for message in posted if isinstance(message, TimelineEvent)]
    assert [entry.partitions for entry in entries] == [(0, 1, 2, 3)], [entry.detail for entry in entries]


class NotFetchingConsumer(FakeConsumer):
    """Refuses `seek` (a paused partition that never fetched): the handler re-assigns; records each assignment."""

    def __init__(self) -> None:
        self.assignments: list[dict[int, int]] = []
        self.paused: set[int] = set()

    def seek(self, source: Any) -> None:
        from confluent_kafka import KafkaError, KafkaException

        raise KafkaException(KafkaError(KafkaError._STATE, "not fetching"))

    def assign(self, partitions: Any) -> None:
        self.assignments.append({tp.partition: tp.offset for tp in partitions})

    def pause(self, partitions: Any) -> None:
        self.paused |= {tp.partition for tp in partitions}


def test_partitions_restored_in_one_step_are_each_assigned_at_their_resume_offset(worker: ConsumerWorker) -> None:
    """An eager re-assignment for the first of them must not send the others back to their committed offset."""
    state = worker.state
    state.tracker.assignment = {0, 1, 2, 3}
    state.strategy = "range"  # eager: a re-assignment takes every owned partition
    state.changelog = FakeChangelogInBatches([[1], [0, 2, 3]])  # type: ignore[assignment]
    handler = RebalanceHandler(state, worker.reporter, worker.balances, worker.membership, None)
    consumer = NotFetchingConsumer()
    handler.restore_step(consumer)  # type: ignore[arg-type]
    handler.restore_step(consumer)  # type: ignore[arg-type]
    last = consumer.assignments[-1]
    assert last == {0: 0, 1: 10, 2: 20, 3: 30}, consumer.assignments
    # Still restoring or not, never a logical offset (librdkafka would look it up, and win over the seek).
    assert all(offset >= 0 for assignment in consumer.assignments for offset in assignment.values()), \
        consumer.assignments
    state.changelog = None


class JoinedConsumer(NotFetchingConsumer):
    """Accepts seeks (recorded) and answers the group questions of the rebalance callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.seeks: list[tuple[int, int]] = []

    def seek(self, source: Any) -> None:
        self.seeks.append((source.partition, source.offset))

    def consumer_group_metadata(self) -> Any:
        raise RuntimeError("not in a group")

    def memberid(self) -> str:
        return "member-1"


class FakeChangelogToStart(FakeChangelogInBatches):
    """Partition 0 has nothing in its changelog: it is read from the beginning."""

    def step(self) -> tuple[list[tuple[Any, float]], list[Any]]:
        finished, errors = super().step()
        for restore, _ in finished:
            restore.consume_from = None if restore.partition == 0 else restore.consume_from
        return finished, errors

    def start_restores(self, partitions: list[int]) -> None:
        self.restoring |= set(partitions)

    def cancel_restores(self, partitions: list[int]) -> None:
        self.restoring -= set(partitions)


def test_partitions_to_restore_are_held_at_a_real_offset_and_resume_at_one(worker: ConsumerWorker) -> None:
    """A logical offset makes librdkafka look one up; a lookup still in flight when the restore's seek lands
    restarts itself and wins (seen in CI: five partitions read again from the beginning)."""
    from confluent_kafka import TopicPartition

    state = worker.state
    state.strategy = "range"
    changelog = FakeChangelogToStart([[0, 1], [2]])
    changelog.restoring.clear()
    state.changelog = changelog  # type: ignore[assignment]
    handler = RebalanceHandler(state, worker.reporter, worker.balances, worker.membership, None)
    consumer = JoinedConsumer()
    handler.on_assign(consumer, [TopicPartition(state.settings.topic, p) for p in range(3)])  # type: ignore[arg-type]
    assert consumer.assignments == [{0: 0, 1: 0, 2: 0}] and consumer.paused == {0, 1, 2}
    assert changelog.restoring == {0, 1, 2}
    # Partition 0 resumes at the first offset, a real one too.
    handler.restore_step(consumer)  # type: ignore[arg-type]
    handler.restore_step(consumer)  # type: ignore[arg-type]
    assert consumer.seeks == [(0, 0), (1, 10), (2, 20)]
    state.changelog = None


def test_a_static_member_saves_what_it_owns_before_its_session_log_says_assigned(
        worker: ConsumerWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab static` kills the member as soon as `assigned` is in its log: the record its next run compares
    with must be on disk by then (seen in CI: the restarted member found none, and said no `static_rejoin`)."""
    from uuid import uuid4

    from confluent_kafka import TopicPartition

    from balance_tui.core.events import Event
    from balance_tui.static_member import StaticMembership, load_static_record

    group, instance = f"unit-static-{uuid4().hex[:8]}", "w2"
    handler = RebalanceHandler(worker.state, worker.reporter, worker.balances, worker.membership,
                               StaticMembership(group, instance))
    on_disk_when_said: list[Any] = []
    write = worker.reporter.session.write

    def write_and_look(event: Event, **fields: Any) -> None:
        if event is Event.ASSIGNED:
            on_disk_when_said.append(load_static_record(group, instance))
        write(event, **fields)

    monkeypatch.setattr(worker.reporter.session, "write", write_and_look)
    handler.on_assign(JoinedConsumer(), [TopicPartition(worker.state.settings.topic, p) for p in (0, 1)])  # type: ignore[arg-type]
    assert len(on_disk_when_said) == 1 and on_disk_when_said[0] is not None, on_disk_when_said
    assert tuple(on_disk_when_said[0].assignment) == (0, 1)
