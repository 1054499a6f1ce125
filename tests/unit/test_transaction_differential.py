"""The fast parser against the reference model: same transaction, same values, same rejection.

`parse_transaction` (msgspec) decides the messages it is sure of and hands the others to
`parse_transaction_reference` (the pydantic model, docs/ledger.md). These tests run both on
generated valid, borderline and malformed messages and require identical results, and check
that ordinary messages really are decided by the fast path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balance_tui.core import transaction as transaction_module
from balance_tui.core.traffic import BadKind, TrafficGenerator, spoil
from balance_tui.core.transaction import (
    Rejection,
    Transaction,
    TransactionStatus,
    TransactionType,
    encode_transaction,
    parse_transaction,
    parse_transaction_reference,
)

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LAB_DEPOSIT = {
    "transactionId": "BAL-001", "fromAccount": "BANK", "toAccount": "FR7630001000123456789", "amount": 5000,
    "currency": "EUR", "type": 3, "description": "Depot initial", "customerId": "CUST-001",
    "timestamp": "2026-02-08T22:00:00Z", "riskScore": 0, "status": 1,
}


def assert_same(raw: object) -> Transaction | Rejection:
    """Both paths on `raw`: equal results, and a transaction's values of the documented types."""
    fast = parse_transaction(raw)  # type: ignore[arg-type]
    reference = parse_transaction_reference(raw)
    assert type(fast) is type(reference), (raw, fast, reference)
    if isinstance(fast, Rejection):
        assert (fast.reason, fast.detail) == (reference.reason, reference.detail)  # type: ignore[union-attr]
        return fast
    assert msgspec.structs.astuple(fast) == msgspec.structs.astuple(reference), raw  # type: ignore[arg-type]
    for tx in (fast, reference):
        assert type(tx.amount) is Decimal and tx.amount.as_tuple().exponent == -2  # type: ignore[union-attr]
        assert tx.timestamp.tzinfo is UTC  # type: ignore[union-attr]
        assert type(tx.type) is TransactionType and type(tx.status) is TransactionStatus  # type: ignore[union-attr]
        assert type(tx.risk_score) is int and tx.currency.isupper()  # type: ignore[union-attr]
    return fast


def decided_fast(raw: bytes | str) -> bool:
    """Whether `parse_transaction` decided `raw` without asking the reference."""
    with mock.patch.object(transaction_module, "parse_transaction_reference",
                           wraps=parse_transaction_reference) as reference:
        parse_transaction(raw)
    return not reference.called


def document_with(**json_texts: str) -> str:
    """The lab's deposit as JSON text, each named field replaced by a JSON text."""
    parts = [f"{json.dumps(name)}:{json_texts.get(name, json.dumps(value))}" for name, value in LAB_DEPOSIT.items()]
    return "{" + ",".join(parts) + "}"


# -- the edges, listed: each is tried in its field (test_every_listed_edge_agrees) and generated -------

