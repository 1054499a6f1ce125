"""Rates and latency percentiles over sliding windows, cheap enough for the hot path."""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Events per second over the last `window` seconds, plus one value per second for a sparkline.

    Callers add counts as they happen and read the rate a few times a second; time is
    passed in so the meter stays pure and testable.
    """

    def __init__(self, window: float = 5.0, history_seconds: int = 60) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._total_in_window = 0
        self._history: deque[float] = deque(maxlen=history_seconds)
        self._second_start: float | None = None
        self._second_count = 0

    def add(self, count: int, now: float) -> None:
        if count <= 0:
            self._roll(now)
            return
        self._samples.append((now, count))
        self._total_in_window += count
        self._roll(now)
        self._second_count += count

    def _roll(self, now: float) -> None:
        if self._second_start is None:
            self._second_start = now
        while now - self._second_start >= 1.0:
            self._history.append(float(self._second_count))
            self._second_count = 0
            self._second_start += 1.0
        horizon = now - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._total_in_window -= self._samples.popleft()[1]

    def rate(self, now: float) -> float:
        self._roll(now)
        return self._total_in_window / self.window

    def history(self, now: float) -> tuple[float, ...]:
        """Counts of each of the last (up to 60) whole seconds, oldest first."""
        self._roll(now)
        return tuple(self._history)


class LatencyWindow:
    """Recent latencies (ms) with p50/p99; keeps at most `capacity` samples."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._samples: deque[float] = deque(maxlen=capacity)

    def add(self, latency_ms: float) -> None:
        self._samples.append(latency_ms)

    def extend(self, latencies_ms: list[float]) -> None:
        self._samples.extend(latencies_ms)

    def percentiles(self) -> tuple[float | None, float | None]:
        if not self._samples:
            return None, None
        ordered = sorted(self._samples)
        last = len(ordered) - 1
        return ordered[round(last * 0.50)], ordered[round(last * 0.99)]
