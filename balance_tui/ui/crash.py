"""Provides the dashboard's `k` key: a crash on purpose, like `kill -9`, with the terminal given back first."""

from __future__ import annotations

import os
import sys
from typing import Any


def hard_exit() -> None:
    """Die like `kill -9`: no consumer close, so no LeaveGroup; the group notices at session timeout."""
    os._exit(137)


def restore_terminal(driver: Any) -> None:
    """Give the shell its terminal back before dying, and say why the screen vanished."""
    try:
        if driver is not None:
            driver.stop_application_mode()
            driver.close()
        print("balance-tui: crashed on purpose (like kill -9): no LeaveGroup was sent; "
              "the group rebalances after session.timeout.ms.", file=sys.__stderr__, flush=True)
    except Exception:  # noqa: BLE001, S110 - dying anyway: a terminal that won't restore must not stop the crash
        pass
