"""`balance-tui report`: rebalance episodes, histories and renderings from session logs.

The fixtures under tests/fixtures/sessions/ are real logs recorded by
tests/fixtures/make_session_logs.py (w1 alone, w2 joins, w3 joins, w2 SIGKILLed,
w3 stops, w1 stops) with session.timeout.ms 2000. Their timings vary from one
recording to the next, so only structure is asserted here, never durations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from balance_tui import cli
from balance_tui.core.report import (
    REBALANCE_HEADER,
    Rebalance,
    Report,
    ReportError,
    build_report,
    render_json,
    render_markdown,
    render_mermaid,
)
from balance_tui.session_log import read_session_log

SESSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "sessions"
ALL = (0, 1, 2, 3, 4, 5)
T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def fixture_report(strategy: str) -> Report:
    logs = [read_session_log(path) for path in sorted((SESSIONS / strategy).glob("*.jsonl"))]
    assert len(logs) == 3, f"fixture logs missing for {strategy}: run tests/fixtures/make_session_logs.py"
    return build_report(logs)


@pytest.fixture(scope="module", params=["range", "cooperative-sticky"])
def recorded(request: pytest.FixtureRequest) -> tuple[str, Report]:
    return request.param, fixture_report(request.param)


def by_alias(report: Report, alias: str) -> str:
    return next(m.name for m in report.members if m.alias == alias)


def assignment_before(rebalance: Rebalance, member: str) -> tuple[int, ...]:
    return next(p.before for p in rebalance.pauses if p.member == member)


# -- the recorded scenario ------------------------------------------------------------------------


def test_rebalances_are_the_scenarios_triggers_in_order(recorded):
    _, report = recorded
    assert [r.trigger for r in report.rebalances] == ["join", "join", "join", "crash", "leave"]
    assert [report.alias(r.triggers[0].member) for r in report.rebalances] == ["W1", "W2", "W3", "W2", "W3"]
    assert all(r.settled_at is not None for r in report.rebalances)
    assert report.warnings == []


def test_members_before_and_after_each_rebalance(recorded):
    _, report = recorded
    counts = [(len(r.members_before), len(r.members_after)) for r in report.rebalances]
    assert counts == [(0, 1), (1, 2), (2, 3), (3, 2), (2, 1)]
    crash = report.rebalances[3]
    assert by_alias(report, "W2") in crash.members_before
    assert by_alias(report, "W2") not in crash.members_after


def test_every_partition_is_owned_once_after_each_rebalance(recorded):
    _, report = recorded
    for rebalance in report.rebalances:
        owned = sorted(p for pause in rebalance.pauses for p in pause.after if pause.role not in ("left", "crashed"))
        assert owned == list(ALL), f"rebalance {rebalance.number}"


def test_crash_is_detected_after_the_member_was_last_seen(recorded):
    _, report = recorded
    crash = report.rebalances[3]
    assert [c.member for c in crash.crashes] == ["balance-worker-test-w2"]
    detection = crash.crashes[0]
    dead = next(m for m in report.members if m.name == detection.member)
    assert dead.end == "crashed" and dead.last_seen == detection.last_seen
    assert detection.detected_at is not None and detection.detected_at > detection.last_seen
    assert detection.detect_ms is not None and detection.detect_ms > 0
    assert 0 <= detection.detect_min_ms <= detection.detect_ms
    # The crash is counted from last seen, so nothing is owned again before it was noticed.
    assert crash.settle_ms >= detection.detect_ms


def test_eager_revokes_everything_and_cooperative_only_what_moves(recorded):
    strategy, report = recorded
    for rebalance in report.rebalances[1:]:
        assert rebalance.moved, f"rebalance {rebalance.number} moved nothing"
        if strategy == "range":
            assert rebalance.interrupted == ALL, f"rebalance {rebalance.number}"
        else:
            assert rebalance.interrupted == rebalance.moved, f"rebalance {rebalance.number}"
            assert len(rebalance.interrupted) < len(ALL)
    crash, leave = report.rebalances[3], report.rebalances[4]
    dead_partitions = assignment_before(crash, by_alias(report, "W2"))
    leaver_partitions = assignment_before(leave, by_alias(report, "W3"))
    assert len(dead_partitions) == 2 and set(dead_partitions) <= set(crash.moved)
    assert len(leaver_partitions) == 3 and set(leaver_partitions) <= set(leave.moved)
    if strategy == "cooperative-sticky":
        assert crash.moved == dead_partitions and leave.moved == leaver_partitions


def test_pause_per_member_stop_the_world_vs_incremental(recorded):
    strategy, report = recorded
    for rebalance in report.rebalances[1:]:
        stayed = [p for p in rebalance.pauses if p.role == "stayed"]
        assert stayed, f"rebalance {rebalance.number} has no surviving member"
        for pause in stayed:
            if strategy == "range":
                assert pause.pause_ms > 0, f"{pause.member} in rebalance {rebalance.number}"
            else:
                assert pause.pause_ms == 0, f"{pause.member} in rebalance {rebalance.number}"
    joiners = [p for r in report.rebalances[:3] for p in r.pauses if p.role == "joined"]
    assert [report.alias(p.member) for p in joiners] == ["W1", "W2", "W3"]
    assert all(p.pause_ms > 0 and not p.idle for p in joiners)
    roles = {report.alias(p.member): p.role for p in report.rebalances[3].pauses}
    assert roles == {"W1": "stayed", "W2": "crashed", "W3": "stayed"}


def test_assignment_history_of_each_member(recorded):
    strategy, report = recorded
    w1, w2, w3 = report.members
    assert [m.alias for m in report.members] == ["W1", "W2", "W3"]
    assert (w1.end, w2.end, w3.end) == ("stopped", "crashed", "stopped")
    assert w3.stop_reason == "SIGTERM"
    assert [e.event for e in w1.history][:2] == ["started", "assigned"]
    assert w1.history[1].assignment == ALL
    assert w1.history[-1].event == "stopped" and w3.history[-1].event == "stopped"
    assert w2.history[-1].event == "crashed" and w2.history[-1].assignment == w2.final_assignment
    assert len(w2.final_assignment) == 2
    owned_at_end = [e.assignment for e in w1.history if e.event == "assigned"][-1]
    assert owned_at_end == ALL
    revokes = [e for e in w1.history if e.event == "revoked"]
    if strategy == "range":
        assert all(e.assignment == () for e in revokes), "eager revokes leave nothing"
    else:
        assert any(e.assignment for e in revokes), "cooperative revokes keep the rest"
    for member in report.members:
        assert [e.at for e in member.history] == sorted(e.at for e in member.history)
        assert {e.rebalance for e in member.history} <= {None, 1, 2, 3, 4, 5}


def test_markdown_has_the_table_histories_and_the_sequence_diagram(recorded):
    _, report = recorded
    text = render_markdown(report)
    assert REBALANCE_HEADER in text
    assert "```mermaid\nsequenceDiagram\n" in text
    for alias in ("W1", "W2", "W3"):
        assert f"### {alias}: balance-worker-test-{alias.lower()}" in text
    rows = [line for line in text.splitlines() if line.startswith("| 4 |")]
    assert len(rows) == 1 and "crash W2" in rows[0] and "3 → 2 (−W2)" in rows[0]


def test_mermaid_speaks_the_labs_language(recorded):
    strategy, report = recorded
    diagram = render_mermaid(report)
    lines = diagram.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert "    participant W2 as 💰 W2 balance-worker-test-w2" in lines
    assert "    participant Coord as 👑 Group Coordinator" in lines
    assert "    Coord->>W1: Assign [P0,P1,P2,P3,P4,P5]" in lines
    assert any(line.startswith("    Note over W2: 💥 CRASH W2") for line in lines)
    assert any(line.startswith("    Note over Coord: ⏳ no heartbeat from W2") for line in lines)
    assert "    W3->>Coord: LeaveGroup()" in lines
    if strategy == "range":
        assert "    Coord->>W1: Revoke ALL [P0,P1,P2,P3,P4,P5]" in lines
    else:
        assert "    Coord->>W1: Revoke [P0,P1,P2]" in lines or "    Coord->>W1: Revoke [P3,P4,P5]" in lines
        assert not any("Revoke ALL" in line for line in lines)
    # The crash is noted before the survivors hear of it.
    crash = next(i for i, line in enumerate(lines) if "💥 CRASH" in line)
    detected = next(i for i, line in enumerate(lines) if "no heartbeat" in line)
    assert crash < detected


def test_json_has_the_same_rebalances(recorded):
    _, report = recorded
    document = json.loads(render_json(report))
    assert document["version"] == 1
    assert [r["trigger"] for r in document["rebalances"]] == [r.trigger for r in report.rebalances]
    assert [r["number"] for r in document["rebalances"]] == [1, 2, 3, 4, 5]
    crash = document["rebalances"][3]
    assert crash["crashes"][0]["member"] == "balance-worker-test-w2"
    assert crash["crashes"][0]["detect_ms"] > 0
    assert crash["moved"] == list(report.rebalances[3].moved)
    assert [m["end"] for m in document["members"]] == ["stopped", "crashed", "stopped"]


def test_cli_prints_markdown_or_json_and_writes_a_file(capsys, tmp_path):
    assert cli.main(["report", str(SESSIONS / "range")]) == 0
    markdown = capsys.readouterr().out
    assert "sequenceDiagram" in markdown and REBALANCE_HEADER in markdown
    logs = [str(p) for p in sorted((SESSIONS / "cooperative-sticky").glob("*.jsonl"))]
    assert cli.main(["report", *logs, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rebalances"]) == 5
    target = tmp_path / "story.md"
    assert cli.main(["report", *logs, "--output", str(target)]) == 0
    assert "report written to" in capsys.readouterr().err
    assert target.read_text().startswith("# Rebalance report")


# -- hand-written edge cases --------------------------------------------------------------------


def ev(seconds: float, member: str, event: str, strategy: str = "range", **fields: Any) -> dict[str, Any]:
    moment = T0 + timedelta(seconds=seconds)
    return {"ts": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "event": event, "consumer_id": member, "group": "g", "topic": "t", "strategy": strategy, **fields}


def started(seconds: float, member: str, partitions: int = 6, **fields: Any) -> dict[str, Any]:
    return ev(seconds, member, "started", config={"partitions": partitions, "session_timeout_ms": 2000}, **fields)


def assigned(seconds: float, member: str, partitions: list[int], assignment: list[int] | None = None,
             **fields: Any) -> dict[str, Any]:
    return ev(seconds, member, "assigned", partitions=partitions,
              assignment=partitions if assignment is None else assignment, **fields)


def revoked(seconds: float, member: str, partitions: list[int], assignment: list[int] | None = None,
            **fields: Any) -> dict[str, Any]:
    return ev(seconds, member, "revoked", partitions=partitions, assignment=assignment or [], **fields)


def stats(seconds: float, member: str, assignment: list[int], lag: int = 0, rate: float = 100.0) -> dict[str, Any]:
    return ev(seconds, member, "stats", consumed=0, rate=rate, lag=lag, lag_by_partition={}, rejected=0, errors=0,
              assignment=assignment, status="Consuming")


def test_a_single_member_is_one_join_and_its_stop_is_no_rebalance():
    log = [started(0, "a"), assigned(1, "a", list(ALL), join_ms=1000.0), stats(5, "a", list(ALL)),
           revoked(8, "a", list(ALL)), ev(8, "a", "stopped", reason="quit")]
    report = build_report([log])
    assert [r.trigger for r in report.rebalances] == ["join"]
    join = report.rebalances[0]
    assert join.settle_ms == 1000 and join.moved == ALL and join.interrupted == ()
    assert join.pauses[0].role == "joined" and join.pauses[0].pause_ms == 1000
    assert report.members[0].end == "stopped"
    assert [e.event for e in report.members[0].history] == ["started", "assigned", "revoked", "stopped"]
    assert report.members[0].history[2].detail == "on leaving"
    assert "W1->>Coord: LeaveGroup()" in render_mermaid(report)
    assert "Revoke" not in render_mermaid(report), "a leaver's own revoke is not the coordinator's doing"


@pytest.mark.parametrize("logs", [[], [[]], [[{"event": "started"}], ["not an event", 42]]])
def test_logs_without_usable_events_are_refused(logs):
    with pytest.raises(ReportError, match="no usable events"):
        build_report(logs)


def test_logs_of_two_groups_are_refused():
    other = dict(started(0, "b"), group="other")
    with pytest.raises(ReportError, match="different groups"):
        build_report([[started(0, "a")], [other]])


def test_a_log_cut_mid_line_by_a_crash_still_reports(tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(e) for e in (started(0, "a"), assigned(1, "a", list(ALL)))]
    path.write_text("\n".join(lines) + '\n{"ts": "2026-11-25T12:00:05.000Z", "event": "sta')
    report = build_report([read_session_log(path)])
    assert [r.trigger for r in report.rebalances] == ["join"]
    assert report.members[0].end == "running"  # no other member went on without it


def test_cli_errors_are_one_line(capsys, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"ts": "2026-11-25T12:00:05.000Z", "ev')
    for argv, message in ([str(tmp_path / "missing.jsonl")], "missing.jsonl: no such file"), \
                         ([str(empty)], "empty.jsonl: empty session log"), \
                         ([str(cut)], "cut.jsonl: empty session log"), \
                         ([str(tmp_path / "nothing")], "no such file"):
        assert cli.main(["report", *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_member_that_never_gets_partitions_is_idle():
    logs = [
        [started(0, "a", 2), assigned(1, "a", [0, 1]),
         revoked(11, "a", [0, 1]), assigned(12, "a", [0]), revoked(21, "a", [0]), assigned(22, "a", [0])],
        [started(10, "b", 2), assigned(12, "b", [1]), revoked(21, "b", [1]), assigned(22, "b", [1])],
        [started(20, "c", 2), assigned(22, "c", [])],
    ]
    report = build_report(logs)
    assert report.partitions == 2
    assert [r.trigger for r in report.rebalances] == ["join", "join", "join"]
    third = report.rebalances[2]
    idle = next(p for p in third.pauses if p.member == "c")
    assert idle.role == "joined" and idle.idle and idle.pause_ms is None and idle.after == ()
    assert third.moved == () and third.interrupted == (0, 1)
    assert "W3 joined, idle" in render_markdown(report)
    assert "Coord->>W3: Assign [] (idle)" in render_mermaid(report)


def test_cooperative_rounds_close_together_are_one_rebalance():
    # The newcomer gets [] in round 1 (the group looks settled for a moment), P1 in round 2.
    s = "cooperative-sticky"
    logs = [
        [started(0, "a", 2, strategy=s), assigned(1, "a", [0, 1], strategy=s),
         revoked(12, "a", [1], [0], strategy=s)],
        [started(10, "b", 2, strategy=s), assigned(11, "b", [], strategy=s), assigned(13, "b", [1], strategy=s)],
    ]
    report = build_report(logs)
    assert [r.trigger for r in report.rebalances] == ["join", "join"]
    join = report.rebalances[1]
    assert join.settle_ms == 3000 and join.moved == (1,) and join.interrupted == (1,)
    assert join.partition_downtime_ms == {1: 1000.0}
    assert {p.member: p.pause_ms for p in join.pauses} == {"a": 0.0, "b": 3000.0}


def test_a_still_running_member_is_not_a_crash():
    logs = [[started(0, "a"), assigned(1, "a", list(ALL)), stats(5, "a", list(ALL))],
            [started(4, "b"), stats(6, "b", [])]]
    report = build_report(logs)
    assert [m.end for m in report.members] == ["running", "running"]
    assert [r.trigger for r in report.rebalances] == ["join", "join"]
    assert report.rebalances[1].settled_at is None
    assert "had not settled" in report.warnings[0]
    assert "not settled" in render_markdown(report)


def test_an_idle_member_that_goes_silent_crashed():
    logs = [[started(0, "a", 1), assigned(1, "a", [0])] + [stats(t, "a", [0]) for t in range(5, 40, 5)],
            [started(2, "b", 1), assigned(3, "b", []), stats(7, "b", [])]]
    report = build_report(logs)
    assert [m.end for m in report.members] == ["running", "crashed"]
    crash = report.rebalances[-1]
    assert crash.trigger == "crash" and crash.settle_ms == 0 and crash.moved == ()
    assert crash.crashes[0].detected_at is None  # nobody had to rebalance for it
    assert "not detected" in render_markdown(report)


def test_strategy_switch_and_lost_partitions():
    logs = [[
        started(0, "a"), assigned(1, "a", list(ALL)),
        ev(10, "a", "strategy_changed", strategy="cooperative-sticky", **{"from": "range", "to": "cooperative-sticky"}),
        revoked(10, "a", list(ALL), strategy="cooperative-sticky"),
        assigned(12, "a", list(ALL), strategy="cooperative-sticky"),
        ev(40, "a", "lost", strategy="cooperative-sticky", partitions=[0], assignment=[1, 2, 3, 4, 5]),
        assigned(41, "a", [0], list(ALL), strategy="cooperative-sticky"),
    ]]
    report = build_report(logs)
    assert [r.trigger for r in report.rebalances] == ["join", "strategy switch", "unknown"]
    switch, unknown = report.rebalances[1], report.rebalances[2]
    assert switch.strategy == "range → cooperative-sticky"
    assert switch.pauses[0].role == "rejoined" and switch.pauses[0].pause_ms == 2000
    assert switch.moved == () and switch.interrupted == ALL
    assert unknown.triggers[0].member is None and unknown.interrupted == (0,) and unknown.settle_ms == 1000
    diagram = render_mermaid(report)
    assert "Coord-xW1: Lost [P0]" in diagram
    assert "🔁 strategy range → cooperative-sticky" in diagram


def test_lag_peak_and_drain_from_stats():
    logs = [
        [started(0, "a", 2), assigned(1, "a", [0, 1]), stats(5, "a", [0, 1], lag=3),
         revoked(11, "a", [0, 1]), assigned(12, "a", [0]),
         stats(15, "a", [0], lag=400), stats(20, "a", [0], lag=150), stats(25, "a", [0], lag=20)],
        [started(10, "b", 2), assigned(12, "b", [1]), stats(16, "b", [1], lag=200), stats(21, "b", [1], lag=0)],
    ]
    report = build_report(logs, drain_threshold=50)
    first, join = report.rebalances
    assert (first.lag.before, first.lag.peak) == (0, 3)
    # Group lag = every live member's latest: 400, 600, 550, 150, 20.
    assert (join.lag.before, join.lag.peak, join.lag.level, join.lag.drained) == (3, 600, 50, True)
    assert join.lag.drained_ms == 15_000
    without_stats = build_report([[started(0, "a"), assigned(1, "a", list(ALL))]])
    assert without_stats.rebalances[0].lag is None
    assert "| n/a | n/a |" in render_markdown(without_stats)


def iso(seconds: float) -> str:
    return ev(seconds, "x", "x")["ts"]


def test_the_group_lag_over_time_is_charted_with_the_rebalances_numbered_and_the_alerts_listed():
    logs = [
        [started(0, "a", 2), assigned(1, "a", [0, 1]), stats(5, "a", [0, 1], lag=0),
         {**stats(10, "a", [0, 1], lag=800), "lag_seconds": 9.5},
         ev(11, "a", "lag_alert_raised", since=iso(7), threshold="50 messages", for_s=2.0, value=800, lag=800,
            lag_seconds=9.5, partitions=[0, 1]),
         revoked(12, "a", [0, 1], assignment=[0]), stats(15, "a", [0], lag=300),
         ev(17, "a", "lag_alert_cleared", raised_at=iso(11), duration_s=6.0, threshold="50 messages", for_s=2.0,
            value=40, lag=40, lag_seconds=0.5),
         stats(20, "a", [0], lag=10)],
        [started(11, "b", 2), assigned(12, "b", [1]), stats(16, "b", [1], lag=100),
         ev(19, "b", "lag_alert_raised", since=iso(16), threshold="50 messages", for_s=2.0, value=120, lag=120,
            lag_seconds=3.0, partitions=[1])],
    ]
    report = build_report(logs)
    assert [(at - T0).total_seconds() for at, _ in report.lag_series] == [5, 10, 15, 16, 20]
    assert [lag for _, lag in report.lag_series] == [0, 800, 300, 400, 110]
    # Only the stats lines that carry it (older logs have no lag_seconds).
    assert [(at - T0).total_seconds() for at, _ in report.lag_seconds_series] == [10]
    first, second = report.alerts
    assert (first.member, first.above_since, first.cleared_at, first.lasted_ms, first.value) == (
        "a", T0 + timedelta(seconds=7), T0 + timedelta(seconds=17), 6_000, 800.0)
    assert (second.member, second.cleared_at, second.lasted_ms) == ("b", None, None)

    text = render_markdown(report)
    assert "## Lag over time" in text and "### Lag alerts" in text and "xychart-beta" in text
    assert "not cleared in these logs" in text and "50 messages for 2.0 s" in text
    chart = text.split("## Lag over time", 1)[1].split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    axis = chart[-2]
    assert "1" in axis and "2" in axis  # the two rebalances, numbered where they start
    assert axis.index("1") < axis.index("2")
    assert json.loads(render_json(report))["alerts"][0]["member"] == "a"


def test_a_report_without_stats_or_alerts_says_so():
    report = build_report([[started(0, "a"), assigned(1, "a", list(ALL))]])
    text = render_markdown(report)
    assert "No `stats` lines in these logs: no lag to draw." in text
    assert "No `lag_alert_raised` line in these logs." in text


def test_a_log_holding_two_runs_gives_two_members():
    log = [started(0, "a"), assigned(1, "a", list(ALL)), revoked(5, "a", list(ALL)),
           ev(5, "a", "stopped", reason="quit"), started(10, "a"), assigned(11, "a", list(ALL))]
    report = build_report([log])
    assert [m.name for m in report.members] == ["a", "a#2"]
    assert [r.trigger for r in report.rebalances] == ["join", "join"]


def test_a_member_killed_while_others_are_still_being_assigned_starts_its_own_rebalance():
    # b got P1 at 12.0 and died; a got P0 at 12.5, completing the generation b was part of.
    logs = [
        [started(0, "a", 2), assigned(1, "a", [0, 1]), stats(5, "a", [0, 1]),
         revoked(11, "a", [0, 1]), assigned(12.5, "a", [0]),
         revoked(15, "a", [0]), assigned(16, "a", [0, 1]), stats(20, "a", [0, 1]), stats(25, "a", [0, 1])],
        [started(10, "b", 2), assigned(12, "b", [1])],
    ]
    report = build_report(logs)
    assert [r.trigger for r in report.rebalances] == ["join", "join", "crash"]
    join, crash = report.rebalances[1:]
    assert join.settle_ms == 2500 and join.members_after == ("a", "b")
    detection = crash.crashes[0]
    assert detection.last_seen == T0 + timedelta(seconds=12)
    assert crash.started_at == detection.crashed_at == T0 + timedelta(seconds=12.5)
    assert detection.detect_ms == 2500 and crash.settle_ms == 3500
    assert report.members[1].history[-1].event == "crashed"
    assert report.members[1].history[-1].at == detection.last_seen


# -- text from the logs on a terminal -------------------------------------------------------------

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x00\u202e"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\u202e"
RAW_CONTROLS = ("\x1b", "\x07", "\x00", "\u202e", "\x9b", "\u2028")


def hostile_report() -> Report:
    """Consumer ids, the group, an error reason and a stop reason as any member could write them."""
    member = f"w{HOSTILE}"
    events = [started(0, member), assigned(1, member, list(ALL)),
              ev(2, member, "error", code="INCONSISTENT_GROUP_PROTOCOL", reason=f"broker says\x9b{HOSTILE}"),
              revoked(8, member, list(ALL)), ev(8, member, "stopped", reason=f"quit\u2028{HOSTILE}")]
    return build_report([[{**event, "group": f"g{HOSTILE}"} for event in events]])


def test_markdown_and_mermaid_show_control_characters_as_escapes():
    report = hostile_report()
    for rendering in (render_markdown(report), render_mermaid(report)):
        for char in RAW_CONTROLS:
            assert char not in rendering, repr(char)
    markdown = render_markdown(report)
    assert f"group `g{SHOWN}`" in markdown
    assert f"### W1: w{SHOWN}" in markdown
    assert f"broker says\\x9b{SHOWN}" in markdown
    assert f"stopped (quit\\u2028{SHOWN})" in markdown
    assert f"participant W1 as 💰 W1 w{SHOWN.replace(';', ',')}" in render_mermaid(report)


def test_json_report_escapes_controls_and_keeps_the_text_exactly():
    report = hostile_report()
    text = render_json(report)
    for char in RAW_CONTROLS:
        assert char not in text, repr(char)
    document = json.loads(text)
    assert document["group"] == f"g{HOSTILE}"
    assert document["members"][0]["name"] == f"w{HOSTILE}"
    assert document["members"][0]["stop_reason"] == f"quit\u2028{HOSTILE}"