AMOUNT_EDGES = [
    "0.01", "0.009", "1000000", "1000000.00", "1000000.001", "1000000.01", "-0", "-0.0", "0", "1E+2", "1e-2",
    "1.005", "12.500", "0.0100000000000000001", "1.000000000000000000001", "99999999999999999999", "1e400",
    "-1e400", "1e999999999999999999999", "1e-999999999999999999999", "NaN", "Infinity", "-Infinity", "true",
    "null", "[]", "{}", '"12.30"', '"7"', '" 7 "', '"1e2"', '"\\uff11\\uff12"', '"\\u0661\\u0662"', '"1_0"', '"1__0"',
    '""', '"NaN"', '"Infinity"', '"+5"', '".5"', "1.", ".5", "01", "+1", "0x10",
    # At the limits of what a Decimal holds: the fast path's context traps them, Decimal() may not.
    "1e999999999999999999", "1e-999999999999999999", "1e-1000000000000000000", "1e-1000000000000000017",
    "-1e-1000000000000000000", "0e-1000000000000000000", "0e999999999999999999", "1E+6", "100000000e-2",
    "1000000.0000000000000000000000000000000000000001", "0." + "0" * 60 + "1", "5" + "0" * 40 + "e-40",
]
TIMESTAMP_EDGES = [
    "2026-02-30T22:00:00Z", "2025-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2026-02-08T24:00:00Z",
    "2026-02-08T23:59:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01",
    "0001-01-01T00:00:00-00:01", "9999-12-31T23:59:59-00:01", "9999-12-31T23:59:59.9999999Z", "1770588000",
    "2026-02-08", "2026-02-08T22:00Z", "2026-02-08T22Z", "\uff12026-02-08T22:00:00Z", "2026-02-08_22:00:00Z",
    "2026-02-08T22:00:00.1234567+01:00", "2026-02-08T22:00:00.Z", "2026-02-08T22:00:00,5Z",
    "2026-02-08T22:00:00.123456789-23:59", "2026-02-08T22:00:00.1234567890Z", "2026-02-08T22:00:00+23:59",
    "2026-02-08T22:00:00+24:00", "2026-02-08T22:00:00-23:60", "2026-02-08T22:00:00+01", "2026-02-08T22:00:00+01:00:00",
    " 2026-02-08T22:00:00Z", "2026-02-08T22:00:00Z ", "2026-02-08t22:00:00z", "2026-02-08 22:00:00Z",
    "2026-02-08T22:00:00.000000Z", "2026-02-08T22:00:00.9999995Z", "2026-02-08T22:00:00.99999949Z",
    "20260208T220000Z", "2026-W06-7T22:00:00Z", "2026-02-08T22:00:00UTC", "",
    "2026-02-08T22:00:00.1+01:00", "2026-02-08T22:00:00.12+01:00", "2026-02-08T22:00:00.123+0100",
    "2026-02-08T22:00:00.1234567+0100", "2026-02-08T22:00:00.12345678-01", "2026-02-08T22:00:00.9999999+00:00",
    "2026-02-08T22:00:00.123456Z ", "2026-02-08T22:00:00.1234567z", "2026-02-08T22:00:00.12345600000",
]
# The same as JSON text, with escapes that move a long timestamp's characters.
ESCAPED_TIMESTAMPS = [
    '"2026-02-08T22:00:00.123456\\u0037Z"', '"2026-02-08T22:00:00\\u002e1234567Z"',
    '"2026-02-08T22:00:00.1234567\\u005a"', '"\\u0032026-02-08T22:00:00.1234567Z"',
    '"2026-02-08T22:00:00.1\\u0032+01:00"', '"2026-02-08T22:00:00.123456789\\u005A"',
    '"2026-02-08T22:00:00.12\\u00345"', '"2026-02-08T22:00:00.1234\\u002b01:00"',
]
CURRENCY_EDGES = ["EUR", "eur", "Eur", "USD", "E1R", "EURO", "EU", "EUR\n", "\uff25UR", "\u00c9UR", "\u212aRW",
                  "E\u202eR", "E\x00R", "   "]
ENUM_EDGES = ["Transfer", "DEPOSIT", "card_payment", "CardPayment", "C_ARD_PAYMENT", " Deposit", "3", "Pending",
              "completed", "failed", "REJECTED", "Processing", "cancelled", "d\u0435posit", "\u212aDeposit", True,
              None, 1.0, [1], {"a": 1}, 0, 8, -1, 2**64]
RISK_EDGES = [1.0, "5", True, None, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 10**30, [1]]
IDENTIFIER_EDGES = ["", " ", "\u00a0", "CUST\u001b[2J", "\x7f", "\u0085", "\u200b", "\u202eX", "\ufeff",
                    "\ue000", "\U0001f600", "\u0378", "\u2028", "a\u0301", "\x00"]
UNKNOWN_FIELD_EDGES = [
    "[" * 150 + "]" * 150, "[" * 201 + "]" * 201, "[" * 250 + "]" * 250, '{"a":' * 120 + "1" + "}" * 120,
    "9" * 4300, "9" * 4301, "1e999999999999999999999", "NaN", "-Infinity", '"\\ud800"', '"\\udc00\\ud800"',
    '"\\ud83d\\ude00"', "1.5e308", "-0", '"\\u0000"', "[1,2,]", "01",
]


# -- generated messages --------------------------------------------------------------------------

