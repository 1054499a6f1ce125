"""Provides `JoinWatch`: how this member's join is going, and when the group must be healed.

Two ways a join fails never reach the client as an error that ends it. The group may refuse
the member's protocol on every attempt (INCONSISTENT_GROUP_PROTOCOL, said once per join), or
the broker may answer every attempt without ever assigning anything: Tansu 0.6.0 keeps the
leader of a re-forming group after that leader left, names it in every JoinGroup answer, and
refuses everyone else's SyncGroup, so no assignment is ever made (docs/broker.md). Each is
waited out (a refusal 15 s or two session timeouts, a silent join 15 s or three), then healed:
adopt the strategy the group's members use, or reset the group.

Pure: the worker feeds it refusals and the clock and asks it against the group view.
"""

from __future__ import annotations

from balance_tui.core.group import GroupView
from balance_tui.core.rows import ConsumerStatus

#: A member refused by the group (INCONSISTENT_GROUP_PROTOCOL) this long, or twice its session timeout,
#: adopts the strategy of the group's members; a group stuck this long is reset.
REFUSAL_HEAL_SECONDS = 15.0

#: Why a stuck group is reset: refused for a window, or joined for a window with no answer at all.
WEDGED, STALLED = "wedged", "stalled"


class JoinWatch:
    """One member's join attempts: a refusal and since when, and whether the group is stuck."""

    def __init__(self, consumer_id: str, session_timeout_ms: int) -> None:
        self.consumer_id = consumer_id
        #: How long a refusal is waited out before it is healed.
        self.window = max(REFUSAL_HEAL_SECONDS, 2 * session_timeout_ms / 1000)
        #: How long a silent join is: a member killed as this one joins leaves its partitions without
        #: an owner for a session timeout, and Tansu's cooperative rounds take up to two more.
        self.stall_window = max(REFUSAL_HEAL_SECONDS, 3 * session_timeout_ms / 1000)
        #: Since when the group has refused this member's protocol, in this join (None: not refused).
        self.refused_since: float | None = None
        #: Why the group refuses this member's join, shown beside JOINING until the next attempt.
        self.refusal: str | None = None
        #: When this join last reset a stalled group: the next reset waits a window from there.
        self._stall_reset_at: float | None = None

    def new_join(self) -> None:
        self.refusal = None
        self.refused_since = None
        self._stall_reset_at = None

    def refused(self, hint: str, now: float) -> None:
        """The group refused our protocol (said once per join): remember why and since when."""
        self.refusal = "refused: " + hint.split(":", 1)[0]
        if self.refused_since is None:
            self.refused_since = now

    def stuck(self, view: GroupView, own: str, now: float, joining_for: float, owns_partitions: bool,
              partitions: int) -> str | None:
        """`WEDGED` or `STALLED` if this member must reset the group now, else None.

        Wedged: refused for a window while none of the group's members owns a partition (the
        broker keeps a protocol nobody uses: Tansu keeps an emptied group's protocol forever, e.g.
        from an earlier run on another strategy). Stalled: joining for a stall window, never
        refused, while some of the topic's `partitions` have no owner in the group view (on
        cooperative-sticky the others keep what they own while the group cannot form). Either only
        while every member uses `own`, and only for the first by consumer id of the members joining
        with nothing: one reset, after which everyone's next join succeeds. Once per window.
        """
        if owns_partitions:
            return None
        members = view.members()
        if self.refused_since is not None:
            reason, since, window = WEDGED, self.refused_since, self.window
            if any(m.assignment for m in members):
                return None
        else:
            reason, since, window = STALLED, now - joining_for, self.stall_window
            if self._stall_reset_at is not None:
                since = max(since, self._stall_reset_at)
            owned = {p for m in members for p in m.assignment}
            if not members or len(owned) >= partitions:
                return None  # a slow join into a group that works, or no view to tell
        if now - since < window or {m.strategy for m in members} - {own}:
            return None
        # Only members that ask this too: one idle in the group (its status says so) never does.
        joining = [m.consumer_id for m in members if not m.assignment and m.status == ConsumerStatus.JOINING.value]
        if min(joining, default=self.consumer_id) < self.consumer_id:
            return None
        if reason == WEDGED:
            self.refused_since = now
        else:
            self._stall_reset_at = now
        return reason

    def heal_target(self, theirs: set[str], own: str, now: float, owns_partitions: bool) -> tuple[str, float] | None:
        """A member must never stay refused when it could fix itself: after a window, the strategy
        every assigned member of the group uses (`theirs`), and how long we were refused; else None."""
        if self.refused_since is None or owns_partitions:
            return None
        refused_for = now - self.refused_since
        if refused_for < self.window:
            return None
        if len(theirs) != 1 or own in theirs:
            return None
        self.refused_since = None
        return next(iter(theirs)), refused_for
