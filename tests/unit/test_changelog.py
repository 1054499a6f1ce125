"""Changelog records: exact round trip, and restoration folding."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from balance_tui.core.changelog import PartitionRestore, changelog_topic, decode_state, encode_state
from balance_tui.core.ledger import CustomerState

T0 = datetime(2026, 2, 8, 22, 1, tzinfo=UTC)


def state(customer: str = "CUST-001", offset: int | None = 7, **balances: str) -> CustomerState:
    return CustomerState(customer, {c: Decimal(a) for c, a in (balances or {"EUR": "3800.00"}).items()},
                         transaction_count=2, last_updated=T0, last_transaction_id="BAL-002",
                         known_accounts=("FR7630001000123456789",), partition=3, offset=offset)


def test_round_trip_keeps_every_field_exactly():
    original = state(EUR="-150.00", USD="0.01")
    assert decode_state(encode_state(original)) == original


@settings(max_examples=60)
@given(customer=st.text(min_size=1, max_size=20), account=st.text(max_size=20),
       cents=st.integers(min_value=-10**11, max_value=10**11), tx_id=st.text(max_size=20))
def test_round_trip_with_any_strings(customer, account, cents, tx_id):
    original = CustomerState(customer, {"EUR": Decimal(cents).scaleb(-2)}, 1, T0, tx_id, (account, "Z" + account), 0, 1)
    assert decode_state(encode_state(original)) == original


def test_restore_keeps_the_latest_state_per_customer_and_the_highest_offset():
    restore = PartitionRestore(3)
    restore.add(encode_state(state("A", 1, EUR="1.00")))
    restore.add(encode_state(state("B", 2, EUR="2.00")))
    restore.add(encode_state(state("A", 5, EUR="5.00")))
    restore.add(b"not json")
    restore.add(None)
    assert restore.states["A"].balances == {"EUR": Decimal("5.00")}
    assert restore.highest_offset == 5
    assert restore.resume_offset == 6
    assert (restore.records, restore.invalid) == (5, 1)


def test_empty_changelog_resumes_from_the_beginning():
    assert PartitionRestore(0).resume_offset is None


def test_topic_name_follows_the_group():
    assert changelog_topic("balance-service") == "balance-service.balances-changelog"


def test_a_late_record_from_a_former_owner_does_not_roll_a_customer_back():
    # The former owner's producer delivered offset 3 after the new owner had written offset 8.
    restore = PartitionRestore(3)
    restore.add(encode_state(state("A", 8, EUR="8.00")))
    restore.add(encode_state(state("A", 3, EUR="3.00")))
    assert restore.states["A"].balances == {"EUR": Decimal("8.00")}
    assert restore.resume_offset == 9


# -- flushes: one record per changed customer, then a position ---------------------------------------------


def test_restore_resumes_after_the_last_position_not_after_the_highest_record():
    from balance_tui.core.changelog import encode_position

    restore = PartitionRestore(3)
    restore.add(encode_state(state("A", 4, EUR="4.00")))
    restore.add(encode_position(4, "w1"))
    # A flush cut short: B's record landed, the position closing the flush did not.
    restore.add(encode_state(state("B", 9, EUR="9.00")))
    assert restore.consume_from == 5  # the replay rule skips B's transactions up to 9
    assert restore.resume_offset == 5  # verify compares up to the position, B up to its own offset
    assert restore.position == 4 and restore.highest_offset == 9


def test_without_a_position_a_new_owner_reads_from_the_beginning():
    restore = PartitionRestore(0)
    restore.add(encode_state(state("A", 4)))  # a first flush cut short, or an older changelog
    assert restore.consume_from is None
    assert restore.resume_offset == 5


def test_a_record_older_than_an_earlier_one_of_its_customer_is_reported():
    from balance_tui.core.changelog import encode_position

    restore = PartitionRestore(1)
    restore.add(encode_state(state("A", 8, EUR="8.00")))
    restore.add(encode_position(8, "new-owner"))
    restore.add(encode_state(state("A", 3, EUR="3.00")))  # a woken zombie's, without fencing
    restore.add(encode_position(3, "zombie"))
    assert restore.backwards_count == 2
    assert [(b.key, b.offset, b.after_offset) for b in restore.backwards] == [("A", 3, 8), ("\x00position", 3, 8)]
    assert restore.states["A"].balances == {"EUR": Decimal("8.00")} and restore.position == 8


def test_position_records_are_told_from_states_by_their_shape():
    from balance_tui.core.changelog import decode_position, encode_position

    assert decode_position(encode_position(12, "w\n\"x")) == 12
    assert decode_position(encode_state(state("A", 4))) is None
    assert decode_position(b'{"position":true}') is None


@settings(max_examples=300)
@given(customer=st.text(min_size=1, max_size=12), accounts=st.sets(st.text(max_size=12), max_size=3),
       balances=st.dictionaries(st.text(min_size=1, max_size=4),
                                st.decimals(allow_nan=False, allow_infinity=False, places=2), max_size=3),
       count=st.integers(0, 10**12), tx_id=st.text(max_size=12),
       updated=st.none() | st.datetimes(timezones=st.none() | st.timezones()),
       partition=st.none() | st.integers(0, 10**4), offset=st.none() | st.integers(0, 10**15))
def test_the_fast_reading_of_a_record_is_the_exact_one(customer, accounts, balances, count, tx_id, updated,
                                                       partition, offset):
    from balance_tui.core.changelog import _decode_state_exactly

    raw = encode_state(CustomerState(customer, balances, count, updated, tx_id, accounts, partition, offset))
    fast, exact = decode_state(raw), _decode_state_exactly(raw)
    assert fast == exact
    assert {c: str(a) for c, a in fast.balances.items()} == {c: str(a) for c, a in exact.balances.items()}
    assert (fast.last_updated.utcoffset() if fast.last_updated else None) == \
        (exact.last_updated.utcoffset() if exact.last_updated else None)
