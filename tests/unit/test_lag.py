"""core.lag on constructed series: bounded history, lag in messages and seconds, drain, Burrow, alerts, chart."""

from __future__ import annotations

from itertools import pairwise

import pytest

from balance_tui.core.lag import (
    MAX_MARKERS,
    AlertState,
    DrainState,
    LagAlert,
    LagStatus,
    LagThreshold,
    LagTracker,
    Marker,
    PartitionReading,
    PartitionSeries,
    TimeLagBasis,
    balance_delay,
    drain_estimate,
    evaluate,
    format_count,
    format_seconds,
    parse_duration,
    parse_lag_threshold,
    render_chart,
)

T0 = 1_764_000_000.0  # epoch seconds, as the worker would pass them


def steady(series: PartitionSeries, seconds: int, *, arrive: int, consume: int, start: int = 0,
           commit_lag: int = 0, commit_acknowledged: bool = True, step: float = 1.0) -> None:
    """Feed `seconds` one-per-`step` readings: `arrive` messages/s produced, `consume`/s read, committed behind."""
    for tick in range(int(seconds / step)):
        now = T0 + start + tick * step
        elapsed = start + tick * step
        position = int(consume * elapsed)
        series.append(now, PartitionReading(
            log_end=int(arrive * elapsed), position=position, committed=max(0, position - commit_lag),
            last_commit_time=now if commit_acknowledged else T0))


# -- the bounded series -------------------------------------------------------------------------


def test_the_series_keeps_ten_minutes_at_one_sample_a_second_however_often_it_is_fed():
    series = PartitionSeries(retention=600, resolution=1.0)
    for tick in range(4 * 3600):  # an hour at 4 readings a second
        series.append(T0 + tick / 4, PartitionReading(log_end=tick, position=tick))
    assert len(series) <= 602
    kept = series.window(T0)
    assert kept[-1].time == T0 + (4 * 3600 - 1) / 4       # the newest reading is always there
    assert kept[0].time >= kept[-1].time - 600             # nothing older than the retention
    # The newest reading (kept however close to the one before) is left out of the gaps.
    gaps = [later.time - earlier.time for earlier, later in pairwise(kept[:-1])]
    assert min(gaps) >= 1.0                                 # older samples at least a resolution apart


def test_a_window_reads_the_samples_between_two_times():
    series = PartitionSeries()
    steady(series, 30, arrive=10, consume=10)
    window = series.window(T0 + 10, T0 + 19)
    assert [sample.time - T0 for sample in window] == list(range(10, 20))
    assert series.window(T0 + 25)[-1] == series.latest


def test_samples_must_come_in_time_order():
    series = PartitionSeries()
    series.append(T0 + 5, PartitionReading(log_end=10, position=10))
    with pytest.raises(ValueError, match="time order"):
        series.append(T0 + 4, PartitionReading(log_end=11, position=11))


def test_a_log_end_that_goes_back_starts_a_new_history():
    series = PartitionSeries()
    steady(series, 20, arrive=100, consume=100)
    series.append(T0 + 30, PartitionReading(log_end=5, position=0))  # a recreated topic
    assert len(series) == 1 and series.latest.lag == 5


def test_lag_in_messages_from_the_position_else_the_committed_offset():
    series = PartitionSeries()
    consuming = series.append(T0, PartitionReading(log_end=500, position=450, committed=400))
    assert (consuming.lag, consuming.committed_lag) == (50, 100)
    elsewhere = series.append(T0 + 1, PartitionReading(log_end=520, committed=400))
    assert elsewhere.lag == 120  # another member consumes it: the group's committed offset tells
    unknown = series.append(T0 + 2, PartitionReading(log_end=530))
    assert unknown.lag is None and unknown.lag_seconds is None


# -- lag in seconds -----------------------------------------------------------------------------


