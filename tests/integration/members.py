"""Real `balance-tui --headless` processes as group members, observed through their session logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from balance_tui.session_log import export_paths, read_session_log
from tests.helpers import wait_until

#: Short timeouts keep the suite fast: Tansu holds a join for session.timeout/2 (1 s here).
FAST_GROUP_FLAGS = ["--session-timeout-ms", "2000", "--heartbeat-interval-ms", "500"]


@dataclass
class Member:
    """One headless consumer process and its session log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    output_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        events = read_session_log(self.log_path)
        return [e for e in events if kind is None or e["event"] == kind]

    def assignment(self) -> list[int] | None:
        """The assignment after the last assigned/revoked/lost event (None before any)."""
        for event in reversed(self.events()):
            if event["event"] in ("assigned", "revoked", "lost"):
                return sorted(event["assignment"])
        return None

    def is_settled_with(self, partitions: int) -> bool:
        assignment = self.assignment()
        return assignment is not None and len(assignment) == partitions

    def command(self, line: str) -> None:
        """Type a command on the member's standard input (`strategy range`, `restart`, ...)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no export, exactly like `kill -9`."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM: the member leaves the group cleanly and writes its export."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def export(self) -> dict[str, Any]:
        json_path, _ = export_paths(self.log_path)
        return json.loads(json_path.read_text())

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def story(self, last: int = 20) -> str:
        """The session log's last events in one line each (stats only where the status changed), for failures."""
        lines, status = [], None
        for event in self.events():
            if event["event"] == "stats":
                if event.get("status") == status:
                    continue
                status = event.get("status")
            detail = {k: v for k, v in event.items() if k in ("status", "code", "reason", "partitions", "outcome")}
            lines.append(f"{event['ts'][11:23]} {event['event']} {detail}")
        return "\n".join(lines[-last:]) + f"\nexit code: {self.process.poll()}"


class Cluster:
    """Starts and reaps members of one group on one topic."""

    def __init__(self, bootstrap: str, topic: str, group: str, workdir: Path, strategy: str = "range",
                 extra_flags: list[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.workdir = workdir
        self.strategy = strategy
        self.extra_flags = extra_flags or []
        self.members: list[Member] = []

    def start(self, name: str | None = None, strategy: str | None = None, work_ms: float = 0,
              flags: list[str] | None = None, env: dict[str, str] | None = None) -> Member:
        """Start a member; `flags` come last, so they override the cluster's (argparse: last wins)."""
        name = name or f"m{len(self.members) + 1}"
        log_path = self.workdir / f"{name}.jsonl"
        output_path = self.workdir / f"{name}.out"
        argv = [sys.executable, "-m", "balance_tui", "--headless",
                "--bootstrap-servers", self.bootstrap, "--topic", self.topic, "--group", self.group,
                "--strategy", strategy or self.strategy, "--work-ms", str(work_ms),
                "--session-log", str(log_path), "--consumer-id", f"balance-worker-test-{name}",
                *FAST_GROUP_FLAGS, *self.extra_flags, *(flags or [])]
        with output_path.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        member = Member(name, process, log_path, output_path)
        self.members.append(member)
        return member

    def live(self) -> list[Member]:
        return [m for m in self.members if m.process.poll() is None]

    def settled(self, expected: list[int]) -> bool:
        """The live members' assignment sizes are `expected` and cover each partition at most once."""
        assignments = [m.assignment() for m in self.live()]
        if any(a is None for a in assignments):
            return False
        sizes = sorted((len(a) for a in assignments), reverse=True)
        owned = sorted(p for a in assignments for p in a)
        return sizes == sorted(expected, reverse=True) and owned == sorted(set(owned))

    def wait_for_assignments(self, expected: list[int], timeout: float = 60) -> None:
        try:
            wait_until(lambda: self.settled(expected), timeout, f"assignments never became {expected}")
        except AssertionError as error:
            seen = "; ".join(f"{m.name}={m.assignment()}" for m in self.live())
            raise AssertionError(f"{error}: {seen}") from None

    def quiet_for(self, seconds: float) -> bool:
        """No live member logged a rebalance or restore in the last `seconds`."""
        now = datetime.now(UTC)
        for member in self.live():
            events = [e for e in member.events() if e["event"] in ("assigned", "revoked", "lost", "restored")]
            if not events:
                return False
            last = datetime.fromisoformat(events[-1]["ts"].replace("Z", "+00:00"))
            if (now - last).total_seconds() < seconds:
                return False
        return True

    def wait_until_stable(self, expected: list[int], quiet_seconds: float = 3.0, timeout: float = 90) -> None:
        """Like `wait_for_assignments`, and no member saw a rebalance event for `quiet_seconds`.

        Cooperative rebalances on the embedded broker take several rounds: the sizes can look
        right between two rounds while partitions are still about to move.
        """
        wait_until(lambda: self.settled(expected) and self.quiet_for(quiet_seconds), timeout,
                   f"the group never stayed at {expected} for {quiet_seconds} s")

    def stop_all(self) -> None:
        for member in self.members:
            if member.process.poll() is None:
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            try:
                member.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait(timeout=5)
