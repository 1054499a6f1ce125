"""The partitions table: every partition of the topic, whether this member owns it, and its lag.

Drawn as lines of its own (Textual's line API) rather than a `DataTable`: a DataTable re-renders
every line through rich whenever one cell changes, and the lag and offsets change on every
snapshot, which cost about 9 ms of each frame at a million customers (docs/performance.md).
Here a changed row becomes one strip of plain segments when it changes, and a frame only crops them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from balance_tui.core.lag import DrainState
from balance_tui.core.lag_view import (
    LagView,
    PartitionLagView,
    drain_text,
    seconds_text,
)
from balance_tui.core.rows import PartitionRow, PartitionState
from balance_tui.ui import format as fmt
from balance_tui.ui.widgets.lag_chart import STATUS_STYLES as LAG_STATUS_STYLES

#: (label, column key, width incl. a one-cell gap): what matters in a rebalance comes first, so an
#: 80-column terminal still shows ownership, state, lag and lag in seconds, and 120 columns Burrow's
#: status, the time to drain and the rate (the offsets scroll sideways). A restore shows its bar in
#: State and "records read/total" in Position.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("  P", "partition", 3),
    (" Mine", "mine", 5),
    (" State", "state", 11),
    ("     Lag", "lag", 8),
    ("  Lag s", "lag_seconds", 7),
    (" Burrow", "status", 7),
    ("  Drain", "drain", 7),
    (" Rate/s", "rate", 7),
    ("  Position", "position", 10),
    ("   High WM", "high_watermark", 10),
)
STATE_STYLES = {
    PartitionState.CONSUMING: "#5faf5f",
    PartitionState.RESTORING: "#5fafd7",
    PartitionState.PAUSED: "#af87d7",
    PartitionState.REVOKED: "#d75f5f",
    PartitionState.NOT_MINE: "#6c6c6c",
}
#: Lag at or above this many messages is shown in red: the member is clearly behind.
LAG_ALARM = 1_000

Cells = tuple[Text, ...]


RESTORE_BAR_CELLS = 6


def restore_bar(done: int | None, total: int | None) -> str:
    """`↻ ███░░░` for a restore `done` of `total` records (just `↻` while the total is unknown)."""
    if not total:
        return " ↻ restoring"
    filled = min(RESTORE_BAR_CELLS, round(RESTORE_BAR_CELLS * (done or 0) / total))
    return " ↻ " + "█" * filled + "░" * (RESTORE_BAR_CELLS - filled)


def lag_cells(lag: PartitionLagView | None, dim: str) -> Cells:
    """Lag in seconds, Burrow's status and the time to drain; dashes where the worker has no view."""
    if lag is None:
        return tuple(Text(fmt.DASH, style=dim, justify="right") for _ in range(3))
    if lag.drain is DrainState.CAUGHT_UP:
        drain = Text("0s", style="#5faf5f", justify="right")
    else:
        drain = Text(drain_text(lag.drain, lag.drain_seconds, short=True), justify="right",
                     style="bold #d75f5f" if lag.drain is DrainState.NOT_DRAINING else "")
    seconds_style = "#5faf5f" if lag.lag_seconds == 0 else "#d7af00" if lag.lag_seconds is not None else dim
    return (
        Text(seconds_text(lag.lag_seconds, lag.lag_seconds_basis), style=seconds_style, justify="right"),
        Text(" " + lag.status.name, style=LAG_STATUS_STYLES[lag.status]),
        drain,
    )


