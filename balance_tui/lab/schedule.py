"""Provides the chaos run's clock: actions due at monotonic times, carried out in order as they fall due."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

from balance_tui.lab.options import POLL_S


class Schedule:
    """Actions at monotonic times; `run` carries them out as they fall due, follow-ups included."""

    def __init__(self) -> None:
        self._actions: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        #: Seconds the remaining schedule was moved back (a broker that took long to start).
        self.shifted_s = 0.0

    def at(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._actions, (due, next(self._order), action))

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        self.at(time.monotonic() + seconds, action)

    def shift(self, seconds: float) -> None:
        """Everything still to come happens `seconds` later (the schedule stood still meanwhile)."""
        self.shifted_s += seconds
        self._actions = [(due + seconds, order, action) for due, order, action in self._actions]
        heapq.heapify(self._actions)

    def run(self, between: Callable[[], None]) -> None:
        """Carry out every action as it falls due (those it schedules too), calling `between` on each turn."""
        while self._actions:
            between()
            due, _, action = self._actions[0]
            now = time.monotonic()
            if now < due:
                time.sleep(min(POLL_S, due - now))  # the schedule's clock: nothing to wait on but the time
                continue
            heapq.heappop(self._actions)
            action()
