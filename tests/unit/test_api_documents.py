"""The API's JSON documents: the lab's fields, exact amounts, and the OpenAPI models that describe them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from balance_tui.api import documents, exact_json, schemas
from balance_tui.api.store import ApiStore
from balance_tui.core.assignment import iso_ms
from balance_tui.core.rows import BalanceRow, ConsumerStatus
from balance_tui.messages import KafkaErrorReported
from tests.api_messages import (
    CONSUMER,
    T0,
    assigned,
    balances,
    group,
    lab_ledger,
    revoked,
    row,
    snapshot,
    started,
    status,
)

#: The lab's ConsumerGroupMetrics, field for field.
LAB_METRICS_FIELDS = ("consumerId", "groupId", "status", "assignedPartitions", "messagesConsumed", "balanceUpdates",
                      "processingErrors", "partitionOffsets", "rebalancingHistory", "startedAt", "lastMessageAt")
LAB_HEALTH_FIELDS = ("status", "consumerId", "consumerStatus", "assignedPartitions", "messagesConsumed",
                     "lastMessageAt", "uptime")
LAB_BALANCE_FIELDS = ("customerId", "balance", "transactionCount", "lastUpdated", "lastTransactionId")


def decode(document: dict) -> dict:
    """Encode as the API does, then read back with exact decimals."""
    return json.loads(exact_json.dumps(document), parse_float=Decimal)


def busy_store() -> ApiStore:
    store = ApiStore(CONSUMER, "balance-service", "banking.transactions", clock=lambda: T0 + timedelta(minutes=5))
    store.apply(started())
    store.apply(assigned((0, 1, 2), join_ms=3000.0))
    store.apply(revoked((2,), (0, 1)))
    store.apply(assigned((2,), (0, 1, 2), join_ms=120.0, downtime_ms={2: 120.0}))
    store.apply(status(ConsumerStatus.CONSUMING))
    store.apply(KafkaErrorReported(code="X", reason="y", fatal=False))
    store.apply(balances(*lab_ledger(partition=2).rows()))
    store.apply(snapshot({0: 4, 1: 7, 2: 2}, consumed=13, applied=2, rejected=1, latency_p50_ms=12.5))
    store.apply(group((CONSUMER, (0, 1, 2), "Consuming"), ("other", (3, 4, 5), "Consuming")))
    return store


def test_the_labs_two_transactions_leave_cust_001_at_3800_00_eur() -> None:
    store = busy_store()
    body = exact_json.dumps(documents.balances_document(store.balances()))
    assert b'"balance":3800.00' in body
    document = json.loads(body, parse_float=Decimal)
    assert document["count"] == 1
    (customer,) = document["balances"]
    assert set(LAB_BALANCE_FIELDS) <= set(customer)
    assert customer["customerId"] == "CUST-001" and customer["balance"] == Decimal("3800.00")
    assert customer["currency"] == "EUR" and customer["transactionCount"] == 2
    assert customer["lastTransactionId"] == "BAL-002" and customer["lastUpdated"] == "2026-02-08T22:01:00.000Z"


def test_balances_equal_the_ledger_digit_for_digit() -> None:
    store = ApiStore(CONSUMER, "g", "t")
    huge = row("CUST-9", "EUR", "123456789012345678.91", 0)  # beyond a float's 15-17 digits
    store.apply(balances(huge, row("CUST-8", "EUR", "0.10"), row("CUST-8", "USD", "-0.20")))
    document = decode(documents.balances_document(store.balances()))
    assert [c["customerId"] for c in document["balances"]] == ["CUST-8", "CUST-9"]
    assert document["balances"][1]["balance"] == Decimal("123456789012345678.91")
    assert document["balances"][0]["balancesByCurrency"] == {"EUR": Decimal("0.10"), "USD": Decimal("-0.20")}


@pytest.mark.parametrize(("currencies", "shown"), [
    (["USD"], "USD"), (["CHF", "EUR", "USD"], "EUR"), (["USD", "CHF"], "CHF"),
])
def test_the_labs_single_balance_is_the_only_currency_else_eur_else_the_first(currencies, shown) -> None:
    rows = [row("CUST-1", currency, "1.00") for currency in sorted(currencies)]
    document = documents.customer_document(rows)
    assert document["currency"] == shown
    assert sorted(document["balancesByCurrency"]) == sorted(currencies)


def test_the_fast_balances_body_is_the_documents_bytes() -> None:
    paris = timezone(timedelta(hours=1))
    rows = sorted([
        row("CUST-1", "EUR", "3800.00", 2), row("CUST-1", "USD", "-0.01", 2), row("C\"2\u00e9", "CHF", "1E+2", None),
        BalanceRow("CUST-3", "GBP", Decimal("5.50"), 1, datetime(2026, 2, 8, 23, 0, 0, 999999, tzinfo=paris), "T\n", 4),
    ], key=lambda r: (r.customer_id, r.currency))
    assert documents.balances_body(rows) == exact_json.dumps(documents.balances_document(rows))
    assert documents.balances_body([]) == b'{"count":0,"balances":[]}'


def test_fast_times_are_iso_ms() -> None:
    for moment in (T0, T0.replace(microsecond=123999), T0.astimezone(timezone(timedelta(hours=-5)))):
        assert documents.fast_iso_ms(moment) == iso_ms(moment)


def test_an_unknown_customer_gets_the_labs_404_body() -> None:
    assert documents.not_found_document("CUST-404") == {"error": "Customer CUST-404 not found"}


def test_metrics_have_the_labs_fields_then_ours() -> None:
    document = decode(documents.metrics_document(busy_store().snapshot()))
    assert list(document)[:len(LAB_METRICS_FIELDS)] == list(LAB_METRICS_FIELDS)
    assert document["assignedPartitions"] == [0, 1, 2]
    assert document["partitionOffsets"] == {"0": 4, "1": 7, "2": 2}
    assert document["messagesConsumed"] == 13 and document["balanceUpdates"] == 2
    assert [e["eventType"] for e in document["rebalancingHistory"]] == ["Assigned", "Revoked", "Assigned", "Error"]
    assert document["rejectedMessages"] == 1 and document["latencyP50Ms"] == Decimal("12.5")


def test_rebalancing_history_is_newest_first() -> None:
    document = decode(documents.rebalancing_history_document(busy_store().snapshot()))
    assert document["currentPartitions"] == [0, 1, 2]
    assert document["totalRebalancingEvents"] == 4
    assert [e["eventType"] for e in document["history"]] == ["Error", "Assigned", "Revoked", "Assigned"]
    assert document["history"][1]["downtimeMs"] == {"2": Decimal("120.0")}


@pytest.mark.parametrize(("state", "paused", "healthy"), [
    (ConsumerStatus.CONSUMING, False, True),
    (ConsumerStatus.CONSUMING, True, False),
    (ConsumerStatus.JOINING, False, False),
    (ConsumerStatus.REBALANCING, False, False),
    (ConsumerStatus.IDLE, False, False),
    (ConsumerStatus.PARTITIONS_LOST, False, False),
])
def test_health_is_healthy_only_while_consuming(state, paused, healthy) -> None:
    store = ApiStore(CONSUMER, "g", "t", clock=lambda: T0)
    store.apply(snapshot({0: 1}, status_=state, paused=paused))
    document, ok = documents.health_document(store.snapshot(), T0 + timedelta(hours=26, seconds=1.5))
    assert ok is healthy
    assert document["status"] == ("Healthy" if healthy else "Degraded")
    assert list(document)[:len(LAB_HEALTH_FIELDS)] == list(LAB_HEALTH_FIELDS)
    assert document["uptime"] == "1.02:00:01.5000000"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "00:00:00"), (12.3456789, "00:00:12.3456789"), (3600 * 25 + 61, "1.01:01:01"),
])
def test_uptime_is_written_as_dotnet_writes_a_timespan(seconds, text) -> None:
    assert documents.timespan_text(seconds) == text


def test_liveness_fails_only_when_the_worker_is_silent_too_long_or_gone() -> None:
    assert documents.liveness_document(5, 60, None)[1] is True
    assert documents.liveness_document(61, 60, None)[1] is False
    assert documents.liveness_document(0, 60, "worker crashed")[1] is False


def test_group_and_partitions_documents_name_every_owner() -> None:
    view = busy_store().snapshot()
    group_document = decode(documents.group_document(view))
    assert group_document["state"] == "stable" and group_document["memberCount"] == 2
    assert [m["isSelf"] for m in group_document["members"]] == [True, False]
    partitions = decode(documents.partitions_document(view))["partitions"]
    assert [p["owner"] for p in partitions] == [CONSUMER] * 3 + ["other"] * 3
    assert partitions[0]["lag"] == 96 and partitions[3]["lag"] == 2  # mine: from my reads; others: heartbeats


def test_every_document_matches_its_openapi_model() -> None:
    store = busy_store()
    view = store.snapshot()
    now = T0 + timedelta(minutes=5)
    cases = [
        (schemas.BalanceList, documents.balances_document(store.balances())),
        (schemas.CustomerBalance, documents.customer_document(store.customer("CUST-001"))),
        (schemas.NotFound, documents.not_found_document("x")),
        (schemas.ConsumerGroupMetrics, documents.metrics_document(view)),
        (schemas.RebalancingHistory, documents.rebalancing_history_document(view)),
        (schemas.Health, documents.health_document(view, now)[0]),
        (schemas.Liveness, documents.liveness_document(1.0, 60.0, None)[0]),
        (schemas.GroupView, documents.group_document(view)),
        (schemas.PartitionList, documents.partitions_document(view)),
    ]
    assert {model for model, _ in cases} == set(schemas.DOCUMENT_MODELS)
    for model, document in cases:
        model.model_validate(decode(document))  # extra="forbid": an undescribed field fails here
    empty = ApiStore(CONSUMER, "g", "t").snapshot()
    for model, document in [(schemas.GroupView, documents.group_document(empty)),
                            (schemas.ConsumerGroupMetrics, documents.metrics_document(empty)),
                            (schemas.Health, documents.health_document(empty, now)[0])]:
        model.model_validate(decode(document))


def test_stream_events_carry_the_history_fields_or_the_status() -> None:
    store = busy_store()
    kinds = {event.kind: documents.event_document(event, CONSUMER) for event in store.events_after(0)}
    assert kinds["assigned"]["eventType"] == "Assigned" and kinds["assigned"]["consumerId"] == CONSUMER
    assert kinds["status"]["eventType"] == "StatusChanged" and kinds["status"]["status"] == "Consuming"


# -- exact JSON ------------------------------------------------------------------------------------------


def test_decimals_are_exact_numbers_and_never_exponents() -> None:
    assert exact_json.dumps({"a": Decimal("3800.00"), "b": Decimal("-0.01"), "c": Decimal("1E+3")}) == \
        b'{"a":3800.00,"b":-0.01,"c":1000}'


def test_text_is_escaped_and_non_finite_numbers_refused_or_nulled() -> None:
    assert (exact_json.dumps(["a\"b\n\u00e9", None, True, 1.5, float("nan")])
            == b'["a\\"b\\n\\u00e9",null,true,1.5,null]')
    with pytest.raises(ValueError):
        exact_json.dumps(Decimal("NaN"))
    with pytest.raises(TypeError):
        exact_json.dumps({1: "x"})
    with pytest.raises(TypeError):
        exact_json.dumps(object())


def test_exact_json_reads_back_as_json_does() -> None:
    document = {"x": [1, 2, {"y": "z", "m": Decimal("0.30")}], "t": False}
    assert json.loads(exact_json.dumps(document), parse_float=Decimal) == document