identifiers = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
amount_texts = st.one_of(
    st.integers(1, 100_000_000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}"),  # the usual
    st.integers(-5, 2_000_000).map(str),
    st.decimals(min_value=-10, max_value=2_000_000, allow_nan=False, places=3).map(str),
    st.builds(lambda digits, exponent: f"{digits}e{exponent}", st.integers(0, 10**6), st.integers(-8, 8)),
    st.sampled_from(AMOUNT_EDGES),
)
offsets = st.builds(lambda sign, hours, minutes, colon: f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}",
                    st.sampled_from("+-"), st.integers(0, 25), st.integers(0, 61), st.booleans())
timestamp_texts = st.one_of(
    st.builds(
        lambda moment, separator, fraction, zone, seconds: (
            moment.strftime("%Y-%m-%d") + separator + moment.strftime("%H:%M")
            + (moment.strftime(":%S") + fraction if seconds else "") + zone
        ),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from(["T", "t", " ", "_", "X"]),
        st.one_of(st.just(""), st.builds(lambda mark, digits: mark + digits, st.sampled_from([".", ","]),
                                         st.text("0123456789", min_size=0, max_size=12))),
        st.one_of(st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+0000", "UTC", "+01"]), offsets),
        st.booleans(),
    ),
    st.sampled_from(TIMESTAMP_EDGES),
)
currencies = st.one_of(st.sampled_from(CURRENCY_EDGES),
                       st.text(st.characters(max_codepoint=0x2FF), min_size=3, max_size=3))
enum_values = st.one_of(
    st.integers(-2, 9),
    st.sampled_from(ENUM_EDGES),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
extra_fields = st.dictionaries(st.text(max_size=6).filter(lambda key: key not in LAB_DEPOSIT), json_values, max_size=3)


cents = st.integers(1, 100_000_000)
valid_amount_texts = st.one_of(
    cents.map(lambda n: f"{n // 100}.{n % 100:02d}"),  # what producers write
    st.integers(1, 1_000_000).map(str),
    cents.map(lambda n: f"{n // 100}.{n % 100:02d}000"),
    cents.map(lambda n: f"{n}e-2"),
    cents.filter(lambda n: n % 10 == 0).map(lambda n: f"{n // 100}.{n % 100 // 10}"),
    cents.map(lambda n: json.dumps(f"{n // 100}.{n % 100:02d}")),  # a numeric string
)
valid_timestamp_texts = st.builds(
    lambda moment, separator, digits, zone: (
        moment.strftime("%Y-%m-%d") + separator + moment.strftime("%H:%M:%S")
        + ("." + digits if digits else "") + zone
    ),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["T", "T", "T", "t", " "]),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9)),
    st.one_of(st.sampled_from(["Z", "Z", "z", "", "+00:00", "-00:00", "+0000"]),
              st.builds(lambda sign, hours, minutes, colon: f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}",
                        st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59), st.booleans())),
)
plain_identifiers = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789", min_size=1, max_size=24)


@st.composite
def messages(draw: st.DrawFn) -> bytes | str:
    """A lab-shaped message, in any JSON layout; now and then a field borderline, wrong or missing."""

    def pick(usual: st.SearchStrategy[object], odd: st.SearchStrategy[object]) -> object:
        return draw(odd) if draw(st.integers(0, 19)) == 0 else draw(usual)

    def literal(value: object) -> str:
        return json.dumps(value, ensure_ascii=draw(st.booleans()))

    texts = {
        "transactionId": literal(pick(plain_identifiers, identifiers)),
        "fromAccount": literal(pick(plain_identifiers, identifiers)),
        "toAccount": literal(pick(plain_identifiers, identifiers)),
        "amount": pick(valid_amount_texts, amount_texts),
        "currency": literal(pick(st.sampled_from(["EUR", "USD", "GBP", "chf"]), currencies)),
        "type": literal(pick(st.integers(1, 7), enum_values)),
        "description": literal(pick(st.text(max_size=20), st.sampled_from(["", "\x1b[2J", "\u202e", "\ud83d"]))),
        "customerId": literal(pick(plain_identifiers, identifiers)),
        "timestamp": literal(pick(valid_timestamp_texts, timestamp_texts)),
        "riskScore": literal(pick(st.integers(-(2**31), 2**31 - 1), st.one_of(
            st.integers(-(2**31) - 1, 2**31), st.sampled_from(RISK_EDGES)))),
        "status": literal(pick(st.integers(1, 5), enum_values)),
    }
    if draw(st.integers(0, 19)) == 0:
        del texts[draw(st.sampled_from(sorted(texts)))]
    pairs = list(texts.items())
    if draw(st.integers(0, 3)) == 0:
        pairs += [(key, json.dumps(value)) for key, value in draw(extra_fields).items()]
    if draw(st.integers(0, 3)) == 0:
        pairs = draw(st.permutations(pairs))
    if pairs and draw(st.integers(0, 19)) == 0:  # a duplicated key: the last one counts
        pairs.append((draw(st.sampled_from(pairs))[0], draw(st.sampled_from(['"x"', "1", "5000.00", "null"]))))
    spaces = draw(st.sampled_from(["", "", " ", "\n  ", "\t"]))
    escape_keys = draw(st.integers(0, 19)) == 0
    def key_text(name: str) -> str:
        if not escape_keys:
            return json.dumps(name)
        return '"' + "".join(f"\\u{ord(c):04x}" if c in "aeiou" else c for c in name) + '"'
    text = "{" + spaces + ("," + spaces).join(f"{key_text(k)}:{spaces}{v}" for k, v in pairs) + spaces + "}"
    return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text


