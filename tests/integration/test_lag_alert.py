"""The lab's lag alert and Burrow-style evaluation on a real member while traffic flows (issue 13).

A paused member keeps committing the offset it stopped at while its lag grows: STALL in Burrow's
terms, and the alert rises; after resume it drains back to OK and the alert clears. Slowed down
below the arrival rate, it keeps committing progress while the lag grows anyway: WARN, and the
alert again. Everything is read from the member's session log and its export, on both brokers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from balance_tui.core.report import build_report, render_markdown
from tests.helpers import wait_until
from tests.integration.members import Cluster, Member

#: Short enough for a test, long enough that one missed statistics update cannot hide the growth.
LAG_FLAGS = ["--lag-alert-threshold", "50", "--lag-alert-for", "2s", "--lag-window", "4s"]


def stats_after(member: Member, event: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The member's `stats` lines logged after `event` (all of them for None)."""
    lines = member.events()
    start = 0 if event is None else next(i for i, line in enumerate(lines) if line == event) + 1
    return [line for line in lines[start:] if line["event"] == "stats"]


def a_stats_line(member: Member, after: dict[str, Any] | None, check: Callable[[dict[str, Any]], bool],
                 what: str, timeout: float = 60) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((line for line in stats_after(member, after) if check(line)), None)

    return wait_until(found, timeout, f"no stats line with {what}")


def nth_event(member: Member, kind: str, count: int, what: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(lambda: len(member.events(kind)) >= count and member.events(kind)[count - 1], timeout, what)


def test_a_paused_member_raises_the_alert_and_clears_it_once_drained(cluster: Callable[..., Cluster]) -> None:
    group = cluster("cooperative-sticky")
    producer = subprocess.Popen(
        [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", group.bootstrap, "--topic",
         group.topic, "--rate", "300", "--duration", "300", "--customers", "60", "--seed", "13"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        member = group.start("m1", flags=LAG_FLAGS)
        group.wait_for_assignments([6])
        caught_up = a_stats_line(member, None, lambda s: s.get("lag_status") == "OK" and (s.get("lag") or 0) <= 50
                                 and s.get("consumed", 0) > 0, "the member consuming and caught up")

        # Paused: the offsets stay where they are while commits keep coming, and the lag grows.
        member.command("pause")
        raised = nth_event(member, "lag_alert_raised", 1, "the alert was never raised during the pause")
        assert raised["threshold"] == "50 messages" and raised["for_s"] == 2.0
        assert raised["value"] > 50 and raised["since"] < raised["ts"]
        stalled = a_stats_line(member, caught_up, lambda s: s.get("lag_status") == "STALL",
                               "Burrow's STALL while paused (committed offsets stuck, lag growing)")
        assert stalled["lag_alert"] == "firing" and stalled["drain"] == "not draining"
        assert stalled["lag_seconds"] > 0

        member.command("pause")  # resume
        cleared = nth_event(member, "lag_alert_cleared", 1, "the alert never cleared after resume")
        assert cleared["raised_at"] >= raised["since"] and cleared["value"] <= 50 and cleared["duration_s"] > 0
        drained = a_stats_line(member, cleared, lambda s: s.get("lag_status") == "OK" and s.get("lag_alert") == "ok",
                               "OK after draining")

        # Slower than the arrivals (300 tx/s against 50 tx/s): progress is committed, the lag grows anyway.
        member.command("work 20")
        warned = a_stats_line(member, drained, lambda s: s.get("lag_status") == "WARN",
                              "Burrow's WARN while consuming slower than the arrivals")
        assert warned["drain"] == "not draining"
        nth_event(member, "lag_alert_raised", 2, "the alert was never raised for the slow consumer")
        member.command("work -20")
        nth_event(member, "lag_alert_cleared", 2, "the alert never cleared after speeding up")
        a_stats_line(member, member.events("lag_alert_cleared")[-1], lambda s: s.get("lag_status") == "OK",
                     "OK after the slow consumer drained")
        assert member.terminate() == 0
    finally:
        producer.kill()
        producer.wait(timeout=10)

    export = member.export()
    alert = export["lag"]["alert"]
    assert alert["raisedTotal"] == 2 and [t["kind"] for t in alert["transitions"]] == ["raised", "cleared"] * 2
    markers = {marker["kind"] for marker in export["lag"]["markers"]}
    assert {"assigned", "paused", "resumed"} <= markers
    report = build_report([member.events()])
    assert [a.cleared_at is not None for a in report.alerts] == [True, True]
    assert "### Lag alerts" in render_markdown(report) and "xychart-beta" in render_markdown(report)
