"""The reference rules for the lab's transaction message: a pydantic model and an exact reading.

`balance_tui.core.transaction.parse_transaction` decides well-formed messages itself (msgspec)
and hands every other one to `parse_with_model`, which applies the rules of docs/ledger.md with
this pydantic model on an exact reading of the JSON, and words the rejections. The differential
tests (tests/unit/test_transaction_differential.py) hold both paths to the same answers: this
module is the one that defines them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema

CENT = Decimal("0.01")
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal(1000000)

# C#'s `int`, the lab model's type for riskScore.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


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


def _spellings(member: IntEnum) -> tuple[str, str]:
    # The C# name ("CardPayment") and the enum's ("CARD_PAYMENT"), both compared in lower case.
    return member.name.replace("_", "").lower(), member.name.lower()


_TYPE_BY_NAME = {spelling: member for member in TransactionType for spelling in _spellings(member)}
_STATUS_BY_NAME = {spelling: member for member in TransactionStatus for spelling in _spellings(member)}

# Indexed by value: converting an int to a member without Enum.__call__, which is slow.
TYPE_BY_VALUE: tuple[TransactionType, ...] = (TransactionType.TRANSFER, *TransactionType)
STATUS_BY_VALUE: tuple[TransactionStatus, ...] = (TransactionStatus.PENDING, *TransactionStatus)


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


#: JSON names in the lab's order; also the order in which missing fields are reported.
FIELD_NAMES: tuple[str, ...] = (
    "transactionId", "fromAccount", "toAccount", "amount", "currency", "type",
    "description", "customerId", "timestamp", "riskScore", "status",
)

# A numeric string must read like the JSON number it stands for: ASCII digits only (Python's
# Decimal() would also take "١٢", " 7 " and "1_0").
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

# ISO 8601 extended format as RFC 3339 profiles it (T, t or a space; Z or z), also without
# seconds or with a decimal comma as ISO 8601 allows, ASCII digits only. pydantic's parser
# then checks the values; on its own it would also take Unix seconds in a string and "_".
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_DATETIME_FROM_TEXT = SchemaValidator(core_schema.datetime_schema(strict=True))


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(value: str) -> str:
    # repr() escapes control characters, so a reason never carries them to a terminal.
    return _shorten(repr(value), 50)


def control_character_at(text: str) -> int | None:
    """Position of the first control character (category Cc or Cf) in `text`, or None."""
    for position, character in enumerate(text):
        if unicodedata.category(character) in ("Cc", "Cf"):
            return position
    return None


def _check_identifier(name: str, text: str) -> None:
    position = control_character_at(text)
    if position is not None:
        raise _problem("control_character",
                       f"{name} contains a control character U+{ord(text[position]):04X} at position {position}")


def _problem(kind: str, text: str) -> PydanticCustomError:
    # The text goes through the context: a template would treat braces in a quoted value as fields.
    return PydanticCustomError(kind, "{text}", {"text": text})


# -- field schemas -------------------------------------------------------------------------


def _currency(text: str) -> str:
    if len(text) != 3 or not text.isascii() or not text.isalpha():  # [A-Za-z]{3}
        raise _problem("currency_pattern", f"currency must be 3 letters like EUR, got {_quoted(text)}")
    return text if text.isupper() else text.upper()


def _strict_int_between(low: int, high: int) -> GetPydanticSchema:
    # Validated in pydantic-core as a plain int (rejects true, 1.0 and "1"); the
    # after-validator turns it into the enum member.
    return GetPydanticSchema(lambda _type, _handler: core_schema.int_schema(strict=True, ge=low, le=high))


def _amount_from_python(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return _decimal_from_text(value)
    raise _problem("amount_type", f"amount must be a Decimal, an int or a numeric string, got {type(value).__name__}"
                   + (" (a float cannot hold an exact amount)" if isinstance(value, float) else ""))


def _decimal_from_text(text: str) -> Decimal:
    if JSON_NUMBER.fullmatch(text) is None:
        raise _problem("amount_not_a_number", f"amount {_quoted(text)} is not a decimal number like 12.30")
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal holds
        raise _problem("amount_out_of_range", _out_of_range_text(text)) from None


def _out_of_range_text(amount: Decimal | str) -> str:
    text = _shorten(str(amount), 40)
    if isinstance(amount, str):  # too large an exponent to read: which side it falls on
        below = amount.startswith("-") or "e-" in amount.lower()
    else:
        below = amount < MIN_AMOUNT
    return f"{text} is below the minimum of {MIN_AMOUNT}" if below else f"{text} is above the maximum of {MAX_AMOUNT:,}"


def _timestamp_from_json(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _problem("timestamp_type", f"timestamp must be an ISO 8601 string, got {_kind_and_value(value)}")
    return _timestamp_from_text(value)


def _timestamp_from_python(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _in_utc(value, None)
    return _timestamp_from_json(value)


def _timestamp_from_text(text: str) -> datetime:
    if _ISO_8601.fullmatch(text) is None:
        raise _problem("timestamp_format",
                       f"timestamp {_quoted(text)} is not an ISO 8601 date-time like 2026-02-08T22:00:00Z")
    try:
        # pydantic-core's stub types `input` as nested dicts only (`_StringInput`); it takes a str, as documented.
        moment = _DATETIME_FROM_TEXT.validate_strings(text)  # type: ignore[arg-type]
    except ValidationError as error:
        why = error.errors(include_url=False)[0].get("ctx", {}).get("error", "out of range")
        raise _problem("timestamp_value", f"timestamp {_quoted(text)} is not a valid date-time: {why}") from None
    return _in_utc(moment, text)


def _in_utc(moment: datetime, text: str | None) -> datetime:
    # Always the same tzinfo object (datetime.UTC), as on the fast path.
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        written = _quoted(text if text is not None else moment.isoformat())
        raise _problem("timestamp_out_of_range", f"timestamp {written} is out of range once converted to UTC") from None


def _json_or_python(json_function: Any, python_function: Any) -> GetPydanticSchema:
    return GetPydanticSchema(lambda _type, _handler: core_schema.json_or_python_schema(
        json_schema=core_schema.no_info_plain_validator_function(json_function),
        python_schema=core_schema.no_info_plain_validator_function(python_function),
    ))


# The first attempt reads JSON numbers natively (through a double: `parse_with_model` says when
# that reading is kept); Python callers go through `_amount_from_python`.
_AMOUNT_SCHEMA = GetPydanticSchema(lambda _type, _handler: core_schema.json_or_python_schema(
    json_schema=core_schema.decimal_schema(),
    python_schema=core_schema.no_info_plain_validator_function(_amount_from_python),
))
_TIMESTAMP_SCHEMA = _json_or_python(_timestamp_from_json, _timestamp_from_python)


class TransactionModel(BaseModel):
    """One bank transaction as the lab's producer writes it: the reference model.

    Amounts are Decimal quantized to cents, timestamps in UTC (`datetime.UTC`; a timestamp
    without offset is taken as UTC), currency upper-case, identifiers free of control
    characters. Built by field name or alias; `type` and `status` take members or ints (names
    are read by `parse_with_model`).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    transaction_id: str = Field(alias="transactionId", strict=True)
    from_account: str = Field(alias="fromAccount", strict=True)
    to_account: str = Field(alias="toAccount", strict=True)
    amount: Annotated[Decimal, _AMOUNT_SCHEMA]
    currency: str = Field(strict=True)
    type: Annotated[TransactionType, _strict_int_between(1, len(TransactionType))]
    description: str = Field(strict=True)
    customer_id: str = Field(alias="customerId", strict=True, min_length=1)
    timestamp: Annotated[datetime, _TIMESTAMP_SCHEMA]
    risk_score: int = Field(alias="riskScore", strict=True, ge=INT32_MIN, le=INT32_MAX)
    status: Annotated[TransactionStatus, _strict_int_between(1, len(TransactionStatus))]

    @model_validator(mode="after")
    def _normalise(self) -> TransactionModel:
        # One Python hook for every check pydantic-core cannot make: each costs a call per message.
        values = self.__dict__
        for name, json_name in _IDENTIFIERS:
            if not values[name].isprintable():  # printable excludes Cc and Cf: the exact look is rarely needed
                _check_identifier(json_name, values[name])
        values["currency"] = _currency(values["currency"])
        amount = values["amount"]
        if amount.is_nan():
            raise _problem("amount_not_a_number", "amount is not a number (NaN)")
        if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            raise _problem("amount_out_of_range", _out_of_range_text(amount))
        # JSON 5000.00 is read as Decimal('5000') on the first attempt: quantizing restores the cents.
        cents = amount.quantize(CENT)
        if cents != amount:
            raise _problem("amount_decimal_places",
                           f"amount {_shorten(str(amount), 40)} has more than 2 decimal places")
        values["amount"] = cents
        values["type"] = TYPE_BY_VALUE[values["type"]]
        values["status"] = STATUS_BY_VALUE[values["status"]]
        return self


