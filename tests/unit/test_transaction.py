"""The transaction message: parsing, rejections and exact encoding."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from balance_tui.core.transaction import (
    FIELD_NAMES,
    Rejection,
    RejectionReason,
    Transaction,
    TransactionStatus,
    TransactionType,
    encode_transaction,
    parse_transaction,
)

# The lab's own messages (scenario 1 of lab 1.3B), byte for byte.
LAB_DEPOSIT = (
    b'{"transactionId":"BAL-001","fromAccount":"BANK","toAccount":"FR7630001000123456789",'
    b'"amount":5000.00,"currency":"EUR","type":3,"description":"Depot initial","customerId":"CUST-001",'
    b'"timestamp":"2026-02-08T22:00:00Z","riskScore":0,"status":1}'
)
LAB_TRANSFER = (
    b'{"transactionId":"BAL-002","fromAccount":"FR7630001000123456789","toAccount":"FR7630001000987654321",'
    b'"amount":1200.00,"currency":"EUR","type":1,"description":"Virement loyer","customerId":"CUST-001",'
    b'"timestamp":"2026-02-08T22:01:00Z","riskScore":0,"status":1}'
)


def with_field(name: str, json_value: str) -> bytes:
    """LAB_DEPOSIT with one field's JSON value replaced."""
    document = json.loads(LAB_DEPOSIT)
    document[name] = "__PLACEHOLDER__"
    return json.dumps(document).replace('"__PLACEHOLDER__"', json_value).encode()


def without_field(name: str) -> bytes:
    document = json.loads(LAB_DEPOSIT)
    del document[name]
    return json.dumps(document).encode()


def parsed(raw: bytes | str) -> Transaction:
    result = parse_transaction(raw)
    assert isinstance(result, Transaction), result
    return result


def rejected(raw: object) -> Rejection:
    result = parse_transaction(raw)  # type: ignore[arg-type]
    assert isinstance(result, Rejection), result
    return result


# -- well-formed messages ----------------------------------------------------------------------


def test_lab_deposit_is_read_field_for_field() -> None:
    tx = parsed(LAB_DEPOSIT)
    assert tx.transaction_id == "BAL-001"
    assert tx.from_account == "BANK"
    assert tx.to_account == "FR7630001000123456789"
    assert tx.amount == Decimal("5000.00") and str(tx.amount) == "5000.00"
    assert tx.currency == "EUR"
    assert tx.type is TransactionType.DEPOSIT
    assert tx.description == "Depot initial"
    assert tx.customer_id == "CUST-001"
    assert tx.timestamp == datetime(2026, 2, 8, 22, 0, tzinfo=UTC)
    assert tx.timestamp.utcoffset() == timedelta(0)
    assert tx.risk_score == 0
    assert tx.status is TransactionStatus.PENDING


def test_amount_keeps_its_cents_and_is_never_a_float() -> None:
    tx = parsed(LAB_TRANSFER)
    assert type(tx.amount) is Decimal
    assert str(tx.amount) == "1200.00"
    assert str(parsed(with_field("amount", "7")).amount) == "7.00"
    assert str(parsed(with_field("amount", "0.1")).amount) == "0.10"
    assert str(parsed(with_field("amount", "1e2")).amount) == "100.00"
    assert str(parsed(with_field("amount", '"12.5"')).amount) == "12.50"
    assert str(parsed(with_field("amount", "1000000")).amount) == "1000000.00"
    assert str(parsed(with_field("amount", "0.01")).amount) == "0.01"
    assert str(parsed(with_field("amount", "12.500")).amount) == "12.50"  # a zero is not a place


@pytest.mark.parametrize(
    ("json_value", "expected"),
    [(str(member.value), member) for member in TransactionType]
    + [
        ('"Transfer"', TransactionType.TRANSFER),
        ('"payment"', TransactionType.PAYMENT),
        ('"DEPOSIT"', TransactionType.DEPOSIT),
        ('"Withdrawal"', TransactionType.WITHDRAWAL),
        ('"CardPayment"', TransactionType.CARD_PAYMENT),
        ('"card_payment"', TransactionType.CARD_PAYMENT),
        ('"internationaltransfer"', TransactionType.INTERNATIONAL_TRANSFER),
        ('"BillPayment"', TransactionType.BILL_PAYMENT),
    ],
)
def test_type_is_an_integer_or_a_name(json_value: str, expected: TransactionType) -> None:
    assert parsed(with_field("type", json_value)).type is expected


