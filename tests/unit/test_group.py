"""GroupView and the members-topic wire format: pure, with times passed in."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from balance_tui.config import STRATEGIES
from balance_tui.core.group import (
    STRATEGY_NAMES,
    BrokerMember,
    GroupCommand,
    GroupView,
    MemberHeartbeat,
    decode,
    encode,
    export_members,
    group_lag,
    silence_text,
)

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def beat(member: str, seconds: float, assignment: tuple[int, ...] = (), **changes) -> MemberHeartbeat:
    fields = {
        "consumer_id": member, "host": "lab-pc", "pid": 4242, "strategy": "range", "status": "Consuming",
        "assignment": assignment, "generation": 3, "lag": 12, "rate": 480.5, "work_ms": 2.0, "sent_at": at(seconds),
        "session_timeout_ms": 10_000,
        "position_by_partition": dict.fromkeys(assignment, 100),
        "high_watermark_by_partition": dict.fromkeys(assignment, 110),
        "committed_by_partition": dict.fromkeys(assignment, 95),
    }
    fields.update(changes)
    return MemberHeartbeat(**fields)


def ids(view: GroupView, now: datetime) -> list[str]:
    return [row.consumer_id for row in view.rows(now)]


def test_members_appear_with_their_partitions_rate_lag_and_heartbeat_age():
    view = GroupView(own_consumer_id="a")
    view.observe(beat("a", 0, (0, 1, 2)), at(0.1))
    view.observe(beat("b", 0.5, (3, 4, 5), rate=250.0, lag=7), at(0.6))
    rows = view.rows(at(1.0))
    assert [r.consumer_id for r in rows] == ["a", "b"]
    a, b = rows
    assert a.partitions == (0, 1, 2) and a.is_self and not b.is_self
    assert (b.partitions, b.rate, b.lag) == ((3, 4, 5), 250.0, 7)
    assert a.heartbeat_age == pytest.approx(1.0) and b.heartbeat_age == pytest.approx(0.5)
    assert not a.silent and a.rebalance_expected_in is None
    assert silence_text(a) == ""


def test_only_newer_heartbeats_count():
    view = GroupView()
    assert view.observe(beat("a", 5, (0,)), at(5))
    assert not view.observe(beat("a", 4, (0, 1)), at(5.1))  # delivered late
    assert not view.observe(beat("a", 5, (0, 1)), at(5.2))  # our own beat, echoed by the topic
    assert view.rows(at(5.3))[0].partitions == (0,)


def test_member_that_said_goodbye_disappears_without_a_countdown():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2)), at(0))
    view.observe(beat("b", 0, (3, 4, 5)), at(0))
    view.observe(beat("b", 1, (3, 4, 5), goodbye=True), at(1))
    assert ids(view, at(1.5)) == ["a"]
    [departure] = view.take_departures()
    assert (departure.consumer_id, departure.reason, departure.partitions) == ("b", "left", (3, 4, 5))
    # A heartbeat sent before the goodbye but read after it does not bring the member back.
    view.observe(beat("b", 0.5, (3, 4, 5)), at(2))
    assert ids(view, at(2)) == ["a"]


def test_silent_member_counts_down_then_is_dropped_once_its_partitions_are_reassigned():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2)), at(0))
    view.observe(beat("b", 0, (3, 4, 5)), at(0))
    # b is killed: a keeps beating, b does not.
    for second in (1, 2, 3):
        view.observe(beat("a", second, (0, 1, 2)), at(second))
    b = view.rows(at(2.4))[1]
    assert not b.silent  # 2.4 s: still within the 2.5 s of silence allowed
    b = view.rows(at(6))[1]
    assert b.silent and b.rebalance_expected_in == pytest.approx(4.0)
    assert silence_text(b) == "silent 6 s, rebalance expected in 4 s"
    b = view.rows(at(12))[1]
    assert b.rebalance_expected_in == 0.0  # the session timeout passed; the broker is evicting it
    assert "rebalance due" in silence_text(b)
    assert view.unowned_partitions(6) == []  # b still owns them as far as the broker knows
    # The survivor takes over b's partitions.
    view.observe(beat("a", 13, (0, 1, 2, 3, 4, 5), generation=4), at(13))
    assert ids(view, at(13)) == ["a"]
    [departure] = view.take_departures()
    assert departure.reason == "gone (crashed)"
    assert departure.timeline_text() == "member b gone (crashed), owned [3, 4, 5]"


def test_partial_takeover_keeps_the_silent_member_flagged():
    view = GroupView()
    view.observe(beat("b", 0, (3, 4, 5)), at(0))
    view.observe(beat("a", 5, (0, 1, 2, 3)), at(5))
    assert [r.silent for r in view.rows(at(5))] == [False, True]


def test_claims_older_than_the_silence_are_no_evidence():
    # Mid-rebalance two members may claim one partition; only later heartbeats prove a takeover.
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2, 3)), at(0))
    view.observe(beat("b", 0.5, (3,)), at(0.5))
    assert ids(view, at(4)) == ["a", "b"]


def test_silent_idle_member_is_dropped_when_a_newer_generation_forms_without_it():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2, 3, 4, 5), generation=7), at(0))
    view.observe(beat("c", 0, (), generation=7, status="Idle"), at(0))
    view.observe(beat("a", 5, (0, 1, 2, 3, 4, 5), generation=7), at(5))
    assert ids(view, at(5)) == ["a", "c"]
    view.observe(beat("a", 12, (0, 1, 2, 3, 4, 5), generation=8), at(12))
    assert ids(view, at(12)) == ["a"]


def test_member_silent_far_beyond_its_session_timeout_is_forgotten():
    view = GroupView()
    view.observe(beat("b", 0, (3,), generation=None), at(0))
    assert ids(view, at(29)) == ["b"]
    assert ids(view, at(31)) == []
    assert view.take_departures()[0].reason == "gone (no heartbeat)"


def test_history_is_ignored():
    view = GroupView()
    assert not view.observe(beat("old", 0, (0,)), at(31))
    assert ids(view, at(31)) == []


def test_unowned_partitions_and_capacity():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1)), at(0))
    view.observe(beat("b", 0, (4,)), at(0))
    assert view.unowned_partitions(6) == [2, 3, 5]
    assert view.capacity_text(6) == "2 members, 6 partitions"
    single = GroupView()
    single.observe(beat("a", 0, (0,)), at(0))
    assert single.capacity_text(1) == "1 member, 1 partition"


def test_more_members_than_partitions_leaves_some_idle():
    view = GroupView()
    for index in range(8):
        view.observe(beat(f"m{index}", 0, (index,) if index < 6 else ()), at(0))
    assert view.capacity_text(6) == "8 members, 6 partitions: 2 idle"
    assert view.unowned_partitions(6) == []


def test_group_lag_per_partition_is_log_end_minus_committed_from_the_owner():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1), committed_by_partition={0: 90, 1: 100},
                      high_watermark_by_partition={0: 110, 1: 100}), at(0))
    # b reports no commits: its position stands in.
    view.observe(beat("b", 0, (2,), committed_by_partition=None, position_by_partition={2: 40},
                      high_watermark_by_partition={2: 50}), at(0))
    lags = {row.partition: row for row in view.partition_lag(4, at(1))}
    assert (lags[0].lag, lags[1].lag, lags[2].lag) == (20, 0, 10)
    assert (lags[0].owner, lags[2].owner) == ("a", "b")
    assert not lags[0].stale
    assert lags[3] == lags[3].__class__(3, None, None, None, None, stale=True)
    # Once a's heartbeats stop, its numbers are the last known and flagged as such.
    view.observe(beat("b", 4, (2,), committed_by_partition=None, position_by_partition={2: 45},
                      high_watermark_by_partition={2: 60}), at(4))
    lags = {row.partition: row for row in view.partition_lag(4, at(4))}
    assert lags[0].stale and lags[0].lag == 20
    assert not lags[2].stale and lags[2].lag == 15


def test_export_entries_list_every_member_as_seen_here():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2), lag=5), at(0))
    view.observe(beat("b", 3, (3, 4, 5), lag=None), at(3))
    view.observe(beat("c", 3, (), lag=0, lag_seconds=0.0, lag_status="OK", lag_alert="ok"), at(3))
    unknown = {"lagSeconds": None, "lagStatus": None, "lagAlert": None, "lagAlertSince": None}
    assert export_members(view, at(3.5)) == [
        {"consumerId": "a", "status": "Silent", "assignedPartitions": [0, 1, 2], "lag": 5,
         "lastSeen": "2026-11-25T12:00:00.000Z", **unknown},
        {"consumerId": "b", "status": "Consuming", "assignedPartitions": [3, 4, 5], "lag": None,
         "lastSeen": "2026-11-25T12:00:03.000Z", **unknown},
        {"consumerId": "c", "status": "Consuming", "assignedPartitions": [], "lag": 0,
         "lastSeen": "2026-11-25T12:00:03.000Z", "lagSeconds": 0.0, "lagStatus": "OK", "lagAlert": "ok",
         "lagAlertSince": None},
    ]


def test_source_and_cross_check_with_describe_groups():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1, 2)), at(0))
    view.observe(beat("b", 0, (3, 4, 5)), at(0))
    assert view.source_text() == "source: member heartbeats (broker has no DescribeGroups)"
    assert view.cross_check() == []
    view.broker_members = [BrokerMember("a", "a-1", "/10.0.0.1", (0, 1, 2)),
                           BrokerMember("b", "b-1", "/10.0.0.2", (3, 4)),
                           BrokerMember("x", "x-1", "/10.0.0.3", ())]
    assert view.source_text() == "source: member heartbeats, cross-checked with the broker's DescribeGroups"
    assert view.cross_check() == [
        "b: broker says [3, 4], member says [3, 4, 5]",
        "x is listed by the broker but sends no heartbeats",
    ]


def test_heartbeat_and_command_survive_a_round_trip():
    heartbeat = beat("a", 0.123, (0, 2), generation=None, lag=None, committed_by_partition=None)
    assert decode(encode(heartbeat)) == heartbeat
    full = beat("a", 1, (1,), goodbye=True)
    assert decode(encode(full)) == full
    lagging = beat("a", 2, (1,), lag_seconds=12.5, lag_status="WARN", lag_alert="firing", lag_alert_since=at(1.5))
    assert decode(encode(lagging)) == lagging
    command = GroupCommand(strategy="cooperative-sticky", requested_by="a", requested_at=at(2))
    assert decode(encode(command)) == command
    assert command.timeline_text() == ("strategy switch to cooperative-sticky requested by a "
                                       "at 2026-11-25T12:00:02.000Z")
    # Unknown keys from a newer member are ignored.
    document = json.loads(encode(command))
    document["priority"] = "high"
    assert decode(json.dumps(document)) == command


def _heartbeat_document(**changes) -> bytes:
    document = json.loads(encode(beat("a", 0, (0, 1))))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize("value", [
    None, b"", b"\xff\xfe", b"not json", b"[1, 2]", b"{}", b'{"type": "gossip"}',
    _heartbeat_document(pid="4242"),
    _heartbeat_document(pid=True),
    _heartbeat_document(assignment=[0, -1]),
    _heartbeat_document(assignment="0,1"),
    _heartbeat_document(rate=None),
    _heartbeat_document(sent_at="yesterday"),
    _heartbeat_document(sent_at="2026-11-25T12:00:00"),  # no time zone
    _heartbeat_document(consumer_id=""),
    _heartbeat_document(position_by_partition={"zero": 1}),
    _heartbeat_document(high_watermark_by_partition={"0": 1.5}),
    _heartbeat_document(goodbye="yes"),
    _heartbeat_document(lag_seconds="12s"),
    _heartbeat_document(lag_seconds=-1),
    _heartbeat_document(lag_status=2),
    _heartbeat_document(lag_alert_since="since noon"),
    json.dumps({k: v for k, v in json.loads(_heartbeat_document()).items() if k != "status"}).encode(),
    json.dumps({"type": "command", "kind": "switch_strategy", "strategy": "sticky-ish",
                "requested_by": "a", "requested_at": "2026-11-25T12:00:00.000Z", "command_id": "c1"}).encode(),
    json.dumps({"type": "command", "kind": "reboot", "strategy": "range",
                "requested_by": "a", "requested_at": "2026-11-25T12:00:00.000Z", "command_id": "c1"}).encode(),
])
def test_junk_is_rejected_with_value_error(value):
    with pytest.raises(ValueError):
        decode(value)


def test_command_strategies_match_the_settings():
    assert STRATEGY_NAMES == STRATEGIES


def test_goodbye_of_an_unknown_member_records_no_departure():
    view = GroupView()
    view.observe(dataclasses.replace(beat("z", 0), goodbye=True), at(0))
    assert view.take_departures() == []


def test_a_group_formed_on_the_new_strategy_after_the_switch_is_recognised():
    view = GroupView(own_consumer_id="me")
    switch_at = at(10)
    view.observe(beat("me", 30, (0, 1), strategy="cooperative-sticky"), at(30))
    view.observe(beat("waiting", 31, (), strategy="cooperative-sticky"), at(31))
    view.observe(beat("old", 12, (2, 3), strategy="range"), at(31))
    view.observe(beat("before", 9, (4, 5), strategy="cooperative-sticky"), at(31))
    # Ourselves, a member with nothing, one on the old strategy, one heard before the switch: not formed.
    assert view.formed_on("cooperative-sticky", switch_at) is None
    view.observe(beat("new", 20, (4, 5), strategy="cooperative-sticky"), at(31))
    assert view.formed_on("cooperative-sticky", switch_at) == "new"
    assert view.formed_on("roundrobin", switch_at) is None


def test_a_heartbeat_without_the_lag_fields_an_older_member_decodes_with_none():
    document = {k: v for k, v in json.loads(_heartbeat_document()).items() if not k.startswith("lag_")}
    heartbeat = decode(json.dumps(document))
    assert (heartbeat.lag_seconds, heartbeat.lag_status, heartbeat.lag_alert, heartbeat.lag_alert_since) == (
        None, None, None, None)


def test_the_groups_lag_is_its_worst_member_and_it_is_in_alert_since_its_first_alert():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1), lag_seconds=2.0, lag_status="OK", lag_alert="ok"), at(0))
    view.observe(beat("b", 0, (2, 3), lag_seconds=40.0, lag_status="STALL", lag_alert="firing",
                      lag_alert_since=at(-30)), at(0))
    view.observe(beat("c", 0, (4,), lag_seconds=9.0, lag_status="WARN", lag_alert="firing",
                      lag_alert_since=at(-10)), at(0))
    view.observe(beat("d", 0, (5,)), at(0))  # an older member: no lag fields
    lag = group_lag(view.rows(at(1)))
    assert (lag.status, lag.worst, lag.alerting, lag.alert_since, lag.lag_seconds) == (
        "STALL", ("b",), ("b", "c"), at(-30), 40.0)
    # A silent member's last word is no longer its state: only what is heard counts.
    view.observe(beat("a", 3, (0, 1), lag_seconds=0.0, lag_status="OK", lag_alert="ok"), at(3))
    view.observe(beat("c", 3, (4,), lag_seconds=0.0, lag_status="OK", lag_alert="ok"), at(3))
    lag = group_lag(view.rows(at(3)))
    assert (lag.status, lag.worst, lag.alerting, lag.alert_since, lag.lag_seconds) == ("OK", (), (), None, 0.0)


def test_no_group_lag_status_from_members_that_send_none():
    view = GroupView()
    view.observe(beat("a", 0, (0, 1)), at(0))
    assert group_lag(view.rows(at(0))).status is None
