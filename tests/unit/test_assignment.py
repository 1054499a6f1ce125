"""Assignment bookkeeping: what moved, what stayed, and how long things took."""

from datetime import UTC, datetime, timedelta

from balance_tui.core.assignment import AssignmentTracker, format_partitions, iso_ms

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_first_join_measures_join_time_and_moves_everything_in():
    tracker = AssignmentTracker()
    tracker.joining(at(0))
    entry = tracker.assigned([0, 1, 2, 3, 4, 5], incremental=False, now=at(5))
    assert entry.join_ms == 5000
    assert entry.moved_in == (0, 1, 2, 3, 4, 5)
    assert entry.kept == ()
    assert tracker.assignment == {0, 1, 2, 3, 4, 5}


def test_eager_rebalance_revokes_all_then_keeps_what_comes_back():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1, 2, 3, 4, 5], incremental=False, now=at(0))
    revoked = tracker.revoked([0, 1, 2, 3, 4, 5], incremental=False, now=at(10))
    assert revoked.assignment == ()
    assert "stop-the-world" in revoked.detail
    entry = tracker.assigned([0, 1, 2], incremental=False, now=at(13))
    assert entry.kept == (0, 1, 2)
    assert entry.moved_in == ()
    assert tracker.last_dropped == {3, 4, 5}
    assert entry.downtime_ms == {0: 3000, 1: 3000, 2: 3000}
    assert entry.join_ms == 3000


def test_cooperative_rebalance_revokes_only_what_moves():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1, 2, 3, 4, 5], incremental=True, now=at(0))
    revoked = tracker.revoked([3, 4, 5], incremental=True, now=at(10))
    assert revoked.assignment == (0, 1, 2)
    entry = tracker.assigned([], incremental=True, now=at(11))
    assert tracker.assignment == {0, 1, 2}
    assert entry.kept == (0, 1, 2)
    assert tracker.last_dropped == set()


def test_partition_coming_back_reports_its_downtime():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1], incremental=True, now=at(0))
    tracker.revoked([1], incremental=True, now=at(1))
    entry = tracker.assigned([1], incremental=True, now=at(4.5))
    assert entry.downtime_ms == {1: 3500}
    assert entry.moved_in == (1,)


def test_lost_partitions_leave_the_assignment():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1, 2], incremental=False, now=at(0))
    entry = tracker.lost([0, 1, 2], now=at(20))
    assert entry.kind == "lost"
    assert tracker.assignment == set()


def test_empty_assignment_is_reported_as_idle():
    tracker = AssignmentTracker()
    entry = tracker.assigned([], incremental=False, now=at(0))
    assert "idle" in entry.detail


def test_formatting_matches_the_lab():
    assert format_partitions([2, 0, 1]) == "[0, 1, 2]"
    assert iso_ms(at(0.1234)) == "2026-11-25T12:00:00.123Z"


def test_a_cooperative_round_is_not_a_join_and_shows_no_pause():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1, 2, 3, 4, 5], incremental=True, now=at(0))
    tracker.revoked([3, 4, 5], incremental=True, now=at(10))
    entry = tracker.assigned([], incremental=True, now=at(10.001))
    assert entry.join_ms is None
    assert entry.detail == "nothing new this round"
    assert entry.kept == (0, 1, 2)


def test_a_partition_that_left_and_came_back_later_is_a_move_in_not_a_pause():
    tracker = AssignmentTracker()
    tracker.assigned([0, 1, 2, 3, 4, 5], incremental=False, now=at(0))
    tracker.revoked([0, 1, 2, 3, 4, 5], incremental=False, now=at(10))
    tracker.assigned([0, 1, 2], incremental=False, now=at(13))  # 3-5 went to another member
    tracker.revoked([0, 1, 2], incremental=False, now=at(200))
    entry = tracker.assigned([0, 1, 2, 3, 4, 5], incremental=False, now=at(203))  # the other one crashed
    assert entry.downtime_ms == {0: 3000, 1: 3000, 2: 3000}  # not 193 s for 3-5
    assert entry.moved_in == (3, 4, 5)
