"""The lab's curl commands, and ours, over real HTTP against a member consuming from the broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from balance_tui.core.rows import PartitionState
from tests.integration.api.conftest import SECRET, ApiMember, decimal_json
from tests.unit.test_api_documents import LAB_BALANCE_FIELDS, LAB_HEALTH_FIELDS, LAB_METRICS_FIELDS

pytestmark = pytest.mark.broker

ALL = [0, 1, 2, 3, 4, 5]


def test_health_is_healthy_with_the_labs_fields(lab_member: ApiMember) -> None:
    response = lab_member.client.get("/api/Balance/health")  # curl -s ".../api/Balance/health" | jq .
    assert response.status_code == 200
    health = response.json()
    assert list(health)[:len(LAB_HEALTH_FIELDS)] == list(LAB_HEALTH_FIELDS)
    assert health["status"] == "Healthy" and health["consumerStatus"] == "Consuming"
    assert health["assignedPartitions"] == ALL
    assert health["messagesConsumed"] == lab_member.produced
    assert health["consumerId"] == "balance-worker-test-lab" and health["lastMessageAt"]


def test_balances_equal_the_ledger_recomputed_from_the_topic(lab_member: ApiMember) -> None:
    document = decimal_json(lab_member.client.get("/api/Balance/balances"))
    ledger = lab_member.ledger
    assert document["count"] == len(ledger.customers) == len(document["balances"])
    ids = [customer["customerId"] for customer in document["balances"]]
    assert ids == sorted(ids)
    for customer in document["balances"]:
        assert set(LAB_BALANCE_FIELDS) <= set(customer)
        state = ledger.customers[customer["customerId"]]
        assert customer["balancesByCurrency"] == state.balances  # Decimal == Decimal: digit for digit
        assert customer["balance"] == state.balances[customer["currency"]]
        assert customer["transactionCount"] == state.transaction_count
        assert customer["lastTransactionId"] == state.last_transaction_id


def test_cust_001_is_at_3800_00_eur_after_the_labs_two_transactions(lab_member: ApiMember) -> None:
    response = lab_member.client.get("/api/Balance/balances/CUST-001")
    assert response.status_code == 200
    assert b'"balance":3800.00' in response.content
    customer = decimal_json(response)
    assert customer["balance"] == Decimal("3800.00") and customer["currency"] == "EUR"
    assert customer["transactionCount"] == 2 and customer["lastTransactionId"] == "BAL-002"
    assert customer["lastUpdated"] == "2026-02-08T22:01:00.000Z"


def test_an_unknown_customer_is_404_with_the_labs_error(lab_member: ApiMember) -> None:
    response = lab_member.client.get("/api/Balance/balances/CUST-999")
    assert response.status_code == 404 and response.json() == {"error": "Customer CUST-999 not found"}


def test_metrics_have_the_labs_consumer_group_metrics(lab_member: ApiMember) -> None:
    metrics = lab_member.client.get("/api/balance/metrics").json()  # the lab's exercise 4 spelling
    assert list(metrics)[:len(LAB_METRICS_FIELDS)] == list(LAB_METRICS_FIELDS)
    assert metrics["groupId"] == lab_member.group and metrics["status"] == "Consuming"
    assert metrics["assignedPartitions"] == ALL and metrics["messagesConsumed"] == lab_member.produced
    assert metrics["balanceUpdates"] == lab_member.ledger.applied
    assert sum(metrics["partitionOffsets"].values()) == lab_member.produced  # next offsets: one past each record
    assert metrics["rebalancingHistory"][0]["eventType"] == "Assigned"
    assert metrics["rejectedMessages"] > 0  # the generator spoils 2 %


def test_rebalancing_history_has_the_labs_fields_newest_first(lab_member: ApiMember) -> None:
    history = lab_member.client.get("/api/Balance/rebalancing-history").json()
    assert list(history) == ["consumerId", "currentPartitions", "totalRebalancingEvents", "history"]
    assert history["currentPartitions"] == ALL
    assert history["totalRebalancingEvents"] == len(history["history"])
    stamps = [event["timestamp"] for event in history["history"]]
    assert stamps == sorted(stamps, reverse=True)
    assigned = [e for e in history["history"] if e["eventType"] == "Assigned"]
    assert assigned and assigned[-1]["partitions"] == ALL


def test_group_and_partitions_show_this_member_owning_everything(lab_member: ApiMember) -> None:
    group = lab_member.client.get("/api/Balance/group").json()
    assert [m["consumerId"] for m in group["members"]] == ["balance-worker-test-lab"]
    assert group["members"][0]["isSelf"] and group["unownedPartitions"] == []
    partitions = lab_member.client.get("/api/Balance/partitions").json()["partitions"]
    assert [p["partition"] for p in partitions] == ALL
    assert all(p["owner"] == "balance-worker-test-lab" and p["mine"] for p in partitions)
    assert all(p["state"] == PartitionState.CONSUMING.value and p["lag"] == 0 for p in partitions)
    assert sum(p["position"] for p in partitions) == lab_member.produced
    assert all(p["highWatermark"] == p["position"] for p in partitions)


def test_prometheus_metrics_parse_and_agree_with_the_member(lab_member: ApiMember) -> None:
    response = lab_member.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    labels = {"group": lab_member.group, "topic": lab_member.topic, "consumer_id": "balance-worker-test-lab"}
    (consumed,) = samples["balance_tui_messages_consumed_total"]
    assert consumed.labels == labels and consumed.value == lab_member.produced
    lags = samples["balance_tui_partition_lag_messages"]
    assert sorted(int(s.labels["partition"]) for s in lags) == ALL and all(s.value == 0 for s in lags)
    assert sum(s.value for s in samples["balance_tui_partition_position"]) == lab_member.produced
    assert sum(s.value for s in samples["balance_tui_partition_messages_consumed_total"]) <= lab_member.produced
    assert samples["balance_tui_assigned_partitions"][0].value == 6
    status = {s.labels["status"]: s.value for s in samples["balance_tui_consumer_status"]}
    assert status["Consuming"] == 1 and sum(status.values()) == 1
    assert samples["balance_tui_rebalance_duration_seconds_count"][0].value >= 1


def test_the_secret_settings_never_reach_the_api(lab_member: ApiMember) -> None:
    client = lab_member.client
    paths = ["/api/Balance/balances", "/api/Balance/balances/CUST-001", "/api/Balance/metrics",
             "/api/Balance/rebalancing-history", "/api/Balance/health", "/api/Balance/group",
             "/api/Balance/partitions", "/livez", "/metrics", "/openapi.json", "/swagger"]
    for path in paths:
        assert SECRET not in client.get(path).text, f"the secret reached {path}"
    with client.stream("GET", "/api/Balance/events", headers={"Last-Event-ID": "0"}) as stream:
        first = next(stream.iter_bytes())
    assert SECRET.encode() not in first
