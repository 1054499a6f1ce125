"""The lab's transaction message: model, parsing (never raises) and exact encoding.

The JSON shape is the lab producer's, field for field::

    {"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789",
     "amount":5000.00,"currency":"EUR","type":3,"description":"Depot initial",
     "customerId":"CUST-001","timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}

`parse_transaction` is on the consumer's hot path. Well-formed messages take the fast
path: one `Transaction.model_validate_json` call whose checks run in pydantic-core, plus a
single Python after-validator. Anything else (type or status given by name, bad input of
any kind) takes the slow path, which re-reads the message exactly and says what is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum
from json.encoder import encode_basestring
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError, core_schema

UTC = timezone.utc

CENT = Decimal("0.01")
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000")

# C#'s `int`, the lab model's type for riskScore.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class TransactionType(IntEnum):
    TRANSFER = 1
    PAYMENT = 2
    DEPOSIT = 3
    WITHDRAWAL = 4
    CARD_PAYMENT = 5
    INTERNATIONAL_TRANSFER = 6
    BILL_PAYMENT = 7


class TransactionStatus(IntEnum):
    PENDING = 1
    PROCESSING = 2
    COMPLETED = 3
    FAILED = 4
    REJECTED = 5


def _name_key(name: str) -> str:
    # "CardPayment", "cardpayment" and "CARD_PAYMENT" all name the same member.
    return name.replace("_", "").lower()


_TYPE_BY_NAME = {_name_key(member.name): member for member in TransactionType}
_STATUS_BY_NAME = {_name_key(member.name): member for member in TransactionStatus}

# Indexed by value: converting an int to a member without Enum.__call__, which is slow.
_TYPE_BY_VALUE: tuple[TransactionType, ...] = (TransactionType.TRANSFER, *TransactionType)
_STATUS_BY_VALUE: tuple[TransactionStatus, ...] = (TransactionStatus.PENDING, *TransactionStatus)


def _strict_int_between(low: int, high: int) -> GetPydanticSchema:
    # Validated in pydantic-core as a plain int (rejects true, 1.0 and "1"); the
    # after-validator turns it into the enum member.
    return GetPydanticSchema(lambda _type, _handler: core_schema.int_schema(strict=True, ge=low, le=high))


# Messages must carry an ISO 8601 string (no Unix numbers, no bare dates); Python callers
# may pass a datetime or a string, so `model_validate(tx.to_json_dict())` works too.
_TIMESTAMP_SCHEMA = GetPydanticSchema(
    lambda _type, _handler: core_schema.json_or_python_schema(
        json_schema=core_schema.datetime_schema(strict=True),
        python_schema=core_schema.datetime_schema(),
    )
)

# pydantic-core hands out one cached tzinfo for "Z" / "+00:00": already UTC, keep it as is.
_PYDANTIC_UTC = TypeAdapter(datetime).validate_json('"2000-01-01T00:00:00Z"').tzinfo


class Transaction(BaseModel):
    """One bank transaction as the lab's producer writes it.

    Amounts are Decimal quantized to cents, timestamps timezone-aware UTC (a naive
    timestamp is taken as UTC), currency upper-case. Built by field name or alias;
    `type` and `status` take members or ints (names are read by `parse_transaction`).
    `model_copy(update=...)` and `model_construct` skip these checks.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    transaction_id: str = Field(alias="transactionId", strict=True)
    from_account: str = Field(alias="fromAccount", strict=True)
    to_account: str = Field(alias="toAccount", strict=True)
    # Range and cents are checked in `_normalise`: pydantic's Decimal constraints cost more.
    amount: Decimal
    currency: str = Field(strict=True, pattern=r"^[A-Za-z]{3}$")
    type: Annotated[TransactionType, _strict_int_between(1, len(TransactionType))]
    description: str = Field(strict=True)
    customer_id: str = Field(alias="customerId", strict=True, min_length=1)
    timestamp: Annotated[datetime, _TIMESTAMP_SCHEMA]
    risk_score: int = Field(alias="riskScore", strict=True, ge=_INT32_MIN, le=_INT32_MAX)
    status: Annotated[TransactionStatus, _strict_int_between(1, len(TransactionStatus))]

    @model_validator(mode="after")
    def _normalise(self) -> Transaction:
        # One Python hook for every fix-up: each extra validator costs a call per message.
        values = self.__dict__
        amount = values["amount"]
        if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            raise PydanticCustomError("amount_out_of_range", "amount must be between 0.01 and 1,000,000")
        # pydantic reads JSON 5000.00 as Decimal('5000'): quantizing restores the cents.
        cents = amount.quantize(CENT)
        if cents != amount:
            raise PydanticCustomError("amount_decimal_places", "amount has more than 2 decimal places")
        values["amount"] = cents
        timestamp = values["timestamp"]
        tz = timestamp.tzinfo
        if tz is not _PYDANTIC_UTC and tz is not UTC:
            try:
                values["timestamp"] = timestamp.replace(tzinfo=UTC) if tz is None else timestamp.astimezone(UTC)
            except OverflowError:
                raise PydanticCustomError("timestamp_out_of_range", "out of range once converted to UTC") from None
        currency = values["currency"]
        if not currency.isupper():
            values["currency"] = currency.upper()
        values["type"] = _TYPE_BY_VALUE[values["type"]]
        values["status"] = _STATUS_BY_VALUE[values["status"]]
        return self

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


