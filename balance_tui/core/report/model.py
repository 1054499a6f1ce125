"""Provides the report's model: members, rebalances and their measures, and the constants of the logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from balance_tui.core.events import STATS_SECONDS, Event

#: The worker logs `stats` this often: a live member is never silent for much longer.
STATS_INTERVAL_MS = STATS_SECONDS * 1000
#: How late a `stats` line can be (the timer restarts after each line and waits for the poll).
STATS_SLACK_MS = 500.0
#: A log without `stopped` whose member was silent this long while others kept logging ended in a crash.
CRASH_SILENCE_MS = 2 * STATS_INTERVAL_MS
#: Used when no `started` event tells the session timeout.
DEFAULT_SESSION_TIMEOUT_MS = 10_000
#: A backlog counts as drained at or under max(pre-rebalance lag, one second of the group's
#: highest consumption rate, this many messages).
DRAIN_FLOOR = 10

ASSIGNMENT_EVENTS = (Event.ASSIGNED, Event.REVOKED, Event.LOST)
REJOIN_EVENTS = {Event.STRATEGY_CHANGED: "strategy switch", Event.RESTARTED: "restart"}
#: Events a member's assignment history shows (plus the synthetic `crashed`).
HISTORY_EVENTS = {Event.STARTED, Event.ASSIGNED, Event.REVOKED, Event.LOST, Event.STRATEGY_CHANGED, Event.RESTARTED,
                  Event.PAUSED, Event.RESUMED, Event.ERROR, Event.STOPPED}
#: Written while closing, between the stop request and `stopped`.
CLOSING_EVENTS = {Event.EXPORTED, Event.ERROR}
#: A member refused by the group (mixed protocol families) is no longer waiting to be assigned.
REFUSED_CODES = {"INCONSISTENT_GROUP_PROTOCOL"}


class ReportError(ValueError):
    """The logs cannot make a report (nothing usable, or several groups mixed)."""



# -- the model ------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    """One line of the merged timeline. `member` is the member's name (its consumer id)."""

    at: datetime
    member: str
    event: str
    partitions: tuple[int, ...] = ()
    assignment: tuple[int, ...] | None = None
    generation: int | None = None
    detail: str = ""
    #: Number of the rebalance this happened in (None: between rebalances).
    rebalance: int | None = None


@dataclass
class Member:
    """One run of one consumer process (a log holding two runs of one consumer id gives two)."""

    name: str
    alias: str
    consumer_id: str
    strategies: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    #: `stopped` (clean leave), `crashed` (no `stopped` line) or `running` (log still being written).
    end: str
    stop_reason: str | None
    final_assignment: tuple[int, ...]
    history: list[HistoryEntry] = field(default_factory=list)


@dataclass
class Trigger:
    kind: str  # join, leave, crash, strategy switch, restart, unknown
    member: str | None
    at: datetime
    detail: str = ""


@dataclass
class MemberPause:
    """How one member lived through a rebalance."""

    member: str
    role: str  # joined, rejoined, stayed, left, crashed
    #: joined: time to its first partitions; stayed/rejoined: time it owned nothing; else None.
    pause_ms: float | None
    #: Ended the rebalance without partitions (more members than partitions, or never assigned).
    idle: bool
    before: tuple[int, ...]
    after: tuple[int, ...]


@dataclass
class CrashDetection:
    """When a crash was noticed. The crash itself happened between `crashed_at` and `died_by`."""

    member: str
    last_seen: datetime
    #: Where the rebalance starts: `last_seen`, or the end of the rebalance it was part of then.
    crashed_at: datetime
    #: Its next `stats` line was due then: it died before, or it would have logged it.
    died_by: datetime
    #: First rebalance event (revoked, lost or assigned) at a survivor after `crashed_at`.
    detected_at: datetime | None = None
    #: From `crashed_at` to `detected_at`: the longest the detection can have taken.
    detect_ms: float | None = None
    #: From `died_by` to `detected_at`: the shortest it can have taken (0 if the window overlaps).
    detect_min_ms: float | None = None


@dataclass
class LagSummary:
    """Group lag (sum of every live member's latest `stats.lag`) around one rebalance."""

    before: int
    peak: int
    #: Lag at or under this is "drained": max(before, one second of traffic, DRAIN_FLOOR).
    level: int
    #: From the rebalance start to the first sample back at `level`.
    drained_ms: float | None
    #: False: still above that level when the next rebalance started or the logs ended.
    drained: bool


@dataclass
class Rebalance:
    number: int
    #: The triggers' kinds: `join`, `leave`, `crash`, `strategy switch`, `restart`, `unknown`, joined by ` + `.
    trigger: str
    triggers: list[Trigger]
    started_at: datetime
    settled_at: datetime | None
    #: Until every partition was owned again by exactly one live member (None: never, in these logs).
    settle_ms: float | None
    strategy: str
    members_before: tuple[str, ...]
    members_after: tuple[str, ...]
    #: Partitions whose owner at the end differs from the one at the start.
    moved: tuple[int, ...]
    #: Partitions nobody consumed at some moment of the rebalance (revoked, lost or orphaned by a crash).
    interrupted: tuple[int, ...]
    partition_downtime_ms: dict[int, float]
    pauses: list[MemberPause]
    crashes: list[CrashDetection]
    lag: LagSummary | None


@dataclass
class LagAlertEntry:
    """One lag alert of one member, from its `lag_alert_raised` (and `lag_alert_cleared`) lines."""

    member: str
    raised_at: datetime
    #: When the member's lag went above the threshold (the alert is raised `lag_alert_for` later).
    above_since: datetime | None
    #: None: still in alert when its log ends (or it ended without clearing: a crash, a stop).
    cleared_at: datetime | None
    threshold: str
    for_s: float | None
    #: The lag (in the threshold's unit) that raised it.
    value: float | None
    #: From raised to cleared (None while not cleared).
    lasted_ms: float | None = None


@dataclass
class Report:
    group: str
    topic: str
    partitions: int
    started_at: datetime
    ended_at: datetime
    members: list[Member]
    rebalances: list[Rebalance]
    #: The merged timeline, with synthetic `leaving`, `crashed`, `crash_detected` and `settled` entries.
    timeline: list[HistoryEntry]
    warnings: list[str] = field(default_factory=list)
    #: The group's lag over time: at each `stats` line, the sum of the live members' latest lag (messages).
    lag_series: list[tuple[datetime, int]] = field(default_factory=list)
    #: The same moments' largest lag in seconds among the live members (where the logs have it).
    lag_seconds_series: list[tuple[datetime, float]] = field(default_factory=list)
    alerts: list[LagAlertEntry] = field(default_factory=list)

    def alias(self, name: str | None) -> str:
        for member in self.members:
            if member.name == name:
                return member.alias
        return name or "?"
