"""Provides the report's renderings: Markdown tables, the Mermaid sequence diagram, JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime

from balance_tui.core.assignment import iso_ms
from balance_tui.core.formatting import format_lab_partitions as format_partitions
from balance_tui.core.formatting import format_ms, jsonable, ms_between
from balance_tui.core.lag import Marker, render_chart
from balance_tui.core.report.model import (
    REFUSED_CODES,
    CrashDetection,
    HistoryEntry,
    LagSummary,
    MemberPause,
    Rebalance,
    Report,
)
from balance_tui.core.safe_text import json_visible, visible

# -- rendering ------------------------------------------------------------------------------------
# Names, reasons and details come from the logs, written from what Kafka said: every rendering
# shows their control characters through `visible` (render_json as JSON escapes, exactly).


def _cell(text: str) -> str:
    return visible(text).replace("|", "\\|") or " "


def _clock(moment: datetime) -> str:
    return iso_ms(moment)[11:23]


def _offset(report: Report, moment: datetime) -> str:
    return f"+{ms_between(report.started_at, moment) / 1000:.1f}s"


def _partition_cell(partitions: Sequence[int], total: int) -> str:
    if not partitions:
        return "0"
    if len(partitions) == total and total > 1:
        return f"{len(partitions)} (all)"
    return f"{len(partitions)} {format_partitions(partitions)}" if len(partitions) <= 8 else str(len(partitions))


def _trigger_text(report: Report, rebalance: Rebalance) -> str:
    """`crash W2`, `join W3 + leave W1`: kinds with the members' short names."""
    return " + ".join(t.kind if t.member is None else f"{t.kind} {report.alias(t.member)}"
                      for t in rebalance.triggers)


def _members_cell(report: Report, rebalance: Rebalance) -> str:
    before, after = rebalance.members_before, rebalance.members_after
    changes = [f"+{report.alias(m)}" for m in after if m not in before]
    changes += [f"−{report.alias(m)}" for m in before if m not in after]
    return f"{len(before)} → {len(after)}" + (f" ({' '.join(changes)})" if changes else "")


def _pause_text(report: Report, pause: MemberPause) -> str | None:
    alias = report.alias(pause.member)
    if pause.role in ("left", "crashed"):
        return None
    if pause.role == "joined":
        return f"{alias} joined, idle" if pause.pause_ms is None else f"{alias} joined in {format_ms(pause.pause_ms)}"
    text = f"{alias} {format_ms(pause.pause_ms)}"
    return text + ", then idle" if pause.idle and pause.before else text


def _detect_text(crash: CrashDetection) -> str:
    """`2.5 s` or a range `0.4–5.4 s`: the crash happened between last seen and its next `stats` line."""
    if crash.detect_ms is None:
        return "not detected"
    if crash.detect_min_ms is None or crash.detect_ms - crash.detect_min_ms < 100:
        return format_ms(crash.detect_ms)
    if crash.detect_min_ms == 0:
        return f"≤ {format_ms(crash.detect_ms)}"
    low, high = format_ms(crash.detect_min_ms), format_ms(crash.detect_ms)
    if low.endswith(" s") and high.endswith(" s"):
        low = low.removesuffix(" s")
    return f"{low}–{high}"


def _longest_partition_pause(rebalance: Rebalance) -> str:
    if not rebalance.partition_downtime_ms:
        return "0 s"
    longest = max(rebalance.partition_downtime_ms.values())
    worst = [p for p, ms in rebalance.partition_downtime_ms.items() if ms == longest]
    return f"{format_ms(longest)} {format_partitions(worst)}" if len(worst) <= 8 else format_ms(longest)


def _lag_cells(lag: LagSummary | None, last: bool) -> tuple[str, str]:
    if lag is None:
        return "n/a", "n/a"
    peak = f"{lag.peak:,} (before {lag.before:,})"
    if lag.drained_ms is None:
        if lag.drained:
            return peak, f"stayed ≤ {lag.level:,}"
        return peak, "not drained when the logs end" if last else "not drained before the next rebalance"
    return peak, format_ms(lag.drained_ms)


REBALANCE_HEADER = ("| # | Start | Trigger | Strategy | Members | Moved | Interrupted | Pause per member "
                    "| Longest partition pause | Crash detected after | All owned after | Lag peak "
                    "| Lag drained after |")


