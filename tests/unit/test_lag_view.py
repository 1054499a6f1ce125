"""What a member shows of its lag (core/lag_view.py): the view, its words, its session-log and JSON shapes."""

from __future__ import annotations

import itertools
import json

import pytest

from balance_tui.core.lag import (
    AlertState,
    DrainState,
    LagAlert,
    LagStatus,
    LagThreshold,
    LagTracker,
    PartitionReading,
    TimeLagBasis,
)
from balance_tui.core.lag_view import (
    alert_episodes,
    alert_text,
    alert_view,
    allowed_lag,
    build_view,
    chart_lines,
    drain_text,
    held,
    seconds_text,
    span_for,
    stats_fields,
    strip,
    transition_text,
    view_document,
)
from tests.lag_views import sample_view

T0 = 1_800_000_000.0


def steady_tracker(seconds: int = 125, commit_phase_drift: float = 0.04) -> LagTracker:
    """A consumer that keeps up with 50 tx/s, committing once a second, sampled at a slowly drifting phase:
    the committed lag is a sawtooth read at a moment that moves a little every sample."""
    tracker = LagTracker()
    for step in range(seconds):
        now = T0 + step * 1.0
        log_end = 1000 + step * 50
        since_commit = (step * commit_phase_drift) % 1.0
        committed = log_end - round(50 * since_commit)
        tracker.record(now, {0: PartitionReading(log_end, log_end, committed, now - since_commit, now - 0.01)})
    return tracker


def test_a_steady_consumers_commit_sawtooth_is_within_the_allowed_lag() -> None:
    tracker = steady_tracker()
    now = T0 + 124  # the last 20 s all on one rising edge of the sawtooth (it drifts 0.04 s a sample)
    # Without a margin the drifting phase reads as lag growing for a whole window: a false WARN.
    assert tracker.evaluate(now, 20.0).status is LagStatus.WARN
    view = build_view(tracker, now, window=20.0, commit_interval=1.0)
    assert view.status is LagStatus.OK and view.worst == ()
    assert allowed_lag(50.0, 1.0) == 100 and allowed_lag(None, 1.0) == 0 and allowed_lag(50.0, None) == 0


def test_the_view_sums_my_partitions_and_keeps_the_worst_and_the_slowest() -> None:
    view = sample_view(T0)
    assert [p.partition for p in view.partitions] == [0, 1, 3]
    assert view.lag == sum(p.lag or 0 for p in view.partitions) and view.lag > 1_000
    assert view.status is LagStatus.WARN and view.worst == (3,)
    assert view.drain is DrainState.NOT_DRAINING and view.not_draining == (3,)
    assert view.partition(0).drain is DrainState.CAUGHT_UP and view.partition(0).lag == 0
    assert view.lag_seconds == view.partition(3).lag_seconds and view.lag_seconds > 60
    assert view.balance_delay == pytest.approx(view.partition(3).balance_delay)
    assert view.points[-1] == (T0, float(view.lag)) and len(view.points) == 601
    assert {m.kind for m in view.markers} == {"assigned", "revoked", "restored", "paused", "resumed"}
    assert view.alert is not None and view.alert.firing and view.alert.raised_total == 1


def test_a_member_that_owns_nothing_has_no_lag_and_one_not_read_yet_an_unknown_one() -> None:
    tracker = LagTracker()
    assert build_view(tracker, T0, partitions=()).lag == 0
    assert build_view(tracker, T0, partitions=()).drain is DrainState.CAUGHT_UP
    assert build_view(tracker, T0, partitions=(4,)).lag is None
    assert build_view(tracker, T0, partitions=(4,)).drain is DrainState.UNKNOWN  # not "caught up" before a reading
    tracker.record(T0, {4: PartitionReading(100, 90)})
    assert build_view(tracker, T0, partitions=(4,)).lag == 10
    assert build_view(tracker, T0, partitions=()).partitions == ()  # a partition that left is not shown


def test_only_the_partitions_with_the_largest_lag_carry_their_series() -> None:
    tracker = LagTracker()
    for step in range(3):
        tracker.record(T0 + step, {p: PartitionReading(1000, 1000 - p * 10) for p in range(20)})
    view = build_view(tracker, T0 + 2, max_series=4)
    assert sorted(view.partition_points) == [16, 17, 18, 19]


@pytest.mark.parametrize(("value", "basis", "text"), [
    (None, None, "–"), (0.0, TimeLagBasis.OBSERVED, "0s"), (12.0, TimeLagBasis.AT_MOST, "≤12s"),
    (150.0, TimeLagBasis.AT_LEAST, "≥2.5m"), (4.25, None, "4.2s"),
])
def test_lag_in_seconds_says_when_it_is_a_bound(value, basis, text) -> None:
    assert seconds_text(value, basis) == text


def test_time_to_drain_in_words() -> None:
    assert drain_text(DrainState.DRAINING, 75.0) == "drains in 1.2m"
    assert drain_text(DrainState.DRAINING, 75.0, short=True) == "1.2m"
    assert drain_text(DrainState.NOT_DRAINING, None) == "not draining"
    assert drain_text(DrainState.NOT_DRAINING, None, short=True) == "never"
    assert drain_text(DrainState.CAUGHT_UP, 0.0) == "caught up"
    assert drain_text(DrainState.CAUGHT_UP, 0.0, short=True) == "0s"
    assert drain_text(DrainState.UNKNOWN, None, short=True) == "–"