def test_lag_in_seconds_is_the_age_of_the_oldest_unconsumed_record_from_when_the_log_end_passed_it():
    series = PartitionSeries()
    # 10 messages a second arrive; the consumer stops at offset 100 (reached at t=10 s).
    for tick in range(60):
        series.append(T0 + tick, PartitionReading(log_end=10 * tick, position=min(100, 10 * tick)))
    latest = series.latest
    assert latest.lag == 590 - 100
    # Offset 100 was first seen at t=11 (log end 110 > 100): 59 - 11 = 48 s old.
    assert latest.lag_seconds == pytest.approx(48.0)
    assert latest.lag_seconds_basis is TimeLagBasis.OBSERVED


def test_a_caught_up_partition_is_zero_seconds_behind():
    series = PartitionSeries()
    steady(series, 10, arrive=50, consume=50)
    assert series.latest.lag == 0 and series.latest.lag_seconds == 0.0


def test_a_backlog_older_than_the_history_uses_the_last_consumed_records_timestamp():
    series = PartitionSeries(retention=30)
    for tick in range(100):  # consumer stuck at 0 since the start: offset 0 predates the kept history
        series.append(T0 + tick, PartitionReading(log_end=1000 + tick, position=0,
                                                  last_record_timestamp=T0 - 200))
    assert series.latest.lag_seconds == pytest.approx(299.0)
    assert series.latest.lag_seconds_basis is TimeLagBasis.AT_MOST
    blind = PartitionSeries(retention=30)
    for tick in range(100):
        blind.append(T0 + tick, PartitionReading(log_end=1000 + tick, position=0))
    assert blind.latest.lag_seconds_basis is TimeLagBasis.AT_LEAST
    assert blind.latest.lag_seconds == pytest.approx(blind.latest.time - blind.window(0)[0].time)


def test_the_very_first_reading_with_a_backlog_knows_its_age_only_from_a_timestamp():
    assert PartitionSeries().append(T0, PartitionReading(log_end=100, position=0)).lag_seconds is None
    stamped = PartitionSeries().append(T0, PartitionReading(log_end=100, position=0, last_record_timestamp=T0 - 7))
    assert stamped.lag_seconds == pytest.approx(7.0) and stamped.lag_seconds_basis is TimeLagBasis.AT_MOST


def test_a_balance_is_behind_real_time_by_the_age_of_the_last_applied_transaction_unless_caught_up():
    assert balance_delay(T0 + 100, lag=0, last_applied_timestamp=T0) == 0.0   # idle, but current
    assert balance_delay(T0 + 100, lag=12, last_applied_timestamp=T0 + 70) == pytest.approx(30.0)
    assert balance_delay(T0 + 100, lag=12, last_applied_timestamp=None) is None
    assert balance_delay(T0 + 100, lag=None, last_applied_timestamp=T0) is None


# -- time to drain ------------------------------------------------------------------------------


def test_drain_estimates():
    assert drain_estimate(1000, 100.0, 300.0).seconds == pytest.approx(5.0)
    assert drain_estimate(1000, 100.0, 300.0).state is DrainState.DRAINING
    assert drain_estimate(0, 100.0, 100.0).state is DrainState.CAUGHT_UP
    black_friday = drain_estimate(40_000, 1000.0, 500.0)   # the lab's one saturated worker
    assert black_friday.state is DrainState.NOT_DRAINING and black_friday.seconds is None
    assert drain_estimate(500, 200.0, 200.0).state is DrainState.NOT_DRAINING
    assert drain_estimate(500, None, 200.0).state is DrainState.UNKNOWN


def test_drain_from_a_series_uses_recent_rates():
    series = PartitionSeries()
    steady(series, 60, arrive=100, consume=50)          # falling behind...
    steady(series, 20, arrive=100, consume=300, start=60)  # ...then a second member helps (positions jump)
    rates = series.rates(T0 + 79, over=10)
    assert rates.arrival == pytest.approx(100.0) and rates.consumption == pytest.approx(300.0)


