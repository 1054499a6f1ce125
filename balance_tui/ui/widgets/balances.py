"""The balances table: one line per customer and currency, virtual so a million customers stay instant.

`BalanceBook` (balance_book.py) holds the rows and a sorted, blocked index over them.
`BalanceTable` is a Line API widget: it renders only the lines on screen, straight from that
index, so the cost of a frame does not grow with the number of customers; its scrollbar
spans every row (virtual height = rows + the header). A DataTable was measured first:
100,000 rows in 50 batches with a sort per batch took 32 s, and removing a revoked
partition's rows one by one never finished.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import zip_longest
from typing import ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from balance_tui.core.rows import BalanceRow
from balance_tui.core.safe_text import visible
from balance_tui.ui import format as fmt
from balance_tui.ui.widgets.balance_book import (
    HIGHLIGHT_SECONDS,
    BalanceBook,
    Filtered,
    Key,
    SortedIndex,
    natural_prefix,
)

__all__ = ["HIGHLIGHT_SECONDS", "BalanceBook", "BalanceTable", "BalancesPanel", "FilterInput", "natural_prefix"]

#: A batch is taken in slices of this many rows, yielding to keys and frames after about this long.
TAKE_SLICE_ROWS = 512
TAKE_SLICE_SECONDS = 0.008
#: How often a held intake looks again whether the key's answer is drawn.
ROOM_POLL_SECONDS = 0.005
#: Index blocks whose filter digests are made per frame (about 25 µs each), so a filter
#: typed after a burst of new customers finds most of them made already.
TIDY_BLOCKS_PER_FRAME = 8


@dataclass(frozen=True)
class Column:
    label: str
    width: int
    right: bool = False
    gap: int = 2


def columns_for(customer_width: int, spare: int) -> tuple[Column, ...]:
    """Fixed column widths that fit 62 cells; spare room goes to the transaction id (GUIDs are 36)."""
    return (
        Column("Customer", customer_width, gap=1),
        Column("Balance", 13, right=True, gap=1),
        Column("Cur", 3, gap=1),
        Column("Tx", 6, right=True, gap=2),
        Column("Last tx", 8 + max(0, min(spare, 28)), gap=2),
        Column("Updated", 8, gap=1),
        Column("P", 3, right=True, gap=0),
    )


def _line_width(columns: tuple[Column, ...]) -> int:
    return 1 + sum(column.width + column.gap for column in columns)


def _cell(text: str, column: Column) -> str:
    if len(text) > column.width:
        # Ids share prefixes (`TX-2026-…`, `CUST-0…`): the end tells them apart.
        text = fmt.ellipsize_left(text, column.width)
    text = text.rjust(column.width) if column.right else text.ljust(column.width)
    return set_cell_size(text, column.width)


def set_virtual_size(table: ScrollView, size: Size) -> None:
    """A new virtual size; when only the number of rows changes behind a scrollbar that stays, without a layout.

    `virtual_size` is a layout reactive: each new row count re-laid out the whole screen,
    several times a second while customers arrive (docs/performance.md). With the scrollbar
    shown before and after, nothing on screen moves but the scrollbar's thumb.
    """
    old, height = table.virtual_size, table.scrollable_content_region.height
    if (size.width == old.width and table.show_vertical_scrollbar
            and old.height > height and size.height > height):
        table.set_reactive(ScrollView.virtual_size, size)
        table._scroll_update(size)  # the scrollbar's span and the scroll limits
        return
    table.virtual_size = size


class PaintedLines:
    """What the table's row lines showed when last painted, to repaint only the lines that changed."""

    def __init__(self) -> None:
        self._scroll_y: int | None = None
        self._lines: list[tuple[Key, BalanceRow | None, bool]] = []

    def changed_lines(self, scroll_y: int, lines: list[tuple[Key, BalanceRow | None, bool]]) -> list[int] | None:
        """The widget lines (the header is line 0) whose (key, row, highlighted) differ; None: all of them."""
        before, self._lines = self._lines, lines
        if scroll_y != self._scroll_y or not before or not lines:
            self._scroll_y = scroll_y
            return None  # scrolled, or the empty table's message: the whole table
        return [y for y, (was, now) in enumerate(zip_longest(before, lines), start=1) if was != now]


