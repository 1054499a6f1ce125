"""`balance-tui verify`, the pure part: recompute balances from the source and compare.

The source topic is replayed partition by partition, in offset order, through the same
`parse_transaction` and `Ledger` rules as the consumer, one ledger per partition (a
customer's transactions all live on one partition, so that is what any single consumer
computes). The result is compared with what the service claims:

- the changelog (`verify_changelog`): the latest state per customer in each changelog
  partition, against the source replayed up to the position that changelog partition
  vouches for (docs/consistency.md);
- dashboard exports (`verify_exports`): the union of their balance rows, against the
  source replayed up to each partition's `partitionOffsets` in the export owning it.

Consumers may be running or behind while this runs, so a partition is only compared up
to where the service says it got; what lies beyond is "not yet applied", not an error
(unless `require_caught_up`). A partition with no evidence of progress at all (an empty
changelog partition, a partition no export mentions) is compared in full: whatever its
transactions did then counts as missed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from balance_tui.core.changelog import PartitionRestore
from balance_tui.core.ledger import CustomerState, Ledger
from balance_tui.core.safe_text import visible
from balance_tui.core.transaction import Rejection, TransactionStatus, parse_transaction

#: One source record as `verify_*` reads it: (partition, offset, raw value).
SourceRecord = tuple[int, int, bytes | None]

_NO_EFFECT_STATUSES = (TransactionStatus.FAILED, TransactionStatus.REJECTED)

#: Detail lines shown per section in the text summary; `--json` always has them all.
TEXT_DETAIL_LIMIT = 50


# -- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A balance present on both sides with different values."""

    customer_id: str
    currency: str
    partition: int
    expected: Decimal
    actual: Decimal
    expected_count: int
    actual_count: int
    source: str  # "changelog" or the export file


@dataclass(frozen=True)
class MissingBalance:
    """A balance the recomputation has and the service does not (`source` says where it was looked for)."""

    customer_id: str
    currency: str
    partition: int
    expected: Decimal
    expected_count: int
    source: str


@dataclass(frozen=True)
class UnexpectedBalance:
    """A balance the service has and the recomputation (up to the cut-off) does not."""

    customer_id: str
    currency: str
    partition: int | None
    actual: Decimal
    actual_count: int
    source: str


@dataclass(frozen=True)
class CountDifference:
    """A customer whose transaction count differs: positive `difference` = applied twice, negative = missed."""

    customer_id: str
    partition: int | None
    expected: int
    actual: int
    source: str

    @property
    def difference(self) -> int:
        return self.actual - self.expected


@dataclass(frozen=True)
class Duplicate:
    """A customer and currency found more than once across the exports."""

    customer_id: str
    currency: str
    files: tuple[str, ...]


