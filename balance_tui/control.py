"""What the UI (or headless runner) may ask of the consumer worker.

Every method returns at once: the request is queued and carried out by the worker
thread, which reports the outcome with messages (see `messages.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


# -- the requests themselves, as the worker's queue carries them ------------------------------


@dataclass(frozen=True)
class SetStrategy:
    """Leave the group and rejoin with `strategy`."""

    strategy: str


@dataclass(frozen=True)
class AskGroupStrategy:
    """Ask every member, through the members topic, to rejoin with `strategy`."""

    strategy: str


@dataclass(frozen=True)
class Restart:
    """Leave the group and rejoin with the same settings."""


@dataclass(frozen=True)
class TogglePause:
    """Pause consumption, or resume it."""


@dataclass(frozen=True)
class ChangeWorkMs:
    """Add `delta` milliseconds of simulated work per transaction (never below 0)."""

    delta: float


@dataclass(frozen=True)
class ExportNow:
    """Write the export files."""


@dataclass(frozen=True)
class Stop:
    """Leave the group cleanly, export, and stop."""

    reason: str


WorkerCommand = SetStrategy | AskGroupStrategy | Restart | TogglePause | ChangeWorkMs | ExportNow | Stop
