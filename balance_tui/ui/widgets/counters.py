"""Throughput counters: consumed, rate with a one-minute sparkline, lag, rejections, errors, latency."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from balance_tui.core.rows import Counters
from balance_tui.core.safe_text import visible
from balance_tui.ui import format as fmt

LABEL = "#8a8a8a"


def figures_per_line(width: int) -> int:
    """Label/figure pairs on one line of the counters: two when there is room."""
    return 2 if width >= 44 else 1


def counters_renderable(counters: Counters, width: int) -> Group:
    """Label/figure pairs (two columns when there is room), then the last rejection reason."""
    lag_style = "bold #d7af00" if counters.lag else "bold #5faf5f"
    pairs: list[tuple[str, Text | str]] = [
        ("Consumed", Text(fmt.count(counters.consumed), style="bold")),
        ("Rate", Text(f"{fmt.rate(counters.rate)} tx/s", style="bold #5fafff")),
        ("Applied", fmt.count(counters.applied)),
        ("Lag", Text(fmt.count(counters.lag), style=lag_style)),
        ("Rejected", Text(fmt.count(counters.rejected), style="#d7af00" if counters.rejected else "")),
        ("Skipped", fmt.count(counters.skipped)),
        ("Errors", Text(fmt.count(counters.errors), style="bold #d75f5f" if counters.errors else "")),
        ("Replayed", fmt.count(counters.replayed)),
        ("Latency p50", fmt.millis(counters.latency_p50_ms)),
        ("p99", fmt.millis(counters.latency_p99_ms)),
    ]
    per_line = figures_per_line(width)
    if per_line == 1:
        pairs = [pair for pair in pairs if pair[0]]
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in range(per_line):
        grid.add_column(style=LABEL, no_wrap=True)
        grid.add_column(justify="right", no_wrap=True, ratio=1)
    for start in range(0, len(pairs), per_line):
        grid.add_row(*(cell for pair in pairs[start:start + per_line] for cell in pair))
    # A rejection reason quotes the message it rejects.
    reason = Text.assemble(("Last rejection ", LABEL), visible(counters.last_rejection or fmt.DASH))
    reason.no_wrap = True
    reason.overflow = "ellipsis"
    return Group(grid, reason)


class CountersPanel(Vertical):
    """The counters of the latest Snapshot; drawn by `flush` on the app's tick."""

    DEFAULT_CSS = """
    CountersPanel {
        #figures { height: auto; }
        #rate-label { color: $text-muted; height: 1; }
        Sparkline { height: 1fr; min-height: 1; max-height: 6; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.counters = Counters()
        self._dirty = True
        #: Pairs per line when the figures were last drawn: their height changes only with it.
        self._drawn_per_line: int | None = None
        self.figures = Static(id="figures")
        self.sparkline = Sparkline([], id="rate-history")

    def compose(self) -> ComposeResult:
        yield self.figures
        yield Static("Rate, last minute", id="rate-label")
        yield self.sparkline

    def on_resize(self) -> None:
        self._dirty = True

    def show_counters(self, counters: Counters) -> None:
        self.counters = counters
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        width = self.content_size.width
        # A layout of the whole screen cost more than the figures' own drawing at a million
        # customers (docs/performance.md); new figures in the same lines need none.
        per_line = figures_per_line(width)
        self.figures.update(counters_renderable(self.counters, width), layout=per_line != self._drawn_per_line)
        self._drawn_per_line = per_line
        sparkline = self.sparkline
        history = list(self.counters.rate_history)
        if history != list(sparkline.data or ()):
            sparkline.data = history
