"""What only Apache Kafka shows: DescribeGroups, Kafka's own consumer-groups tool, KIP-848's consumer
protocol, static membership (KIP-345), data that survives a broker restart, and SASL/TLS listeners.

Real `balance-tui --headless` processes on real brokers; crashes are real SIGKILLs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.members import describe_group_members
from tests.conftest import KAFKA_TEST_OPTIONS
from tests.helpers import free_port, wait_until
from tests.integration.members import Cluster, Member
from tests.integration.test_consistency import fill

pytestmark = pytest.mark.broker

CLI = [sys.executable, "-m", "balance_tui"]


def broker_view(cluster: Cluster) -> dict[str, tuple[int, ...]]:
    """client id -> partitions of the cluster's topic, as DescribeGroups says (empty if it lists none)."""
    members = describe_group_members({"bootstrap.servers": cluster.bootstrap}, cluster.group, cluster.topic)
    return {member.client_id: member.partitions for member in members or ()}


def own_views(cluster: Cluster) -> dict[str, tuple[int, ...]]:
    """client id -> partitions, as each live member's session log says."""
    return {f"balance-worker-test-{m.name}": tuple(m.assignment() or ()) for m in cluster.live()}


def agree(cluster: Cluster) -> bool:
    return broker_view(cluster) == own_views(cluster)


def wait_for_agreement(cluster: Cluster, timeout: float = 30) -> None:
    try:
        wait_until(lambda: agree(cluster), timeout, "DescribeGroups and the members disagree")
    except AssertionError as error:
        raise AssertionError(f"{error}: broker {broker_view(cluster)}, members {own_views(cluster)}") from None


def test_describe_groups_agrees_with_every_member_after_joins_a_leave_and_a_kill(
        kafka_cluster: Callable[..., Cluster]) -> None:
    cluster = kafka_cluster("cooperative-sticky")
    first = cluster.start()
    cluster.wait_until_stable([6])
    wait_for_agreement(cluster)
    second, third = cluster.start(), cluster.start()
    cluster.wait_until_stable([2, 2, 2])
    wait_for_agreement(cluster)
    assert len(broker_view(cluster)) == 3

    third.terminate()  # a clean leave
    cluster.wait_until_stable([3, 3])
    wait_for_agreement(cluster)
    second.kill()  # kill -9: the broker notices after the session timeout
    cluster.wait_until_stable([6])
    wait_for_agreement(cluster)
    assert list(broker_view(cluster)) == [f"balance-worker-test-{first.name}"]

    # The Group panel of the survivor took the broker's view in: it names its source.
    assert fresh_export(first)["broker"].startswith("Apache Kafka")


def fresh_export(member: Member) -> dict:
    """Ask a running member for an export and read it once it says it wrote it."""
    before = len(member.events("exported"))
    member.command("export")
    wait_until(lambda: len(member.events("exported")) > before, 20, f"{member.name} wrote no export")
    return member.export()


def parse_describe(output: str) -> dict[int, dict[str, str]]:
    """`kafka-consumer-groups --describe` rows by partition (GROUP TOPIC PARTITION CURRENT-OFFSET ...)."""
    rows: dict[int, dict[str, str]] = {}
    header: list[str] | None = None
    for line in output.splitlines():
        words = line.split()
        if words[:2] == ["GROUP", "TOPIC"]:
            header = words
        elif header and len(words) == len(header):
            row = dict(zip(header, words, strict=True))
            rows[int(row["PARTITION"])] = row
    return rows


