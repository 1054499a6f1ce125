"""Widget logic without a running app: the balance book, formatting and row cells."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style
from rich.text import Text

from balance_tui.core.rows import BalanceRow, PartitionRow, PartitionState
from balance_tui.ui import format as fmt
from balance_tui.ui.widgets import balance_book
from balance_tui.ui.widgets.balances import BalanceBook, natural_prefix
from balance_tui.ui.widgets.partitions import cell_segment, partition_cells
from balance_tui.ui.widgets.timeline import entry_row

from .fakes import T0, balance_row, group_changed, lag_view, member_row, timeline_entry

# A batch: rows of (customer number, currency, partition) with a balance; or a removal of partitions.
# A row's partition is mostly its customer's usual one; sometimes another (the producer keyed it anew).
customers = st.integers(min_value=0, max_value=300)
partitions = st.one_of(st.none(), st.none(), st.integers(min_value=0, max_value=5))
batches = st.lists(
    st.one_of(
        st.tuples(st.just("rows"), st.lists(st.tuples(customers, st.sampled_from(["EUR", "USD"]), partitions),
                                            max_size=150)),
        st.tuples(st.just("remove"), st.lists(st.integers(min_value=0, max_value=5), max_size=3)),
    ),
    max_size=12,
)


# Filters: in no text, in every text's common prefix, in some texts of a block, in one.
needles = st.sampled_from(["", "1", "00002", "eur", "c", "cust-", "cust-0001", "t-00010", "02"])


@settings(max_examples=100, deadline=None)
@given(batches, needles, st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=3))
def test_book_matches_a_plain_dict_and_stays_sorted(operations: list[tuple[str, list]], needle: str,
                                                    filter_from: int, tidy_per_step: int) -> None:
    # Blocks of 4 keys, so that a few hundred rows split, shrink and drop blocks.
    with patch.object(balance_book, "BLOCK", 4), patch.object(balance_book, "REMOVAL_ROWS_PER_STEP", 7), \
            patch.object(balance_book, "REMOVAL_BLOCKS_PER_STEP", 1):
        book, expected = BalanceBook(), {}
        view = book.order
        for step, (kind, payload) in enumerate(operations):
            book.order.tidy(tidy_per_step)  # as frames do: some blocks compacted, others not
            if step == filter_from:
                view = book.order.filtered(needle) if needle else book.order
            elif step > filter_from and needle and step % 3 == 0:
                # Typed again, after the inserts and removals since: a fresh pass over the blocks.
                book.order.filtered(needle[:-1] or "x")
                view = book.order.filtered(needle)
            if kind == "rows":
                rows = [balance_row(number, str(step), currency=currency, count=step, partition=partition)
                        for number, currency, partition in payload]
                book.apply(rows, (), T0)
                expected.update({(row.customer_id, row.currency): row for row in rows})
            else:
                # In steps of 7 rows or one block (as the table takes a revoke): between two, the index
                # stays sorted and whole and each of its keys has its row; a filter typed meanwhile holds.
                toggled = False
                for done, _ in enumerate(book.removal(payload), start=1):
                    held = list(book.order)
                    assert held == sorted(held, key=book.sort_string) and len(book.order) == len(held)
                    assert all(key in book.rows for key in held)
                    if done == 3 and needle:  # the filter typed, or cleared, between two steps
                        toggled = True
                        view = book.order.filtered(needle) if view is book.order else book.order.filtered("")
                        view = book.order if not book.order.needle else view
                    if view is not book.order:
                        assert list(view) == [key for key in held if needle in key[0].casefold()]
                if toggled:  # back as it was before the steps
                    view = book.order.filtered(needle) if step >= filter_from else book.order.filtered("")
                    view = book.order if not book.order.needle else view
                expected = {key: row for key, row in expected.items() if row.partition not in payload}
            assert {key: book.row(key) for key in book.rows} == expected
            in_order = sorted(expected, key=book.sort_string)
            assert list(book.order) == in_order and len(book.order) == len(in_order)
            shown = [key for key in in_order if view is book.order or needle in key[0].casefold()]
            assert list(view) == shown and len(view) == len(shown)
            assert [view[index] for index in range(len(shown))] == shown
            assert view[1:6] == shown[1:6] and view.window(len(shown) - 3, len(shown) + 5) == shown[-3:]
            for key in shown[::7]:
                assert view.position(book.sort_string(key)) == shown.index(key)


def test_every_needle_finds_exactly_the_ids_that_hold_it() -> None:
    # Blocks of 16 ids in a row: needles in every id (the blocks' common prefix), in none, in every
    # id of some blocks, in a few ids of a block, across the end of one id and the start of the next.
    with patch.object(balance_book, "BLOCK", 16):
        book = BalanceBook()
        book.apply([balance_row(number) for number in range(1000)], (), T0)
        book.apply([balance_row(number) for number in range(1000, 1400, 3)], (), T0)  # inserted, not compacted
        texts = {key: key[0].casefold() for key in book.rows}
        in_order = sorted(book.rows, key=book.sort_string)
        for needle in ["c", "cust-", "cust-0", "cust-0001", "t-00012", "12", "9", "0099", "000\ncust", "x", "-00139"]:
            shown = [key for key in in_order if needle in texts[key]]
            assert list(book.order.filtered(needle)) == shown, needle
            assert len(book.order.filtered(needle)) == len(shown)


def test_a_blocks_common_prefix_is_what_every_text_starts_with() -> None:
    # Not only the first and the last in sort order: natural order puts cust-12 .. cust-19 before cust-120.
    for texts in (["cust-12", "cust-13", "cust-120"], ["cust-1", "cust-10"], ["ab", ""], ["same", "same"], ["x"]):
        prefix = balance_book._common_prefix(texts)
        assert all(text.startswith(prefix) for text in texts)
        assert len({text[:len(prefix) + 1] for text in texts}) > 1 or prefix in texts, texts


def test_a_filtered_window_expands_only_the_blocks_that_hold_matches() -> None:
    # Two matches far apart, hundreds of blocks without any between them (`cust-99999` at a
    # million customers): the blocks in between must not be expanded from their flags.
    with patch.object(balance_book, "BLOCK", 4):
        book = BalanceBook()
        book.apply([balance_row(number) for number in range(2000)], (), T0)
        book.apply([balance_row(100_000)], (), T0)  # after every other
        view = book.order.filtered("00000")  # CUST-000000 to CUST-000009, and CUST-100000
        expanded = []
        original = balance_book._LazyCompress.__getitem__

        def counting(self, block: int) -> list:
            expanded.append(block)
            return original(self, block)

        with patch.object(balance_book._LazyCompress, "__getitem__", counting):
            window = view.window(0, 40)
    assert window == [(f"CUST-{number:06d}", "EUR") for number in (*range(10), 100_000)]
    assert len(expanded) <= 4, expanded  # the blocks of the first ten, and the last one


def test_a_revoke_drops_keys_by_identity_and_by_value_when_the_index_holds_a_copy() -> None:
    with patch.object(balance_book, "BLOCK", 4):
        book = BalanceBook()
        book.apply([balance_row(number, partition=number % 3) for number in range(60)], (), T0)
        book.apply((), [0], T0)  # by the keys' identities
        assert list(book.order) == sorted(book.rows, key=book.sort_string) and len(book.rows) == 40
        # An equal key that is not the dict's own object (no code path makes one today): found by value.
        first = book.order._keys[0][0]
        book.order._keys[0][0] = (first[0] + "x")[:-1], first[1]
        assert book.order._keys[0][0] is not first
        book.apply((), [book.row(first).partition], T0)
        assert first not in book.rows
        assert list(book.order) == sorted(book.rows, key=book.sort_string) and len(book.rows) == 20


def test_one_batch_and_one_by_one_agree() -> None:
    many = [balance_row(number) for number in range(300, 0, -1)]
    with patch.object(balance_book, "BLOCK", 8):
        bulk, single = BalanceBook(), BalanceBook()
        bulk.apply(many, (), T0)
        for row in many:
            single.apply([row], (), T0)
    assert list(bulk.order) == list(single.order) == sorted(bulk.rows, key=bulk.sort_string)


def test_natural_prefix_fast_path_agrees_with_the_general_rule() -> None:
    general = balance_book._DIGITS
    for customer in ["CUST-001", "cust-2", "A9", "A10", "X1Y2", "ÄB-٣", "", "abc", "CUST-\u200b1", "10", "İ5"]:
        folded = customer.casefold()
        assert natural_prefix(customer) == general.sub(lambda match: match.group().zfill(12), folded)


def test_customers_sort_naturally_then_by_currency() -> None:
    book = BalanceBook()
    book.apply([balance_row(0, currency="USD"), balance_row(0, currency="EUR")], (), T0)
    book.apply([BalanceRow(name, "EUR", Decimal(1), 1, T0, "t", 0) for name in ["CUST-10", "cust-2", "CUST-1"]],
               (), T0)
    assert [(book.row(key).customer_id, book.row(key).currency) for key in book.order] == [
        ("CUST-000000", "EUR"), ("CUST-000000", "USD"), ("CUST-1", "EUR"), ("cust-2", "EUR"), ("CUST-10", "EUR"),
    ]
    assert natural_prefix("A9") < natural_prefix("A10")


def test_highlights_expire_after_a_second_and_a_half() -> None:
    book = BalanceBook()
    book.apply([balance_row(1)], (), T0)
    key = book.order[0]
    assert book.is_fresh(key, T0 + timedelta(seconds=1.4))
    assert not book.expire(T0 + timedelta(seconds=1.4))
    assert book.expire(T0 + timedelta(seconds=1.5))
    assert not book.is_fresh(key, T0 + timedelta(seconds=1.5)) and not book.changed_at


def test_money_keeps_decimal_precision() -> None:
    assert fmt.money(Decimal("12345678901234567.89")) == "12,345,678,901,234,567.89"  # beyond float
    assert fmt.money(Decimal("-1250.5")) == "-1,250.50"
    assert fmt.money(Decimal(0)) == "0.00"


def test_partition_lists_fold_runs() -> None:
    assert fmt.partitions([5, 0, 1, 2, 7, 8, 3]) == "0-3,5,7-8"
    assert fmt.partitions([4]) == "4"
    assert fmt.partitions([]) == fmt.DASH


def test_durations_and_paths() -> None:
    assert fmt.millis(850) == "850 ms" and fmt.millis(2150) == "2.15 s" and fmt.millis(3.24) == "3.2 ms"
    assert fmt.duration(timedelta(seconds=754)) == "0:12:34"
    assert fmt.duration(timedelta(days=2, seconds=5)) == "2d 0:00:05"
    assert fmt.ellipsize_left("/a/very/long/session.jsonl", 14) == "…session.jsonl"


def test_partition_cells_show_ownership_and_lag() -> None:
    mine = partition_cells(PartitionRow(3, True, PartitionState.CONSUMING, 900, 1_000, 100, 42.0))
    other = partition_cells(PartitionRow(4, False, PartitionState.NOT_MINE, None, 2_000, None, 0.0))
    assert [cell.plain.strip() for cell in mine] == ["3", "●", "consuming", "100", *[fmt.DASH] * 3, "42.0", "900",
                                                     "1,000"]
    assert [cell.plain.strip() for cell in other] == ["4", "·", "not mine", *[fmt.DASH] * 5, fmt.DASH, "2,000"]


def test_partition_cells_show_lag_in_seconds_burrows_status_and_time_to_drain() -> None:
    view = lag_view()
    row = PartitionRow(3, True, PartitionState.CONSUMING, 900, 1_000, 100, 42.0)
    cells = [cell.plain.strip() for cell in partition_cells(row, view.partition(3))]
    assert cells[4:7] == ["2m", "WARN", "never"]  # growing without ever falling, arrivals outpace consumption
    caught_up = [cell.plain.strip() for cell in partition_cells(row, view.partition(0))]
    assert caught_up[4:7] == ["0s", "OK", "0s"]
    other = PartitionRow(3, False, PartitionState.NOT_MINE, None, 2_000, None, 0.0)
    assert [cell.plain.strip() for cell in partition_cells(other, view.partition(3))][4:7] == [fmt.DASH] * 3


def test_timeline_row_shows_measured_durations() -> None:
    entry = timeline_entry("assigned", 42.65, partitions=(3,), assignment=(0, 1, 3), generation=7, join_ms=850.0,
                           kept=(0, 1), moved_in=(3,), downtime_ms={3: 2150.0})
    cells = [str(cell) for cell in entry_row(4, entry)]
    assert cells[:7] == ["4", "22:00:42.650", "ASSIGNED", "+3", "0-1,3", "7", "850 ms"]
    assert cells[7] == "kept 0-1 · moved in 3 · downtime p3 2.15 s"
    compact = [str(cell) for cell in entry_row(4, entry, compact=True)]
    assert compact[:5] == ["22:00:42", "ASSIGNED", "+3", "7", "850 ms"]


def test_group_lag_explains_its_question_marks() -> None:
    from rich.console import Console

    from balance_tui.core.group import PartitionLag
    from balance_tui.messages import GroupChanged
    from balance_tui.ui.widgets.group import group_renderable

    def shown(lags: tuple[PartitionLag, ...]) -> str:
        console = Console(width=200, record=True)
        console.print(group_renderable(GroupChanged(rows=(), unowned=(), capacity="", partition_lag=lags,
                                                    source="member heartbeats")))
        return console.export_text()

    fresh = tuple(PartitionLag(p, "a", 10, 12, 2, False) for p in range(2))
    assert "P0:2 P1:2" in shown(fresh) and "silent" not in shown(fresh)
    stale = (PartitionLag(0, "a", 10, 12, 2, True), PartitionLag(1, "b", 10, 12, 2, False))
    assert "P0:2? P1:2" in shown(stale) and "?: its owner is silent" in shown(stale)


def test_the_group_panel_says_the_groups_lag_status_and_since_when_it_is_in_alert() -> None:
    from rich.console import Console

    from balance_tui.ui.widgets.group import group_renderable

    def shown(*rows, width: int | None = None) -> str:
        console = Console(width=200, record=True)
        console.print(group_renderable(group_changed(*rows), width))
        return console.export_text()

    alerting = member_row("host-a", (0, 1, 2), lag=900, lag_seconds=42.0, lag_status="STALL", lag_alert="firing",
                          lag_alert_since=T0 + timedelta(minutes=5))
    fine = member_row("host-b", (3, 4, 5), lag_seconds=0.0, lag_status="OK", lag_alert="ok")
    text = shown(alerting, fine)
    assert "⚠ group in lag alert since 22:05:00: host-a" in text
    assert "group lag status STALL: host-a · 42s behind" in text
    assert "Lag s" in text and "42s" in text
    # Too narrow for every column uncut: the members' lag in seconds goes, the group's line stays.
    narrow = shown(alerting, fine, width=50)
    assert "Lag s" not in narrow and "group lag status STALL" in narrow
    calm = shown(member_row("host-b", (3, 4, 5), lag_seconds=0.0, lag_status="OK", lag_alert="ok"))
    assert "group lag status OK · 0s behind · no lag alert" in calm and "⚠ group" not in calm
    # Members older than the lag view send no status: no line about it.
    assert "group lag status" not in shown(member_row("host-c", (0,)))


def test_group_table_slices_line_up_with_the_whole_table() -> None:
    from rich.console import Console

    from balance_tui.ui.widgets.group import CELL_PADDING, column_widths, member_table

    from .fakes import group_changed, member_row

    def lines(renderable, width: int) -> list[str]:
        console = Console(width=width, record=True, file=None, color_system=None)
        return ["".join(segment.text for segment in line)
                for line in console.render_lines(renderable, console.options.update(width=width))]

    rows = [member_row(f"host-{n:08x}" + "x" * (n % 4), tuple(range(n % 7)), silent=n % 5 == 0,
                       status="Idle" if n % 3 else "Consuming") for n in range(23)]
    group = group_changed(*rows)
    for width in (30, 38, 56, 61, 100):
        whole = [line[:width].rstrip() for line in lines(member_table(group, group.rows), width)]
        widths = column_widths(group, width)
        room = max(width, sum(widths) + CELL_PADDING * len(widths))
        header = lines(member_table(group, (), widths), room)[:1]
        sliced = [*header]
        for start in range(0, len(rows), 5):  # screens of five members, as the panel draws them
            sliced += lines(member_table(group, group.rows[start:start + 5], widths, header=False), room)
        assert [line[:width].rstrip() for line in sliced] == whole, width


def test_a_partition_cell_is_one_segment_justified_and_cut_to_its_column() -> None:
    base = Style(bgcolor="black")
    right = cell_segment(Text("5,313", style="bold #d75f5f", justify="right"), 8, base)
    assert right.text == "   5,313" and right.style == base + Style.parse("bold #d75f5f")
    assert cell_segment(Text(" consuming"), 11, base).text == " consuming "
    assert cell_segment(Text("123456789012"), 10, base).text == "123456789…"


def test_every_partition_cell_has_one_style_so_a_segment_draws_it_whole() -> None:
    """`cell_segment` draws a cell's text in its one style: a span (a second style) would be lost."""
    view = lag_view()
    rows = [PartitionRow(3, True, PartitionState.CONSUMING, 900, 1_000, 5_000, 42.0),
            PartitionRow(0, True, PartitionState.CONSUMING, 1_000, 1_000, 0, 12.5),
            PartitionRow(4, False, PartitionState.NOT_MINE, None, 2_000, None, 0.0),
            PartitionRow(1, True, PartitionState.PAUSED, 10, 20, 10, 0.0),
            PartitionRow(2, False, PartitionState.REVOKED, 10, 20, 10, 0.0),
            PartitionRow(5, True, PartitionState.RESTORING, None, 3_000, None, 0.0, restored=40, restore_total=90)]
    for row in rows:
        for lag in (None, view.partition(row.partition)):
            assert all(not cell.spans for cell in partition_cells(row, lag)), row