def test_the_group_drains_when_its_slowest_partition_has_and_not_at_all_if_one_cannot():
    tracker = LagTracker()
    for tick in range(10):
        tracker.record(T0 + tick, {
            0: PartitionReading(log_end=5000 + 100 * tick, position=300 * tick),   # gaining 200/s
            1: PartitionReading(log_end=8000 + 100 * tick, position=200 * tick),   # gaining 100/s
        })
    drain = tracker.drain(T0 + 9)
    assert drain.state is DrainState.DRAINING
    assert drain.partitions[0].seconds == pytest.approx((5000 - 200 * 9) / 200)
    assert drain.seconds == pytest.approx((8000 - 100 * 9) / 100)  # the slowest partition's
    assert drain.lag == 5000 - 200 * 9 + 8000 - 100 * 9
    assert drain.arrival_rate == pytest.approx(200.0) and drain.consumption_rate == pytest.approx(500.0)
    stuck = LagTracker()
    for tick in range(30):
        stuck.record(T0 + tick, {0: PartitionReading(log_end=170 * tick, position=80 * tick),
                                 1: PartitionReading(log_end=100 * tick, position=100 * tick)})
    assert stuck.drain(T0 + 29).state is DrainState.NOT_DRAINING
    assert stuck.drain(T0 + 29).not_draining == [0]


# -- Burrow's evaluation ------------------------------------------------------------------------


def status_after(feed, window: float = 60.0, allowed_lag: int = 0) -> LagStatus:
    series = PartitionSeries()
    feed(series)
    now = series.latest.time
    return series.evaluate(now, window, allowed_lag).status


def test_ok_when_caught_up_or_within_the_allowed_lag():
    assert status_after(lambda s: steady(s, 120, arrive=100, consume=100)) is LagStatus.OK
    assert status_after(lambda s: steady(s, 120, arrive=100, consume=100, commit_lag=50)) is LagStatus.WARN
    assert status_after(lambda s: steady(s, 120, arrive=100, consume=100, commit_lag=50),
                        allowed_lag=50) is LagStatus.OK


def test_warn_when_the_lag_grows_over_the_window_without_ever_falling():
    assert status_after(lambda s: steady(s, 120, arrive=170, consume=80)) is LagStatus.WARN


def test_no_warn_once_the_lag_fell_inside_the_window():
    def feed(series: PartitionSeries) -> None:
        steady(series, 60, arrive=170, consume=80)
        steady(series, 30, arrive=170, consume=80, start=60)
        reading = series.latest
        series.append(reading.time + 1, PartitionReading(log_end=reading.log_end, position=reading.log_end - 10,
                                                          committed=reading.log_end - 10,
                                                          last_commit_time=reading.time + 1))
    assert status_after(feed) is LagStatus.OK


def test_stall_when_commits_keep_coming_with_the_same_offset_while_lag_grows():
    def feed(series: PartitionSeries) -> None:
        for tick in range(120):
            series.append(T0 + tick, PartitionReading(log_end=100 * tick + 50, position=40, committed=40,
                                                      last_commit_time=T0 + tick))
    assert status_after(feed) is LagStatus.STALL


def test_stop_when_no_commit_for_longer_than_the_window():
    def feed(series: PartitionSeries) -> None:
        for tick in range(200):
            series.append(T0 + tick, PartitionReading(log_end=100 * tick + 50, position=40, committed=40,
                                                      last_commit_time=T0 + 10))
    assert status_after(feed) is LagStatus.STOP


def test_not_stopped_when_a_quiet_partition_just_got_a_message():
    """Burrow's recent-broker-offset rule: caught up moments ago, nothing to commit since."""
    def feed(series: PartitionSeries) -> None:
        for tick in range(200):
            series.append(T0 + tick, PartitionReading(log_end=40, position=40, committed=40,
                                                      last_commit_time=T0 + 10))
        series.append(T0 + 200, PartitionReading(log_end=41, position=40, committed=40, last_commit_time=T0 + 10))
    assert status_after(feed) is not LagStatus.STOP


