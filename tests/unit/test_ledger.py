"""The ledger rule and state, including the lab's scenarios (see docs/ledger.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from balance_tui.core.ledger import CustomerState, Effect, Ledger, balance_delta
from balance_tui.core.rows import BalanceRow
from balance_tui.core.transaction import (
    Transaction,
    TransactionStatus,
    TransactionType,
    parse_transaction,
)

T0 = datetime(2026, 2, 8, 22, 0, tzinfo=UTC)
_ids = count(1)

DEBIT_TYPES = [
    TransactionType.PAYMENT,
    TransactionType.WITHDRAWAL,
    TransactionType.CARD_PAYMENT,
    TransactionType.BILL_PAYMENT,
]
TRANSFER_TYPES = [TransactionType.TRANSFER, TransactionType.INTERNATIONAL_TRANSFER]


def tx(
    type_: TransactionType,
    amount: str,
    from_account: str = "X",
    to_account: str = "Y",
    customer: str = "CUST-001",
    currency: str = "EUR",
    status: TransactionStatus = TransactionStatus.COMPLETED,
    minute: int = 0,
    transaction_id: str | None = None,
) -> Transaction:
    return Transaction.validated(
        transaction_id=transaction_id or f"T-{next(_ids)}",
        from_account=from_account,
        to_account=to_account,
        amount=Decimal(amount),
        currency=currency,
        type=type_,
        description="",
        customer_id=customer,
        timestamp=T0 + timedelta(minutes=minute),
        risk_score=0,
        status=status,
    )


def lab_message(body: str) -> Transaction:
    result = parse_transaction(body)
    assert isinstance(result, Transaction), result
    return result


# -- the lab's scenarios ----------------------------------------------------------------------


def test_lab_scenario_deposit_then_transfer_leaves_3800() -> None:
    ledger = Ledger()
    deposit = lab_message(
        '{"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789","amount":5000.00,'
        '"currency":"EUR","type":3,"description":"Depot initial","customerId":"CUST-001",'
        '"timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}'
    )
    transfer = lab_message(
        '{"transactionId":"BAL-002","fromAccount":"FR7630001000123456789","toAccount":"FR7630001000987654321",'
        '"amount":1200.00,"currency":"EUR","type":1,"description":"Virement loyer","customerId":"CUST-001",'
        '"timestamp":"2026-02-08T22:01:00Z","riskScore":0,"status":1}'
    )
    assert ledger.apply(deposit, partition=2, offset=10) is Effect.CREDIT
    assert ledger.apply(transfer, partition=2, offset=11) is Effect.DEBIT

    assert str(ledger.balance("CUST-001", "EUR")) == "3800.00"
    state = ledger.customers["CUST-001"]
    assert state.transaction_count == 2
    assert state.last_transaction_id == "BAL-002"
    assert state.last_updated == datetime(2026, 2, 8, 22, 1, tzinfo=UTC)
    assert (state.partition, state.offset) == (2, 11)
    assert ledger.rows() == [
        BalanceRow("CUST-001", "EUR", Decimal("3800.00"), 2, datetime(2026, 2, 8, 22, 1, tzinfo=UTC), "BAL-002", 2)
    ]
    assert str(ledger.rows()[0].balance) == "3800.00"


def _lab_transfer(customer: str, source: str, target: str, amount: str, description: str) -> Transaction:
    return lab_message(
        f'{{"transactionId":"{description}","fromAccount":"{source}","toAccount":"{target}","amount":{amount},'
        f'"currency":"EUR","type":1,"description":"{description}","customerId":"{customer}",'
        '"timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}'
    )


LAB_TRANSFERS_OUT_AND_IN = [
    ("CUST-001", "FR7630001000111111", "FR7630001000222222", "250.00", "Transfer out"),
    ("CUST-001", "FR7630001000333333", "FR7630001000111111", "100.00", "Transfer in"),
    ("CUST-002", "FR7630001000444444", "FR7630001000555555", "15000.00", "Large transfer"),
]


def test_lab_transfer_out_then_in_gives_minus_150() -> None:
    ledger = Ledger()
    effects = [ledger.apply(_lab_transfer(*args)) for args in LAB_TRANSFERS_OUT_AND_IN]
    assert effects == [Effect.DEBIT, Effect.CREDIT, Effect.DEBIT]
    assert str(ledger.balance("CUST-001", "EUR")) == "-150.00"
    assert str(ledger.balance("CUST-002", "EUR")) == "-15000.00"


def test_the_labs_naive_code_would_give_350_and_15000() -> None:
    """docs/ledger.md explains the difference; this pins the lab's numbers it quotes."""

    def lab_get_balance_change(transaction: Transaction) -> Decimal:
        # The lab's GetBalanceChange: Deposit or positive Transfer credit; three types debit; the rest credit.
        if transaction.type in (TransactionType.DEPOSIT, TransactionType.TRANSFER) and transaction.amount > 0:
            return transaction.amount
        if transaction.type in (TransactionType.WITHDRAWAL, TransactionType.CARD_PAYMENT,
                                TransactionType.BILL_PAYMENT):
            return -transaction.amount
        return transaction.amount

    totals: dict[str, Decimal] = {}
    for args in LAB_TRANSFERS_OUT_AND_IN:
        transaction = _lab_transfer(*args)
        totals[transaction.customer_id] = totals.get(transaction.customer_id, Decimal(0)) + lab_get_balance_change(
            transaction
        )
    assert totals == {"CUST-001": Decimal("350"), "CUST-002": Decimal("15000")}


