"""The rebalance timeline, newest first: what moved, when, and how long each partition stood still."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from balance_tui.core.rows import TimelineEntry
from balance_tui.core.safe_text import visible
from balance_tui.ui import format as fmt

#: kind -> (label, style). Unknown kinds are shown upper-cased, unstyled.
KINDS: dict[str, tuple[str, str]] = {
    "assigned": ("ASSIGNED", "bold #5faf5f"),
    "revoked": ("REVOKED", "bold #d7af00"),
    "lost": ("LOST", "bold #ff5f5f"),
    "strategy_changed": ("STRATEGY", "bold #5fd7d7"),
    "restarted": ("RESTART", "bold #5fafff"),
    "paused": ("PAUSED", "bold #af87d7"),
    "resumed": ("RESUMED", "bold #af87d7"),
    "error": ("ERROR", "bold #ff5f5f"),
    "restored": ("RESTORED", "bold #5fafd7"),
    "member_gone": ("GONE", "bold #ff5f5f"),
    "member_left": ("LEFT", "#8a8a8a"),
    "strategy_requested": ("ASKED", "bold #5fd7d7"),
    "group_reset": ("RESET", "bold #5fd7d7"),
    "alert": ("ALERT", "bold #d75f5f"),
}
#: How a kind marks the partitions it moved: in, out, or gone without a revoke.
PARTITION_MARKS = {"assigned": "+", "revoked": "−", "lost": "×", "restored": "↻"}

#: Oldest entries are dropped beyond this (the session log keeps them): ~200 rebalances, and
#: re-rendering them all on a terminal resize stays around 0.3 s.
MAX_ENTRIES = 500
LABEL = "#8a8a8a"


def downtime_text(downtime_ms: dict[int, float]) -> str:
    """`p2 1.20 s, p3 850 ms`, by partition."""
    return ", ".join(f"p{number} {fmt.millis(ms)}" for number, ms in sorted(downtime_ms.items()))


def restore_details(entry: TimelineEntry) -> list[Text]:
    """A `restored` entry's partitions one by one: `P3: 12 customers from 40 records in 20 ms, resuming at 1,024`."""
    return [Text.assemble((f"P{r.partition}: ", LABEL), f"{r.customers:,} customer{'s' * (r.customers != 1)} from "
                          f"{r.records:,} record{'s' * (r.records != 1)} in {fmt.millis(r.duration_ms)}, resuming at "
                          f"{r.resume_offset:,}") for r in entry.restores]


def what_changed(entry: TimelineEntry, details: bool = False) -> Text:
    """The free-text last column: kept / moved in / downtime for moves, the detail otherwise; with `details`,
    a restore's figures per partition on lines of their own (the line says them together)."""
    parts: list[Text] = []
    if entry.kept:
        parts.append(Text.assemble(("kept ", LABEL), fmt.partitions(entry.kept)))
    if entry.moved_in:
        parts.append(Text.assemble(("moved in ", LABEL), (fmt.partitions(entry.moved_in), "#5fd7d7")))
    if entry.downtime_ms:
        parts.append(Text.assemble(("downtime ", LABEL), downtime_text(entry.downtime_ms)))
    # An assignment's detail says again what kept / moved in just said; keep it for the rest.
    if entry.detail and not (entry.kind == "assigned" and (entry.kept or entry.moved_in)):
        # Details quote broker error texts and other members' ids.
        parts.append(Text(visible(entry.detail), style="#ff8787" if entry.kind == "error" else ""))
    text = Text(" · ").join(parts)
    if details and entry.restores:
        text = Text("\n").join([text, *restore_details(entry)])
    return text


def entry_row(seq: int, entry: TimelineEntry, *, compact: bool = False,
              details: bool = False) -> tuple[Text | str, ...]:
    """The cells of one timeline line; `compact` drops the number and the full assignment; `details`: a
    restore's partitions one by one."""
    label, style = KINDS.get(entry.kind, (visible(entry.kind.upper()), ""))
    mark = PARTITION_MARKS.get(entry.kind, "")
    moved = mark + fmt.partitions(entry.partitions) if entry.partitions else ""
    shows_assignment = entry.kind in PARTITION_MARKS or bool(entry.assignment)
    cells: tuple[Text | str, ...] = (
        Text(fmt.clock_time(entry.at, with_millis=not compact), style=LABEL),
        Text(label, style=style),
        Text(moved, style=style),
        str(entry.generation) if entry.generation is not None else "",
        fmt.millis(entry.join_ms) if entry.join_ms is not None else "",
        what_changed(entry, details),
    )
    if compact:
        return cells
    return (Text(str(seq), style=LABEL), *cells[:3], fmt.partitions(entry.assignment) if shows_assignment else "",
            *cells[3:])


