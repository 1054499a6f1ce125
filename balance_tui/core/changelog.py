"""The balance changelog: one record per applied transaction, the customer's full state after it.

Records go to the changelog partition with the number of the source partition, keyed by
customer id, in source-offset order. Produced by an idempotent producer, a changelog
partition is therefore always a prefix of what its owner applied, so the last record's
`offset` says how far the source partition was applied, and the latest record of each
customer is its state at that point (docs/consistency.md). Compaction keeps both facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote

from balance_tui.core.ledger import CustomerState

CHANGELOG_SUFFIX = ".balances-changelog"


def changelog_topic(group: str) -> str:
    """`balance-service.balances-changelog` for the group `balance-service`."""
    return f"{group}{CHANGELOG_SUFFIX}"


def encode_state(state: CustomerState) -> bytes:
    """The changelog value for one customer; balances as decimal strings.

    Built by hand rather than with `json.dumps`: it runs once per applied transaction,
    and this is three times faster (docs/performance.md). Every string goes through the
    JSON string encoder, so any customer id or account stays valid JSON.
    """
    quote = _quote
    balances = ",".join(f"{quote(currency)}:\"{amount}\"" for currency, amount in state.balances.items())
    accounts = ",".join(quote(account) for account in sorted(state.known_accounts))
    updated = f"\"{state.last_updated.isoformat()}\"" if state.last_updated else "null"
    partition = "null" if state.partition is None else state.partition
    offset = "null" if state.offset is None else state.offset
    return (
        f'{{"customerId":{quote(state.customer_id)},"balances":{{{balances}}},'
        f'"transactionCount":{state.transaction_count},"lastUpdated":{updated},'
        f'"lastTransactionId":{quote(state.last_transaction_id)},"knownAccounts":[{accounts}],'
        f'"partition":{partition},"offset":{offset}}}'
    ).encode()


def decode_state(raw: bytes) -> CustomerState:
    """The state in a changelog value; ValueError if it is not one."""
    try:
        data = json.loads(raw)
        updated = data["lastUpdated"]
        return CustomerState(
            customer_id=data["customerId"],
            balances={currency: Decimal(amount) for currency, amount in data["balances"].items()},
            transaction_count=int(data["transactionCount"]),
            last_updated=datetime.fromisoformat(updated) if updated else None,
            last_transaction_id=data["lastTransactionId"],
            known_accounts=set(data["knownAccounts"]),
            partition=data["partition"],
            offset=data["offset"],
        )
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as error:
        raise ValueError(f"not a changelog record: {error!r}") from None


@dataclass
class PartitionRestore:
    """Folds one changelog partition, read from the start, into the latest state per customer."""

    partition: int
    states: dict[str, CustomerState] = field(default_factory=dict)
    records: int = 0
    invalid: int = 0
    #: Highest source offset reflected by the records read so far (None: nothing applied yet).
    highest_offset: int | None = None

    def add(self, raw: bytes | None) -> None:
        self.records += 1
        if raw is None:
            return  # a tombstone: nothing to restore
        try:
            state = decode_state(raw)
        except ValueError:
            self.invalid += 1
            return
        known = self.states.get(state.customer_id)
        # Newest by source offset, not by log order: a record that a former owner's producer
        # delivered late must not win over what the new owner wrote since (the ledger is
        # deterministic, so records for the same offset hold the same state).
        if known is None or known.offset is None or state.offset is None or state.offset >= known.offset:
            self.states[state.customer_id] = state
        if state.offset is not None and (self.highest_offset is None or state.offset > self.highest_offset):
            self.highest_offset = state.offset

    @property
    def resume_offset(self) -> int | None:
        """Where the source partition resumes: right after the last applied transaction.

        None when the changelog holds nothing: then nothing was ever applied, and the
        source partition is read from its beginning.
        """
        return None if self.highest_offset is None else self.highest_offset + 1
