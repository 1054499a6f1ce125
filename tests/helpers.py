"""Small helpers shared by the tests: condition polling with a deadline, free ports, heartbeats."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from balance_tui.core.group import MemberHeartbeat

T = TypeVar("T")

#: When a made-up heartbeat was sent, unless the test says otherwise.
HEARTBEAT_SENT_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


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


def member_heartbeat(member: str, strategy: str = "range", assignment: tuple[int, ...] = (),
                     status: str = "Consuming", **fields: Any) -> MemberHeartbeat:
    """A member's heartbeat with plain figures; `fields` set any other of its fields."""
    values: dict[str, Any] = {"host": "h", "pid": 1, "generation": 3, "lag": 0, "rate": 0.0, "work_ms": 0,
                              "sent_at": HEARTBEAT_SENT_AT, "session_timeout_ms": 2_000, **fields}
    return MemberHeartbeat(consumer_id=member, strategy=strategy, status=status, assignment=assignment, **values)
