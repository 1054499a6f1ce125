"""The Group panel: every member of the consumer group as this terminal sees it.

Fed by `GroupChanged`: the members' own heartbeats on `<group>.members`, and where the
broker describes groups (Apache Kafka; not Tansu) the broker's DescribeGroups beside them,
with members only the broker lists (a plain Kafka consumer) and any disagreement shown.
A silent member shows a countdown to the rebalance its session timeout will cause.
Any member can write anything on the members topic, so every text shown passes through `visible`.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.console import Group as RichGroup
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from balance_tui.core.assignment import format_partitions
from balance_tui.core.group import GroupLag, MemberRow, group_lag, silence_text
from balance_tui.core.lag import LagStatus, format_seconds
from balance_tui.core.lag_view import clock_text
from balance_tui.core.safe_text import visible
from balance_tui.messages import GroupChanged
from balance_tui.ui import format as fmt

STATUS_STYLES = {
    "Consuming": "#5faf5f", "Idle": "#d7af00", "Paused": "#af87d7", "Rebalancing": "#5fafd7",
    "Joining": "#5fafd7", "Partitions lost": "#d75f5f", "Fatal error": "bold #d75f5f",
}
#: A member's lag in seconds is coloured by its Burrow-style status (as in the Lag panel).
LAG_STATUS_STYLES = {
    LagStatus.OK.name: "#5faf5f", LagStatus.WARN.name: "#d7af00", LagStatus.STOP.name: "bold #d75f5f",
    LagStatus.STALL.name: "bold #d75f5f", LagStatus.REWIND.name: "bold #d75f5f",
}


def short_id(consumer_id: str) -> str:
    """`balance-worker-host-1a2b3c4d` → `host-1a2b3c4d`: the part that tells members apart, as shown."""
    return visible(consumer_id.removeprefix("balance-worker-"))


def member_line(row: MemberRow, with_strategy: bool, with_seconds: bool = True) -> tuple[Text, ...]:
    name = Text(("▸ " if row.is_self else "  ") + short_id(row.consumer_id), style="bold" if row.is_self else "")
    if row.source == "broker":  # listed by DescribeGroups only: no heartbeats, so nothing measured
        status = Text(visible(row.status), style="italic #8a8a8a")
    elif row.silent:
        status = Text("silent", style="bold #d75f5f")  # the countdown gets its own line below
    else:
        status = Text(visible(row.status), style=STATUS_STYLES.get(row.status, ""))
    owns = Text(",".join(map(str, row.partitions)) if row.partitions else "—",
                style="" if row.partitions else "#6c6c6c")
    if row.source != "broker" and row.broker_partitions is not None and row.broker_partitions != row.partitions:
        owns.append(f" (broker: {','.join(map(str, row.broker_partitions)) or '—'})", style="#d7af00")
    heard = row.source != "broker"
    # Lag in seconds coloured by the member's Burrow-style status (both from its heartbeats).
    seconds = Text(format_seconds(row.lag_seconds) if heard and row.lag_seconds is not None else fmt.DASH,
                   justify="right", style=LAG_STATUS_STYLES.get(row.lag_status or "", ""))
    cells = (
        name,
        status,
        owns,
        Text(fmt.rate(row.rate) if heard else fmt.DASH, justify="right"),
        Text(fmt.count(row.lag) if heard else fmt.DASH, justify="right"),
        *((seconds,) if with_seconds else ()),
        Text(f"{row.heartbeat_age:.1f}s" if heard else fmt.DASH, justify="right",
             style="#d75f5f" if row.silent else "#8a8a8a"),
    )
    return (*cells, Text(visible(row.strategy), style="#d7af00")) if with_strategy else cells


def member_table(group: GroupChanged, with_seconds: bool = True) -> Table:
    """One row per member; `with_seconds`: with the members' lag in seconds."""
    # The strategy column only matters when members disagree (then the group refuses someone).
    with_strategy = len({row.strategy for row in group.rows}) > 1
    # Not expanded: columns side by side read better than a wide, mostly empty member column.
    table = Table(expand=False, box=None, padding=(0, 1), header_style="bold #8a8a8a")
    # Members are told apart by their name: it never shrinks below the longest (up to 24 cells).
    name_width = min(24, max((len(short_id(row.consumer_id)) + 2 for row in group.rows), default=8))
    columns = [("Member", "left", name_width), ("Status", "left", None), ("Owns", "left", None),
               ("Rate/s", "right", None), ("Lag", "right", None), ("Lag s", "right", None), ("Seen", "right", None)]
    if not with_seconds:
        columns.remove(("Lag s", "right", None))
    if with_strategy:
        columns.append(("Strategy", "left", None))
    for label, justify, min_width in columns:
        table.add_column(label, justify=justify, no_wrap=True, min_width=min_width,  # type: ignore[arg-type]
                         overflow="ellipsis")
    for row in group.rows:
        table.add_row(*member_line(row, with_strategy, with_seconds))
    return table


