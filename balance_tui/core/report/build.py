"""Provides `build_report`: the walk's episodes turned into the report's rebalances and measures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from balance_tui.core.events import Event
from balance_tui.core.formatting import ms_between
from balance_tui.core.report.model import (
    DEFAULT_SESSION_TIMEOUT_MS,
    DRAIN_FLOOR,
    STATS_INTERVAL_MS,
    LagAlertEntry,
    LagSummary,
    Member,
    MemberPause,
    Rebalance,
    Report,
    ReportError,
)
from balance_tui.core.report.runs import (
    _classify_ends,
    _partitions,
    _Run,
    _split_runs,
    parse_ts,
)
from balance_tui.core.report.walk import _crash_moments, _Episode, _Walk

# -- building the report --------------------------------------------------------------------------


def _partition_count(runs: list[_Run]) -> int:
    """Max partition seen + 1; the `started` config's `partitions` (a topic creation default) otherwise."""
    seen = [p for run in runs for event in run.events
            for key in ("assignment", "partitions") for p in _partitions(event.get(key))]
    if seen:
        return max(seen) + 1
    for run in runs:
        config = run.events[0].get("config")
        if isinstance(config, Mapping) and isinstance(config.get("partitions"), int):
            return int(config["partitions"])
    return 0


def _session_timeout_ms(runs: list[_Run]) -> float:
    timeouts = [run.events[0]["config"].get("session_timeout_ms") for run in runs
                if isinstance(run.events[0].get("config"), Mapping)]
    numbers = [t for t in timeouts if isinstance(t, (int, float))]
    return float(max(numbers)) if numbers else float(DEFAULT_SESSION_TIMEOUT_MS)


def _lag(episode: _Episode, window: list[tuple[datetime, int]], before: int | None,
         threshold: int) -> LagSummary | None:
    """Peak and drain time of the group lag over the samples taken from this rebalance to the next."""
    if not window:
        return None
    baseline = before or 0
    level = max(baseline, threshold, DRAIN_FLOOR)
    peak_index = max(range(len(window)), key=lambda i: window[i][1])
    peak = window[peak_index][1]
    if peak <= level:
        return LagSummary(baseline, peak, level, None, True)
    for at, lag in window[peak_index:]:
        if lag <= level:
            return LagSummary(baseline, peak, level, ms_between(episode.started_at, at), True)
    return LagSummary(baseline, peak, level, None, False)


def _pauses(episode: _Episode) -> list[MemberPause]:
    pauses = []
    for name in episode.involved:
        role = episode.roles.get(name, "stayed")
        before = episode.assignments_before.get(name, ())
        after = episode.assignments_after.get(name, ())
        if role in ("left", "crashed"):
            pauses.append(MemberPause(name, role, None, False, before, after))
            continue
        if name not in episode.assignments_after:
            continue  # joined and went away again: its own leave or crash says it
        idle = not after
        if role == "joined":
            got = episode.first_partitions.get(name)
            pause = ms_between(episode.join_requested[name], got) if got is not None else None
        else:
            pause = episode.pause_ms.get(name, 0.0)
        pauses.append(MemberPause(name, role, pause, idle, before, after))
    return pauses


