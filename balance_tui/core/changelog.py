"""The balance changelog: the latest state of each customer that changed, written once per flush.

A flush writes, to the changelog partition numbered like the source partition and keyed by
customer id, one record per customer changed since the previous flush (its full state and the
source `offset` of the last transaction it reflects), then one *position* record saying up to
which source offset the flush covers. docs/consistency.md has the rules and why they hold:

- restore keeps, per customer, the state with the highest source offset;
- a partition resumes right after the last position record, and a transaction at or below its
  customer's restored offset is not applied again (`Ledger.apply`'s replay rule), which makes
  records beyond the last position (a flush cut short) harmless;
- a record whose offset is lower than an earlier record of the same customer is a writer that
  was not fenced (`PartitionRestore.backwards`): `verify` reports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote

import msgspec

from balance_tui.core.ledger import CustomerState

CHANGELOG_SUFFIX = ".balances-changelog"

#: The key of a partition's position records. It starts with a control character, which no
#: customer id can hold (the parser rejects them, docs/ledger.md), so compaction never merges
#: a position with a customer's state.
POSITION_KEY = "\x00position"
_POSITION_PREFIX = b'{"position":'


def changelog_topic(group: str) -> str:
    """`balance-service.balances-changelog` for the group `balance-service`."""
    return f"{group}{CHANGELOG_SUFFIX}"


def encode_state(state: CustomerState) -> bytes:
    """The changelog value for one customer; balances as decimal strings, currencies sorted, accounts as learned.

    msgspec writes it from the same typed record the restore reads (`_StateRecord`): a flush
    encodes every customer changed in the last second, and this takes a fifth of the time of
    the string template it replaced (docs/performance.md).
    """
    return _encode_record(_StateRecord(state.customer_id, state.balances, state.transaction_count, state.last_updated,
                                       state.last_transaction_id, state.known_accounts,  # type: ignore[arg-type]
                                       state.partition, state.offset))


def encode_position(offset: int, writer: str) -> bytes:
    """The value of a position record: every change up to source `offset` is in the records before it."""
    return b'{"position":%d,"writer":%s}' % (offset, _quote(writer).encode())


def decode_position(raw: bytes) -> int | None:
    """The offset of a position record; None if `raw` is not one."""
    if not raw.startswith(_POSITION_PREFIX):
        return None
    try:
        offset = json.loads(raw)["position"]
    except (ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and not isinstance(offset, bool) else None


class _StateRecord(msgspec.Struct, rename="camel"):
    """A changelog value as msgspec reads it: typed, so amounts arrive as exact Decimals."""

    customer_id: str
    balances: dict[str, Decimal]
    transaction_count: int
    last_updated: datetime | None
    last_transaction_id: str
    known_accounts: list[str]
    partition: int | None
    offset: int | None


_decode_record = msgspec.json.Decoder(_StateRecord).decode
#: Deterministic: dict keys sorted, accounts in the order learned, so one state is always the same bytes.
_encode_record = msgspec.json.Encoder(decimal_format="string", order="deterministic").encode


def decode_state(raw: bytes) -> CustomerState:
    """The state in a changelog value; ValueError if it is not one.

    A restore decodes one per record, a million for a big partition: the typed msgspec reading
    takes about a fifth of `json.loads` and the conversions (docs/performance.md); what it refuses
    gets the exact reading below, which decides.
    """
    try:
        record = _decode_record(raw)
    except (msgspec.DecodeError, ValueError):
        return _decode_state_exactly(raw)
    return CustomerState(record.customer_id, record.balances, record.transaction_count, record.last_updated,
                         record.last_transaction_id, tuple(record.known_accounts), record.partition, record.offset)


def _decode_state_exactly(raw: bytes) -> CustomerState:
    try:
        data = json.loads(raw)
        updated = data["lastUpdated"]
        return CustomerState(
            customer_id=data["customerId"],
            balances={currency: Decimal(amount) for currency, amount in data["balances"].items()},
            transaction_count=int(data["transactionCount"]),
            last_updated=datetime.fromisoformat(updated) if updated else None,
            last_transaction_id=data["lastTransactionId"],
            known_accounts=tuple(data["knownAccounts"]),
            partition=data["partition"],
            offset=data["offset"],
        )
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as error:
        raise ValueError(f"not a changelog record: {error!r}") from None


@dataclass(frozen=True)
class Backwards:
    """A record older than one read before it for the same key: the signature of an unfenced writer."""

    key: str
    offset: int
    after_offset: int
    record: int


@dataclass
class PartitionRestore:
    """Folds one changelog partition, read from the start, into the latest state per customer."""

    partition: int
    states: dict[str, CustomerState] = field(default_factory=dict)
    records: int = 0
    invalid: int = 0
    #: Highest source offset reflected by the customer records read so far (None: none yet).
    highest_offset: int | None = None
    #: The highest position record read (None: no flush was completed yet).
    position: int | None = None
    #: Records that went back in source offset (first few kept; `backwards_count` counts them all).
    backwards: list[Backwards] = field(default_factory=list)
    backwards_count: int = 0

    def add(self, raw: bytes | None) -> None:
        self.records += 1
        if raw is None:
            return  # a tombstone: nothing to restore
        position = decode_position(raw)
        if position is not None:
            if self.position is not None and position < self.position:
                self._went_back(POSITION_KEY, position, self.position)
            else:
                self.position = position
            return
        try:
            state = decode_state(raw)
        except ValueError:
            self.invalid += 1
            return
        known = self.states.get(state.customer_id)
        # Newest by source offset: with fencing it is also the newest in log order (what compaction
        # keeps); a record that is older than one before it is reported, never restored.
        if known is None or known.offset is None or state.offset is None or state.offset >= known.offset:
            self.states[state.customer_id] = state
        else:
            self._went_back(state.customer_id, state.offset, known.offset)
        if state.offset is not None and (self.highest_offset is None or state.offset > self.highest_offset):
            self.highest_offset = state.offset

    def _went_back(self, key: str, offset: int, after_offset: int) -> None:
        self.backwards_count += 1
        if len(self.backwards) < 10:
            self.backwards.append(Backwards(key, offset, after_offset, self.records))

    @property
    def resume_offset(self) -> int | None:
        """Up to where (exclusive) the changelog vouches for every customer: `verify` compares up to here.

        Right after the last position record; without one, right after the highest record (a
        changelog of one record per transaction, as older versions wrote it, covers everything up
        to its last record). None when the changelog holds nothing.
        """
        if self.position is not None:
            return self.position + 1
        return None if self.highest_offset is None else self.highest_offset + 1

    @property
    def consume_from(self) -> int | None:
        """Where the new owner resumes the source partition: right after the last completed flush.

        None (the beginning) without a position record: records without one may be a flush cut
        short, which vouches for the customers it holds but not for the others. Records beyond
        the position are harmless either way: the replay rule of `Ledger.apply` skips every
        transaction at or below its customer's restored offset.
        """
        return None if self.position is None else self.position + 1