# -- parsing --------------------------------------------------------------------------------

# (Python name, JSON name) of the fields that are identifiers: no control characters in them.
_IDENTIFIERS = (("transaction_id", "transactionId"), ("from_account", "fromAccount"), ("to_account", "toAccount"),
                ("currency", "currency"), ("customer_id", "customerId"))

# Python field name or JSON name -> JSON name, to word errors as the message does.
_JSON_NAME = {
    key: info.alias or name
    for name, info in TransactionModel.model_fields.items()
    for key in (name, info.alias or name)
}

# The first attempt reads JSON numbers through a double, exact only up to 15 significant
# digits: a longer amount literal (0.0100000000000000001) could hide extra decimal places, so
# it is read exactly instead; so is an amount in a string, whose spelling pydantic does not
# check (it takes " 7 " and "١٢"), and any message with an escape, as an escaped key
# ("am\u006fount") hides the amount from these patterns. Lab messages never get there.
_AMOUNT_TO_READ_EXACTLY_BYTES = re.compile(rb'"amount"\s*:\s*(?:"|-?[0-9][0-9.eE+-]{15})')
_AMOUNT_TO_READ_EXACTLY_TEXT = re.compile(r'"amount"\s*:\s*(?:"|-?[0-9][0-9.eE+-]{15})')