@MANY
@given(messages())
def test_fast_and_reference_agree_on_generated_messages(raw: bytes | str) -> None:
    assert_same(raw)


@MANY
@given(messages(), st.data())
def test_fast_and_reference_agree_on_damaged_messages(raw: bytes | str, data: st.DataObject) -> None:
    encoded = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    position = data.draw(st.integers(0, len(encoded)))
    damage = data.draw(st.sampled_from(["cut", "byte", "insert"]))
    if damage == "cut":
        encoded = encoded[:position]
    elif damage == "byte" and position < len(encoded):
        encoded = encoded[:position] + bytes([data.draw(st.integers(0, 255))]) + encoded[position + 1:]
    else:
        encoded = encoded[:position] + data.draw(st.binary(min_size=1, max_size=3)) + encoded[position:]
    assert_same(encoded)


@MANY
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(json.dumps)))
def test_fast_and_reference_agree_on_anything(raw: bytes | str) -> None:
    assert_same(raw)


@MANY
@given(st.builds(
    Transaction.validated,
    transaction_id=st.text(st.characters(categories=("L", "N", "P", "S")), max_size=20),
    from_account=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", max_size=34),
    to_account=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", max_size=34),
    amount=st.integers(1, 100_000_000).map(lambda cents: Decimal(cents).scaleb(-2)),
    currency=st.sampled_from(["EUR", "USD", "GBP", "CHF"]),
    type=st.sampled_from(TransactionType),
    description=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    customer_id=st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12),
    timestamp=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    risk_score=st.integers(-(2**31), 2**31 - 1),
    status=st.sampled_from(TransactionStatus)))
def test_encoded_transactions_are_decided_by_the_fast_path(tx: Transaction) -> None:
    # Printable identifiers, cents, any instant: what producers send takes the fast path.
    raw = encode_transaction(tx)
    assert decided_fast(raw) and decided_fast(raw.decode())
    assert assert_same(raw) == tx


def _edge_documents() -> dict[str, str]:
    """Test id -> the lab's deposit with one field (or an unknown one) set to a listed edge."""
    documents = {f"amount {edge}": document_with(amount=edge) for edge in AMOUNT_EDGES}
    for name, edges in (("timestamp", TIMESTAMP_EDGES), ("currency", CURRENCY_EDGES), ("type", ENUM_EDGES),
                        ("status", ENUM_EDGES), ("riskScore", RISK_EDGES)):
        documents.update({f"{name} {edge!r}": document_with(**{name: json.dumps(edge)}) for edge in edges})
    for name in ("transactionId", "fromAccount", "toAccount", "customerId", "description"):
        for ascii in (True, False):
            documents.update({f"{name} {edge!r} {'escaped' if ascii else 'raw'}":
                              document_with(**{name: json.dumps(edge, ensure_ascii=ascii)})
                              for edge in IDENTIFIER_EDGES})
    documents.update({f"unknown field {edge[:12]}...{len(edge)}": document_with()[:-1] + f',"x":{edge}}}'
                      for edge in UNKNOWN_FIELD_EDGES})
    documents.update({f"timestamp {edge}": document_with(timestamp=edge) for edge in ESCAPED_TIMESTAMPS})
    # Beside a non-ASCII description, the message is not ASCII: each identifier is screened on its own.
    for name in ("transactionId", "fromAccount", "toAccount", "customerId"):
        documents.update({f"{name} {edge!r} beside a non-ASCII description":
                          document_with(**{name: json.dumps(edge, ensure_ascii=False), "description": '"Caf\u00e9"'})
                          for edge in IDENTIFIER_EDGES})
    documents["DEL in the description only"] = document_with(description='"Depot\x7f"')
    documents["escape in the description only"] = document_with(description='"Depot \\"initial\\""')
    return documents


