"""The dashboard app: turns worker messages into widgets and keys into worker requests.

Messages only store data (cheap, in arrival order); a timer at `settings.refresh_hz`
draws whatever changed. So the screen costs the same whether the worker consumes
ten or eighty thousand transactions a second, and keys are handled between batches.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical

from balance_tui.config import Settings
from balance_tui.control import WorkerControl
from balance_tui.core.rows import ConsumerStatus, TimelineEntry
from balance_tui.core.safe_text import visible
from balance_tui.messages import (
    BalancesChanged,
    BrokerDescribed,
    Exported,
    GroupChanged,
    KafkaErrorReported,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
    SessionStarted,
    Snapshot,
    StatusChanged,
    TimelineEvent,
    WorkerStopped,
)
from balance_tui.ui.crash import hard_exit, restore_terminal
from balance_tui.ui.key_room import KeyRoomApp
from balance_tui.ui.keys import KEYS, work_step
from balance_tui.ui.screens.help import open_help
from balance_tui.ui.widgets.balances import BalancesPanel
from balance_tui.ui.widgets.counters import CountersPanel
from balance_tui.ui.widgets.footer import SteadyFooter
from balance_tui.ui.widgets.group import GroupPanel
from balance_tui.ui.widgets.header import HeaderBar, show_lag_in_header
from balance_tui.ui.widgets.lag_chart import LagPanel
from balance_tui.ui.widgets.partitions import PartitionsTable
from balance_tui.ui.widgets.timeline import RebalanceTimeline


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DashboardExit:
    """What `BalanceApp.run()` returns, for the CLI to print."""

    export_paths: tuple[Path, ...] = ()
    reason: str = "quit"
    #: False when the worker did not confirm it left the group (deadline passed, or `q` twice).
    clean: bool = True


class BalanceApp(KeyRoomApp[DashboardExit]):
    """balance-tui's live dashboard for one consumer of the group."""

    CSS_PATH = "app.tcss"
    TITLE = "balance-tui"
    ENABLE_COMMAND_PALETTE = False
    # Textual declares the breakpoints as instance attributes: no ClassVar here.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide"), (150, "-wider")]  # noqa: RUF012
    #: Below 46 rows the throughput's sparkline gives its rows to the lag chart.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (46, "-tall")]  # noqa: RUF012
    #: How long `q` waits for the worker to leave the group before exiting anyway.
    QUIT_DEADLINE_SECONDS = 15.0

    BINDINGS: ClassVar[list[BindingType]] = [*KEYS]

    def __init__(self, settings: Settings, worker: WorkerControl, *, crash: Callable[[], None] = hard_exit,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.settings = settings
        self.worker = worker
        self.crash = crash
        self.clock = clock
        self.quit_deadline = self.QUIT_DEADLINE_SECONDS
        self.leaving = False
        self.worker_stopped: WorkerStopped | None = None
        self.last_export: tuple[Path, ...] = ()
        self._work_ms = settings.work_ms
        #: The balance table's make_room once mounted: a key can come before the panels exist.
        self._table_room: Callable[[float], None] = lambda seconds: None

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield PartitionsTable(id="partitions")
                yield LagPanel(id="lag")
                yield CountersPanel(id="counters")
            with Vertical(id="right"):
                yield GroupPanel(id="group")
                yield BalancesPanel(id="balances")
        yield RebalanceTimeline(id="timeline")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.header = self.query_one(HeaderBar)
        self.partitions = self.query_one(PartitionsTable)
        self.counters = self.query_one(CountersPanel)
        self.lag = self.query_one(LagPanel)
        self.balances = self.query_one(BalancesPanel)
        self._table_room = self.balances.table.make_room
        self.timeline = self.query_one(RebalanceTimeline)
        self.group = self.query_one(GroupPanel)
        self.group.border_title = "Group"
        self.partitions.border_title = "Partitions"
        self.counters.border_title = "Throughput"
        self.balances.border_title = "Balances"
        self.timeline.border_title = "Rebalance timeline · newest first"
        self.lag.border_title = "Lag"
        info = self.header.info
        info.group, info.topic = self.settings.group, self.settings.topic
        info.strategy, info.work_ms = self.settings.strategy, self.settings.work_ms
        info.bootstrap_servers = self.settings.bootstrap_servers
        info.started_at = info.status_since = self.clock()
        self.balances.table.focus()
        self.set_interval(1 / self.settings.refresh_hz, self.draw)
        self.draw()
        self._handle_stop_signals()
        self.worker.start(self.post_message)

    def _handle_stop_signals(self) -> None:
        """SIGTERM and SIGINT leave the group cleanly and export, as `q` does."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._stop_on_signal, signal.Signals(signum).name)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests) or no signals on this platform

    def _stop_on_signal(self, name: str) -> None:
        if not self.leaving:
            self.leaving = True
            self.header.info.leaving = True
            self.worker.stop(name)
            self.set_timer(self.quit_deadline, self._quit_deadline_passed)

    def draw(self) -> None:
        """Render what changed since the last tick; the only place widgets are redrawn."""
        if not self.partitions.is_attached:
            # Exiting: Textual prunes the widgets, dropping their component styles, while this
            # timer may tick once more (a partitions line built then raised KeyError, CI).
            return
        now = self.clock()
        self.header.show(now)
        self.partitions.flush()
        self.lag.flush()
        self.counters.flush()
        self.balances.flush(now)
        self.group.flush()
        self.timeline.flush()

    # -- messages from the worker: store, don't draw ------------------------------------

    def on_session_started(self, message: SessionStarted) -> None:
        info = self.header.info
        info.consumer_id, info.group, info.topic = message.consumer_id, message.group, message.topic
        info.strategy, info.bootstrap_servers = message.strategy, message.bootstrap_servers
        info.log_path, info.work_ms = message.log_path, message.work_ms
        info.started_at = self.clock()
        self._work_ms = message.work_ms

    def on_broker_described(self, message: BrokerDescribed) -> None:
        self.header.info.broker_label = message.label

    def on_status_changed(self, message: StatusChanged) -> None:
        self._set_status(message.status, message.detail)

    @on(PartitionsAssigned)
    @on(PartitionsRevoked)
    @on(PartitionsLost)
    def assignment_changed(self, message: PartitionsAssigned | PartitionsRevoked | PartitionsLost) -> None:
        self.partitions.set_assignment(message.assignment)
        self.timeline.add_entry(message.entry)
        if message.entry.generation is not None:
            self.header.info.generation = message.entry.generation

    def on_timeline_event(self, message: TimelineEvent) -> None:
        self.timeline.add_entry(message.entry)

    def on_balances_changed(self, message: BalancesChanged) -> None:
        # Taken in slices between keys and frames; the worker coalesces until all of it is in.
        self.balances.table.apply_batch(message.rows, message.removed_partitions, self.clock(),
                                        on_taken=message.applied.set)

    def on_group_changed(self, message: GroupChanged) -> None:
        self.group.show_group(message)

    def on_snapshot(self, message: Snapshot) -> None:
        self.counters.show_counters(message.counters)
        self.partitions.show_partitions(message.partitions)
        self.partitions.show_lag(message.lag)
        self.lag.show_lag(message.lag)
        info = self.header.info
        show_lag_in_header(info, message.lag)
        info.generation, info.member_id = message.generation, message.member_id
        info.strategy, info.work_ms = message.strategy, message.work_ms
        self._work_ms = message.work_ms
        status = message.status
        if message.paused and status is ConsumerStatus.CONSUMING:
            status = ConsumerStatus.PAUSED
        self._set_status(status, info.status_detail if status is info.status else "")

    def on_kafka_error_reported(self, message: KafkaErrorReported) -> None:
        # The hint says what to do in plain words; the broker's own reason stays available below it.
        reason = visible(message.reason)
        body = f"{visible(message.hint)}\n{reason}" if message.hint else reason
        self.notify(body, title=visible(message.code), severity="error" if message.fatal else "warning",
                    timeout=12, markup=False)
        # Errors reach the timeline only through this message (the worker posts no TimelineEvent for them).
        detail = f"{message.code}: {message.reason}" + (f" — {message.hint}" if message.hint else "")
        self.timeline.add_entry(TimelineEntry(at=self.clock(), kind="error", detail=detail))

    def on_exported(self, message: Exported) -> None:
        self.last_export = message.paths
        self.notify("\n".join(visible(str(path)) for path in message.paths) or "nothing written",
                    title="Exported", timeout=10, markup=False)

    def on_worker_stopped(self, message: WorkerStopped) -> None:
        self.worker_stopped = message
        if message.export_paths:
            self.last_export = message.export_paths
        if self.leaving:
            self.exit(DashboardExit(self.last_export, message.reason, clean=True))
            return
        self._set_status(ConsumerStatus.STOPPED, message.reason)
        self.notify(f"The consumer stopped ({visible(message.reason)}). Press q to quit.",
                    severity="error", timeout=30, markup=False)

    def _set_status(self, status: ConsumerStatus, detail: str) -> None:
        info = self.header.info
        if status is not info.status:
            info.status_since = self.clock()
        info.status, info.status_detail = status, detail

    # -- keys: ask the worker, never wait for it -----------------------------------------

    def make_room(self, seconds: float) -> None:
        """Under load the worker and the table's intake hold back (200 ms at most) until a key is answered."""
        self.worker.make_room(seconds)
        self._table_room(seconds)

    def action_strategy(self, strategy: str) -> None:
        self.worker.set_strategy(strategy)
        self.notify(f"Rejoining with {strategy}…", timeout=3)

    def action_group_strategy(self, strategy: str) -> None:
        self.worker.request_group_strategy(strategy)
        self.notify(f"Asking every member to rejoin with {strategy}…", timeout=3)

    def action_restart(self) -> None:
        self.worker.restart()
        self.notify("Leaving the group and rejoining…", timeout=3)

    def action_toggle_pause(self) -> None:
        self.worker.toggle_pause()

    def action_work(self, direction: int) -> None:
        delta = work_step(self._work_ms, direction)
        self.worker.change_work_ms(delta)
        self._work_ms = max(0.0, self._work_ms + delta)
        self.header.info.work_ms = self._work_ms

    def action_export(self) -> None:
        self.worker.export()
        self.notify("Writing the export files…", timeout=3)

    def action_crash(self) -> None:
        if not self.is_headless:
            restore_terminal(self._driver)
        self.crash()

    def action_filter(self) -> None:
        self.balances.open_filter()

    def action_clear_filter(self) -> None:
        self.balances.clear_filter()

    def action_details(self) -> None:
        self.timeline.toggle_details()

    def action_help(self) -> None:
        # Every key that says what it does, the footer's and the group-wide shift+1/2/3 alike.
        open_help(self, [binding for binding in KEYS if binding.tooltip])

    async def action_quit(self) -> None:
        if self.worker_stopped is not None:
            stopped = self.worker_stopped
            self.exit(DashboardExit(self.last_export, stopped.reason, clean=True))
        elif self.leaving:
            self.exit(DashboardExit(self.last_export, "quit", clean=False))
        else:
            self.leaving = True
            self.header.info.leaving = True
            self.header.show(self.clock())
            self.notify("Leaving the group… (q again to exit without waiting)", timeout=self.quit_deadline)
            self.worker.stop("quit")
            self.set_timer(self.quit_deadline, self._quit_deadline_passed)

    def _quit_deadline_passed(self) -> None:
        if self.worker_stopped is None:
            self.exit(DashboardExit(self.last_export, "quit: the worker did not stop in time", clean=False))