# -- the rule -----------------------------------------------------------------------------------


def test_deposit_credits() -> None:
    ledger = Ledger()
    assert ledger.apply(tx(TransactionType.DEPOSIT, "10.00")) is Effect.CREDIT
    assert ledger.balance("CUST-001", "EUR") == Decimal("10.00")


@pytest.mark.parametrize("type_", DEBIT_TYPES)
def test_payments_and_withdrawals_debit(type_: TransactionType) -> None:
    ledger = Ledger()
    assert ledger.apply(tx(type_, "10.00")) is Effect.DEBIT
    assert str(ledger.balance("CUST-001", "EUR")) == "-10.00"


@pytest.mark.parametrize("type_", DEBIT_TYPES)
def test_debits_ignore_known_accounts(type_: TransactionType) -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="MINE"))
    assert ledger.apply(tx(type_, "10", from_account="OTHER", to_account="MINE")) is Effect.DEBIT
    assert ledger.balance("CUST-001", "EUR") == Decimal("90.00")


@pytest.mark.parametrize("type_", TRANSFER_TYPES)
@pytest.mark.parametrize(
    ("source", "target", "effect", "balance"),
    [
        ("MINE", "THEIRS", Effect.DEBIT, "90.00"),     # from a known account: money leaves
        ("THEIRS", "MINE", Effect.CREDIT, "110.00"),   # to a known account: money arrives
        ("MINE", "ALSO-MINE", Effect.NONE, "100.00"),  # between own accounts: nothing moves
        ("THEIRS", "ELSEWHERE", Effect.DEBIT, "90.00"),  # neither: the initiator pays
    ],
)
def test_transfers_follow_the_known_accounts(
    type_: TransactionType, source: str, target: str, effect: Effect, balance: str
) -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="MINE"))
    ledger.apply(tx(TransactionType.DEPOSIT, "0.01", to_account="ALSO-MINE"))
    ledger.apply(tx(TransactionType.WITHDRAWAL, "0.01", from_account="ALSO-MINE"))
    assert ledger.apply(tx(type_, "10", from_account=source, to_account=target)) is effect
    assert str(ledger.balance("CUST-001", "EUR")) == balance