EDGE_DOCUMENTS = _edge_documents()


@pytest.mark.parametrize("text", EDGE_DOCUMENTS.values(), ids=EDGE_DOCUMENTS.keys())
def test_every_listed_edge_agrees(text: str) -> None:
    assert_same(text)
    assert_same(text.encode("utf-8", "surrogatepass"))


# -- the cases worth naming ------------------------------------------------------------------------

FAST_CASES = {
    "lab deposit": document_with(amount="5000.00"),
    "integer amount": document_with(amount="7"),
    "exponent amount": document_with(amount="1.2e3"),
    "offset": document_with(timestamp='"2026-02-08T23:30:00+01:30"'),
    "no offset": document_with(timestamp='"2026-02-08T22:00:00"'),
    ".NET's 7 digits": document_with(timestamp='"2026-02-08T22:00:00.1234567Z"'),
    "microseconds and offset": document_with(timestamp='"2026-02-08T22:00:00.123456+00:00"'),
    "nanoseconds and offset": document_with(timestamp='"2026-02-08T22:00:00.123456789-01:00"'),
    "non-ASCII description": document_with(description='"Caf\u00e9 de Flore \u20ac"'),
    "lower-case currency": document_with(currency='"eur"'),
    "a code outside ISO 4217": document_with(currency='"ABC"'),
    "string amount": document_with(amount='"12.30"'),
    "string amount with an exponent": document_with(amount='"1.5e2"'),
    "unknown fields": document_with()[:-1] + ',"channel":"mobile","meta":{"a":[1,2.5,null]}}',
}


@pytest.mark.parametrize("text", FAST_CASES.values(), ids=FAST_CASES.keys())
def test_ordinary_variants_take_the_fast_path(text: str) -> None:
    for raw in (text, text.encode()):
        assert decided_fast(raw)
        assert isinstance(assert_same(raw), Transaction)


def test_seven_digit_fractions_are_truncated_like_the_reference() -> None:
    # msgspec alone would round .9999999 up to the next second.
    tx = assert_same(document_with(timestamp='"2026-02-08T22:00:59.9999999Z"'))
    assert tx.timestamp == datetime(2026, 2, 8, 22, 0, 59, 999999, tzinfo=UTC)  # type: ignore[union-attr]


SLOW_CASES = {
    "type by name": document_with(type='"Deposit"'),
    "escaped control character": document_with(customerId='"CUST\\u001b"'),
    "raw DEL": document_with(customerId='"CUST\x7f"'),
    "bidi override": document_with(customerId='"CUST\u202e"'),
    "invalid UTF-8 in an unknown field": (document_with()[:-1] + ',"x":"\xff"}').encode("latin-1"),
    "deep unknown field": document_with()[:-1] + ',"x":' + "[" * 250 + "]" * 250 + "}",
    "huge unknown number": document_with()[:-1] + ',"x":' + "9" * 5000 + "}",
    "comma fraction": document_with(timestamp='"2026-02-08T22:00:00,5Z"'),
}


@pytest.mark.parametrize("raw", SLOW_CASES.values(), ids=SLOW_CASES.keys())
def test_what_msgspec_cannot_vouch_for_goes_to_the_reference(raw: bytes | str) -> None:
    assert not decided_fast(raw)
    assert_same(raw)


