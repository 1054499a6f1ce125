"""The lab's scenarios with real consumer processes on the embedded broker.

Each member is a `balance-tui --headless` OS process; we watch its session log and
kill it with SIGKILL like `kill -9` in a terminal.
"""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from balance_tui.session_log import export_paths
from tests.helpers import wait_until

pytestmark = pytest.mark.broker


def produce(bootstrap: str, topic: str, values: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value in values:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def test_one_member_owns_all_two_split_and_the_survivor_takes_over_after_kill(cluster):
    group = cluster("range")
    first = group.start()
    group.wait_for_assignments([6])
    second = group.start()
    group.wait_for_assignments([3, 3])
    second.kill()
    group.wait_for_assignments([6])
    assert first.assignment() == [0, 1, 2, 3, 4, 5]
    # The survivor saw the stop-the-world sequence twice: on the join and after the crash.
    kinds = [e["event"] for e in first.events() if e["event"] in ("assigned", "revoked", "lost")]
    assert kinds[:5] == ["assigned", "revoked", "assigned", "revoked", "assigned"]
    assert "Partitions ASSIGNED: [0, 1, 2, 3, 4, 5]" in first.output()
    assert "Partitions REVOKED: [0, 1, 2, 3, 4, 5]" in first.output()


def test_eight_members_on_six_partitions_leave_two_idle(cluster):
    group = cluster("range")
    members = [group.start() for _ in range(8)]
    group.wait_for_assignments([1, 1, 1, 1, 1, 1, 0, 0], timeout=90)
    idle = [m for m in members if m.assignment() == []]
    assert len(idle) == 2
    for member in idle:
        wait_until(lambda m=member: "Status: Idle" in m.output(), 10, f"{member.name} never said Idle")


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_session_logs_show_the_labs_rebalance_sequence(cluster, strategy):
    group = cluster(strategy)
    first = group.start()
    group.wait_for_assignments([6])
    group.start()
    group.wait_for_assignments([3, 3])
    revokes = first.events("revoked")
    assert revokes, "the first member was never asked to give anything up"
    if strategy == "cooperative-sticky":
        # Incremental: only what moves is revoked; the rest keeps being consumed.
        assert all(len(e["partitions"]) == 3 for e in revokes)
        assert revokes[0]["assignment"] == first.assignment()
    else:
        # Eager: everything is revoked, then the new assignment arrives.
        assert revokes[0]["partitions"] == [0, 1, 2, 3, 4, 5]
        assert revokes[0]["assignment"] == []
        last_assigned = first.events("assigned")[-1]
        assert len(last_assigned["assignment"]) == 3
    for event in first.events("assigned") + revokes:
        for key in ("ts", "event", "consumer_id", "group", "topic", "strategy", "partitions", "assignment"):
            assert key in event
        assert event["strategy"] == strategy


def test_lab_scenario_is_exported_as_3800(cluster, broker):
    group = cluster("range")
    produce(broker.bootstrap, group.topic, [
        (b"CUST-001", b'{"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789",'
                      b'"amount":5000.00,"currency":"EUR","type":3,"description":"Depot initial",'
                      b'"customerId":"CUST-001","timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}'),
        (b"CUST-001", b'{"transactionId":"BAL-002","fromAccount":"FR7630001000123456789",'
                      b'"toAccount":"FR7630001000987654321","amount":1200.00,"currency":"EUR","type":1,'
                      b'"description":"Virement loyer","customerId":"CUST-001","timestamp":"2026-02-08T22:01:00Z",'
                      b'"riskScore":0,"status":1}'),
    ])
    member = group.start()
    wait_until(lambda: any(e["consumed"] >= 2 for e in member.events("stats")), 60,
               "the member never consumed the two lab transactions")
    assert member.terminate() == 0
    export = member.export()
    rows = [b for b in export["balances"] if b["customerId"] == "CUST-001"]
    assert rows == [{"customerId": "CUST-001", "balance": "3800.00", "currency": "EUR", "transactionCount": 2,
                     "lastUpdated": "2026-02-08T22:01:00.000Z", "lastTransactionId": "BAL-002",
                     "partition": rows[0]["partition"]}]
    assert export["messagesConsumed"] == 2
    assert member.events("stopped")[-1]["reason"] == "SIGTERM"


def test_malformed_messages_are_counted_and_the_worker_keeps_going(cluster, broker):
    group = cluster("range")
    good = (b'{"transactionId":"OK-1","fromAccount":"BANK","toAccount":"FR76X","amount":10.50,"currency":"EUR",'
            b'"type":"Deposit","description":"ok","customerId":"CUST-9","timestamp":"2026-02-08T22:00:00Z",'
            b'"riskScore":0,"status":"Completed"}')
    produce(broker.bootstrap, group.topic, [
        (b"CUST-9", b"{not json"),
        (b"CUST-9", b'{"transactionId": "X"}'),
        (b"CUST-9", b"\xff\xfe\x00garbage"),
        # Well formed but Failed, for a customer never seen: skipped, no balance, no changelog record.
        (b"CUST-9", good.replace(b"OK-1", b"FAILED-1").replace(b"CUST-9", b"CUST-8")
                        .replace(b'"Completed"', b'"Failed"')),
        (b"CUST-9", good),
    ])
    member = group.start()
    wait_until(lambda: any(e["consumed"] >= 5 for e in member.events("stats")), 60,
               "the member never consumed the five messages")
    stats = member.events("stats")[-1]
    assert stats["rejected"] == 3
    # Each rejection's reason, partition and offset are kept (two of one reason: the second is counted).
    assert stats["rejected_by_reason"] == {"invalid JSON": 1, "missing field": 1, "not UTF-8": 1}
    rejected = member.events("rejected")
    assert {e["reason"] for e in rejected} == {"invalid JSON", "missing field", "not UTF-8"}
    assert all(isinstance(e["partition"], int) and isinstance(e["offset"], int) and e["detail"] for e in rejected)
    assert member.process.poll() is None, "a malformed message stopped the worker"
    assert not [e for e in member.events("error") if e["code"] == "WORKER_CRASH"]
    assert member.terminate() == 0
    export = member.export()
    assert export["rejectedMessages"] == 3
    assert export["rejectedByReason"] == stats["rejected_by_reason"]
    assert sorted(r["offset"] for r in export["recentRejections"]) == [0, 1, 2]
    assert [b["balance"] for b in export["balances"] if b["customerId"] == "CUST-9"] == ["10.50"]
    assert not [b for b in export["balances"] if b["customerId"] == "CUST-8"]


SECRET = "hunter2-do-not-show"


def test_pause_resume_and_work_ms_are_logged_and_secrets_never_reach_logs_or_exports(cluster, broker):
    group = cluster("range")
    member = group.start(env={
        "BALANCE_TUI_SASL_PASSWORD": SECRET,  # plaintext ignores it, but it is configured
        "BALANCE_TUI_LIBRDKAFKA": json.dumps({"sasl.oauthbearer.client.secret": SECRET}),
    })
    group.wait_for_assignments([6])
    # Restored (from an empty changelog) and fetching, so its lag is known before it pauses.
    wait_until(lambda: len(member.events("restored")) == 6, 30, "the member never restored its partitions")
    member.command("pause")
    wait_until(lambda: member.events("paused"), 20, "pause was never logged")
    good = (b'{"transactionId":"P-%d","fromAccount":"BANK","toAccount":"FR76P","amount":1.00,"currency":"EUR",'
            b'"type":"Deposit","description":"d","customerId":"CUST-P","timestamp":"2026-02-08T22:00:00Z",'
            b'"riskScore":0,"status":"Completed"}')
    for n in range(5):  # one flush each, so the paused member's ListOffsets sees the true end
        produce(broker.bootstrap, group.topic, [(b"CUST-P", good % n)])
    wait_until(lambda: any((e["lag"] or 0) >= 5 for e in member.events("stats")), 30,
               "the paused member never showed the lag growing")
    assert all(e["consumed"] == 0 for e in member.events("stats"))
    member.command("pause")
    wait_until(lambda: member.events("resumed"), 20, "resume was never logged")
    wait_until(lambda: any(e["consumed"] >= 5 and e["lag"] == 0 for e in member.events("stats")), 30,
               "the resumed member never drained its lag")
    member.command("work +1")
    wait_until(lambda: member.events("work_ms_changed"), 20, "the work_ms change was never logged")
    assert member.events("work_ms_changed")[0]["from"] == 0 and member.events("work_ms_changed")[0]["to"] == 1
    assert member.terminate() == 0
    started = member.events("started")[0]["config"]
    assert started["sasl_password"] == "***"
    assert started["librdkafka"]["sasl.oauthbearer.client.secret"] == "***"
    json_path, markdown_path = export_paths(member.log_path)
    for path in (member.log_path, json_path, markdown_path, member.output_path):
        assert SECRET not in path.read_text(), f"the secret reached {path.name}"
    assert [b["balance"] for b in member.export()["balances"] if b["customerId"] == "CUST-P"] == ["5.00"]