def test_rewind_when_the_committed_offset_goes_back_and_stays_back():
    def feed(series: PartitionSeries) -> None:
        for tick in range(120):
            committed = 100 * tick if tick < 100 else 500 + 10 * (tick - 100)  # a new owner from an old commit
            series.append(T0 + tick, PartitionReading(log_end=100 * tick + 10, position=committed,
                                                      committed=committed, last_commit_time=T0 + tick))
    assert status_after(feed) is LagStatus.REWIND


def test_a_rewind_that_caught_up_again_is_no_longer_held_against_the_consumer():
    def feed(series: PartitionSeries) -> None:
        for tick in range(120):
            committed = 100 * tick - (300 if tick == 100 else 0)
            series.append(T0 + tick, PartitionReading(log_end=100 * tick + 10, position=committed,
                                                      committed=committed, last_commit_time=T0 + tick))
    assert status_after(feed) is not LagStatus.REWIND


def test_warn_and_stall_need_the_window_covered():
    # Lagging from the first sample on; 20 s of samples cover a third of a 60 s window, 40 s two thirds.
    assert status_after(lambda s: steady(s, 20, arrive=170, consume=80, start=5)) is LagStatus.OK
    assert status_after(lambda s: steady(s, 40, arrive=170, consume=80, start=5)) is LagStatus.WARN


def test_the_window_is_configurable():
    def feed(series: PartitionSeries) -> None:
        steady(series, 100, arrive=170, consume=80)
        reading = series.latest
        series.append(reading.time + 1, PartitionReading(log_end=reading.log_end, position=reading.log_end - 5,
                                                          committed=reading.log_end - 5,
                                                          last_commit_time=reading.time + 1))
        steady(series, 40, arrive=170, consume=80, start=110)
    assert status_after(feed, window=20) is LagStatus.WARN       # the dip is older than 20 s
    assert status_after(feed, window=60) is not LagStatus.WARN   # but inside 60 s


def test_the_groups_status_is_its_worst_partitions():
    tracker = LagTracker()
    for tick in range(120):
        now = T0 + tick
        tracker.record(now, {
            0: PartitionReading(log_end=100 * tick, position=100 * tick, committed=100 * tick, last_commit_time=now),
            1: PartitionReading(log_end=100 * tick + 50, position=40, committed=40, last_commit_time=now),
            2: PartitionReading(log_end=170 * tick, position=80 * tick, committed=80 * tick, last_commit_time=now),
        })
    result = tracker.evaluate(T0 + 119)
    assert {p: e.status for p, e in result.partitions.items()} == {0: LagStatus.OK, 1: LagStatus.STALL,
                                                                     2: LagStatus.WARN}
    assert result.status is LagStatus.STALL and result.worst == [1]
    assert "stuck at 40" in result.partitions[1].reason
    assert LagTracker().evaluate(T0).status is LagStatus.OK


def test_evaluate_needs_a_positive_window():
    with pytest.raises(ValueError):
        evaluate([], T0, window=0)


# -- the group aggregate and markers ------------------------------------------------------------


def test_the_group_series_sums_lags_and_keeps_the_worst_age():
    tracker = LagTracker()
    for tick in range(20):
        tracker.record(T0 + tick, {0: PartitionReading(log_end=10 * tick, position=5 * tick),
                                   1: PartitionReading(log_end=10 * tick, position=10 * tick),
                                   2: PartitionReading(log_end=10 * tick)})
    latest = tracker.group_window(T0 + 19)[-1]
    assert latest.lag == 95 and latest.partitions == 3 and latest.unknown == 1
    assert latest.lag_seconds == tracker.series(0).latest.lag_seconds > 0


def test_markers_are_kept_for_the_retention_and_bounded():
    tracker = LagTracker(retention=60)
    tracker.mark(T0, "assigned", "P0 P1 P2")
    for tick in range(MAX_MARKERS + 10):
        tracker.mark(T0 + 1 + tick * 0.01, "revoked")
    assert len(tracker.markers()) == MAX_MARKERS
    tracker.record(T0 + 100, {0: PartitionReading(log_end=1, position=1)})
    assert tracker.markers() == []  # older than the retention
    tracker.mark(T0 + 101, "lost")
    assert [m.kind for m in tracker.markers(since=T0 + 100)] == ["lost"]
    tracker.reset()
    assert tracker.markers() == [] and tracker.series(0) is None


