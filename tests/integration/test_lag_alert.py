"""The lab's lag alert and Burrow-style evaluation on a real member while traffic flows (issue 13).

A paused member keeps committing the offset it stopped at while its lag grows: STALL in Burrow's
terms, and the alert rises; after resume it drains back to OK and the alert clears. Slowed down
below the arrival rate, it keeps committing progress while the lag grows anyway: WARN, and the
alert again; at full speed it drains back to OK. Everything is read from the member's session log,
its export and the report built from its log, on each broker. Real processes: a headless member
and `balance-tui produce`, with a short window, threshold and duration so each step takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from balance_tui.core.report import build_report, render_markdown
from balance_tui.session_log import export_paths
from tests.helpers import wait_until
from tests.integration.members import Cluster, Member

#: Short enough for a test, long enough that one missed statistics update cannot hide the growth:
#: 300 tx/s arrive (50 per partition), so a paused member is above 50 messages within a second.
THRESHOLD = 50
LAG_FLAGS = ["--lag-alert-threshold", str(THRESHOLD), "--lag-alert-for", "2s", "--lag-window", "4s"]
ALERT_EVENTS = ("lag_alert_raised", "lag_alert_cleared")


def events_after(member: Member, event: dict[str, Any] | None, kind: str | tuple[str, ...]) -> list[dict[str, Any]]:
    """The member's `kind` lines logged after `event` (all of them for None), oldest first."""
    kinds = (kind,) if isinstance(kind, str) else kind
    lines = member.events()
    start = 0 if event is None else lines.index(event) + 1
    return [line for line in lines[start:] if line["event"] in kinds]


def first_after(member: Member, event: dict[str, Any] | None, kind: str, what: str,
                check: Callable[[dict[str, Any]], bool] = lambda line: True, timeout: float = 60) -> dict[str, Any]:
    """The first `kind` line after `event` that passes `check`, waited for (the log grows as the member runs)."""
    def found() -> dict[str, Any] | None:
        return next((line for line in events_after(member, event, kind) if check(line)), None)

    return wait_until(found, timeout, what)


def test_a_paused_member_raises_the_alert_and_clears_it_once_drained(cluster: Callable[..., Cluster]) -> None:
    group = cluster("cooperative-sticky")
    member = group.start("m1", flags=LAG_FLAGS)
    group.wait_for_assignments([6])
    # Traffic once the member owns everything: nothing to catch up on, so no alert before the pause.
    producer = subprocess.Popen(
        [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", group.bootstrap, "--topic",
         group.topic, "--rate", "300", "--duration", "300", "--customers", "60", "--seed", "13"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        caught_up = first_after(
            member, None, "stats", "the member never consumed the traffic and kept up with it",
            lambda s: s.get("consumed", 0) > 0 and s.get("lag_status") == "OK" and s.get("lag_alert") == "ok"
            and (s.get("lag") or 0) <= THRESHOLD)

        # Paused: the offsets stay where they are while commits keep coming, and the lag grows.
        member.command("pause")
        paused = first_after(member, caught_up, "paused", "the pause was never logged")
        raised = first_after(member, paused, "lag_alert_raised", "the alert was never raised during the pause")
        assert raised["threshold"] == f"{THRESHOLD} messages" and raised["for_s"] == 2.0
        assert raised["value"] > THRESHOLD and raised["since"] < raised["ts"] and raised["partitions"]
        stalled = first_after(member, paused, "stats", "no STALL while paused (committed offsets stuck, lag growing)",
                              lambda s: s.get("lag_status") == "STALL")
        assert stalled["lag_alert"] == "firing" and stalled["drain"] == "not draining"
        assert stalled["lag_seconds"] > 0 and set(stalled["lag_status_by_partition"].values()) == {"STALL"}
        assert not events_after(member, paused, "lag_alert_cleared"), "cleared while still paused"

        member.command("pause")  # resume
        resumed = first_after(member, stalled, "resumed", "the resume was never logged")
        cleared = first_after(member, resumed, "lag_alert_cleared", "the alert never cleared after resume")
        # The same alert: raised after the lag went above the threshold, logged when it was raised.
        assert raised["since"] < cleared["raised_at"] <= raised["ts"]
        assert cleared["value"] <= THRESHOLD and cleared["duration_s"] > 0
        drained = first_after(member, cleared, "stats", "never OK after draining",
                              lambda s: s.get("lag_status") == "OK" and s.get("lag_alert") == "ok")
        assert drained["drain"] in ("caught up", "draining")

        # Slower than the arrivals (about 50 tx/s against 300 tx/s): progress is committed, the lag grows anyway.
        member.command("work 20")
        slowed = first_after(member, drained, "work_ms_changed", "the slowdown was never logged")
        warned = first_after(member, slowed, "stats", "no WARN while consuming slower than the arrivals",
                             lambda s: s.get("lag_status") == "WARN")
        assert warned["drain"] == "not draining"
        raised_again = first_after(member, slowed, "lag_alert_raised", "the alert was never raised for the slow member")
        member.command("work -20")
        sped_up = first_after(member, warned, "work_ms_changed", "the speed-up was never logged",
                              lambda line: line["to"] == 0)
        cleared_again = first_after(member, sped_up, "lag_alert_cleared", "the alert never cleared after speeding up")
        assert raised_again["since"] < cleared_again["raised_at"] <= raised_again["ts"]
        first_after(member, cleared_again, "stats", "never OK after the slow member drained",
                    lambda s: s.get("lag_status") == "OK")
        assert member.terminate() == 0
    finally:
        producer.kill()
        producer.wait(timeout=10)

    # The export and the report tell the same alerts as the session log, raised and cleared in turn.
    logged = events_after(member, None, ALERT_EVENTS)
    assert [line["event"] for line in logged] == ["lag_alert_raised", "lag_alert_cleared"] * (len(logged) // 2)
    assert raised in logged and cleared in logged and raised_again in logged and cleared_again in logged
    export = member.export()
    alert = export["lag"]["alert"]
    assert alert["state"] == "ok" and alert["raisedTotal"] == len(logged) // 2
    assert [t["kind"] for t in alert["transitions"]] == [line["event"].removeprefix("lag_alert_") for line in logged]
    markers = {marker["kind"] for marker in export["lag"]["markers"]}
    assert {"assigned", "restored", "paused", "resumed"} <= markers
    assert export["lag"]["series"], "no lag over time in the export"
    markdown = export_paths(member.log_path)[1].read_text()
    assert "## Lag" in markdown and "### Lag alerts" in markdown and "‖" in markdown and "▸" in markdown
    report = build_report([member.events()])
    assert len(report.alerts) == len(logged) // 2 and all(a.cleared_at is not None for a in report.alerts)
    assert report.lag_series and max(lag for _, lag in report.lag_series) > THRESHOLD
    text = render_markdown(report)
    assert "## Lag over time" in text and "### Lag alerts" in text and "xychart-beta" in text