def test_kafka_consumer_groups_describe_agrees_with_the_group_panel_and_the_exports(
        kafka_cluster: Callable[..., Cluster]) -> None:
    cluster = kafka_cluster("range")
    members = [cluster.start(), cluster.start()]
    cluster.wait_until_stable([3, 3])
    fill(cluster.bootstrap, cluster.topic, 1200, seed=8)

    def described() -> dict[int, dict[str, str]]:
        result = subprocess.run([*CLI, "kafka", "consumer-groups", "--bootstrap-server", cluster.bootstrap,
                                 "--describe", "--group", cluster.group], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return parse_describe(result.stdout)

    def exported() -> list[dict]:
        return [fresh_export(member) for member in members]

    def settled() -> tuple[dict, list[dict]] | None:
        table = described()
        if len(table) != 6 or any(row["LAG"] != "0" for row in table.values()):
            return None  # still consuming or committing
        exports = exported()
        panel = {entry["partition"]: entry for entry in exports[0]["groupPartitions"]}
        if any(panel[p]["committed"] != int(table[p]["CURRENT-OFFSET"]) or
               panel[p]["logEnd"] != int(table[p]["LOG-END-OFFSET"]) for p in range(6)):
            return None  # heartbeats carry the figures a second later
        return table, exports

    table, exports = wait_until(settled, 90, "the tool, the Group panel and the exports never agreed")
    owners = {p: export["consumerId"] for export in exports for p in export["assignedPartitions"]}
    for partition, row in table.items():
        assert row["CLIENT-ID"] == owners[partition]
        assert int(row["CURRENT-OFFSET"]) == exports[0]["groupPartitions"][partition]["committed"]
        assert int(row["LAG"]) == exports[0]["groupPartitions"][partition]["lag"] == 0
        owner_export = next(e for e in exports if e["consumerId"] == owners[partition])
        assert owner_export["partitionOffsets"][str(partition)] == int(row["CURRENT-OFFSET"])
    assert sum(int(row["LOG-END-OFFSET"]) for row in table.values()) == 1200
    # Both panels list both members, with the partitions the tool shows them with.
    for export in exports:
        listed = {entry["consumerId"]: tuple(entry["assignedPartitions"]) for entry in export["group"]}
        assert listed == {owner: tuple(sorted(p for p, o in owners.items() if o == owner))
                          for owner in set(owners.values())}


def test_kip848_members_get_every_partition_exactly_once_and_survive_a_kill(
        kafka_cluster: Callable[..., Cluster]) -> None:
    cluster = kafka_cluster("consumer")
    members = [cluster.start() for _ in range(3)]
    cluster.wait_until_stable([2, 2, 2])
    owned = sorted(p for m in cluster.live() for p in (m.assignment() or ()))
    assert owned == list(range(6))
    assert all(e.get("generation") is not None for m in members for e in m.events("assigned"))
    assert all(m.events("group_config") for m in members)  # the group's session timeout was set

    revoked_before = {m.name: len(m.events("revoked")) for m in members}
    members[1].kill()
    cluster.wait_until_stable([3, 3])
    assert sorted(p for m in cluster.live() for p in (m.assignment() or ())) == list(range(6))
    # Incremental: taking over a dead member's partitions revokes nothing from the survivors.
    for member in (members[0], members[2]):
        assert len(member.events("revoked")) == revoked_before[member.name], member.events("revoked")


def test_a_static_member_restarted_within_its_session_timeout_gets_its_partitions_back_without_a_rebalance(
        kafka_cluster: Callable[..., Cluster]) -> None:
    # A session long enough to restart a Python process inside it.
    slow = ["--session-timeout-ms", "12000", "--heartbeat-interval-ms", "1000"]
    cluster = kafka_cluster("cooperative-sticky", extra_flags=slow)
    steady = cluster.start("steady", flags=["--instance-id", "steady"])
    cluster.wait_until_stable([6])
    restarted = cluster.start("static", flags=["--instance-id", "static"])
    cluster.wait_until_stable([3, 3])
    before = restarted.assignment()
    revocations = len(steady.events("revoked"))

    restarted.kill()
    killed_at = datetime.now().astimezone()
    again = cluster.start("static-again", flags=["--instance-id", "static"])
    wait_until(lambda: again.events("static_rejoin"), 30, "the restarted static member said nothing")
    rejoin = again.events("static_rejoin")[0]
    assert rejoin["no_rebalance"] is True, rejoin
    assert again.assignment() == before
    assert len(steady.events("revoked")) == revocations  # nobody else was revoked
    after_kill = [e for e in steady.events() if e["event"] in ("assigned", "revoked", "lost")
                  and datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) > killed_at]
    assert all(not e["partitions"] for e in after_kill), after_kill
    wait_until(lambda: "rejoined as static member: no rebalance" in again.output(), 10,
               "the restarted member did not print it")  # printed a moment after it is logged


