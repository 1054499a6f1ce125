"""The lab's transaction message: the object, parsing (never raises) and exact encoding.

The JSON shape is the lab producer's, field for field::

    {"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789",
     "amount":5000.00,"currency":"EUR","type":3,"description":"Depot initial",
     "customerId":"CUST-001","timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}

`parse_transaction` applies the rules of `balance_tui.core.transaction_model` (a pydantic
model, docs/ledger.md), which decides and words every rejection.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

import msgspec

from balance_tui.core.transaction_model import (
    CENT,
    FIELD_NAMES,
    MAX_AMOUNT,
    MIN_AMOUNT,
    Rejection,
    RejectionReason,
    TransactionModel,
    TransactionStatus,
    TransactionType,
    parse_with_model,
)

__all__ = [
    "CENT", "FIELD_NAMES", "MAX_AMOUNT", "MIN_AMOUNT", "Rejection", "RejectionReason", "Transaction",
    "TransactionStatus", "TransactionType", "encode_transaction", "parse_transaction", "parse_transaction_reference",
]


class Transaction(msgspec.Struct, frozen=True, gc=False):
    """One bank transaction, as `parse_transaction` returns it.

    Amounts are Decimal quantized to cents, timestamps in UTC (`timezone.utc`), currency
    upper-case, `type` and `status` enum members, identifiers free of control characters.
    `Transaction(...)` stores what it is given, unchecked, like any msgspec Struct;
    `Transaction.validated(...)` applies the message rules (and accepts ints, naive
    datetimes, lower-case currencies...).
    """

    transaction_id: str
    from_account: str
    to_account: str
    amount: Decimal
    currency: str
    type: TransactionType
    description: str
    customer_id: str
    timestamp: datetime
    risk_score: int
    status: TransactionStatus

    @classmethod
    def validated(cls, **fields: Any) -> Transaction:
        """A transaction from field names (or JSON names), by the reference rules; raises ValueError."""
        return _from_model(TransactionModel(**fields))

    def to_json_dict(self) -> dict[str, Any]:
        """The lab's JSON shape, ready for `json.dumps`.

        `amount` is the exact decimal string ("1200.00"), never a float, so any JSON
        encoder keeps it exact; `parse_transaction` accepts it back. `type` and `status`
        are integers, `timestamp` ISO 8601 UTC with a Z.
        """
        return {
            "transactionId": self.transaction_id,
            "fromAccount": self.from_account,
            "toAccount": self.to_account,
            "amount": str(self.amount),
            "currency": self.currency,
            "type": int(self.type),
            "description": self.description,
            "customerId": self.customer_id,
            "timestamp": _format_timestamp(self.timestamp),
            "riskScore": self.risk_score,
            "status": int(self.status),
        }


def _from_model(model: TransactionModel) -> Transaction:
    return Transaction(model.transaction_id, model.from_account, model.to_account, model.amount, model.currency,
                       model.type, model.description, model.customer_id, model.timestamp, model.risk_score,
                       model.status)


def _format_timestamp(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def encode_transaction(tx: Transaction) -> bytes:
    """The lab's JSON for `tx`, compact UTF-8, with the amount as an exact JSON number (1200.00)."""
    return (
        f'{{"transactionId":{encode_basestring(tx.transaction_id)},'
        f'"fromAccount":{encode_basestring(tx.from_account)},'
        f'"toAccount":{encode_basestring(tx.to_account)},'
        f'"amount":{tx.amount},'
        f'"currency":{encode_basestring(tx.currency)},'
        f'"type":{int(tx.type)},'
        f'"description":{encode_basestring(tx.description)},'
        f'"customerId":{encode_basestring(tx.customer_id)},'
        f'"timestamp":"{_format_timestamp(tx.timestamp)}",'
        f'"riskScore":{tx.risk_score},'
        f'"status":{int(tx.status)}}}'
    ).encode()


# -- parsing --------------------------------------------------------------------------------


def parse_transaction(raw: bytes | str | None) -> Transaction | Rejection:
    """A transaction from one message value, or why it is not one. Never raises."""
    return parse_transaction_reference(raw)


def parse_transaction_reference(raw: object) -> Transaction | Rejection:
    """What the reference rules make of `raw` (the pydantic model, slower). Never raises."""
    result = parse_with_model(raw)
    return result if isinstance(result, Rejection) else _from_model(result)
