"""What balance-tui decides from a broker's answers: ApiVersions, DescribeGroups, local pid files,
static rejoins; and how Kafka's programs are named and found. Pure units."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from balance_tui.core.broker_profile import (
    BrokerProfile,
    DescribeGroupsVerdict,
    consumer_protocol_refusal,
    describe_broker,
)
from balance_tui.core.group import BrokerGroup, BrokerMember, GroupView, MemberHeartbeat
from balance_tui.kafka.api_versions import parse_api_versions_v3
from balance_tui.kafka.brokers.apache import new_cluster_id
from balance_tui.kafka.brokers.distribution import (
    KafkaUnavailable,
    _java_major,
    kafka_home_version,
    normalise_tool_name,
)
from balance_tui.static_member import StaticMemberRecord, describe_static_rejoin
from tests.helpers import member_heartbeat


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def api_versions_answer(apis: dict[int, tuple[int, int]], features: dict[str, int] | None = None) -> bytes:
    """An ApiVersions v3 response body as a broker sends it (after the size prefix)."""
    body = struct.pack(">ih", 7, 0) + _uvarint(len(apis) + 1)
    for key, (low, high) in apis.items():
        body += struct.pack(">hhh", key, low, high) + b"\x00"
    body += struct.pack(">i", 0)
    if features is None:
        return body + b"\x00"
    encoded = _uvarint(len(features) + 1)
    for name, level in features.items():
        encoded += _uvarint(len(name) + 1) + name.encode() + struct.pack(">hh", level, level) + b"\x00"
    return body + _uvarint(1) + _uvarint(2) + _uvarint(len(encoded)) + encoded


def test_api_versions_of_apache_kafka_show_kip848_and_kraft() -> None:
    answer = parse_api_versions_v3(api_versions_answer({0: (0, 13), 18: (0, 5), 68: (0, 1)},
                                                       {"metadata.version": 33, "group.version": 1}))
    assert answer.apis[68] == (0, 1) and answer.consumer_protocol and answer.kraft
    assert answer.finalized_features == {"metadata.version": 33, "group.version": 1}


def test_api_versions_without_consumer_group_heartbeat_mean_no_kip848() -> None:
    answer = parse_api_versions_v3(api_versions_answer({0: (0, 11), 18: (0, 4), 69: (0, 0)}))
    assert not answer.consumer_protocol and not answer.kraft and answer.finalized_features == {}


def test_an_api_versions_error_is_not_an_answer() -> None:
    with pytest.raises(ValueError, match="ApiVersions error 35"):
        parse_api_versions_v3(struct.pack(">ih", 7, 35) + b"\x01")


def test_the_profile_names_the_broker_from_a_local_record_first() -> None:
    record = {"engine": "kafka", "engine_name": "Apache Kafka", "version": "4.4.0"}
    profile = describe_broker(record, {0, 68}, {"metadata.version": 33})
    assert profile == BrokerProfile("Apache Kafka 4.4.0", True, "kafka", {"metadata.version": 33})
    tansu = describe_broker({"engine": "tansu", "engine_name": "Tansu", "version": "0.6.0"}, {0, 18}, {})
    assert (tansu.label, tansu.consumer_protocol) == ("Tansu 0.6.0", False)


def test_the_profile_describes_a_remote_broker_from_its_answers() -> None:
    assert describe_broker(None, {0, 68}, {"metadata.version": 25}).label == "Apache Kafka (KRaft, KIP-848)"
    assert describe_broker(None, {0}, {"metadata.version": 20}).label == "Apache Kafka (KRaft)"
    assert describe_broker(None, {0}, {}).label == "Kafka-compatible broker (no KIP-848)"
    unknown = describe_broker(None, None, None)
    assert unknown.consumer_protocol is None and unknown.label == "broker (not described)"


def test_kip848_is_refused_only_where_the_broker_says_it_has_no_such_api() -> None:
    assert consumer_protocol_refusal(describe_broker(None, {0}, {}), "consumer") is not None
    assert "ConsumerGroupHeartbeat" in (consumer_protocol_refusal(describe_broker(None, {0}, {}), "consumer") or "")
    assert consumer_protocol_refusal(describe_broker(None, {0, 68}, {}), "consumer") is None
    assert consumer_protocol_refusal(describe_broker(None, None, None), "consumer") is None  # cannot tell: try
    assert consumer_protocol_refusal(describe_broker(None, {0}, {}), "range") is None


def test_describe_groups_is_given_up_only_when_it_lists_nobody_while_we_own_partitions() -> None:
    verdict = DescribeGroupsVerdict()
    verdict.observe(members_listed=0, own_partitions=0)  # an empty group proves nothing
    verdict.observe(members_listed=0, own_partitions=0)
    assert verdict.usable is None
    verdict.observe(members_listed=0, own_partitions=6)
    assert verdict.usable is None
    verdict.observe(members_listed=0, own_partitions=6)
    assert verdict.usable is False
    working = DescribeGroupsVerdict()
    working.observe(members_listed=2, own_partitions=3)
    working.observe(members_listed=0, own_partitions=3)  # decided once and for all
    assert working.usable is True


def _beat(member: str, partitions: tuple[int, ...]) -> MemberHeartbeat:
    return member_heartbeat(member, assignment=partitions, rate=1.0, session_timeout_ms=10_000)


def test_members_only_the_broker_lists_get_rows_and_every_row_says_what_the_broker_says() -> None:
    now = datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC)
    view = GroupView("a")
    view.observe(_beat("a", (0, 1, 2)), now)
    view.broker_group = BrokerGroup("Stable", "classic", "range", (
        BrokerMember("a", "a-1", "/127.0.0.1", (0, 1, 2)),
        BrokerMember("kcat", "k-1", "/10.0.0.9", (3, 4, 5))))
    rows = {row.consumer_id: row for row in view.rows(now)}
    assert rows["a"].source == "heartbeats" and rows["a"].broker_partitions == (0, 1, 2)
    assert rows["kcat"].source == "broker" and rows["kcat"].partitions == (3, 4, 5)
    assert rows["kcat"].status == "not balance-tui" and rows["kcat"].host == "10.0.0.9"
    assert view.unowned_partitions(6) == []  # the plain consumer owns what the broker gave it
    assert view.capacity_text(6) == "2 members, 6 partitions"
    assert "group Stable, classic protocol, assignor range" in view.source_text()
    assert view.cross_check() == ["kcat is listed by the broker but sends no heartbeats"]


def test_a_static_rejoin_without_rebalance_is_told_apart_from_one_after_a_rebalance() -> None:
    before = StaticMemberRecord(generation=5, assignment=(3, 4, 5), consumer_id="old", at="")
    same = describe_static_rejoin(before, 5, (3, 4, 5))
    assert same is not None and same[0] is True and "no rebalance" in same[1]
    moved = describe_static_rejoin(before, 7, (0, 1))
    assert moved is not None and moved[0] is False and "generation 5 → 7" in moved[1]
    assert describe_static_rejoin(None, 5, (3,)) is None


def test_kafka_tool_names_as_the_lab_writes_them() -> None:
    for name in ("kafka-consumer-groups.sh", "kafka-consumer-groups", "consumer-groups"):
        assert normalise_tool_name(name) == "consumer-groups"


def test_java_versions() -> None:
    assert _java_major("17.0.15") == 17
    assert _java_major("21") == 21
    assert _java_major("1.8.0_392") == 8


def test_a_kafka_home_is_recognised_by_its_broker_jar(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "libs").mkdir()
    with pytest.raises(KafkaUnavailable, match=re.escape("holds no kafka_<scala>-<version>.jar")):
        kafka_home_version(tmp_path)
    (tmp_path / "libs" / "kafka_2.13-4.1.0-test.jar").touch()
    (tmp_path / "libs" / "kafka_2.13-4.1.0.jar").touch()
    assert kafka_home_version(tmp_path) == "4.1.0"
    with pytest.raises(KafkaUnavailable, match="not an Apache Kafka distribution"):
        kafka_home_version(tmp_path / "libs")


def test_kraft_cluster_ids_are_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(value) == 22 and "=" not in value for value in ids)


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 in 64 UUIDs encode to `-...`, which Kafka's storage tool reads as a flag (seen in CI)."""
    import uuid

    drawn = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert not new_cluster_id().startswith("-")
