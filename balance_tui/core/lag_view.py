"""Provides what a member shows of its lag: one immutable `LagView` built from its `LagTracker`.

The worker builds a view about once a second (docs/lag.md, "How it is wired") and hands the same
object to the screen, the HTTP API, the session log's `stats` line and the exports, so all of them
tell the same numbers. Pure: no Kafka, no Textual; times are epoch seconds passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from balance_tui.core.lag import (
    DEFAULT_EVALUATION_WINDOW_SECONDS,
    AlertState,
    AlertTransition,
    DrainState,
    LagAlert,
    LagStatus,
    LagTracker,
    Marker,
    TimeLagBasis,
    balance_delay,
    format_seconds,
    render_chart,
)

#: Per-partition series carried in a view: the partitions with the largest lag first.
MAX_PARTITION_SERIES = 12
_EIGHTHS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class PartitionLagView:
    """One partition's lag figures at the view's time."""

    partition: int
    lag: int | None
    committed_lag: int | None
    lag_seconds: float | None
    lag_seconds_basis: TimeLagBasis | None
    status: LagStatus
    reason: str
    drain: DrainState
    drain_seconds: float | None
    arrival_rate: float | None
    consumption_rate: float | None
    balance_delay: float | None
    """How far behind real time this partition's balances are (docs/lag.md)."""


@dataclass(frozen=True, slots=True)
class AlertView:
    """The lab's alert rule as it stands, and its raised/cleared transitions (oldest first)."""

    threshold: str
    """"1,000 messages" or "30s"."""
    for_seconds: float
    state: AlertState
    above_since: float | None
    raised_at: float | None
    transitions: tuple[AlertTransition, ...] = ()
    """The last ones kept, oldest first."""
    raised_total: int = 0
    """Alerts raised since the member started (a Prometheus counter)."""

    @property
    def firing(self) -> bool:
        return self.state is AlertState.FIRING


