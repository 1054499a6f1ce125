"""What the UI (or headless runner) may ask of the consumer worker.

Every method returns at once: the request is queued and carried out by the worker
thread, which reports the outcome with messages (see `messages.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.message import Message

MessageSink = Callable[[Message], object]


class WorkerControl(Protocol):
    def start(self, sink: MessageSink) -> None:
        """Start the worker thread; it posts every message to `sink` (thread-safe)."""

    def set_strategy(self, strategy: str) -> None:
        """Leave the group and rejoin with this assignment strategy."""

    def request_group_strategy(self, strategy: str) -> None:
        """Ask every member (through the members topic) to rejoin with this strategy together."""

    def restart(self) -> None:
        """Leave the group and rejoin with the same settings."""

    def toggle_pause(self) -> None:
        """Pause consumption (partitions kept, lag grows) or resume it."""

    def change_work_ms(self, delta: float) -> None:
        """Add `delta` (may be negative) to the simulated processing time; never below 0."""

    def export(self) -> None:
        """Write the export files; the worker answers with `Exported`."""

    def stop(self, reason: str) -> None:
        """Leave the group cleanly, write the final export, then post `WorkerStopped`."""

    def make_room(self, seconds: float) -> None:
        """Hold back processing for up to `seconds` (0: carry on), so a key press gets the CPU.

        Python runs one thread at a time: under full load the worker would otherwise share
        the interpreter with every step of drawing the answer to a key.
        """
