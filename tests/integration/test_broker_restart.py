"""A broker that goes away and comes back on the same port, with a member consuming from it.

Every member used to abort here (librdkafka #4605: a coordinator admin request sent while
the broker was away). Now: on Tansu (memory storage) the broker comes back as a new, empty
cluster, and the member says so and starts over on it; on Apache Kafka (data kept) it is the
same cluster, and consumption resumes. Real processes; the broker is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.broker_commands import BrokerCommand, alive, engine_flags
from tests.integration.members import Cluster, Member
from tests.integration.test_consistency import fill

pytestmark = pytest.mark.broker

CLI = [sys.executable, "-m", "balance_tui"]


def consumed(member: Member) -> int:
    stats = member.events("stats")
    return int(stats[-1]["consumed"]) if stats else 0


def verified(bootstrap: str, topic: str, group: str) -> subprocess.CompletedProcess[str] | None:
    result = subprocess.run([*CLI, "verify", "--bootstrap-servers", bootstrap, "--topic", topic, "--group", group],
                            capture_output=True, text=True, timeout=120, check=False)
    return result if result.returncode == 0 else None


def test_a_member_survives_its_broker_killed_and_restarted_on_the_same_port(
        engine: str, tmp_path: Path, unique: Callable[[str], str]) -> None:
    port = free_port()
    flags = [*engine_flags(engine, tmp_path), "--port", str(port)]
    topic, group = unique("tx"), unique("grp")
    first = BrokerCommand(engine, *flags, "--topic", topic).wait_ready(timeout=60)
    second: BrokerCommand | None = None
    cluster = Cluster(first.bootstrap, topic, group, tmp_path, strategy="cooperative-sticky")
    member = cluster.start()
    try:
        cluster.wait_until_stable([6])
        fill(first.bootstrap, topic, 600, seed=41)
        wait_until(lambda: consumed(member) >= 600, 60, "the backlog was not consumed")

        os.kill(first.child_pid, signal.SIGKILL)
        wait_until(lambda: not alive(first.child_pid), 10, "the broker survived SIGKILL")
        first.finish(timeout=30)  # `balance-tui broker` exits once its broker died
        wait_until(lambda: any(e.get("status") == "Broker unreachable" for e in member.events("stats")), 30,
                   "the member never said the broker went away", explain=member.story)
        # Restarted on the same port; Kafka keeps its data directory (no --fresh the second time).
        again = [f for f in flags if f != "--fresh"]
        second = BrokerCommand(engine, *again, "--topic", topic).wait_ready(timeout=90)
        if engine == "tansu":
            wait_until(lambda: member.events("broker_restarted"), 60, "the member never noticed the new cluster")
            restarted = member.events("broker_restarted")[0]
            assert restarted["partitions_lost"] == 6 and restarted["old_cluster_id"] != restarted["new_cluster_id"]
            assert "broker restarted: the topic starts empty, 6 partitions' state was lost" in member.output()
        else:
            wait_until(lambda: member.events("broker_back"), 60, "the member never said the broker was back")
            assert member.events("broker_back")[0]["same_cluster"] is True
        cluster.wait_until_stable([6], timeout=120)
        fill(second.bootstrap, topic, 400, seed=42)
        expected = 400 if engine == "tansu" else 1000
        wait_until(lambda: consumed(member) >= (600 + 400), 90, "consumption did not resume after the restart")
        assert member.process.poll() is None, member.output()  # no abort
        passed = wait_until(lambda: verified(second.bootstrap, topic, group), 90, "verify never passed")
        assert f"{expected:,} " in passed.stdout or "OK" in passed.stdout, passed.stdout
    finally:
        cluster.stop_all()
        for command in (first, second):
            if command is not None:
                command.kill()
    assert member.process.returncode == 0, member.output()
    assert "Assertion" not in member.output()
    stopped = member.events("stopped")
    assert stopped and not stopped[-1].get("abandoned"), stopped
