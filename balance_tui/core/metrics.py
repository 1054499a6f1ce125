"""Rates and latency percentiles over sliding windows, cheap enough for the hot path."""

from __future__ import annotations

from collections import deque
from itertools import chain


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


#: Percentiles are read from at most about this many samples of the window (exact below it).
PERCENTILE_SAMPLE = 5_000


class LatencyWindow:
    """Latencies (ms) of the last `window` seconds, with p50/p99.

    Time-based, so that a catch-up backlog read at start-up stops weighing on the
    percentiles once it is drained. Samples arrive in batches and are kept per batch.
    """

    def __init__(self, window: float = 10.0, capacity: int = 50_000) -> None:
        self.window = window
        self.capacity = capacity
        self._batches: deque[tuple[float, list[float]]] = deque()
        self._count = 0

    def extend(self, latencies_ms: list[float], now: float) -> None:
        if not latencies_ms:
            return
        self._batches.append((now, latencies_ms))
        self._count += len(latencies_ms)
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._batches and (self._batches[0][0] < horizon or self._count > self.capacity):
            self._count -= len(self._batches.popleft()[1])

    def percentiles(self, now: float) -> tuple[float | None, float | None]:
        self._prune(now)
        if not self._count:
            return None, None
        # Every stride-th sample of each batch: the same share of every batch, and a sort of a few
        # thousand values, not of 50,000, eight times a second on the consumer's thread.
        stride = max(1, self._count // PERCENTILE_SAMPLE)
        ordered = sorted(chain.from_iterable(batch[::stride] for _, batch in self._batches))
        last = len(ordered) - 1
        return ordered[round(last * 0.50)], ordered[round(last * 0.99)]
