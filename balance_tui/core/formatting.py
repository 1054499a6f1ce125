"""Provides the small formats the report, the lab and the exports share: durations, partition lists, JSON.

Pure: no Kafka, no Textual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any

from balance_tui.core.assignment import iso_ms


def ms_between(start: datetime, end: datetime) -> float:
    """Milliseconds from `start` to `end`."""
    return (end - start) / timedelta(milliseconds=1)


def format_ms(ms: float | None) -> str:
    """`n/a`, `0 s`, `640 ms`, `4.5 s`: durations as the tables show them."""
    if ms is None:
        return "n/a"
    if ms == 0:
        return "0 s"
    if abs(ms) < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def format_lab_partitions(partitions: Sequence[int]) -> str:
    """`[P0,P1,P2]`, as the lab's diagrams write them."""
    return "[" + ",".join(f"P{p}" for p in partitions) + "]"


def jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, mappings and tuples as plain JSON values (times ISO 8601 UTC, floats to 0.1)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 1)
    return value
