"""The changelog through the faults that could break it: a kill -9 inside a flush, and a zombie.

Each member is a real `balance-tui --headless` process. `BALANCE_TUI_FREEZE_AT` makes a member
stop itself (SIGSTOP) at a named point of a changelog flush (balance_tui/kafka/freeze_points.py);
the test then kills it there, or lets the group evict it and wakes it up again. Balances must
come out exact whatever the broker shows of the interrupted transaction: Apache Kafka hides it,
Tansu shows the records that reached it (docs/consistency.md).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.freeze_points import FreezePoint
from balance_tui.session_log import export_paths
from tests.helpers import wait_until
from tests.integration.members import Cluster, Member
from tests.integration.test_consistency import expected_balances, exported_balances, fill, recompute

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


def is_stopped(member: Member) -> bool:
    """The process stopped itself (state `T` in /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{member.process.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


def verify(bootstrap: str, topic: str, group: str, *flags: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "balance_tui", "verify", "--bootstrap-servers", bootstrap,
                             "--topic", topic, "--group", group, "--json", *flags],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return json.loads(result.stdout)


def caught_up(member: Member) -> bool:
    """The member's latest `stats` line says it has no lag left."""
    stats = member.events("stats")
    return bool(stats) and stats[-1]["lag"] == 0


def read_to_the_end(member: Member, total: int) -> bool:
    """A sole owner caught up: no lag left, and from where its restores resumed it consumed the rest.

    Lag alone is not enough: a stats line written just after the restores may say 0 before the
    fetches told librdkafka the partitions' ends (seen in CI: lag 0 with 123 transactions unread).
    """
    stats = member.events("stats")
    resumed = sum(event["resume_offset"] for event in member.events("restored"))
    return caught_up(member) and resumed + stats[-1]["consumed"] >= total


@pytest.mark.parametrize("point", [FreezePoint.BETWEEN_RECORDS, FreezePoint.BEFORE_COMMIT])
def test_a_kill_inside_a_flush_loses_nothing_and_applies_nothing_twice(broker, unique, tmp_path, client_config,
                                                                       point):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 1500, seed=21)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="range")
    try:
        # A first owner leaves cleanly: every partition's changelog ends with a completed flush.
        first = cluster.start("first")
        wait_until(lambda: any(e["consumed"] >= 1500 for e in first.events("stats")), 60,
                   "the first member never consumed the first half")
        assert first.terminate() == 0
        sent += fill(broker.bootstrap, topic, 1500, seed=22)

        # The second owner restores, consumes the second half, and stops inside its first flush.
        second = cluster.start("second", env={"BALANCE_TUI_FREEZE_AT": point})
        wait_until(lambda: is_stopped(second), 60, f"the second member never reached {point}")
        second.kill()

        third = cluster.start("third")
        wait_until(lambda: len(third.events("restored")) == 6, 60, "the third member never restored everything")
        wait_until(lambda: read_to_the_end(third, len(sent)), 60, "the third member never caught up")
        assert third.terminate() == 0
        export = third.export()
    finally:
        cluster.stop_all()
    assert exported_balances(export) == expected_balances(recompute(sent))
    report = verify(broker.bootstrap, topic, group, "--require-caught-up")
    assert report["ok"], report


def test_a_member_frozen_inside_a_flush_is_fenced_when_it_wakes(broker, unique, tmp_path, client_config):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 2000, seed=31)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="range")
    try:
        zombie = cluster.start("zombie", env={"BALANCE_TUI_FREEZE_AT": FreezePoint.BEFORE_COMMIT})
        wait_until(lambda: is_stopped(zombie), 60, "the member never reached the point before its commit")
        # Frozen with a transaction open: the group evicts it, the new owner fences its writers.
        heir = cluster.start("heir")
        wait_until(lambda: len(heir.events("restored")) == 6, 60, "the new owner never restored everything")
        zombie.process.send_signal(signal.SIGCONT)
        fenced = wait_until(lambda: zombie.events("fenced"), 30, "the woken member was never told it was fenced")
        assert fenced[0]["partitions"], fenced
        cluster.wait_until_stable([3, 3])
        wait_until(lambda: all(caught_up(m) for m in cluster.live()), 60, "the group never caught up")
        live = cluster.live()
        for member in live:
            assert member.terminate() == 0
        exports = [member.export() for member in live]
    finally:
        cluster.stop_all()
    union: dict = {}
    for export in exports:
        balances = exported_balances(export)
        assert not set(balances) & set(union), "a customer is exported by both members"
        union.update(balances)
    assert union == expected_balances(recompute(sent))
    report = verify(broker.bootstrap, topic, group, "--require-caught-up")
    assert report["ok"], report
    assert not any("go back in source offset" in problem for problem in report["problems"]), report


def test_a_zombie_that_applied_its_prefetched_messages_writes_none_of_them(broker, unique, tmp_path, client_config):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 4000, seed=41)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="range")
    try:
        # Slow (2 ms a transaction), so its prefetch queue holds plenty when it is frozen.
        zombie = cluster.start("zombie", work_ms=2)
        wait_until(lambda: any(e["consumed"] > 0 for e in zombie.events("stats")), 60, "never consumed")
        zombie.process.send_signal(signal.SIGSTOP)
        heir = cluster.start("heir")
        wait_until(lambda: len(heir.events("restored")) == 6, 60, "the new owner never restored everything")
        zombie.process.send_signal(signal.SIGCONT)
        wait_until(lambda: zombie.events("lost") or zombie.events("fenced"), 30,
                   "the woken member never noticed it lost its partitions")
        cluster.wait_until_stable([3, 3])
        wait_until(lambda: all(caught_up(m) for m in cluster.live()), 90, "the group never caught up")
        live = cluster.live()
        for member in live:
            assert member.terminate() == 0
        exports = [json.loads(export_paths(member.log_path)[0].read_text()) for member in live]
    finally:
        cluster.stop_all()
    union: dict = {}
    for export in exports:
        union.update(exported_balances(export))
    assert union == expected_balances(recompute(sent))
    report = verify(broker.bootstrap, topic, group, "--require-caught-up")
    assert report["ok"], report
    assert not any("go back in source offset" in problem for problem in report["problems"]), report
