"""Balances that survive rebalances and crashes: the changelog, restoration, and no double apply."""

from __future__ import annotations

import signal
import subprocess
import sys
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition

from balance_tui.config import load_settings
from balance_tui.core.ledger import Ledger
from balance_tui.core.traffic import TrafficGenerator, murmur2_partition
from balance_tui.core.transaction import Rejection, parse_transaction
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.producer import produce
from balance_tui.session_log import export_paths
from tests.helpers import wait_until
from tests.integration.members import Cluster

pytestmark = pytest.mark.broker


def fill(bootstrap: str, topic: str, count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Produce `count` generated transactions; return them in production order."""
    generator = TrafficGenerator(customers=40, seed=seed)
    sent = [generator.next_message() for _ in range(count)]
    replay = iter(sent)

    class Replay:  # produce() takes a generator; feed it exactly the messages we recorded
        def next_message(self) -> tuple[bytes, bytes]:
            return next(replay)

        def next_batch(self, n: int) -> list[tuple[bytes, bytes]]:
            return [m for m in (next(replay, None) for _ in range(n)) if m is not None]

    settings = load_settings({"bootstrap_servers": bootstrap, "topic": topic})
    report = produce(settings, Replay(), rate=0, count=count, duration=None)  # type: ignore[arg-type]
    assert report.delivered == count
    return sent


def recompute(sent: list[tuple[bytes, bytes]], partitions: int = 6) -> Ledger:
    """What one consumer reading every partition in order must compute."""
    ledger = Ledger()
    offsets = [0] * partitions
    for key, value in sent:
        partition = murmur2_partition(key, partitions)
        tx = parse_transaction(value)
        if not isinstance(tx, Rejection):
            ledger.apply(tx, partition, offsets[partition])
        offsets[partition] += 1
    return ledger


def trailing_unapplied(sent: list[tuple[bytes, bytes]], partitions: int = 6) -> int:
    """Messages after the last applied transaction of their partition (they leave no changelog record)."""
    trailing = [0] * partitions
    ledger = Ledger()
    for key, value in sent:
        partition = murmur2_partition(key, partitions)
        tx = parse_transaction(value)
        applied = not isinstance(tx, Rejection) and ledger.apply(tx, partition).value != "skipped"
        trailing[partition] = 0 if applied else trailing[partition] + 1
    return sum(trailing)


def exported_balances(export: dict) -> dict[tuple[str, str], tuple[Decimal, int]]:
    return {(b["customerId"], b["currency"]): (Decimal(b["balance"]), b["transactionCount"])
            for b in export["balances"]}


def union_of_exports(members) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """Every member's exported balances together; each customer and currency in one export only."""
    union: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for member in members:
        balances = exported_balances(member.export())
        assert not set(balances) & set(union), f"a customer is exported by two members (again by {member.name})"
        union.update(balances)
    return union


def expected_balances(ledger: Ledger) -> dict[tuple[str, str], tuple[Decimal, int]]:
    return {(r.customer_id, r.currency): (r.balance, r.transaction_count) for r in ledger.rows()}


def committed(bootstrap: str, group: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(6)], timeout=10)]
    finally:
        consumer.close()


def test_a_crash_after_uncommitted_work_does_not_apply_it_twice(broker, unique, tmp_path, client_config):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 3000, seed=11)
    # Commits so rare that none happens before the kill: every applied offset is uncommitted.
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="range",
                      extra_flags=["--commit-interval-ms", "3600000"])
    try:
        first = cluster.start("first")
        wait_until(lambda: any(e["consumed"] >= 3000 for e in first.events("stats")), 60,
                   "the first member never consumed everything")
        first.kill()
        assert all(offset < 0 for offset in committed(broker.bootstrap, group, topic)), \
            "the scenario needs offsets that were applied but never committed"

        second = cluster.start("second")
        wait_until(lambda: len(second.events("restored")) == 6, 60, "the new owner never restored all partitions")
        restored = second.events("restored")
        assert sum(e["customers"] for e in restored) == len(recompute(sent).customers)
        rereads = trailing_unapplied(sent)
        wait_until(lambda: any(e["consumed"] >= rereads for e in second.events("stats")), 30,
                   "the new owner never caught up")
        assert second.terminate() == 0
        export = second.export()
    finally:
        cluster.stop_all()
    # Resumed right after the last applied transaction of each partition: only the skipped
    # (Failed/Rejected) ones after it are read again, and nothing is applied twice.
    assert export["messagesConsumed"] == rereads
    assert export["balanceUpdates"] == 0
    assert exported_balances(export) == expected_balances(recompute(sent))


