"""A member keeps living while its broker is away: `stats` lines, commands, then the broker back.

The member freezes itself inside a changelog flush, after its records and before its commit
(`BALANCE_TUI_FREEZE_AT`, balance_tui/kafka/freeze_points.py); the broker is killed meanwhile,
then the member is woken: the commit it carries out now, with its source offsets, meets no
coordinator. librdkafka's `send_offsets_to_transaction` then waits out `socket.timeout.ms` (60 s)
whatever timeout it is given, and on Tansu back as a new cluster it was seen never to return:
a worker that waits for it logs nothing and answers nothing. Real processes on both brokers.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.broker_commands import BrokerCommand, alive, engine_flags
from tests.integration.members import Cluster, Member
from tests.integration.test_broker_restart import consumed
from tests.integration.test_changelog_faults import is_stopped
from tests.integration.test_consistency import fill

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]


def lines_since(member: Member, kind: str, since: datetime) -> list[dict]:
    return [e for e in member.events(kind) if datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) > since]


def test_a_member_logs_and_answers_while_its_broker_is_away_mid_commit(
        engine: str, tmp_path: Path, unique: Callable[[str], str]) -> None:
    port = free_port()
    flags = [*engine_flags(engine, tmp_path), "--port", str(port)]
    topic, group = unique("tx"), unique("grp")
    broker = BrokerCommand(engine, *flags, "--topic", topic).wait_ready(timeout=90)
    again: BrokerCommand | None = None
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="cooperative-sticky")
    try:
        fill(broker.bootstrap, topic, 600, seed=51)
        member = cluster.start(env={"BALANCE_TUI_FREEZE_AT": "before_commit"})
        wait_until(lambda: is_stopped(member), 90, "the member never froze inside a flush")

        os.kill(broker.child_pid, signal.SIGKILL)
        wait_until(lambda: not alive(broker.child_pid), 10, "the broker survived SIGKILL")
        broker.finish(timeout=30)
        woken = datetime.now(UTC)
        member.process.send_signal(signal.SIGCONT)

        # The broker stays away: the member must go on saying how it is, and do what it is asked.
        wait_until(lambda: len(lines_since(member, "stats", woken)) >= 2, 40,
                   "the member went silent while the broker was away")
        member.command("export")
        wait_until(lambda: lines_since(member, "exported", woken), 20,
                   "the member did not answer a command while the broker was away")
        assert member.process.poll() is None, member.output()

        # The broker back on its port (Kafka: the same data directory): consumption resumes.
        again = BrokerCommand(engine, *[f for f in flags if f != "--fresh"], "--topic", topic).wait_ready(timeout=90)
        back = "broker_restarted" if engine == "tansu" else "broker_back"
        wait_until(lambda: member.events(back), 60, f"the member never logged {back}")
        before = consumed(member)
        fill(again.bootstrap, topic, 300, seed=52)
        wait_until(lambda: consumed(member) >= before + 300, 90, "consumption did not resume after the outage")
    finally:
        cluster.stop_all()
        for command in (broker, again):
            if command is not None:
                command.kill()
    assert member.process.returncode == 0, member.output()
    stopped = member.events("stopped")
    assert stopped and not stopped[-1].get("abandoned"), stopped