def test_the_alert_in_words_and_its_episodes() -> None:
    alert = LagAlert(LagThreshold(messages=1_000), 300.0)
    transitions = [t for t in (alert.feed(T0, lag=5_000), alert.feed(T0 + 40, lag=5_000)) if t]
    pending = alert_view(alert, transitions)
    assert pending.state is AlertState.PENDING and alert_text(pending, T0 + 40) == "above 1,000 messages for 40s of 5m"
    raised = alert.feed(T0 + 300, lag=6_000)
    firing = alert_view(alert, [raised])
    assert alert_text(firing, T0 + 301).startswith("in alert since ")
    assert transition_text(raised, firing).startswith("lag alert raised: lag 6,000 above 1,000 messages since ")
    cleared = alert.feed(T0 + 400, lag=10)
    assert transition_text(cleared, firing) == ("lag alert cleared: lag 10, at or below 1,000 messages, after 1.7m "
                                                 "in alert")
    assert alert_episodes([raised, cleared, raised]) == [(raised, cleared), (raised, None)]
    quiet = alert_view(LagAlert(LagThreshold(seconds=30.0), 60.0))
    assert alert_text(quiet, T0) == "alert above 30s for 1m" and alert_view(None) is None


def test_the_stats_lines_lag_fields() -> None:
    fields = stats_fields(sample_view(T0))
    assert fields["lag_status"] == "WARN" and fields["lag_status_by_partition"] == {"0": "OK", "1": "OK", "3": "WARN"}
    assert fields["drain"] == "not draining" and fields["drain_s"] is None and fields["lag_alert"] == "firing"
    assert fields["lag_seconds"] == fields["lag_seconds_by_partition"]["3"]
    assert stats_fields(None) == {}
    assert "lag_alert" not in stats_fields(sample_view(T0, alert=False))


def test_the_exports_lag_object_is_plain_json() -> None:
    document = json.loads(json.dumps(view_document(sample_view(T0))))
    assert document["status"] == "WARN" and document["worstPartitions"] == [3]
    assert document["partitions"][2]["drain"] == "not draining" and document["partitions"][2]["lagSecondsBasis"]
    assert document["alert"]["state"] == "firing" and document["alert"]["transitions"][0]["kind"] == "raised"
    assert len(document["series"]) == 601 and document["series"][-1]["lag"] == document["lag"]
    assert {"at", "kind", "detail"} == set(document["markers"][0])


def test_a_strip_shares_the_charts_columns() -> None:
    points = [(T0 + t, float(t)) for t in range(10)] + [(T0 + t, 0.0) for t in range(20, 30)]
    cells = strip(points, start=T0, end=T0 + 40, columns=40, scale=9.0)
    assert len(cells) == 40 and cells[9] == "█" and cells[0] == "·"  # zero lag: a dot, not a bar
    assert cells[10:20].strip() == "" and set(cells[20:30]) == {"·"} and cells[30:] == " " * 10  # no samples: blank
    with pytest.raises(ValueError):
        strip(points, start=T0, end=T0, columns=10)


def test_the_span_follows_the_width_in_round_minutes() -> None:
    assert [span_for(columns) for columns in (10, 48, 70, 100, 500)] == [60.0, 120.0, 180.0, 300.0, 600.0]


def test_the_text_chart_spans_the_history_with_clock_labels() -> None:
    lines = chart_lines(sample_view(T0), width=80, height=6, clock_labels=True)
    assert len(lines) == 8 and all(len(line) == 80 for line in lines)
    assert lines[-1].rstrip().endswith("UTC") and "‖" in lines[-2] and "▸" in lines[-2]


def test_columns_narrower_than_a_sample_interval_hold_the_value_and_real_gaps_stay_gaps() -> None:
    # A sample every 1.2 s (the view is rebuilt at the first snapshot a second after the last) on 0.5 s columns.
    points = [(T0 + 1.2 * i, 100.0) for i in range(10)] + [(T0 + 30 + 1.2 * i, 100.0) for i in range(5)]
    assert " " in strip(points, start=T0, end=T0 + 40, columns=80)[:20]  # holes in a continuous series
    filled = held(points, start=T0, end=T0 + 40, columns=80)
    cells = strip(filled, start=T0, end=T0 + 40, columns=80)
    assert " " not in cells[:22] and " " not in cells[60:69]
    assert cells[24:58].strip() == ""  # 19 s without a reading: missing data, shown as such
    assert filled[:2] == [(T0, 100.0), (T0 + 0.5, 100.0)]
    assert all(t2 >= t1 for (t1, _), (t2, _) in itertools.pairwise(filled))
    with pytest.raises(ValueError):
        held(points, start=T0, end=T0, columns=10)


def test_the_export_chart_has_no_holes_where_samples_are_a_second_apart() -> None:
    tracker = LagTracker()
    for i in range(50):
        now = T0 + 1.2 * i
        tracker.record(now, {0: PartitionReading(1_000 + 40 * i, 1_000, 1_000, now - 0.5, now - 1)})
    view = build_view(tracker, T0 + 1.2 * 49, window=10.0)
    plot = chart_lines(view, width=76, height=4)
    filled_from = plot[3].index("█")
    assert " " not in plot[3][filled_from:].rstrip()
    assert "╌" not in plot[4][plot[4].index("└") + 1:].lstrip("╌")  # no "no data" once the readings started