def group_renderable(group: GroupChanged, width: int | None = None) -> RichGroup:
    """The members, the silent ones' countdowns, the group's lag and alert, the lag per partition, the source.

    The members' lag in seconds is a column of its own where `width` (None: any) leaves room for every
    column uncut; else it goes (the group's line below still says how far behind the group is)."""
    table = member_table(group)
    if width is not None and _natural_width(table) > width:
        table = member_table(group, with_seconds=False)
    lags = " ".join(
        f"P{lag.partition}:{fmt.count(lag.lag)}{'?' if lag.stale else ''}" for lag in group.partition_lag
    )
    warnings = [Text(f"⚠ {short_id(row.consumer_id)}: {silence_text(row)}", style="bold #d75f5f")
                for row in group.rows if row.silent]
    notes = Text()
    if group.unowned:
        notes.append(f"unowned {format_partitions(group.unowned)}  ", style="bold #d75f5f")
    stale = any(lag.stale for lag in group.partition_lag)
    notes.append(f"group lag (committed→end) {lags}{'  (?: its owner is silent)' if stale else ''}"
                 if lags else "group lag: waiting for heartbeats", style="#8a8a8a")
    # The source names the group state DescribeGroups gave; cross-check lines name members.
    footer = Text(visible(group.source), style="#6c6c6c")
    if group.problem:
        footer = Text(visible(group.problem), style="#d75f5f")
    parts = [table, *warnings, *group_lag_lines(group_lag(group.rows)), notes, footer,
             *(Text(visible(line), style="#d7af00") for line in group.cross_check)]
    return RichGroup(*parts)


_MEASURE = Console(width=10_000, file=io.StringIO(), color_system=None)


def _natural_width(table: Table) -> int:
    """The cells a table takes with no column cut."""
    return Measurement.get(_MEASURE, _MEASURE.options, table).maximum


def group_lag_lines(lag: GroupLag) -> list[Text]:
    """`⚠ group in lag alert since 22:11:06: host-a` when a member's alert fires, then
    `group lag status WARN: host-a · 2m behind` (`· no lag alert` when none fires); nothing when no member
    heard from sends its lag status (members older than the lag view)."""
    if lag.status is None:
        return []
    lines = []
    if lag.alerting:
        since = f" since {clock_text(lag.alert_since.timestamp())}" if lag.alert_since is not None else ""
        lines.append(Text(f"⚠ group in lag alert{since}: {', '.join(short_id(m) for m in lag.alerting)}",
                          style="bold #d75f5f"))
    status_style = LAG_STATUS_STYLES.get(lag.status, "")
    line = Text.assemble(("group lag status ", "#8a8a8a"), (visible(lag.status), status_style))
    if lag.worst:
        line.append(": " + ", ".join(short_id(m) for m in lag.worst), style=status_style)
    if lag.lag_seconds is not None:
        line.append(f" · {format_seconds(lag.lag_seconds)} behind", style="#8a8a8a")
    if not lag.alerting:
        line.append(" · no lag alert", style="#8a8a8a")
    lines.append(line)
    return lines


class GroupPanel(Static):
    """Stores the latest `GroupChanged`; `flush` draws it on the app's tick."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("waiting for the members' heartbeats…", id=id)
        self.group: GroupChanged | None = None
        self._dirty = False

    def show_group(self, group: GroupChanged) -> None:
        self.group = group
        self._dirty = True

    def on_resize(self) -> None:
        self._dirty = True  # the members' lag in seconds may fit now, or no longer

    def flush(self) -> None:
        if not self._dirty or self.group is None:
            return
        self._dirty = False
        self.update(group_renderable(self.group, self.content_size.width or None))
        self.border_subtitle = Content(visible(self.group.capacity))  # plain text, never markup
