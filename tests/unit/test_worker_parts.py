"""The consumer worker's collaborators, without a broker: offsets and lag, what is said and how often,
the partitions table, the changelog's assignment plan and record cache, the group's refusals, the
status and balance messages, and the worker's commands."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from balance_tui.config import load_settings
from balance_tui.control import AskGroupStrategy, ChangeWorkMs, Restart, SetStrategy, Stop
from balance_tui.core.broker_profile import BrokerHealth, describe_broker
from balance_tui.core.changelog import POSITION_KEY, decode_position, decode_state
from balance_tui.core.error_reports import ErrorReports, RejectionLog, refusal_hint
from balance_tui.core.group import MemberHeartbeat
from balance_tui.core.ledger import CustomerState, Ledger
from balance_tui.core.member_view import PartitionScene, Throughput, counters, partition_rows, stats_fields
from balance_tui.core.offsets import OFFSET_INVALID, PartitionOffsets, parse_statistics, total_lag
from balance_tui.core.rows import ConsumerStatus, PartitionState
from balance_tui.core.transaction import Transaction, TransactionStatus, TransactionType
from balance_tui.kafka.changelog import FlushOutcome
from balance_tui.kafka.changelog_coordinator import ChangelogCoordinator, plan_assignment
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.commands import Quit, Rejoin
from balance_tui.kafka.worker.group_side import Every
from balance_tui.kafka.worker.loop import _Schedule
from balance_tui.kafka.worker.publishing import BalancePublisher, StatusBoard
from balance_tui.kafka.worker.worker import ConsumerWorker
from balance_tui.messages import BalancesChanged, StatusChanged
from tests.helpers import member_heartbeat

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def statistics(partitions: dict[str, dict], brokers: dict[str, dict] | None = None) -> str:
    return json.dumps({"topics": {"tx": {"partitions": partitions}},
                       "brokers": brokers if brokers is not None else {"b1": {"nodeid": 1, "state": "UP"}}})


# -- offsets and lag ------------------------------------------------------------------------------------


def test_statistics_give_the_partitions_and_whether_every_broker_is_up() -> None:
    parsed = parse_statistics(statistics({"0": {"hi_offset": 5}, "-1": {"hi_offset": 9}},
                                         {"b1": {"nodeid": 1, "state": "UP"}, "boot": {"nodeid": -1, "state": "INIT"},
                                          "b2": {"nodeid": 2, "state": "DOWN"}}), "tx")
    assert parsed is not None and list(parsed.partitions) == [0]  # the internal -1 is not a partition
    assert parsed.all_brokers_up is False and parsed.any_broker_up is True
    assert parse_statistics("{not json", "tx") is None
    assert parse_statistics(statistics({}, {}), "tx").all_brokers_up is None  # type: ignore[union-attr]


def test_a_fetched_partitions_high_watermark_may_go_down_a_paused_ones_only_up() -> None:
    offsets = PartitionOffsets()
    offsets.high_watermark = {0: 100, 1: 100}
    parsed = parse_statistics(statistics({"0": {"hi_offset": 40}, "1": {"hi_offset": 40}}), "tx")
    assert parsed is not None
    offsets.apply_statistics(parsed, not_fetching={1}, restoring=set())
    assert offsets.high_watermark == {0: 40, 1: 100}  # 0: a restarted broker; 1: stale while paused


def test_lag_before_the_first_record_comes_from_the_fetch_position() -> None:
    offsets = PartitionOffsets()
    parsed = parse_statistics(statistics({"0": {"hi_offset": 50, "next_offset": 50, "fetch_state": "active",
                                                "fetchq_cnt": 0},
                                          "1": {"hi_offset": 50, "next_offset": 10, "fetch_state": "active",
                                                "fetchq_cnt": 3}}), "tx")
    assert parsed is not None
    offsets.apply_statistics(parsed, set(), set())
    assert offsets.lag_by_partition([0, 1], restoring=set()) == {0: 0}  # 1 has fetched records queued: unknown
    offsets.position[1] = 20
    assert offsets.lag_by_partition([0, 1], restoring=set()) == {0: 0, 1: 30}
    assert offsets.lag_by_partition([0], restoring={0}) == {}  # restoring: the fetch position is not ours yet


def test_where_reading_goes_on_and_forgetting_a_partition() -> None:
    offsets = PartitionOffsets()
    assert offsets.next_offset(3) == OFFSET_INVALID
    offsets.restored_to(3, start=120, resume=None)
    assert offsets.next_offset(3) == 120
    offsets.position[3] = 130
    offsets.committed[3] = 125
    assert offsets.next_offset(3) == 130 and offsets.known_high(3) == 130  # what was read is in the log
    offsets.forget(3)
    assert offsets.next_offset(3) == OFFSET_INVALID and 3 not in offsets.committed


def test_rates_and_total_lag() -> None:
    offsets = PartitionOffsets()
    offsets.position = {0: 100}
    assert offsets.rates(0.0) == {}
    offsets.position = {0: 150}
    assert offsets.rates(2.0) == {0: 25.0}
    assert total_lag({}, owned=()) == 0
    assert total_lag({}, owned=(0,)) is None
    assert total_lag({0: 3, 1: 4}, owned=(0, 1)) == 7
    assert total_lag({0: 0}, owned=(0, 1)) is None  # 1's end is not known yet: not caught up


def test_commits_count_only_for_owned_partitions() -> None:
    offsets = PartitionOffsets()
    offsets.commits_acknowledged([(0, 10), (1, -1001), (2, 30)], owned={0, 1})
    assert offsets.committed == {0: 10}


# -- what is said, and how often --------------------------------------------------------------------------


def test_an_error_is_said_once_per_window_and_its_repeats_counted() -> None:
    reports = ErrorReports(repeat_seconds=5.0)
    assert reports.decide("X", "X", 0.0).say
    assert not reports.decide("X", "X", 1.0).say
    assert not reports.decide("X", "X", 2.0).say
    again = reports.decide("X", "X", 5.5)
    assert again.say and again.repeats == 2
    assert ErrorReports.key("_FAIL", "changelog write failed", generic=True) != ErrorReports.key(
        "_FAIL", "offsets not committed", generic=True)


def test_a_refused_join_is_said_once_per_join() -> None:
    reports = ErrorReports(repeat_seconds=0.0)
    name = "INCONSISTENT_GROUP_PROTOCOL"
    assert reports.decide(name, name, 0.0).say
    assert not reports.decide(name, name, 100.0).say
    reports.new_join()
    assert reports.decide(name, name, 101.0).say


def test_the_refusal_hint_names_the_groups_strategy_and_its_key() -> None:
    assert "the group uses roundrobin, not range: press 2" in refusal_hint("range", {"roundrobin", "range"})
    assert "another protocol family than range" in refusal_hint("range", set())


def test_rejections_are_counted_by_reason_and_said_at_most_once_per_reason_and_window() -> None:
    log = RejectionLog(log_seconds=5.0, keep=2)
    first = log.note(0, 1, "invalid JSON", "x", now=0.0, at=T0)
    assert first is not None and first.unlogged_since_last == 0
    assert log.note(0, 2, "invalid JSON", "y", now=1.0, at=T0) is None
    assert log.note(1, 3, "missing field", "customerId", now=1.0, at=T0) is not None  # another reason
    later = log.note(0, 4, "invalid JSON", "z", now=6.0, at=T0)
    assert later is not None and later.unlogged_since_last == 1
    assert log.total == 4 and log.by_reason == {"invalid JSON": 3, "missing field": 1}
    assert [r["offset"] for r in log.recent] == [3, 4] and log.last == "P0:O4 invalid JSON: z"


# -- the partitions table and the counters --------------------------------------------------------------


def test_partition_rows_say_which_partition_is_where() -> None:
    offsets = PartitionOffsets()
    offsets.position = {0: 10, 1: 5}
    offsets.high_watermark = {0: 12, 1: 9}
    scene = PartitionScene(count=5, owned=frozenset({0, 1, 2}), restoring=frozenset({2}), paused=frozenset({1}),
                           recently_revoked=frozenset({3}), progress={2: (40, 100)})
    rows = partition_rows(scene, offsets, {0: 2, 1: 4}, {0: 7.5}, {3: 77, 4: None})
    assert [row.state for row in rows] == [PartitionState.CONSUMING, PartitionState.PAUSED, PartitionState.RESTORING,
                                           PartitionState.REVOKED, PartitionState.NOT_MINE]
    assert (rows[0].lag, rows[0].rate, rows[1].rate) == (2, 7.5, 0.0)
    assert (rows[2].restored, rows[2].restore_total) == (40, 100)
    assert rows[3].high_watermark == 77 and rows[3].position is None  # its owner's heartbeat says where it ends


def test_counters_and_the_stats_line() -> None:
    throughput = Throughput()
    throughput.batch(3, [1_000], now=1.0, wall_ms=1_250.0, at=T0)
    throughput.kafka_errors, throughput.processing_errors = 2, 1
    rejections = RejectionLog()
    rejections.note(0, 0, "invalid JSON", "x", 0.0, T0)
    ledger = Ledger()
    shown = counters(throughput, ledger, rejections, {0: 5}, (0,), now=1.0)
    assert (shown.consumed, shown.errors, shown.processing_errors, shown.lag) == (3, 3, 1, 5)
    assert shown.rejected_by_reason == {"invalid JSON": 1} and shown.last_message_at == T0
    line = stats_fields(throughput, rejections, {0: 5}, {0}, "Consuming", now=1.0)
    assert line["lag_by_partition"] == {"0": 5} and line["assignment"] == [0] and line["errors"] == 3


# -- the changelog's side ------------------------------------------------------------------------------


def test_only_a_partition_given_straight_back_keeps_its_state() -> None:
    plan = plan_assignment([0, 1, 2], uninterrupted=True, held_back={0, 1}, positions={0: 40})
    assert plan.kept_at == {0: 40} and plan.to_restore == [1, 2]  # 1 was held back but never read
    assert plan_assignment([0], uninterrupted=False, held_back={0}, positions={0: 40}).to_restore == [0]


class FakeWriter:
    """Records what the coordinator asks a flush to write; commits whatever `fail` does not name.

    A flush that does not wait leaves its transactions pending; the next one says they `land`
    (or fail, when `fail` names them).
    """

    def __init__(self) -> None:
        self.flushes: list[dict[int, list[tuple[str, bytes]]]] = []
        self.offsets: list[dict[int, int] | None] = []
        self.fail: set[int] = set()
        self.partitions: set[int] = set()
        self.committing: set[int] = set()

    def flush(self, batches, offsets, group_metadata, timeout, *, waits=True):  # type: ignore[no-untyped-def]
        self.flushes.append({p: list(records) for p, records in batches.items()})
        self.offsets.append(dict(offsets) if offsets is not None else None)
        ended, self.committing = self.committing, set()
        outcome = FlushOutcome(landed=ended - self.fail, failed=dict.fromkeys(self.fail & (set(batches) | ended),
                                                                              "broker away"))
        begun = set(batches) - self.fail
        if waits:
            outcome.committed = begun
        else:
            outcome.pending, self.committing = begun, begun
        return outcome

    def release(self, partitions) -> None:  # type: ignore[no-untyped-def]
        self.partitions -= set(partitions)


def customer(customer_id: str, partition: int, offset: int) -> CustomerState:
    return CustomerState(customer_id, {"EUR": Decimal("1.00")}, 1, T0, "TX", (), partition, offset)


def test_a_flush_writes_each_changed_customer_once_then_the_position() -> None:
    writer = FakeWriter()
    coordinator = ChangelogCoordinator(writer, restorer=None, writer_name="me")  # type: ignore[arg-type]
    customers = {"A": customer("A", 0, 7), "B": customer("B", 0, 3), "C": customer("C", 1, 5)}
    coordinator.dirty[0] |= {"A", "B"}
    coordinator.dirty[1].add("C")
    coordinator.flush({0, 1}, customers, None, None, timeout=1.0, now=0.0)
    [batches] = writer.flushes
    assert sorted(key for key, _ in batches[0][:-1]) == ["A", "B"]  # in no order: a restore keeps the newest
    assert batches[0][-1][0] == POSITION_KEY  # the position closes the batch
    assert decode_position(batches[0][-1][1]) == 7  # the highest state-changing offset, not the read position
    assert {key: decode_state(value) for key, value in batches[0][:-1]} == {"A": customers["A"], "B": customers["B"]}
    assert [key for key, _ in batches[1]] == ["C", POSITION_KEY]
    assert not coordinator.dirty  # committed: the cache is empty

    # Nothing changed and no commit due: nothing to write.
    coordinator.flush({0, 1}, customers, None, None, timeout=1.0, now=1.0)
    assert len(writer.flushes) == 1


def test_a_flush_that_fails_keeps_its_changes_for_the_next_and_restoring_partitions_wait() -> None:
    writer = FakeWriter()
    coordinator = ChangelogCoordinator(writer, restorer=None, writer_name="me")  # type: ignore[arg-type]
    customers = {"A": customer("A", 0, 7), "C": customer("C", 1, 5)}
    coordinator.dirty[0].add("A")
    coordinator.dirty[1].add("C")
    coordinator.restoring.add(1)
    writer.fail = {0}
    outcome = coordinator.flush({0, 1}, customers, {0: 8, 1: 6}, None, timeout=1.0, now=3.0)
    assert outcome.failed == {0: "broker away"}
    assert set(writer.flushes[0]) == {0}  # partition 1 is being restored: its changelog is not ours yet
    assert writer.offsets[0] == {0: 8, 1: 6}
    assert coordinator.dirty[0] == {"A"} and coordinator.unflushed_for(now=14.0) == 11.0
    writer.fail = set()
    coordinator.flush({0}, customers, None, None, timeout=1.0, now=15.0)
    assert [key for key, _ in writer.flushes[1][0]] == ["A", POSITION_KEY]
    assert 0 not in coordinator.dirty and coordinator.unflushed_for(now=16.0) == 0.0


def test_a_flush_that_does_not_wait_holds_its_customers_until_the_next_says_how_it_ended() -> None:
    writer = FakeWriter()
    coordinator = ChangelogCoordinator(writer, restorer=None, writer_name="me")  # type: ignore[arg-type]
    customers = {"A": customer("A", 0, 7), "B": customer("B", 0, 8), "C": customer("C", 1, 5)}
    coordinator.dirty[0].add("A")
    coordinator.dirty[1].add("C")
    outcome = coordinator.flush({0, 1}, customers, {0: 8, 1: 6}, None, timeout=0.0, now=0.0, waits=False)
    assert outcome.pending == {0, 1} and not outcome.offsets  # nothing is known committed yet
    assert not coordinator.dirty and coordinator.in_flight == {0: ({"A"}, 8), 1: ({"C"}, 6)}
    coordinator.dirty[0].add("B")  # changed while the commit runs: a change of its own

    writer.fail = {1}  # partition 0's transaction landed, partition 1's did not
    outcome = coordinator.flush({0, 1}, customers, None, None, timeout=0.0, now=1.0, waits=False)
    assert outcome.offsets == {0: 8}  # noted only once known committed
    assert [key for key, _ in writer.flushes[1][0]] == ["B", POSITION_KEY]  # A is not written again
    assert coordinator.in_flight == {0: ({"B"}, None)}
    assert coordinator.dirty[1] == {"C"} and coordinator.unflushed_for(now=3.0) == 2.0  # back in the cache

    writer.fail = set()
    outcome = coordinator.flush({0, 1}, customers, None, None, timeout=1.0, now=4.0)  # one that waits
    assert [key for key, _ in writer.flushes[2][1]] == ["C", POSITION_KEY] and outcome.committed == {1}
    assert outcome.landed == {0} and not coordinator.in_flight and not coordinator.dirty
    coordinator.forget([0, 1])
    assert coordinator.flush({0, 1}, customers, None, None, timeout=1.0, now=5.0) == FlushOutcome()


def test_a_commit_due_writes_the_offsets_even_without_changes() -> None:
    writer = FakeWriter()
    coordinator = ChangelogCoordinator(writer, restorer=None, writer_name="me")  # type: ignore[arg-type]
    coordinator.position[2] = 40
    coordinator.flush({2}, {}, {2: 45}, None, timeout=1.0, now=0.0)  # only Failed transactions since
    assert [(key, decode_position(value)) for key, value in writer.flushes[0][2]] == [(POSITION_KEY, 40)]
    assert writer.offsets[0] == {2: 45}


# -- group heartbeats and the broker's health ------------------------------------------------------------------


def heartbeat(member: str, strategy: str, assignment: tuple[int, ...]) -> MemberHeartbeat:
    return member_heartbeat(member, strategy, assignment, sent_at=T0)


def test_coordinator_admin_requests_wait_until_every_broker_is_up_a_while() -> None:
    health = BrokerHealth(admin_after_up_seconds=3.0)
    health.statistics(True, now=0.0)
    assert not health.admin_requests_safe(2.0) and health.admin_requests_safe(3.0)
    health.unreachable(now=4.0, owned=6)
    assert not health.admin_requests_safe(10.0) and health.owned_at_outage == 6
    health.statistics(True, now=12.0)
    assert health.back_after_outage
    assert health.outage_over(13.0) == 9.0 and not health.back_after_outage
    assert describe_broker(None, None, None).consumer_protocol is None


def test_a_broker_that_answers_ends_the_outage_whatever_the_statistics_say() -> None:
    """Seen on Tansu after a restart: members given partitions while their statistics still said no broker was up."""
    health = BrokerHealth()
    health.unreachable(now=1.0, owned=2)
    health.statistics(False, now=2.0, any_up=False)
    assert not health.back_after_outage
    health.answered()  # an assignment, or the broker's own error code
    assert health.back_after_outage
    health.still_out(now=3.0, lasted=2.0)  # the cluster id could not be read: not back after all
    assert not health.back_after_outage
    health.answered()
    health.unreachable(now=4.0, owned=2)  # and then unreachable again
    assert not health.back_after_outage


def test_in_an_outage_statistics_that_list_no_broker_say_it_is_away() -> None:
    """Measured on Tansu: once killed, the broker leaves librdkafka's statistics; the bootstrap entry (INIT)
    and the coordinator (TRY_CONNECT) remain. CI: a `lost` after the outage then hid it for good."""
    gone = parse_statistics(statistics({}, {"127.0.0.1:9092/bootstrap": {"nodeid": -1, "state": "INIT"},
                                            "GroupCoordinator": {"nodeid": -1, "state": "TRY_CONNECT"}}), "tx")
    assert gone is not None and gone.all_brokers_up is None and not gone.any_broker_up
    health = BrokerHealth()
    health.statistics(gone.all_brokers_up, now=0.0, any_up=gone.any_broker_up)
    assert not health.away, "before any outage (starting up): not yet known"
    health.unreachable(now=1.0, owned=6)
    health.statistics(gone.all_brokers_up, now=2.0, any_up=gone.any_broker_up)
    assert health.away
    health.statistics(None, now=3.0, any_up=True)  # the coordinator up again
    assert not health.away


def test_the_group_coordinators_connection_counts_as_a_broker_up() -> None:
    parsed = parse_statistics(statistics({}, {"b1": {"nodeid": 111, "state": "DOWN"},
                                              "GroupCoordinator": {"nodeid": -1, "state": "UP"}}), "tx")
    assert parsed is not None and parsed.any_broker_up is True and parsed.all_brokers_up is False
    parsed = parse_statistics(statistics({}, {"b1": {"nodeid": 111, "state": "DOWN"},
                                              "GroupCoordinator": {"nodeid": -1, "state": "TRY_CONNECT"}}), "tx")
    assert parsed is not None and parsed.any_broker_up is False


# -- what the UI is told ----------------------------------------------------------------------------------


def test_a_status_is_posted_once_and_a_fatal_error_sticks() -> None:
    posted: list[object] = []
    board = StatusBoard(posted.append)
    board.set(ConsumerStatus.JOINING, "0s")
    board.set(ConsumerStatus.JOINING, "0s")
    board.from_assignment(owns_partitions=False, paused=False)
    board.fatal = True
    board.from_assignment(owns_partitions=True, paused=False)
    assert [m.status for m in posted if isinstance(m, StatusChanged)] == [ConsumerStatus.JOINING, ConsumerStatus.IDLE]


def deposit(customer: str, amount: str) -> Transaction:
    return Transaction.validated(transaction_id=f"T-{customer}-{amount}", from_account="BANK", to_account="FR76",
                                 amount=Decimal(amount), currency="EUR", type=TransactionType.DEPOSIT,
                                 description="", customer_id=customer, timestamp=T0, risk_score=0,
                                 status=TransactionStatus.COMPLETED)


def test_balance_batches_coalesce_while_the_screen_has_not_taken_the_last_one() -> None:
    posted: list[BalancesChanged] = []
    publisher = BalancePublisher(posted.append, enabled=True)
    ledger = Ledger()
    ledger.apply(deposit("C1", "10.00"), 0, 0)
    publisher.changed(["C1"])
    publisher.flush(ledger)
    ledger.apply(deposit("C2", "5.00"), 1, 0)
    publisher.changed(["C2"])
    publisher.flush(ledger)  # the first batch is not applied yet: nothing new is posted
    assert len(posted) == 1
    posted[0].applied.set()
    publisher.flush(ledger)
    assert [row.customer_id for row in posted[1].rows] == ["C2"]
    publisher.flush(ledger, removed_partitions=(1,))  # removals always go out
    assert posted[2].removed_partitions == (1,)
    quiet = BalancePublisher(posted.append, enabled=False)
    quiet.changed(["C1"])
    quiet.flush(ledger)
    assert len(posted) == 3 and not quiet.dirty


# -- the worker's loop parts and commands ------------------------------------------------------------------


def test_periodic_jobs_come_due_on_their_own_schedule() -> None:
    every = Every(1.0, start=10.0)
    assert not every.due(9.9) and every.due(10.0) and not every.due(10.5) and every.due(11.0)
    schedule = _Schedule(0.0, load_settings({"commit_interval_ms": 1000, "flush_interval_ms": 250}))
    assert schedule.due("beat", 0.0) and not schedule.due("commit", 0.5) and schedule.due("commit", 1.0)
    assert not schedule.due("flush", 0.2) and schedule.due("flush", 0.25) and schedule.due("flush", 0.5)


@pytest.fixture
def worker(tmp_path: Path) -> ConsumerWorker:
    settings = load_settings({"session_log": tmp_path / "w.jsonl", "bootstrap_servers": "127.0.0.1:9"})
    return ConsumerWorker(settings, consumer_id="balance-worker-unit")


def test_commands_are_carried_out_by_kind(worker: ConsumerWorker, tmp_path: Path) -> None:
    assert worker.commands.handle(Stop("quit"), None) == Quit("quit")
    assert worker.commands.handle(Stop(""), None) == Quit("stopped")
    assert worker.commands.handle(Restart(), None) == Rejoin()
    assert worker.commands.handle(SetStrategy("range"), None) == Rejoin() and worker.strategy == "range"
    assert worker.commands.handle(ChangeWorkMs(-5), None) is None and worker.state.work_ms == 0.0  # never below 0
    # Without a members topic a group-wide switch is this member's alone.
    assert worker.commands.handle(AskGroupStrategy("roundrobin"), None) == Rejoin() and worker.strategy == "roundrobin"
    worker.session.close()
    events = [json.loads(line)["event"] for line in (tmp_path / "w.jsonl").read_text().splitlines()]
    assert events == ["restarted", "strategy_changed", "work_ms_changed", "strategy_changed"]


def test_kip848_is_refused_where_the_broker_does_not_serve_it(worker: ConsumerWorker) -> None:
    worker.state.broker = describe_broker(None, {0, 18}, {})
    assert worker.commands.handle(SetStrategy("consumer"), None) is None and worker.strategy == "cooperative-sticky"
    assert worker.commands.handle(AskGroupStrategy("consumer"), None) is None
    worker.session.close()
    assert "CONSUMER_PROTOCOL_UNSUPPORTED" in worker.log_path.read_text()


def test_the_export_never_takes_the_worker_down(worker: ConsumerWorker, tmp_path: Path) -> None:
    worker.log_path = tmp_path / "missing-dir" / "w.jsonl"  # the export beside it cannot be written
    assert worker._write_export() == ()
    worker.session.close()
    assert "EXPORT_FAILED" in (tmp_path / "w.jsonl").read_text()


class _BeaconOfAFormedGroup:
    """A members topic on which, since the switch, another member owns partitions on the new strategy."""

    def __init__(self, *messages: object) -> None:
        self.messages = list(messages)
        self.sent: list[object] = []

    def poll(self, now: datetime) -> list[object]:
        messages, self.messages = self.messages, []
        return messages

    def send_command(self, command: object) -> None:
        self.sent.append(command)


def test_a_member_reading_a_switch_late_joins_the_re_formed_group_without_resetting_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from balance_tui.core.assignment import utc_now
    from balance_tui.core.group import GroupCommand

    membership = GroupMembership(load_settings({"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}), "me")
    membership.switch = GroupCommand("cooperative-sticky", "b", utc_now() - timedelta(seconds=5))
    formed = dataclasses.replace(heartbeat("b", "cooperative-sticky", (0, 1, 2)), sent_at=utc_now())
    membership.beacon = _BeaconOfAFormedGroup(formed)  # type: ignore[assignment]
    resets: list[bool] = []
    monkeypatch.setattr(membership, "reset_emptied_group", lambda admin_safe: resets.append(admin_safe) or "deleted")
    ended = membership.wait_for_reset(lambda: "cooperative-sticky", lambda command: None, lambda: None, lambda: True)
    assert (ended.by, ended.outcome) == ("b", "already formed")
    assert resets == [] and membership.beacon.sent == []  # nothing deleted, nobody told to rejoin


class _MembersTopic:
    """A members topic read with a lag: what was appended shows up `lag` polls later, in order.

    `publish` appends our heartbeat, so the beacon's read-back (`read_past`) works as on the topic."""

    def __init__(self, *, describes: bool, lag: int = 2) -> None:
        from balance_tui.core.broker_profile import DescribeGroupsVerdict

        self.describe_verdict = DescribeGroupsVerdict()
        self.describe_verdict.usable = describes
        self.lag = lag
        self.log: list[tuple[int, object]] = []  # (poll number it becomes readable at, message)
        self.polls = 0
        self.echo_at: datetime | None = None
        self.sent: list[object] = []
        self.broker_group = None

    def refresh_broker_members(self, own_partitions: int, ask: bool) -> None:
        pass

    def append(self, message: object) -> None:
        self.log.append((self.polls + self.lag, message))

    def poll(self, now: datetime) -> list[object]:
        self.polls += 1
        ready = [message for at, message in self.log if at <= self.polls]
        self.log = [(at, message) for at, message in self.log if at > self.polls]
        for message in ready:
            if isinstance(message, MemberHeartbeat) and message.consumer_id == "me":
                self.echo_at = message.sent_at
        return ready

    def read_past(self, moment: datetime) -> bool:
        return self.echo_at is not None and self.echo_at >= moment

    def publish(self, beat: MemberHeartbeat) -> None:
        self.append(beat)

    def send_command(self, command: object) -> None:
        self.sent.append(command)


