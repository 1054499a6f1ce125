"""Provides the rules for saying errors and malformed messages once, not on every poll.

librdkafka repeats an error on every retry; a broker refuses every retry of a join the same
way; a bad producer can send thousands of malformed messages a second. The session log and
the screen get one line for each, and the repeats are counted in the next line. The
plain-words hints for errors a learner causes on purpose live here too. Pure: times are passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The same error is logged again after this many seconds at the earliest.
ERROR_REPEAT_SECONDS = 5.0
#: Errors a broker repeats on every retry of a join: said once per join attempt.
ONCE_PER_JOIN = frozenset({"INCONSISTENT_GROUP_PROTOCOL"})
#: Plain-words advice for errors a learner is likely to cause on purpose.
ERROR_HINTS = {
    "_ALL_BROKERS_DOWN": "No broker answers. Is the broker running (`balance-tui broker` or `./scripts/demo`)?",
}
#: A malformed message of each reason is logged at most once in this many seconds.
REJECTION_LOG_SECONDS = 5.0
#: Rejections kept with their reason, partition and offset for the export.
RECENT_REJECTIONS = 20
#: Keys of the dashboard per strategy, for the hints.
STRATEGY_KEYS = {"range": "1", "roundrobin": "2", "cooperative-sticky": "3", "consumer": "4"}


@dataclass(frozen=True)
class Verdict:
    """Whether to say an error now, and how many identical ones were kept quiet since it was last said."""

    say: bool
    repeats: int = 0


class ErrorReports:
    """Decides which errors are said: each key at most once per repeat window, some once per join."""

    def __init__(self, repeat_seconds: float = ERROR_REPEAT_SECONDS,
                 once_per_join: frozenset[str] = ONCE_PER_JOIN) -> None:
        self.repeat_seconds = repeat_seconds
        self.once_per_join = once_per_join
        self._said_at: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._said_this_join: set[str] = set()

    def new_join(self) -> None:
        """A new join attempt: errors said once per join may be said again."""
        self._said_this_join = set()

    @staticmethod
    def key(name: str, text: str, generic: bool) -> str:
        """What identifies "the same error": its name, and for generic ones (`_FAIL`) what they say."""
        return f"{name}:{text[:32]}" if generic else name

    def decide(self, key: str, name: str, now: float) -> Verdict:
        if now - self._said_at.get(key, -1e9) < self.repeat_seconds or (
                name in self.once_per_join and name in self._said_this_join):
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return Verdict(say=False)
        self._said_at[key] = now
        if name in self.once_per_join:
            self._said_this_join.add(name)
        return Verdict(say=True, repeats=self._quiet.pop(key, 0))


def refusal_hint(own: str, group_strategies: Iterable[str]) -> str:
    """What to press when the group refuses our strategy, from the strategies its members use."""
    others = sorted(set(group_strategies) - {own})
    if others:
        press = " or ".join(STRATEGY_KEYS[s] for s in others if s in STRATEGY_KEYS)
        return (f"the group uses {' / '.join(others)}, not {own}: press {press} to rejoin with it, "
                "or shift+1/2/3 (! @ #) to move every member together")
    return (f"the group uses another protocol family than {own} (eager range/roundrobin and "
            "cooperative-sticky cannot be mixed): press 1/2/3 to match it, or shift+1/2/3 (! @ #) "
            "to move every member together")


@dataclass(frozen=True)
class RejectionNote:
    """A malformed message to say now, with how many of its reason were kept quiet before it."""

    partition: int
    offset: int
    reason: str
    detail: str
    unlogged_since_last: int


class RejectionLog:
    """Malformed messages counted by reason, the last few kept, at most one said per reason every few seconds."""

    def __init__(self, log_seconds: float = REJECTION_LOG_SECONDS, keep: int = RECENT_REJECTIONS) -> None:
        self.log_seconds = log_seconds
        self.total = 0
        self.by_reason: dict[str, int] = {}
        self.last: str | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._said_at: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def note(self, partition: int, offset: int, reason: str, detail: str, now: float,
             at: datetime) -> RejectionNote | None:
        """Count one; the note to say, or None while this reason was said a moment ago."""
        self.total += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.last = f"P{partition}:O{offset} {reason}: {detail}"
        self.recent.append({"partition": partition, "offset": offset, "reason": reason, "detail": detail, "at": at})
        if now - self._said_at.get(reason, -1e9) < self.log_seconds:
            self._quiet[reason] = self._quiet.get(reason, 0) + 1
            return None
        self._said_at[reason] = now
        return RejectionNote(partition, offset, reason, detail, self._quiet.pop(reason, 0))