def test_first_transfer_of_an_unknown_customer_debits() -> None:
    ledger = Ledger()
    assert ledger.apply(tx(TransactionType.TRANSFER, "5", from_account="A", to_account="B")) is Effect.DEBIT
    assert ledger.customers["CUST-001"].known_accounts == ("A",)


def test_known_accounts_are_learned_from_credits_and_debits() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", from_account="BANK", to_account="CHECKING"))
    ledger.apply(tx(TransactionType.CARD_PAYMENT, "5", from_account="CARD", to_account="SHOP"))
    ledger.apply(tx(TransactionType.TRANSFER, "7", from_account="SOMEONE", to_account="CHECKING"))  # credit
    ledger.apply(tx(TransactionType.TRANSFER, "9", from_account="SAVINGS", to_account="LANDLORD"))  # debit
    ledger.apply(tx(TransactionType.TRANSFER, "1", from_account="CHECKING", to_account="CARD"))  # none
    # Each account once, in the order learned.
    assert ledger.customers["CUST-001"].known_accounts == ("CHECKING", "CARD", "SAVINGS")
    # "SAVINGS" was learned from the debit, so money sent to it now arrives.
    assert ledger.apply(tx(TransactionType.TRANSFER, "3", from_account="MUM", to_account="SAVINGS")) is Effect.CREDIT
    assert ledger.balance("CUST-001", "EUR") == Decimal("96.00")


def test_known_accounts_are_per_customer() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="SHARED", customer="CUST-A"))
    assert ledger.apply(tx(TransactionType.TRANSFER, "10", from_account="X", to_account="SHARED",
                           customer="CUST-B")) is Effect.DEBIT


@pytest.mark.parametrize("status", [TransactionStatus.FAILED, TransactionStatus.REJECTED])
def test_failed_and_rejected_change_nothing(status: TransactionStatus) -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="MINE", transaction_id="T-OK"), 0, 1)
    before = ledger.customers["CUST-001"]
    snapshot = (dict(before.balances), before.transaction_count, before.last_transaction_id,
                before.known_accounts, before.offset)

    assert ledger.apply(tx(TransactionType.DEPOSIT, "50", to_account="NEW", status=status), 0, 2) is Effect.SKIPPED
    assert ledger.apply(tx(TransactionType.WITHDRAWAL, "50", from_account="MINE", status=status), 0, 3) is (
        Effect.SKIPPED
    )
    assert ledger.apply(tx(TransactionType.DEPOSIT, "50", customer="CUST-NEW", status=status)) is Effect.SKIPPED

    after = ledger.customers["CUST-001"]
    assert (dict(after.balances), after.transaction_count, after.last_transaction_id,
            after.known_accounts, after.offset) == snapshot
    assert "CUST-NEW" not in ledger.customers
    assert (ledger.applied, ledger.skipped) == (1, 3)


@pytest.mark.parametrize(
    "status", [TransactionStatus.PENDING, TransactionStatus.PROCESSING, TransactionStatus.COMPLETED]
)
def test_pending_processing_and_completed_are_applied(status: TransactionStatus) -> None:
    ledger = Ledger()
    assert ledger.apply(tx(TransactionType.DEPOSIT, "1", status=status)) is Effect.CREDIT
    assert (ledger.applied, ledger.skipped) == (1, 0)


def test_own_account_transfer_counts_but_moves_nothing() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="A", minute=0))
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="B", minute=1))
    assert ledger.apply(tx(TransactionType.TRANSFER, "30", from_account="A", to_account="B", minute=2,
                           transaction_id="OWN"), 4, 40) is Effect.NONE
    state = ledger.customers["CUST-001"]
    assert state.balances == {"EUR": Decimal("200.00")}
    assert state.transaction_count == 3
    assert state.last_transaction_id == "OWN"
    assert state.last_updated == T0 + timedelta(minutes=2)
    assert (state.partition, state.offset) == (4, 40)
    assert ledger.applied == 3


# -- currencies and numbers ----------------------------------------------------------------------