@dataclass
class VerifyReport:
    """Everything `verify` found; `ok` is the verdict."""

    mode: str  # "changelog" or "exports"
    require_caught_up: bool = False
    customers_checked: int = 0
    balances_checked: int = 0
    source_records: int = 0
    compared_records: int = 0
    rejected: int = 0
    skipped: int = 0
    processing_errors: int = 0
    #: Per partition: the next source offset compared up to; None means the whole partition.
    cutoffs: dict[int, int | None] = field(default_factory=dict)
    #: Per partition: source transactions beyond the cut-off that would change a balance.
    not_yet_applied: dict[int, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    missing: list[MissingBalance] = field(default_factory=list)
    unexpected: list[UnexpectedBalance] = field(default_factory=list)
    count_differences: list[CountDifference] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    #: Failures that are not one balance: corrupt changelog records, inconsistent exports...
    problems: list[str] = field(default_factory=list)
    #: Worth knowing, not a failure by itself (e.g. a customer on several partitions).
    warnings: list[str] = field(default_factory=list)

    @property
    def applied_twice(self) -> list[CountDifference]:
        return [item for item in self.count_differences if item.difference > 0]

    @property
    def missed(self) -> list[CountDifference]:
        return [item for item in self.count_differences if item.difference < 0]

    @property
    def applied_twice_total(self) -> int:
        return sum(item.difference for item in self.applied_twice)

    @property
    def missed_total(self) -> int:
        return -sum(item.difference for item in self.missed)

    @property
    def not_yet_applied_total(self) -> int:
        return sum(self.not_yet_applied.values())

    @property
    def ok(self) -> bool:
        if self.mismatches or self.missing or self.unexpected or self.count_differences:
            return False
        if self.duplicates or self.problems:
            return False
        return not (self.require_caught_up and self.not_yet_applied_total)

    def to_json(self) -> dict[str, Any]:
        """The report for machines: decimals as strings, partitions as string keys."""
        return {
            "ok": self.ok,
            "mode": self.mode,
            "requireCaughtUp": self.require_caught_up,
            "customersChecked": self.customers_checked,
            "balancesChecked": self.balances_checked,
            "sourceRecords": self.source_records,
            "comparedRecords": self.compared_records,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "processingErrors": self.processing_errors,
            "cutoffs": {str(p): o for p, o in sorted(self.cutoffs.items())},
            "notYetApplied": self.not_yet_applied_total,
            "notYetAppliedByPartition": {str(p): n for p, n in sorted(self.not_yet_applied.items())},
            "mismatches": [
                {"customerId": m.customer_id, "currency": m.currency, "partition": m.partition,
                 "expected": str(m.expected), "actual": str(m.actual),
                 "expectedTransactionCount": m.expected_count, "actualTransactionCount": m.actual_count,
                 "source": m.source}
                for m in self.mismatches
            ],
            "missing": [
                {"customerId": m.customer_id, "currency": m.currency, "partition": m.partition,
                 "expected": str(m.expected), "expectedTransactionCount": m.expected_count, "source": m.source}
                for m in self.missing
            ],
            "unexpected": [
                {"customerId": u.customer_id, "currency": u.currency, "partition": u.partition,
                 "actual": str(u.actual), "actualTransactionCount": u.actual_count, "source": u.source}
                for u in self.unexpected
            ],
            "appliedTwice": {"transactions": self.applied_twice_total,
                             "customers": [_count_json(c) for c in self.applied_twice]},
            "missed": {"transactions": self.missed_total, "customers": [_count_json(c) for c in self.missed]},
            "duplicates": [{"customerId": d.customer_id, "currency": d.currency, "files": list(d.files)}
                           for d in self.duplicates],
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def _count_json(item: CountDifference) -> dict[str, Any]:
    return {"customerId": item.customer_id, "partition": item.partition, "expected": item.expected,
            "actual": item.actual, "difference": item.difference, "source": item.source}


# -- what the service claims -----------------------------------------------------------------


@dataclass
class _Claim:
    """One customer's state as one source (changelog partition or export file) has it."""

    source: str
    partition: int | None
    transaction_count: int
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportView:
    """The parts of one export document that `verify --exports` needs, checked."""

    name: str
    topic: str | None
    assigned_partitions: tuple[int, ...]
    partition_offsets: dict[int, int]
    #: (customerId, currency, balance, transactionCount, partition) per balance row.
    rows: tuple[tuple[str, str, Decimal, int, int | None], ...]


def export_view(name: str, document: Any) -> ExportView:
    """Check an export document's shape (docs/session-log.md); ValueError naming the file otherwise."""
    def fail(reason: str) -> ValueError:
        return ValueError(f"{name}: not a balance-tui export ({reason})")

    if not isinstance(document, dict):
        raise fail("expected a JSON object")
    balances = document.get("balances")
    offsets = document.get("partitionOffsets")
    assigned = document.get("assignedPartitions", [])
    if not isinstance(balances, list):
        raise fail("no 'balances' list")
    if not isinstance(offsets, dict):
        raise fail("no 'partitionOffsets' object")
    if not isinstance(assigned, list) or not all(_is_int(p) for p in assigned):
        raise fail("'assignedPartitions' is not a list of partitions")
    partition_offsets: dict[int, int] = {}
    for key, value in offsets.items():
        try:
            listed = int(key)
        except (TypeError, ValueError):
            raise fail(f"partitionOffsets key {key!r} is not a partition") from None
        if not _is_int(value) or value < 0:
            raise fail(f"partitionOffsets[{key!r}] is not an offset")
        partition_offsets[listed] = value
    rows = []
    for index, row in enumerate(balances):
        where = f"balances[{index}]"
        if not isinstance(row, dict):
            raise fail(f"{where} is not an object")
        customer_id, currency = row.get("customerId"), row.get("currency")
        count, partition = row.get("transactionCount"), row.get("partition")
        if not isinstance(customer_id, str) or not isinstance(currency, str):
            raise fail(f"{where} has no customerId or currency")
        if not _is_int(count):
            raise fail(f"{where}.transactionCount is not an integer")
        if partition is not None and not _is_int(partition):
            raise fail(f"{where}.partition is not a partition")
        rows.append((customer_id, currency, _decimal(row.get("balance"), f"{where}.balance", fail), count, partition))
    topic = document.get("topic")
    return ExportView(name, topic if isinstance(topic, str) else None, tuple(sorted(set(assigned))),
                      partition_offsets, tuple(rows))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _decimal(value: object, where: str, fail: Any) -> Decimal:
    # Strings are the contract; integers and Decimals (json.loads(parse_float=Decimal)) are
    # exact too. A binary float is not: refuse it rather than compare a rounded value.
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise fail(f"{where} is not a decimal string")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise fail(f"{where} {value!r} is not a decimal") from None
    if not amount.is_finite():
        raise fail(f"{where} {value!r} is not a finite decimal")
    return amount


# -- the recomputation ----------------------------------------------------------------------


def _replay(source: Iterable[SourceRecord], cutoffs: Mapping[int, int | None],
            report: VerifyReport, beyond: Mapping[tuple[int, str], int] | None = None,
            ) -> tuple[dict[int, Ledger], dict[int, int]]:
    """One ledger per partition with the source applied below each cut-off; also the last offset per partition.

    `beyond` gives some customers a cut-off of their own past their partition's: those whose
    changelog state reflects more than the partition's last position (a flush cut short).

    Records must come in offset order within a partition (any interleaving of partitions).
    Counting mirrors the consumer: malformed -> rejected, Failed/Rejected -> skipped, an
    exception from the ledger -> processing error (the consumer logs it and moves on).
    """
    ledgers: dict[int, Ledger] = {}
    last_offsets: dict[int, int] = {}
    not_yet_applied: defaultdict[int, int] = defaultdict(int)
    for partition, offset, raw in source:
        report.source_records += 1
        last_offsets[partition] = offset
        result = parse_transaction(raw)
        if isinstance(result, Rejection):
            report.rejected += 1
            continue
        if result.status in _NO_EFFECT_STATUSES:
            report.skipped += 1
            continue
        cutoff = cutoffs.get(partition)
        if cutoff is not None and offset >= cutoff:
            own = beyond.get((partition, result.customer_id)) if beyond else None
            if own is None or offset >= own:
                not_yet_applied[partition] += 1
                continue
        ledger = ledgers.get(partition)
        if ledger is None:
            ledger = ledgers[partition] = Ledger()
        try:
            ledger.apply(result, partition, offset)
        except Exception:  # noqa: BLE001 - the consumer skips such a transaction too
            report.processing_errors += 1
        else:
            report.compared_records += 1
    report.not_yet_applied = dict(sorted(not_yet_applied.items()))
    return ledgers, last_offsets


def _check_cutoffs(report: VerifyReport, last_offsets: Mapping[int, int], what: str) -> None:
    """A cut-off past the end of the source means the service applied records that do not exist."""
    for partition, cutoff in sorted(report.cutoffs.items()):
        if cutoff is None or cutoff == 0:
            continue
        end = last_offsets.get(partition, -1) + 1
        if cutoff > end:
            report.problems.append(
                f"{what} of partition {partition} says source offsets up to {cutoff - 1} were applied, "
                f"but the source partition ends at offset {end} (topic recreated, or the wrong topic?)"
            )


def _warn_split_customers(report: VerifyReport, ledgers: Mapping[int, Ledger]) -> None:
    partitions_of: defaultdict[str, list[int]] = defaultdict(list)
    for partition, ledger in sorted(ledgers.items()):
        for customer_id in ledger.customers:
            partitions_of[customer_id].append(partition)
    split = sorted((c, ps) for c, ps in partitions_of.items() if len(ps) > 1)
    if split:
        examples = ", ".join(f"{c} on {ps}" for c, ps in split[:5])
        report.warnings.append(
            f"{len(split)} customer(s) have transactions on several partitions ({examples}): producers with "
            "different partitioners? Their order, and so their balance, is not defined across partitions"
        )


def _compare(report: VerifyReport, expected: Mapping[tuple[int, str], CustomerState],
             claims: Mapping[tuple[int | None, str], list[_Claim]], absent_source: Any) -> None:
    """Compare recomputed states with the claims, both keyed by (partition, customer).

    `absent_source(partition)` names where a customer with no claim at all was looked for.
    """
    customers: set[str] = set()
    balances: set[tuple[str, str]] = set()
    keys = sorted(set(expected) | set(claims), key=lambda key: (key[0] if key[0] is not None else -1, key[1]))
    for key in keys:
        partition, customer_id = key
        customers.add(customer_id)
        state = expected.get(key)  # type: ignore[arg-type]
        expected_count = state.transaction_count if state is not None else 0
        expected_balances = state.balances if state is not None else {}
        balances.update((customer_id, currency) for currency in expected_balances)
        found = claims.get(key, [])
        if not found:
            assert partition is not None  # expected keys always have a partition
            source = absent_source(partition)
            report.count_differences.append(CountDifference(customer_id, partition, expected_count, 0, source))
            for currency in sorted(expected_balances):
                report.missing.append(MissingBalance(customer_id, currency, partition, expected_balances[currency],
                                                     expected_count, source))
            continue
        for claim in found:
            balances.update((customer_id, currency) for currency in claim.balances)
            if claim.transaction_count != expected_count:
                report.count_differences.append(
                    CountDifference(customer_id, partition, expected_count, claim.transaction_count, claim.source))
            for currency in sorted(set(expected_balances) | set(claim.balances)):
                want, have = expected_balances.get(currency), claim.balances.get(currency)
                if have is None:
                    assert want is not None and partition is not None
                    report.missing.append(MissingBalance(customer_id, currency, partition, want, expected_count,
                                                         claim.source))
                elif want is None:
                    report.unexpected.append(UnexpectedBalance(customer_id, currency, partition, have,
                                                               claim.transaction_count, claim.source))
                elif want != have:
                    assert partition is not None
                    report.mismatches.append(Mismatch(customer_id, currency, partition, want, have,
                                                      expected_count, claim.transaction_count, claim.source))
    report.customers_checked = len(customers)
    report.balances_checked = len(balances)


def _expected_states(ledgers: Mapping[int, Ledger]) -> dict[tuple[int, str], CustomerState]:
    return {(partition, customer_id): state
            for partition, ledger in ledgers.items() for customer_id, state in ledger.customers.items()}


# -- the two checks ---------------------------------------------------------------------------


def verify_changelog(source: Iterable[SourceRecord], changelog: Mapping[int, PartitionRestore], *,
                     require_caught_up: bool = False) -> VerifyReport:
    """Compare the changelog's latest state per customer with the source replayed up to what it reflects.

    `changelog` holds every changelog partition read to its end (a missing one counts as
    empty). Source partition P is replayed up to and including its last position record (or,
    in a changelog without them, its highest source offset); with no record there, in full.
    A customer whose state reflects more (a flush cut short after some of its records) is
    replayed up to its own offset. A record older than an earlier one of the same customer is
    a problem: a writer that was not fenced.
    """
    report = VerifyReport(mode="changelog", require_caught_up=require_caught_up)
    beyond: dict[tuple[int, str], int] = {}
    for partition, restore in sorted(changelog.items()):
        cutoff = report.cutoffs[partition] = restore.resume_offset
        if restore.invalid:
            report.problems.append(f"changelog partition {partition}: {restore.invalid} record(s) are not "
                                   "customer states")
        if restore.backwards_count:
            first = restore.backwards[0]
            report.problems.append(
                f"changelog partition {partition}: {restore.backwards_count} record(s) go back in source offset "
                f"(first: {visible(first.key)} at offset {first.offset} after {first.after_offset}, record "
                f"{first.record}): a writer that was not fenced, e.g. a member that lost the partition and woke up")
        if cutoff is not None:
            for customer_id, state in restore.states.items():
                if state.offset is not None and state.offset >= cutoff:
                    beyond[(partition, customer_id)] = state.offset + 1
    ledgers, last_offsets = _replay(source, report.cutoffs, report, beyond)
    for partition in last_offsets:
        report.cutoffs.setdefault(partition, None)
    report.cutoffs = dict(sorted(report.cutoffs.items()))
    _check_cutoffs(report, last_offsets, "the changelog")

    claims: dict[tuple[int | None, str], list[_Claim]] = {}
    for partition, restore in changelog.items():
        for customer_id, state in restore.states.items():
            claims[(partition, customer_id)] = [_Claim("changelog", partition, state.transaction_count,
                                                       dict(state.balances))]
            if state.partition is not None and state.partition != partition:
                report.problems.append(f"changelog partition {partition} holds {customer_id}'s state for "
                                       f"source partition {state.partition}")
    _warn_split_customers(report, ledgers)
    _compare(report, _expected_states(ledgers), claims, lambda partition: "changelog")
    return report


def verify_exports(source: Iterable[SourceRecord], exports: Sequence[ExportView], *,
                   require_caught_up: bool = False) -> VerifyReport:
    """Compare the union of several exports with the source replayed up to each partition's export offset.

    Every customer and currency must appear exactly once across the exports. Source
    partition P is replayed below `partitionOffsets[P]` of the export holding P's
    customers (else the one assigned P, else any listing P); with none, in full.
    """
    report = VerifyReport(mode="exports", require_caught_up=require_caught_up)
    report.cutoffs = _export_cutoffs(exports, report)
    ledgers, last_offsets = _replay(source, report.cutoffs, report)
    for unlisted in sorted(set(last_offsets) - set(report.cutoffs)):
        report.cutoffs[unlisted] = None
        report.warnings.append(f"partition {unlisted} is in no export: compared in full")
    report.cutoffs = dict(sorted(report.cutoffs.items()))
    _check_cutoffs(report, last_offsets, "the export")

    where_found: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    claims: dict[tuple[int | None, str], list[_Claim]] = {}
    for export in exports:
        mine: dict[tuple[int | None, str], _Claim] = {}
        for customer_id, currency, balance, count, partition in export.rows:
            where_found[(customer_id, currency)].append(export.name)
            claim = mine.get((partition, customer_id))
            if claim is None:
                claim = mine[(partition, customer_id)] = _Claim(export.name, partition, count)
            claim.balances[currency] = balance
        for key, claim in mine.items():
            claims.setdefault(key, []).append(claim)
    report.duplicates = [Duplicate(customer_id, currency, tuple(files))
                         for (customer_id, currency), files in sorted(where_found.items()) if len(files) > 1]
    _warn_split_customers(report, ledgers)
    _compare(report, _expected_states(ledgers), claims, lambda partition: "no export")
    return report


def _export_cutoffs(exports: Sequence[ExportView], report: VerifyReport) -> dict[int, int | None]:
    """Per partition, the next offset of the export that owns it (see `verify_exports`)."""
    holders: defaultdict[int, list[ExportView]] = defaultdict(list)
    for export in exports:
        for partition in sorted({row[4] for row in export.rows if row[4] is not None}):
            holders[partition].append(export)
    partitions = set(holders)
    for export in exports:
        partitions.update(export.partition_offsets)
        partitions.update(export.assigned_partitions)
    cutoffs: dict[int, int | None] = {}
    for partition in sorted(partitions):
        owners = holders.get(partition)
        if owners:
            if len(owners) > 1:
                report.problems.append(
                    f"partition {partition}: customers in several exports ({', '.join(e.name for e in owners)}); "
                    "the exports were not taken at one moment of one assignment"
                )
            with_offset = [e for e in owners if partition in e.partition_offsets]
            if not with_offset:
                report.problems.append(f"{owners[0].name} has balances of partition {partition} but no "
                                       "partitionOffsets entry for it: compared in full")
                cutoffs[partition] = None
                continue
        else:
            with_offset = ([e for e in exports
                            if partition in e.assigned_partitions and partition in e.partition_offsets]
                           or [e for e in exports if partition in e.partition_offsets])
            if not with_offset:
                cutoffs[partition] = None  # assigned somewhere but nothing read yet: no evidence of progress
                continue
        # Several candidates only in inconsistent sets (reported above): take the furthest.
        cutoffs[partition] = max(e.partition_offsets[partition] for e in with_offset)
    return cutoffs


# -- text summary ---------------------------------------------------------------------------


def format_report(report: VerifyReport, heading: str) -> str:
    """A short Markdown-ish summary for people; details capped at TEXT_DETAIL_LIMIT lines per section."""
    checked_against = "changelog" if report.mode == "changelog" else "exports"
    verdict = "OK" if report.ok else "FAILED"
    lines = [
        f"# {visible(heading)}",
        "",
        f"- Result: **{verdict}**",
        f"- Customers checked: {report.customers_checked:,} ({report.balances_checked:,} customer-currency balances)",
        f"- Source records read: {report.source_records:,}; applied in the recomputation: "
        f"{report.compared_records:,}; rejected (malformed): {report.rejected:,}; "
        f"skipped (Failed/Rejected): {report.skipped:,}"
        + (f"; processing errors: {report.processing_errors:,}" if report.processing_errors else ""),
        f"- Compared up to (next offset): {_cutoff_text(report.cutoffs)}",
        f"- {len(report.mismatches):,} mismatches",
        f"- Missing from the {checked_against}: {len(report.missing):,}; "
        f"not in the recomputation: {len(report.unexpected):,}",
        f"- Applied twice: {report.applied_twice_total:,} transactions ({len(report.applied_twice):,} customers)",
        f"- Missed: {report.missed_total:,} transactions ({len(report.missed):,} customers)",
        f"- Not yet applied: {report.not_yet_applied_total:,}"
        + (f" ({_partition_counts(report.not_yet_applied)})" if report.not_yet_applied else "")
        + (" - fails because of --require-caught-up"
           if report.require_caught_up and report.not_yet_applied_total else ""),
    ]
    if report.mode == "exports":
        lines.append(f"- Duplicates across exports: {len(report.duplicates):,}")

    def section(title: str, header: list[str], rows: list[list[str]]) -> None:
        if not rows:
            return
        lines.extend(["", f"## {title}", "", "| " + " | ".join(header) + " |",
                      "|" + "|".join("---" for _ in header) + "|"])
        # Ids and file names come from the topic and the command line: shown, never interpreted.
        lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows[:TEXT_DETAIL_LIMIT])
        if len(rows) > TEXT_DETAIL_LIMIT:
            lines.append(f"... and {len(rows) - TEXT_DETAIL_LIMIT:,} more (--json lists them all)")

    section("Mismatches", ["customer", "currency", "partition", "expected", "found", "tx expected", "tx found", "in"],
            [[m.customer_id, m.currency, str(m.partition), str(m.expected), str(m.actual), str(m.expected_count),
              str(m.actual_count), m.source] for m in report.mismatches])
    section("Applied twice", ["customer", "partition", "tx expected", "tx found", "extra", "in"],
            [[c.customer_id, _partition_text(c.partition), str(c.expected), str(c.actual), str(c.difference),
              c.source] for c in report.applied_twice])
    section("Missed", ["customer", "partition", "tx expected", "tx found", "missed", "in"],
            [[c.customer_id, _partition_text(c.partition), str(c.expected), str(c.actual), str(-c.difference),
              c.source] for c in report.missed])
    section("Missing balances", ["customer", "currency", "partition", "expected", "looked in"],
            [[m.customer_id, m.currency, str(m.partition), str(m.expected), m.source] for m in report.missing])
    section("Balances not in the recomputation", ["customer", "currency", "partition", "found", "in"],
            [[u.customer_id, u.currency, _partition_text(u.partition), str(u.actual), u.source]
             for u in report.unexpected])
    section("Duplicates", ["customer", "currency", "files"],
            [[d.customer_id, d.currency, ", ".join(d.files)] for d in report.duplicates])
    for title, items in (("Problems", report.problems), ("Warnings", report.warnings)):
        if items:
            lines.extend(["", f"## {title}", "", *[f"- {visible(item)}" for item in items]])
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A Markdown table cell: control characters shown as escapes, `|` escaped."""
    return visible(text).replace("|", "\\|")


def _partition_text(partition: int | None) -> str:
    return "" if partition is None else str(partition)


def _partition_counts(counts: Mapping[int, int]) -> str:
    return " ".join(f"P{p}={n:,}" for p, n in sorted(counts.items()))


def _cutoff_text(cutoffs: Mapping[int, int | None]) -> str:
    if not cutoffs:
        return "no partitions"
    return " ".join(f"P{p}={'end' if o is None else o}" for p, o in sorted(cutoffs.items()))