class BalanceTable(ScrollView, can_focus=True):
    """Renders only the visible lines of the (filtered) sorted index; the header line stays on top."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "balance-table--header",
        "balance-table--negative",
        "balance-table--changed",
        "balance-table--dim",
        "balance-table--empty",
    }

    DEFAULT_CSS = """
    BalanceTable {
        background: $surface;
        scrollbar-size-vertical: 1;
        & > .balance-table--header { text-style: bold; color: $text-accent; background: $panel; }
        & > .balance-table--negative { color: #ff5f5f; text-style: bold; }
        & > .balance-table--changed { background: #3a3a00; }
        & > .balance-table--dim { color: $text-muted; }
        & > .balance-table--empty { color: $text-muted; text-style: italic; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = BalanceBook()
        self.view: SortedIndex | Filtered = self.book.order
        self.filter_text = ""
        self._view_membership = -1
        self._now: datetime | None = None
        self._dirty = True
        self._columns = columns_for(8, 0)
        self._styles: dict[str, Style] = {}
        self._top_key: Key | None = None
        #: The keys on screen, fetched once per (scroll position, change): render_line asks per line.
        self._window: tuple[tuple[int, int, int], list[Key]] | None = None
        self._painted = PaintedLines()
        self._version = 0
        #: Row lines built, for tests that prove only the visible ones are.
        self.rows_built = 0
        #: Batches not fully taken in yet: [rows, removed partitions, time, on_taken]; of the first, its
        #: removal under way (`BalanceBook.removal`) and how many rows are taken so far.
        self._intake: deque[list] = deque()
        self._removal: Iterator[None] | None = None
        self._taken = 0
        self._room_until = 0.0

    # -- data in (cheap, on every message) --------------------------------------------

    def apply_batch(self, rows: Sequence[BalanceRow], removed_partitions: Iterable[int], now: datetime,
                    on_taken: Callable[[], object] | None = None) -> None:
        """Take a batch in, in slices of about TAKE_SLICE_SECONDS; `on_taken` once all of it is in.

        At a million customers a batch can take 40-150 ms (measured); between two slices the app
        answers keys and draws. Batches are taken in the order they came.
        """
        self._intake.append([rows, tuple(removed_partitions), now, on_taken])
        if len(self._intake) == 1:
            self._take_some()

    def make_room(self, seconds: float) -> None:
        """Take no batch in for up to `seconds` while the app answers a key; 0 lets the intake go on.

        Answering a key goes through several of the app's messages (binding, screen, mount,
        layout, draw), and a slice of a batch could run between each two of them.
        """
        self._room_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def _take_some(self) -> None:
        if self._room_until > time.monotonic():
            self.set_timer(ROOM_POLL_SECONDS, self._take_some)
            return
        deadline = time.perf_counter() + TAKE_SLICE_SECONDS
        intake = self._intake
        while intake:
            batch = intake[0]
            rows, removed, now, on_taken = batch
            if removed:
                # First, so a partition given back keeps the rows after it; in steps (BalanceBook.removal).
                self._removal = self._removal or self.book.removal(removed)
                for _ in self._removal:
                    if time.perf_counter() > deadline:
                        self._take_later()
                        return
                self._removal = None
                batch[1] = ()
            while self._taken < len(rows):
                end = min(len(rows), self._taken + TAKE_SLICE_ROWS)
                self.book.apply(rows[self._taken:end], (), now)  # a filtered view follows the index by itself
                self._taken = end
                if time.perf_counter() > deadline and (end < len(rows) or len(intake) > 1):
                    self._take_later()
                    return
            intake.popleft()
            self._taken = 0
            if on_taken is not None:
                on_taken()
        self._changed()

    def _take_later(self) -> None:
        self._changed()
        # Through the event loop: with call_later alone every slice ran before the app's next message
        # (a pump takes its queue's next without yielding): a key waited for all (docs/performance.md).
        asyncio.get_running_loop().call_soon(self.call_later, self._take_some)

    def _changed(self) -> None:
        self._dirty = True
        self._version += 1

    def set_filter(self, text: str) -> None:
        """Filter at once (one pass over the search texts), not at the next tick: typing must answer."""
        needle = text.strip().casefold()
        if needle == self.filter_text:
            return
        anchor = self._anchor()
        self.filter_text = needle
        if needle:
            self.view = self.book.order.filtered(needle)
        else:
            self.book.order.filtered("")  # drops the match flags, which inserts would keep up for nobody
            self.view = self.book.order
        self._version += 1
        self._layout(anchor, repaint_all=True)

    # -- drawing (on the app's tick) ---------------------------------------------------

    def flush(self, now: datetime) -> None:
        """Bring the view up to date and repaint the visible lines if anything there changed."""
        self._now = now
        expired = self.book.expire(now)
        self.book.order.tidy(TIDY_BLOCKS_PER_FRAME)
        # Highlights change only with a batch (dirty) or when one goes out (expired): a quiet
        # table is not drawn again on every tick just because some rows are still highlighted.
        if not (self._dirty or expired):
            return
        self._dirty = False
        anchor = None
        if self.book.membership != self._view_membership:
            anchor = self._anchor()
            self._view_membership = self.book.membership
        self._layout(anchor)

    def _anchor(self) -> Key | None:
        """The key drawn on top, when scrolled: rows coming and going above it must not move it.

        None while a scroll is animated: holding the top row would stop the scroll where it is.
        """
        if self.scroll_offset.y <= 0 or self.app.animator.is_being_animated(self, "scroll_y"):
            return None
        return self._top_key

    def _layout(self, anchor: Key | None, *, repaint_all: bool = False) -> None:
        columns = columns_for(self.book.longest_customer, self._spare_width())
        repaint_all = repaint_all or columns != self._columns
        self._columns = columns
        set_virtual_size(self, Size(_line_width(self._columns), len(self.view) + 1))
        if anchor is not None:
            self.scroll_to(y=self.view.position(self.book.sort_string(anchor)), animate=False, immediate=True)
        self._version += 1
        scroll_y = self.scroll_offset.y
        changed = self._painted.changed_lines(scroll_y, [
            (key, self.book.rows.get(key), "changed" in self.row_style_names(key))
            for key in self._keys_on_screen(scroll_y)])
        if repaint_all or changed is None:
            self.refresh()
            return
        # At a million customers the lines on screen rarely change between two frames, and
        # repainting all of them was most of a frame (docs/performance.md).
        for line in changed:
            self.refresh_line(scroll_y + line)

    def _spare_width(self) -> int:
        return self.scrollable_content_region.width - _line_width(columns_for(self.book.longest_customer, 0))

    @property
    def visible_count(self) -> int:
        return len(self.view)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"balance-table--{name}", partial=True)
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        pad = self.rich_style
        if y == 0:
            strip, pad = self._header_strip(), pad + self._style("header")
        else:
            index = scroll_y + y - 1
            keys = self._keys_on_screen(scroll_y)
            if y - 1 < len(keys):
                key = keys[y - 1]
                if y == 1:
                    self._top_key = key
                strip = self._row_strip(key)
                if "changed" in self.row_style_names(key):
                    pad += self._style("changed")  # the highlight spans the whole line
            elif index == 0:
                strip = self._empty_strip()
            else:
                strip = Strip.blank(width, pad)
        return strip.crop_extend(scroll_x, scroll_x + width, pad)

    def _keys_on_screen(self, scroll_y: int) -> list[Key]:
        state = (scroll_y, self.size.height, self._version)
        if self._window is None or self._window[0] != state:
            self._window = (state, self.view.window(scroll_y, scroll_y + max(0, self.size.height - 1)))
        return self._window[1]

    def _header_strip(self) -> Strip:
        style = self.rich_style + self._style("header")
        text = " " + "".join(_cell(column.label, column) + " " * column.gap for column in self._columns)
        return Strip([Segment(text, style)])

    def _empty_strip(self) -> Strip:
        if self.filter_text:
            message = f" No customer matches “{visible(self.filter_text)}”"
        else:
            message = " Waiting for balances from this member's partitions…"
        return Strip([Segment(message, self.rich_style + self._style("empty"))])

    def row_style_names(self, key: Key) -> set[str]:
        """Component classes that apply to a row (also what tests check)."""
        names = set()
        row = self.book.rows.get(key)
        if row is not None and row.balance < 0:
            names.add("negative")
        if self._now is not None and self.book.is_fresh(key, self._now):
            names.add("changed")
        return names

    def _row_strip(self, key: Key) -> Strip:
        row = self.book.rows.get(key)
        if row is None:  # dropped since the last flush; the next one rebuilds the view
            return Strip.blank(0)
        self.rows_built += 1
        names = self.row_style_names(key)
        base = self.rich_style
        if "changed" in names:
            base += self._style("changed")
        dim = base + self._style("dim")
        money = base + self._style("negative") if "negative" in names else base + Style(bold=True)
        return row_line(row, self._columns, base, dim, money)


def row_line(row: BalanceRow, columns: tuple[Column, ...], base: Style, dim: Style, money: Style) -> Strip:
    """One row's line: a segment per cell, each cut or padded to its column."""
    customer_id, currency = row.customer_id, row.currency
    balance_value, transaction_count, last_updated = row.balance, row.transaction_count, row.last_updated
    last_transaction_id, partition_number = row.last_transaction_id, row.partition
    customer, balance, currency_column, count, last_tx, updated, partition = columns
    cells = (
        (" ", base, None),
        (visible(customer_id), base, customer),
        (fmt.money(balance_value), money, balance),
        (visible(currency), dim, currency_column),
        (f"{transaction_count:,}", base, count),
        (visible(last_transaction_id), dim, last_tx),
        (fmt.clock_time(last_updated), dim, updated),
        (fmt.DASH if partition_number is None else str(partition_number), dim, partition),
    )
    segments = []
    for text, style, column in cells:
        if column is None:
            segments.append(Segment(text, style))
        else:
            segments.append(Segment(_cell(text, column), style))
            segments.append(Segment(" " * column.gap, base))
    return Strip(segments)


class FilterInput(Input):
    """The `/` filter: shown on demand; Escape (an app binding) clears and hides it."""


class BalancesPanel(Vertical):
    """The filter input above the balance table, framed with counts in the border."""

    DEFAULT_CSS = """
    BalancesPanel {
        FilterInput { display: none; margin: 0 0 0 1; background: $panel; }
        &.-filtering FilterInput { display: block; }
        BalanceTable { height: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.filter_input = FilterInput(
            placeholder="filter customers (Enter keeps it, Escape clears)", id="balance-filter", compact=True
        )
        self.table = BalanceTable(id="balance-table")
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        yield self.filter_input
        yield self.table

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    def clear_filter(self) -> None:
        if not self.has_class("-filtering"):
            return  # Escape with no filter open must not pull the focus here
        self.remove_class("-filtering")
        self.filter_input.value = ""
        self.table.set_filter("")
        self.table.focus()

    @on(Input.Changed, "#balance-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#balance-filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    def flush(self, now: datetime) -> None:
        table = self.table
        table.flush(now)
        total = len(table.book)
        if table.filter_text:
            subtitle = f"{table.visible_count:,} of {total:,} match “{visible(table.filter_text)}”"
        else:
            subtitle = f"{total:,} rows"
        if subtitle != self._subtitle:  # setting it repaints the frame, even when unchanged
            self._subtitle = subtitle
            self.border_subtitle = Content(subtitle)  # plain text: what was typed is not markup