def test_traffic_generator_messages_agree_and_take_the_fast_path() -> None:
    generator = TrafficGenerator(seed=3, bad_ratio=0.1, clock=lambda: datetime(2026, 2, 8, 22, tzinfo=UTC))
    for _, value in generator.next_batch(3000):
        result = assert_same(value)
        if isinstance(result, Transaction) and b"\\" not in value:
            assert decided_fast(value)
    for kind in BadKind:
        assert isinstance(assert_same(spoil(generator.next_batch(1)[0][1], kind)), Rejection)


@pytest.mark.parametrize("hours", range(-23, 24))
def test_every_offset_hour_converts_alike(hours: int) -> None:
    sign = "-" if hours < 0 else "+"
    for minutes in (0, 30, 59):
        stamp = f"2026-02-08T22:00:00.5{sign}{abs(hours):02d}:{minutes:02d}"
        tx = assert_same(document_with(timestamp=json.dumps(stamp)))
        offset = timedelta(hours=abs(hours), minutes=minutes) * (-1 if sign == "-" else 1)
        assert tx.timestamp == datetime(2026, 2, 8, 22, 0, 0, 500000, tzinfo=timezone(offset))  # type: ignore[union-attr]


# -- the last timestamp, remembered ----------------------------------------------------------------

def test_the_first_message_of_a_process_is_read_like_any_other() -> None:
    for stamp in ('""', "null", "0", '"0001-01-01T00:00:00Z"'):
        transaction_module._last_timestamp[0] = transaction_module._NO_TIMESTAMP  # as in a new process
        assert_same(document_with(timestamp=stamp).encode())


shared_stamps = st.lists(st.one_of(valid_timestamp_texts, timestamp_texts), min_size=1, max_size=4)


@MANY
@given(st.data())
def test_runs_of_equal_timestamps_agree_message_by_message(data: st.DataObject) -> None:
    # A few timestamps shared by several messages, in any order, as bytes, str or bytearray:
    # each result must be the reference's, whatever the message before it was.
    if data.draw(st.booleans()):
        transaction_module._last_timestamp[0] = transaction_module._NO_TIMESTAMP
    stamps = data.draw(shared_stamps)
    for _ in range(data.draw(st.integers(2, 8))):
        stamp = json.dumps(data.draw(st.sampled_from(stamps)), ensure_ascii=data.draw(st.booleans()))
        text = document_with(timestamp=stamp, amount=data.draw(valid_amount_texts))
        raw = data.draw(st.sampled_from([text.encode(), text, bytearray(text.encode())]))
        assert_same(raw)


def test_a_run_of_one_timestamp_reads_it_once() -> None:
    values = [value for _, value in TrafficGenerator(seed=4).next_batch(50)]
    parse_transaction(values[0])
    with mock.patch.object(transaction_module, "_decode_datetime",
                           wraps=transaction_module._decode_datetime) as read:
        results = [assert_same(value) for value in values[1:]]
    assert read.call_count == 0
    assert len({result.timestamp for result in results}) == 1  # type: ignore[union-attr]


def test_a_buffer_changed_after_parsing_is_not_remembered() -> None:
    # msgspec.Raw points into the buffer it was read from: a bytearray's text can change afterwards.
    buffer = bytearray(document_with(timestamp='"2026-02-08T22:00:00.111Z"').encode())
    assert_same(buffer)
    start = buffer.index(b"22:00:00.111")
    buffer[start:start + 12] = b"23:59:59.999"
    assert_same(bytes(buffer))
    assert_same(document_with(timestamp='"2026-02-08T22:00:00.111Z"').encode())
    assert assert_same(buffer).timestamp == datetime(2026, 2, 8, 23, 59, 59, 999000, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize("stamp", ['"2026-02-08T22:00:00.1234567Z"', '"2026-02-08T22:00:00.123456+00:00"',
                                   '"2026-02-08T22:00:00.1234567+01:00"', '"2026-02-08T22:00:00.12+01:00"'])
def test_long_timestamps_take_the_fast_path_and_agree(stamp: str) -> None:
    raw = document_with(timestamp=stamp).encode()
    transaction_module._last_timestamp[0] = transaction_module._NO_TIMESTAMP
    assert decided_fast(raw)
    assert_same(raw)
