"""`balance-tui lab` end to end: a broker, a traffic generator and real member processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from balance_tui.kafka.brokers.distribution import KafkaUnavailable, locate_kafka
from tests.conftest import ENGINES

# Subprocess deadlines below are what bounds each run; pytest-timeout only backs them up.
pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
DURATION = re.compile(r"\d+(\.\d+)? (s|ms)")


def run_lab(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "balance_tui", "lab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)


def table_row(text: str, label: str) -> list[str]:
    """The cells after the first two of the table row whose second cell is `label`."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[1] == label:
            return cells[2:]
    raise AssertionError(f"no row {label!r} in:\n{text}")


def test_crash_on_a_given_cluster_keeps_logs_and_reports_the_crash(broker: object, tmp_path: Path) -> None:
    output = tmp_path / "crash"
    bootstrap = broker.bootstrap  # type: ignore[attr-defined]
    result = run_lab("crash", "--fast", "--hold", "1", "--bootstrap-servers", bootstrap,
                     "--output", str(output), timeout=180)
    assert result.returncode == 0, result.stderr
    logs = sorted(output.glob("*.jsonl"))
    assert len(logs) >= 3
    # The killed member left no `stopped` line; the others left cleanly at the end.
    ends = {log.stem: json.loads(log.read_text().splitlines()[-1])["event"] for log in logs}
    assert ends["w2"] != "stopped" and ends["w1"] == ends["w3"] == "stopped"
    report = (output / "report.md").read_text()
    assert re.search(r"\| crash W2 \| cooperative-sticky \| 3 → 2 \(−W2\) \|", report), report
    assert "```mermaid\nsequenceDiagram" in report and "💥 CRASH W2" in report
    detection = next(line for line in result.stdout.splitlines() if line.startswith("| Detection"))
    assert DURATION.search(detection.split("|")[3]), result.stdout
    lab = json.loads((output / "lab.json").read_text())
    assert lab["error"] is None and lab["broker"].startswith("cluster (")
    assert lab["groups"][0]["measured"]["crash"]["members_after"] == 2


@pytest.fixture(params=[engine for engine in ENGINES if engine != "external"] or ["tansu"])
def lab_engine(request: pytest.FixtureRequest) -> str:
    if request.param == "kafka":
        try:
            locate_kafka(resolve=False)
        except KafkaUnavailable as error:
            pytest.skip(f"Apache Kafka tests skipped: {error}")
    return str(request.param)


def test_strategies_prints_the_lab_table_with_measured_values(tmp_path: Path, lab_engine: str) -> None:
    output = tmp_path / "strategies"
    # Its own broker; --hold 0 goes from step to step without waiting for `stats` lines.
    result = run_lab("strategies", "--fast", "--hold", "0", "--engine", lab_engine, "--output", str(output),
                     timeout=220)
    assert result.returncode == 0, result.stderr
    table = result.stdout
    header = next(line for line in table.splitlines() if line.startswith("| Critère"))
    columns = ["Range", "RoundRobin", "CooperativeSticky"]
    if lab_engine == "kafka":  # KIP-848's consumer protocol where the broker serves it
        columns.append("KIP-848 consumer protocol")
    assert [c.strip() for c in header.strip("|").split("|")][2:] == columns
    assert table_row(table, "lab")[:3] == ["Partitions consécutives", "Circulaire équitable", "Équitable + stable"]
    for cell in table_row(table, "measured, 3rd joins"):
        assert cell.startswith("2+2+2: W1 [P"), cell
    for label in ("measured, join 2 → 3", "measured, leave 3 → 2", "measured, kill -9, 2 → 1"):
        for cell in table_row(table, label):
            assert DURATION.match(cell), (label, cell)
    range_, roundrobin, cooperative, *kip848 = table_row(table, "measured")
    assert range_.startswith("stop-the-world") and roundrobin.startswith("stop-the-world"), table
    # Cooperative rounds on Tansu sometimes empty one member for a moment ("mixed"), but never
    # stop every member at every rebalance as the eager strategies do.
    assert cooperative.startswith(("incremental", "mixed")), table
    assert all(cell.startswith("incremental") for cell in kip848), table
    # The lab's distributions: range gives consecutive partitions, roundrobin deals them out.
    two = table_row(table, "measured, 2 members")
    assert sorted(re.findall(r"\[P[\d,P]+\]", two[0])) == ["[P0,P1,P2]", "[P3,P4,P5]"]
    assert sorted(re.findall(r"\[P[\d,P]+\]", two[1])) == ["[P0,P2,P4]", "[P1,P3,P5]"]
    for strategy in ("range", "roundrobin", "cooperative-sticky") + (("consumer",) if lab_engine == "kafka" else ()):
        assert len(list((output / strategy).glob("*.jsonl"))) == 3
        assert "sequenceDiagram" in (output / strategy / "report.md").read_text()
    assert "Tableau Comparatif" in (output / "summary.md").read_text()


