"""Text from Kafka reaches the screen with its control characters shown, never interpreted.

Every string a message carries (ids, descriptions, broker error texts, member heartbeats) is
hostile here: terminal escapes (window title, clear screen), NUL, a right-to-left override,
and Rich/Textual markup. The screen must show them as escapes, and hold none of them raw.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
from textual.content import Content
from textual.widget import Widget

from balance_tui.core.rows import ConsumerStatus, Counters
from balance_tui.messages import (
    BalancesChanged,
    BrokerDescribed,
    Exported,
    KafkaErrorReported,
    SessionStarted,
    StatusChanged,
    TimelineEvent,
    WorkerStopped,
)

from .fakes import (
    FakeWorker,
    balance_row,
    group_changed,
    member_row,
    snapshot,
    timeline_entry,
)
from .test_app import SIZE, make_app, notifications, table_of, text_of, wait_until

TITLE = "\x1b]0;PWNED\x07"
CLEAR = "\x1b[2J"
#: Wide enough for a whole hostile string in every column that shows one.
WIDE = (200, 50)
RAW = ("\x1b", "\x07", "\x00", "\u202e", "\x9b")


def hostile(name: str) -> str:
    """`name` wrapped in everything a terminal or a markup parser could act on."""
    return f"{name}{TITLE}{CLEAR}\x00\u202e[bold]{name}[/bold]"


def shown(name: str) -> str:
    return f"{name}\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\u202e[bold]{name}[/bold]"


def subtitle_of(widget: Widget) -> str:
    """The border subtitle as drawn (the property gives it back as markup)."""
    return Content.from_markup(widget.border_subtitle or "").plain


def assert_no_raw_controls(text: str, where: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached {where}"


async def test_every_panel_shows_escapes_instead_of_controls() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=WIDE) as pilot:
        worker.post(
            SessionStarted(consumer_id=hostile("me"), group=hostile("grp"), topic="tx\x1b[2J",
                           strategy="range", bootstrap_servers="localhost:9092",
                           log_path=Path("/tmp/log\x07.jsonl"), work_ms=2.0),
            BrokerDescribed(label="Kafka\x9b31m", consumer_protocol=None),
            BalancesChanged((msgspec.structs.replace(balance_row(1), customer_id=hostile("cust"),
                                                 last_transaction_id="tx\x00\u202e1"),)),
            TimelineEvent(timeline_entry("strategy_changed", 1, detail=hostile("detail"))),
            group_changed(member_row(hostile("peer"), (0, 1), status="Consuming\x1b[2J"),
                          capacity="[/bold] 3 members\x07"),
            dataclasses.replace(snapshot(), counters=Counters(rejected=1, last_rejection=hostile("reject"))),
        )
        await wait_until(pilot, lambda: "cust" in text_of(table_of(app)), "the balance row")
        await wait_until(pilot, lambda: "detail" in text_of(app.timeline), "the timeline entry")
        await wait_until(pilot, lambda: "peer" in text_of(app.group), "the group member")
        await wait_until(pilot, lambda: "reject" in text_of(app.query_one("#figures")), "the last rejection")
        worker.post(StatusChanged(ConsumerStatus.CONSUMING, "why\x1b[2J"))
        await wait_until(pilot, lambda: "why" in text_of(app.header), "the status detail")

        assert shown("cust") in text_of(table_of(app))
        assert "tx\\x00\\u202e1" in text_of(table_of(app))
        assert shown("detail") in text_of(app.timeline)
        group = text_of(app.group)
        assert "peer\\x1b]0;PWNED\\x07" in group and "Consuming\\x1b[2J" in group
        assert subtitle_of(app.group) == "[/bold] 3 members\\x07"
        assert "Last rejection reject\\x1b]0;PWNED\\x07" in text_of(app.query_one("#figures"))
        header = text_of(app.header)
        for fragment in ("me\\x1b]0;PWNED", "grp\\x1b]0;PWNED", "tx\\x1b[2J", "Kafka\\x9b31m", "why\\x1b[2J",
                         "log\\x07.jsonl"):
            assert fragment in header, fragment
        for widget in (table_of(app), app.timeline, app.group, app.header, app.query_one("#figures")):
            assert_no_raw_controls(text_of(widget), type(widget).__name__)
        assert_no_raw_controls(app.export_screenshot(), "the screen")


async def test_errors_and_notifications_show_escapes() -> None:
    worker = FakeWorker(export_paths=())
    app = make_app(worker)
    async with app.run_test(size=WIDE) as pilot:
        worker.post(KafkaErrorReported(code="CODE\x07", reason=hostile("reason"), fatal=False,
                                       hint="hint\u202e"),
                    Exported((Path("/tmp/export\x1b[2J.json"),)))
        await wait_until(pilot, lambda: "reason" in text_of(app.timeline), "the error in the timeline")
        await wait_until(pilot, lambda: len(notifications(app)) == 2, "two notifications")
        worker.post(WorkerStopped("fatal: \x1b]0;PWNED\x07"))
        await wait_until(pilot, lambda: len(notifications(app)) == 3, "the stop notification")
        await pilot.pause()
        notes = "\n".join(notifications(app))
        assert "CODE\\x07" in notes and shown("reason") in notes and "hint\\u202e" in notes
        assert "export\\x1b[2J.json" in notes and "fatal: \\x1b]0;PWNED\\x07" in notes
        assert_no_raw_controls(notes, "the notifications")
        assert shown("reason") in text_of(app.timeline)
        assert_no_raw_controls(text_of(app.timeline), "the timeline")
        assert_no_raw_controls(app.export_screenshot(), "the screen")


async def test_markup_typed_in_the_filter_is_shown_as_typed() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged((msgspec.structs.replace(balance_row(1), customer_id="a[/b]z"),
                                     balance_row(2))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 2, "two rows")
        await pilot.press("slash", *"[/b]")
        await wait_until(pilot, lambda: table.visible_count == 1, "the filter applied")
        await pilot.pause()
        assert subtitle_of(app.balances) == "1 of 2 match “[/b]”"
        assert "a[/b]z" in text_of(table)


async def test_the_filter_finds_a_customer_by_what_the_screen_shows() -> None:
    worker = FakeWorker()
    app = make_app(worker)
    async with app.run_test(size=SIZE) as pilot:
        worker.post(BalancesChanged((msgspec.structs.replace(balance_row(1), customer_id="CUST-\u200b1"),
                                     msgspec.structs.replace(balance_row(2), customer_id="CUST-1"))))
        table = table_of(app)
        await wait_until(pilot, lambda: table.visible_count == 2, "two rows")
        await pilot.press("slash", *"\\u200b")
        await wait_until(pilot, lambda: table.visible_count == 1, "only the id with a zero-width space")
        assert [table.book.row(key).customer_id for key in table.view] == ["CUST-\u200b1"]
