"""lab chaos, the pure part: the seeded schedule, ownership over time, per-fault measures, convergence, the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from balance_tui.core.assignment import iso_ms
from balance_tui.core.chaos import (
    BURST_WINDOW_S,
    FAULT_KINDS,
    SWITCH_STRATEGIES,
    ChaosOutcome,
    Fault,
    FaultRecord,
    MemberView,
    VerifyVerdict,
    convergence_problem,
    find_silences,
    measure_faults,
    parse_fault_kinds,
    plan_faults,
    quiet_seconds,
    render_chaos_table,
    replay_ownership,
    verdict_from_verify_json,
)

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(seconds: float, member: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"ts": iso_ms(at(seconds)), "event": kind, "consumer_id": member, "group": "g", "topic": "t",
            "strategy": fields.pop("strategy", "cooperative-sticky"), **fields}


def assigned(seconds: float, member: str, assignment: list[int], new: list[int] | None = None) -> dict[str, Any]:
    return event(seconds, member, "assigned", partitions=new if new is not None else assignment, assignment=assignment)


# -- the schedule ------------------------------------------------------------------------------------


def plan(seed: int = 7, duration: float = 60, kinds: tuple[str, ...] = FAULT_KINDS, members: int = 3,
         session_ms: int = 2000) -> Any:
    return plan_faults(seed, duration, kinds, members, session_ms, "cooperative-sticky")


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert plan(7) == plan(7)
    assert plan(7).faults != plan(8).faults


@pytest.mark.parametrize("seed", range(20))
def test_a_schedule_keeps_its_promises(seed: int) -> None:
    schedule = plan(seed)
    faults = schedule.faults
    assert faults and all(0 < f.at_s <= 60 for f in faults)
    assert [f.number for f in faults] == list(range(1, len(faults) + 1))
    assert all(b.at_s - a.at_s >= 2.0 for a, b in pairwise(faults))
    # A minute at a 2 s session timeout has room for every kind; each comes at least once.
    assert {f.kind for f in faults} == set(FAULT_KINDS) and schedule.left_out == ()
    current = "cooperative-sticky"
    for fault in faults:
        assert all(1 <= slot <= 3 for slot in fault.slots)
        if fault.kind == "switch":
            assert fault.strategies[0] != current and fault.strategies[0] in SWITCH_STRATEGIES
            current = fault.strategies[0]
        elif fault.kind == "burst":
            assert len(set(fault.slots)) == 3 and len(fault.strategies) == 3
            assert fault.offsets_s[0] == 0 and max(fault.offsets_s) <= BURST_WINDOW_S
            assert any(s != current for s in fault.strategies)
            current = fault.strategies[-1]
        elif fault.kind == "stop":
            assert fault.hold_s is not None and fault.hold_s > 2.0  # past the session timeout
        elif fault.kind == "kill":
            assert fault.hold_s is not None and fault.hold_s >= 4.0  # replaced after two session timeouts
        elif fault.kind == "broker":
            assert fault.slots == () and fault.hold_s is not None and 1.0 <= fault.hold_s <= 4.0


@pytest.mark.parametrize("seed", range(20))
def test_a_slot_is_left_alone_while_it_is_dead_or_frozen_and_a_broker_restart_waits_for_quiet(seed: int) -> None:
    faults = plan(seed, duration=120).faults
    busy: dict[int, float] = {}
    for fault in faults:
        if fault.kind == "broker":
            assert all(until <= fault.at_s for until in busy.values()), fault
        for slot in fault.slots:
            assert busy.get(slot, 0.0) <= fault.at_s, fault
        if fault.kind in ("kill", "stop"):
            busy[fault.slots[0]] = fault.at_s + (fault.hold_s or 0)
        if fault.kind in ("kill", "stop", "restart"):
            others_down = sum(1 for slot, until in busy.items() if slot != fault.slots[0] and until > fault.at_s)
            assert others_down <= 1  # three members: one at least keeps consuming


def test_only_the_kinds_asked_for_and_what_a_short_run_has_no_room_for() -> None:
    only = plan(3, kinds=("kill", "switch"))
    assert {f.kind for f in only.faults} == {"kill", "switch"}
    short = plan(3, duration=3)
    assert len(short.faults) <= 2 and set(short.left_out) == set(FAULT_KINDS) - {f.kind for f in short.faults}


def test_gaps_follow_the_session_timeout() -> None:
    faults = plan(5, duration=120, session_ms=10_000).faults
    assert all(b.at_s - a.at_s >= 10.0 for a, b in pairwise(faults))
    stop = next(f for f in plan(5, duration=300, session_ms=10_000).faults if f.kind == "stop")
    assert stop.hold_s is not None and stop.hold_s > 15.0


def test_fault_kinds_are_parsed_in_their_own_order() -> None:
    assert parse_fault_kinds("switch, kill") == ("kill", "switch")
    with pytest.raises(ValueError, match="unknown fault kind nap"):
        parse_fault_kinds("kill,nap")
    with pytest.raises(ValueError, match="no fault kind"):
        parse_fault_kinds(" , ")


# -- ownership and measures ----------------------------------------------------------------------------


def three_members() -> dict[str, list[dict[str, Any]]]:
    return {
        "a": [event(0, "a", "started"), assigned(1, "a", [0, 1])],
        "b": [event(0, "b", "started"), assigned(1, "b", [2, 3])],
        "c": [event(0, "c", "started"), assigned(1, "c", [4, 5])],
    }


def test_a_killed_member_owns_nothing_from_the_kill_on() -> None:
    logs = three_members()
    logs["a"].append(assigned(8, "a", [0, 1, 2], new=[2]))
    logs["c"].append(assigned(8.5, "c", [3, 4, 5], new=[3]))
    states = replay_ownership(logs, 6, killed={"b": at(5)})
    owned = [(s.at, s.all_owned) for s in states]
    assert (at(1), True) in owned and (at(5), False) in owned and owned[-1] == (at(8.5), True)
    assert "b" not in states[-1].owners


def test_a_frozen_member_consumes_nothing_while_frozen() -> None:
    logs = three_members()
    logs["a"].append(assigned(7, "a", [0, 1, 4], new=[4]))
    logs["b"].append(assigned(7, "b", [2, 3, 5], new=[5]))
    states = replay_ownership(logs, 6, frozen={"c": [(at(3), at(9))]})
    assert [s.all_owned for s in states if s.at == at(3)] == [False]
    assert states[-1].at == at(9) and not states[-1].all_owned  # back, and still claiming [P4,P5]: two owners
    logs["c"].append(event(9.2, "c", "lost", partitions=[4, 5], assignment=[]))
    assert replay_ownership(logs, 6, frozen={"c": [(at(3), at(9))]})[-1].all_owned


def test_a_kill_is_measured_from_the_kill_with_the_survivors_first_reaction() -> None:
    logs = three_members()
    logs["a"].append(assigned(8, "a", [0, 1, 2], new=[2]))
    logs["c"].append(assigned(8.5, "c", [3, 4, 5], new=[3]))
    logs["d"] = [event(12, "d", "started"), assigned(14, "d", [], new=[])]
    record = FaultRecord(Fault(1, 5.0, "kill", (2,), hold_s=7), at=at(5), targets=("b",), until=at(12),
                         replacement="d")
    (measure,) = measure_faults([record], logs, 6, started=at(0), end=at(20),
                                alias={"a": "W1", "b": "W2", "c": "W3", "d": "W4"})
    assert measure.at_s == pytest.approx(5.0) and measure.detect_ms == pytest.approx(3000)
    assert measure.owned_again_ms == pytest.approx(3500) and measure.interrupted
    assert measure.target == "W2 → W4 at +12.0 s"
    assert "its [P2,P3] went to W1 [P2], W3 [P3]" in measure.notes


def test_a_stop_past_the_session_timeout_says_who_took_over_and_what_the_member_said_on_waking() -> None:
    logs = three_members()
    logs["a"].append(assigned(7, "a", [0, 1, 4], new=[4]))
    logs["b"].append(assigned(7.2, "b", [2, 3, 5], new=[5]))
    logs["c"].append(event(9.3, "c", "lost", partitions=[4, 5], assignment=[]))
    record = FaultRecord(Fault(1, 3.0, "stop", (3,), hold_s=6), at=at(3), targets=("c",), until=at(9))
    (measure,) = measure_faults([record], logs, 6, started=at(0), end=at(20), alias={"a": "W1", "b": "W2", "c": "W3"})
    assert measure.detect_ms == pytest.approx(4000) and measure.owned_again_ms == pytest.approx(4200)
    assert measure.what == "SIGSTOP 6.0 s, SIGCONT"
    assert "evicted while stopped: its [P4,P5] went to W1 [P4], W2 [P5] 4.2 s after the SIGSTOP" in measure.notes
    assert "after SIGCONT its first rebalance line: lost [P4,P5] after 300 ms" in measure.notes


def test_a_fault_that_leaves_every_partition_owned_says_so_and_a_skipped_one_says_why() -> None:
    logs = three_members()
    broker = FaultRecord(Fault(1, 4.0, "broker", hold_s=2), at=at(4), until=at(6))
    skipped = FaultRecord(Fault(2, 9.0, "switch", (1,), ("range",)), skipped="W1 is stopped")
    first, second = measure_faults([broker, skipped], logs, 6, started=at(0), end=at(20), alias={})
    assert first.owned_again_ms == 0 and not first.interrupted and first.detect_ms is None
    assert first.notes[0] == "every partition stayed owned"
    assert second.at_s is None and second.notes == ["skipped: W1 is stopped"]
    table = render_chaos_table(ChaosOutcome(1, 20, [first, second], []))
    assert "| 1 | +4.0 s | broker restart (away 2.0 s) | the broker | no reaction | never unowned |" in table
    assert "| 2 | (+9.0 s) | group switch → range |" in table


def test_a_switch_names_who_switched_and_where_the_group_ended() -> None:
    logs = three_members()
    for member, moment in (("a", 4.1), ("b", 4.3), ("c", 4.4)):
        logs[member] += [event(moment, member, "strategy_changed", **{"from": "cooperative-sticky", "to": "range"}),
                         event(moment, member, "revoked", partitions=[], assignment=[])]
    logs["a"].append(assigned(6, "a", [0, 1], ) | {"strategy": "range"})
    logs["b"].append(assigned(6, "b", [2, 3]) | {"strategy": "range"})
    logs["c"].append(assigned(6.5, "c", [4, 5]) | {"strategy": "range"})
    record = FaultRecord(Fault(1, 4.0, "switch", (1,), ("range",)), at=at(4), targets=("a",))
    (measure,) = measure_faults([record], logs, 6, started=at(0), end=at(20), alias={"a": "W1", "b": "W2", "c": "W3"})
    assert measure.detect_ms == pytest.approx(100) and measure.owned_again_ms == pytest.approx(2500)
    assert "switched: W1, W2, W3" in measure.notes and "then on W1 range, W2 range, W3 range" in measure.notes


def test_a_member_that_logs_nothing_while_running_is_a_silence_unless_the_lab_froze_it() -> None:
    logs = {"a": [event(0, "a", "started"), event(5, "a", "stats"), event(30, "a", "stats")],
            "b": [event(0, "b", "started"), event(5, "b", "stats")],
            "c": [event(0, "c", "started"), event(5, "c", "stats"), event(25, "c", "stats")]}
    silences = find_silences(logs, killed={"b": at(22)}, frozen={"c": [(at(6), at(24))]}, end=at(31))
    assert [(s.member, s.seconds, s.to_the_end) for s in silences] == [("a", 25.0, False), ("b", 17.0, True)]


# -- convergence and the verdict -----------------------------------------------------------------------


def view(name: str, assignment: tuple[int, ...] | None, **fields: Any) -> MemberView:
    values: dict[str, Any] = {"pending": False, "refused": False, "last_change_at": at(0), "last_stats_at": at(9),
                              "status": "Consuming", **fields}
    return MemberView(name, assignment, **values)


def test_converged_needs_single_owners_nobody_joining_a_quiet_spell_and_fresh_stats() -> None:
    good = [view("W1", (0, 1)), view("W2", (2, 3)), view("W3", (4, 5))]
    assert convergence_problem(good, 6, at(10), 6.0) is None
    assert convergence_problem([], 6, at(10), 6.0) == "no live member"
    assert convergence_problem([*good[:2], view("W3", (4, 5), refused=True)], 6, at(10), 6.0) == \
        "W3 is refused by the group (INCONSISTENT_GROUP_PROTOCOL)"
    assert convergence_problem([*good[:2], view("W3", (), pending=True)], 6, at(10), 6.0) == "W3 is joining"
    assert convergence_problem([view("W1", (0, 1, 4)), *good[1:]], 6, at(10), 6.0) == "P4 is owned by W1 and W3"
    assert convergence_problem(good[:2], 6, at(10), 6.0) == "P4 is owned by nobody"
    recent = [*good[:2], view("W3", (4, 5), last_change_at=at(7))]
    assert convergence_problem(recent, 6, at(10), 6.0).startswith("last rebalance line 3.0 s ago")
    stale = [*good[:2], view("W3", (4, 5), last_stats_at=None)]
    assert convergence_problem(stale, 6, at(10), 6.0) == "W3 logged no `stats` line since the last rebalance line"
    unreachable = [*good[:2], view("W3", (4, 5), status="Broker unreachable")]
    assert convergence_problem(unreachable, 6, at(10), 6.0) == "W3 says Broker unreachable"
    # Right after the lab acted (a command just written), the group has not even heard of it.
    assert convergence_problem(good, 6, at(10), 6.0, acted_at=at(9.9)).startswith("the last fault's end 0.1 s ago")
    heard = [view(m.name, m.assignment, last_stats_at=at(15)) for m in good]
    assert convergence_problem(heard, 6, at(16), 6.0, acted_at=at(9.9)) is None
    assert convergence_problem(good, 6, at(17), 6.0, acted_at=at(10)) == \
        "W1 logged no `stats` line since the last rebalance line"
    # A hung member's last line says all was well: it must also be recent.
    assert convergence_problem(good, 6, at(30), 6.0) == "W1's last `stats` line is 21.0 s old (it logs one every 5 s)"


def test_the_quiet_spell_outlasts_a_stats_interval_and_a_tansu_join_round() -> None:
    assert quiet_seconds(2000) == 6.0 and quiet_seconds(10_000) == 6.0 and quiet_seconds(30_000) == 16.0


VERIFY_OK = {"ok": True, "balancesChecked": 412, "mismatches": [], "appliedTwice": {"transactions": 0},
             "missed": {"transactions": 0}, "missing": [], "unexpected": [], "notYetApplied": 0, "problems": []}


def test_a_clean_verdict_and_a_dirty_one() -> None:
    clean = verdict_from_verify_json("changelog", VERIFY_OK)
    assert clean == VerifyVerdict("changelog", True, 412, 0, 0, 0, ())
    dirty = verdict_from_verify_json("exports", {**VERIFY_OK, "ok": False, "mismatches": [{}, {}],
                                                 "appliedTwice": {"transactions": 3}, "missing": [{}],
                                                 "problems": ["changelog ahead of the source"]})
    assert (dirty.mismatches, dirty.applied_twice, dirty.missed) == (2, 3, 0)
    assert dirty.other == ("missing 1", "changelog ahead of the source")
    outcome = ChaosOutcome(4, 60, [], [clean, dirty], converged_after_s=3.2, distribution="2+2+2: W1 [P0,P1]")
    table = render_chaos_table(outcome)
    assert "| changelog | OK | 412 | 0 | 0 | 0 | – |" in table
    assert "| exports | FAILED | 412 | 2 | 3 | 0 | missing 1; changelog ahead of the source |" in table
    assert "- Converged 3.2 s after the last fault: 2+2+2: W1 [P0,P1]" in table
    assert outcome.failures == ["exports: 2 mismatches, 3 applied twice, 0 missed, missing 1, "
                                "changelog ahead of the source"]
    assert table.endswith("changelog ahead of the source.")
    assert render_chaos_table(ChaosOutcome(4, 60, [], [clean], converged_after_s=1.0)).endswith(
        "**Verdict: clean**: every balance checked, none wrong, none applied twice, none missed.")


def test_not_converged_an_incident_or_no_verify_is_never_clean() -> None:
    clean = verdict_from_verify_json("changelog", VERIFY_OK)
    assert ChaosOutcome(1, 60, [], [clean], convergence_problem="W2 is joining").failures == [
        "the group did not converge (W2 is joining)"]
    incident = ChaosOutcome(1, 60, [], [clean], incidents=[(3.0, "W2", "exited by itself (code -6)")],
                            converged_after_s=1.0)
    assert incident.failures == ["W2 exited by itself (code -6)"]
    assert "- **Incident** at +3.0 s: W2 exited by itself (code -6)" in render_chaos_table(incident)
    assert ChaosOutcome(1, 60, [], [], converged_after_s=1.0).failures == ["no verify ran"]
    cannot = VerifyVerdict("changelog", False, error="changelog topic 'x' does not exist")
    assert ChaosOutcome(1, 60, [], [cannot], converged_after_s=1.0).failures == [
        "changelog: could not verify (changelog topic 'x' does not exist)"]


# -- the command line ------------------------------------------------------------------------------


def lab_options(*argv: str) -> Any:
    from balance_tui import cli
    from balance_tui.commands.lab import options_from_args

    args = cli.build_parser().parse_args(["lab", *argv])
    return options_from_args(args, cli.settings_from_args(args))


def test_chaos_options_default_to_every_fault_and_a_random_seed(tmp_path: Any) -> None:
    options = lab_options("chaos", "--output", str(tmp_path / "a"))
    assert options.faults == FAULT_KINDS and options.duration_s == 120 and options.members == 3
    assert 0 <= options.seed < 1_000_000 and options.profile == "peak"
    given = lab_options("chaos", "--seed", "42", "--duration", "30", "--members", "4", "--faults", "switch,kill",
                        "--output", str(tmp_path / "b"))
    assert (given.seed, given.duration_s, given.members, given.faults) == (42, 30.0, 4, ("kill", "switch"))
    # On a given cluster there is no broker of the lab's own to restart.
    cluster = lab_options("chaos", "--bootstrap-servers", "kafka:9092", "--output", str(tmp_path / "c"))
    assert "broker" not in cluster.faults and cluster.cluster is not None


@pytest.mark.parametrize(("argv", "words"), [
    (["chaos", "--faults", "kill,nap"], "unknown fault kind nap"),
    (["chaos", "--members", "2"], "at least 3 members"),
    (["chaos", "--duration", "0"], "between 1 and 86400"),
    (["chaos", "--seed", "-1"], "0 or more"),
    (["scale", "--seed", "3"], "--seed: for `lab chaos` only"),
    (["chaos", "--bootstrap-servers", "127.0.0.1:1", "--faults", "broker"], "--faults broker restarts the broker"),
])
def test_a_bad_chaos_flag_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Any, argv: list[str],
                                      words: str) -> None:
    from balance_tui import cli

    try:
        code = cli.main(["lab", *argv, "--output", str(tmp_path / "out")])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err, err
