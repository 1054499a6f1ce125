"""Small helpers shared by the tests: condition polling with a deadline, free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, message: str, interval: float = 0.05,
               explain: Callable[[], str] | None = None) -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError(message) at the deadline,
    followed by what `explain` says then.

    Tests synchronise on conditions, never on sleeps: the poll interval only bounds
    how often the condition is checked.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g}s)" + (f"\n{explain()}" if explain else ""))
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