def test_the_group_series_is_bounded_too():
    tracker = LagTracker(retention=60, resolution=1)
    for tick in range(2000):
        tracker.record(T0 + tick / 5, {0: PartitionReading(log_end=tick, position=tick)})
    assert len(tracker.group_window(0)) <= 62


# -- the lab's alert rule -----------------------------------------------------------------------


def test_the_alert_is_raised_after_the_lag_stayed_above_the_threshold_for_the_duration():
    alert = LagAlert(LagThreshold(messages=1000), for_seconds=300)
    assert alert.feed(T0, lag=5000) is None and alert.state is AlertState.PENDING
    assert alert.feed(T0 + 299, lag=6000) is None
    raised = alert.feed(T0 + 300, lag=7000)
    assert (raised.kind, raised.time, raised.since, raised.value) == ("raised", T0 + 300, T0, 7000)
    assert alert.state is AlertState.FIRING
    assert alert.feed(T0 + 400, lag=9000) is None   # raised once
    cleared = alert.feed(T0 + 450, lag=1000)         # at the threshold is not above it
    assert (cleared.kind, cleared.time, cleared.since) == ("cleared", T0 + 450, T0 + 300)
    assert alert.state is AlertState.OK


def test_a_dip_below_the_threshold_restarts_the_count():
    alert = LagAlert(LagThreshold(messages=100), for_seconds=60)
    alert.feed(T0, lag=500)
    alert.feed(T0 + 50, lag=50)                      # back under: no alert, count reset
    assert alert.feed(T0 + 70, lag=500) is None
    assert alert.feed(T0 + 120, lag=500) is None
    assert alert.feed(T0 + 130, lag=500).since == T0 + 70


def test_an_alert_on_seconds_of_lag_ignores_samples_whose_age_is_unknown():
    alert = LagAlert(LagThreshold(seconds=30), for_seconds=10)
    alert.feed(T0, lag=10, lag_seconds=45)
    assert alert.feed(T0 + 5, lag=10, lag_seconds=None) is None and alert.state is AlertState.PENDING
    assert alert.feed(T0 + 10, lag=10, lag_seconds=31).kind == "raised"
    assert alert.feed(T0 + 20, lag=99_999, lag_seconds=2).kind == "cleared"   # messages do not matter here


def test_a_zero_duration_raises_at_once_and_time_must_not_go_back():
    alert = LagAlert(LagThreshold(messages=0), for_seconds=0)
    assert alert.feed(T0, lag=1).kind == "raised"
    with pytest.raises(ValueError, match="time order"):
        alert.feed(T0 - 1, lag=1)
    with pytest.raises(ValueError):
        LagAlert(LagThreshold(messages=1), for_seconds=-1)


@pytest.mark.parametrize(("text", "expected"), [
    ("1000", LagThreshold(messages=1000)), (" 250 ", LagThreshold(messages=250)),
    ("10_000", LagThreshold(messages=10_000)), ("30s", LagThreshold(seconds=30.0)),
    ("2.5s", LagThreshold(seconds=2.5)), (500, LagThreshold(messages=500)), ("0", LagThreshold(messages=0)),
])
def test_lag_alert_threshold_parses_messages_or_seconds(text, expected):
    assert parse_lag_threshold(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-5", "5m", "1.5", "30 s", "s", True, -3])
def test_a_bad_lag_alert_threshold_is_one_clear_line(text):
    with pytest.raises(ValueError) as raised:
        parse_lag_threshold(text)
    message = str(raised.value)
    assert message.startswith("lag_alert_threshold must") and "\n" not in message


@pytest.mark.parametrize(("text", "seconds"), [
    ("5m", 300.0), ("300s", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), ("2m30s", 150.0), ("0s", 0.0),
    (" 5M ", 300.0), ("1.5h", 5400.0), (300, 300.0), (12.5, 12.5),
])
def test_lag_alert_for_parses_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "300", "five minutes", "5 m", "m", "-5m", "5d", "1m1h", -1, float("inf")])
def test_a_bad_lag_alert_for_is_one_clear_line(text):
    with pytest.raises(ValueError) as raised:
        parse_duration(text)
    message = str(raised.value)
    assert message.startswith("lag_alert_for must") and "\n" not in message