@pytest.mark.parametrize(
    ("json_value", "expected"),
    [(str(member.value), member) for member in TransactionStatus]
    + [
        ('"Pending"', TransactionStatus.PENDING),
        ('"processing"', TransactionStatus.PROCESSING),
        ('"COMPLETED"', TransactionStatus.COMPLETED),
        ('"Failed"', TransactionStatus.FAILED),
        ('"rejected"', TransactionStatus.REJECTED),
    ],
)
def test_status_is_an_integer_or_a_name(json_value: str, expected: TransactionStatus) -> None:
    assert parsed(with_field("status", json_value)).status is expected


@pytest.mark.parametrize(
    ("json_value", "expected"),
    [
        ('"2026-02-08T22:00:00Z"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),
        ('"2026-02-08T22:00:00+00:00"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),
        ('"2026-02-08T22:00:00"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),  # naive: taken as UTC
        ('"2026-02-08T23:30:00+01:30"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),
        ('"2026-02-08T22:00:00.123Z"', datetime(2026, 2, 8, 22, 0, 0, 123000, tzinfo=UTC)),
        ('"2026-02-08T22:00:00.1234567Z"', datetime(2026, 2, 8, 22, 0, 0, 123456, tzinfo=UTC)),  # .NET
    ],
)
def test_timestamps_are_timezone_aware_utc(json_value: str, expected: datetime) -> None:
    timestamp = parsed(with_field("timestamp", json_value)).timestamp
    assert timestamp == expected
    assert timestamp.utcoffset() == timedelta(0)


def test_currency_is_upper_cased() -> None:
    assert parsed(with_field("currency", '"eur"')).currency == "EUR"


def test_text_and_unknown_fields_are_accepted() -> None:
    assert parsed(LAB_DEPOSIT.decode()) == parsed(LAB_DEPOSIT)
    assert parsed(bytearray(LAB_DEPOSIT)) == parsed(LAB_DEPOSIT)  # type: ignore[arg-type]
    assert parsed(LAB_DEPOSIT[:-1] + b',"channel":"mobile","extra":{"a":[1,2]}}') == parsed(LAB_DEPOSIT)
    pretty = json.dumps(json.loads(LAB_DEPOSIT), indent=2).encode()
    assert parsed(pretty) == parsed(LAB_DEPOSIT)


def test_utf8_descriptions_survive() -> None:
    assert parsed(with_field("description", '"Paiement carte Total \u00c9nergies \u20ac"')).description == (
        "Paiement carte Total \u00c9nergies \u20ac"
    )


# -- rejections ----------------------------------------------------------------------------------

REJECTIONS = [
    # (message, reason, text that must appear in str(rejection))
    (b"\xff\xfe{}", RejectionReason.NOT_UTF8, "not UTF-8"),
    (LAB_DEPOSIT[:30] + b"\xc3\x28" + LAB_DEPOSIT[30:], RejectionReason.NOT_UTF8, "not UTF-8"),
    ('{"transactionId":"\ud800"}', RejectionReason.NOT_UTF8, "surrogate"),
    (None, RejectionReason.INVALID_JSON, "null message"),
    (b"", RejectionReason.INVALID_JSON, "invalid JSON"),
    (LAB_DEPOSIT[: len(LAB_DEPOSIT) // 2], RejectionReason.INVALID_JSON, "invalid JSON"),
    (b"[" + LAB_DEPOSIT + b"]", RejectionReason.INVALID_JSON, "got an array"),
    (b"42", RejectionReason.INVALID_JSON, "got a number"),
    (b"null", RejectionReason.INVALID_JSON, "got null"),
    (b'"text"', RejectionReason.INVALID_JSON, "got a string"),
    (b"[" * 100_000 + b"]" * 100_000, RejectionReason.INVALID_JSON, "invalid JSON"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, RejectionReason.INVALID_JSON, "invalid JSON"),
    (with_field("riskScore", "9" * 5000), RejectionReason.INVALID_JSON, "invalid JSON"),
    (without_field("customerId"), RejectionReason.MISSING_FIELD, "missing field: customerId"),
    (without_field("amount"), RejectionReason.MISSING_FIELD, "missing field: amount"),
    (without_field("transactionId"), RejectionReason.MISSING_FIELD, "missing field: transactionId"),
    (b"{}", RejectionReason.MISSING_FIELD, "missing field: transactionId"),
    (with_field("type", "99"), RejectionReason.UNKNOWN_TYPE, "unknown type: 99"),
    (with_field("type", "0"), RejectionReason.UNKNOWN_TYPE, "unknown type: 0"),
    (with_field("type", '"Refund"'), RejectionReason.UNKNOWN_TYPE, "Refund"),
    (with_field("type", '"3"'), RejectionReason.UNKNOWN_TYPE, "unknown type"),
    (with_field("status", "6"), RejectionReason.UNKNOWN_STATUS, "unknown status: 6"),
    (with_field("status", '"Cancelled"'), RejectionReason.UNKNOWN_STATUS, "Cancelled"),
    (with_field("type", "true"), RejectionReason.INVALID_FIELD, "type"),
    (with_field("type", "1.0"), RejectionReason.INVALID_FIELD, "type"),
    (with_field("type", "null"), RejectionReason.INVALID_FIELD, "type"),
    (with_field("status", "[1]"), RejectionReason.INVALID_FIELD, "status"),
    (with_field("amount", "0"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "0.001"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "-5.00"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "1000000.01"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "1e400"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "Infinity"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "-Infinity"), RejectionReason.AMOUNT_OUT_OF_RANGE, "amount out of range"),
    (with_field("amount", "1200.005"), RejectionReason.INVALID_FIELD, "more than 2 decimal places"),
    (with_field("amount", '"1.234"'), RejectionReason.INVALID_FIELD, "more than 2 decimal places"),
    # Longer than a double's 15 digits: the extra places must not be rounded away.
    (with_field("amount", "0.0100000000000000001"), RejectionReason.INVALID_FIELD, "more than 2 decimal places"),
    (with_field("amount", "NaN"), RejectionReason.INVALID_FIELD, "amount"),
    (with_field("amount", '"lots"'), RejectionReason.INVALID_FIELD, "amount"),
    (with_field("amount", "true"), RejectionReason.INVALID_FIELD, "amount"),
    (with_field("amount", "null"), RejectionReason.INVALID_FIELD, "amount"),
    (with_field("currency", '"EURO"'), RejectionReason.INVALID_FIELD, "currency"),
    (with_field("currency", '"E1R"'), RejectionReason.INVALID_FIELD, "currency"),
    (with_field("currency", "978"), RejectionReason.INVALID_FIELD, "currency"),
    (with_field("customerId", '""'), RejectionReason.INVALID_FIELD, "customerId"),
    (with_field("customerId", "7"), RejectionReason.INVALID_FIELD, "customerId"),
    (with_field("transactionId", "null"), RejectionReason.INVALID_FIELD, "transactionId"),
    (with_field("fromAccount", "{}"), RejectionReason.INVALID_FIELD, "fromAccount"),
    (with_field("toAccount", "NaN"), RejectionReason.INVALID_FIELD, "toAccount"),
    (with_field("description", "12"), RejectionReason.INVALID_FIELD, "description"),
    (with_field("timestamp", '"yesterday"'), RejectionReason.INVALID_FIELD, "timestamp"),
    (with_field("timestamp", "1770588000"), RejectionReason.INVALID_FIELD, "timestamp"),
    (with_field("timestamp", '"0001-01-01T00:00:00+01:00"'), RejectionReason.INVALID_FIELD, "timestamp"),
    (with_field("riskScore", '"5"'), RejectionReason.INVALID_FIELD, "riskScore"),
    (with_field("riskScore", "2.5"), RejectionReason.INVALID_FIELD, "riskScore"),
    (with_field("riskScore", "1e400"), RejectionReason.INVALID_FIELD, "riskScore"),
    (with_field("riskScore", str(2**40)), RejectionReason.INVALID_FIELD, "riskScore"),
]


@pytest.mark.parametrize(("raw", "reason", "text"), REJECTIONS, ids=range(len(REJECTIONS)))
def test_rejections_say_why(raw: object, reason: RejectionReason, text: str) -> None:
    rejection = rejected(raw)
    assert rejection.reason is reason
    assert text in str(rejection)
    assert str(rejection).startswith(f"{reason.value}: ")
    assert len(str(rejection)) < 200


def test_every_rejection_reason_is_covered() -> None:
    assert {reason for _, reason, _ in REJECTIONS} == set(RejectionReason)


def test_rejection_text() -> None:
    assert str(Rejection(RejectionReason.MISSING_FIELD, "customerId")) == "missing field: customerId"


@pytest.mark.parametrize("raw", [12, 3.5, object(), ["a"], {"transactionId": "x"}])
def test_unexpected_argument_types_are_rejected_not_raised(raw: object) -> None:
    assert rejected(raw).reason is RejectionReason.INVALID_JSON


# -- building and encoding -------------------------------------------------------------------


def make(**changes: object) -> Transaction:
    fields: dict[str, object] = {
        "transaction_id": "T-1", "from_account": "A", "to_account": "B", "amount": Decimal(1200), "currency": "EUR",
        "type": TransactionType.TRANSFER, "description": "rent", "customer_id": "CUST-001",
        "timestamp": datetime(2026, 2, 8, 22, 1, tzinfo=UTC), "risk_score": 0, "status": TransactionStatus.COMPLETED,
    }
    fields.update(changes)
    return Transaction.validated(**fields)


def test_built_by_field_name_with_the_same_checks() -> None:
    tx = make(type=1, status=3, timestamp=datetime(2026, 2, 8, 22, 1))
    assert str(tx.amount) == "1200.00"
    assert tx.type is TransactionType.TRANSFER and tx.status is TransactionStatus.COMPLETED
    assert tx.timestamp.tzinfo is not None
    with pytest.raises(ValueError):
        make(amount=Decimal("0.001"))
    with pytest.raises(ValueError):
        make(amount=Decimal("1000000.01"))
    with pytest.raises(ValueError):
        make(type=8)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("amount", "\uff11\uff12", "is not a decimal number"),
    ("amount", " 7 ", "is not a decimal number"),
    ("amount", 12.5, "a float cannot hold an exact amount"),
    ("amount", Decimal("NaN"), "not a number"),
    ("customer_id", "CUST\x1b[2J", "customerId contains a control character U+001B at position 4"),
    ("currency", "E\u202eR", "currency contains a control character U+202E at position 1"),
    ("timestamp", "1770588000", "is not an ISO 8601 date-time"),
    ("timestamp", 1770588000, "must be an ISO 8601 string"),
])
def test_validated_applies_the_message_rules(field: str, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        make(**{field: value})


def test_validated_normalises_like_a_message() -> None:
    tx = make(amount="12.5", currency="eur", timestamp="2026-02-08T23:30:00+01:30", type=3, status=4)
    assert tx == parsed(encode_transaction(tx))
    assert (str(tx.amount), tx.currency, tx.type, tx.status) == ("12.50", "EUR", TransactionType.DEPOSIT,
                                                                TransactionStatus.FAILED)
    assert tx.timestamp == datetime(2026, 2, 8, 22, 0, tzinfo=UTC) and tx.timestamp.tzinfo is UTC


def test_transactions_are_frozen() -> None:
    tx = make()
    with pytest.raises(AttributeError):
        tx.amount = Decimal(1)  # type: ignore[misc]


def test_encoding_reproduces_the_lab_messages_byte_for_byte() -> None:
    assert encode_transaction(parsed(LAB_DEPOSIT)) == LAB_DEPOSIT
    assert encode_transaction(parsed(LAB_TRANSFER)) == LAB_TRANSFER


def test_encoding_writes_the_amount_exactly() -> None:
    encoded = encode_transaction(make(amount=Decimal(1200)))
    assert b'"amount":1200.00,' in encoded
    assert b'"amount":0.10,' in encode_transaction(make(amount=Decimal("0.1")))
    assert b'"amount":999999.99,' in encode_transaction(make(amount=Decimal("999999.99")))


def test_encoding_escapes_text_and_keeps_utf8() -> None:
    tx = make(description='say "hi"\n\\ \u00e9\u20ac', customer_id="CUST-\u00e9")
    encoded = encode_transaction(tx)
    json.loads(encoded)  # valid JSON
    assert "\u00e9\u20ac".encode() in encoded
    assert parsed(encoded) == tx


def test_json_dict_is_the_lab_shape_and_json_safe() -> None:
    tx = parsed(LAB_TRANSFER)
    document = tx.to_json_dict()
    assert list(document) == list(json.loads(LAB_TRANSFER))
    assert document["amount"] == "1200.00"
    assert document["type"] == 1 and type(document["type"]) is int
    assert document["status"] == 1 and type(document["status"]) is int
    assert document["timestamp"] == "2026-02-08T22:01:00Z"
    assert parsed(json.dumps(document)) == tx


def test_non_utc_timestamps_are_encoded_in_utc() -> None:
    tx = make(timestamp=datetime(2026, 2, 8, 23, 1, 0, 500, tzinfo=timezone(timedelta(hours=1))))
    assert tx.to_json_dict()["timestamp"] == "2026-02-08T22:01:00.000500Z"


# -- only what docs/ledger.md documents (issue 9, defect 8) ------------------------------------

# A numeric string must read as the JSON number would: ASCII digits, an optional minus sign,
# fraction and exponent, nothing around it.
NOT_DECIMAL_NUMBERS = [
    '"\uff11\uff12.\uff13\uff10"',  # fullwidth digits
    '"\u0661\u0662"',  # Arabic-Indic digits
    '"1__0"', '"1_0"', '" 7 "', '"7 "', '"\\t7"', '"12.30\\n"', '"+5"', '".5"', '"5."', '"007"', '"0x10"',
    '"1e"', '"NaN"', '"Infinity"', '""', '"12,30"',
]


@pytest.mark.parametrize("json_value", NOT_DECIMAL_NUMBERS)
def test_amount_strings_must_be_written_like_json_numbers(json_value: str) -> None:
    rejection = rejected(with_field("amount", json_value))
    assert rejection.reason is RejectionReason.INVALID_FIELD
    assert str(rejection) == f"invalid field: amount {json.loads(json_value)!r} is not a decimal number like 12.30"


@pytest.mark.parametrize(("json_value", "expected"), [
    ('"12.30"', "12.30"), ('"7"', "7.00"), ('"1e2"', "100.00"), ('"0.5"', "0.50"), ('"1000000"', "1000000.00"),
])
def test_amount_strings_written_like_json_numbers_are_accepted(json_value: str, expected: str) -> None:
    assert str(parsed(with_field("amount", json_value)).amount) == expected


@pytest.mark.parametrize(("name", "json_value"), [
    (name, value)
    for name in ("type", "status")
    for value in ('"D_E_P_O_S_I_T"', '"_deposit"', '"deposit_"', '"card__payment"', '"Card_Pay_ment"',
                  '"P_ENDING"', '"pending_"', '" Deposit"', '"Deposit\\n"', '"3"',
                  '"\uff24\uff25\uff30\uff2f\uff33\uff29\uff34"')
])
def test_type_and_status_names_are_the_documented_spellings_only(name: str, json_value: str) -> None:
    rejection = rejected(with_field(name, json_value))
    expected = RejectionReason.UNKNOWN_TYPE if name == "type" else RejectionReason.UNKNOWN_STATUS
    assert rejection.reason is expected
    assert repr(json.loads(json_value)) in str(rejection)


@pytest.mark.parametrize(("json_value", "expected"), [
    ('"CardPayment"', TransactionType.CARD_PAYMENT), ('"CARDPAYMENT"', TransactionType.CARD_PAYMENT),
    ('"CARD_PAYMENT"', TransactionType.CARD_PAYMENT), ('"card_payment"', TransactionType.CARD_PAYMENT),
    ('"InternationalTransfer"', TransactionType.INTERNATIONAL_TRANSFER),
    ('"INTERNATIONAL_TRANSFER"', TransactionType.INTERNATIONAL_TRANSFER),
])
def test_names_in_camel_case_or_upper_snake_case_are_accepted(json_value: str, expected: TransactionType) -> None:
    assert parsed(with_field("type", json_value)).type is expected


@pytest.mark.parametrize("json_value", [
    '"1000000"',  # Unix seconds in a string: not ISO 8601
    '"1770588000.5"',
    '"2026-02-08_22:00:00Z"',  # "_" is no ISO 8601 separator
    '"\uff12026-02-08T22:00:00Z"',  # a fullwidth digit
    '"\u0662\u0660\u0662\u0666-02-08T22:00:00Z"',  # Arabic-Indic digits
    '"2026-02-08T22:00:00Z "', '" 2026-02-08T22:00:00Z"',
    '"2026-02-08T22:00:00+01"',  # an offset needs its minutes
])
def test_timestamps_must_be_iso_8601_in_ascii(json_value: str) -> None:
    rejection = rejected(with_field("timestamp", json_value))
    assert rejection.reason is RejectionReason.INVALID_FIELD
    assert str(rejection).startswith(f"invalid field: timestamp {json.loads(json_value)!r} is not")


@pytest.mark.parametrize(("json_value", "expected"), [
    ('"2026-02-08t22:00:00z"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),  # RFC 3339 allows lower case
    ('"2026-02-08 22:00:00Z"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),  # and a space
    ('"2026-02-08T22:00Z"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),  # ISO 8601 allows leaving out seconds
    ('"2026-02-08T22:00:00,5Z"', datetime(2026, 2, 8, 22, 0, 0, 500000, tzinfo=UTC)),  # and a decimal comma
    ('"2026-02-08T23:30:00+0130"', datetime(2026, 2, 8, 22, 0, tzinfo=UTC)),
])
def test_iso_8601_variants_are_accepted(json_value: str, expected: datetime) -> None:
    assert parsed(with_field("timestamp", json_value)).timestamp == expected


# -- rejection reasons in plain words (issue 9, defect 7) ---------------------------------------

PLAIN_REASONS = [
    (b"\xff\xfe{}", "not UTF-8: byte 0xff at position 0 is not UTF-8 (invalid start byte)"),
    ('{"a":"\ud800"}', "not UTF-8: unpaired surrogate U+D800 at position 6 (text that cannot be encoded as UTF-8)"),
    (b"", "invalid JSON: the message is empty"),
    (b"\xef\xbb\xbf" + LAB_DEPOSIT, "invalid JSON: the message starts with a byte order mark (U+FEFF)"),
    (LAB_DEPOSIT[:44], "invalid JSON: unterminated string starting at position 41"),
    (LAB_DEPOSIT[:40], "invalid JSON: expected ':' at position 40"),
    (LAB_DEPOSIT + b"x", f"invalid JSON: more text after the JSON value at position {len(LAB_DEPOSIT)}"),
    (with_field("riskScore", "9" * 5000), "invalid JSON: a number has more than 4300 digits"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: nested too deeply to read"),
    (with_field("description", '"\\ud800"'),
     "invalid field: description contains an unpaired surrogate U+D800 at position 0 (not a Unicode character)"),
    (with_field("customerId", '"CUST-\\udc00"'),
     "invalid field: customerId contains an unpaired surrogate U+DC00 at position 5 (not a Unicode character)"),
    (with_field("customerId", "7"), "invalid field: customerId must be a string, got the number 7"),
    (with_field("transactionId", "null"), "invalid field: transactionId must be a string, got null"),
    (with_field("fromAccount", "{}"), "invalid field: fromAccount must be a string, got an object"),
    (with_field("description", "[1]"), "invalid field: description must be a string, got an array"),
    (with_field("customerId", '""'), "invalid field: customerId must not be empty"),
    (with_field("currency", '"EURO"'), "invalid field: currency must be 3 letters like EUR, got 'EURO'"),
    (with_field("currency", "978"), "invalid field: currency must be a string, got the number 978"),
    (with_field("riskScore", '"5"'), "invalid field: riskScore must be an integer, got the string '5'"),
    (with_field("riskScore", "2.5"), "invalid field: riskScore must be an integer, got the number 2.5"),
    (with_field("riskScore", "true"), "invalid field: riskScore must be an integer, got a boolean"),
    (with_field("riskScore", str(2**40)),
     "invalid field: riskScore 1099511627776 is outside the 32-bit range -2147483648..2147483647"),
    (with_field("timestamp", '"yesterday"'),
     "invalid field: timestamp 'yesterday' is not an ISO 8601 date-time like 2026-02-08T22:00:00Z"),
    (with_field("timestamp", '"2026-02-30T22:00:00Z"'),
     "invalid field: timestamp '2026-02-30T22:00:00Z' is not a valid date-time: day value is outside expected range"),
    (with_field("timestamp", "1770588000"),
     "invalid field: timestamp must be an ISO 8601 string, got the number 1770588000"),
    (with_field("timestamp", '"0001-01-01T00:00:00+01:00"'),
     "invalid field: timestamp '0001-01-01T00:00:00+01:00' is out of range once converted to UTC"),
    (with_field("type", "true"), "invalid field: type must be an integer or a name, got a boolean"),
    (with_field("status", "[1]"), "invalid field: status must be an integer or a name, got an array"),
    (with_field("type", "99"), "unknown type: 99 (expected 1 to 7 or a name such as CardPayment)"),
    (with_field("status", '"Cancelled"'), "unknown status: 'Cancelled' (expected 1 to 5 or a name such as Completed)"),
    (with_field("amount", "null"), "invalid field: amount must be a number, got null"),
    (with_field("amount", "NaN"), "invalid field: amount is not a number (NaN)"),
    (with_field("amount", "1200.005"), "invalid field: amount 1200.005 has more than 2 decimal places"),
    (with_field("amount", "0.0100000000000000001"),
     "invalid field: amount 0.0100000000000000001 has more than 2 decimal places"),
    (with_field("amount", "0"), "amount out of range: 0 is below the minimum of 0.01"),
    (with_field("amount", "-5.00"), "amount out of range: -5.00 is below the minimum of 0.01"),
    (with_field("amount", "1000000.01"), "amount out of range: 1000000.01 is above the maximum of 1,000,000"),
    (with_field("amount", "Infinity"), "amount out of range: Infinity is above the maximum of 1,000,000"),
    (without_field("customerId"), "missing field: customerId"),
]


@pytest.mark.parametrize(("raw", "text"), PLAIN_REASONS, ids=range(len(PLAIN_REASONS)))
def test_reasons_name_the_field_and_the_problem(raw: object, text: str) -> None:
    assert str(rejected(raw)) == text


@pytest.mark.parametrize(("raw", "reason", "text"), REJECTIONS, ids=range(len(REJECTIONS)))
def test_no_reason_repeats_a_library_message(raw: object, reason: RejectionReason, text: str) -> None:
    words = str(rejected(raw))
    for library_phrase in ("Input should", "String should", "validation error", "type=", "Expecting"):
        assert library_phrase not in words
    if reason is RejectionReason.INVALID_FIELD:
        field = words.removeprefix("invalid field: ").split(" ")[0]
        assert field in FIELD_NAMES, words


# -- control characters in identifiers (issue 9, defect 3) --------------------------------------

ID_FIELDS = ["transactionId", "fromAccount", "toAccount", "currency", "customerId"]
CONTROL_CHARACTERS = [
    ("\\u0000", 0x00), ("\\u0007", 0x07), ("\\u001b", 0x1B), ("\\n", 0x0A), ("\\t", 0x09), ("\x7f", 0x7F),
    ("\\u007f", 0x7F), ("\u0085", 0x85), ("\u009b", 0x9B),  # C1: NEL and CSI
    ("\u200b", 0x200B), ("\u200e", 0x200E), ("\u202e", 0x202E), ("\u2066", 0x2066), ("\ufeff", 0xFEFF),
    ("\u00ad", 0xAD),  # format controls (category Cf), bidi overrides among them
]


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize(("written", "code_point"), CONTROL_CHARACTERS)
def test_identifiers_with_control_characters_are_rejected(field: str, written: str, code_point: int) -> None:
    value = "EU" + written if field == "currency" else "ID-" + written + "-1"
    rejection = rejected(with_field(field, f'"{value}"'))
    position = 2 if field == "currency" else 3
    assert rejection.reason is RejectionReason.INVALID_FIELD
    assert str(rejection) == (f"invalid field: {field} contains a control character U+{code_point:04X} "
                              f"at position {position}")


def test_the_reported_terminal_escapes_are_rejected() -> None:
    title = rejected(with_field("customerId", '"\\u001b]0;PWNED-TITLE\\u0007"'))
    assert str(title) == "invalid field: customerId contains a control character U+001B at position 0"
    clear = rejected(with_field("customerId", '"CUST-001\\u001b[2J"'))
    assert str(clear) == "invalid field: customerId contains a control character U+001B at position 8"


def test_descriptions_keep_control_characters() -> None:
    # Free text: the display layer makes them visible; the ledger keeps what was sent.
    assert parsed(with_field("description", '"a\\u001b[2Jb\\u202e\\u0007"')).description == "a\x1b[2Jb\u202e\x07"


def test_identifiers_may_hold_other_unicode() -> None:
    # Only categories Cc and Cf are refused: letters, marks, symbols and spaces are identifiers' business.
    identifier = "CUST\u00a0\u00e9\u20ac \u4e2d"
    assert parsed(with_field("customerId", f'"{identifier}"')).customer_id == identifier
