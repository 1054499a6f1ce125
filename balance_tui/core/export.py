"""The export documents: JSON mirroring the lab's `/metrics` API, and Markdown for people.

The JSON keeps every string exactly (json.dumps escapes controls); the Markdown shows them through
`visible`, since people read it in a terminal or a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from balance_tui.core.assignment import format_partitions, iso_ms
from balance_tui.core.lag import AlertState, format_seconds
from balance_tui.core.lag_view import (
    MARKER_LEGEND,
    LagView,
    alert_episodes,
    alert_text,
    chart_lines,
    drain_text,
    iso_text,
    measure_text,
    seconds_text,
    view_document,
)
from balance_tui.core.rows import BalanceRow, TimelineEntry
from balance_tui.core.safe_text import visible

#: Timeline kinds as the lab's RebalancingEvent.EventType spells them.
LAB_EVENT_TYPES = {
    "assigned": "Assigned",
    "revoked": "Revoked",
    "lost": "Lost",
    "strategy_changed": "StrategyChanged",
    "restarted": "Restarted",
    "paused": "Paused",
    "resumed": "Resumed",
    "error": "Error",
    "restored": "Restored",
    "strategy_requested": "StrategyRequested",
    "member_left": "MemberLeft",
    "member_gone": "MemberGone",
    "alert": "LagAlert",
}


@dataclass
class ExportState:
    """Everything an export says about one consumer, gathered by the worker."""

    consumer_id: str
    group_id: str
    topic: str
    strategy: str
    status: str
    assigned_partitions: list[int]
    messages_consumed: int
    balance_updates: int
    processing_errors: int
    rejected: int
    partition_offsets: dict[int, int]
    history: list[TimelineEntry]
    started_at: datetime
    last_message_at: datetime | None
    balances: list[BalanceRow]
    exported_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)
    #: Lag in seconds, Burrow's status, time to drain, the alert and the lag series (None before the first view).
    lag: LagView | None = None
    #: Transactions read again after a restore, already in the restored state: not applied twice.
    replayed: int = 0


def _duration_text(entry: TimelineEntry) -> str:
    parts = []
    if entry.join_ms is not None:
        parts.append(f"join {entry.join_ms / 1000:.1f}s")
    if entry.downtime_ms:
        worst = max(entry.downtime_ms.values())
        parts.append(f"paused up to {worst / 1000:.1f}s")
    return ", ".join(parts)


def history_entry(entry: TimelineEntry) -> dict[str, Any]:
    """One `rebalancingHistory` item: the lab's fields plus what we measured."""
    item: dict[str, Any] = {
        "timestamp": iso_ms(entry.at),
        "eventType": LAB_EVENT_TYPES.get(entry.kind, entry.kind),
        "partitions": list(entry.partitions),
        "details": entry.detail,
        "assignment": list(entry.assignment),
    }
    if entry.join_ms is not None:
        item["joinMs"] = round(entry.join_ms, 1)
    if entry.kind == "assigned":
        item["kept"] = list(entry.kept)
        item["movedIn"] = list(entry.moved_in)
    if entry.downtime_ms:
        item["downtimeMs"] = {str(p): round(ms, 1) for p, ms in entry.downtime_ms.items()}
    if entry.generation is not None:
        item["generation"] = entry.generation
    if entry.restores:
        item["restores"] = [{"partition": r.partition, "customers": r.customers, "records": r.records,
                             "durationMs": r.duration_ms, "resumeOffset": r.resume_offset} for r in entry.restores]
    return item


def export_document(state: ExportState) -> dict[str, Any]:
    document: dict[str, Any] = {
        "consumerId": state.consumer_id,
        "groupId": state.group_id,
        "topic": state.topic,
        "strategy": state.strategy,
        "status": state.status,
        "assignedPartitions": sorted(state.assigned_partitions),
        "messagesConsumed": state.messages_consumed,
        "balanceUpdates": state.balance_updates,
        "replayedTransactions": state.replayed,
        "processingErrors": state.processing_errors,
        "rejectedMessages": state.rejected,
        "partitionOffsets": {str(p): o for p, o in sorted(state.partition_offsets.items())},
        "rebalancingHistory": [history_entry(e) for e in state.history],
        "startedAt": iso_ms(state.started_at),
        "lastMessageAt": iso_ms(state.last_message_at) if state.last_message_at else None,
        "exportedAt": iso_ms(state.exported_at),
        "balances": [
            {
                "customerId": row.customer_id,
                "balance": str(row.balance),
                "currency": row.currency,
                "transactionCount": row.transaction_count,
                "lastUpdated": iso_ms(row.last_updated),
                "lastTransactionId": row.last_transaction_id,
                "partition": row.partition,
            }
            for row in state.balances
        ],
    }
    if state.lag is not None:
        document["lag"] = view_document(state.lag)
    document.update(state.extra)
    return document