def test_partitions_that_move_are_restored_and_balances_stay_exact(broker, unique, tmp_path, client_config):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 2000, seed=5)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="cooperative-sticky")
    try:
        first = cluster.start("first")
        wait_until(lambda: any(e["consumed"] >= 2000 for e in first.events("stats")), 60,
                   "the first member never consumed everything")
        second = cluster.start("second")
        cluster.wait_for_assignments([3, 3])
        wait_until(lambda: len(second.events("restored")) == 3, 60, "the second member never restored")
        # Cooperative: the first member kept its three partitions and restored nothing more.
        assert len(first.events("restored")) == 6  # its own start, from an empty changelog
        assert all(len(e["partitions"]) == 3 for e in first.events("revoked"))
        for member in (first, second):
            member.process.send_signal(15)
        for member in (first, second):
            assert member.process.wait(timeout=30) == 0
        union = union_of_exports([first, second])
    finally:
        cluster.stop_all()
    assert union == expected_balances(recompute(sent))


def caught_up(member) -> bool:
    """A `stats` line written after the member's last rebalance or restore shows every owned partition at lag 0."""
    events = member.events()
    last_change = max((i for i, e in enumerate(events) if e["event"] in ("assigned", "revoked", "lost", "restored")),
                      default=-1)
    later = [e for e in events[last_change + 1:] if e["event"] == "stats"]
    return bool(later) and later[-1]["lag"] == 0 and \
        sorted(int(p) for p in later[-1]["lag_by_partition"]) == sorted(later[-1]["assignment"])


def test_a_rejoin_that_moves_partitions_leaves_no_stale_balances(broker, unique, tmp_path, client_config):
    """A member that leaves and rejoins (here: a group-wide switch) keeps nothing it no longer owns."""
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    sent = fill(broker.bootstrap, topic, 1200, seed=11)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="range")
    try:
        members = [cluster.start("a"), cluster.start("b")]
        cluster.wait_for_assignments([3, 3])
        wait_until(lambda: sum(m.events("stats")[-1]["consumed"] for m in members if m.events("stats")) >= 1200,
                   60, "the members never consumed the backlog")
        before = {m.name: m.assignment() for m in members}
        members[0].command("group-strategy roundrobin")
        wait_until(lambda: all(m.events("assigned") and m.events("assigned")[-1]["strategy"] == "roundrobin"
                               for m in members), 90, "the members never rejoined with roundrobin")
        cluster.wait_until_stable([3, 3])
        # range gave consecutive partitions, roundrobin interleaves them: something really moved.
        assert {m.name: m.assignment() for m in members} != before
        wait_until(lambda: all(caught_up(m) for m in members), 60, "the members never caught up")
        for member in members:
            assert member.terminate() == 0
        union = union_of_exports(members)
    finally:
        cluster.stop_all()
    assert union == expected_balances(recompute(sent))


def run_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "balance_tui", "verify", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


OTHER_STRATEGY = {"range": "cooperative-sticky", "roundrobin": "range", "cooperative-sticky": "roundrobin"}


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_balances_survive_crashes_restarts_and_a_strategy_switch(broker, unique, tmp_path, client_config, strategy):
    topic, group = unique("tx"), unique("grp")
    ensure_topic(client_config, topic, 6)
    common = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, "--group", group]
    producer = subprocess.Popen([sys.executable, "-m", "balance_tui", "produce", *common, "--rate", "400",
                                 "--duration", "20", "--customers", "60", "--seed", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy=strategy)
    try:
        cluster.start("steady")
        switcher, victim = cluster.start("switcher"), cluster.start("victim")
        cluster.wait_for_assignments([2, 2, 2])
        for round_ in range(2):
            victim.kill()
            cluster.wait_for_assignments([3, 3])
            victim = cluster.start(f"victim{round_ + 2}")
            cluster.wait_for_assignments([2, 2, 2])
        # A switch the rest of the group does not follow is refused; switching back rejoins.
        switcher.command(f"strategy {OTHER_STRATEGY[strategy]}")
        wait_until(lambda: switcher.events("strategy_changed"), 20, "the switch was never carried out")
        switcher.command(f"strategy {strategy}")
        cluster.wait_for_assignments([2, 2, 2])
        assert producer.wait(timeout=60) == 0
        changelog_args = [*common, "--require-caught-up"]
        wait_until(lambda: run_verify(*changelog_args).returncode == 0, 90,
                   "the members never caught up with a changelog that matches the recomputation")
        # Exports taken in the middle of a rebalance would miss the partitions in flight.
        cluster.wait_until_stable([2, 2, 2])
        live = cluster.live()
        for member in live:
            member.process.send_signal(signal.SIGTERM)
        for member in live:
            assert member.process.wait(timeout=30) == 0
        exports = [str(export_paths(member.log_path)[0]) for member in live]
        result = run_verify(*common, "--exports", *exports)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        producer.kill()
        cluster.stop_all()
    final = run_verify(*common)
    assert final.returncode == 0, final.stdout
    assert "0 mismatches" in final.stdout
