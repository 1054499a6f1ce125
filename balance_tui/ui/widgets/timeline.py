"""The rebalance timeline, newest first: what moved, when, and how long each partition stood still."""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

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

#: Oldest entries are dropped beyond this (the session log keeps them): thousands of rebalances.
#: Entries are rendered when they arrive, and after a resize only as they come on screen or a few
#: per frame, so the number kept costs memory (~2 kB an entry), not time.
MAX_ENTRIES = 10_000
#: Entries rendered per frame (after a resize, or many arriving at once) besides those on screen (~0.7 ms each).
RERENDER_PER_FRAME = 8
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


def number_width(seq: int) -> int:
    """Cells for the `#` column when the newest event is number `seq`: all its digits, at least three."""
    return max(3, len(str(seq)))


def timeline_grid(rows: list[tuple[Text | str, ...]], *, compact: bool = False, header: bool = False,
                  numbers: int = 3) -> Table:
    """A table with fixed widths, so every entry can be rendered on its own and still line up.

    `numbers` is the width of the `#` column (`number_width` of the newest event), so event
    10,000 shows as 10000, not cut to `10…`.
    """
    table = Table(box=None, expand=True, padding=(0, 1), show_header=header, header_style="bold",
                  show_edge=False)
    for name, fixed_width, right in FIXED_COLUMNS:
        if compact and name not in COMPACT_COLUMNS:
            continue
        width = fixed_width
        if compact and name == "Time":
            width = 8
        if name == "#":
            width = max(width, numbers)
        table.add_column(name, width=width, justify="right" if right else "left", no_wrap=True)
    table.add_column("What changed", ratio=1, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


class RebalanceTimeline(ScrollView, can_focus=True):
    """Every assignment, revoke, loss, strategy change, restart, pause/resume and error, newest on top.

    Each entry is rendered to lines once (again after a resize): those on screen at once, the
    rest a few per frame, newest first, since 10,000 entries at ~0.7 ms each would stall the
    screen for seconds. The widget draws only the visible lines, found by bisecting the
    entries' line offsets, so a long session costs nothing per frame.
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
        #: Per entry, oldest first like `entries`: its lines at the current width (None: not yet
        #: re-rendered since a resize) and how many lines it takes (as last rendered).
        self._blocks: list[list[Strip] | None] = []
        self._heights: list[int] = []
        #: Where each entry starts, in lines, newest first (rebuilt after heights change).
        self._starts: list[int] | None = None
        #: Entries not rendered at the current width yet, oldest first (the newest are done first).
        self._stale: list[int] = []
        #: Entries render_line rendered on the spot: their line counts count from the next frame.
        self._deferred: list[int] = []
        self._header: Strip | None = None
        self._width = 0
        #: The `#` column's width the blocks were rendered with (it grows at event 1,000, 10,000, ...).
        self._numbers = 3
        #: Entries rendered so far, for tests that prove the timeline renders lazily.
        self.entries_rendered = 0
        #: `d`: a restore's figures per partition under its line.
        self.details = False

    def toggle_details(self) -> None:
        self.details = not self.details
        self._width = 0  # every entry again on the next flush, lazily, as after a resize
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
        if width <= 0:
            return  # not laid out yet
        changed = bool(self._deferred)
        for index in self._deferred:
            block = self._blocks[index] if index < len(self._blocks) else None
            if block is not None:
                self._heights[index] = len(block)
        self._deferred.clear()
        numbers = number_width(self._seq + len(self._pending))
        if width != self._width or numbers != self._numbers:
            # A new width, or a wider `#` column: every entry again, lazily, as after a resize.
            self._width, self._numbers = width, numbers
            self._header = self._lines_of(timeline_grid([], compact=self._compact, header=True, numbers=numbers))[0]
            self._blocks = [None] * len(self.entries)
            self._stale = list(range(len(self.entries)))
            changed = True
        if self._pending:
            # Rendered like the rest: the ones on screen at once, others a few per frame.
            for entry in self._pending:
                self._seq += 1
                self._stale.append(len(self.entries))
                self.entries.append((self._seq, entry))
                self._blocks.append(None)
                self._heights.append(1)
            self._pending.clear()
            excess = len(self.entries) - MAX_ENTRIES
            if excess > 0:
                del self.entries[:excess], self._blocks[:excess], self._heights[:excess]
                self._stale = [index - excess for index in self._stale if index >= excess]
            changed = True
        if changed:
            hint = ""
            if any(entry.restores for _, entry in self.entries):
                hint = " · d: hide details" if self.details else " · d: restore details"
            self.border_subtitle = f"{self._seq} events{hint}" if self._seq else ""
            self._starts = None
        # After a resize: the entries on screen now, then a few more per frame, newest first.
        if self._rerender_on_screen() + self._rerender_some(RERENDER_PER_FRAME) or changed:
            self.virtual_size = Size(width, self._line_starts()[-1] + 1)
            self.refresh()

    @property
    def _compact(self) -> bool:
        return self._width < COMPACT_BELOW

    def _line_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = list(accumulate(reversed(self._heights), initial=0))
        return self._starts

    def _rerender_on_screen(self) -> int:
        starts, count = self._line_starts(), len(self.entries)
        top = self.scroll_offset.y
        rendered = 0
        position = max(0, bisect_right(starts, top) - 1)
        while position < count and starts[position] < top + self.size.height:
            rendered += self._ensure_rendered(count - 1 - position)
            position += 1
        return rendered

    def _rerender_some(self, budget: int) -> int:
        rendered = 0
        while rendered < budget and self._stale:
            rendered += self._ensure_rendered(self._stale.pop())
        return rendered

    def _ensure_rendered(self, index: int) -> int:
        if self._blocks[index] is not None:
            return 0
        seq, entry = self.entries[index]
        block = self._blocks[index] = self._render_entry(seq, entry)
        if len(block) != self._heights[index]:
            self._heights[index] = len(block)
            self._starts = None
        return 1

    def _render_entry(self, seq: int, entry: TimelineEntry) -> list[Strip]:
        self.entries_rendered += 1
        row = entry_row(seq, entry, compact=self._compact, details=self.details)
        return self._lines_of(timeline_grid([row], compact=self._compact, numbers=self._numbers))

    def _lines_of(self, renderable: Table) -> list[Strip]:
        options = self.app.console.options.update(width=self._width, height=None)
        lines = self.app.console.render_lines(renderable, options, style=self.rich_style)
        return [Strip(line, self._width) for line in lines]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return (self._header or Strip.blank(width, base)).crop_extend(0, width, base)
        line = self.scroll_offset.y + y - 1
        starts = self._line_starts()
        if line < starts[-1]:
            position = bisect_right(starts, line) - 1
            index = len(self.entries) - 1 - position
            block = self._blocks[index]
            if block is None:  # scrolled to before a frame re-rendered it: this frame keeps its old height
                seq, entry = self.entries[index]
                block = self._blocks[index] = self._render_entry(seq, entry)
                self._deferred.append(index)
            offset = line - starts[position]
            strip = block[offset] if offset < len(block) else Strip.blank(width, base)
        elif line == 0:
            strip = Strip([Segment(EMPTY_MESSAGE, base + Style.parse(LABEL))])
        else:
            strip = Strip.blank(width, base)
        return strip.crop_extend(0, width, base)


EMPTY_MESSAGE = " No rebalance yet: start balance-tui in another terminal to watch partitions move."
