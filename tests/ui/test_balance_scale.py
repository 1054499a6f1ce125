"""The balance table at bank scale: a million rows, of which only the screen is ever built.

These fail if the table stops being virtual (it would build a million lines), if the
scrollbar stops spanning every row, or if sorting, filtering or highlights stop covering the
whole set. No timing is asserted: speed is the benchmark's (scripts/bench dashboard).
"""

from __future__ import annotations

from balance_tui.messages import BalancesChanged
from balance_tui.ui.app import BalanceApp
from balance_tui.ui.widgets.balances import BalanceTable

from .fakes import FakeClock, FakeWorker, balance_row, customer_id
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


async def test_a_hundred_members_render_only_the_ones_on_screen() -> None:
    from .fakes import group_changed, member_row

    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        members = [member_row(f"host-{n:08x}", (n,) if n < 6 else (), is_self=n == 0) for n in range(100)]
        worker.post(group_changed(*members, capacity="100 members, 6 partitions"))
        panel = app.group
        await wait_until(pilot, lambda: panel.virtual_size.height > 100, "a hundred members laid out")
        notes = panel.virtual_size.height - 101  # the header, 100 members, then the notes
        assert notes >= 2
        await wait_until(pilot, lambda: "host-00000001" in text_of(panel), "the first members drawn")
        # Each layout renders one screen of members (a few layouts happen while the app settles), never 100.
        assert panel.members_rendered <= 3 * panel.size.height, "only the members on screen go through rich"
        shown = [line for line in text_of(panel).splitlines() if "Group" not in line]  # not the border
        assert "Member" in shown[0] and "▸ host-00000000" in shown[1]
        panel.scroll_end(animate=False, immediate=True)
        await wait_until(pilot, lambda: "host-00000063" in text_of(panel), "the last member after scrolling")
        lines = lines_of(panel)
        assert "Member" in lines[0] and "host-00000063" in lines[-3], "the header stays on top"
        assert lines[-1].startswith("source: member heartbeats")
        assert panel.members_rendered <= 6 * panel.size.height


async def test_ten_thousand_timeline_events_render_only_what_is_shown(monkeypatch) -> None:
    from balance_tui.messages import TimelineEvent
    from balance_tui.ui.widgets import timeline as timeline_module

    from .fakes import timeline_entry

    # Nothing rendered ahead of the screen, so what is counted does not depend on how many frames pass.
    monkeypatch.setattr(timeline_module, "RERENDER_PER_FRAME", 0)
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.timeline
        worker.post(*(TimelineEvent(timeline_entry("strategy_changed", n, detail=f"change {n}"))
                      for n in range(10_000)))
        await wait_until(pilot, lambda: len(timeline.entries) == 10_000, "ten thousand entries")
        await wait_until(pilot, lambda: "change 9999" in text_of(timeline), "the newest on top")
        screen = timeline.size.height
        assert timeline.entries_rendered <= 2 * screen, "only the entries on screen are rendered"
        assert timeline.virtual_size.height == 10_001  # one line each (and the header)
        timeline.scroll_end(animate=False, immediate=True)
        await wait_until(pilot, lambda: lines_of(timeline)[-1].rstrip().endswith("change 0"), "the oldest at the bottom")
        assert timeline.entries_rendered <= 4 * screen
        # A resize renders again what is on screen, not every entry.
        before = timeline.entries_rendered
        await pilot.resize_terminal(100, 40)
        await wait_until(pilot, lambda: timeline.entries_rendered > before, "rendered at the new width")
        await wait_until(pilot, lambda: lines_of(timeline)[-1].rstrip().endswith("change 0"), "still at the bottom")
        assert timeline.entries_rendered - before <= 4 * timeline.size.height


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
        await wait_until(pilot, lambda: back.applied.is_set(), "every batch taken")
        assert first.applied.is_set() and gone.applied.is_set()
        assert len(steps) > 3_000 // balances.TAKE_SLICE_ROWS, "a slice at a time, not the whole batch"
        assert {key[0] for key in table.book.rows if table.book.row(key).partition == 0} == {"CUST-000006"}
        assert len(table.book) == 2_500 + 1
