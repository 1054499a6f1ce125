"""The dashboard at bank scale: a million balance rows, 100 group members, 10,000 timeline events.

Only what is on screen is ever built. These fail if the table stops being virtual (it would
build a million lines), if the scrollbar stops spanning every row, or if sorting, filtering or
highlights stop covering the whole set; and if the group panel or the timeline render every
member or entry, or draw anything but the right lines wherever they are scrolled (compared
with rich's rendering of the whole). No timing is asserted: speed is the benchmark's
(scripts/bench dashboard).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import Iterable

from rich.console import Console

from balance_tui.core.rows import TimelineEntry
from balance_tui.messages import BalancesChanged
from balance_tui.ui.app import BalanceApp
from balance_tui.ui.widgets.balances import BalanceTable
from balance_tui.ui.widgets.group import group_renderable
from balance_tui.ui.widgets.timeline import entry_row, timeline_grid

from .fakes import FakeClock, FakeWorker, balance_row, customer_id, timeline_entry
from .test_app import SIZE, make_app, text_of, wait_until

MILLION = 1_000_000


def shown_customers(table: BalanceTable) -> list[str]:
    """Customer ids on the table's screen lines, top to bottom."""
    return [line.split()[0] for line in text_of(table).splitlines()[1:] if line.strip()]


def lines_of(widget) -> list[str]:
    """The widget's content lines as drawn now (inside its border)."""
    return [widget.render_line(y).text for y in range(widget.scrollable_content_region.height)]


async def fill_a_million(pilot, worker: FakeWorker, app: BalanceApp) -> BalanceTable:
    # Highest first, so that the order on screen is the table's own sort, not the arrival order.
    worker.post(BalancesChanged(tuple(balance_row(number) for number in range(MILLION - 1, -1, -1))))
    table = app.query_one(BalanceTable)
    await wait_until(pilot, lambda: table.virtual_size.height == MILLION + 1, "a million rows laid out", timeout=120)
    return table


async def test_rows_arriving_behind_the_scrollbar_keep_it_and_the_end_right() -> None:
    """Row counts that change behind a visible scrollbar skip the screen's layout: its span must follow."""
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(BalanceTable)
        total = 0
        for batch in range(1, 6):
            worker.post(BalancesChanged(tuple(balance_row(n) for n in range(total, total + 100 * batch))))
            total += 100 * batch
            await wait_until(pilot, lambda total=total: table.vertical_scrollbar.window_virtual_size == total + 1,
                             f"the scrollbar spanning {total} rows")
            assert table.virtual_size.height == total + 1
            assert table.max_scroll_y == total + 1 - table.scrollable_content_region.height
        await pilot.press("end")
        await wait_until(pilot, lambda: customer_id(total - 1) in shown_customers(table), "the last customer")
        worker.post(BalancesChanged(tuple(balance_row(n) for n in range(total, total + 50))))
        await wait_until(pilot, lambda: table.vertical_scrollbar.window_virtual_size == total + 51, "50 more")
        await pilot.press("end")
        await wait_until(pilot, lambda: shown_customers(table)[-1:] == [customer_id(total + 49)], "the new last one")


async def test_a_million_rows_build_only_the_lines_on_screen() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        table = await fill_a_million(pilot, worker, app)
        lines = table.size.height - 1  # at most this many row lines below the header
        await wait_until(pilot, lambda: shown_customers(table)[:1] == [customer_id(0)], "the first customer on top")
        assert shown_customers(table)[:10] == [customer_id(n) for n in range(10)]
        # The scrollbar spans every row: its virtual size is the row count (and the header).
        await wait_until(pilot, lambda: table.vertical_scrollbar.window_virtual_size == MILLION + 1, "the scrollbar")
        assert table.max_scroll_y == MILLION + 1 - table.scrollable_content_region.height > MILLION - 100

        table.rows_built = 0
        table.refresh()
        await wait_until(pilot, lambda: table.rows_built >= lines, "one frame drawn")
        await pilot.pause()
        assert table.rows_built <= 5 * lines, "only the lines on screen are built, not a million"

        await pilot.press("end")
        await wait_until(pilot, lambda: customer_id(MILLION - 1) in shown_customers(table), "the last customer")
        assert shown_customers(table)[-1] == customer_id(MILLION - 1)
        table.rows_built = 0
        table.refresh()
        await wait_until(pilot, lambda: table.rows_built >= lines - 1, "one frame drawn at the end")
        await pilot.pause()
        assert table.rows_built <= 5 * lines


