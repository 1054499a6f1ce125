"""Properties of parsing and of the ledger, checked with hypothesis."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balance_tui.core.ledger import Effect, Ledger, balance_delta
from balance_tui.core.transaction import (
    Rejection,
    Transaction,
    TransactionStatus,
    TransactionType,
    encode_transaction,
    parse_transaction,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

amounts = st.integers(min_value=1, max_value=100_000_000).map(lambda cents: Decimal(cents).scaleb(-2))
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
currencies = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
texts = st.text(max_size=30)
# Identifiers refuse control characters (categories Cc and Cf) and lone surrogates (Cs).
identifiers = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs")), max_size=30)


@st.composite
def any_transaction(draw: st.DrawFn) -> Transaction:
    """Any valid transaction: arbitrary text, the whole amount range, any instant."""
    return Transaction.validated(
        transaction_id=draw(identifiers),
        from_account=draw(identifiers),
        to_account=draw(identifiers),
        amount=draw(amounts),
        currency=draw(currencies),
        type=draw(st.sampled_from(TransactionType)),
        description=draw(texts),
        customer_id=draw(identifiers.filter(bool)),
        timestamp=draw(timestamps),
        risk_score=draw(st.integers(min_value=-(2**31), max_value=2**31 - 1)),
        status=draw(st.sampled_from(TransactionStatus)),
    )


@st.composite
def ledger_transaction(draw: st.DrawFn) -> Transaction:
    """A transaction among few customers, accounts and currencies, so that rules interact."""
    return Transaction.validated(
        transaction_id=f"T-{draw(st.integers(0, 10**6))}",
        from_account=draw(st.sampled_from(["A1", "A2", "A3", "B1", "BANK"])),
        to_account=draw(st.sampled_from(["A1", "A2", "A3", "B1", "SHOP"])),
        amount=draw(st.integers(1, 100_000).map(lambda cents: Decimal(cents).scaleb(-2))),
        currency=draw(st.sampled_from(["EUR", "USD", "GBP"])),
        type=draw(st.sampled_from(TransactionType)),
        description="",
        customer_id=draw(st.sampled_from(["CUST-1", "CUST-2", "CUST-3"])),
        timestamp=draw(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1),
                                    timezones=st.just(UTC))),
        risk_score=0,
        status=draw(st.sampled_from(TransactionStatus)),
    )


histories = st.lists(st.tuples(ledger_transaction(), st.integers(0, 5), st.integers(0, 10**6)), max_size=40)


# -- the ledger -----------------------------------------------------------------------------------


@FAST
@given(histories)
def test_same_transactions_same_order_same_state(history: list[tuple[Transaction, int, int]]) -> None:
    first, second = Ledger(), Ledger()
    for transaction, partition, offset in history:
        first.apply(transaction, partition, offset)
    for transaction, partition, offset in history:
        second.apply(transaction, partition, offset)
    assert first.customers == second.customers
    assert first.rows() == second.rows()
    assert (first.applied, first.skipped) == (second.applied, second.skipped)


@FAST
@given(histories)
def test_balance_is_credits_minus_debits(history: list[tuple[Transaction, int, int]]) -> None:
    ledger = Ledger()
    expected: dict[tuple[str, str], Decimal] = {}
    skipped = 0
    for transaction, partition, offset in history:
        state = ledger.customers.get(transaction.customer_id)
        predicted = balance_delta(state, transaction)
        effect = ledger.apply(transaction, partition, offset)
        assert effect is predicted[0]  # the pure rule and the ledger agree
        assert (effect is Effect.SKIPPED) == (
            transaction.status in (TransactionStatus.FAILED, TransactionStatus.REJECTED)
        )
        key = (transaction.customer_id, transaction.currency)
        if effect is Effect.CREDIT:
            expected[key] = expected.get(key, Decimal(0)) + transaction.amount
        elif effect is Effect.DEBIT:
            expected[key] = expected.get(key, Decimal(0)) - transaction.amount
        elif effect is Effect.NONE:
            expected.setdefault(key, Decimal(0))
        else:
            skipped += 1

    actual = {(row.customer_id, row.currency): row.balance for row in ledger.rows()}
    assert actual == expected
    for balance in actual.values():
        assert type(balance) is Decimal and balance.as_tuple().exponent == -2
    assert (ledger.applied, ledger.skipped) == (len(history) - skipped, skipped)
    assert sum(state.transaction_count for state in ledger.customers.values()) == ledger.applied


# -- parsing ------------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_parse_never_raises_on_bytes(raw: bytes) -> None:
    assert isinstance(parse_transaction(raw), (Transaction, Rejection))


@FAST
@given(st.text(max_size=400))
def test_parse_never_raises_on_text(raw: str) -> None:
    assert isinstance(parse_transaction(raw), (Transaction, Rejection))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(["NaN", "Infinity", "Deposit", "failed", "EUR", "2026-02-08T22:00:00Z"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@FAST
@given(any_transaction(), st.dictionaries(
    st.sampled_from(["transactionId", "fromAccount", "toAccount", "amount", "currency", "type", "description",
                     "customerId", "timestamp", "riskScore", "status", "extra"]),
    json_values, max_size=4,
), st.sets(st.sampled_from(["amount", "type", "customerId", "timestamp"]), max_size=2))
def test_parse_never_raises_on_damaged_transactions(
    transaction: Transaction, replacements: dict[str, object], removed: set[str]
) -> None:
    document = transaction.to_json_dict() | replacements
    for name in removed:
        document.pop(name, None)
    raw = json.dumps(document, allow_nan=True)  # NaN and Infinity literals included
    result = parse_transaction(raw)
    assert isinstance(result, (Transaction, Rejection))
    assert isinstance(parse_transaction(raw.encode()), type(result))


@FAST
@given(any_transaction())
def test_encode_then_parse_is_identity(transaction: Transaction) -> None:
    assert parse_transaction(encode_transaction(transaction)) == transaction
    assert parse_transaction(json.dumps(transaction.to_json_dict())) == transaction