@dataclass(frozen=True, slots=True)
class LagView:
    """This member's lag: its partitions, their sum ("my partitions"), the series behind the charts."""

    time: float
    window: float
    lag: int | None
    """Sum over my partitions whose lag is known; None before any reading."""
    lag_seconds: float | None
    status: LagStatus
    worst: tuple[int, ...]
    drain: DrainState
    drain_seconds: float | None
    not_draining: tuple[int, ...]
    balance_delay: float | None
    partitions: tuple[PartitionLagView, ...] = ()
    points: tuple[tuple[float, float], ...] = ()
    """(time, lag in messages) of my partitions together, over the kept history."""
    seconds_points: tuple[tuple[float, float], ...] = ()
    """(time, lag in seconds) of my latest partition, where known."""
    partition_points: Mapping[int, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    markers: tuple[Marker, ...] = ()
    alert: AlertView | None = None

    def partition(self, number: int) -> PartitionLagView | None:
        return next((view for view in self.partitions if view.partition == number), None)


def alert_view(alert: LagAlert | None, transitions: Iterable[AlertTransition] = (),
               raised_total: int | None = None) -> AlertView | None:
    if alert is None:
        return None
    kept = tuple(transitions)
    return AlertView(threshold=str(alert.threshold), for_seconds=alert.for_seconds, state=alert.state,
                     above_since=alert.above_since, raised_at=alert.raised_at, transitions=kept,
                     raised_total=raised_total if raised_total is not None
                     else sum(t.kind == "raised" for t in kept))


def allowed_lag(arrival_rate: float | None, commit_interval: float | None) -> int:
    """Burrow's `allowed-lag` for one partition: twice what arrives between two commits.

    A consumer that keeps up still trails its last commit by up to one commit interval of
    arrivals, and the samples catch that sawtooth at a drifting phase: without this margin a
    healthy partition under steady traffic would read as WARN whenever the phase drifts one way
    for a whole window (docs/lag.md).
    """
    if not arrival_rate or not commit_interval:
        return 0
    return math.ceil(2 * arrival_rate * commit_interval)


def build_view(tracker: LagTracker, now: float, *, window: float = DEFAULT_EVALUATION_WINDOW_SECONDS,
               alert: AlertView | None = None, partitions: Iterable[int] | None = None,
               max_series: int = MAX_PARTITION_SERIES, commit_interval: float | None = None) -> LagView:
    """The view of `partitions` (default: every partition the tracker holds) at `now`.

    Evaluates Burrow's rules over `window` (with `allowed_lag` from `commit_interval`, the seconds
    between two commits), the time to drain over the last 10 s, and copies the series behind the
    charts (the group's, and the `max_series` partitions with the largest lag).
    """
    series = tracker.partitions
    wanted = sorted(series) if partitions is None else sorted(set(partitions))
    numbers = [p for p in wanted if p in series]
    drains = tracker.drain(now)
    views = []
    for number in numbers:
        latest = series[number].latest
        assert latest is not None  # a series exists once it has a sample
        drain = drains.partitions[number]
        judged = series[number].evaluate(now, window, allowed_lag(drain.arrival_rate, commit_interval))
        views.append(PartitionLagView(
            partition=number, lag=latest.lag, committed_lag=latest.committed_lag, lag_seconds=latest.lag_seconds,
            lag_seconds_basis=latest.lag_seconds_basis, status=judged.status, reason=judged.reason,
            drain=drain.state, drain_seconds=drain.seconds, arrival_rate=drain.arrival_rate,
            consumption_rate=drain.consumption_rate,
            balance_delay=balance_delay(now, latest.lag, latest.last_record_timestamp),
        ))
    history = tracker.group_window(now - tracker.retention)
    status = max((view.status for view in views), default=LagStatus.OK)
    by_lag = sorted(views, key=lambda view: (-(view.lag or 0), view.partition))[:max_series]
    delays = [view.balance_delay for view in views if view.balance_delay is not None]
    known = [view.lag for view in views if view.lag is not None]
    ages = [view.lag_seconds for view in views if view.lag_seconds is not None]
    # Partitions of mine not read yet (restoring, no log end): nothing is known of their drain.
    group_drain = _group_drain(views) if views or not wanted else (DrainState.UNKNOWN, None)
    return LagView(
        # As the counters say it: 0 when I own nothing, unknown while no partition's lag is known.
        time=now, window=window, lag=sum(known) if known else (0 if not wanted else None),
        lag_seconds=max(ages) if ages else None, status=status,
        worst=tuple(view.partition for view in views if view.status == status and status is not LagStatus.OK),
        drain=group_drain[0], drain_seconds=group_drain[1],
        not_draining=tuple(view.partition for view in views if view.drain is DrainState.NOT_DRAINING),
        balance_delay=max(delays) if delays else None, partitions=tuple(views),
        points=tuple((sample.time, float(sample.lag)) for sample in history),
        seconds_points=tuple((sample.time, sample.lag_seconds) for sample in history
                             if sample.lag_seconds is not None),
        partition_points={view.partition: tuple((sample.time, float(sample.lag))
                                                for sample in series[view.partition].window(now - tracker.retention)
                                                if sample.lag is not None)
                          for view in by_lag},
        markers=tuple(tracker.markers(now - tracker.retention)), alert=alert,
    )


def _group_drain(views: Sequence[PartitionLagView]) -> tuple[DrainState, float | None]:
    """As `LagTracker.drain`, over the partitions shown: drained when the slowest is."""
    states = {view.drain for view in views}
    if DrainState.NOT_DRAINING in states:
        return DrainState.NOT_DRAINING, None
    if DrainState.UNKNOWN in states:
        return DrainState.UNKNOWN, None
    if DrainState.DRAINING in states:
        return DrainState.DRAINING, max(view.drain_seconds for view in views if view.drain_seconds is not None)
    return DrainState.CAUGHT_UP, 0.0


# -- words and numbers shared by the screen, the exports and the logs ---------------------------


def seconds_text(value: float | None, basis: TimeLagBasis | None = None) -> str:
    """`12s`, `≤2.5m` (an upper bound), `≥40s` (a lower bound), `–` when unknown."""
    if value is None:
        return "–"
    prefix = {TimeLagBasis.AT_MOST: "≤", TimeLagBasis.AT_LEAST: "≥"}.get(basis, "") if basis else ""
    return prefix + format_seconds(value)


def drain_text(state: DrainState, seconds: float | None, *, short: bool = False) -> str:
    """`drains in 12s`, `not draining`, `caught up`, `unknown`; `short`: `12s`, `never`, `0s`, `–`."""
    if state is DrainState.DRAINING and seconds is not None:
        return format_seconds(seconds) if short else f"drains in {format_seconds(seconds)}"
    if short:
        return {DrainState.NOT_DRAINING: "never", DrainState.CAUGHT_UP: "0s"}.get(state, "–")
    return state.value


def clock_text(moment: float) -> str:
    """HH:MM:SS in UTC, as the timeline and the session log stamp their times."""
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")


def iso_text(moment: float | None) -> str | None:
    if moment is None:
        return None
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def alert_text(alert: AlertView, now: float) -> str:
    """`in alert since 12:03:04`, `above 1,000 messages for 40s of 5m`, or `ok (alert above 1,000 messages for 5m)`."""
    if alert.firing and alert.raised_at is not None:
        return f"in alert since {clock_text(alert.raised_at)}"
    if alert.state is AlertState.PENDING and alert.above_since is not None:
        return (f"above {alert.threshold} for {format_seconds(max(0.0, now - alert.above_since))} "
                f"of {format_seconds(alert.for_seconds)}")
    return f"alert above {alert.threshold} for {format_seconds(alert.for_seconds)}"


def transition_text(transition: AlertTransition, alert: AlertView) -> str:
    """The timeline's words for a raised or cleared alert."""
    value = measure_text(transition.value, alert.threshold)
    if transition.kind == "raised":
        return (f"lag alert raised: lag {value} above {alert.threshold} since {clock_text(transition.since)} "
                f"(for {format_seconds(transition.time - transition.since)})")
    return (f"lag alert cleared: lag {value}, at or below {alert.threshold}, after "
            f"{format_seconds(transition.time - transition.since)} in alert")


def measure_text(value: float, threshold: str) -> str:
    """A lag in the threshold's unit: `1,234` (messages) or `12s`."""
    return f"{value:,.0f}" if threshold.endswith("messages") else format_seconds(value)


# -- the session log ----------------------------------------------------------------------------


def stats_fields(view: LagView | None) -> dict[str, Any]:
    """The `stats` line's lag fields (docs/session-log.md); empty before the first view."""
    if view is None:
        return {}
    fields: dict[str, Any] = {
        "lag_seconds": _round(view.lag_seconds),
        "lag_seconds_by_partition": {str(p.partition): _round(p.lag_seconds) for p in view.partitions
                                     if p.lag_seconds is not None},
        "lag_status": view.status.name,
        "lag_status_by_partition": {str(p.partition): p.status.name for p in view.partitions},
        "drain": view.drain.value,
        "drain_s": _round(view.drain_seconds),
        "balance_delay_s": _round(view.balance_delay),
    }
    if view.alert is not None:
        fields["lag_alert"] = view.alert.state.value
    return fields


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- JSON (exports, API) ---------------------------------------------------------------------------


def partition_document(view: PartitionLagView) -> dict[str, Any]:
    return {
        "partition": view.partition, "lag": view.lag, "committedLag": view.committed_lag,
        "lagSeconds": _round(view.lag_seconds),
        "lagSecondsBasis": view.lag_seconds_basis.value if view.lag_seconds_basis else None,
        "status": view.status.name, "statusReason": view.reason, "drain": view.drain.value,
        "timeToDrainSeconds": _round(view.drain_seconds), "arrivalRate": _round(view.arrival_rate),
        "consumptionRate": _round(view.consumption_rate), "balanceDelaySeconds": _round(view.balance_delay),
    }


def transition_document(transition: AlertTransition) -> dict[str, Any]:
    return {"kind": transition.kind, "at": iso_text(transition.time), "since": iso_text(transition.since),
            "value": round(transition.value, 1)}


def alert_document(alert: AlertView | None) -> dict[str, Any] | None:
    if alert is None:
        return None
    return {"state": alert.state.value, "threshold": alert.threshold, "forSeconds": alert.for_seconds,
            "aboveSince": iso_text(alert.above_since), "raisedAt": iso_text(alert.raised_at),
            "raisedTotal": alert.raised_total, "transitions": [transition_document(t) for t in alert.transitions]}


def view_document(view: LagView) -> dict[str, Any]:
    """The exports' `lag` object: my partitions together, each partition, the alert, the series."""
    return {
        "at": iso_text(view.time), "windowSeconds": view.window, "lag": view.lag,
        "lagSeconds": _round(view.lag_seconds), "status": view.status.name, "worstPartitions": list(view.worst),
        "drain": view.drain.value, "timeToDrainSeconds": _round(view.drain_seconds),
        "notDraining": list(view.not_draining), "balanceDelaySeconds": _round(view.balance_delay),
        "partitions": [partition_document(p) for p in view.partitions],
        "alert": alert_document(view.alert),
        "series": [{"at": iso_text(at), "lag": int(lag)} for at, lag in view.points],
        "markers": [{"at": iso_text(m.time), "kind": m.kind, "detail": m.detail} for m in view.markers],
    }


# -- a one-row chart per partition, on the main chart's columns ------------------------------------


def strip(points: Iterable[tuple[float, float]], *, start: float, end: float, columns: int,
          scale: float | None = None) -> str:
    """One row of block elements, `columns` wide: each column the largest value of its stretch of time,
    in eighths of `scale` (default the largest value); `·` at zero, blank where there is no sample."""
    if end <= start or columns < 1:
        raise ValueError("a strip needs a positive span and at least one column")
    span = end - start
    peaks: list[float | None] = [None] * columns
    for time, value in points:
        if start <= time <= end:
            column = min(columns - 1, int((time - start) / span * columns))
            current = peaks[column]
            peaks[column] = value if current is None or value > current else current
    top = scale if scale is not None else max((p for p in peaks if p is not None), default=0.0)
    cells = []
    for peak in peaks:
        if peak is None:
            cells.append(" ")  # no sample: not mine then, or paused reading
        elif peak <= 0 or top <= 0:
            cells.append("·")  # caught up
        else:
            cells.append(_EIGHTHS[max(1, min(8, round(peak / top * 8)))])
    return "".join(cells)


#: Two samples at most this far apart are one stretch of readings: the columns between them show the first one's
#: value. The series keep a sample about every second (`VIEW_SECONDS`); a wider gap is missing data (a reading
#: paused, a partition not mine), drawn as such.
MAX_HELD_GAP = 3.0


def held(points: Iterable[tuple[float, float]], *, start: float, end: float, columns: int,
         max_gap: float = MAX_HELD_GAP) -> list[tuple[float, float]]:
    """`points` and, between two of them less than `max_gap` apart, the first one's value once per column: a chart
    whose columns are narrower than the time between samples would otherwise show holes in a continuous series."""
    if end <= start or columns < 1:
        raise ValueError("held points need a positive span and at least one column")
    step = (end - start) / columns
    filled: list[tuple[float, float]] = []
    previous: tuple[float, float] | None = None
    for moment, value in points:
        if previous is not None and 0 < moment - previous[0] <= max_gap:
            between = previous[0] + step
            while between < moment:
                filled.append((between, previous[1]))
                between += step
        filled.append((moment, value))
        previous = (moment, value)
    return filled


def span_for(columns: int, retention: float = 600.0) -> float:
    """A round chart span for `columns` plot columns: about 2.5 s per column, from 1 to 10 minutes."""
    for minutes in (1, 2, 3, 5, 10):
        if minutes * 60 >= columns * 2.5:
            return min(retention, minutes * 60.0)
    return retention



# -- the chart, as text ------------------------------------------------------------------------------

#: What the glyphs on a lag chart's time axis mean (core.lag.MARKER_GLYPHS).
MARKER_LEGEND = "A assigned · R revoked · L lost · ↻ restored · S strategy · ‖ paused · ▸ resumed · * other · ╌ no data"


def chart_lines(view: LagView, *, width: int, height: int, span: float | None = None,
                clock_labels: bool = False) -> list[str]:
    """My partitions' lag in messages over the last `span` seconds (default: all the kept history, at least
    a minute), as `render_chart` draws it; `clock_labels` puts UTC times under the axis instead of -10m…now."""
    first = view.points[0][0] if view.points else view.time
    span = span if span is not None else max(60.0, view.time - first)
    start = view.time - span
    labels = (clock_text(start), clock_text(view.time) + " UTC") if clock_labels else None
    # Twice as fine as the plot's columns, whatever width its scale label leaves them.
    points = held(view.points, start=start, end=view.time, columns=2 * width)
    return render_chart(points, start=start, end=view.time, width=width, height=height,
                        markers=view.markers, time_labels=labels)


def alert_episodes(transitions: Iterable[AlertTransition]) -> list[tuple[AlertTransition, AlertTransition | None]]:
    """Each raised transition with the cleared one that ended it (None: still in alert)."""
    episodes: list[tuple[AlertTransition, AlertTransition | None]] = []
    for transition in transitions:
        if transition.kind == "raised":
            episodes.append((transition, None))
        elif episodes and episodes[-1][1] is None:
            episodes[-1] = (episodes[-1][0], transition)
    return episodes