def test_a_bare_number_of_seconds_as_text_gets_a_hint():
    with pytest.raises(ValueError, match=r'add a unit: "300s"'):
        parse_duration("300")


# -- the text chart -----------------------------------------------------------------------------


def test_the_chart_has_a_fixed_size_whatever_the_data():
    for points in ([], [(T0 + 5, 0.0)], [(T0 + t, float(t * t)) for t in range(60)]):
        lines = render_chart(points, start=T0, end=T0 + 60, width=50, height=5)
        assert len(lines) == 5 + 2
        assert {len(line) for line in lines} == {50}


def test_the_chart_draws_the_peak_at_full_height_and_zero_flat():
    points = [(T0 + t, 0.0) for t in range(30)] + [(T0 + 30 + t, 1000.0 * (t + 1)) for t in range(30)]
    lines = render_chart(points, start=T0, end=T0 + 60, width=64, height=4)
    plot = [line[6:] for line in lines[:4]]            # after the "1k ┤"-style gutter
    assert lines[0].lstrip().startswith("30k ┤")
    assert plot[0][-1] == "█"                          # the maximum fills the top row
    assert all(row[:25].strip() == "" for row in plot)  # zero lag: no bar
    assert lines[4].endswith("─" * 10)                 # samples all along the axis
    assert lines[5].rstrip().endswith("now") and "-1m" in lines[5]


def test_missing_samples_and_markers_show_on_the_time_axis():
    points = [(T0 + t, 10.0) for t in range(20)] + [(T0 + t, 10.0) for t in range(40, 60)]
    markers = [Marker(T0 + 30, "assigned"), Marker(T0 + 45, "revoked"), Marker(T0 + 45.2, "lost"),
               Marker(T0 + 50, "restored"), Marker(T0 + 52, "who knows"), Marker(T0 + 99, "lost")]
    lines = render_chart(points, start=T0, end=T0 + 60, width=64, height=3, markers=markers)
    axis = lines[3].split("└", 1)[1]
    assert len(axis) == 60
    assert axis[30] == "A" and axis[45] == "+" and axis[50] == "↻" and axis[52] == "*"
    assert set(axis[21:30]) == {"╌"}                   # no samples between 20 s and 40 s
    assert "L" not in axis                             # the lost marker outside the span is not drawn


def test_a_seconds_chart_labels_its_scale_as_a_duration():
    lines = render_chart([(T0 + t, 12.0 * t) for t in range(11)], start=T0, end=T0 + 10, width=30, height=2,
                         seconds=True)
    assert lines[0].lstrip().startswith("2m ┤")


def test_impossible_charts_are_refused():
    with pytest.raises(ValueError):
        render_chart([], start=T0, end=T0, width=40, height=3)
    with pytest.raises(ValueError):
        render_chart([], start=T0, end=T0 + 1, width=4, height=3)
    with pytest.raises(ValueError):
        render_chart([], start=T0, end=T0 + 1, width=40, height=0)


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (950, "950"), (4300, "4.3k"), (12_000, "12k"),
                                             (1_250_000, "1.2M"), (0.5, "0.5")])
def test_format_count(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize(("value", "text"), [(45, "45s"), (2.5, "2.5s"), (150, "2.5m"), (3600, "1h"),
                                             (5400, "1.5h")])
def test_format_seconds(value, text):
    assert format_seconds(value) == text
