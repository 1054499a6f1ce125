"""`balance-tui broker --engine E` as a real subprocess, for the broker, produce and restart tests."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

from balance_tui.kafka.brokers.process import pid_file, read_pid_file
from tests.conftest import KAFKA_TEST_OPTIONS

CLI = [sys.executable, "-m", "balance_tui"]
BOOTSTRAP_LINE = re.compile(r"bootstrap: 127\.0\.0\.1:(\d+)\n")


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (killed but not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal-0 probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """One line from the process's stdout, waiting at most `timeout` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(f"no complete stdout line within {timeout}s (got {line!r})")
            chunk = os.read(process.stdout.fileno(), 1)  # byte by byte: never read past the line
            if not chunk:
                break
            line += chunk
    return line.decode()


#: What each engine is called in `down`'s lines and in pid files.
ENGINE_NAMES = {"tansu": "Tansu", "kafka": "Apache Kafka"}


def engine_flags(engine: str, workdir: Path) -> list[str]:
    """`--engine E`, and for Kafka a fresh data directory of the test's own and no join delay."""
    if engine == "kafka":
        return ["--engine", "kafka", "--data-dir", str(workdir / "kafka-data"), "--fresh",
                "--initial-rebalance-delay-ms", str(KAFKA_TEST_OPTIONS["initial_rebalance_delay_ms"])]
    return ["--engine", engine]


class BrokerCommand:
    """A running `balance-tui broker` subprocess; `child_pid` is its tansu or java process."""

    def __init__(self, engine: str, *args: str) -> None:
        self.engine = engine
        self.process = subprocess.Popen([*CLI, "broker", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.port = 0
        self.child_pid = 0

    def wait_ready(self, timeout: float = 30.0) -> BrokerCommand:
        line = read_line(self.process, timeout)
        match = BOOTSTRAP_LINE.fullmatch(line)
        assert match, f"unexpected first line {line!r}; stderr: {self.stderr_now()}"
        self.port = int(match.group(1))
        record = read_pid_file(pid_file("broker", self.port))
        assert record is not None and record["pid"] == self.process.pid and record["port"] == self.port
        assert record["engine"] == self.engine
        self.child_pid = record[f"{self.engine}_pid"]
        assert alive(self.child_pid)
        return self

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def finish(self, timeout: float = 20.0) -> tuple[int, str, str]:
        """Wait for exit; (code, rest of stdout, stderr)."""
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out.decode(), err.decode()

    def stderr_now(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read().decode() if self.process.stderr else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=20)


