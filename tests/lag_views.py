"""A member's lag over ten minutes, built with the real tracker: for the UI, export and API tests."""

from __future__ import annotations

from balance_tui.core.lag import LagAlert, LagThreshold, LagTracker, PartitionReading
from balance_tui.core.lag_view import LagView, alert_view, build_view


def sample_view(end: float, mine: tuple[int, ...] = (0, 1, 3), *, seconds: int = 600, alert: bool = True) -> LagView:
    """`seconds` of a member's lag up to `end`: steady, a pause that lets it climb, a resume that drains it
    but one partition (3) that keeps falling behind; rebalances and the pause marked; the alert raised."""
    start = end - seconds
    tracker = LagTracker()
    log_end = {p: 10_000 + 1_000 * p for p in mine}
    position = dict(log_end)
    threshold = LagAlert(LagThreshold(messages=1_000), 60.0)
    transitions = []
    for step in range(seconds + 1):
        now = start + step
        paused = seconds - 150 <= step < seconds - 60
        for p in mine:
            log_end[p] += 40 + p
            if paused:
                continue
            if p == 3 and step >= seconds - 200:
                position[p] += 30  # slower than the 43/s arriving: falls behind for good
            else:
                position[p] = min(log_end[p], position[p] + 200)  # catches up, draining at 160/s
        # Committed a little behind the position, as the worker commits once a second.
        readings = {p: PartitionReading(log_end[p], position[p], position[p] - (position[p] % 40), now - 0.5,
                                        now - (log_end[p] - position[p]) / (40 + p) - 0.2) for p in mine}
        group = tracker.record(now, readings)
        transition = threshold.feed(now, lag=group.lag)
        if transition is not None:
            transitions.append(transition)
    for offset, kind, detail in ((-500, "assigned", "P0-P2"), (-300, "revoked", "P2"), (-298, "assigned", "P3"),
                                 (-297, "restored", "P3"), (-150, "paused", ""), (-60, "resumed", "")):
        tracker.mark(end + offset, kind, detail)
    return build_view(tracker, end, window=60.0, partitions=mine,
                      alert=alert_view(threshold, transitions) if alert else None)
