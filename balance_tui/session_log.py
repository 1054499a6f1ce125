"""The JSON Lines session log: one object per event, appended and flushed as it happens.

Flushing each line hands it to the operating system, so a `kill -9` of this process
keeps everything logged up to the kill.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from balance_tui import locations
from balance_tui.core.assignment import iso_ms, utc_now
from balance_tui.core.events import ASSIGNMENT_EVENTS, STATS_SECONDS, Event

__all__ = [
    "ASSIGNMENT_EVENTS",
    "STATS_SECONDS",
    "Event",
    "SessionLog",
    "default_log_path",
    "export_paths",
    "iso_ms",
    "read_session_log",
    "utc_now",
]


def default_log_path(consumer_id: str, now: datetime | None = None) -> Path:
    stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    return locations.sessions_dir() / f"{stamp}-{consumer_id}.jsonl"


def export_paths(log_path: Path) -> tuple[Path, Path]:
    """`<log path without .jsonl>.export.json` and `.export.md`, beside the log."""
    stem = log_path.with_suffix("") if log_path.suffix == ".jsonl" else log_path
    return stem.with_name(stem.name + ".export.json"), stem.with_name(stem.name + ".export.md")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


class SessionLog:
    """Appends events with the common fields `ts, event, consumer_id, group, topic, strategy`."""

    def __init__(self, path: Path, consumer_id: str, group: str, topic: str, strategy: str) -> None:
        self.path = path
        self.consumer_id = consumer_id
        self.group = group
        self.topic = topic
        self.strategy = strategy
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self._stopped = False

    def write(self, event: Event, *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Append one line (`event` one of `Event`) and flush it, so a `kill -9` keeps it."""
        record: dict[str, Any] = {
            "ts": iso_ms(at or utc_now()),
            "event": Event(event).value,
            "consumer_id": self.consumer_id,
            "group": self.group,
            "topic": self.topic,
            "strategy": self.strategy,
        }
        record.update(fields)
        line = json.dumps(record, default=_json_default, separators=(",", ":"))
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()
        return record

    def stop(self, reason: str, **fields: Any) -> bool:
        """The last line, `stopped`, then close: written once, by whoever comes first (the worker, or a
        caller that gave up waiting for it); False for the others."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped = True
        self.write(Event.STOPPED, reason=reason, **fields)
        self.close()
        return True

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_session_log(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a log; a line cut short by a crash is skipped."""
    events = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events
