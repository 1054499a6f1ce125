"""JoinWatch: a refused or silent join is waited out for one window, then healed exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

from balance_tui.core.group import GroupView, MemberHeartbeat
from balance_tui.core.join_watch import STALLED, WEDGED, JoinWatch
from tests.helpers import member_heartbeat

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def heartbeat(member: str, strategy: str, assignment: tuple[int, ...], status: str = "Joining") -> MemberHeartbeat:
    return member_heartbeat(member, strategy, assignment, status, sent_at=T0)


def view_of(*members: MemberHeartbeat) -> GroupView:
    view = GroupView()
    for member in members:
        view.observe(member, T0)
    view.rows(T0)
    return view


def test_the_window_is_fifteen_seconds_or_two_session_timeouts() -> None:
    assert JoinWatch("a", 2_000).window == 15.0
    assert JoinWatch("a", 45_000).window == 90.0


def stuck(watch: JoinWatch, view: GroupView, strategy: str, now: float, joining_for: float) -> str | None:
    return watch.stuck(view, strategy, now=now, joining_for=joining_for, owns_partitions=False, partitions=6)


def test_a_refused_member_adopts_the_groups_strategy_only_after_a_while() -> None:
    watch = JoinWatch("me", 2_000)
    assert watch.heal_target({"roundrobin"}, "range", now=100.0, owns_partitions=False) is None  # never refused
    watch.refused("the group uses roundrobin, not range: press 2", now=100.0)
    assert watch.refusal == "refused: the group uses roundrobin, not range"
    assert watch.heal_target({"roundrobin"}, "range", now=110.0, owns_partitions=False) is None  # not long enough
    assert watch.heal_target({"roundrobin", "range"}, "range", now=116.0, owns_partitions=False) is None  # no one
    assert watch.heal_target({"roundrobin"}, "range", now=116.0, owns_partitions=True) is None
    assert watch.heal_target({"roundrobin"}, "range", now=116.0, owns_partitions=False) == ("roundrobin", 16.0)
    watch.new_join()
    assert watch.refusal is None and watch.refused_since is None


def test_a_refused_group_nobody_is_in_is_reset_by_its_first_member_once_per_window() -> None:
    view = view_of(heartbeat("a", "range", ()), heartbeat("b", "range", ()))
    first, second = JoinWatch("a", 2_000), JoinWatch("b", 2_000)
    for watch in (first, second):
        watch.refused("INCONSISTENT_GROUP_PROTOCOL: refused", now=100.0)
    assert stuck(first, view, "range", now=110.0, joining_for=10.0) is None  # too soon
    assert stuck(second, view, "range", now=116.0, joining_for=16.0) is None  # "a" comes first
    assert stuck(first, view, "range", now=116.0, joining_for=16.0) == WEDGED
    assert stuck(first, view, "range", now=117.0, joining_for=17.0) is None  # once per window
    assert stuck(first, view, "range", now=131.0, joining_for=31.0) == WEDGED


def test_a_refused_member_resets_nothing_where_the_group_works_or_uses_another_strategy() -> None:
    working = view_of(heartbeat("a", "range", ()), heartbeat("b", "range", (0, 1, 2)))
    mixed = view_of(heartbeat("b", "roundrobin", ()))  # heal_target's case: adopt, do not reset
    for view in (working, mixed):
        watch = JoinWatch("a", 2_000)
        watch.refused("INCONSISTENT_GROUP_PROTOCOL: refused", now=100.0)
        assert stuck(watch, view, "range", now=200.0, joining_for=100.0) is None


def test_a_silent_join_resets_the_group_after_a_window_only_while_partitions_have_no_owner() -> None:
    """Tansu 0.6.0 keeps a re-forming group's departed leader: every join is answered, none assigned."""
    view = view_of(heartbeat("a", "cooperative-sticky", ()), heartbeat("b", "cooperative-sticky", ()))
    first, second = JoinWatch("a", 2_000), JoinWatch("b", 2_000)
    coop = "cooperative-sticky"
    assert first.stuck(view, coop, now=100.0, joining_for=14.9, owns_partitions=False, partitions=6) is None
    assert second.stuck(view, coop, now=100.0, joining_for=15.0, owns_partitions=False, partitions=6) is None
    assert first.stuck(view, coop, now=100.0, joining_for=15.0, owns_partitions=True, partitions=6) is None
    assert first.stuck(view, coop, now=100.0, joining_for=15.0, owns_partitions=False, partitions=6) == STALLED
    # The join goes on (the consumer is the same): the next reset only one window after this one.
    assert first.stuck(view, coop, now=110.0, joining_for=25.0, owns_partitions=False, partitions=6) is None
    assert first.stuck(view, coop, now=115.0, joining_for=30.0, owns_partitions=False, partitions=6) == STALLED
    first.new_join()
    assert first.stuck(view, coop, now=116.0, joining_for=1.0, owns_partitions=False, partitions=6) is None


def test_a_stall_counts_partitions_without_an_owner_and_is_reset_by_the_first_member_joining_with_nothing() -> None:
    """On cooperative-sticky the others keep their partitions while the group cannot form."""
    coop = "cooperative-sticky"
    half = view_of(heartbeat("a", coop, (0, 1, 2)), heartbeat("b", coop, ()), heartbeat("c", coop, ()))
    assert JoinWatch("b", 2_000).stuck(half, coop, now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) == STALLED  # "a" owns something: it is not the one
    assert JoinWatch("c", 2_000).stuck(half, coop, now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) is None  # "b" comes first among those owning nothing
    idle = view_of(heartbeat("a", coop, (0, 1, 2)), heartbeat("b", coop, (), status="Idle"), heartbeat("c", coop, ()))
    assert JoinWatch("c", 2_000).stuck(idle, coop, now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) == STALLED  # "b" is idle in the group: it never asks
    everything = view_of(heartbeat("a", coop, (0, 1, 2)), heartbeat("b", coop, ()), heartbeat("c", coop, (3, 4, 5)))
    assert JoinWatch("b", 2_000).stuck(everything, coop, now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) is None  # a slow join into a group that works
    mixed = view_of(heartbeat("a", "range", ()), heartbeat("b", coop, ()))
    assert JoinWatch("b", 2_000).stuck(mixed, coop, now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) is None  # a refusal's case, not a stall
    unknown = GroupView()  # no members topic: nothing says the partitions have no owner
    assert JoinWatch("a", 2_000).stuck(unknown, "range", now=200.0, joining_for=60.0, owns_partitions=False,
                                       partitions=6) is None
    refused = JoinWatch("a", 2_000)
    refused.refused("INCONSISTENT_GROUP_PROTOCOL: refused", now=100.0)
    assert refused.stuck(unknown, "range", now=200.0, joining_for=100.0, owns_partitions=False,
                         partitions=6) == WEDGED


def test_a_stall_waits_three_session_timeouts_where_that_is_longer() -> None:
    """A member killed as another joins leaves its partitions unowned for a session timeout, then rounds."""
    watch = JoinWatch("a", 10_000)
    assert (watch.window, watch.stall_window) == (20.0, 30.0)
    view = view_of(heartbeat("a", "range", ()))
    assert watch.stuck(view, "range", now=100.0, joining_for=29.0, owns_partitions=False, partitions=6) is None
    assert watch.stuck(view, "range", now=100.0, joining_for=30.0, owns_partitions=False, partitions=6) == STALLED