def parse_with_model(raw: object) -> TransactionModel | Rejection:
    """A transaction from one message value, or why it is not one, by the reference rules. Never raises."""
    try:
        model = TransactionModel.model_validate_json(raw)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - whatever the first attempt can't take, the exact reading explains
        return _parse_slowly(raw)
    if raw.__class__ is str:
        if "\\" in raw or _AMOUNT_TO_READ_EXACTLY_TEXT.search(raw) is not None:
            return _parse_slowly(raw)
    else:
        data = raw if raw.__class__ is bytes else bytes(raw)  # type: ignore[call-overload]
        if b"\\" in data or _AMOUNT_TO_READ_EXACTLY_BYTES.search(data) is not None:
            return _parse_slowly(raw)
    return model


def _parse_slowly(raw: object) -> TransactionModel | Rejection:
    try:
        return _parse_exactly(raw)
    except Exception as error:  # noqa: BLE001 - the contract is to never raise
        return Rejection(RejectionReason.INVALID_JSON, f"the message could not be read ({type(error).__name__})")


class _NumberTooLarge(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _exact_decimal(literal: str) -> Decimal:
    try:
        return Decimal(literal)
    except InvalidOperation:  # an exponent beyond what Decimal holds
        raise _NumberTooLarge(literal) from None


_JSON_ERRORS = {
    "Expecting value": "expected a value",
    "Expecting ',' delimiter": "expected ','",
    "Expecting ':' delimiter": "expected ':'",
    "Expecting property name enclosed in double quotes": "expected a field name in double quotes",
    "Unterminated string starting at": "unterminated string starting",
    "Invalid control character at": "raw control character in a string",
    "Extra data": "more text after the JSON value",
    "Invalid \\escape": "invalid escape",
    "Invalid \\uXXXX escape": "invalid \\u escape",
}


def _parse_exactly(raw: object) -> TransactionModel | Rejection:
    """Read `raw` exactly (amounts as Decimal), normalise names, and name the first problem.

    The rules in order, each its own early return: the message's text, the JSON object it holds,
    the fields this parser reads itself (type, status, amount, text that is not Unicode), then the model.
    """
    text = _message_text(raw)
    if isinstance(text, Rejection):
        return text
    document = _json_object(text)
    if isinstance(document, Rejection):
        return document
    fields = _canonical_fields(document)
    if isinstance(fields, Rejection):
        return fields
    # Everything else is checked by the model, on a JSON text in which type, status and amount
    # are now canonical.
    canonical = "{" + ",".join(f"{json.dumps(name)}:{_json_literal(value)}" for name, value in fields.items()) + "}"
    try:
        return TransactionModel.model_validate_json(canonical)
    except ValidationError as error:
        return _describe(error, document)


def _message_text(raw: object) -> str | Rejection:
    """The message value as text: bytes in UTF-8, or a str that could be encoded as UTF-8."""
    if raw is None:
        return Rejection(RejectionReason.INVALID_JSON, "no value (null message)")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            return Rejection(RejectionReason.NOT_UTF8, f"byte 0x{data[error.start]:02x} at position {error.start} "
                                                       f"is not UTF-8 ({error.reason})")
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as error:
            return Rejection(RejectionReason.NOT_UTF8, f"unpaired surrogate U+{ord(raw[error.start]):04X} at position "
                                                       f"{error.start} (text that cannot be encoded as UTF-8)")
        return raw
    return Rejection(RejectionReason.INVALID_JSON, f"expected bytes or str, got {type(raw).__name__}")


def _json_object(text: str) -> dict[str, Any] | Rejection:
    """The JSON object `text` holds, its numbers with a fraction or exponent read as Decimal."""
    if not text:
        return Rejection(RejectionReason.INVALID_JSON, "the message is empty")
    if text.startswith("\ufeff"):
        return Rejection(RejectionReason.INVALID_JSON, "the message starts with a byte order mark (U+FEFF)")
    try:
        document = json.loads(text, parse_float=_exact_decimal, parse_constant=Decimal)
    except RecursionError:
        return Rejection(RejectionReason.INVALID_JSON, "nested too deeply to read")
    except json.JSONDecodeError as error:
        return Rejection(RejectionReason.INVALID_JSON,
                         f"{_JSON_ERRORS.get(error.msg, error.msg)} at position {error.pos}")
    except _NumberTooLarge as error:
        return Rejection(RejectionReason.INVALID_JSON, f"number {_shorten(error.literal, 40)} is too large to read")
    except ValueError:  # Python refuses integers of more than 4300 digits
        return Rejection(RejectionReason.INVALID_JSON, "a number has more than 4300 digits")
    if not isinstance(document, dict):
        return Rejection(RejectionReason.INVALID_JSON, f"expected a JSON object, got {_json_kind(document)}")
    return document


def _canonical_fields(document: dict[str, Any]) -> dict[str, Any] | Rejection:
    """The transaction's fields in order, type, status and amount made canonical; the first problem with them."""
    for name in FIELD_NAMES:
        if name not in document:
            return Rejection(RejectionReason.MISSING_FIELD, name)

    kind = _enum_value(document["type"], "type", _TYPE_BY_NAME, RejectionReason.UNKNOWN_TYPE,
                       len(TransactionType), "CardPayment")
    if isinstance(kind, Rejection):
        return kind
    status = _enum_value(document["status"], "status", _STATUS_BY_NAME, RejectionReason.UNKNOWN_STATUS,
                         len(TransactionStatus), "Completed")
    if isinstance(status, Rejection):
        return status
    amount = _exact_amount(document["amount"])
    if isinstance(amount, Rejection):
        return amount

    fields = {name: document[name] for name in FIELD_NAMES}
    fields["type"], fields["status"], fields["amount"] = kind, status, amount
    for name, value in fields.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:  # a lone "\ud800" escape: valid JSON, not a character
                return Rejection(RejectionReason.INVALID_FIELD,
                                 f"{name} contains an unpaired surrogate U+{ord(value[error.start]):04X} "
                                 f"at position {error.start} (not a Unicode character)")
    return fields


def member_by_name(value: str, by_name: Mapping[str, IntEnum]) -> IntEnum | None:
    """The member `value` names (C# or enum spelling, any case, ASCII), or None."""
    return by_name.get(value.lower()) if value.isascii() else None


def _enum_value(value: object, name: str, by_name: Mapping[str, IntEnum], unknown: RejectionReason,
                highest: int, example: str) -> int | Rejection:
    expected = f"(expected 1 to {highest} or a name such as {example})"
    if isinstance(value, str):
        member = member_by_name(value, by_name)
        if member is None:
            return Rejection(unknown, f"{_quoted(value)} {expected}")
        return int(member)
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= highest:
            return value
        return Rejection(unknown, f"{_shorten(str(value), 40)} {expected}")
    return Rejection(RejectionReason.INVALID_FIELD,
                     f"{name} must be an integer or a name, got {_kind_and_value(value)}")


def _exact_amount(value: object) -> Decimal | Rejection:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return Rejection(RejectionReason.INVALID_FIELD, f"amount must be a number, got {_kind_and_value(value)}")
    try:
        amount = _decimal_from_text(value) if isinstance(value, str) else Decimal(value)
    except PydanticCustomError as error:
        reason = (RejectionReason.AMOUNT_OUT_OF_RANGE if error.type == "amount_out_of_range"
                  else RejectionReason.INVALID_FIELD)
        return Rejection(reason, error.message())
    if amount.is_nan():
        return Rejection(RejectionReason.INVALID_FIELD, "amount is not a number (NaN)")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return Rejection(RejectionReason.AMOUNT_OUT_OF_RANGE, _out_of_range_text(amount))
    cents = amount.quantize(CENT)
    if cents != amount:
        return Rejection(RejectionReason.INVALID_FIELD,
                         f"amount {_shorten(str(amount), 40)} has more than 2 decimal places")
    return cents


def _json_literal(value: object) -> str:
    if isinstance(value, Decimal):
        # str() of a Decimal is a JSON number, or NaN / Infinity, which pydantic reads as floats.
        return str(value)
    if isinstance(value, list):
        return "[]"  # only its kind matters to the model: no field takes an array or an object
    if isinstance(value, dict):
        return "{}"
    return json.dumps(value, ensure_ascii=False)


_ERROR_PRIORITY = {"missing": 0}
_AMOUNT_ERRORS = {"amount_out_of_range": RejectionReason.AMOUNT_OUT_OF_RANGE}


def _describe(error: ValidationError, document: dict[str, Any]) -> Rejection:
    """The first problem the model found, as a rejection in plain words (missing fields first)."""
    problems = sorted(error.errors(include_url=False), key=lambda item: _ERROR_PRIORITY.get(item["type"], 1))
    first = problems[0]
    kind = first["type"]
    if "text" in first.get("ctx", {}):  # one of ours, already worded
        return Rejection(_AMOUNT_ERRORS.get(kind, RejectionReason.INVALID_FIELD), first["ctx"]["text"])
    location = first["loc"]
    if not location:
        return Rejection(RejectionReason.INVALID_JSON, f"the message could not be read ({kind})")
    name = _JSON_NAME.get(str(location[0]), str(location[0]))
    if kind == "missing":
        return Rejection(RejectionReason.MISSING_FIELD, name)
    value = document.get(name, first.get("input"))
    if kind == "string_type":
        return Rejection(RejectionReason.INVALID_FIELD, f"{name} must be a string, got {_kind_and_value(value)}")
    if kind == "string_too_short":
        return Rejection(RejectionReason.INVALID_FIELD, f"{name} must not be empty")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Rejection(RejectionReason.INVALID_FIELD, f"{name} must be an integer, got {_kind_and_value(value)}")
    if kind in ("greater_than_equal", "less_than_equal"):
        return Rejection(RejectionReason.INVALID_FIELD,
                         f"{name} {_shorten(str(value), 40)} is outside the 32-bit range {INT32_MIN}..{INT32_MAX}")
    return Rejection(RejectionReason.INVALID_FIELD, f"{name} has an unexpected value ({kind})")


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


def _kind_and_value(value: object) -> str:
    """`value` described for a reason: "null", "a boolean", "the number 2.5", "the string '5'"..."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return _json_kind(value)
    if isinstance(value, (int, Decimal, float)):
        return f"the number {_shorten(str(value), 40)}"
    if isinstance(value, str):
        return f"the string {_quoted(value)}"
    return _json_kind(value)
