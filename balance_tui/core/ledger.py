"""Customer balances computed from transactions: the rule (`balance_delta`) and the state (`Ledger`).

The rule, with worked examples, is in docs/ledger.md. In short: Deposit credits; Payment,
Withdrawal, CardPayment and BillPayment debit; Transfer and InternationalTransfer debit when
`fromAccount` is one of the customer's known accounts, credit when `toAccount` is, change
nothing when both are, and debit when neither is (the customer initiated it). Failed and
Rejected transactions are skipped. The state depends only on the transactions and their
order (`lastUpdated` is the transaction's own timestamp), never on the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

import msgspec

from balance_tui.core.rows import BalanceRow
from balance_tui.core.transaction import Transaction, TransactionStatus, TransactionType

ZERO = Decimal("0.00")

#: `last_updated` shown for a state that has never applied a transaction (only built by hand).
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Effect(str, Enum):
    CREDIT = "credit"
    DEBIT = "debit"
    NONE = "none"
    SKIPPED = "skipped"
    #: Already reflected in the customer's state (restored from the changelog): not applied again.
    REPLAYED = "replayed"


_CREDIT, _DEBIT, _NONE, _SKIPPED, _REPLAYED = Effect.CREDIT, Effect.DEBIT, Effect.NONE, Effect.SKIPPED, Effect.REPLAYED

# Tables indexed by the enum's int value: hashing an Enum runs Python code, indexing doesn't.
# None in _FIXED_EFFECT means "depends on the accounts" (the two transfer types).
_FIXED_EFFECT: tuple[Effect | None, ...] = tuple(
    {
        TransactionType.DEPOSIT: _CREDIT,
        TransactionType.PAYMENT: _DEBIT,
        TransactionType.WITHDRAWAL: _DEBIT,
        TransactionType.CARD_PAYMENT: _DEBIT,
        TransactionType.BILL_PAYMENT: _DEBIT,
    }.get(value)  # type: ignore[call-overload]
    for value in range(len(TransactionType) + 1)
)
_IS_SKIPPED: tuple[bool, ...] = tuple(
    value in (TransactionStatus.FAILED, TransactionStatus.REJECTED) for value in range(len(TransactionStatus) + 1)
)


class CustomerState(msgspec.Struct, gc=False):
    """Everything the ledger knows about one customer.

    Out of the garbage collector's reach (`gc=False`: it holds no cycles, only strings, numbers and
    a dict of Decimals), and its known accounts a tuple, not a set: at a million customers every
    tracked object a customer keeps is walked by the young collections until it is old, and the
    ledger's two per customer (the state and its set of accounts) made most of them
    (docs/performance.md, "The dashboard at bank scale").
    """

    customer_id: str
    balances: dict[str, Decimal] = msgspec.field(default_factory=dict)
    transaction_count: int = 0
    last_updated: datetime | None = None
    last_transaction_id: str = ""
    #: In the order they were learned; a customer has a handful, so `in` is a short scan.
    known_accounts: tuple[str, ...] = ()
    partition: int | None = None
    offset: int | None = None

    def rows(self) -> list[BalanceRow]:
        """One row per currency, sorted by currency."""
        last_updated = self.last_updated or NEVER
        return [
            BalanceRow(
                customer_id=self.customer_id,
                currency=currency,
                balance=self.balances[currency],
                transaction_count=self.transaction_count,
                last_updated=last_updated,
                last_transaction_id=self.last_transaction_id,
                partition=self.partition,
            )
            for currency in sorted(self.balances)
        ]


def _effect(known_accounts: tuple[str, ...], tx: Transaction) -> Effect:
    """The rule itself, shared by `balance_delta` and `Ledger.apply`."""
    if _IS_SKIPPED[tx.status]:
        return _SKIPPED
    fixed = _FIXED_EFFECT[tx.type]
    if fixed is not None:
        return fixed
    if tx.from_account in known_accounts:
        return _NONE if tx.to_account in known_accounts else _DEBIT
    if tx.to_account in known_accounts:
        return _CREDIT
    # Neither account is known: the customer named on the transaction initiated it, so it pays.
    return _DEBIT


_NO_ACCOUNTS: tuple[str, ...] = ()


def balance_delta(state: CustomerState | None, tx: Transaction) -> tuple[Effect, Decimal]:
    """What `tx` does to its customer's balance in `tx.currency`, given the customer's state so far.

    Returns the effect and the signed change: +amount for a credit, -amount for a debit,
    0.00 for none or skipped. Pure: `state` is not modified.
    """
    effect = _effect(state.known_accounts if state is not None else _NO_ACCOUNTS, tx)
    if effect is _CREDIT:
        return effect, tx.amount
    if effect is _DEBIT:
        return effect, -tx.amount
    return effect, ZERO


class Ledger:
    """Balances per customer and currency, built by applying transactions in order."""

    __slots__ = ("applied", "customers", "replay_until", "replayed", "skipped")

    def __init__(self) -> None:
        self.customers: dict[str, CustomerState] = {}
        self.applied = 0
        self.skipped = 0
        self.replayed = 0
        #: Per partition, the offset below which restored states may already reflect what is read.
        self.replay_until: dict[int, int] = {}

    def apply(self, tx: Transaction, partition: int | None = None, offset: int | None = None) -> Effect:
        """Apply one transaction read at (`partition`, `offset`); return what it did.

        Failed and Rejected transactions change nothing and only count in `skipped`. The replay
        rule, on a partition read again after a restore (`restore`): a transaction at or below the
        source offset its customer's restored state reflects changes nothing either and counts in
        `replayed` (docs/consistency.md).
        """
        if _IS_SKIPPED[tx.status]:
            self.skipped += 1
            return _SKIPPED
        customer_id = tx.customer_id
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerState(customer_id)
        elif self.replay_until and offset is not None and state.offset is not None and offset <= state.offset \
                and state.partition == partition and offset < self.replay_until.get(partition, 0):  # type: ignore[arg-type]
            self.replayed += 1
            return _REPLAYED
        known_accounts = state.known_accounts
        effect = _effect(known_accounts, tx)
        balances = state.balances
        currency = tx.currency
        if effect is _CREDIT:
            balances[currency] = balances.get(currency, ZERO) + tx.amount
            if tx.to_account not in known_accounts:
                state.known_accounts = (*known_accounts, tx.to_account)
        elif effect is _DEBIT:
            balances[currency] = balances.get(currency, ZERO) - tx.amount
            if tx.from_account not in known_accounts:
                state.known_accounts = (*known_accounts, tx.from_account)
        elif currency not in balances:
            # A transfer between the customer's own accounts: no change, but the currency shows.
            balances[currency] = ZERO
        state.transaction_count += 1
        state.last_updated = tx.timestamp
        state.last_transaction_id = tx.transaction_id
        state.partition = partition
        state.offset = offset
        self.applied += 1
        return effect

    def balance(self, customer_id: str, currency: str) -> Decimal:
        """The customer's balance in `currency`; 0.00 when either is unknown."""
        state = self.customers.get(customer_id)
        if state is None:
            return ZERO
        return state.balances.get(currency, ZERO)

    def rows(self) -> list[BalanceRow]:
        """Every balance, sorted by (customer_id, currency)."""
        customers = self.customers
        return [row for customer_id in sorted(customers) for row in customers[customer_id].rows()]

    def rows_for(self, customer_ids: Iterable[str]) -> list[BalanceRow]:
        """The balances of the given customers (unknown ones ignored), sorted by (customer_id, currency)."""
        customers = self.customers
        wanted = sorted({customer_id for customer_id in customer_ids if customer_id in customers})
        return [row for customer_id in wanted for row in customers[customer_id].rows()]

    def restore(self, states: Iterable[CustomerState]) -> None:
        """Take over customers restored from the changelog (their partition moved here).

        Their partition is then read again from its last position: until it passes the highest
        offset a restored state reflects, the replay rule of `apply` keeps anything from being
        applied twice.
        """
        customers, replay_until = self.customers, self.replay_until
        for state in states:
            customers[state.customer_id] = state
            if state.partition is not None and state.offset is not None \
                    and state.offset >= replay_until.get(state.partition, 0):
                replay_until[state.partition] = state.offset + 1

    def drop_partition(self, partition: int) -> list[str]:
        """Forget the customers whose last applied transaction came from `partition`; return their ids, sorted.

        Used when a partition is revoked: its customers now belong to another consumer.
        """
        self.replay_until.pop(partition, None)
        dropped = sorted(
            customer_id for customer_id, state in self.customers.items() if state.partition == partition
        )
        for customer_id in dropped:
            del self.customers[customer_id]
        return dropped