def build_report(logs: Sequence[Sequence[Any]], partitions: int | None = None,
                 drain_threshold: int | None = None) -> Report:
    """Merge the event lists of several session logs (one list per log) into a `Report`.

    `partitions` overrides the inferred partition count; `drain_threshold` (messages) the
    lag under which a backlog counts as drained (default: one second of peak traffic).
    """
    runs = _split_runs(logs)
    if not runs:
        raise ReportError("no usable events in these logs")
    groups = sorted({(str(e.get("group")), str(e.get("topic"))) for run in runs for e in run.events})
    if len(groups) > 1:
        listed = ", ".join(f"group {g} / topic {t}" for g, t in groups)
        raise ReportError(f"the logs come from different groups or topics ({listed}): report one group at a time")
    _classify_ends(runs)
    count = partitions if partitions is not None else _partition_count(runs)
    merge_window_ms = _session_timeout_ms(runs) + STATS_INTERVAL_MS
    walk = _Walk(runs, count, merge_window_ms, _crash_moments(runs, count, merge_window_ms))
    walk.run()

    if drain_threshold is None:
        drain_threshold = round(walk.peak_rate)
    rebalances: list[Rebalance] = []
    for number, episode in enumerate(walk.closed, start=1):
        episode.number = number
        window_end = walk.closed[number].first_sample if number < len(walk.closed) else len(walk.lag_samples)
        window = walk.lag_samples[episode.first_sample:window_end]
        before = walk.lag_samples[episode.first_sample - 1][1] if episode.first_sample > 0 else None
        moved = tuple(p for p in range(count) if episode.owners_before.get(p) != episode.owners_after.get(p)
                      and episode.settled_at is not None)
        rebalances.append(Rebalance(
            number=number,
            trigger=" + ".join(t.kind for t in episode.triggers),
            triggers=episode.triggers,
            started_at=episode.started_at,
            settled_at=episode.settled_at,
            settle_ms=ms_between(episode.started_at, episode.settled_at) if episode.settled_at else None,
            strategy=" → ".join(episode.strategies),
            members_before=episode.members_before,
            members_after=episode.members_after,
            moved=moved,
            interrupted=tuple(sorted(episode.interrupted)),
            partition_downtime_ms={p: round(ms, 1) for p, ms in sorted(episode.downtime_ms.items())},
            pauses=_pauses(episode),
            crashes=episode.crashes,
            lag=_lag(episode, window, before, drain_threshold),
        ))

    timeline = []
    for entry, entry_episode in walk.timeline:
        if entry_episode is not None and entry_episode.number is None and entry.event == "settled":
            continue  # the settling of a dropped (group emptied) episode
        entry.rebalance = entry_episode.number if entry_episode is not None else None
        if entry.event == "settled" and entry_episode is not None:
            entry.detail = f"rebalance {entry_episode.number} settled"
        timeline.append(entry)

    members = []
    for run in runs:
        strategies = tuple(dict.fromkeys(str(e["strategy"]) for e in run.events if e.get("strategy")))
        history = [entry for entry in timeline if entry.member == run.name
                   and entry.event not in ("leaving", "crash_detected", "settled")]
        members.append(Member(run.name, run.alias, run.consumer_id, strategies, run.times[0], run.last_seen,
                              run.end, run.stop_reason, run.last_assignment() if run.end != "stopped" else (),
                              history))

    warnings = []
    for rebalance in rebalances:
        if rebalance.settled_at is None:
            warnings.append(f"rebalance {rebalance.number} had not settled when the logs end "
                            "(a member still waiting, or a partition owned by a member whose log is missing)")
    group, topic = groups[0]
    return Report(group=group, topic=topic, partitions=count, started_at=min(r.times[0] for r in runs),
                  ended_at=max(r.last_seen for r in runs), members=members, rebalances=rebalances,
                  timeline=timeline, warnings=warnings, lag_series=walk.lag_samples,
                  lag_seconds_series=walk.seconds_samples, alerts=_alerts(runs))


def _alerts(runs: list[_Run]) -> list[LagAlertEntry]:
    """Every member's lag alerts: each `lag_alert_raised` with the `lag_alert_cleared` that followed it, by time."""
    alerts: list[LagAlertEntry] = []
    for run in runs:
        open_alert: LagAlertEntry | None = None
        for event, at in zip(run.events, run.times, strict=True):
            if event["event"] == Event.LAG_ALERT_RAISED:
                open_alert = LagAlertEntry(
                    member=run.name, raised_at=at, above_since=_moment(event.get("since")), cleared_at=None,
                    threshold=str(event.get("threshold", "")), for_s=_number(event.get("for_s")),
                    value=_number(event.get("value")))
                alerts.append(open_alert)
            elif event["event"] == Event.LAG_ALERT_CLEARED and open_alert is not None:
                open_alert.cleared_at = at
                open_alert.lasted_ms = ms_between(open_alert.raised_at, at)
                open_alert = None
    return sorted(alerts, key=lambda alert: alert.raised_at)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_ts(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
