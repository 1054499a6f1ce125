"""Provides this member's lag over time: readings of its own partitions fed to a `LagTracker`, markers on
the charts' time axis, the lab's alert rule, and the `LagView` everything shows (docs/lag.md).

Everything here runs on the worker's thread, like the rest of `MemberState`: the loop observes at
every snapshot, the commit paths (`on_commit`, the changelog's transactions) note acknowledgements,
the rebalance callbacks mark and forget.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from balance_tui.core.lag import (
    AlertTransition,
    LagAlert,
    LagThreshold,
    LagTracker,
    PartitionReading,
)
from balance_tui.core.lag_view import (
    LagView,
    alert_view,
    build_view,
    iso_text,
    transition_text,
)
from balance_tui.core.offsets import PartitionOffsets
from balance_tui.session_log import Event

if TYPE_CHECKING:
    from balance_tui.kafka.worker.state import MemberState, Reporter

#: Readings, the alert and a new view at most this often (the series keep one sample a second), sooner
#: after a marker or a move.
VIEW_SECONDS = 1.0
#: Alert transitions kept for the exports and the API (the session log keeps them all).
MAX_TRANSITIONS = 100


class LagFeed:
    """This member's `LagTracker` and alert, fed from its offsets; the latest `LagView`."""

    def __init__(self, window: float, threshold: LagThreshold | None, alert_for: float,
                 commit_interval: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.commit_interval = commit_interval
        self.tracker = LagTracker()
        self.alert = LagAlert(threshold, alert_for) if threshold is not None else None
        self.transitions: deque[AlertTransition] = deque(maxlen=MAX_TRANSITIONS)
        self.raised_total = 0
        #: When a commit of each owned partition was last acknowledged (epoch seconds).
        self.commit_times: dict[int, float] = {}
        self.view: LagView | None = None
        self._clock = clock
        self._last = float("-inf")
        self._built_at = float("-inf")
        self._built_for: frozenset[int] = frozenset()
        self._stale = True

    @classmethod
    def from_settings(cls, settings: Any) -> LagFeed:
        return cls(settings.lag_window, settings.lag_threshold, settings.lag_alert_for,
                   settings.commit_interval_ms / 1000.0)

    def now(self) -> float:
        """Epoch seconds that never go back: the series refuse samples out of order, and a clock
        stepped back (NTP) must not take the worker down."""
        self._last = max(self._last, self._clock())
        return self._last

    # -- fed by the worker's parts ------------------------------------------------------------

    def commits(self, partitions: Iterable[int]) -> None:
        now = self.now()
        for partition in partitions:
            self.commit_times[partition] = now

    def mark(self, kind: str, detail: str = "") -> None:
        self.tracker.mark(self.now(), kind, detail)
        self._stale = True

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.tracker.forget(partition)
            self.commit_times.pop(partition, None)
        self._stale = True

    def reset(self) -> None:
        """A new, empty cluster: no history holds any more (the alert keeps its state until the next samples)."""
        self.tracker.reset()
        self.commit_times.clear()
        self._stale = True

    # -- read at every snapshot ------------------------------------------------------------------

    def readings(self, offsets: PartitionOffsets, owned: Iterable[int],
                 restoring: set[int]) -> dict[int, PartitionReading]:
        """What is known of each owned partition; a restoring one, or one without a log end or an offset,
        is left out."""
        readings = {}
        for partition in sorted(owned):
            if partition in restoring:
                continue  # its position is the previous owner's until the restore ends
            log_end = offsets.known_high(partition)
            position = offsets.shown_position(partition, restoring)
            committed = offsets.committed.get(partition)
            if log_end is None or (position is None and committed is None):
                continue
            readings[partition] = PartitionReading(
                log_end=log_end, position=position, committed=committed,
                last_commit_time=self.commit_times.get(partition),
                last_record_timestamp=offsets.last_record_timestamp.get(partition))
        return readings

    def observe(self, offsets: PartitionOffsets, owned: set[int],
                restoring: set[int]) -> tuple[LagView, list[AlertTransition]]:
        """About once a second (sooner after a marker or a move): record a reading of every owned partition,
        feed the alert, build the view. The latest view and the alert's transitions, if any.

        Not at every snapshot: the series keep one sample a second anyway, and a member with a thousand
        partitions would spend most of a snapshot interval on readings nobody keeps."""
        now = self.now()
        mine = frozenset(owned)
        if self.view is not None and not self._stale and mine == self._built_for \
                and now - self._built_at < VIEW_SECONDS:
            return self.view, []
        readings = self.readings(offsets, owned, restoring)
        transitions: list[AlertTransition] = []
        group = self.tracker.record(now, readings) if readings else None
        if self.alert is not None:
            if group is not None and group.unknown < group.partitions:
                transition = self.alert.feed(now, lag=group.lag, lag_seconds=group.lag_seconds)
            elif not owned:
                transition = self.alert.feed(now, lag=0, lag_seconds=0.0)  # nothing to consume: no lag
            else:
                transition = None  # restoring, or not read yet: nothing known changes nothing
            if transition is not None:
                transitions.append(transition)
                self.transitions.append(transition)
                self.raised_total += transition.kind == "raised"
        self.view = build_view(self.tracker, now, window=self.window, partitions=mine,
                               commit_interval=self.commit_interval,
                               alert=alert_view(self.alert, self.transitions, self.raised_total))
        self._built_at, self._built_for, self._stale = now, mine, False
        return self.view, transitions


# -- what the worker's parts call -------------------------------------------------------------------


def note_commits(state: MemberState, offsets: Mapping[int, int] | Iterable[tuple[int, int]]) -> None:
    """Offsets acknowledged as committed, by `on_commit` or inside a changelog transaction."""
    pairs = list(offsets.items() if isinstance(offsets, Mapping) else offsets)
    owned = state.tracker.assignment
    state.offsets.commits_acknowledged(pairs, owned)
    state.lag.commits(partition for partition, offset in pairs if offset >= 0 and partition in owned)


def observe(state: MemberState, reporter: Reporter) -> LagView:
    """The snapshot's lag view; an alert raised or cleared is written to the session log and the timeline."""
    view, transitions = state.lag.observe(state.offsets, state.tracker.assignment, state.restoring)
    for transition in transitions:
        say_transition(reporter, transition, view)
    return view


def say_transition(reporter: Reporter, transition: AlertTransition, view: LagView) -> None:
    alert = view.alert
    assert alert is not None
    common: dict[str, Any] = {"threshold": alert.threshold, "for_s": alert.for_seconds, "lag": view.lag,
                              "lag_seconds": None if view.lag_seconds is None else round(view.lag_seconds, 1),
                              "value": round(transition.value, 1)}
    if transition.kind == "raised":
        reporter.write(Event.LAG_ALERT_RAISED, since=iso_text(transition.since),
                       partitions=list(view.worst or (p.partition for p in view.partitions if p.lag)), **common)
    else:
        reporter.write(Event.LAG_ALERT_CLEARED, raised_at=iso_text(transition.since),
                       duration_s=round(transition.time - transition.since, 1), **common)
    reporter.timeline("alert", transition_text(transition, alert))
