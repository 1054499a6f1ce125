"""The Group panel: every member of the consumer group as this terminal sees it.

Fed by `GroupChanged`: the members' own heartbeats on `<group>.members`, and where the
broker describes groups (Apache Kafka; not Tansu) the broker's DescribeGroups beside them,
with members only the broker lists (a plain Kafka consumer) and any disagreement shown.
A silent member shows a countdown to the rebalance its session timeout will cause.
Any member can write anything on the members topic, so every text shown passes through `visible`.
"""

from __future__ import annotations

from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from balance_tui.core.assignment import format_partitions
from balance_tui.core.group import MemberRow, silence_text
from balance_tui.core.safe_text import visible
from balance_tui.messages import GroupChanged
from balance_tui.ui import format as fmt

STATUS_STYLES = {
    "Consuming": "#5faf5f", "Idle": "#d7af00", "Paused": "#af87d7", "Rebalancing": "#5fafd7",
    "Joining": "#5fafd7", "Partitions lost": "#d75f5f", "Fatal error": "bold #d75f5f",
}


def short_id(consumer_id: str) -> str:
    """`balance-worker-host-1a2b3c4d` → `host-1a2b3c4d`: the part that tells members apart, as shown."""
    return visible(consumer_id.removeprefix("balance-worker-"))


def member_line(row: MemberRow, with_strategy: bool) -> tuple[Text, ...]:
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
    cells = (
        name,
        status,
        owns,
        Text(fmt.rate(row.rate) if heard else fmt.DASH, justify="right"),
        Text(fmt.count(row.lag) if heard else fmt.DASH, justify="right"),
        Text(f"{row.heartbeat_age:.1f}s" if heard else fmt.DASH, justify="right",
             style="#d75f5f" if row.silent else "#8a8a8a"),
    )
    return (*cells, Text(visible(row.strategy), style="#d7af00")) if with_strategy else cells


def group_renderable(group: GroupChanged) -> RichGroup:
    # The strategy column only matters when members disagree (then the group refuses someone).
    with_strategy = len({row.strategy for row in group.rows}) > 1
    # Not expanded: columns side by side read better than a wide, mostly empty member column.
    table = Table(expand=False, box=None, padding=(0, 1), header_style="bold #8a8a8a")
    # Members are told apart by their name: it never shrinks below the longest (up to 24 cells).
    name_width = min(24, max((len(short_id(row.consumer_id)) + 2 for row in group.rows), default=8))
    columns = [("Member", "left", name_width), ("Status", "left", None), ("Owns", "left", None),
               ("Rate/s", "right", None), ("Lag", "right", None), ("Seen", "right", None)]
    if with_strategy:
        columns.append(("Strategy", "left", None))
    for label, justify, min_width in columns:
        table.add_column(label, justify=justify, no_wrap=True, min_width=min_width,  # type: ignore[arg-type]
                         overflow="ellipsis")
    for row in group.rows:
        table.add_row(*member_line(row, with_strategy))
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
    parts = [table, *warnings, notes, footer, *(Text(visible(line), style="#d7af00") for line in group.cross_check)]
    return RichGroup(*parts)


class GroupPanel(Static):
    """Stores the latest `GroupChanged`; `flush` draws it on the app's tick."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("waiting for the members' heartbeats…", id=id)
        self.group: GroupChanged | None = None
        self._dirty = False

    def show_group(self, group: GroupChanged) -> None:
        self.group = group
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty or self.group is None:
            return
        self._dirty = False
        self.update(group_renderable(self.group))
        self.border_subtitle = Content(visible(self.group.capacity))  # plain text, never markup
