"""The partitions table: every partition of the topic, whether this member owns it, and its lag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from rich.text import Text
from textual.widgets import DataTable

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


class PartitionsTable(DataTable):
    """One row per partition; data is stored on arrival and drawn by `flush` on the app's tick."""

    def __init__(self, *, id: str | None = None) -> None:
        # No cell padding: the column widths carry their own one-cell gap, to fit 58 columns.
        super().__init__(id=id, cursor_type="none", zebra_stripes=True, show_cursor=False, cell_padding=0)
        self.rows_by_partition: dict[int, PartitionRow] = {}
        self.lag: LagView | None = None
        self._shown: dict[int, Cells] = {}
        self._dirty = False

    def on_mount(self) -> None:
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_subtitle = "waiting for the first snapshot"

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
        """Draw pending changes: cells in place when the partition set is unchanged."""
        if not self._dirty:
            return
        self._dirty = False
        lag = self.lag
        wanted = {number: partition_cells(row, lag.partition(number) if lag is not None else None)
                  for number, row in sorted(self.rows_by_partition.items())}
        if wanted.keys() != self._shown.keys():
            self.clear()
            for number, cells in wanted.items():
                self.add_row(*cells, key=str(number))
        else:
            for number, cells in wanted.items():
                shown = self._shown[number]
                for (_, column, _), new, old in zip(COLUMNS, cells, shown, strict=True):
                    # rich's Text equality ignores the base style, and ownership only changes colour here.
                    if new.plain != old.plain or new.style != old.style:
                        self.update_cell(str(number), column, new)
        self._shown = wanted
        self.border_subtitle = self._summary()

    def _summary(self) -> str:
        mine = [row for row in self.rows_by_partition.values() if row.mine]
        lag = sum(row.lag or 0 for row in mine)
        restoring = [row.partition for row in mine if row.state is PartitionState.RESTORING]
        restore_note = f" · restoring {', '.join(f'P{p}' for p in restoring)}" if restoring else ""
        view = self.lag
        seconds = f" · {seconds_text(view.lag_seconds)} · {view.status.name}" if view is not None and mine else ""
        return f"{len(mine)} of {len(self.rows_by_partition)} mine · lag {lag:,}{seconds}{restore_note}"
