"""The Group panel: every member of the consumer group as this terminal sees it.

Fed by `GroupChanged`: the members' own heartbeats on `<group>.members`, and where the
broker describes groups (Apache Kafka; not Tansu) the broker's DescribeGroups beside them,
with members only the broker lists (a plain Kafka consumer) and any disagreement shown.
A silent member shows a countdown to the rebalance its session timeout will cause.
Any member can write anything on the members topic, so every text shown passes through `visible`.
"""

from __future__ import annotations

from collections.abc import Iterable

# rich's own even reduction, so slices match the whole table
from rich._ratio import ratio_reduce
from rich.cells import cell_len
from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

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


#: (label, justify) of the member table's columns; Strategy only shows when members disagree, `Lag s`
#: where the panel has room for every column uncut.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Member", "left"), ("Status", "left"), ("Owns", "left"), ("Rate/s", "right"), ("Lag", "right"),
    ("Lag s", "right"), ("Seen", "right"),
)
SECONDS_COLUMN = ("Lag s", "right")
STRATEGY_COLUMN = ("Strategy", "left")
#: Members are told apart by their name: it never shrinks below the longest (up to this many cells).
NAME_WIDTH_LIMIT = 24
#: One cell each side of every column (`padding=(0, 1)`).
CELL_PADDING = 2


def with_strategy_column(group: GroupChanged) -> bool:
    """The strategy column only matters when members disagree (then the group refuses someone)."""
    return len({row.strategy for row in group.rows}) > 1


def table_columns(group: GroupChanged, with_seconds: bool) -> list[tuple[str, str]]:
    columns = [column for column in COLUMNS if with_seconds or column != SECONDS_COLUMN]
    return [*columns, STRATEGY_COLUMN] if with_strategy_column(group) else columns


def member_table(group: GroupChanged, rows: Iterable[MemberRow], widths: list[int] | None = None, *,
                 header: bool = True, with_seconds: bool = True) -> Table:
    """The members as a table; with `widths`, columns are fixed so any slice of rows lines up with the rest."""
    with_strategy = with_strategy_column(group)
    # Not expanded: columns side by side read better than a wide, mostly empty member column.
    table = Table(expand=False, box=None, padding=(0, 1), header_style="bold #8a8a8a", show_header=header)
    name_width = min(NAME_WIDTH_LIMIT, max((len(short_id(row.consumer_id)) + 2 for row in group.rows), default=8))
    for index, (label, justify) in enumerate(table_columns(group, with_seconds)):
        table.add_column(label, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=name_width if index == 0 else None, overflow="ellipsis",
                         width=None if widths is None else widths[index])
    for row in rows:
        table.add_row(*member_line(row, with_strategy, with_seconds))
    return table


def natural_widths(group: GroupChanged, with_seconds: bool) -> list[int]:
    """Each column's widest cell (its label included), plus padding: the table with nothing cut."""
    with_strategy = with_strategy_column(group)
    widths = [cell_len(label) for label, _ in table_columns(group, with_seconds)]
    for row in group.rows:
        for index, cell in enumerate(member_line(row, with_strategy, with_seconds)):
            widths[index] = max(widths[index], cell.cell_len)
    name_minimum = min(NAME_WIDTH_LIMIT, max((len(short_id(row.consumer_id)) + 2 for row in group.rows), default=8))
    padded = [width + CELL_PADDING for width in widths]
    padded[0] = max(padded[0], name_minimum + CELL_PADDING)
    return padded


def seconds_fit(group: GroupChanged, max_width: int) -> bool:
    """The members' lag in seconds gets a column where every column fits uncut (else the group's line says it)."""
    return sum(natural_widths(group, with_seconds=True)) <= max_width


def column_widths(group: GroupChanged, max_width: int, with_seconds: bool = True) -> list[int]:
    """The widths rich gives the full member table's columns in `max_width` cells, without rendering it.

    Rich's own rule for a table whose columns are all no_wrap (`Table._calculate_column_widths`):
    each column as wide as its widest cell plus padding (the name column at least `name_width`),
    at most the width; if they do not fit, all are reduced evenly, then the name column is put
    back to its minimum. A table of any slice of the rows with these fixed widths lines up with
    the whole.
    """
    name_minimum = min(NAME_WIDTH_LIMIT, max((len(short_id(row.consumer_id)) + 2 for row in group.rows), default=8))
    padded = [min(width, max_width) for width in natural_widths(group, with_seconds)]
    padded[0] = max(padded[0], name_minimum + CELL_PADDING)
    if sum(padded) > max_width:
        padded = ratio_reduce(sum(padded) - max_width, [1] * len(padded), padded, padded)
        padded[0] = max(padded[0], name_minimum + CELL_PADDING)
    return [max(0, width - CELL_PADDING) for width in padded]


