"""Provides the lab's processes: members started through a wrapper that dies with the lab, and what
each member's session log says so far.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from balance_tui.core.chaos import CHANGE_EVENTS, REFUSED_CODE
from balance_tui.core.report import (
    parse_ts,
)
from balance_tui.session_log import ASSIGNMENT_EVENTS, Event

#: Makes members and the generator receive signal argv[1] when the lab process dies (even by
#: SIGKILL), on Linux. argv: <signal> <lab pid> <program> <args...>
_DIE_WITH_LAB = """\
import ctypes, os, sys
ctypes.CDLL(None).prctl(1, int(sys.argv[1]), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[2]):
    sys.exit("balance-tui lab: the lab exited before this process started")
os.execv(sys.argv[3], sys.argv[3:])
"""



def python_command(*args: str, death_signal: int = signal.SIGTERM) -> list[str]:
    """`python -m balance_tui ARGS`, on Linux through a wrapper that sends `death_signal` if the lab dies."""
    command = [sys.executable, "-m", "balance_tui", *args]
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", _DIE_WITH_LAB, str(int(death_signal)), str(os.getpid()), *command]
    return command


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> list[int]:
    """SIGTERM them all, wait, SIGKILL what is left; the pids that had to be killed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    killed = []
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            killed.append(process.pid)
    return killed


@dataclass
class MemberProcess:
    """One `balance-tui --headless` member, and what its session log says so far."""

    name: str  # w1, w2 ...
    consumer_id: str
    log_path: Path
    output_path: Path
    process: subprocess.Popen[bytes]
    #: Its static member id (`group.instance.id`), if any.
    instance_id: str | None = None
    #: Set when the lab asked it to leave (SIGTERM) or killed it: no longer counted as live.
    leaving: bool = False
    #: SIGSTOPped by the lab (chaos) and not yet continued: it consumes nothing meanwhile.
    frozen: bool = False
    started: bool = False
    assignment: tuple[int, ...] | None = None
    last_assigned_at: datetime | None = None
    stats: list[tuple[datetime, float, int | None]] = field(default_factory=list)
    #: Waiting for an assignment: after its start, a rejoin (strategy switch, restart) or a loss.
    pending: bool = False
    #: The group refused its join (INCONSISTENT_GROUP_PROTOCOL) since its last assignment.
    refused: bool = False
    #: Its last line that changed what it owns or whether it waits for a join.
    last_change_at: datetime | None = None
    #: `status` of its last `stats` line, and that line's time.
    status: str | None = None
    last_stats_at: datetime | None = None
    #: The strategy in force at its last line.
    strategy: str | None = None
    _offset: int = 0

    def refresh(self) -> None:
        """Read the complete lines appended since the last call."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete, newline, _ = data.rpartition(b"\n")
        if not newline:
            return
        self._offset += len(complete) + 1
        for line in complete.split(b"\n"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if isinstance(event.get("strategy"), str):
                self.strategy = event["strategy"]
            if kind in CHANGE_EVENTS:
                self.last_change_at = parse_ts(event["ts"])
            if kind == Event.STARTED:
                self.started = True
                self.pending = True
            elif kind in ASSIGNMENT_EVENTS and isinstance(event.get("assignment"), list):
                self.assignment = tuple(sorted(event["assignment"]))
                if kind == Event.ASSIGNED:
                    self.last_assigned_at = parse_ts(event["ts"])
                    self.pending = self.refused = False
                elif kind == Event.LOST:
                    self.pending = True  # librdkafka rejoins by itself after a loss
            elif kind in (Event.STRATEGY_CHANGED, Event.RESTARTED):
                self.pending = True
            elif kind == Event.ERROR and event.get("code") == REFUSED_CODE:
                self.refused = True
            elif kind == Event.STATS:
                self.stats.append((parse_ts(event["ts"]), float(event.get("rate") or 0.0), event.get("lag")))
                self.status = event.get("status") if isinstance(event.get("status"), str) else None
                self.last_stats_at = parse_ts(event["ts"])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def live(self) -> bool:
        return self.alive and not self.leaving and not self.frozen

    def stats_since(self, moment: datetime) -> int:
        return sum(1 for at, _, _ in self.stats if at > moment)

    def describe(self) -> str:
        owned = "waiting" if self.assignment is None else f"{list(self.assignment)}"
        return f"{self.name}={owned}"


