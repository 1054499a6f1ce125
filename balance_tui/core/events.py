"""Provides the session log's vocabulary: the kind of every line, and how often `stats` lines come.

The worker writes these names, `report`, the lab and the tests read them: one definition, in
pure core, documented line by line in docs/session-log.md (a test checks both agree).
"""

from __future__ import annotations

from enum import StrEnum

#: Every member writes a `stats` line at least this often, whatever it is doing (the contract of
#: docs/session-log.md, which `report` and `lab` rely on).
STATS_SECONDS = 5.0


class Event(StrEnum):
    """Every kind of line a session log holds (docs/session-log.md documents each; a test checks both agree).

    A string enum: `Event.ASSIGNED == "assigned"`, so the lines read back compare with it directly.
    """

    STARTED = "started"
    BROKER = "broker"
    ASSIGNED = "assigned"
    REVOKED = "revoked"
    LOST = "lost"
    RESTORED = "restored"
    STRATEGY_CHANGED = "strategy_changed"
    RESTARTED = "restarted"
    PAUSED = "paused"
    RESUMED = "resumed"
    WORK_MS_CHANGED = "work_ms_changed"
    ERROR = "error"
    REJECTED = "rejected"
    STATS = "stats"
    GROUP_COMMAND = "group_command"
    GROUP_RESET = "group_reset"
    GROUP_CONFIG = "group_config"
    REFUSAL_HEALED = "refusal_healed"
    STATIC_REJOIN = "static_rejoin"
    COMMIT_SKIPPED = "commit_skipped"
    FENCED = "fenced"
    BROKER_BACK = "broker_back"
    BROKER_RESTARTED = "broker_restarted"
    LAG_ALERT_RAISED = "lag_alert_raised"
    LAG_ALERT_CLEARED = "lag_alert_cleared"
    EXPORTED = "exported"
    STOPPED = "stopped"


#: The lines that say how the assignment changed.
ASSIGNMENT_EVENTS = (Event.ASSIGNED, Event.REVOKED, Event.LOST)
