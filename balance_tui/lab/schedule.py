"""Provides the chaos run's clock: actions due at monotonic times, carried out in order as they fall due.

Planned actions (the faults) can be held back together while a fault waits for its targets; the
follow-ups the faults scheduled (a SIGCONT, a replacement) keep their own times, since they are what
is waited for.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

from balance_tui.lab.options import POLL_S


class Schedule:
    """Actions at monotonic times; `run` carries them out as they fall due, follow-ups included."""

    def __init__(self) -> None:
        self._actions: list[tuple[float, int, bool, Callable[[], None]]] = []
        self._order = itertools.count()
        #: Seconds the remaining schedule was moved back (a broker that took long to start, a fault that waited).
        self.shifted_s = 0.0
        #: The due time and place in line of the action being carried out.
        self._current = (0.0, 0)

    def at(self, due: float, action: Callable[[], None], planned: bool = False) -> None:
        heapq.heappush(self._actions, (due, next(self._order), planned, action))

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        self.at(time.monotonic() + seconds, action)

    def shift(self, seconds: float) -> None:
        """Everything still to come happens `seconds` later (the schedule stood still meanwhile)."""
        self._move(seconds, lambda planned: True)

    def hold_back(self, seconds: float, action: Callable[[], None]) -> None:
        """Called by the planned action being carried out: carry out `action` in its place `seconds` from now,
        and every planned action still to come as much later as it is, so the plan keeps its order and its
        spacing while one fault waits (even one that came due late)."""
        due, order = self._current
        held_due = max(time.monotonic(), due) + seconds
        self._move(held_due - due, lambda planned: planned)
        heapq.heappush(self._actions, (held_due, order, True, action))

    def _move(self, seconds: float, moves: Callable[[bool], bool]) -> None:
        self.shifted_s += seconds
        self._actions = [(due + seconds if moves(planned) else due, order, planned, action)
                         for due, order, planned, action in self._actions]
        heapq.heapify(self._actions)

    def run(self, between: Callable[[], None]) -> None:
        """Carry out every action as it falls due (those it schedules too), calling `between` on each turn."""
        while self._actions:
            between()
            due, _, _, action = self._actions[0]
            now = time.monotonic()
            if now < due:
                time.sleep(min(POLL_S, due - now))  # the schedule's clock: nothing to wait on but the time
                continue
            _, order, _, _ = heapq.heappop(self._actions)
            self._current = (due, order)
            action()