def render_markdown(report: Report) -> str:
    lines = [
        f"# Rebalance report: group `{visible(report.group)}`, topic `{visible(report.topic)}`",
        "",
        f"{len(report.members)} member(s), {report.partitions} partitions, {len(report.rebalances)} rebalance(s), "
        f"from {iso_ms(report.started_at)} to {iso_ms(report.ended_at)} "
        f"({ms_between(report.started_at, report.ended_at) / 1000:.1f} s). "
        "How each column is measured: docs/report.md.",
        "",
    ]
    for warning in report.warnings:
        lines.append(f"> **Warning:** {visible(warning)}")
    if report.warnings:
        lines.append("")
    lines += ["## Members", "", "| Member | Consumer id | Strategy | First seen | Last seen | End | Last assignment |",
              "|---|---|---|---|---|---|---|"]
    for member in report.members:
        end = {"stopped": f"stopped ({member.stop_reason})", "crashed": "💥 crashed (no `stopped` line)",
               "running": "still running"}[member.end]
        lines.append("| " + " | ".join(_cell(c) for c in (
            member.alias, member.name, ", ".join(member.strategies), _offset(report, member.first_seen),
            _offset(report, member.last_seen), end,
            format_partitions(member.final_assignment) if member.end != "stopped" else "–")) + " |")
    lines += ["", "## Rebalances", ""]
    if not report.rebalances:
        lines.append("No rebalance in these logs.")
    else:
        lines += [REBALANCE_HEADER, "|" + "---|" * REBALANCE_HEADER.count(" | ") + "---|"]
        for rebalance in report.rebalances:
            pauses = [t for t in (_pause_text(report, p) for p in rebalance.pauses) if t]
            detect = ", ".join(_detect_text(c) for c in rebalance.crashes) or "–"
            settled = format_ms(rebalance.settle_ms) if rebalance.settled_at else "not settled"
            peak, drained = _lag_cells(rebalance.lag, rebalance is report.rebalances[-1])
            lines.append("| " + " | ".join(_cell(c) for c in (
                str(rebalance.number), _offset(report, rebalance.started_at), _trigger_text(report, rebalance),
                rebalance.strategy,
                _members_cell(report, rebalance), _partition_cell(rebalance.moved, report.partitions),
                _partition_cell(rebalance.interrupted, report.partitions), ", ".join(pauses) or "–",
                _longest_partition_pause(rebalance), detect, settled, peak, drained)) + " |")
    lines += ["", *_lag_section(report)]
    lines += ["## Assignment history", ""]
    for member in report.members:
        lines += [f"### {member.alias}: {visible(member.name)}", "",
                  "| Time (UTC) | Since start | Rebalance | Event | Partitions | Assignment after | Gen | Detail |",
                  "|---|---|---|---|---|---|---|---|"]
        for entry in member.history:
            lines.append("| " + " | ".join(_cell(c) for c in (
                _clock(entry.at), _offset(report, entry.at),
                str(entry.rebalance) if entry.rebalance else "", entry.event,
                format_partitions(entry.partitions) if entry.partitions else "",
                format_partitions(entry.assignment) if entry.assignment is not None else "",
                str(entry.generation) if entry.generation is not None else "", entry.detail)) + " |")
        lines.append("")
    lines += ["## Sequence", "", "```mermaid", render_mermaid(report), "```", ""]
    return "\n".join(lines)


#: The text chart's size in the Markdown: a code block that stays readable in a 100-column viewer.
LAG_CHART_WIDTH, LAG_CHART_HEIGHT = 96, 10
#: Points of the Mermaid xychart: the group lag resampled over equal stretches of time.
XYCHART_POINTS = 60


def _lag_section(report: Report) -> list[str]:
    """The group lag over time (a text chart, rebalances numbered on the time axis; a Mermaid xychart), the alerts."""
    lines = ["## Lag over time", ""]
    if not report.lag_series:
        lines += ["No `stats` lines in these logs: no lag to draw.", ""]
    else:
        lines += [("Group lag in messages: at each member's `stats` line (every 5 s), the sum of every live member's "
                   "latest lag, held until the next line. On the time axis, the number of each rebalance where it "
                   "starts (`+` when several share a column, `╌` before the first `stats` line)."), "",
                  "```text", *render_lag_chart(report), "```", ""]
        if report.lag_seconds_series:
            lines += ["The oldest unconsumed record's age, at each `stats` line the largest among the live members:",
                      "", "```text", *render_lag_chart(report, seconds=True), "```", ""]
        lines += ["```mermaid", render_xychart(report), "```", ""]
    lines += ["### Lag alerts", ""]
    if not report.alerts:
        lines += ["No `lag_alert_raised` line in these logs.", ""]
        return lines
    lines += ["| Member | Raised | Above the threshold since | Cleared | In alert for | Threshold | Lag when raised |",
              "|---|---|---|---|---|---|---:|"]
    for alert in report.alerts:
        lines.append("| " + " | ".join(_cell(c) for c in (
            report.alias(alert.member), _offset(report, alert.raised_at),
            _offset(report, alert.above_since) if alert.above_since else "–",
            _offset(report, alert.cleared_at) if alert.cleared_at else "not cleared in these logs",
            format_ms(alert.lasted_ms) if alert.lasted_ms is not None else "–",
            f"{alert.threshold} for {format_ms(alert.for_s * 1000)}" if alert.for_s is not None else alert.threshold,
            f"{alert.value:,.0f}" if alert.value is not None else "–")) + " |")
    lines.append("")
    return lines