async def test_filter_and_highlights_cover_a_million_rows() -> None:
    worker, clock = FakeWorker(), FakeClock()
    app = make_app(worker, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        table = await fill_a_million(pilot, worker, app)

        # The filter goes over every row, and its matches keep the table's order.
        await pilot.press("slash", *"99999")
        expected = [customer_id(n) for n in range(MILLION) if "99999" in customer_id(n)]
        await wait_until(pilot, lambda: table.visible_count == len(expected), "the matches of 99999")
        assert [table.book.row(key).customer_id for key in table.view] == expected
        await wait_until(pilot, lambda: table.vertical_scrollbar.window_virtual_size == len(expected) + 1,
                         "the scrollbar over the matches")
        await wait_until(pilot, lambda: shown_customers(table) == expected[:len(shown_customers(table))]
                         and shown_customers(table), "the first matches on screen")
        # New customers while filtered: the matching one takes its place in the order, the other stays out.
        worker.post(BalancesChanged((balance_row(1_999_999), balance_row(1_000_001))))
        await wait_until(pilot, lambda: table.visible_count == len(expected) + 1, "the new match")
        assert table.view[-1] == ("CUST-1999999", "EUR")
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.visible_count == MILLION + 2, "the filter cleared")

        # Once the first batch's highlight is over, a change on screen is highlighted and one off it is not.
        clock.advance(2)
        await wait_until(pilot, lambda: not table.book.has_recent, "the first highlight gone")
        changed_on_screen, changed_off_screen = balance_row(2, "-5.00", count=2), balance_row(500_000, count=2)
        worker.post(BalancesChanged((changed_on_screen, changed_off_screen)))
        key = ("CUST-000002", "EUR")
        await wait_until(pilot, lambda: "changed" in table.row_style_names(key), "the change highlighted")
        changed = table.get_component_rich_style("balance-table--changed", partial=True)
        await wait_until(pilot, lambda: "-5.00" in text_of(table), "the new balance drawn")
        line = next(y for y in range(table.size.height) if "CUST-000002" in table.render_line(y).text)
        assert all(segment.style is not None and segment.style.bgcolor == changed.bgcolor
                   for segment in table.render_line(line) if segment.text.strip())
        neighbour = table.render_line(line + 1)
        assert not any(segment.style is not None and segment.style.bgcolor == changed.bgcolor
                       for segment in neighbour if segment.text.strip())
        assert table.row_style_names(("CUST-500000", "EUR")) == {"changed"}  # remembered for when it scrolls in
        clock.advance(2)
        await wait_until(pilot, lambda: "changed" not in table.row_style_names(key), "the highlight faded")