def export_markdown(state: ExportState) -> str:
    lines = [
        f"# balance-tui export: {visible(state.consumer_id)}",
        "",
        f"- Group `{visible(state.group_id)}`, topic `{visible(state.topic)}`, strategy `{visible(state.strategy)}`",
        f"- Status: {visible(state.status)}; assigned partitions: {format_partitions(state.assigned_partitions)}",
        f"- Messages consumed: {state.messages_consumed:,}; balance updates: {state.balance_updates:,}; "
        f"replayed (already in the restored state): {state.replayed:,}; "
        f"rejected: {state.rejected:,}; processing errors: {state.processing_errors:,}",
        f"- Started {iso_ms(state.started_at)}; last message "
        f"{iso_ms(state.last_message_at) if state.last_message_at else 'never'}; exported {iso_ms(state.exported_at)}",
        "",
        "## Partition offsets",
        "",
        "| partition | next offset |",
        "|---:|---:|",
        *[f"| {p} | {o} |" for p, o in sorted(state.partition_offsets.items())],
        "",
        *_lag_markdown(state.lag),
        "## Rebalance timeline",
        "",
        "| time (UTC) | event | partitions | assignment after | measured | details |",
        "|---|---|---|---|---|---|",
    ]
    for entry in state.history:
        lines.append(
            f"| {iso_ms(entry.at)} | {_cell(LAB_EVENT_TYPES.get(entry.kind, entry.kind))} | "
            f"{format_partitions(entry.partitions)} | {format_partitions(entry.assignment)} | "
            f"{_duration_text(entry)} | {_cell(entry.detail)} |"
        )
    lines += [
        "",
        f"## Balances ({len(state.balances):,} customer-currency rows)",
        "",
        "| customer | balance | currency | transactions | last transaction | last updated | partition |",
        "|---|---:|---|---:|---|---|---:|",
    ]
    for row in state.balances:
        lines.append(
            f"| {_cell(row.customer_id)} | {row.balance:,} | {_cell(row.currency)} | {row.transaction_count} | "
            f"{_cell(row.last_transaction_id)} | {iso_ms(row.last_updated)} | "
            f"{'' if row.partition is None else row.partition} |"
        )
    return "\n".join(lines) + "\n"


def _lag_markdown(view: LagView | None) -> list[str]:
    """The lag section: the chart of my partitions' lag, each partition's figures, the alerts."""
    if view is None:
        return []
    drain = drain_text(view.drain, view.drain_seconds)
    if view.not_draining:
        drain += f" ({', '.join(f'P{p}' for p in view.not_draining)})"
    worst = f" ({', '.join(f'P{p}' for p in view.worst)})" if view.worst else ""
    lines = [
        "## Lag",
        "",
        (f"- My partitions at {iso_text(view.time)}: lag {format_count_or_dash(view.lag)} messages, "
         f"{seconds_text(view.lag_seconds)} behind (the oldest unconsumed record's age); status "
         f"{view.status.name}{worst} over the last {format_seconds(view.window)}; {drain}; balances "
         f"{seconds_text(view.balance_delay)} behind real time"),
    ]
    if view.alert is not None:
        now = alert_text(view.alert, view.time) if view.alert.state is not AlertState.OK else "not in alert"
        lines.append(f"- Alert rule: lag above {view.alert.threshold} for {format_seconds(view.alert.for_seconds)}: "
                     f"{now}")
    lines += ["", "```text", *chart_lines(view, width=76, height=8, clock_labels=True), "```", "",
              f"Lag in messages of my partitions together. Time axis: {MARKER_LEGEND}.", "",
              "| partition | lag | lag (s) | status | why | time to drain | balances behind |",
              "|---:|---:|---:|---|---|---|---:|"]
    for p in view.partitions:
        lines.append(f"| {p.partition} | {format_count_or_dash(p.lag)} | "
                     f"{seconds_text(p.lag_seconds, p.lag_seconds_basis)} | {p.status.name} | {_cell(p.reason)} | "
                     f"{drain_text(p.drain, p.drain_seconds)} | {seconds_text(p.balance_delay)} |")
    lines.append("")
    if view.alert is not None:
        lines += ["### Lag alerts", ""]
        episodes = alert_episodes(view.alert.transitions)
        if not episodes:
            lines.append("None raised.")
        else:
            lines += ["| raised (UTC) | above the threshold since | cleared (UTC) | in alert for | lag when raised |",
                      "|---|---|---|---|---:|"]
            for raised, cleared in episodes:
                lasted = format_seconds(cleared.time - raised.time) if cleared is not None else "still in alert"
                lines.append(f"| {iso_text(raised.time)} | {iso_text(raised.since)} | "
                             f"{iso_text(cleared.time) if cleared is not None else '–'} | {lasted} | "
                             f"{measure_text(raised.value, view.alert.threshold)} |")
        lines.append("")
    return lines


def format_count_or_dash(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: ids come from the messages and may hold anything."""
    return visible(text).replace("\\", "\\\\").replace("|", "\\|")
