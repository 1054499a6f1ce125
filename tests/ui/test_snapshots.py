"""SVG snapshots of the dashboard on fixed data and a fixed clock.

Update after an intended change with `.venv/bin/python -m pytest tests/ui --snapshot-update`,
then look at the SVGs in `__snapshots__/` before committing them.
"""

from __future__ import annotations

from datetime import timedelta

from textual.pilot import Pilot

from balance_tui.core.rows import ConsumerStatus
from balance_tui.messages import (
    BalancesChanged,
    KafkaErrorReported,
    PartitionsAssigned,
    PartitionsRevoked,
    StatusChanged,
    TimelineEvent,
)
from balance_tui.ui.app import BalanceApp

from .fakes import (
    T0,
    FakeClock,
    FakeWorker,
    balance_row,
    group_changed,
    lag_view,
    make_settings,
    member_row,
    session_started,
    snapshot,
    timeline_entry,
)

HINT = "the other members use another protocol family; switch them all or use shift+number"


def dashboard() -> tuple[BalanceApp, FakeWorker, FakeClock]:
    worker, clock = FakeWorker(), FakeClock()
    return BalanceApp(make_settings(), worker, crash=lambda: None, clock=clock), worker, clock


async def settle(pilot: Pilot) -> None:
    """Handle every posted message, draw once, and let layout catch up."""
    await pilot.pause()
    pilot.app.draw()  # type: ignore[attr-defined]
    await pilot.pause()
    await pilot.pause()


async def feed_a_rebalanced_session(pilot: Pilot, worker: FakeWorker, clock: FakeClock) -> None:
    """A member that joined, lost partition 2 and gained 3, with some customers overdrawn."""
    worker.post(session_started(), StatusChanged(ConsumerStatus.JOINING))
    await pilot.pause()
    worker.post(
        PartitionsAssigned((0, 1, 2), (0, 1, 2), timeline_entry(
            "assigned", 3.2, partitions=(0, 1, 2), assignment=(0, 1, 2), generation=6, join_ms=3120.0,
            moved_in=(0, 1, 2))),
        TimelineEvent(timeline_entry("strategy_changed", 20, detail="range → cooperative-sticky")),
        PartitionsRevoked((2,), (0, 1), timeline_entry(
            "revoked", 40.5, partitions=(2,), assignment=(0, 1), generation=7, kept=(0, 1))),
        PartitionsAssigned((3,), (0, 1, 3), timeline_entry(
            "assigned", 42.65, partitions=(3,), assignment=(0, 1, 3), generation=7, join_ms=850.0, kept=(0, 1),
            moved_in=(3,), downtime_ms={3: 2150.0})),
        BalancesChanged(tuple(
            balance_row(number, f"{(number * 7919) % 100_000 / 7 - 2_000:.2f}", partition=(0, 1, 3)[number % 3],
                        count=number % 50 + 1)
            for number in range(1, 400)
        )),
    )
    await pilot.pause()
    clock.advance(753)
    worker.post(
        BalancesChanged(tuple(balance_row(number, "-42.10", partition=(0, 1, 3)[number % 3], count=60)
                              for number in (4, 9, 10))),
        snapshot(mine=(0, 1, 3), lag=120, view=lag_view()),
        # The members' heartbeats carry their lag view: mine (as the Lag panel shows it) and a caught-up one.
        group_changed(member_row("host-a1b2c3d4", (0, 1, 3), is_self=True, lag=5_313, lag_seconds=123.0,
                                 lag_status="WARN", lag_alert="firing", lag_alert_since=T0 + timedelta(seconds=666)),
                      member_row("host-e5f6a7b8", (2, 4), lag_seconds=0.0, lag_status="OK", lag_alert="ok"),
                      member_row("host-c9d0e1f2", (5,), silent=True), unowned=(5,)),
        KafkaErrorReported("INCONSISTENT_GROUP_PROTOCOL", "Broker: Inconsistent group protocol", False, HINT),
    )
    await pilot.pause()
    clock.advance(1)  # uptime 0:12:34; the last batch is still highlighted
    pilot.app.clear_notifications()
    await settle(pilot)


def test_main_screen(snap_compare) -> None:
    app, worker, clock = dashboard()

    async def run_before(pilot: Pilot) -> None:
        await feed_a_rebalanced_session(pilot, worker, clock)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_main_screen_at_80x24(snap_compare) -> None:
    app, worker, clock = dashboard()

    async def run_before(pilot: Pilot) -> None:
        await feed_a_rebalanced_session(pilot, worker, clock)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_waiting_for_the_group(snap_compare) -> None:
    app, worker, clock = dashboard()

    async def run_before(pilot: Pilot) -> None:
        worker.post(session_started(), StatusChanged(ConsumerStatus.JOINING))
        await pilot.pause()
        clock.advance(7)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_help_screen(snap_compare) -> None:
    app, worker, clock = dashboard()

    async def run_before(pilot: Pilot) -> None:
        await feed_a_rebalanced_session(pilot, worker, clock)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