def partition_cells(row: PartitionRow, lag: PartitionLagView | None = None) -> Cells:
    """The rendered cells of one partition row; `lag` is its view from the worker's lag tracker (mine only)."""
    if row.state is PartitionState.RESTORING:
        style = STATE_STYLES[PartitionState.RESTORING]
        progress = f"{fmt.count(row.restored)}/{fmt.count(row.restore_total)}"
        return (
            Text(str(row.partition), style="bold", justify="right"),
            Text("  ●", style="bold #5faf5f"),
            Text(restore_bar(row.restored, row.restore_total), style=style),
            Text(fmt.DASH, justify="right"),
            *lag_cells(None, ""),
            Text(fmt.DASH, justify="right"),
            Text(progress, style=style, justify="right"),
            Text(fmt.count(row.high_watermark), justify="right"),
        )
    dim = "" if row.mine else "#6c6c6c"
    if row.lag is None:
        lag_style = dim
    elif row.lag == 0:
        lag_style = "#5faf5f"
    else:
        lag_style = "bold #d75f5f" if row.lag >= LAG_ALARM else "#d7af00"
    return (
        Text(str(row.partition), style="bold" if row.mine else dim, justify="right"),
        Text("  ●", style="bold #5faf5f") if row.mine else Text("  ·", style=dim),
        Text(" " + row.state.value, style=STATE_STYLES.get(row.state, "")),
        Text(fmt.count(row.lag), style=lag_style, justify="right"),
        *lag_cells(lag if row.mine else None, dim),
        Text(fmt.rate(row.rate) if row.mine else fmt.DASH, style=dim, justify="right"),
        Text(fmt.count(row.position), style=dim, justify="right"),
        Text(fmt.count(row.high_watermark), style=dim, justify="right"),
    )


def cell_segment(cell: Text, width: int, base: Style) -> Segment:
    """One cell as one segment `width` cells wide, justified as the cell asks, cut with `…` when too long.

    The cells of `partition_cells` carry one style each (no spans), so no rich rendering is needed.
    """
    plain = cell.plain
    length = cell_len(plain)
    if length > width:
        plain = set_cell_size(plain, max(0, width - 1)) + "…"
    elif cell.justify == "right":
        plain = " " * (width - length) + plain
    else:
        plain += " " * (width - length)
    style = cell.style
    return Segment(plain, base + (Style.parse(style) if isinstance(style, str) else style))


#: The width of a line with every column.
LINE_WIDTH = sum(width for _, _, width in COLUMNS)


