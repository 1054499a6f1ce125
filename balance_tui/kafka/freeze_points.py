"""Provides named points where a test can freeze this process, to `kill -9` (or wake) it exactly there.

With `BALANCE_TUI_FREEZE_AT=<point>` in its environment, the process stops itself with SIGSTOP
the first time it reaches that point; the test sees it stopped (`/proc/<pid>/stat`), then sends
SIGKILL (a crash at that instant) or SIGCONT (a zombie waking up). Without the variable nothing
happens: one set lookup per flush.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from enum import StrEnum


class FreezePoint(StrEnum):
    """Where a changelog flush can be cut (docs/consistency.md argues each is harmless)."""

    #: The first record of a flush is on the broker, the others not yet written.
    BETWEEN_RECORDS = "between_records"
    #: Every record of a flush is on the broker, its transaction not committed.
    BEFORE_COMMIT = "before_commit"


#: The point a test asked for (None: none), until the process has frozen there once.
_ARMED: set[str | None] = {os.environ.get("BALANCE_TUI_FREEZE_AT")}


def freeze_if_armed(point: FreezePoint, prepare: Callable[[], object]) -> None:
    """Stop here, once, if a test asked for `point`; `prepare` first (e.g. flush what must be on the broker)."""
    if point not in _ARMED:
        return
    _ARMED.discard(point)
    prepare()
    os.kill(os.getpid(), signal.SIGSTOP)
