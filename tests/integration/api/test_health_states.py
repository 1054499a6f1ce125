"""503 whenever a member is not consuming, and a rebalance followed live on the event stream."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import free_port, wait_until
from tests.integration.api.conftest import api_url

pytestmark = pytest.mark.broker


def health(client: httpx.Client) -> tuple[int, dict]:
    response = client.get("/api/Balance/health")
    return response.status_code, response.json()


def wait_for_health(client: httpx.Client, code: int, consumer_status: str, timeout: float = 60) -> dict:
    def reached() -> dict | None:
        status, body = health(client)
        return body if status == code and body["consumerStatus"] == consumer_status else None

    try:
        return wait_until(reached, timeout, f"health never became {code} {consumer_status}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last: {health(client)}") from None


def test_degraded_before_the_broker_answers_but_alive(cluster) -> None:
    group = cluster("range")
    member = group.start("lonely", flags=["--http-port", "0", "--bootstrap-servers", f"127.0.0.1:{free_port()}",
                                          "--connect-timeout", "120"])
    with httpx.Client(base_url=api_url(member), timeout=10) as client:
        body = wait_for_health(client, 503, "Connecting", timeout=10)
        assert body["status"] == "Degraded" and body["assignedPartitions"] == []
        assert client.get("/livez").status_code == 200  # waiting for a broker is not being stuck


def test_degraded_before_the_first_assignment_while_paused_and_after_a_revoke(cluster) -> None:
    group = cluster("range")
    holder = group.start("holder")
    group.wait_for_assignments([6])
    # A cooperative member cannot join a group using the eager protocol: it stays unassigned.
    newcomer = group.start("newcomer", strategy="cooperative-sticky", flags=["--http-port", "0"])
    with httpx.Client(base_url=api_url(newcomer), timeout=10) as client:
        wait_until(lambda: newcomer.events("error"), 60, "the group never refused the newcomer")
        body = wait_for_health(client, 503, "Joining")
        assert body["assignedPartitions"] == [] and client.get("/livez").status_code == 200

        newcomer.command("strategy range")
        group.wait_for_assignments([3, 3])
        body = wait_for_health(client, 200, "Consuming")
        assert body["status"] == "Healthy" and len(body["assignedPartitions"]) == 3

        newcomer.command("pause")
        body = wait_for_health(client, 503, "Paused")
        assert body["paused"] is True and len(body["assignedPartitions"]) == 3
        assert client.get("/livez").status_code == 200
        newcomer.command("pause")
        wait_for_health(client, 200, "Consuming")

        newcomer.command("strategy cooperative-sticky")  # revokes everything, then is refused again
        wait_until(lambda: client.get("/api/Balance/rebalancing-history").json()["history"][0]["eventType"]
                   in ("Revoked", "StrategyChanged", "Error"), 30, "no revoke in the history")
        body = wait_for_health(client, 503, "Joining")
        assert body["assignedPartitions"] == []
        kinds = [e["eventType"] for e in client.get("/api/Balance/rebalancing-history").json()["history"]]
        assert "Revoked" in kinds[:kinds.index("Assigned")]
        assert client.get("/livez").status_code == 200
    holder.terminate()


def test_a_script_follows_a_rebalance_live_on_the_event_stream(cluster) -> None:
    group = cluster("range")
    first = group.start("first", flags=["--http-port", "0"])
    group.wait_for_assignments([6])
    seen: list[tuple[str, dict]] = []
    with httpx.Client(base_url=api_url(first), timeout=httpx.Timeout(10, read=60)) as client, \
            client.stream("GET", "/api/Balance/events") as stream:
        kind = None
        second = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append((kind or "", json.loads(line.removeprefix("data: "))))
                if kind == "hello":
                    second = group.start("second")  # the rebalance happens while we listen
                if kind == "assigned" and len(seen[-1][1]["assignment"]) == 3:
                    break
        assert second is not None
    kinds = [k for k, _ in seen]
    assert kinds[0] == "hello" and seen[0][1]["assignment"] == [0, 1, 2, 3, 4, 5]
    assert "revoked" in kinds and kinds.index("revoked") < len(kinds) - 1
    assert seen[-1][1]["eventType"] == "Assigned" and seen[-1][1]["consumerId"] == "balance-worker-test-first"
    assert any(k == "status" and data["status"] == "Rebalancing" for k, data in seen)