def render_lag_chart(report: Report, *, seconds: bool = False, width: int = LAG_CHART_WIDTH,
                     height: int = LAG_CHART_HEIGHT) -> list[str]:
    """The group lag (or, `seconds`, its age) over the whole report as a text chart, rebalances numbered."""
    series = report.lag_seconds_series if seconds else report.lag_series
    start, end = report.started_at.timestamp(), report.ended_at.timestamp()
    end = max(end, start + 1)
    markers = [Marker(rebalance.started_at.timestamp(), str(rebalance.number)) for rebalance in report.rebalances]
    return render_chart(_held(series, start, end, width), start=start, end=end, width=width, height=height,
                        markers=markers, seconds=seconds, glyphs=_NUMBER_GLYPHS,
                        time_labels=("+0s", f"+{end - start:.0f}s"))


def _held(series: Sequence[tuple[datetime, float]], start: float, end: float, width: int) -> list[tuple[float, float]]:
    """The samples, and each one's value held until the next (`stats` lines come every 5 s: a column between two
    shows the last known lag, not a gap), on a grid finer than the chart's columns."""
    samples = sorted((at.timestamp(), float(value)) for at, value in series)
    if not samples:
        return []
    step = (end - start) / (2 * width)
    points, index, value = list(samples), 0, samples[0][1]
    moment = samples[0][0]
    while moment <= samples[-1][0]:
        while index < len(samples) and samples[index][0] <= moment:
            value = samples[index][1]
            index += 1
        points.append((moment, value))
        moment += step
    return points


_NUMBER_GLYPHS = {str(number): str(number) for number in range(1, 10)}


def render_xychart(report: Report, points: int = XYCHART_POINTS) -> str:
    """A Mermaid `xychart-beta` of the group lag: its peak over equal stretches of time (the last value carried
    over a stretch without a `stats` line), seconds since the first event on the x axis."""
    start = report.started_at.timestamp()
    span = max(1.0, report.ended_at.timestamp() - start)
    count = max(2, min(points, len(report.lag_series)))
    peaks: list[int | None] = [None] * count
    for at, lag in report.lag_series:
        index = min(count - 1, int((at.timestamp() - start) / span * count))
        peaks[index] = lag if peaks[index] is None else max(peaks[index], lag)  # type: ignore[type-var]
    values, last = [], 0
    for peak in peaks:
        last = peak if peak is not None else last
        values.append(last)
    top = max(values) or 1
    return "\n".join([
        "xychart-beta",
        f'    title "Group lag (messages), {len(report.rebalances)} rebalance(s)"',
        f'    x-axis "seconds since the first event" 0 --> {span:.0f}',
        f'    y-axis "lag (messages)" 0 --> {top}',
        f"    line [{', '.join(str(value) for value in values)}]",
    ])


def _note_text(text: str) -> str:
    # `;` ends a statement and `#` starts an entity code in Mermaid.
    return text.replace(";", ",").replace("#", "no. ")


def _span(report: Report, names: Sequence[str]) -> str:
    aliases = [m.alias for m in report.members if m.name in names]
    if not aliases:
        return "Coord"
    return aliases[0] if len(aliases) == 1 else f"{aliases[0]},{aliases[-1]}"


def render_mermaid(report: Report) -> str:
    """A `sequenceDiagram` in the style of the lab's: members, the coordinator, notes for what happened."""
    lines = ["sequenceDiagram"]
    for member in report.members:
        lines.append(f"    participant {member.alias} as 💰 {member.alias} {_note_text(member.name)}")
    lines.append("    participant Coord as 👑 Group Coordinator")
    by_number = {r.number: r for r in report.rebalances}
    for entry in report.timeline:
        draw = _MERMAID.get(entry.event)
        if draw is not None:
            lines += draw(report, entry, report.alias(entry.member), by_number.get(entry.rebalance or 0))
    # One statement per line: a newline in a name or detail would end it early.
    return "\n".join(visible(line) for line in lines)