class PartitionsTable(ScrollView, can_focus=True):
    """One row per partition under a header that stays on top; data is stored on arrival and drawn by
    `flush` on the app's tick. Wider than its panel, the columns scroll sideways with the header."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"partitions--header", "partitions--even-row", "partitions--odd-row"}

    DEFAULT_CSS = """
    PartitionsTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus { background-tint: $foreground 5%; }
        & > .partitions--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .partitions--header { background: ansi_bright_blue; color: ansi_default; }
        & > .partitions--even-row { background: $surface-lighten-1 50%; }
        &:dark > .partitions--even-row { background: $surface-darken-1 40%; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows_by_partition: dict[int, PartitionRow] = {}
        self.lag: LagView | None = None
        self._shown: dict[int, Cells] = {}
        #: Each shown partition's line, in partition order; None until its styles are known.
        self._lines: list[Strip] | None = None
        self._header: tuple[Strip, Style] | None = None
        self._dirty = False
        #: Row lines built, for tests that prove unchanged rows are not built again.
        self.rows_built = 0
        self.virtual_size = Size(LINE_WIDTH, 1)

    def on_mount(self) -> None:
        self.border_subtitle = "waiting for the first snapshot"

    @property
    def row_count(self) -> int:
        return len(self._shown)

    def shown_cell(self, partition: int, column: str) -> Text:
        """The cell drawn for `partition` in the column keyed `column` (a key of COLUMNS)."""
        index = next(at for at, (_, key, _) in enumerate(COLUMNS) if key == column)
        return self._shown[partition][index]

    def show_partitions(self, rows: Iterable[PartitionRow]) -> None:
        """A Snapshot's view of every partition replaces what we had."""
        self.rows_by_partition = {row.partition: row for row in rows}
        self._dirty = True

    def show_lag(self, view: LagView | None) -> None:
        """The lag view of the same Snapshot (a new one about once a second)."""
        if view is not None and view is not self.lag:
            self.lag = view
            self._dirty = True

    def set_assignment(self, assignment: Iterable[int]) -> None:
        """An assign/revoke/lost event: mark ownership now rather than at the next Snapshot."""
        mine = set(assignment)
        for number in mine - self.rows_by_partition.keys():
            self.rows_by_partition[number] = PartitionRow(
                number, True, PartitionState.CONSUMING, None, None, None, 0.0
            )
        for number, row in self.rows_by_partition.items():
            if (number in mine) != row.mine:
                state = PartitionState.CONSUMING if number in mine else PartitionState.REVOKED
                self.rows_by_partition[number] = replace(row, mine=number in mine, state=state)
        self._dirty = True

    def flush(self) -> None:
        """Build the lines of the rows that changed (all of them when the partition set did)."""
        if not self._dirty:
            return
        self._dirty = False
        lag = self.lag
        wanted = {number: partition_cells(row, lag.partition(number) if lag is not None else None)
                  for number, row in sorted(self.rows_by_partition.items())}
        lines = self._lines
        if lines is None or wanted.keys() != self._shown.keys():
            self._lines = [self._row_line(index, cells) for index, cells in enumerate(wanted.values())]
            self.virtual_size = Size(LINE_WIDTH, 1 + len(wanted))
            self.refresh()
        else:
            changed = False
            for index, (number, cells) in enumerate(wanted.items()):
                # rich's Text equality ignores the base style, and ownership only changes colour here.
                if any(new.plain != old.plain or new.style != old.style
                       for new, old in zip(cells, self._shown[number], strict=True)):
                    lines[index] = self._row_line(index, cells)
                    changed = True
            if changed:
                self.refresh()  # a frame now crops a few strips: no need to pick the lines
        self._shown = wanted
        self.border_subtitle = self._summary()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # Focus, a theme or the terminal's colours changed the styles the lines were built with.
        self._header = None
        if self._lines is not None:
            self._lines = [self._row_line(index, cells) for index, cells in enumerate(self._shown.values())]

    def _row_line(self, index: int, cells: Cells) -> Strip:
        self.rows_built += 1
        zebra = "partitions--odd-row" if index % 2 else "partitions--even-row"
        base = self.rich_style + self.get_component_rich_style(zebra, partial=True)
        return Strip([cell_segment(cell, width, base) for cell, (_, _, width) in zip(cells, COLUMNS, strict=True)],
                     LINE_WIDTH)

    def _header_line(self) -> tuple[Strip, Style]:
        """The header's strip and its style (which also pads it to the panel's width), made once per style."""
        if self._header is None:
            style = self.rich_style + self.get_component_rich_style("partitions--header", partial=True)
            strip = Strip([Segment(set_cell_size(label, width), style) for label, _, width in COLUMNS], LINE_WIDTH)
            self._header = (strip, style)
        return self._header

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        lines = self._lines or []
        if y == 0:
            strip, base = self._header_line()  # stays on top while the rows scroll under it
        elif scroll_y + y - 1 < len(lines):
            strip = lines[scroll_y + y - 1]
        else:
            strip = Strip.blank(width, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _summary(self) -> str:
        mine = [row for row in self.rows_by_partition.values() if row.mine]
        lag = sum(row.lag or 0 for row in mine)
        restoring = [row.partition for row in mine if row.state is PartitionState.RESTORING]
        restore_note = f" · restoring {', '.join(f'P{p}' for p in restoring)}" if restoring else ""
        view = self.lag
        seconds = f" · {seconds_text(view.lag_seconds)} · {view.status.name}" if view is not None and mine else ""
        return f"{len(mine)} of {len(self.rows_by_partition)} mine · lag {lag:,}{seconds}{restore_note}"