def test_static_shows_a_restart_without_rebalance_beside_one_with(kafka_broker: object, tmp_path: Path) -> None:
    """Static membership as Apache Kafka does it (Tansu does not: docs/broker.md)."""
    output = tmp_path / "static"
    result = run_lab("static", "--hold", "0", "--strategy", "range", "--session-timeout-ms", "10000",
                     "--heartbeat-interval-ms", "1000", "--engine", "kafka", "--output", str(output), timeout=220)
    assert result.returncode == 0, result.stderr
    table = result.stdout
    header = next(line for line in table.splitlines() if line.startswith("| What"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == ["static (group.instance.id)",
                                                                    "dynamic (no instance id)"]
    static, dynamic = table_row(table, "(KIP-345) none: a static member restarted within its session timeout is "
                                       "handed its partitions back without a rebalance")
    assert static == "none" and dynamic != "none", table  # range: the dynamic join revokes W1 too
    static_got, _dynamic_got = table_row(table, "its own partitions")
    assert "(the same as" in static_got, table
    w3_log = output / "static" / "w3.jsonl"
    assert w3_log.exists() and '"static_rejoin"' in w3_log.read_text()


#: The kinds of fault the suite's chaos run uses, per broker: every kind on Apache Kafka; on Tansu all
#: but `restart`: once, after a kill and a clean leave close together, a Tansu group never assigned
#: anyone again (new members joining for minutes, no error), which looks like Tansu's own sync phase
#: (docs/lab.md, "What the chaos runs found", 5).
SUITE_FAULTS = {"kafka": ("kill", "stop", "restart", "switch", "burst", "broker"),
                "tansu": ("kill", "stop", "switch", "burst", "broker")}


@pytest.mark.timeout(420)
def test_chaos_ends_converged_with_every_balance_right(tmp_path: Path, lab_engine: str) -> None:
    output = tmp_path / "chaos"
    faults = SUITE_FAULTS[lab_engine]
    result = run_lab("chaos", "--fast", "--duration", "30", "--seed", "3", "--faults", ",".join(faults),
                     "--engine", lab_engine, "--output", str(output), timeout=400)
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout
    table = result.stdout
    chaos = json.loads((output / "lab.json").read_text())["chaos"]
    assert chaos["seed"] == 3 and chaos["failures"] == [] and chaos["converged_at"] is not None
    # Every planned fault has its row, in order, and every kind was carried out at least once.
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [int(row.split("|")[1]) for row in rows] == [f["number"] for f in chaos["schedule"]]
    done = [record for record in chaos["records"] if record["at"] is not None]
    assert {record["fault"]["kind"] for record in done} == set(faults)
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if cells[1].startswith("("):
            continue  # skipped, its note says why
        assert DURATION.fullmatch(cells[4]) or cells[4] == "no reaction", row
        assert DURATION.fullmatch(cells[5]) or cells[5] == "never unowned", row
    # The verdict: both checks ran, checked balances, and found nothing wrong.
    for check in ("changelog against the topic", "union of the final exports ("):
        line = next(line for line in table.splitlines() if line.startswith(f"| {check}"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == "OK" and int(cells[2].replace(",", "")) > 0 and cells[3:6] == ["0", "0", "0"], line
    assert "**Verdict: clean**" in table
    assert "rebalance" in (output / "report.md").read_text() and "Chaos" in (output / "summary.md").read_text()