def test_kip848_is_refused_in_one_line_where_the_broker_does_not_serve_it(broker: object) -> None:
    if getattr(broker, "engine", "") != "tansu":
        pytest.skip("Tansu is the broker without KIP-848 here")
    result = subprocess.run([*CLI, "--headless", "--bootstrap-servers", broker.bootstrap,  # type: ignore[attr-defined]
                             "--strategy", "consumer"], capture_output=True, text=True, timeout=60, check=False,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not serve KIP-848" in lines[0], result.stderr


def test_a_broker_restart_with_its_data_dir_keeps_every_balance(kafka_broker: object, tmp_path: Path,
                                                                 unique: Callable[[str], str]) -> None:
    from balance_tui.kafka.brokers.apache import KafkaBroker

    port = free_port()
    data = tmp_path / "kafka-data"
    broker = KafkaBroker(port, data_dir=data, **KAFKA_TEST_OPTIONS).start(timeout=60)  # type: ignore[arg-type]
    try:
        topic, group = unique("tx"), unique("grp")
        ensure_topic(broker.client_config(), topic, 6)
        cluster = Cluster(broker.bootstrap, topic, group, tmp_path, strategy="cooperative-sticky")
        member = cluster.start()
        try:
            cluster.wait_until_stable([6])
            fill(broker.bootstrap, topic, 1500, seed=21)
            wait_until(lambda: _consumed(member) >= 1500, 60, "the member did not consume the backlog")

            broker.kill()  # as a crash would: Kafka recovers its logs at the next start
            broker = KafkaBroker(port, data_dir=data, **KAFKA_TEST_OPTIONS).start(timeout=90)  # type: ignore[arg-type]
            fill(broker.bootstrap, topic, 500, seed=22)
            wait_until(lambda: _consumed(member) >= 2000, 90, "consumption did not resume after the restart")
            assert member.process.poll() is None, member.output()
            passed = wait_until(lambda: _verified(broker.bootstrap, topic, group), 90,
                                "verify never passed after the restart")
            assert "OK" in passed.stdout and "0 mismatches" in passed.stdout, passed.stdout
        finally:
            cluster.stop_all()
    finally:
        broker.stop()


def _verified(bootstrap: str, topic: str, group: str) -> subprocess.CompletedProcess[str] | None:
    """`balance-tui verify`'s result if it passed, else None (consumers may still be catching up)."""
    result = subprocess.run([*CLI, "verify", "--bootstrap-servers", bootstrap, "--topic", topic, "--group", group],
                            capture_output=True, text=True, timeout=120, check=False)
    return result if result.returncode == 0 else None


def _consumed(member: Member) -> int:
    stats = member.events("stats")
    return int(stats[-1]["consumed"]) if stats else 0


# -- security settings, for real: SASL/SCRAM-SHA-512 and TLS listeners ----------------------------


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> object:
    """An Apache Kafka with a SASL_PLAINTEXT (SCRAM-SHA-512) listener and an SSL listener (a test CA)."""
    from balance_tui.kafka.brokers.apache import KafkaBroker, Listener
    from balance_tui.kafka.brokers.distribution import KafkaUnavailable, locate_kafka
    from tests.tls import make_pki

    try:
        locate_kafka(resolve=False)
    except KafkaUnavailable as error:
        pytest.skip(f"Apache Kafka tests skipped: {error}")
    root = tmp_path_factory.mktemp("secured")
    pki = make_pki(root / "pki")
    broker = KafkaBroker(
        data_dir=root / "data", **KAFKA_TEST_OPTIONS,  # type: ignore[arg-type]
        listeners=[
            Listener("SASL", "SASL_PLAINTEXT", properties={
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;"}),
            Listener("TLS", "SSL", properties={
                "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(pki.keystore),
                "ssl.keystore.password": pki.key_password, "ssl.key.password": pki.key_password}),
        ],
        scram_users=[f"SCRAM-SHA-512=[name=alice,password={SCRAM_PASSWORD}]"],
    ).start(timeout=90)
    broker.pki = pki  # type: ignore[attr-defined]
    yield broker
    broker.stop()


SCRAM_PASSWORD = "alice-Scram-Secret-4711"


def _secret_free(member: Member, secret: str) -> None:
    """The secret is in no log, export or output of the member."""
    texts = [member.log_path.read_text(), member.output()]
    for path in member.log_path.parent.glob(f"{member.log_path.stem}.export.*"):
        texts.append(path.read_text())
    assert all(secret not in text for text in texts)


def test_a_member_connects_through_sasl_scram_and_tls_and_a_wrong_password_is_one_line(
        secured_kafka: object, unique: Callable[[str], str], tmp_path: Path) -> None:
    broker = secured_kafka
    pki = broker.pki  # type: ignore[attr-defined]
    ensure_topic(broker.client_config(), topic := unique("tx"), 6)  # type: ignore[attr-defined]
    fill(broker.bootstrap, topic, 300, seed=31)  # type: ignore[attr-defined]
    sasl = ["--security-protocol", "sasl_plaintext", "--sasl-mechanism", "SCRAM-SHA-512",
            "--sasl-username", "alice"]
    tls = ["--security-protocol", "ssl", "--ssl-ca-location", str(pki.ca)]
    for name, listener, flags, env in (
            ("sasl", "SASL", sasl, {"BALANCE_TUI_SASL_PASSWORD": SCRAM_PASSWORD}),
            ("tls", "TLS", tls, {})):
        cluster = Cluster(broker.listener_bootstrap(listener), topic, unique("grp"), tmp_path)  # type: ignore[attr-defined]
        member = cluster.start(name, flags=flags, env=env)
        try:
            cluster.wait_until_stable([6])
            wait_until(lambda m=member: _consumed(m) >= 300, 60, f"nothing consumed through {listener}")
            broker_events = member.events("broker")
            assert broker_events and broker_events[0]["consumer_protocol"] is True  # ApiVersions asked through it
        finally:
            cluster.stop_all()
        assert member.process.returncode == 0, member.output()
        _secret_free(member, SCRAM_PASSWORD)

    wrong = subprocess.run([*CLI, "--headless", "--bootstrap-servers", broker.listener_bootstrap("SASL"),  # type: ignore[attr-defined]
                            "--topic", topic, *sasl, "--connect-timeout", "20"], capture_output=True, text=True,
                           timeout=60, check=False, stdin=subprocess.DEVNULL,
                           env={**os.environ, "BALANCE_TUI_SASL_PASSWORD": "not-the-password"})
    assert wrong.returncode != 0
    lines = [line for line in wrong.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "authentication failed" in lines[0], wrong.stderr
    assert "not-the-password" not in wrong.stderr + wrong.stdout
