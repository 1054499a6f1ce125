"""The lab's tables: steps matched with the report's rebalances, on the recorded fixture logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from balance_tui.core.report import Report, build_report, parse_ts
from balance_tui.lab.measure import (
    LabStep,
    balanced_sizes,
    distribution_text,
    interruption_cell,
    measure_step,
    rebalancing_cell,
    render_crash_table,
    render_scale_table,
    render_strategies_table,
    size_summary,
)
from balance_tui.session_log import read_session_log

SESSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "sessions"
W = "balance-worker-test-w{}".format


def fixture_report(strategy: str) -> tuple[Report, dict[str, list[dict]]]:
    logs = {path.stem: read_session_log(path) for path in sorted((SESSIONS / strategy).glob("*.jsonl"))}
    return build_report(list(logs.values())), logs


def started_at(log: list[dict]) -> object:
    return parse_ts(log[0]["ts"])


@pytest.mark.parametrize(("partitions", "members", "sizes"), [
    (6, 1, (6,)), (6, 4, (2, 2, 1, 1)), (6, 8, (1, 1, 1, 1, 1, 1, 0, 0)), (6, 0, ()),
])
def test_balanced_sizes(partitions: int, members: int, sizes: tuple[int, ...]) -> None:
    assert balanced_sizes(partitions, members) == sizes


def test_size_summary_names_idle_members() -> None:
    assert size_summary([2, 2, 2]) == "2+2+2"
    assert size_summary([1, 1, 1, 1, 1, 1, 0, 0]) == "1×6 + 2 idle"
    assert distribution_text({"a": (0, 1), "b": ()}, {"a": "W1", "b": "W2"}) == "2+0: W1 [P0,P1], W2 idle"


def test_eager_join_stops_every_member() -> None:
    report, logs = fixture_report("range")
    step = LabStep("join", "join", (W(3),), started_at(logs["w3"]), (2, 2, 2))
    measure = measure_step(report, step)
    assert measure.rebalance == 3
    assert measure.all_owned_ms == report.rebalances[2].settle_ms
    assert set(measure.stopped) == {"W1", "W2"} and measure.kept == []
    assert measure.interrupted == (0, 1, 2, 3, 4, 5)
    assert interruption_cell(measure).startswith("all 2 members stopped")


def test_crash_is_timed_from_the_kill_not_from_the_last_log_line() -> None:
    report, logs = fixture_report("range")
    killed_at = parse_ts(logs["w2"][-1]["ts"]) + timedelta(milliseconds=500)
    measure = measure_step(report, LabStep("crash", "crash", (W(2),), killed_at, (3, 3)))
    rebalance = report.rebalances[3]
    assert rebalance.settled_at is not None
    assert measure.all_owned_ms == pytest.approx((rebalance.settled_at - killed_at).total_seconds() * 1000)
    assert measure.detect_ms == pytest.approx((rebalance.crashes[0].detected_at - killed_at).total_seconds() * 1000)
    assert measure.all_owned_ms < (rebalance.settle_ms or 0)


def test_cooperative_join_keeps_members_consuming() -> None:
    report, logs = fixture_report("cooperative-sticky")
    measure = measure_step(report, LabStep("join", "join", (W(3),), started_at(logs["w3"]), (2, 2, 2)))
    assert measure.stopped == {} and measure.kept == ["W1", "W2"]
    assert len(measure.interrupted) < 6
    assert rebalancing_cell([measure]).startswith("incremental")


def test_a_step_the_report_cannot_place_falls_back_on_the_lab_s_observation() -> None:
    report, logs = fixture_report("range")
    at = started_at(logs["w1"])
    step = LabStep("leave", "leave", ("nobody",), at, (6,), reached_at=at + timedelta(seconds=2))
    measure = measure_step(report, step)
    assert measure.rebalance is None and measure.all_owned_ms == pytest.approx(2000)


def test_strategies_table_puts_each_claim_above_the_measured_rows() -> None:
    measures = {}
    for strategy in ("range", "cooperative-sticky"):
        report, logs = fixture_report(strategy)
        killed_at = parse_ts(logs["w2"][-1]["ts"])
        measures[strategy] = {
            "join": measure_step(report, LabStep("join", "join", (W(3),), started_at(logs["w3"]), (2, 2, 2),
                                                 assignment={W(1): (0, 1), W(2): (2, 3), W(3): (4, 5)})),
            "crash": measure_step(report, LabStep("crash", "crash", (W(2),), killed_at, (3, 3))),
        }
    table = render_strategies_table(measures)
    lines = table.splitlines()
    assert "Range" in lines[0] and "CooperativeSticky" in lines[0] and "RoundRobin" not in lines[0]
    claim = lines.index("| **Durée rebalance** | lab | 3-5 sec | 1-2 sec |")
    assert lines[claim + 1].startswith("|   | measured, join 2 → 3 | ")
    assert "2+2+2: W1 [P0,P1], W2 [P2,P3], W3 [P4,P5]" in table
    assert "stop-the-world" in table and "incremental" in table
    assert "| measured, leave 3 → 2 | – | – |" in table  # not run: shown as missing, not invented


def test_scale_and_crash_tables_show_the_lab_s_values() -> None:
    report, logs = fixture_report("range")
    step = LabStep("up-1", "start", (W(1),), started_at(logs["w1"]), (6,), label="+1",
                   assignment={W(1): (0, 1, 2, 3, 4, 5)}, group_rate=200.0, group_lag=20)
    scale = render_scale_table([measure_step(report, step)], produce_rate=200)
    assert "Jour normal (6, 100 tx/sec, ~500ms)" in scale and "| 200 | 20 (≈ 0.1 s of traffic) |" in scale
    crash = render_crash_table(None, 300)
    assert "did not complete" in crash
