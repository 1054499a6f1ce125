"""Plain-text formatting shared by the widgets: money, counts, durations, partition lists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

DASH = "–"


def money(value: Decimal) -> str:
    """`-1,234.50`: two decimals straight from the Decimal (never through float)."""
    if not value.is_finite():
        return str(value)
    return f"{value:,.2f}"


def count(value: int | None) -> str:
    """`1,234,567`, or a dash when unknown."""
    return DASH if value is None else f"{value:,}"


def rate(value: float) -> str:
    """Messages per second: no decimals from 100 up, one below."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def millis(value: float | None) -> str:
    """`850 ms`, `3.2 ms`, `1.25 s`; a dash when not measured."""
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.1f} ms"


def work_ms(value: float) -> str:
    """Simulated work per transaction: `2 ms`, `0.5 ms`."""
    return f"{value:g} ms"


def clock_time(moment: datetime, *, with_millis: bool = False) -> str:
    """Wall-clock time of day as the worker stamped it (no timezone conversion)."""
    text = moment.strftime("%H:%M:%S.%f" if with_millis else "%H:%M:%S")
    return text[:-3] if with_millis else text


def duration(elapsed: timedelta) -> str:
    """`0:04:07`, `2d 3:04:07`."""
    seconds = max(0, int(elapsed.total_seconds()))
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{days}d {clock}" if days else clock


def partitions(numbers: Iterable[int]) -> str:
    """`0-3,7,9-10`: sorted, consecutive runs folded, so 100 partitions stay short."""
    ordered = sorted(set(numbers))
    if not ordered:
        return DASH
    runs: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ",".join(runs)


def short_path(path: Path | None) -> str:
    """A path with the home directory shown as `~`."""
    if path is None:
        return DASH
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def ellipsize_left(text: str, width: int) -> str:
    """Keep the end of `text` (a file name matters more than its directories)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else "…" + text[-(width - 1):]