def rendered_text(renderable, width: int) -> list[str]:
    """What rich draws of `renderable` in `width` cells, line by line, without trailing blanks."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    lines = console.render_lines(renderable, console.options.update(width=width, height=None))
    return ["".join(segment.text for segment in line)[:width].rstrip() for line in lines]


def drawn(widget) -> list[str]:
    return [line.rstrip() for line in lines_of(widget)]


async def wait_for_lines(pilot, widget, expected: list[str], what: str) -> None:
    """Wait until the widget draws `expected`; on a timeout, fail with the difference."""
    try:
        await wait_until(pilot, lambda: drawn(widget) == expected, what)
    except AssertionError:
        assert drawn(widget) == expected, what


def hundred_members(*, changed: bool = False) -> list:
    from .fakes import member_row

    # Names of different lengths, the longest far off screen: the name column is as wide as every
    # member's name, not just those shown. Six own partitions; one member silent (a note for it).
    members = [member_row(f"host-{n:08x}" + ("-canary" if n == 80 else ""), (n,) if n < 6 else (),
                          is_self=n == 0, silent=n == 70, status="Idle" if n % 9 == 0 else "Consuming")
               for n in range(100)]
    if changed:  # the next heartbeat round: one member paused, the last one gone
        members[50] = dataclasses.replace(members[50], status="Paused")
        del members[99]
    return members


async def test_a_hundred_members_render_only_the_ones_on_screen() -> None:
    from .fakes import group_changed

    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        group = group_changed(*hundred_members(), capacity="100 members, 6 partitions")
        worker.post(group)
        panel = app.group
        await wait_until(pilot, lambda: panel.virtual_size.height > 100, "a hundred members laid out")
        await wait_until(pilot, lambda: panel.allow_vertical_scroll, "the panel's scrollbar")
        width = panel.scrollable_content_region.width
        # The reference: the whole panel as one rich renderable (header, 100 members, notes).
        whole = rendered_text(group_renderable(group, width), width)
        assert len(whole) == panel.virtual_size.height  # the scrollbar spans every line
        assert panel.vertical_scrollbar.window_virtual_size == len(whole)
        notes = len(whole) - 101
        assert notes >= 3 and whole[-notes].startswith("⚠ host-00000046")  # the silent member's countdown

        def expected(offset: int) -> list[str]:
            """The header stays on top; below it the whole panel's lines from `offset` on, as many as it has.

            Its height is read each time: a panel of `height: auto` can be laid out again (grown to its
            max-height) after its scrollbar first appears."""
            return [whole[0], *whole[1 + offset:offset + panel.scrollable_content_region.height]]

        def first_screen() -> bool:  # grown to its height (more than its notes), and drawing the first members
            return panel.scrollable_content_region.height > 1 + notes and drawn(panel) == expected(0)

        try:
            await wait_until(pilot, first_screen, "the first members")
        except AssertionError:
            assert drawn(panel) == expected(0), "the first members"
            raise
        height = panel.scrollable_content_region.height
        assert "▸ host-00000000" in drawn(panel)[1]
        # Each layout renders one screen of members (a few layouts happen while the app settles), never 100.
        assert panel.members_rendered <= 3 * height, "only the members on screen go through rich"

        for offset in (1, 37, 60, panel.max_scroll_y // 2, panel.max_scroll_y):
            before = panel.members_rendered
            panel.scroll_to(y=offset, animate=False, immediate=True)
            assert panel.scroll_offset.y == offset
            await wait_for_lines(pilot, panel, expected(offset), f"the panel scrolled to {offset}")
            assert panel.members_rendered - before <= 2 * height, f"one screen rendered at {offset}, not 100"
        lines = drawn(panel)
        assert "Member" in lines[0] and "host-00000063" in lines[-1 - notes], "the last member above the notes"
        assert lines[-1].startswith("source: member heartbeats")
        assert "host-00000050-canary" in "\n".join(whole)

        # The next round, scrolled into the middle: the change shows where it is, the gone member goes.
        panel.scroll_to(y=45, animate=False, immediate=True)
        update = group_changed(*hundred_members(changed=True), capacity="99 members, 6 partitions")
        worker.post(update)
        whole = rendered_text(group_renderable(update, width), width)
        await wait_until(pilot, lambda: panel.group is update and panel.virtual_size.height == len(whole),
                         "the next round laid out")
        await wait_for_lines(pilot, panel, expected(45), "the next round at the same place")
        assert any("host-00000032" in line and "Paused" in line for line in drawn(panel))
        panel.scroll_end(animate=False, immediate=True)
        await wait_for_lines(pilot, panel, expected(len(whole) - height), "the end of the next round")
        assert "host-00000062" in drawn(panel)[-1 - notes] and "host-00000063" not in "\n".join(drawn(panel))


def timeline_events(numbers: Iterable[int]) -> list[TimelineEntry]:
    """Event n says `change n`; two of them say much more and wrap, so entries differ in height."""
    entries = []
    for n in numbers:
        detail = f"change {n}" + ("".join(f" word{i:02d}" for i in range(10)) if n in WRAPPING else "")
        if n % 3 == 1:
            entries.append(timeline_entry("revoked", n, partitions=(n % 6,), detail=detail))
        else:
            entries.append(timeline_entry("strategy_changed", n, detail=detail))
    return entries


WRAPPING = {5000, 4998}
EVENTS = 10_000


async def test_ten_thousand_timeline_events_render_only_what_is_shown(monkeypatch) -> None:
    from balance_tui.messages import TimelineEvent
    from balance_tui.ui.widgets import timeline as timeline_module

    # Nothing rendered ahead of the screen, so what is counted does not depend on how many frames pass.
    monkeypatch.setattr(timeline_module, "RERENDER_PER_FRAME", 0)
    worker = FakeWorker()
    app = make_app(worker)
    events = timeline_events(range(EVENTS))
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.timeline
        worker.post(*(TimelineEvent(entry) for entry in events))
        await wait_until(pilot, lambda: len(timeline.entries) == EVENTS, "ten thousand entries")
        await wait_until(pilot, lambda: timeline.allow_vertical_scroll, "the timeline's scrollbar")
        width, height = timeline.scrollable_content_region.width, timeline.scrollable_content_region.height
        assert width >= timeline_module.COMPACT_BELOW

        def reference(numbers: Iterable[int], *, compact: bool = False) -> list[str]:
            """Events `numbers` (event n is number n + 1) rendered as one table, all five digits of `#`."""
            rows = [entry_row(n + 1, events[n], compact=compact) for n in numbers]
            return rendered_text(timeline_grid(rows, compact=compact, numbers=5), width)

        header = rendered_text(timeline_grid([], header=True, numbers=5), width)
        assert len(header) == 1
        await wait_for_lines(pilot, timeline, header + reference(range(9999, 9999 - height + 1, -1)),
                             "the newest on top")
        assert drawn(timeline)[1].split()[:3] == ["10000", "00:46:39.000", "STRATEGY"], "all the digits of 10000"
        assert timeline.entries_rendered <= 2 * height, "only the entries on screen are rendered"
        assert timeline.virtual_size.height == EVENTS + 1  # one line each (and the header)
        assert timeline.vertical_scrollbar.window_virtual_size == EVENTS + 1
        assert timeline.border_subtitle == "10000 events"

        # Into the middle: event 5001 on top, then two entries of two lines each, measured as they come on screen.
        assert len(reference([5000])) == len(reference([4998])) == 2
        before = timeline.entries_rendered
        timeline.scroll_to(y=EVENTS - 1 - 5001, animate=False, immediate=True)
        await wait_for_lines(pilot, timeline, header + reference(range(5001, 4990, -1))[:height - 1],
                             "event 5001 on top, the wrapped ones whole")
        await wait_until(pilot, lambda: timeline.virtual_size.height == EVENTS + 1 + 2, "their second lines counted")
        assert timeline.entries_rendered - before <= 2 * height

        # The bottom: the oldest last.
        before = timeline.entries_rendered
        timeline.scroll_end(animate=False, immediate=True)
        assert timeline.scroll_offset.y == EVENTS + 2 + 1 - height
        await wait_for_lines(pilot, timeline, header + reference(range(height - 2, -1, -1)), "the oldest at the bottom")
        assert drawn(timeline)[-1].endswith("change 0")
        assert timeline.entries_rendered - before <= 2 * height

        # Beyond MAX_ENTRIES the oldest go: the same screen at the bottom now ends five events later.
        assert timeline_module.MAX_ENTRIES == EVENTS
        events += timeline_events(range(EVENTS, EVENTS + 5))
        worker.post(*(TimelineEvent(entry) for entry in events[EVENTS:]))
        await wait_until(pilot, lambda: timeline.entries[-1][0] == EVENTS + 5, "five more events")
        assert len(timeline.entries) == EVENTS and timeline.entries[0][0] == 6
        assert timeline.border_subtitle == "10005 events"
        await wait_for_lines(pilot, timeline, header + reference(range(height + 3, 4, -1)), "the five oldest gone")
        assert timeline.virtual_size.height == EVENTS + 1 + 2

        # A resize renders again what is on screen, not every entry: compact below 100 columns.
        before = timeline.entries_rendered
        await pilot.resize_terminal(100, 40)
        await wait_until(pilot, lambda: timeline.scrollable_content_region.width < width, "the new width")
        width, height = timeline.scrollable_content_region.width, timeline.scrollable_content_region.height
        assert width < timeline_module.COMPACT_BELOW
        timeline.scroll_home(animate=False, immediate=True)
        header = rendered_text(timeline_grid([], header=True, compact=True, numbers=5), width)
        await wait_for_lines(pilot, timeline, header + reference(range(10004, 10004 - height + 1, -1), compact=True),
                             "the newest at the new width")
        assert timeline.entries_rendered - before <= 4 * height


async def test_batches_are_taken_in_slices_in_order(monkeypatch) -> None:
    from balance_tui.ui.widgets import balances

    monkeypatch.setattr(balances, "TAKE_SLICE_SECONDS", 0.0)  # yield after every slice
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(BalanceTable)
        steps = []
        take_some = table._take_some
        monkeypatch.setattr(table, "_take_some", lambda: (steps.append(len(table.book)), take_some())[-1])
        first = BalancesChanged(tuple(balance_row(number) for number in range(3_000)))
        gone = BalancesChanged((), removed_partitions=(0,))
        back = BalancesChanged((balance_row(6, "7.00", count=2),))
        worker.post(first, gone, back)
        await wait_until(pilot, back.applied.is_set, "every batch taken")
        assert first.applied.is_set() and gone.applied.is_set()
        assert len(steps) > 3_000 // balances.TAKE_SLICE_ROWS, "a slice at a time, not the whole batch"
        assert {key[0] for key in table.book.rows if table.book.row(key).partition == 0} == {"CUST-000006"}
        assert len(table.book) == 2_500 + 1


async def test_other_tasks_run_between_two_slices_of_a_batch(monkeypatch) -> None:
    """A key waits for one slice of a batch, not for the batch: the event loop turns between slices."""
    from balance_tui.ui.widgets import balances

    monkeypatch.setattr(balances, "TAKE_SLICE_SECONDS", 0.0)
    monkeypatch.setattr(balances, "TAKE_SLICE_ROWS", 10)
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE):
        table = app.query_one(BalanceTable)
        batch = BalancesChanged(tuple(balance_row(number) for number in range(2_000)))
        worker.post(batch)
        seen = []
        deadline = time.monotonic() + 30
        while not batch.applied.is_set():  # this coroutine's turns, between the table's slices
            assert time.monotonic() < deadline, "the batch never taken in"
            seen.append(len(table.book))
            await asyncio.sleep(0)
        assert len({count for count in seen if 0 < count < 2_000}) > 10, "turns while the batch was taken in"


async def test_a_revoke_is_taken_in_steps_with_every_shown_row_held(monkeypatch) -> None:
    """A revoke of many rows waits for the app between its steps, and the table stays drawable meanwhile."""
    from balance_tui.ui.widgets import balance_book, balances

    monkeypatch.setattr(balances, "TAKE_SLICE_SECONDS", 0.0)
    monkeypatch.setattr(balance_book, "REMOVAL_ROWS_PER_STEP", 50)
    monkeypatch.setattr(balance_book, "REMOVAL_BLOCKS_PER_STEP", 1)
    monkeypatch.setattr(balance_book, "BLOCK", 16)
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(BalanceTable)
        rows = BalancesChanged(tuple(balance_row(number) for number in range(3_000)))
        worker.post(rows)
        await wait_until(pilot, rows.applied.is_set, "the rows taken in")
        revoke = BalancesChanged((), removed_partitions=(0, 1, 2))
        worker.post(revoke)
        seen = []
        deadline = time.monotonic() + 30
        while not revoke.applied.is_set():  # this coroutine's turns, between the revoke's steps
            assert time.monotonic() < deadline, "the revoke never done"
            held = table.view.window(0, len(table.view))
            assert all(key in table.book.rows for key in held), "a shown key without its row"
            seen.append((len(table.book.rows), len(held)))
            await asyncio.sleep(0)
        assert len(table.book) == 1_500 and {table.book.row(key).partition for key in table.book.rows} == {3, 4, 5}
        assert len(table.view) == 1_500
        assert len({held for _, held in seen if 1_500 < held < 3_000}) > 5, "turns while the index shrank"
        assert len({count for count, _ in seen if 1_500 < count < 3_000}) > 5, "turns while the rows went"