# -- rejections -----------------------------------------------------------------------------


class RejectionReason(str, Enum):
    NOT_UTF8 = "not UTF-8"
    INVALID_JSON = "invalid JSON"
    MISSING_FIELD = "missing field"
    INVALID_FIELD = "invalid field"
    AMOUNT_OUT_OF_RANGE = "amount out of range"
    UNKNOWN_TYPE = "unknown type"
    UNKNOWN_STATUS = "unknown status"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is not a transaction; `str()` gives e.g. "missing field: customerId"."""

    reason: RejectionReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


# -- parsing --------------------------------------------------------------------------------

#: JSON names in the lab's order; also the order in which missing fields are reported.
FIELD_NAMES: tuple[str, ...] = (
    "transactionId", "fromAccount", "toAccount", "amount", "currency", "type",
    "description", "customerId", "timestamp", "riskScore", "status",
)
# Python field name or JSON name -> JSON name, to word errors as the message does.
_JSON_NAME = {
    key: info.alias or name
    for name, info in Transaction.model_fields.items()
    for key in (name, info.alias or name)
}

# pydantic reads JSON numbers through a double, which is exact only up to 15 significant
# digits: a longer amount literal (say 0.0100000000000000001) could hide extra decimal
# places, so it goes to the exact slow path. Normal amounts never get there.
_LONG_AMOUNT_BYTES = re.compile(rb'"amount"\s*:\s*-?[0-9][0-9.eE+-]{15}')
_LONG_AMOUNT_TEXT = re.compile(r'"amount"\s*:\s*-?[0-9][0-9.eE+-]{15}')

_validate_json = Transaction.model_validate_json


def parse_transaction(raw: bytes | str | None) -> Transaction | Rejection:
    """A transaction from one message value, or why it is not one. Never raises."""
    try:
        tx = _validate_json(raw)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - anything the fast path can't take, the slow path explains
        return _parse_slowly(raw)
    long_amount = _LONG_AMOUNT_TEXT if raw.__class__ is str else _LONG_AMOUNT_BYTES
    if long_amount.search(raw) is not None:  # type: ignore[arg-type]
        return _parse_slowly(raw)
    return tx


def _parse_slowly(raw: object) -> Transaction | Rejection:
    try:
        return _parse_exactly(raw)
    except Exception as error:  # noqa: BLE001 - the contract is to never raise
        return Rejection(RejectionReason.INVALID_JSON, f"unreadable message ({type(error).__name__})")


def _parse_exactly(raw: object) -> Transaction | Rejection:
    """Read `raw` exactly (amounts as Decimal), normalise names, and name the first problem."""
    if raw is None:
        return Rejection(RejectionReason.INVALID_JSON, "no value (null message)")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as error:
            return Rejection(RejectionReason.NOT_UTF8, f"invalid byte at position {error.start}")
    elif isinstance(raw, str):
        text = raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return Rejection(RejectionReason.NOT_UTF8, f"unpaired surrogate at position {error.start}")
    else:
        return Rejection(RejectionReason.INVALID_JSON, f"expected bytes or str, got {type(raw).__name__}")

    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except RecursionError:
        return Rejection(RejectionReason.INVALID_JSON, "nested too deeply")
    except json.JSONDecodeError as error:
        return Rejection(RejectionReason.INVALID_JSON, _shorten(str(error)))
    except ValueError:  # Python refuses integers of more than 4300 digits
        return Rejection(RejectionReason.INVALID_JSON, "number too long to read")
    if not isinstance(document, dict):
        return Rejection(RejectionReason.INVALID_JSON, f"expected a JSON object, got {_json_kind(document)}")

    for name in FIELD_NAMES:
        if name not in document:
            return Rejection(RejectionReason.MISSING_FIELD, name)

    kind = _enum_value(document["type"], "type", _TYPE_BY_NAME, RejectionReason.UNKNOWN_TYPE, len(TransactionType))
    if isinstance(kind, Rejection):
        return kind
    status = _enum_value(document["status"], "status", _STATUS_BY_NAME, RejectionReason.UNKNOWN_STATUS,
                         len(TransactionStatus))
    if isinstance(status, Rejection):
        return status
    amount = _exact_amount(document["amount"])
    if isinstance(amount, Rejection):
        return amount

    # Everything else is checked by the same model as on the fast path, on a JSON text in
    # which type, status and amount are now canonical.
    fields = {name: document[name] for name in FIELD_NAMES}
    fields["type"], fields["status"], fields["amount"] = kind, status, amount
    canonical = "{" + ",".join(f"{json.dumps(name)}:{_json_literal(value)}" for name, value in fields.items()) + "}"
    try:
        return Transaction.model_validate_json(canonical)
    except ValidationError as error:
        return _describe(error)


def _enum_value(value: object, name: str, by_name: dict[str, IntEnum], unknown: RejectionReason,
                highest: int) -> int | Rejection:
    if isinstance(value, str):
        member = by_name.get(_name_key(value))
        if member is None:
            return Rejection(unknown, _shorten(repr(value)))
        return int(member)
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= highest:
            return value
        return Rejection(unknown, _shorten(repr(value)))
    return Rejection(RejectionReason.INVALID_FIELD,
                     f"{name}: expected an integer or a name, got {_json_kind(value)}")


def _exact_amount(value: object) -> Decimal | Rejection:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return Rejection(RejectionReason.INVALID_FIELD, f"amount: expected a number, got {_json_kind(value)}")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return Rejection(RejectionReason.INVALID_FIELD, f"amount: {_shorten(repr(value))} is not a number")
    if amount.is_nan():
        return Rejection(RejectionReason.INVALID_FIELD, "amount: not a number (NaN)")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return Rejection(RejectionReason.AMOUNT_OUT_OF_RANGE,
                         f"{_shorten(str(amount))} is outside {MIN_AMOUNT}..{MAX_AMOUNT:,}")
    cents = amount.quantize(CENT)
    if cents != amount:
        return Rejection(RejectionReason.INVALID_FIELD, f"amount: {amount} has more than 2 decimal places")
    return cents


def _json_literal(value: object) -> str:
    if isinstance(value, Decimal):
        # str() of a Decimal is a JSON number, or NaN / Infinity, which pydantic reads as floats.
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


_ERROR_PRIORITY = {"missing": 0}


def _describe(error: ValidationError) -> Rejection:
    """The first problem pydantic found, as a rejection (missing fields first)."""
    problems = sorted(error.errors(include_url=False), key=lambda item: _ERROR_PRIORITY.get(item["type"], 1))
    first = problems[0]
    location = first["loc"]
    if first["type"] == "timestamp_out_of_range":
        name = "timestamp"
    elif first["type"] == "amount_out_of_range":
        return Rejection(RejectionReason.AMOUNT_OUT_OF_RANGE, first["msg"])
    elif first["type"] == "amount_decimal_places":
        return Rejection(RejectionReason.INVALID_FIELD, first["msg"])
    elif location:
        name = _JSON_NAME.get(str(location[0]), str(location[0]))
    else:
        return Rejection(RejectionReason.INVALID_JSON, f"expected a JSON object ({first['msg']})")
    if first["type"] == "missing":
        return Rejection(RejectionReason.MISSING_FIELD, name)
    return Rejection(RejectionReason.INVALID_FIELD, f"{name}: {first['msg']}")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