def test_currencies_are_never_added_together() -> None:
    """The 'several currencies' example of docs/ledger.md."""
    ledger = Ledger()
    effects = [
        ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="A", customer="CUST-003", currency="EUR")),
        ledger.apply(tx(TransactionType.DEPOSIT, "50", to_account="B", customer="CUST-003", currency="USD")),
        ledger.apply(tx(TransactionType.CARD_PAYMENT, "30", from_account="B", customer="CUST-003", currency="USD")),
        ledger.apply(tx(TransactionType.TRANSFER, "10", from_account="A", to_account="B", customer="CUST-003",
                        currency="GBP")),
        ledger.apply(tx(TransactionType.WITHDRAWAL, "20", from_account="A", customer="CUST-003", currency="EUR",
                        status=TransactionStatus.FAILED)),
    ]
    assert effects == [Effect.CREDIT, Effect.CREDIT, Effect.DEBIT, Effect.NONE, Effect.SKIPPED]
    assert [(row.currency, str(row.balance)) for row in ledger.rows()] == [
        ("EUR", "100.00"), ("GBP", "0.00"), ("USD", "20.00"),
    ]
    assert {row.transaction_count for row in ledger.rows()} == {4}
    assert (ledger.applied, ledger.skipped) == (4, 1)


def test_balances_are_decimal_with_two_places() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "0.1"))
    ledger.apply(tx(TransactionType.DEPOSIT, "0.2"))
    balance = ledger.balance("CUST-001", "EUR")
    assert type(balance) is Decimal and str(balance) == "0.30"  # not 0.30000000000000004
    ledger.apply(tx(TransactionType.PAYMENT, "0.30"))
    assert str(ledger.balance("CUST-001", "EUR")) == "0.00"


def test_unknown_balance_is_zero() -> None:
    ledger = Ledger()
    assert str(ledger.balance("NOBODY", "EUR")) == "0.00"
    ledger.apply(tx(TransactionType.DEPOSIT, "1"))
    assert str(ledger.balance("CUST-001", "USD")) == "0.00"


# -- the pure rule -------------------------------------------------------------------------------


def test_balance_delta_is_signed_and_pure() -> None:
    state = CustomerState("CUST-001", known_accounts=("MINE",))
    assert balance_delta(state, tx(TransactionType.DEPOSIT, "5")) == (Effect.CREDIT, Decimal("5.00"))
    assert balance_delta(state, tx(TransactionType.BILL_PAYMENT, "5")) == (Effect.DEBIT, Decimal("-5.00"))
    assert balance_delta(state, tx(TransactionType.TRANSFER, "5", "X", "MINE")) == (Effect.CREDIT, Decimal("5.00"))
    assert balance_delta(state, tx(TransactionType.TRANSFER, "5", "MINE", "MINE")) == (Effect.NONE, Decimal("0.00"))
    assert balance_delta(None, tx(TransactionType.TRANSFER, "5", "X", "MINE")) == (Effect.DEBIT, Decimal("-5.00"))
    failed = tx(TransactionType.DEPOSIT, "5", status=TransactionStatus.FAILED)
    assert balance_delta(state, failed) == (Effect.SKIPPED, Decimal("0.00"))
    assert state == CustomerState("CUST-001", known_accounts=("MINE",))


# -- rows and partitions -------------------------------------------------------------------------


def _busy_ledger() -> Ledger:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "3", customer="CUST-B", currency="USD"), 1, 5)
    ledger.apply(tx(TransactionType.DEPOSIT, "1", customer="CUST-A", currency="EUR"), 0, 7)
    ledger.apply(tx(TransactionType.DEPOSIT, "2", customer="CUST-B", currency="EUR"), 1, 6)
    ledger.apply(tx(TransactionType.DEPOSIT, "4", customer="CUST-C", currency="CHF"), 0, 8)
    return ledger


