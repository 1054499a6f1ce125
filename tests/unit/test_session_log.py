"""The session log contract: common fields, one object per line, flushed per event."""

import json
from datetime import UTC, datetime
from decimal import Decimal

from balance_tui.core.export import ExportState, export_document, export_markdown
from balance_tui.core.rows import BalanceRow, TimelineEntry
from balance_tui.session_log import SessionLog, export_paths, read_session_log

T0 = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)


def test_every_line_has_the_common_fields_and_is_flushed_at_once(tmp_path):
    path = tmp_path / "s.jsonl"
    log = SessionLog(path, "balance-worker-h-0000abcd", "balance-service", "banking.transactions", "range")
    log.write("assigned", at=T0, partitions=[0, 1], assignment=[0, 1], generation=3)
    # Read before close: a kill -9 right now must still find the line on disk.
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record == {
        "ts": "2026-11-25T12:00:00.123Z", "event": "assigned", "consumer_id": "balance-worker-h-0000abcd",
        "group": "balance-service", "topic": "banking.transactions", "strategy": "range",
        "partitions": [0, 1], "assignment": [0, 1], "generation": 3,
    }
    log.close()


def test_reader_skips_a_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"event": "started"}\n{"event": "assi')
    assert read_session_log(path) == [{"event": "started"}]


def test_export_paths_sit_beside_the_log(tmp_path):
    json_path, md_path = export_paths(tmp_path / "session.jsonl")
    assert json_path == tmp_path / "session.export.json"
    assert md_path == tmp_path / "session.export.md"


def _state() -> ExportState:
    return ExportState(
        consumer_id="balance-worker-h-0000abcd", group_id="balance-service", topic="banking.transactions",
        strategy="range", status="Consuming", assigned_partitions=[2, 0], messages_consumed=2,
        balance_updates=2, processing_errors=0, rejected=1, partition_offsets={0: 2},
        history=[TimelineEntry(at=T0, kind="assigned", partitions=(0, 2), assignment=(0, 2), join_ms=5000.0)],
        started_at=T0, last_message_at=T0,
        balances=[BalanceRow("CUST-001", "EUR", Decimal("3800.00"), 2, T0, "BAL-002", 0)],
        exported_at=T0,
    )


def test_export_json_mirrors_the_lab_api_with_decimal_strings():
    document = export_document(_state())
    for key in ("consumerId", "groupId", "status", "assignedPartitions", "messagesConsumed", "balanceUpdates",
                "processingErrors", "partitionOffsets", "rebalancingHistory", "startedAt", "lastMessageAt",
                "balances"):
        assert key in document
    assert document["assignedPartitions"] == [0, 2]
    assert document["balances"][0] == {
        "customerId": "CUST-001", "balance": "3800.00", "currency": "EUR", "transactionCount": 2,
        "lastUpdated": "2026-11-25T12:00:00.123Z", "lastTransactionId": "BAL-002", "partition": 0,
    }
    assert document["rebalancingHistory"][0]["eventType"] == "Assigned"
    assert document["rebalancingHistory"][0]["joinMs"] == 5000.0


def test_export_markdown_has_the_timeline_table_and_balances():
    text = export_markdown(_state())
    assert "| time (UTC) | event | partitions |" in text
    assert "| 2026-11-25T12:00:00.123Z | Assigned | [0, 2] | [0, 2] | join 5.0s |" in text
    assert "| CUST-001 | 3,800.00 | EUR |" in text


# -- text from Kafka in the files -----------------------------------------------------------------

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x00\u202e\x9b|"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\u202e\\x9b"
RAW_CONTROLS = ("\x1b", "\x07", "\x00", "\u202e", "\x9b")


def _hostile_state() -> ExportState:
    state = _state()
    state.consumer_id = f"me{HOSTILE}"
    state.group_id = f"g{HOSTILE}"
    state.status = f"Consuming{HOSTILE}"
    state.history = [TimelineEntry(at=T0, kind="error", detail=f"broker{HOSTILE}")]
    state.balances = [BalanceRow(f"CUST{HOSTILE}", f"EU{HOSTILE}", Decimal("1.00"), 1, T0, f"TX{HOSTILE}", 0)]
    return state


def test_export_markdown_shows_control_characters_as_escapes():
    text = export_markdown(_hostile_state())
    for char in RAW_CONTROLS:
        assert char not in text, repr(char)
    assert f"# balance-tui export: me{SHOWN}|" in text
    assert f"Group `g{SHOWN}|`" in text
    assert f"Status: Consuming{SHOWN}|;" in text
    # In table cells `|` is escaped too, and the backslash of each escape doubled for Markdown.
    cell = SHOWN.replace("\\", "\\\\") + "\\|"
    assert f"| broker{cell} |" in text
    assert f"| CUST{cell} | 1.00 | EU{cell} | 1 | TX{cell} |" in text


def test_export_json_keeps_ids_exactly_with_controls_escaped():
    # The worker writes `json.dumps(export_document(state), indent=2)`: ASCII only, so nothing raw.
    text = json.dumps(export_document(_hostile_state()), indent=2)
    assert all(char.isprintable() or char == "\n" for char in text) and text.isascii()
    assert json.loads(text)["balances"][0]["customerId"] == f"CUST{HOSTILE}"


def test_session_log_lines_hold_no_raw_control_characters(tmp_path):
    path = tmp_path / "s.jsonl"
    log = SessionLog(path, f"me{HOSTILE}", "balance-service", "banking.transactions", "range")
    log.write("error", at=T0, code="X", reason=f"broker{HOSTILE}\u2028\ud800", fatal=False)
    log.close()
    line = path.read_text(encoding="utf-8").removesuffix("\n")
    assert line.isascii() and line.isprintable()
    record = json.loads(line)
    assert record["consumer_id"] == f"me{HOSTILE}" and record["reason"] == f"broker{HOSTILE}\u2028\ud800"


def test_the_exports_carry_the_lag_chart_and_the_alerts():
    from dataclasses import replace

    from balance_tui.core.lag_view import MARKER_LEGEND
    from balance_tui.core.rows import PartitionRestore
    from tests.lag_views import sample_view

    view = sample_view(T0.timestamp())
    restored = TimelineEntry(at=T0, kind="restored", partitions=(0, 1), assignment=(0, 1), detail="restored P0-P1",
                             restores=(PartitionRestore(0, 3, 9, 12.5, 40), PartitionRestore(1, 2, 4, 8.0, 7)))
    state = replace(_state(), lag=view, history=[*_state().history, restored])
    text = export_markdown(state)
    section = text.split("## Lag\n", 1)[1].split("## Rebalance timeline", 1)[0]
    assert "status WARN (P3)" in section and "not draining (P3)" in section
    assert "Alert rule: lag above 1,000 messages for 1m" in section
    chart = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(chart) == 10 and all(len(line) == 76 for line in chart)
    assert "‖" in chart[-2] and "▸" in chart[-2]  # the pause and the resume on the time axis
    assert chart[-1].rstrip().endswith("UTC")
    assert MARKER_LEGEND in section
    assert "| 3 |" in section and "WARN" in section  # a row per partition
    assert "### Lag alerts" in section and "| raised (UTC) |" in section
    document = export_document(state)
    assert document["lag"]["status"] == "WARN" and document["lag"]["alert"]["state"] == "firing"
    assert document["lag"]["series"] and document["lag"]["markers"]
    assert document["rebalancingHistory"][-1]["restores"][1] == {
        "partition": 1, "customers": 2, "records": 4, "durationMs": 8.0, "resumeOffset": 7}
    # Before the worker's first lag view: no lag section at all.
    assert "## Lag\n" not in export_markdown(_state()) and "lag" not in export_document(_state())
