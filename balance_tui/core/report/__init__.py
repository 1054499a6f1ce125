"""Merge the session logs of several members into one rebalance story.

Pure: the input is the event dicts of each session log (see docs/session-log.md), the
output a `Report` and its renderings (`render_markdown`, `render_json`, `render_mermaid`).
How episodes are cut and what each number means is documented in docs/report.md.

The walk replays every member's events in global time order and keeps, per live
member, its assignment (the `assignment` field after each event). The group is
*settled* when it has no live member, or when no live member is waiting for its
first assignment after a (re)join and every partition is owned by exactly one live
member. A rebalance episode starts at a trigger (join, leave, crash, strategy
switch, restart) or at any loss of that state, and ends when it holds again.
"""

from balance_tui.core.formatting import format_lab_partitions as format_partitions
from balance_tui.core.formatting import format_ms
from balance_tui.core.report.build import build_report
from balance_tui.core.report.model import (
    CrashDetection,
    HistoryEntry,
    LagSummary,
    Member,
    MemberPause,
    Rebalance,
    Report,
    ReportError,
    Trigger,
)
from balance_tui.core.report.render import (
    REBALANCE_HEADER,
    render_json,
    render_markdown,
    render_mermaid,
)
from balance_tui.core.report.runs import parse_ts, valid_events

__all__ = [
    "REBALANCE_HEADER", "CrashDetection", "HistoryEntry", "LagSummary", "Member", "MemberPause", "Rebalance",
    "Report", "ReportError", "Trigger", "build_report", "format_ms", "format_partitions", "parse_ts",
    "render_json", "render_markdown", "render_mermaid", "valid_events",
]
