"""Pilot tests: keys reach the worker, messages reach the widgets. Conditions are polled, never slept on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from textual import events
from textual.drivers.headless_driver import HeadlessDriver
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget

from balance_tui.core.rows import ConsumerStatus, PartitionState
from balance_tui.messages import (
    BalancesChanged,
    Exported,
    KafkaErrorReported,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
    StatusChanged,
    TimelineEvent,
    WorkerStopped,
)
from balance_tui.ui.app import BalanceApp, DashboardExit
from balance_tui.ui.key_room import with_key_room
from balance_tui.ui.screens.help import HelpScreen
from balance_tui.ui.widgets.balances import BalancesPanel, BalanceTable

from .fakes import (
    CONSUMER_ID,
    EXPORT_PATHS,
    FakeClock,
    FakeWorker,
    balance_row,
    customer_id,
    group_changed,
    lag_view,
    make_settings,
    member_row,
    session_started,
    snapshot,
    timeline_entry,
)

SIZE = (120, 40)
INCONSISTENT_HINT = "the other members use another protocol family; switch them all or use shift+number"


def make_app(worker: FakeWorker | None = None, *, clock: FakeClock | None = None,
             crash: Callable[[], None] = lambda: None, **settings: object) -> BalanceApp:
    return BalanceApp(make_settings(**settings), worker or FakeWorker(), crash=crash, clock=clock or FakeClock())


async def wait_until(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail with `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


def text_of(widget: Widget) -> str:
    """What the widget draws right now, as plain text."""
    return "\n".join(strip.text for strip in widget.render_lines(widget.size.region))


def table_of(app: BalanceApp) -> BalanceTable:
    return app.query_one(BalanceTable)


def notifications(app: BalanceApp) -> list[str]:
    return [f"{note.title}: {note.message}" for note in app._notifications]


# -- keys ----------------------------------------------------------------------------


async def test_mount_starts_the_worker_with_the_apps_post_message() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: worker.sink is not None, "worker.start")
        assert worker.calls[0] == ("start", ())
        assert worker.sink == app.post_message


@pytest.mark.parametrize(("key", "strategy"), [("1", "range"), ("2", "roundrobin"), ("3", "cooperative-sticky")])
async def test_number_keys_switch_strategy(key: str, strategy: str) -> None:
    worker = FakeWorker()
    async with make_app(worker).run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await wait_until(pilot, lambda: worker.called("set_strategy"), "set_strategy")
        assert worker.called("set_strategy") == [(strategy,)]


@pytest.mark.parametrize(("key", "method"), [("r", "restart"), ("p", "toggle_pause"), ("e", "export")])
async def test_action_keys_call_the_worker(key: str, method: str) -> None:
    worker = FakeWorker()
    async with make_app(worker).run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await wait_until(pilot, lambda: worker.called(method), method)
        assert worker.called(method) == [()]
        assert [name for name, _ in worker.calls] == ["start", method]


@pytest.mark.parametrize(
    ("work_ms", "key", "delta"),
    [(2.0, "plus", 1.0), (2.0, "minus", -1.0), (2.0, "equals_sign", 1.0),
     (1.0, "minus", -0.5), (1.0, "plus", 1.0), (0.5, "plus", 0.5), (0.5, "minus", -0.5), (0.0, "plus", 0.5)],
)
async def test_plus_minus_change_work_ms(work_ms: float, key: str, delta: float) -> None:
    worker = FakeWorker()
    async with make_app(worker, work_ms=work_ms).run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await wait_until(pilot, lambda: worker.called("change_work_ms"), "change_work_ms")
        assert worker.called("change_work_ms") == [(delta,)]


async def test_repeated_plus_steps_from_the_value_it_asked_for() -> None:
    worker = FakeWorker()
    async with make_app(worker, work_ms=0.5).run_test(size=SIZE) as pilot:
        await pilot.press("plus", "plus", "minus", "minus", "minus")
        await wait_until(pilot, lambda: len(worker.called("change_work_ms")) == 5, "five changes")
        assert worker.called("change_work_ms") == [(0.5,), (1.0,), (-1.0,), (-0.5,), (-0.5,)]


async def test_k_crashes_through_the_injected_crash_without_leaving_the_group() -> None:
    worker, crashes = FakeWorker(), []
    async with make_app(worker, crash=lambda: crashes.append("crash")).run_test(size=SIZE) as pilot:
        await pilot.press("k")
        await wait_until(pilot, lambda: crashes, "crash")
        assert crashes == ["crash"]
        assert not worker.called("stop")


async def test_q_stops_the_worker_then_exits_with_the_export_paths() -> None:
    worker = FakeWorker(answer_stop=False)
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await wait_until(pilot, lambda: worker.called("stop"), "stop")
        assert worker.called("stop") == [("quit",)]
        await wait_until(pilot, lambda: "LEAVING GROUP" in text_of(app.header), "leaving group in the header")
        assert app.return_value is None, "must wait for WorkerStopped"
        worker.post(WorkerStopped("quit", EXPORT_PATHS))
        await wait_until(pilot, lambda: app.return_value is not None, "exit")
    assert app.return_value == DashboardExit(EXPORT_PATHS, "quit", clean=True)


async def test_q_exits_after_the_deadline_when_the_worker_never_answers() -> None:
    worker = FakeWorker(answer_stop=False)
    app = make_app(worker)
    app.quit_deadline = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None, "exit after the deadline")
    assert app.return_value is not None and not app.return_value.clean


async def test_q_twice_exits_without_waiting() -> None:
    worker = FakeWorker(answer_stop=False)
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q", "q")
        await wait_until(pilot, lambda: app.return_value is not None, "exit")
    assert worker.called("stop") == [("quit",)]
    assert app.return_value is not None and not app.return_value.clean


async def test_worker_stopping_by_itself_keeps_the_app_until_q() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(WorkerStopped("fatal: broker gone", ()))
        await wait_until(pilot, lambda: "STOPPED" in text_of(app.header), "stopped status")
        assert app.return_value is None
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None, "exit")
    assert not worker.called("stop"), "a stopped worker is not asked to stop again"
    assert app.return_value == DashboardExit((), "fatal: broker gone", clean=True)


@pytest.mark.parametrize("close_key", ["escape", "question_mark", "q"])
async def test_help_lists_every_key_and_closes(close_key: str) -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help screen")
        shown = text_of(app.screen.query_one("#help-keys"))
        for key in ["1", "2", "3", "r", "p", "+", "-", "e", "k", "/", "?", "q", "Escape"]:
            assert any(line.strip().startswith(key + " ") for line in shown.splitlines()), key
        await pilot.press(close_key)
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
        assert app.return_value is None and not worker.called("stop")


async def test_help_opens_again_as_the_same_screen_at_the_top() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=(80, 24)) as pilot:  # the list is longer than the screen: it scrolls
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help screen")
        first = app.screen
        dialog = first.query_one("#help-dialog")
        await wait_until(pilot, lambda: dialog.max_scroll_y > 0, "a scrollable help")
        dialog.scroll_end(animate=False)
        await wait_until(pilot, lambda: dialog.scroll_y > 0, "scrolled down")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help again")
        assert app.screen is first, "kept, not built again"
        await wait_until(pilot, lambda: dialog.scroll_y == 0, "opened at the top")
        assert "Escape" in text_of(first.query_one("#help-keys"))


# -- messages ------------------------------------------------------------------------


async def test_filter_shows_only_matching_customers_and_escape_clears_it() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged(tuple(balance_row(number) for number in range(1, 51))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 50, "50 rows")
        await pilot.press("slash", *"00004")
        expected = {customer_id(n) for n in range(1, 51) if "00004" in customer_id(n)}
        await wait_until(pilot, lambda: table.visible_count == len(expected), "filtered rows")
        assert {table.book.row(key).customer_id for key in table.view} == expected
        assert "CUST-000040" in text_of(table) and "CUST-000001" not in text_of(table)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.focused is table, "focus back on the table")
        assert table.visible_count == len(expected), "Enter keeps the filter"
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.visible_count == 50, "filter cleared")
        assert not app.query_one("#balance-filter").display


async def test_keys_typed_in_the_filter_are_not_commands() -> None:
    worker = FakeWorker()
    async with make_app(worker).run_test(size=SIZE) as pilot:
        await pilot.press("slash", "1", "q", "k")
        await wait_until(pilot, lambda: pilot.app.query_one("#balance-filter").value == "1qk", "typed filter")
        assert [name for name, _ in worker.calls] == ["start"]


async def test_negative_balance_is_drawn_in_the_negative_style() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged((balance_row(1, "250.00"), balance_row(2, "-1250.75"))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 2, "two rows")
        negative = table.get_component_rich_style("balance-table--negative", partial=True)
        assert negative.color is not None

        def balance_style(line: int, amount: str):
            return next(segment.style for segment in table.render_line(line) if amount in segment.text)

        assert balance_style(2, "-1,250.75").color == negative.color
        assert balance_style(1, "250.00").color != negative.color
        first, second = table.view
        assert "negative" in table.row_style_names(second) and "negative" not in table.row_style_names(first)


async def test_a_batch_repaints_only_the_lines_it_changed_on_screen() -> None:
    worker, clock = FakeWorker(), FakeClock()
    app = make_app(worker, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged(tuple(balance_row(number, Decimal(number)) for number in range(100))))
        table = table_of(app)
        await wait_until(pilot, lambda: "CUST-000003" in text_of(table), "the first rows drawn")
        await pilot.pause()
        built = table.rows_built
        # One row on screen changes; a new customer sorts below the screen.
        worker.post(BalancesChanged((balance_row(3, "777.00"), balance_row(500))))
        await wait_until(pilot, lambda: "777.00" in text_of(table), "the changed row drawn")
        await wait_until(pilot, lambda: len(table.book) == 101, "the new customer taken in")
        await pilot.pause()
        assert table.rows_built == built + 1, "one line painted again, the changed one"
        assert "101 rows" in str(app.query_one(BalancesPanel).border_subtitle)


async def test_changed_rows_are_highlighted_then_fade() -> None:
    worker, clock = FakeWorker(), FakeClock()
    app = make_app(worker, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged((balance_row(1), balance_row(2))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 2, "two rows")
        clock.advance(2)
        worker.post(BalancesChanged((balance_row(2, "90.00", count=2),)))
        await wait_until(pilot, lambda: not table.book.changed_at.keys() - {table.view[1]}, "first highlight gone")
        assert table.row_style_names(table.view[1]) == {"changed"}
        assert table.row_style_names(table.view[0]) == set()
        clock.advance(2)
        await wait_until(pilot, lambda: not table.book.changed_at, "highlight gone")


async def test_removed_partitions_drop_their_customers() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged(tuple(balance_row(number) for number in range(60))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 60, "60 rows")
        worker.post(BalancesChanged((), removed_partitions=(2, 3)))
        await wait_until(pilot, lambda: table.visible_count == 40, "40 rows left")
        assert {table.book.row(key).partition for key in table.book.rows} == {0, 1, 4, 5}
        # The count follows the batch at once; the screen at the next frame.
        await wait_until(pilot, lambda: "CUST-000002" not in text_of(table) and "CUST-000001" in text_of(table),
                         "the screen without partitions 2 and 3")


async def test_partition_events_update_the_mine_column() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(snapshot(mine=(0, 1, 2)))
        table = app.partitions

        def mine(partition: int) -> str:
            return table.shown_cell(partition, "mine").plain.strip()

        await wait_until(pilot, lambda: table.row_count == 6, "six partitions")
        assert [mine(p) for p in range(6)] == ["●", "●", "●", "·", "·", "·"]
        entry = timeline_entry("assigned", 10, partitions=(3,), assignment=(0, 1, 2, 3), generation=8)
        worker.post(PartitionsAssigned((3,), (0, 1, 2, 3), entry))
        await wait_until(pilot, lambda: mine(3) == "●", "partition 3 mine")
        worker.post(PartitionsRevoked((0,), (1, 2, 3), timeline_entry("revoked", 11, partitions=(0,))))
        await wait_until(pilot, lambda: mine(0) == "·", "partition 0 not mine")
        assert table.rows_by_partition[0].state is PartitionState.REVOKED
        worker.post(PartitionsLost((1, 2, 3), (), timeline_entry("lost", 12, partitions=(1, 2, 3))))
        await wait_until(pilot, lambda: [mine(p) for p in range(6)] == ["·"] * 6, "everything lost")
        await wait_until(pilot, lambda: len(app.timeline.entries) == 3, "three timeline entries")
        shown = text_of(app.timeline)
        assert shown.index("LOST") < shown.index("REVOKED") < shown.index("ASSIGNED"), "newest first"
        assert "generation 8" in text_of(app.header)


async def test_a_key_asks_the_worker_for_room_as_it_is_posted_and_lets_it_go_once_answered() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        worker.room_requests.clear()
        app.post_message(events.Key("question_mark", "?"))  # as the terminal's reader thread does
        assert worker.room_requests == [0.2], "room asked before the key waits its turn in the queue"
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help on top")
        await wait_until(pilot, lambda: worker.room_requests[-1] == 0, "the room given back once drawn")


async def test_the_terminals_reader_asks_for_room_before_it_posts_a_key() -> None:
    calls: list[str] = []

    class Reading:
        def key_read(self) -> None:
            calls.append("room")

    class Sending(HeadlessDriver):
        def send_message(self, message: Message) -> None:
            calls.append(type(message).__name__)

    driver = with_key_room(Sending)(Reading(), debug=False, mouse=False, size=(80, 24))  # type: ignore[arg-type]
    driver.process_message(events.Key("a", "a"))
    driver.process_message(events.Paste("pasted"))
    assert calls == ["room", "Key", "Paste"], "room for a key only, asked before it is posted"
    assert make_app(FakeWorker()).driver_class.__name__.startswith("KeyRoom"), "the dashboard's driver does it"


async def test_a_changed_partition_rebuilds_its_line_only() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        first = snapshot(mine=(0, 1, 2))
        worker.post(first)
        table = app.partitions
        await wait_until(pilot, lambda: table.row_count == 6, "six partitions")
        built = table.rows_built
        rows = tuple(replace(row, lag=7_777) if row.partition == 1 else row for row in first.partitions)
        worker.post(replace(first, partitions=rows))
        await wait_until(pilot, lambda: table.shown_cell(1, "lag").plain.strip() == "7,777", "partition 1's lag")
        await pilot.pause()
        assert table.rows_built == built + 1, "one line built for one changed row"
        showing = [line.strip("│ ").split()[0] for line in text_of(table).splitlines() if "7,777" in line]
        assert showing == ["1"], "drawn on partition 1's line, and only there"


async def test_snapshot_updates_counters_and_header() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(session_started(), snapshot(consumed=987_654, lag=10))
        figures = app.query_one("#figures")
        await wait_until(pilot, lambda: "987,654" in text_of(figures), "consumed count")
        shown = text_of(figures)
        assert "987,642" in shown  # applied
        assert "60" in shown  # lag: 10 + 20 + 30 on the three partitions
        assert "41.7 ms" in shown and "insufficient funds" in shown
        assert app.query_one("#rate-history").data == list(snapshot().counters.rate_history)
        header = text_of(app.header)
        assert CONSUMER_ID in header and "CONSUMING" in header and "generation 7" in header


async def test_new_counters_and_lag_are_drawn_without_a_layout_of_the_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    layouts: list[Screen] = []
    lay_out = Screen._refresh_layout

    def counted(screen: Screen, *args: object, **kwargs: object) -> None:
        layouts.append(screen)
        lay_out(screen, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(session_started(), snapshot(consumed=1_000, view=lag_view()))
        figures = app.query_one("#figures")
        await wait_until(pilot, lambda: "1,000" in text_of(figures), "the first counters")
        await wait_until(pilot, lambda: not app.lag._dirty, "the first lag chart")
        await pilot.pause()
        before = len(layouts)
        newer = lag_view()
        worker.post(snapshot(consumed=2_000, view=newer))
        await wait_until(pilot, lambda: "2,000" in text_of(figures), "the new counters")
        await wait_until(pilot, lambda: app.lag.view is newer and not app.lag._dirty, "the new lag chart")
        await pilot.pause()
        assert len(layouts) == before, "the same lines with new figures move nothing on screen"


async def test_joining_status_counts_seconds() -> None:
    worker, clock = FakeWorker(), FakeClock()
    app = make_app(worker, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(StatusChanged(ConsumerStatus.JOINING))
        await wait_until(pilot, lambda: "JOINING 0s" in text_of(app.header), "joining 0s")
        clock.advance(4)
        await wait_until(pilot, lambda: "JOINING 4s" in text_of(app.header), "joining 4s")


async def test_joining_shows_why_the_group_refuses_this_member() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(StatusChanged(ConsumerStatus.JOINING, "3s · refused: the group uses cooperative-sticky, not range"))
        await wait_until(pilot, lambda: "refused: the group uses cooperative-sticky" in text_of(app.header),
                         "the refusal beside JOINING")
        assert "3s · " not in text_of(app.header)  # the seconds are the header's own, live


async def test_kafka_error_hint_is_notified_and_added_to_the_timeline() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(KafkaErrorReported("INCONSISTENT_GROUP_PROTOCOL", "Broker: Inconsistent group protocol",
                                       fatal=False, hint=INCONSISTENT_HINT))
        await wait_until(pilot, lambda: app.timeline.entries, "timeline entry")
        assert any("INCONSISTENT_GROUP_PROTOCOL" in note and INCONSISTENT_HINT in note
                   for note in notifications(app))
        (_, entry), = app.timeline.entries
        assert entry.kind == "error" and INCONSISTENT_HINT in entry.detail
        body = app.timeline
        await wait_until(pilot, lambda: "protocol family" in text_of(body), "hint in the timeline")
        await pilot.press("p")
        await wait_until(pilot, lambda: worker.called("toggle_pause"), "still running")


async def test_every_reported_error_gets_one_timeline_line() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        reason = "Broker: Inconsistent group protocol"
        worker.post(
            KafkaErrorReported("INCONSISTENT_GROUP_PROTOCOL", reason, fatal=False, hint=INCONSISTENT_HINT),
            KafkaErrorReported("PROCESSING_ERROR", "P1:O42 ValueError()", fatal=False),
        )
        await wait_until(pilot, lambda: len(app.timeline.entries) == 2, "two timeline entries")
        details = [entry.detail for _, entry in app.timeline.entries]
        assert details == [f"INCONSISTENT_GROUP_PROTOCOL: {reason} — {INCONSISTENT_HINT}",
                           "PROCESSING_ERROR: P1:O42 ValueError()"]


async def test_timeline_event_and_exported_are_shown() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(TimelineEvent(timeline_entry("strategy_changed", 5, detail="range → roundrobin")),
                    Exported(EXPORT_PATHS))
        await wait_until(pilot, lambda: app.timeline.entries, "timeline entry")
        body = app.timeline
        await wait_until(pilot, lambda: "range → roundrobin" in text_of(body), "strategy change in the timeline")
        await wait_until(pilot, lambda: any("balances.csv" in note for note in notifications(app)), "exported")
        assert app.last_export == EXPORT_PATHS


async def test_a_restore_is_one_timeline_line_and_d_shows_each_partition() -> None:
    from balance_tui.core.rows import PartitionRestore
    from balance_tui.kafka.worker.restore_summary import restored_text

    restores = tuple(PartitionRestore(p, 10 + p, 100 * (p + 1), 20.0 + p, 1_000 * p) for p in range(6))
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(TimelineEvent(timeline_entry("restored", 5, detail=restored_text(restores),
                                                 partitions=tuple(range(6)), assignment=tuple(range(6)),
                                                 restores=restores)))
        body = app.timeline
        await wait_until(pilot, lambda: "restored P0-P5: 75 customers" in text_of(body), "the restore's line")
        assert "resuming at" not in text_of(body) and "d: restore details" in str(body.border_subtitle)
        await pilot.press("d")
        await wait_until(pilot, lambda: "P0: 10 customers from 100 records" in text_of(body), "each partition")
        assert "P1: 11 customers from 200 records in 21.0 ms," in text_of(body)  # P2-P5 below: the panel scrolls
        assert "d: hide details" in str(body.border_subtitle)
        await pilot.press("d")
        await wait_until(pilot, lambda: "resuming at" not in text_of(body), "the details hidden again")


# -- load --------------------------------------------------------------------------


async def test_keys_still_work_after_100k_customers_arrive() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        for batch in range(50):
            worker.post(BalancesChanged(tuple(
                balance_row(number, Decimal(number % 5000) - 1000) for number in range(batch, 100_000, 50)
            )))
        await pilot.press("p")
        table = table_of(app)
        await wait_until(pilot, lambda: worker.called("toggle_pause"), "pause key under load", timeout=60)
        await wait_until(pilot, lambda: table.visible_count == 100_000, "100,000 rows", timeout=60)
        assert table.view[:3] == table.book.order[:3]
        assert [table.book.row(key).customer_id for key in table.view[:3]] == [customer_id(n) for n in range(3)]
        # End scrolls to the end of the rows drawn; the last frame may not have drawn them all yet.
        await wait_until(pilot, lambda: table.virtual_size.height == 100_001, "100,000 rows drawn")
        await pilot.press("end")
        await wait_until(pilot, lambda: "CUST-099999" in text_of(table), "last customer on screen")


async def test_rows_arriving_during_a_scroll_do_not_stop_it() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged(tuple(balance_row(number, Decimal(1)) for number in range(1, 20_000, 2))))
        table = table_of(app)
        # The scrollbar's span, not the virtual size: a new virtual size is laid out later, and until
        # then the table shows no scrollbar and ignores a scroll (seen once in CI).
        await wait_until(pilot, lambda: table.vertical_scrollbar.window_virtual_size == 10_001, "10,000 rows laid out")
        table.scroll_to(y=100, animate=False, immediate=True)
        await wait_until(pilot, lambda: table.scroll_offset.y == 100, "scrolled to row 100")
        table.scroll_to(y=5_000, duration=1.0)
        # New customers sort between the ones on screen: the table holds its top row when they
        # come, except while the user's scroll is under way.
        worker.post(BalancesChanged(tuple(balance_row(number, Decimal(2)) for number in range(0, 2_000, 2))))
        await wait_until(pilot, lambda: table.virtual_size.height == 11_001, "the new rows drawn")
        await wait_until(pilot, lambda: not app.animator.is_being_animated(table, "scroll_y"), "the scroll's end")
        assert table.scroll_offset.y == 5_000


@pytest.mark.parametrize(("key", "strategy"), [("exclamation_mark", "range"), ("at", "roundrobin"),
                                               ("number_sign", "cooperative-sticky")])
async def test_shifted_number_keys_ask_the_whole_group(key: str, strategy: str) -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await wait_until(pilot, lambda: worker.called("request_group_strategy"), "a group request")
        assert worker.called("request_group_strategy") == [(strategy,)]
        assert worker.called("set_strategy") == []


async def test_group_panel_shows_members_a_silent_countdown_and_unowned_partitions() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(group_changed(member_row("me", (0, 1), is_self=True), member_row("b", (2, 3)),
                                  member_row("dead", (4, 5), silent=True), unowned=(4, 5),
                                  capacity="3 members, 6 partitions"))
        await wait_until(pilot, lambda: "rebalance expected in 4 s" in text_of(app.group), "the countdown")
        shown = text_of(app.group)
        assert "▸ me" in shown and "2,3" in shown
        assert "unowned [4, 5]" in shown
        assert app.group.border_subtitle == "3 members, 6 partitions"


async def test_a_tick_after_the_app_exited_draws_nothing_and_raises_nothing() -> None:
    # The draw timer can tick once more while Textual prunes the widgets (and their styles) on exit.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
    app.partitions.set_assignment([0, 1])  # a revoke's last news: rows to rebuild at the next tick
    app.draw()
    assert app.partitions._dirty  # left for a tick that never comes, instead of built without styles