def test_rows_are_sorted_by_customer_then_currency() -> None:
    rows = _busy_ledger().rows()
    assert [(row.customer_id, row.currency, str(row.balance), row.partition) for row in rows] == [
        ("CUST-A", "EUR", "1.00", 0),
        ("CUST-B", "EUR", "2.00", 1),
        ("CUST-B", "USD", "3.00", 1),
        ("CUST-C", "CHF", "4.00", 0),
    ]
    assert rows[1].transaction_count == rows[2].transaction_count == 2


def test_rows_for_some_customers() -> None:
    ledger = _busy_ledger()
    rows = ledger.rows_for(["CUST-C", "NOBODY", "CUST-B", "CUST-C"])
    assert [(row.customer_id, row.currency) for row in rows] == [("CUST-B", "EUR"), ("CUST-B", "USD"),
                                                                  ("CUST-C", "CHF")]
    assert ledger.rows_for([]) == []
    assert ledger.rows_for(iter(["CUST-A"])) == ledger.customers["CUST-A"].rows()


def test_drop_partition_forgets_its_customers() -> None:
    ledger = _busy_ledger()
    assert ledger.drop_partition(0) == ["CUST-A", "CUST-C"]
    assert list(ledger.customers) == ["CUST-B"]
    assert ledger.drop_partition(0) == []
    assert ledger.drop_partition(9) == []
    assert str(ledger.balance("CUST-A", "EUR")) == "0.00"
    assert (ledger.applied, ledger.skipped) == (4, 0)  # counters are history, not state


def test_drop_partition_uses_the_last_partition_seen() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "1"), 0, 1)
    ledger.apply(tx(TransactionType.DEPOSIT, "1"), 3, 1)
    assert ledger.drop_partition(0) == []
    assert ledger.drop_partition(3) == ["CUST-001"]


def test_a_dropped_customer_starts_again_from_nothing() -> None:
    ledger = Ledger()
    ledger.apply(tx(TransactionType.DEPOSIT, "100", to_account="MINE"), 0, 1)
    ledger.drop_partition(0)
    assert ledger.apply(tx(TransactionType.TRANSFER, "10", from_account="X", to_account="MINE"), 0, 2) is Effect.DEBIT
    assert ledger.customers["CUST-001"].transaction_count == 1


def test_state_rows_without_any_transaction_still_have_a_date() -> None:
    state = CustomerState("CUST-X", balances={"EUR": Decimal("0.00")})
    (row,) = state.rows()
    assert row.last_updated.tzinfo is not None and row.partition is None


def test_after_a_restore_transactions_its_states_reflect_are_not_applied_again():
    ledger = Ledger()
    ledger.restore([CustomerState("CUST-1", {"EUR": Decimal("10.00")}, 3, T0, "T3", set(), 2, 41)])
    deposit = tx(TransactionType.DEPOSIT, "5.00", customer="CUST-1")
    assert ledger.apply(deposit, 2, 40) is Effect.REPLAYED  # at or below offset 41: already in the state
    assert ledger.apply(deposit, 2, 41) is Effect.REPLAYED
    assert ledger.balance("CUST-1", "EUR") == Decimal("10.00") and ledger.replayed == 2 and ledger.applied == 0
    assert ledger.apply(deposit, 2, 42) is Effect.CREDIT  # past it: applied
    assert ledger.customers["CUST-1"].transaction_count == 4
    # Offsets of another partition say nothing about this state; without a restore there is no replay.
    assert ledger.apply(tx(TransactionType.DEPOSIT, "1.00", customer="CUST-1"), 5, 3) is Effect.CREDIT
    fresh = Ledger()
    fresh.apply(deposit, 0, 9)
    assert fresh.apply(deposit, 0, 9) is Effect.CREDIT


def test_dropping_a_partition_ends_its_replay_window():
    ledger = Ledger()
    ledger.restore([CustomerState("CUST-1", {"EUR": Decimal("10.00")}, 3, T0, "T3", set(), 2, 41)])
    assert ledger.replay_until == {2: 42}
    ledger.drop_partition(2)
    assert ledger.replay_until == {}