#: Below this many columns the timeline drops the event number and the full assignment.
COMPACT_BELOW = 100
#: (header, width, right-aligned) of the fixed columns; "What changed" takes the rest and wraps.
FIXED_COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("#", 3, True), ("Time", 12, False), ("Event", 8, False), ("Moved", 7, False), ("Now mine", 10, False),
    ("Gen", 3, True), ("Join", 7, True),
)
COMPACT_COLUMNS = ("Time", "Event", "Moved", "Gen", "Join")


def timeline_grid(rows: list[tuple[Text | str, ...]], *, compact: bool = False, header: bool = False) -> Table:
    """A table with fixed widths, so every entry can be rendered on its own and still line up."""
    table = Table(box=None, expand=True, padding=(0, 1), show_header=header, header_style="bold",
                  show_edge=False)
    for name, width, right in FIXED_COLUMNS:
        if compact and name not in COMPACT_COLUMNS:
            continue
        if compact and name == "Time":
            width = 8
        table.add_column(name, width=width, justify="right" if right else "left", no_wrap=True)
    table.add_column("What changed", ratio=1, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


class RebalanceTimeline(ScrollView, can_focus=True):
    """Every assignment, revoke, loss, strategy change, restart, pause/resume and error, newest on top.

    Each entry is rendered to lines once, when it arrives (and again only on resize); the widget
    draws the visible lines, so a long session costs nothing per frame.
    """

    DEFAULT_CSS = """
    RebalanceTimeline {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[tuple[int, TimelineEntry]] = []
        self._pending: list[TimelineEntry] = []
        self._seq = 0
        self._blocks: list[list[Strip]] = []  # rendered lines per entry, oldest first like `entries`
        self._lines: list[Strip] = []  # every entry's lines, newest first
        self._header: Strip | None = None
        self._width = 0
        #: `d`: a restore's figures per partition under its line.
        self.details = False

    def toggle_details(self) -> None:
        self.details = not self.details
        self._width = 0  # re-render every entry on the next flush
        self.flush()

    def add_entry(self, entry: TimelineEntry) -> None:
        self._pending.append(entry)

    def on_resize(self) -> None:
        self._width = 0  # re-render at the new width on the next flush

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._width = 0

    def flush(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0 or (not self._pending and width == self._width):
            return  # not laid out yet, or nothing new
        compact = width < COMPACT_BELOW
        if width != self._width:
            self._width = width
            self._header = self._render(timeline_grid([], compact=compact, header=True))[0]
            self._blocks = [self._render_entry(seq, entry, compact) for seq, entry in self.entries]
        for entry in self._pending:
            self._seq += 1
            self.entries.append((self._seq, entry))
            self._blocks.append(self._render_entry(self._seq, entry, compact))
        self._pending.clear()
        del self.entries[:-MAX_ENTRIES]
        del self._blocks[:-MAX_ENTRIES]
        self._lines = [line for block in reversed(self._blocks) for line in block]
        self.virtual_size = Size(width, len(self._lines) + 1)
        hint = ""
        if any(entry.restores for _, entry in self.entries):
            hint = " · d: hide details" if self.details else " · d: restore details"
        self.border_subtitle = f"{self._seq} events{hint}" if self._seq else ""
        self.refresh()

    def _render_entry(self, seq: int, entry: TimelineEntry, compact: bool) -> list[Strip]:
        return self._render(timeline_grid([entry_row(seq, entry, compact=compact, details=self.details)],
                                          compact=compact))

    def _render(self, renderable: Table) -> list[Strip]:
        options = self.app.console.options.update(width=self._width, height=None)
        lines = self.app.console.render_lines(renderable, options, style=self.rich_style)
        return [Strip(line, self._width) for line in lines]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            strip = self._header or Strip.blank(width, base)
        else:
            index = self.scroll_offset.y + y - 1
            if index < len(self._lines):
                strip = self._lines[index]
            elif index == 0:
                strip = Strip([Segment(EMPTY_MESSAGE, base + Style.parse(LABEL))])
            else:
                strip = Strip.blank(width, base)
        return strip.crop_extend(0, width, base)


EMPTY_MESSAGE = " No rebalance yet: start balance-tui in another terminal to watch partitions move."
