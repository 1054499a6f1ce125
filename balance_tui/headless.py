"""`balance-tui --headless`: the same worker without the UI, printing the lab's log lines.

Every line passes through `visible`: ids, broker error texts and paths in it come from outside,
and a control character in them must neither act on the terminal nor break the one-event-per-line
shape a script reads.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import TextIO

from balance_tui.config import STRATEGIES
from balance_tui.core.assignment import format_partitions, iso_ms, utc_now
from balance_tui.core.lag_view import alert_text, drain_text, seconds_text
from balance_tui.core.safe_text import visible
from balance_tui.kafka.worker import ConsumerWorker
from balance_tui.messages import (
    BrokerDescribed,
    Exported,
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

STATUS_EVERY_SECONDS = 5.0
#: After SIGTERM/SIGINT, how long to wait for the consumer to leave the group.
STOP_DEADLINE_SECONDS = 30.0


def _lag_text(lag: int | None) -> str:
    return "?" if lag is None else f"{lag:,}"


def _lag_view_text(message: Snapshot) -> str:
    """` lag_s=12s lag_status=WARN drain=not draining`, and the alert when there is one."""
    view = message.lag
    if view is None:
        return ""
    text = (f" lag_s={seconds_text(view.lag_seconds)} lag_status={view.status.name} "
            f"drain={drain_text(view.drain, view.drain_seconds, short=True)}")
    if view.alert is not None and view.alert.firing:
        text += f" ALERT({alert_text(view.alert, view.time)})"
    return text


class HeadlessPrinter:
    """Turns worker messages into one line per event and a periodic status line."""

    def __init__(self, consumer_id: str, out: TextIO) -> None:
        self.consumer_id = consumer_id
        self.out = out
        self._next_status = time.monotonic() + STATUS_EVERY_SECONDS
        self.stopped: WorkerStopped | None = None

    def line(self, text: str) -> None:
        self.out.write(visible(f"{iso_ms(utc_now())} [{self.consumer_id}] {text}") + "\n")
        self.out.flush()

    def handle(self, message: object) -> None:
        match message:
            case SessionStarted():
                self.line(f"Starting Balance Consumer. Group: {message.group}, Topic: {message.topic}, "
                          f"Strategy: {message.strategy}, Broker: {message.bootstrap_servers}")
                self.line(f"Session log: {message.log_path}")
            case PartitionsAssigned():
                self.line(f"Partitions ASSIGNED: {format_partitions(message.partitions)} "
                          f"-> assignment {format_partitions(message.assignment)}"
                          + (f" (join {message.entry.join_ms / 1000:.1f}s)" if message.entry.join_ms else ""))
            case PartitionsRevoked():
                self.line(f"Partitions REVOKED: {format_partitions(message.partitions)} "
                          f"— Rebalancing in progress, keeps {format_partitions(message.assignment)}")
            case PartitionsLost():
                self.line(f"Partitions LOST: {format_partitions(message.partitions)}")
            case BrokerDescribed():
                self.line(f"Broker: {message.label}" + (" (serves KIP-848's consumer protocol)"
                                                         if message.consumer_protocol else ""))
            case StatusChanged():
                if message.status.value != "Joining" or message.detail in ("", "0s"):
                    self.line(f"Status: {message.status.value}" + (f" ({message.detail})" if message.detail else ""))
            case KafkaErrorReported():
                self.line(f"Error: {message.code} - {message.reason}" + (f". {message.hint}" if message.hint else ""))
            case TimelineEvent():
                if message.entry.kind != "error":
                    self.line(f"{message.entry.kind}: {message.entry.detail}")
            case Exported():
                self.line("Exported: " + ", ".join(str(p) for p in message.paths))
            case Snapshot():
                now = time.monotonic()
                if now >= self._next_status:
                    self._next_status = now + STATUS_EVERY_SECONDS
                    counters = message.counters
                    owned = [row.partition for row in message.partitions if row.mine]
                    self.line(
                        f"status={message.status.value} partitions={format_partitions(owned)} "
                        f"consumed={counters.consumed:,} rate={counters.rate:,.0f}/s lag={_lag_text(counters.lag)} "
                        f"rejected={counters.rejected} errors={counters.errors}{_lag_view_text(message)}"
                    )
            case WorkerStopped():
                self.stopped = message
                self.line(f"Stopped: {message.reason}")


#: Lines a script may write on a headless member's standard input.
STDIN_COMMANDS = ("strategy <range|roundrobin|cooperative-sticky|consumer>, group-strategy <name> (every member), "
                  "restart, pause, work <+/-ms>, export, quit")


def control_from_lines(worker: ConsumerWorker, lines: Iterable[str], printer: HeadlessPrinter) -> None:
    """Carry out the commands read from standard input (the keys of the dashboard, for scripts)."""
    for line in lines:
        words = line.split()
        if not words:
            continue
        match words:
            case ["strategy", name] if name in STRATEGIES:
                worker.set_strategy(name)
            case ["group-strategy", name] if name in STRATEGIES:
                worker.request_group_strategy(name)
            case ["restart"]:
                worker.restart()
            case ["pause"]:
                worker.toggle_pause()
            case ["work", delta]:
                try:
                    worker.change_work_ms(float(delta))
                except ValueError:
                    printer.line(f"Unknown command: {line.strip()!r} ({STDIN_COMMANDS})")
            case ["export"]:
                worker.export()
            case ["quit"]:
                worker.stop("quit")
            case _:
                printer.line(f"Unknown command: {line.strip()!r} ({STDIN_COMMANDS})")


def run_headless(worker: ConsumerWorker, out: TextIO = sys.stdout, commands: TextIO | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `quit` on `commands`), then leave the group, export, and return 0."""
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    printer = HeadlessPrinter(worker.consumer_id, out)
    if commands is not None:
        threading.Thread(target=control_from_lines, args=(worker, commands, printer),
                         name="headless-stdin", daemon=True).start()

    stop_requested: list[float] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop_requested.append(time.monotonic())
        worker.stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker.start(inbox.put)
    while printer.stopped is None:
        if stop_requested and time.monotonic() - stop_requested[0] > STOP_DEADLINE_SECONDS:
            # The export is written before leaving the group; only the goodbye to an unreachable
            # broker can hang (inside librdkafka), so give up on it rather than hang forever.
            reason = (f"the consumer did not leave the group within {STOP_DEADLINE_SECONDS:.0f} s "
                      "(broker unreachable?); exiting anyway")
            for path in worker.abandon(reason):
                printer.line(f"Exported: {path}")
            printer.line(f"Stopped: {reason}")
            return 1
        try:
            message = inbox.get(timeout=0.5)
        except queue.Empty:
            continue
        printer.handle(message)
    worker.join(timeout=10)
    return 0
