"""The Lag panel: my partitions' lag over the last minutes, rebalances marked on the time axis.

The title sums it up (lag in messages and seconds, Burrow's status, time to drain), the chart shows
my partitions together (`core.lag.render_chart`), then one row per partition on the same time axis
when the panel is tall enough. The subtitle says the alert (as the header does) and how far behind
real time the balances are. Fed by the Snapshot's `LagView` (about once a second); drawn by `flush`
on the app's tick.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from balance_tui.core.lag import LagStatus, render_chart
from balance_tui.core.lag_view import (
    LagView,
    alert_text,
    drain_text,
    held,
    seconds_text,
    span_for,
    strip,
)

LABEL = "#8a8a8a"
MARKER_STYLE = "bold #5fd7d7"
#: Burrow's statuses: green when fine, yellow while the lag grows, red when the consumer does not move.
STATUS_STYLES: dict[LagStatus, str] = {
    LagStatus.OK: "#5faf5f", LagStatus.WARN: "#d7af00", LagStatus.STOP: "bold #d75f5f",
    LagStatus.STALL: "bold #d75f5f", LagStatus.REWIND: "bold #d75f5f",
}
PLOT_STYLES: dict[LagStatus, str] = {
    LagStatus.OK: "#5fafd7", LagStatus.WARN: "#d7af00", LagStatus.STOP: "#d75f5f",
    LagStatus.STALL: "#d75f5f", LagStatus.REWIND: "#d75f5f",
}
#: The plot gets at most this many rows; more height goes to the rows per partition.
MAX_PLOT_ROWS = 10
MIN_PLOT_ROWS = 2


def summary_line(view: LagView) -> Text:
    """`Lag 1,234 · 12s behind · WARN P0,P1 · not draining`: the panel's title."""
    line = Text.assemble(("Lag ", ""), ("–" if view.lag is None else f"{view.lag:,}", ""), (" · ", LABEL),
                         (seconds_text(view.lag_seconds) + " behind", ""), (" · ", LABEL),
                         (view.status.name, STATUS_STYLES[view.status]))
    if view.worst:
        line.append(" " + ",".join(f"P{p}" for p in view.worst), style=STATUS_STYLES[view.status])
    line.append(" · ", style=LABEL)
    line.append(drain_text(view.drain, view.drain_seconds), style="#d75f5f" if view.not_draining else "")
    return line


def subtitle_line(view: LagView) -> Text:
    """The alert first (`⚠ in alert since 12:03:04`), then how far behind real time the balances are."""
    parts = []
    if view.alert is not None:
        parts.append(Text(("⚠ " if view.alert.firing else "") + alert_text(view.alert, view.time),
                          style="bold #d75f5f" if view.alert.firing else ""))
    if view.balance_delay:
        parts.append(Text(f"balances {seconds_text(view.balance_delay)} behind"))
    return Text(" · ").join(parts)


def _styled_chart_line(text: str, gutter: int, plot_style: str, axis: bool) -> Text:
    line = Text(text[:gutter + 2], style=LABEL)
    rest = text[gutter + 2:]
    if not axis:
        line.append(rest, style=plot_style)
        return line
    for char in rest:
        line.append(char, style=LABEL if char in "─╌" else MARKER_STYLE)
    return line


def lag_renderable(view: LagView, width: int, height: int) -> Group:
    """The chart of my partitions together, then a row per partition on the same time axis if they all fit.

    Lines: the plot, the time axis with its markers, the rows per partition, the time labels; below
    four lines the labels go (the title says the span) and the plot keeps one row.
    """
    if width < 12 or height < 2:
        return Group()
    span = span_for(width - 8)
    start = view.time - span
    compact = height < 4
    strips = sorted(view.partition_points)
    if compact or height - 2 - len(strips) < MIN_PLOT_ROWS + 1:
        strips = []  # not all fit: the chart alone, the partitions table has each one's figures
    rows = 1 if compact else min(MAX_PLOT_ROWS, height - 2 - len(strips))
    label_width = max((len(f"P{p}") for p in strips), default=0)

    # Between two samples a second apart, columns narrower than a second show the first one's value, not a hole.
    points = held(view.points, start=start, end=view.time, columns=2 * width)

    def chart(chart_width: int) -> list[str]:
        return render_chart(points, start=start, end=view.time, width=chart_width, height=rows,
                            markers=view.markers)

    lines = chart(width)
    gutter = lines[0].index("┤") - 1
    if strips and gutter < label_width:
        # The partitions' labels are wider than the scale's: give the chart a wider gutter, same columns.
        pad = label_width - gutter
        lines = [" " * pad + line for line in chart(width - pad)]
        gutter = label_width
    columns = width - gutter - 2
    plot_style = PLOT_STYLES[view.status]
    plot = [_styled_chart_line(line, gutter, plot_style, axis=False) for line in lines[:rows]]
    axis = _styled_chart_line(lines[rows], gutter, plot_style, axis=True)
    below = []
    if strips:
        scale = max((value for p in strips for t, value in view.partition_points[p] if t >= start), default=0.0)
        for number in strips:
            partition = view.partition(number)
            style = PLOT_STYLES[partition.status] if partition is not None else plot_style
            series = held(view.partition_points[number], start=start, end=view.time, columns=2 * columns)
            cells = strip(series, start=start, end=view.time, columns=columns, scale=scale)
            below.append(Text.assemble((f"P{number}".rjust(gutter) + " │", LABEL), (cells, style)))
    labels = [] if compact else [Text(lines[rows + 1], style=LABEL)]
    return Group(*plot, axis, *below, *labels)


class LagPanel(Static):
    """Stores the latest `LagView`; `flush` draws it on the app's tick (and after a resize)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("waiting for the first lag reading…", style=LABEL), id=id)
        self.view: LagView | None = None
        self._dirty = False

    def show_lag(self, view: LagView | None) -> None:
        if view is not None and view is not self.view:  # the worker re-sends one view until the next second
            self.view = view
            self._dirty = True

    def on_resize(self) -> None:
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty or self.view is None:
            return
        self._dirty = False
        view = self.view
        width, height = self.content_size
        if width <= 0 or height <= 0:
            return
        # Drawn to the panel's size, which the stylesheet fixes (1fr): no layout of the screen.
        self.update(lag_renderable(view, width, height), layout=False)
        # Content from Text, never markup: the title has no text from Kafka, but one rule for every title.
        self.border_title = Content.from_rich_text(summary_line(view))
        self.border_subtitle = Content.from_rich_text(subtitle_line(view))
        self.set_class(view.alert is not None and view.alert.firing, "-alert")
