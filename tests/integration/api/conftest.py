"""Real `balance-tui --headless --http-port 0` members on the session broker, and how to reach their API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from confluent_kafka import Producer

from balance_tui.core.ledger import Ledger
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.core.transaction import Transaction, parse_transaction
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.reader import read_partitions
from tests.api_messages import LAB_TRANSACTIONS
from tests.helpers import wait_until
from tests.integration.members import Cluster, Member

#: Configured on the lab member: no endpoint may ever show it.
SECRET = "s3cr3t-api-password-never-shown"
GENERATED = 300

_API_LINE = re.compile(r"HTTP API on (http://\S+) ")


def api_url(member: Member, timeout: float = 30) -> str:
    """The member's API base URL, from the line it prints at start (it was given --http-port 0)."""
    match = wait_until(lambda: _API_LINE.search(member.output()), timeout,
                       f"{member.name} never announced its HTTP API")
    return match.group(1)


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def topic_ledger(bootstrap: str, topic: str) -> Ledger:
    """The balances recomputed from the whole topic, read back with the product's reader."""
    ledger = Ledger()
    for partition, offset, _, value in read_partitions({"bootstrap.servers": bootstrap}, topic):
        tx = parse_transaction(value)
        if isinstance(tx, Transaction):
            ledger.apply(tx, partition, offset)
    return ledger


def lab_and_generated_records(count: int = GENERATED) -> list[tuple[bytes, bytes]]:
    """The lab's two CUST-001 transactions, then generated ones for other customers (GEN-nnn)."""
    records = [(b"CUST-001", value) for value in LAB_TRANSACTIONS]
    for key, value in TrafficGenerator(customers=60, seed=7, bad_ratio=0.02).next_batch(count):
        records.append((key.replace(b"CUST-", b"GEN-"), value.replace(b'"customerId":"CUST-', b'"customerId":"GEN-')))
    return records


@dataclass
class ApiMember:
    member: Member
    url: str
    client: httpx.Client
    topic: str
    group: str
    produced: int
    ledger: Ledger


@pytest.fixture(scope="module")
def lab_member(broker, unique, tmp_path_factory) -> Iterator[ApiMember]:
    """One member owning all six partitions, with the lab's transactions and 300 more consumed."""
    topic, group = unique("api-tx"), unique("api-grp")
    ensure_topic({"bootstrap.servers": broker.bootstrap}, topic, 6)
    cluster = Cluster(broker.bootstrap, topic, group, tmp_path_factory.mktemp("api-member"))
    member = cluster.start("lab", flags=["--http-port", "0"], env={
        "BALANCE_TUI_SASL_PASSWORD": SECRET,  # plaintext ignores it, but it is configured
        "BALANCE_TUI_LIBRDKAFKA": json.dumps({"sasl.oauthbearer.client.secret": SECRET}),
    })
    try:
        url = api_url(member)
        cluster.wait_for_assignments([6])
        records = lab_and_generated_records()
        produce(broker.bootstrap, topic, records)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_until(lambda: client.get("/api/Balance/metrics").json()["messagesConsumed"] == len(records), 60,
                       "the member never consumed everything")
            ledger = topic_ledger(broker.bootstrap, topic)
            expected = {customer_id: state.balances for customer_id, state in ledger.customers.items()}

            def served() -> dict:
                document = decimal_json(client.get("/api/Balance/balances"))
                return {c["customerId"]: c["balancesByCurrency"] for c in document["balances"]}

            # The last balance batch follows the snapshot that counted the records (100 ms batches,
            # /balances re-encoded at most twice a second).
            wait_until(lambda: served() == expected, 30, "the balances never matched the topic's ledger")
            # Lag needs each partition's high watermark, from librdkafka's statistics (once a second).
            wait_until(lambda: all(p["lag"] == 0 for p in client.get("/api/Balance/partitions").json()["partitions"]),
                       30, "the lag of every partition never became known and 0")
            yield ApiMember(member, url, client, topic, group, len(records), ledger)
    finally:
        cluster.stop_all()


def decimal_json(response: httpx.Response) -> dict:
    return response.json(parse_float=Decimal)
