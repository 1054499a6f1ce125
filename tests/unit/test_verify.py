"""The pure comparison behind `balance-tui verify`: changelog and export checks, cut-offs, reports."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest

from balance_tui.core.changelog import PartitionRestore, encode_state
from balance_tui.core.ledger import CustomerState, Ledger
from balance_tui.core.transaction import (
    Transaction,
    TransactionStatus,
    TransactionType,
    encode_transaction,
    parse_transaction,
)
from balance_tui.core.verify import (
    Duplicate,
    ExportView,
    Mismatch,
    SourceRecord,
    VerifyReport,
    export_view,
    format_report,
    verify_changelog,
    verify_exports,
)

T0 = datetime(2026, 2, 8, 22, 0, tzinfo=UTC)
_ids = count(1)


def tx(customer: str, amount: str, kind: TransactionType = TransactionType.DEPOSIT,
       status: TransactionStatus = TransactionStatus.COMPLETED, currency: str = "EUR") -> bytes:
    number = next(_ids)
    return encode_transaction(Transaction.validated(
        transaction_id=f"TX-{number}", from_account="BANK", to_account=f"IBAN-{customer}", amount=Decimal(amount),
        currency=currency, type=kind, description="test", customer_id=customer,
        timestamp=T0 + timedelta(seconds=number), risk_score=0, status=status,
    ))


def source_of(partitions: dict[int, list[bytes | None]]) -> list[SourceRecord]:
    """Records numbered from offset 0 per partition, partitions interleaved like a real read."""
    records = [(p, offset, raw) for p, raws in partitions.items() for offset, raw in enumerate(raws)]
    return sorted(records, key=lambda record: (record[1], record[0]))


def changelog_of(source: Iterable[SourceRecord], upto: dict[int, int] | None = None) -> dict[int, PartitionRestore]:
    """The changelog a correct worker writes: one state per applied transaction (below `upto[p]` if given)."""
    ledgers: dict[int, Ledger] = {}
    restores: dict[int, PartitionRestore] = {}
    for partition, offset, raw in source:
        restore = restores.setdefault(partition, PartitionRestore(partition))
        if upto is not None and offset >= upto.get(partition, 0):
            continue
        result = parse_transaction(raw)
        if not isinstance(result, Transaction):
            continue
        ledger = ledgers.setdefault(partition, Ledger())
        if ledger.apply(result, partition, offset).value != "skipped":
            restore.add(encode_state(ledger.customers[result.customer_id]))
    return restores


def latest_state(restores: dict[int, PartitionRestore], partition: int, customer: str) -> CustomerState:
    return copy.deepcopy(restores[partition].states[customer])


SOURCE = source_of({
    0: [tx("CUST-A", "100.00"), tx("CUST-A", "30.00", TransactionType.CARD_PAYMENT), tx("CUST-B", "5.00")],
    1: [tx("CUST-C", "250.00"), tx("CUST-C", "12.50", TransactionType.WITHDRAWAL, currency="USD")],
})


# -- changelog ------------------------------------------------------------------------------


def test_matching_changelog_is_ok() -> None:
    report = verify_changelog(SOURCE, changelog_of(SOURCE))
    assert report.ok, report.to_json()
    assert report.customers_checked == 3
    assert report.balances_checked == 4  # C has EUR and USD
    assert report.compared_records == 5
    assert report.not_yet_applied_total == 0
    assert "0 mismatches" in format_report(report, "verify")
    assert "**OK**" in format_report(report, "verify")


def test_balance_off_by_a_cent_is_a_mismatch_with_both_values() -> None:
    restores = changelog_of(SOURCE)
    state = latest_state(restores, 0, "CUST-A")
    state.balances["EUR"] += Decimal("0.01")
    restores[0].add(encode_state(state))

    report = verify_changelog(SOURCE, restores)

    assert not report.ok
    [mismatch] = report.mismatches
    assert (mismatch.customer_id, mismatch.currency, mismatch.partition) == ("CUST-A", "EUR", 0)
    assert (mismatch.expected, mismatch.actual) == (Decimal("70.00"), Decimal("70.01"))
    assert (mismatch.expected_count, mismatch.actual_count) == (2, 2)
    assert report.count_differences == []
    text = format_report(report, "verify")
    assert "1 mismatches" in text and "70.00" in text and "70.01" in text and "FAILED" in text
    as_json = report.to_json()["mismatches"][0]
    assert (as_json["expected"], as_json["actual"]) == ("70.00", "70.01")


def test_a_transaction_applied_twice_is_reported() -> None:
    restores = changelog_of(SOURCE)
    state = latest_state(restores, 0, "CUST-A")
    # The card payment (-30.00, offset 1) applied a second time after a bad restore.
    state.balances["EUR"] -= Decimal("30.00")
    state.transaction_count += 1
    restores[0].add(encode_state(state))

    report = verify_changelog(SOURCE, restores)

    assert not report.ok
    [twice] = report.applied_twice
    assert (twice.customer_id, twice.expected, twice.actual, twice.difference) == ("CUST-A", 2, 3, 1)
    assert report.applied_twice_total == 1 and report.missed == []
    assert [(m.expected, m.actual) for m in report.mismatches] == [(Decimal("70.00"), Decimal("40.00"))]
    assert "Applied twice: 1 transactions (1 customers)" in format_report(report, "verify")


def test_a_missed_transaction_is_reported() -> None:
    restores = changelog_of(SOURCE)
    state = latest_state(restores, 0, "CUST-A")
    state.balances["EUR"] += Decimal("30.00")  # as if the card payment never happened
    state.transaction_count -= 1
    restores[0].add(encode_state(state))

    report = verify_changelog(SOURCE, restores)

    [missed] = report.missed
    assert (missed.customer_id, missed.difference) == ("CUST-A", -1)
    assert report.missed_total == 1 and report.applied_twice == []
    assert not report.ok


def test_only_what_the_changelog_reflects_is_compared() -> None:
    source = source_of({
        0: [tx("CUST-A", "100.00"), tx("CUST-A", "1.00"), tx("CUST-A", "2.00")],
        1: [tx("CUST-C", "10.00"), tx("CUST-C", "3.00")],
    })
    # The consumer of partition 0 is behind: it applied offset 0 only.
    restores = changelog_of(source, upto={0: 1, 1: 2})

    report = verify_changelog(source, restores)

    assert report.ok, report.to_json()
    assert report.cutoffs == {0: 1, 1: 2}
    assert report.not_yet_applied == {0: 2}
    assert "Not yet applied: 2 (P0=2)" in format_report(report, "verify")

    strict = verify_changelog(source, restores, require_caught_up=True)
    assert not strict.ok
    assert "--require-caught-up" in format_report(strict, "verify")


def test_records_beyond_the_cutoff_that_change_nothing_are_not_pending() -> None:
    source = source_of({0: [tx("CUST-A", "100.00"), tx("CUST-A", "1.00", status=TransactionStatus.FAILED), b"{"]})
    report = verify_changelog(source, changelog_of(source), require_caught_up=True)
    assert report.ok, report.to_json()
    assert report.not_yet_applied_total == 0
    assert (report.skipped, report.rejected) == (1, 1)


def test_an_empty_changelog_partition_with_applied_transactions_means_missed() -> None:
    restores = changelog_of(SOURCE)
    restores[1] = PartitionRestore(1)

    report = verify_changelog(SOURCE, restores)

    assert not report.ok
    assert report.cutoffs[1] is None
    [missed] = report.missed
    assert (missed.customer_id, missed.expected, missed.actual) == ("CUST-C", 2, 0)
    assert {(m.customer_id, m.currency) for m in report.missing} == {("CUST-C", "EUR"), ("CUST-C", "USD")}


def test_a_partition_absent_from_the_changelog_is_compared_in_full() -> None:
    restores = changelog_of(SOURCE)
    del restores[1]
    report = verify_changelog(SOURCE, restores)
    assert report.cutoffs == {0: 3, 1: None}
    assert report.missed_total == 2


def test_malformed_source_messages_are_ignored_and_counted() -> None:
    source = source_of({0: [b"not json", tx("CUST-A", "100.00"), None, b'{"customerId": "CUST-A"}',
                            tx("CUST-A", "1.00", status=TransactionStatus.REJECTED)]})
    report = verify_changelog(source, changelog_of(source))
    assert report.ok, report.to_json()
    assert (report.rejected, report.skipped, report.compared_records, report.source_records) == (3, 1, 1, 5)
    assert "rejected (malformed): 3" in format_report(report, "verify")


def test_customers_only_in_the_changelog_are_unexpected() -> None:
    restores = changelog_of(SOURCE)
    ghost = CustomerState("CUST-GHOST", balances={"EUR": Decimal("1.00")}, transaction_count=1, partition=0, offset=0)
    restores[0].add(encode_state(ghost))
    report = verify_changelog(SOURCE, restores)
    assert [(u.customer_id, u.actual) for u in report.unexpected] == [("CUST-GHOST", Decimal("1.00"))]
    assert report.applied_twice_total == 1
    assert not report.ok


def test_an_undecodable_changelog_record_fails_the_check() -> None:
    restores = changelog_of(SOURCE)
    restores[0].add(b"garbage")
    report = verify_changelog(SOURCE, restores)
    assert not report.ok
    assert any("not customer states" in problem for problem in report.problems)


def test_a_changelog_ahead_of_the_source_is_a_problem() -> None:
    restores = changelog_of(SOURCE)
    state = latest_state(restores, 1, "CUST-C")
    state.offset = 99
    restores[1].add(encode_state(state))
    report = verify_changelog(SOURCE, restores)
    assert not report.ok
    assert any("offsets up to 99" in problem for problem in report.problems)


# -- exports --------------------------------------------------------------------------------


def export_document(restores: dict[int, PartitionRestore], partitions: list[int],
                    offsets: dict[int, int] | None = None) -> dict[str, Any]:
    """An export (docs/session-log.md) of a consumer owning `partitions`, from the changelog states."""
    rows = []
    for partition in partitions:
        for customer_id, state in sorted(restores[partition].states.items()):
            for currency, balance in sorted(state.balances.items()):
                rows.append({"customerId": customer_id, "balance": str(balance), "currency": currency,
                             "transactionCount": state.transaction_count, "lastUpdated": "2026-02-08T22:00:00.000Z",
                             "lastTransactionId": state.last_transaction_id, "partition": partition})
    if offsets is None:
        offsets = {p: restores[p].resume_offset for p in partitions if restores[p].resume_offset is not None}
    return {"consumerId": "c", "groupId": "g", "topic": "banking.transactions", "assignedPartitions": partitions,
            "partitionOffsets": {str(p): o for p, o in offsets.items()}, "balances": rows}


def views(*documents: tuple[str, dict[str, Any]]) -> list[ExportView]:
    # Through JSON and back, as the command reads them.
    return [export_view(name, json.loads(json.dumps(document), parse_float=Decimal)) for name, document in documents]


def test_export_union_that_matches_is_ok() -> None:
    restores = changelog_of(SOURCE)
    report = verify_exports(SOURCE, views(("a.json", export_document(restores, [0])),
                                          ("b.json", export_document(restores, [1]))))
    assert report.ok, report.to_json()
    assert report.cutoffs == {0: 3, 1: 2}
    assert "Duplicates across exports: 0" in format_report(report, "verify")


def test_export_offsets_are_the_cutoff() -> None:
    source = source_of({0: [tx("CUST-A", "100.00"), tx("CUST-A", "1.00")], 1: [tx("CUST-C", "10.00")]})
    restores = changelog_of(source, upto={0: 1, 1: 1})
    report = verify_exports(source, views(("a.json", export_document(restores, [0, 1]))))
    assert report.ok, report.to_json()
    assert report.not_yet_applied == {0: 1}


def test_a_duplicate_across_exports_lists_the_files() -> None:
    restores = changelog_of(SOURCE)
    report = verify_exports(SOURCE, views(("a.json", export_document(restores, [0, 1])),
                                          ("b.json", export_document(restores, [1]))))
    assert not report.ok
    assert {(d.customer_id, d.currency, d.files) for d in report.duplicates} == {
        ("CUST-C", "EUR", ("a.json", "b.json")), ("CUST-C", "USD", ("a.json", "b.json"))}
    text = format_report(report, "verify")
    assert "a.json, b.json" in text


def test_a_customer_in_no_export_is_missing() -> None:
    restores = changelog_of(SOURCE)
    document = export_document(restores, [0])
    document["balances"] = [row for row in document["balances"] if row["customerId"] != "CUST-B"]
    report = verify_exports(SOURCE, views(("a.json", document), ("b.json", export_document(restores, [1]))))
    assert not report.ok
    assert [(m.customer_id, m.currency, m.expected, m.source) for m in report.missing] == [
        ("CUST-B", "EUR", Decimal("5.00"), "no export")]
    assert report.missed_total == 1


def test_a_partition_in_no_export_is_compared_in_full() -> None:
    restores = changelog_of(SOURCE)
    report = verify_exports(SOURCE, views(("a.json", export_document(restores, [0]))))
    assert not report.ok
    assert report.cutoffs[1] is None
    assert {m.customer_id for m in report.missing} == {"CUST-C"}
    assert any("partition 1 is in no export" in warning for warning in report.warnings)


def test_an_export_value_mismatch_is_reported_with_its_file() -> None:
    restores = changelog_of(SOURCE)
    document = export_document(restores, [1])
    for row in document["balances"]:
        if row["currency"] == "USD":
            row["balance"] = "-12.49"
    report = verify_exports(SOURCE, views(("a.json", export_document(restores, [0])), ("b.json", document)))
    assert not report.ok
    [mismatch] = report.mismatches
    assert (mismatch.customer_id, mismatch.expected, mismatch.actual, mismatch.source) == (
        "CUST-C", Decimal("-12.50"), Decimal("-12.49"), "b.json")


def test_customers_of_one_partition_in_two_exports_is_a_problem() -> None:
    restores = changelog_of(SOURCE)
    first, second = export_document(restores, [0]), export_document(restores, [0])
    first["balances"] = [row for row in first["balances"] if row["customerId"] == "CUST-A"]
    second["balances"] = [row for row in second["balances"] if row["customerId"] == "CUST-B"]
    report = verify_exports(SOURCE, views(("a.json", first), ("b.json", second),
                                          ("c.json", export_document(restores, [1]))))
    assert report.duplicates == []
    assert any("several exports (a.json, b.json)" in problem for problem in report.problems)
    assert not report.ok


@pytest.mark.parametrize("document, reason", [
    ([], "expected a JSON object"),
    ({"partitionOffsets": {}}, "no 'balances' list"),
    ({"balances": []}, "no 'partitionOffsets' object"),
    ({"balances": [], "partitionOffsets": {"x": 1}}, "key 'x' is not a partition"),
    ({"balances": [{"customerId": "A", "currency": "EUR", "balance": 1.5, "transactionCount": 1,
                    "partition": 0}], "partitionOffsets": {}}, "balances[0].balance is not a decimal string"),
    ({"balances": [{"customerId": "A", "currency": "EUR", "balance": "x", "transactionCount": 1,
                    "partition": 0}], "partitionOffsets": {}}, "is not a decimal"),
])
def test_export_view_names_what_is_wrong(document: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape("f.json: not a balance-tui export")) as error:
        export_view("f.json", document)
    assert reason in str(error.value)


def test_json_report_is_machine_friendly() -> None:
    restores = changelog_of(SOURCE)
    state = latest_state(restores, 1, "CUST-C")
    state.balances["USD"] = Decimal("0.00")
    restores[1].add(encode_state(state))
    document = json.loads(json.dumps(verify_changelog(SOURCE, restores).to_json()))
    assert document["ok"] is False
    assert document["mismatches"] == [{
        "customerId": "CUST-C", "currency": "USD", "partition": 1, "expected": "-12.50", "actual": "0.00",
        "expectedTransactionCount": 2, "actualTransactionCount": 2, "source": "changelog"}]
    assert document["cutoffs"] == {"0": 3, "1": 2}
    assert document["appliedTwice"] == {"transactions": 0, "customers": []}


def test_text_summary_shows_control_characters_as_escapes() -> None:
    hostile = "\x1b]0;PWNED\x07\x1b[2J\x00\u202e"
    shown = "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\u202e"
    report = VerifyReport(mode="exports")
    report.mismatches.append(Mismatch(f"CUST{hostile}|x", f"EU{hostile}", 0, Decimal("1.00"), Decimal("2.00"),
                                      1, 1, f"/tmp/a{hostile}.json"))
    report.duplicates.append(Duplicate(f"CUST{hostile}", "EUR", (f"/tmp/b{hostile}.json", "/tmp/c.json")))
    report.problems.append(f"/tmp/d{hostile}.json: not an export")
    text = format_report(report, f"verify {hostile}")
    for char in ("\x1b", "\x07", "\x00", "\u202e"):
        assert char not in text, repr(char)
    assert text.startswith(f"# verify {shown}\n")
    assert f"| CUST{shown}\\|x | EU{shown} | 0 | 1.00 | 2.00 | 1 | 1 | /tmp/a{shown}.json |" in text
    assert f"| CUST{shown} | EUR | /tmp/b{shown}.json, /tmp/c.json |" in text
    assert f"- /tmp/d{shown}.json: not an export" in text


def test_a_flush_cut_short_is_compared_customer_by_customer() -> None:
    """Records after the last position (a flush cut short): their customers up to their own offsets."""
    from balance_tui.core.changelog import encode_position

    source = [(0, offset, raw) for offset, raw in enumerate(tx(c, "1.00") for c in ["A", "B", "A", "B", "A"])]
    restores = {0: PartitionRestore(0)}
    ledger = Ledger()
    for _, offset, raw in source[:2]:
        ledger.apply(parse_transaction(raw), 0, offset)
    for customer in ("A", "B"):
        restores[0].add(encode_state(ledger.customers[customer]))
    restores[0].add(encode_position(1, "first"))
    for _, offset, raw in source[2:4]:
        ledger.apply(parse_transaction(raw), 0, offset)
    restores[0].add(encode_state(ledger.customers["A"]))  # A at offset 2 landed; B at 3 did not
    report = verify_changelog(source, restores)
    assert report.ok, report.to_json()
    assert report.cutoffs == {0: 2} and report.not_yet_applied == {0: 2}  # B at 3 and A at 4


def test_records_that_go_back_in_source_offset_fail_verify() -> None:
    from balance_tui.core.changelog import encode_position

    source = [(0, offset, raw) for offset, raw in enumerate(tx("A", "1.00") for _ in range(2))]
    restores = {0: PartitionRestore(0)}
    ledger = Ledger()
    states = []
    for _, offset, raw in source:
        ledger.apply(parse_transaction(raw), 0, offset)
        states.append(encode_state(ledger.customers["A"]))
    restores[0].add(states[1])
    restores[0].add(encode_position(1, "new owner"))
    restores[0].add(states[0])  # an unfenced former owner's late record
    report = verify_changelog(source, restores)
    assert not report.ok
    assert any("go back in source offset" in problem and "A at offset 0 after 1" in problem
               for problem in report.problems), report.problems
