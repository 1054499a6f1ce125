"""Merge the session logs of several terminals into one rebalance story.

Give the session log of every member of the group (or directories holding them):
prints Markdown with a table of every rebalance (trigger, members before and after,
partitions moved, pause per member, crash detection time, time until every partition
was owned again, lag peak and drain time), each member's assignment history and a
Mermaid sequenceDiagram of what happened; `--json` prints the same as JSON.
How each number is measured: docs/report.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from balance_tui.config import Settings
from balance_tui.core.report import (
    ReportError,
    build_report,
    render_json,
    render_markdown,
    valid_events,
)
from balance_tui.errors import UserError
from balance_tui.session_log import read_session_log

#: Reads session logs only: the Kafka client settings are not checked.
USES_KAFKA = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", type=Path, metavar="LOG",
                        help="session log (.jsonl) of a member, or a directory of them")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                        help="write the report to FILE instead of standard output")


def log_paths(paths: list[Path]) -> list[Path]:
    """The files named, with each directory replaced by the `.jsonl` files directly inside it."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.glob("*.jsonl") if p.is_file())
            if not inside:
                raise UserError(f"{path}: no .jsonl session log in this directory")
            found.extend(inside)
        elif not path.exists():
            raise UserError(f"{path}: no such file")
        else:
            found.append(path)
    return found


def read_log(path: Path) -> list[dict[str, Any]]:
    """The usable events of one log; one-line UserError if it cannot be read or holds none."""
    try:
        events = read_session_log(path)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a session log (not UTF-8 text)") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror or error}") from None
    usable = valid_events(events)
    if not usable:
        raise UserError(f"{path}: empty session log (no complete event)")
    return usable


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs = [read_log(path) for path in log_paths(args.logs)]
    try:
        report = build_report(logs)
    except ReportError as error:
        raise UserError(str(error)) from None
    text = render_json(report) if args.json else render_markdown(report)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError(f"{args.output}: cannot write: {error.strerror or error}") from None
    print(f"report written to {args.output}", file=sys.stderr)
    return 0
