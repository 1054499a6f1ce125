"""Provides the dashboard's keys: each binding with the tooltip the help screen shows."""

from __future__ import annotations

from textual.binding import Binding

#: `+` and `-` share one footer entry.
WORK_KEYS = Binding.Group("work ms")

# Footer order: help first so it survives an 80-column footer; quit last, where people look for it.
KEYS: list[Binding] = [
    Binding("question_mark", "help", "help", key_display="?", tooltip="Show this help."),
    Binding("1", "strategy('range')", "range",
            tooltip="Rejoin with the range assignor (eager: every member stops and is reassigned)."),
    Binding("2", "strategy('roundrobin')", "roundrobin",
            tooltip="Rejoin with roundrobin (eager: every member stops and is reassigned)."),
    Binding("3", "strategy('cooperative-sticky')", "coop-sticky",
            tooltip="Rejoin with cooperative-sticky (incremental: only moved partitions stop). "
                    "All members must use the same protocol family."),
    Binding("4", "strategy('consumer')", "kip-848", show=False,
            tooltip="Rejoin with KIP-848's consumer group protocol (the broker assigns, incrementally; "
                    "Apache Kafka 4). Refused where the broker does not serve it."),
    Binding("exclamation_mark", "group_strategy('range')", "all: range", key_display="!", show=False,
            tooltip="Shift+1: ask every member to rejoin with range together (via the members topic)."),
    Binding("at", "group_strategy('roundrobin')", "all: roundrobin", key_display="@", show=False,
            tooltip="Shift+2: ask every member to rejoin with roundrobin together."),
    Binding("number_sign", "group_strategy('cooperative-sticky')", "all: coop-sticky", key_display="#",
            show=False, tooltip="Shift+3: ask every member to rejoin with cooperative-sticky together."),
    Binding("dollar_sign", "group_strategy('consumer')", "all: kip-848", key_display="$", show=False,
            tooltip="Shift+4: ask every member to rejoin with KIP-848's consumer protocol together."),
    Binding("r", "restart", "restart",
            tooltip="Leave the group and rejoin with the same settings: watch the others rebalance."),
    Binding("p", "toggle_pause", "pause",
            tooltip="Pause or resume consuming: partitions stay assigned, lag grows, then drains."),
    Binding("plus,equals_sign", "work(1)", "slower", key_display="+", group=WORK_KEYS,
            tooltip="Slower: +1 ms simulated work per transaction (+0.5 ms below 1 ms)."),
    Binding("minus", "work(-1)", "faster", key_display="-", group=WORK_KEYS,
            tooltip="Faster: -1 ms simulated work per transaction (-0.5 ms at 1 ms and below)."),
    Binding("e", "export", "export",
            tooltip="Write the export files (balances, timeline, session) and show their paths."),
    Binding("k", "crash", "kill -9",
            tooltip="Crash this process on purpose, like kill -9: no LeaveGroup, so the group "
                    "waits session.timeout.ms before it rebalances."),
    Binding("slash", "filter", "filter", key_display="/",
            tooltip="Filter the balances by customer; Enter keeps the filter, Escape clears it."),
    Binding("d", "details", "details", show=False,
            tooltip="Show or hide the timeline's details: each partition of a restore (customers, changelog "
                    "records, time, where it resumes)."),
    Binding("q", "quit", "quit",
            tooltip="Leave the group cleanly, write the final export, then exit (q again: don't wait)."),
    Binding("escape", "clear_filter", "clear filter", show=False),
]


def work_step(work_ms: float, direction: int) -> float:
    """What `+` (1) or `-` (-1) adds to the simulated work per transaction, in ms.

    Steps of 1 ms, but half a millisecond below 1 ms, where a whole one would halve or stop the work.
    """
    below_one = work_ms < 1 or (direction < 0 and work_ms <= 1)
    return direction * (0.5 if below_one else 1.0)
