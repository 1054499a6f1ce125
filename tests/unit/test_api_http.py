"""The HTTP layer over real loopback HTTP, with a store fed synthetic messages (no broker)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from balance_tui.api.app import MAX_STREAMS, canonical_path
from balance_tui.api.server import ApiServer, bind, start_api
from balance_tui.api.store import ApiStore
from balance_tui.core.rows import ConsumerStatus
from balance_tui.errors import UserError
from tests.api_messages import CONSUMER, assigned, balances, lab_ledger, snapshot, started, status
from tests.helpers import wait_until


@pytest.fixture
def served() -> Iterator[tuple[ApiServer, httpx.Client]]:
    store = ApiStore(CONSUMER, "balance-service", "banking.transactions")
    server = start_api("127.0.0.1", 0, store, quiet=True)
    store.feed(started())
    store.feed(assigned((0, 1, 2)))
    store.feed(status(ConsumerStatus.CONSUMING))
    store.feed(balances(*lab_ledger(partition=1).rows()))
    store.feed(snapshot({0: 0, 1: 2, 2: 0}, consumed=2, applied=2))
    assert store.flush()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield server, client
    finally:
        server.stop()


@pytest.mark.parametrize(("path", "canonical"), [
    ("/api/balance/balances", "/api/Balance/balances"),
    ("/API/BALANCE/Balances/CUST-001", "/api/Balance/balances/CUST-001"),
    ("/api/Balance/REBALANCING-HISTORY", "/api/Balance/rebalancing-history"),
    ("/Swagger", "/swagger"),
    ("/METRICS", "/metrics"),
    ("/api/balance/unknown", "/api/balance/unknown"),
    ("/elsewhere", "/elsewhere"),
])
def test_the_labs_paths_are_case_insensitive_and_values_keep_their_case(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


def test_the_labs_curl_commands_answer_with_the_labs_fields(served) -> None:
    _, client = served
    response = client.get("/api/balance/balances")  # as the lab's exercise 4 spells it
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert b'"balance":3800.00' in response.content
    assert response.json()["count"] == 1
    one = client.get("/api/Balance/balances/CUST-001").json(parse_float=Decimal)
    assert one["balance"] == Decimal("3800.00") and one["lastTransactionId"] == "BAL-002"
    assert client.get("/api/Balance/metrics").json()["assignedPartitions"] == [0, 1, 2]
    assert client.get("/api/Balance/rebalancing-history").json()["history"][0]["eventType"] == "Assigned"
    health = client.get("/api/Balance/health")
    assert health.status_code == 200 and health.json()["status"] == "Healthy"


def test_unknown_customers_get_404_and_ids_keep_their_case(served) -> None:
    _, client = served
    for customer in ("cust-001", "CUST-999", "a/b", "é ü"):
        response = client.get(f"/api/Balance/balances/{customer}")
        assert response.status_code == 404
        assert response.json() == {"error": f"Customer {customer} not found"}


def test_health_is_503_while_not_consuming(served) -> None:
    server, client = served
    server.store.feed(snapshot({0: 0}, paused=True))
    assert server.store.flush()
    response = client.get("/api/Balance/health")
    assert response.status_code == 503
    assert response.json()["status"] == "Degraded" and response.json()["consumerStatus"] == "Paused"
    assert client.get("/livez").status_code == 200  # paused is alive


def test_swagger_ui_loads_only_this_servers_files(served) -> None:
    _, client = served
    page = client.get("/swagger")
    assert page.status_code == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert references and all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    for reference in references:
        assert client.get(reference).status_code == 200, reference
    assert '"validatorUrl": null' in page.text  # Swagger UI would ask validator.swagger.io otherwise
    assert client.get("/swagger/v1/swagger.json").json() == client.get("/openapi.json").json()
    assert client.get("/swagger/index.html", follow_redirects=True).url.path == "/swagger"


def _read_events(lines: Iterator[str], wanted: int) -> list[tuple[str, str]]:
    """The next `wanted` (event, data) pairs of a server-sent event stream."""
    events, kind = [], None
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: "):]
        elif line.startswith("data: ") and kind is not None:
            events.append((kind, line[len("data: "):]))
            if len(events) >= wanted:
                return events
    return events


def test_the_event_stream_follows_rebalances_live_and_replays_after_last_event_id(served) -> None:
    server, client = served
    with client.stream("GET", "/api/Balance/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: hello"
        server.store.feed(assigned((3,), (0, 1, 2, 3)))
        events = _read_events(lines, 1)
        assert events[0][0] == "assigned" and '"assignment":[0,1,2,3]' in events[0][1]
    with client.stream("GET", "/api/Balance/events", headers={"Last-Event-ID": "0"}) as response:
        kinds = [kind for kind, _ in _read_events(response.iter_lines(), 4)]
        assert kinds == ["hello", "assigned", "status", "assigned"]


def test_streams_are_limited_and_end_when_the_server_stops() -> None:
    store = ApiStore(CONSUMER, "g", "t")
    server = start_api("127.0.0.1", 0, store, quiet=True)
    ended = threading.Event()
    opened: list[httpx.Response] = []

    def follow(client: httpx.Client) -> None:
        try:
            with client.stream("GET", "/api/Balance/events") as response:
                opened.append(response)
                for _ in response.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        ended.set()

    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(MAX_STREAMS + 1)]
    try:
        for client in clients[:MAX_STREAMS]:
            threading.Thread(target=follow, args=(client,), daemon=True).start()
        wait_until(lambda: len(opened) == MAX_STREAMS, 10, "the streams never opened")
        assert clients[-1].get("/api/Balance/events").status_code == 503
        server.stop()
        assert ended.wait(5), "a stream outlived the server"
    finally:
        server.stop()
        for client in clients:
            client.close()


def test_liveness_fails_when_the_worker_is_silent_too_long() -> None:
    now = [0.0]
    store = ApiStore(CONSUMER, "g", "t", monotonic=lambda: now[0])
    server = start_api("127.0.0.1", 0, store, quiet=True)
    try:
        now[0] = 59.0
        assert httpx.get(server.url + "/livez").status_code == 200
        now[0] = 61.0
        response = httpx.get(server.url + "/livez")
        assert response.status_code == 503 and response.json()["alive"] is False
    finally:
        server.stop()


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError) as error:
            bind("127.0.0.1", port)
    assert str(error.value) == (f"cannot serve the HTTP API on 127.0.0.1:{port}: the port is in use"
                                " (choose another --http-port)")


def test_an_unknown_host_is_one_line() -> None:
    with pytest.raises(UserError, match=r"^cannot serve the HTTP API on no-such-host\.invalid:8080: unknown host"):
        bind("no-such-host.invalid", 8080)
