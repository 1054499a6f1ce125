"""DescribeGroups asked while the broker is away, then the broker back: the process lives on.

librdkafka aborts the process when a coordinator admin request timed out while its
coordinator was away and the coordinator comes back (issue #4605: `Assertion
'eonce->refcnt > 0' failed`); a lab member in a group-wide switch died so when its broker
restarted. The beacon never lets librdkafka time such a request out: it gives the request up
with its client. A real broker, SIGKILLed and restarted on the same port; the beacon in its own
process, so an abort is seen as a dead process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.broker_commands import BrokerCommand, alive, engine_flags

pytestmark = pytest.mark.broker


class Probe:
    """`tests.integration.beacon_probe` running; its latest counters."""

    def __init__(self, bootstrap: str, group: str, topic: str, stderr: Path) -> None:
        # stderr to a file: librdkafka's complaints during the outage would fill an unread pipe and stall it.
        self.stderr = stderr
        with stderr.open("wb") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "tests.integration.beacon_probe", bootstrap,
                                             group, topic], stdout=subprocess.PIPE, stderr=sink)
        self.counters = {"answers": 0, "abandoned": 0}
        threading.Thread(target=self._read, daemon=True).start()

    def update(self) -> dict[str, int]:
        """The newest counters the probe printed (a thread reads its stdout as it comes)."""
        return self.counters

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.counters = json.loads(line)

    def ended(self) -> int:
        """Requests that ended, answered or given up."""
        counters = self.update()
        return counters["answers"] + counters["abandoned"]

    def story(self) -> str:
        if self.process.poll() is None:
            return f"probe running, counters {self.counters}"
        return f"probe exited {self.process.returncode}: {self.stderr.read_text(errors='replace')[-2000:]}"


@pytest.mark.timeout(360)
def test_a_beacon_asking_the_group_through_an_outage_survives_the_broker_coming_back(
        engine: str, tmp_path: Path, unique: Callable[[str], str]) -> None:
    port = free_port()
    flags = [*engine_flags(engine, tmp_path), "--port", str(port)]
    topic, group = unique("tx"), unique("grp")
    first = BrokerCommand(engine, *flags, "--topic", topic).wait_ready(timeout=60)
    second: BrokerCommand | None = None
    probe = Probe(first.bootstrap, group, topic, tmp_path / "probe.stderr")
    try:
        wait_until(lambda: probe.update()["answers"] >= 1, 60, "the broker never answered DescribeGroups",
                   explain=probe.story)
        os.kill(first.child_pid, signal.SIGKILL)
        wait_until(lambda: not alive(first.child_pid), 10, "the broker survived SIGKILL")
        first.finish(timeout=30)
        # Two more ended requests: at least one was asked and ended while nothing listened.
        before = probe.ended()
        wait_until(lambda: probe.ended() >= before + 2, 60, "requests asked during the outage never ended",
                   explain=probe.story)
        assert probe.counters["abandoned"] >= 1, probe.story()  # given up, not timed out by librdkafka
        again = [f for f in flags if f != "--fresh"]
        second = BrokerCommand(engine, *again, "--topic", topic).wait_ready(timeout=90)
        answers_back = probe.update()["answers"]
        wait_until(lambda: probe.update()["answers"] >= answers_back + 3 or probe.process.poll() is not None, 90,
                   "the broker back never answered DescribeGroups", explain=probe.story)
        assert probe.process.poll() is None, probe.story()
    finally:
        if probe.process.poll() is None:
            probe.process.kill()
        probe.process.communicate(timeout=20)
        for command in (first, second):
            if command is not None:
                command.kill()