# One drawing per kind of timeline entry: (report, entry, the member's alias, its rebalance) -> lines.
MermaidDrawing = Callable[[Report, HistoryEntry, str, Rebalance | None], list[str]]


def _draw_started(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [f"    Note over {alias}: ▶ {alias} starts", f"    {alias}->>Coord: JoinGroup()"]


def _draw_rejoin(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    what = f"strategy {entry.detail}" if entry.event == "strategy_changed" else "restart"
    return [f"    Note over {alias}: 🔁 {_note_text(what)}", f"    {alias}->>Coord: LeaveGroup() + JoinGroup()"]


def _draw_leaving(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [f"    Note over {alias}: ⏹ {alias} leaves ({_note_text(entry.detail)})",
            f"    {alias}->>Coord: LeaveGroup()"]


def _draw_crashed(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [f"    Note over {alias}: 💥 CRASH {alias} (last seen {_clock(entry.at)})"]


def _draw_crash_detected(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [f"    Note over Coord: ⏳ no heartbeat from {alias}: rebalance {entry.detail}"]


def _draw_revoked(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    if entry.detail == "on leaving":  # its own doing, not the coordinator's
        return []
    everything = " ALL" if entry.assignment == () and entry.partitions else ""
    return [f"    Coord->>{alias}: Revoke{everything} {format_partitions(entry.partitions)}"]


def _draw_lost(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [] if entry.detail == "on leaving" else [f"    Coord-x{alias}: Lost {format_partitions(entry.partitions)}"]


def _draw_assigned(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    if entry.partitions:
        return [f"    Coord->>{alias}: Assign {format_partitions(entry.partitions)}"]
    return [] if entry.assignment else [f"    Coord->>{alias}: Assign [] (idle)"]


def _draw_pause(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    return [f"    Note over {alias}: {'⏸ paused' if entry.event == 'paused' else '▶ resumed'}"]


def _draw_error(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    code = entry.detail.split(":")[0]
    shown = code in REFUSED_CODES or "(fatal)" in entry.detail
    return [f"    Note over {alias}: ⚠️ {_note_text(code)}"] if shown else []


def _draw_settled(report: Report, entry: HistoryEntry, alias: str, rebalance: Rebalance | None) -> list[str]:
    if rebalance is None:
        return []
    return [f"    Note over {_span(report, rebalance.members_after)}: ✅ {_settled_note(report, rebalance)}"]


_MERMAID: dict[str, MermaidDrawing] = {
    "started": _draw_started, "strategy_changed": _draw_rejoin, "restarted": _draw_rejoin, "leaving": _draw_leaving,
    "crashed": _draw_crashed, "crash_detected": _draw_crash_detected, "revoked": _draw_revoked, "lost": _draw_lost,
    "assigned": _draw_assigned, "paused": _draw_pause, "resumed": _draw_pause, "error": _draw_error,
    "settled": _draw_settled,
}


def _settled_note(report: Report, rebalance: Rebalance) -> str:
    text = (f"rebalance {rebalance.number} ({_trigger_text(report, rebalance)}): all {report.partitions} partitions "
            f"owned after {format_ms(rebalance.settle_ms)}")
    stopped = [p for p in rebalance.pauses if p.role in ("stayed", "rejoined") and p.pause_ms]
    kept = [p for p in rebalance.pauses if p.role == "stayed" and not p.pause_ms and p.before]
    if stopped:
        text += ", PAUSE " + ", ".join(f"{report.alias(p.member)} {format_ms(p.pause_ms)}" for p in stopped)
    if kept:
        text += ", " + ", ".join(report.alias(p.member) for p in kept) + " kept consuming"
    if rebalance.interrupted:
        text += (f", {format_partitions(rebalance.interrupted)} unconsumed up to "
                 f"{format_ms(max(rebalance.partition_downtime_ms[p] for p in rebalance.interrupted))}")
    return _note_text(text)


def render_json(report: Report) -> str:
    """The report as JSON (`version` 1): the model's fields, times as ISO strings, durations in ms."""
    document = {"version": 1, **jsonable(report)}
    document.pop("timeline")  # the members' histories and the rebalances say it all
    text = json_visible(json.dumps(document, indent=2, ensure_ascii=False))
    # Partition lists on one line: `[0, 1, 2]`, not one number per line.
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text) + "\n"


_NUMBER_LIST = re.compile(r"\[\s*(-?\d+(?:\.\d+)?(?:,\s*-?\d+(?:\.\d+)?)*)\s*\]")