def _waiting_member(switch_by: str, topic: _MembersTopic, strategy: list[str]) -> GroupMembership:
    from balance_tui.core.assignment import utc_now
    from balance_tui.core.group import GroupCommand

    membership = GroupMembership(load_settings({"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}), "me")
    membership.switch = GroupCommand(strategy[0], switch_by, utc_now())
    membership.beacon = topic  # type: ignore[assignment]
    membership.beat(heartbeat("me", strategy[0], ()), own_partitions=0, ask_broker=False, partition_count=6)
    return membership


def test_a_waiting_member_resets_only_after_reading_what_was_sent_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command another member sent just before (still in flight to us) decides what the reset is for."""
    from balance_tui.core.assignment import utc_now
    from balance_tui.core.group import GroupCommand

    topic, strategy = _MembersTopic(describes=True), ["range"]
    membership = _waiting_member("me", topic, strategy)
    topic.append(GroupCommand("roundrobin", "other", utc_now()))
    reset_for: list[str] = []
    monkeypatch.setattr(membership, "reset_emptied_group", lambda admin_safe: reset_for.append(strategy[0]) or "empty")

    def adopt(command: GroupCommand) -> None:
        strategy[0] = command.strategy
        membership.switch = command

    ended = membership.wait_for_reset(lambda: strategy[0], adopt, lambda: None, lambda: True)
    assert reset_for == ["roundrobin"] and ended.outcome == "empty"
    assert [command.strategy for command in topic.sent] == ["roundrobin"]  # the others rejoin on the winner


def test_where_a_reset_deletes_the_group_only_the_requester_resets_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Tansu a second delete can hit the group the first one's members are joining: others wait for it."""
    from balance_tui.core.assignment import utc_now
    from balance_tui.core.group import GROUP_RESET, GroupCommand

    topic = _MembersTopic(describes=False)
    membership = _waiting_member("other", topic, ["roundrobin"])
    topic.append(GroupCommand("roundrobin", "other", utc_now(), kind=GROUP_RESET))
    topic.lag = 4
    deletes: list[bool] = []
    monkeypatch.setattr(membership, "reset_emptied_group", lambda admin_safe: deletes.append(admin_safe) or "deleted")
    ended = membership.wait_for_reset(lambda: "roundrobin", lambda command: None, lambda: None, lambda: True)
    assert deletes == [] and (ended.by, ended.outcome) == ("other", "reset")

    monkeypatch.setattr("balance_tui.kafka.membership.RESET_BY_OTHERS_AFTER_SECONDS", 0.0)  # the requester is gone
    topic = _MembersTopic(describes=False)
    membership = _waiting_member("other", topic, ["roundrobin"])
    monkeypatch.setattr(membership, "reset_emptied_group", lambda admin_safe: deletes.append(admin_safe) or "deleted")
    ended = membership.wait_for_reset(lambda: "roundrobin", lambda command: None, lambda: None, lambda: True)
    assert deletes == [True] and (ended.by, ended.outcome) == ("me", "deleted")


def test_a_brokers_own_error_says_it_answers_a_local_one_does_not(worker: ConsumerWorker) -> None:
    from confluent_kafka import KafkaError

    health = worker.state.health
    health.unreachable(now=1.0, owned=0)
    worker.reporter.kafka_error(KafkaError(KafkaError._TIMED_OUT, "local"))
    assert not health.back_after_outage
    worker.reporter.kafka_error(KafkaError(KafkaError.INCONSISTENT_GROUP_PROTOCOL, "JoinGroup failed"))
    assert health.back_after_outage
