"""The lab's transaction message: the hot-path parser (never raises) and exact encoding.

The JSON shape is the lab producer's, field for field::

    {"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789",
     "amount":5000.00,"currency":"EUR","type":3,"description":"Depot initial",
     "customerId":"CUST-001","timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}

`parse_transaction` is on the consumer's hot path. It decodes with msgspec and accepts a
message only when it is certain the reference rules (`balance_tui.core.transaction_model`,
a pydantic model, docs/ledger.md) accept it with the same values; every other message
(a name for `type`, a control character, a rejection of any kind...) goes to the
reference, which decides and words the reason. tests/unit/test_transaction_differential.py checks
that the two never disagree.
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Annotated, Any, Literal

import msgspec

from balance_tui.core.transaction_model import (
    CENT,
    FIELD_NAMES,
    INT32_MAX,
    INT32_MIN,
    JSON_NUMBER,
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

    Amounts are Decimal quantized to cents, timestamps in UTC (`datetime.UTC`), currency
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


# The active ISO 4217 codes, upper-case. msgspec checks them in C; any other 3 letters (a
# lower-case "eur", a code not listed here) are still accepted, by the reference.
_ISO_4217 = (  # noqa: SIM905 - a table reads better as words
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD "
    "GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP "
    "LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB "
    "PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB "
    "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC "
    "XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG"
).split()


class _Wire(msgspec.Struct, gc=False, rename="camel", forbid_unknown_fields=True):
    """The message as msgspec reads it, before the checks msgspec cannot make.

    Unknown fields are refused here, so that every byte of the message is in a field msgspec
    decodes and checks (UTF-8 included); `_LooseWire` reads the others.
    """

    transaction_id: str
    from_account: str
    to_account: str
    # Any, with a Decimal float_hook: a JSON number with a fraction or exponent becomes a Decimal
    # read from its own digits (never a double), an integer an int, and a string stays a string,
    # read only if spelled as the reference allows (msgspec's Decimal would take " 7 " and "١٢").
    amount: Any
    currency: Literal[tuple(_ISO_4217)]  # type: ignore[valid-type]
    type: TransactionType
    description: str
    customer_id: Annotated[str, msgspec.Meta(min_length=1)]
    # Raw: msgspec rounds fractions beyond microseconds, the reference truncates them.
    timestamp: msgspec.Raw
    risk_score: Annotated[int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)]
    status: TransactionStatus


class _LooseWire(_Wire, forbid_unknown_fields=False):
    """The second try: any 3-character currency, and unknown fields skipped. msgspec checks
    neither their UTF-8 nor their depth, so `parse_transaction` does (`_shallow`, `_is_unicode`)."""

    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]


# JSON numbers with a fraction or exponent become Decimals through this context: its
# create_decimal reads the digits exactly as Decimal() does, but takes its one argument without
# keyword parsing or a look-up of the current context (0.02 µs less per message). Every signal
# that could make the result differ from Decimal()'s is a trap, so any such literal raises
# and goes to the reference, which reads it with Decimal().
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[
    decimal.InvalidOperation, decimal.Overflow, decimal.Underflow, decimal.Subnormal, decimal.Inexact,
    decimal.Rounded, decimal.Clamped, decimal.DivisionByZero])
_same_quantum = _EXACT.same_quantum  # positional, unlike Decimal.same_quantum: no keyword parsing
_decode_wire = msgspec.json.Decoder(_Wire, float_hook=_EXACT.create_decimal).decode
_decode_loose_wire = msgspec.json.Decoder(_LooseWire, float_hook=_EXACT.create_decimal).decode
_decode_datetime = msgspec.json.Decoder(datetime).decode

# At most 26 characters ("2026-02-08T22:00:00.12345Z"), 28 with the quotes: a fraction cannot
# have more than 6 digits, so msgspec's reading equals the reference's.
_SHORT_TIMESTAMP = 28
# Skipped fields may nest deeper than the reference reads (pydantic 200 levels, then json.loads
# as deep as the stack allows) or hold a number longer than Python converts (4300 digits):
# the fast path only takes messages that cannot.
_SMALL_MESSAGE = 400
_MOST_BRACKETS = 200
_LONGEST_FAST = 4300

# The last timestamp read from a bytes message, as msgspec.Raw (its text, quotes included), and
# the UTC datetime it gave. A producer stamps messages in runs (the traffic generator one clock
# reading per batch, the lab whole seconds, any producer the same millisecond at a high rate):
# the next message's text is compared (0.03 µs in all) instead of read again (0.15 µs, 0.5 µs
# with a long fraction); a message whose timestamp differs pays about 0.05 µs more for the
# comparison and the store. One tuple, so that a thread never pairs one text with another's
# datetime; in a list, as storing a module global is a dictionary insertion. The Raw keeps its
# message alive until the next timestamp. It starts with an empty text, which no JSON value is.
_NO_TIMESTAMP = (msgspec.Raw(b""), datetime(1, 1, 1, tzinfo=UTC))
_last_timestamp: list[tuple[msgspec.Raw, datetime]] = [_NO_TIMESTAMP]


def parse_transaction(raw: bytes | str | None) -> Transaction | Rejection:
    """A transaction from one message value, or why it is not one. Never raises."""
    try:
        try:
            wire = _decode_wire(raw)  # type: ignore[arg-type]
        except msgspec.ValidationError:  # perhaps unknown fields or another currency; anything else shows again
            wire = _decode_loose_wire(raw)  # type: ignore[arg-type]
            currency = wire.currency
            if not (currency.isascii() and currency.isalpha() and _shallow(raw) and _is_unicode(raw)):
                return parse_transaction_reference(raw)
            wire.currency = currency.upper()

        amount = wire.amount
        if type(amount) is not Decimal or not _same_quantum(amount, CENT):
            amount = _cents(amount)
            if amount is None:
                return parse_transaction_reference(raw)
        if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            return parse_transaction_reference(raw)

        # Bytes without an escape or a DEL: a raw control character below U+0020 is not JSON, so
        # only an identifier with non-ASCII characters can hold one (str.isascii() reads a flag).
        # Otherwise the identifiers must be printable: printable excludes categories Cc and Cf
        # (and more, which the reference then accepts).
        plain = type(raw) is bytes and 92 not in raw and 127 not in raw
        if not (plain and (raw.isascii() or (wire.transaction_id.isascii() and wire.from_account.isascii()  # type: ignore[union-attr]
                                             and wire.to_account.isascii() and wire.customer_id.isascii()))) and not (
                wire.transaction_id.isprintable() and wire.from_account.isprintable()
                and wire.to_account.isprintable() and wire.customer_id.isprintable()):
            return parse_transaction_reference(raw)

        stamp = wire.timestamp
        last = _last_timestamp[0]
        moment: datetime | None  # None from _long_timestamp: the reference reads the timestamp
        if stamp == last[0]:
            moment = last[1]
        else:
            if len(stamp) <= _SHORT_TIMESTAMP:
                moment = _decode_datetime(stamp)
            else:
                moment = _long_timestamp(stamp)
                if moment is None:
                    return parse_transaction_reference(raw)
            if moment.tzinfo is not UTC:
                moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            if plain:  # bytes: the Raw points into `raw`, which nothing can change
                _last_timestamp[0] = (stamp, moment)

        return Transaction(wire.transaction_id, wire.from_account, wire.to_account, amount, wire.currency,
                           wire.type, wire.description, wire.customer_id, moment, wire.risk_score, wire.status)
    except Exception:  # noqa: BLE001 - msgspec's errors, OverflowError...: the reference decides and explains
        return parse_transaction_reference(raw)


def parse_transaction_reference(raw: object) -> Transaction | Rejection:
    """What the reference rules make of `raw` (the pydantic model, slower). Never raises."""
    result = parse_with_model(raw)
    return result if isinstance(result, Rejection) else _from_model(result)


def _cents(amount: object) -> Decimal | None:
    """A JSON number, or a string spelling one, as exact cents; None when it is not one (the reference says why)."""
    if amount.__class__ is int:
        amount = Decimal(amount)
    elif amount.__class__ is str:
        if JSON_NUMBER.fullmatch(amount) is None:
            return None
        amount = Decimal(amount)
    elif amount.__class__ is not Decimal:
        return None
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return None
    cents = amount.quantize(CENT)
    return cents if cents == amount else None


def _is_unicode(raw: object) -> bool:
    """Whether `raw` is text, or bytes that are UTF-8 throughout (a str msgspec read has no lone surrogate)."""
    if raw.__class__ is str:
        return True
    try:
        # Neither str nor bytes: a buffer msgspec read (bytearray, memoryview), which `object` does not say.
        (raw if raw.__class__ is bytes else bytes(raw)).decode("utf-8")  # type: ignore[call-overload]
    except UnicodeDecodeError:
        return False
    return True


def _shallow(raw: object) -> bool:
    """Whether `raw` is short enough, with few enough brackets, to nest no deeper than the reference reads."""
    if len(raw) <= _SMALL_MESSAGE:  # type: ignore[arg-type]
        return True
    if raw.__class__ is bytes:
        return len(raw) <= _LONGEST_FAST and raw.count(b"[") + raw.count(b"{") <= _MOST_BRACKETS
    if raw.__class__ is str:
        return len(raw) <= _LONGEST_FAST and raw.count("[") + raw.count("{") <= _MOST_BRACKETS
    return False


def _long_timestamp(stamp: msgspec.Raw) -> datetime | None:
    """A timestamp of more than 26 characters, its fraction truncated to microseconds as the reference does.

    None when it is not sure (an escape, more than 9 fractional digits): the reference decides.
    """
    text = bytes(stamp)  # with its quotes: '"2026-02-08T22:00:00.1234567Z"'
    # The fraction, if any, starts at 21 (after '"', 19 characters and '.'). Without a digit at
    # 27 it has at most 6 digits and msgspec has nothing to round (Python's isoformat(), or an
    # offset after milliseconds); unless an escape moves the characters.
    if not 47 < text[27] < 58 and 92 not in text:
        return _decode_datetime(stamp)
    size = len(text)
    last = text[size - 2]
    if last in {90, 122}:  # Z or z
        end = size - 2
    elif text[size - 4] == 58:  # ±hh:mm
        end = size - 7
    elif text[size - 6] in b"+-":  # ±hhmm
        end = size - 6
    else:
        end = size - 1
    # At most 6 digits before `end` means msgspec has nothing to round. An escape only lengthens the text.
    if end <= 27:
        return _decode_datetime(text)
    if end > 30 or 92 in text or not text[21:end].isdigit():
        return None
    return _decode_datetime(text[:27] + text[end:])
