"""docs/session-log.md and `Event` name the same lines: a new event cannot go undocumented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from balance_tui.core.events import Event
from balance_tui.core.transaction_model import RejectionReason

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "session-log.md").read_text(encoding="utf-8")


def documented_events() -> set[str]:
    """The event names in the first column of the session log's table (`paused`, `resumed` share a row)."""
    table = DOC.split("## The session log", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z_]+)`", first_cell))
    return names


def written_events() -> set[str]:
    """Every `Event.X` the package writes, read from its source."""
    names: set[str] = set()
    for path in (ROOT / "balance_tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Event"
                    and node.attr.isupper()):
                names.add(Event[node.attr].value)
    return names


def test_every_event_is_documented_and_every_documented_event_exists() -> None:
    assert documented_events() == {event.value for event in Event}


def test_every_event_has_a_writer() -> None:
    assert {event.value for event in Event} - written_events() == set()


def test_session_log_names_every_rejection_reason() -> None:
    row = next(line for line in DOC.splitlines() if line.startswith("| `rejected`"))
    assert {reason.value for reason in RejectionReason} <= set(re.findall(r"`([^`]+)`", row))


def test_writers_use_the_enum_not_bare_strings() -> None:
    """`session.write("assigned", ...)` would slip past the enum: every write names an Event."""
    offenders = []
    for path in (ROOT / "balance_tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "write"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and node.args[0].value in {event.value for event in Event}):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