def notes_renderables(group: GroupChanged) -> list[Text]:
    """What follows the members: silent members' countdowns, unowned partitions and lag, the source."""
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
    return [*warnings, *group_lag_lines(group_lag(group.rows)), notes, footer,
            *(Text(visible(line), style="#d7af00") for line in group.cross_check)]


def group_renderable(group: GroupChanged, width: int | None = None) -> RichGroup:
    """The whole panel as one renderable (for tests and text output; the panel draws it in slices).

    The members' lag in seconds is a column of its own where `width` (None: any) leaves room for every
    column uncut; else it goes (the group's line below still says how far behind the group is)."""
    with_seconds = width is None or seconds_fit(group, width)
    return RichGroup(member_table(group, group.rows, with_seconds=with_seconds), *notes_renderables(group))



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


class GroupPanel(ScrollView, can_focus=False):
    """Stores the latest `GroupChanged`; `flush` lays it out on the app's tick, drawing only the lines on screen.

    Lines: the members' header, one per member, then the notes. Rendering a 100-member rich
    table took 30-50 ms per heartbeat round (measured); here only the members on screen go
    through rich, with column widths computed from every member's plain text.
    """

    DEFAULT_CSS = """
    GroupPanel {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.group: GroupChanged | None = None
        self._dirty = False
        self._width = 0
        self._widths: list[int] = []
        self._with_seconds = True
        self._header: Strip | None = None
        self._notes: list[Strip] = []
        #: Member lines rendered for the screen: ((first member, count, version), strips).
        self._window: tuple[tuple[int, int, int], list[Strip]] | None = None
        self._version = 0
        #: Member lines rendered so far, for tests that prove only the visible ones are.
        self.members_rendered = 0
        self.virtual_size = Size(len(WAITING), 1)

    def show_group(self, group: GroupChanged) -> None:
        self.group = group
        self._dirty = True

    def on_resize(self) -> None:
        self._dirty = self.group is not None  # lay out again at the new width on the next flush

    def flush(self) -> None:
        width = self.scrollable_content_region.width
        if not self._dirty or self.group is None or width <= 0:
            return
        self._dirty = False
        group = self.group
        self._width = width
        self._with_seconds = seconds_fit(group, width)
        self._widths = column_widths(group, width, self._with_seconds)
        self._header = self._render_strips(member_table(group, (), self._widths, with_seconds=self._with_seconds),
                                           self._table_width())[0]
        self._notes = self._render_strips(RichGroup(*notes_renderables(group)))
        self._version += 1
        self._window = None
        self.virtual_size = Size(width, 1 + len(group.rows) + len(self._notes))
        self.border_subtitle = Content(visible(group.capacity))  # plain text, never markup
        self.refresh()

    def _table_width(self) -> int:
        """Room for the fixed columns (wider than the panel when the names do not fit): rich must not
        reduce them again; the lines are cropped to the panel as the whole table's were."""
        return max(self._width, sum(self._widths) + CELL_PADDING * len(self._widths))

    def _render_strips(self, renderable: RenderableType, width: int | None = None) -> list[Strip]:
        width = width or self._width
        options = self.app.console.options.update(width=width, height=None)
        lines = self.app.console.render_lines(renderable, options, style=self.rich_style)
        return [Strip(line, width) for line in lines]

    def _member_lines(self, first: int, count: int) -> list[Strip]:
        """The lines of members first..first+count-1 (as many as there are), rendered together with the
        full table's widths; blank lines pad the list to `count`."""
        state = (first, count, self._version)
        if self._window is None or self._window[0] != state:
            group = self.group
            assert group is not None
            rows = group.rows[first:first + count]
            self.members_rendered += len(rows)
            table = member_table(group, rows, self._widths, header=False, with_seconds=self._with_seconds)
            strips = self._render_strips(table, self._table_width()) if rows else []
            strips += [Strip.blank(self._width, self.rich_style)] * (count - len(strips))
            self._window = (state, strips)
        return self._window[1]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if self.group is None or self._header is None:
            strip = Strip([Segment(WAITING, base)]) if y == 0 else Strip.blank(width, base)
        elif y == 0:
            strip = self._header  # stays on top while the members scroll under it
        else:
            scroll_y = self.scroll_offset.y
            members = len(self.group.rows)
            line = scroll_y + y - 1  # below the header: members, then the notes
            if line < members:
                strip = self._member_lines(scroll_y, self.size.height - 1)[line - scroll_y]
            elif line - members < len(self._notes):
                strip = self._notes[line - members]
            else:
                strip = Strip.blank(width, base)
        return strip.crop_extend(0, width, base)


WAITING = "waiting for the members' heartbeats…"
