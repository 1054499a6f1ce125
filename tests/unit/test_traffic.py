"""The traffic generator: determinism, a consistent world, parseable payloads, malformed ones, murmur2."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from balance_tui.commands import produce as produce_command
from balance_tui.core.ledger import Effect, Ledger
from balance_tui.core.traffic import (
    PROFILES,
    BadKind,
    TrafficGenerator,
    murmur2,
    murmur2_partition,
    spoil,
)
from balance_tui.core.transaction import (
    Rejection,
    RejectionReason,
    Transaction,
    TransactionStatus,
    TransactionType,
    parse_transaction,
)
from balance_tui.kafka.producer import (
    MAX_WAIT_SECONDS,
    MIN_WAIT_SECONDS,
    ProduceReport,
    TokenBucket,
    poll_timeout,
    throttled_wait,
)

FIXED = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)

CREDIT_ONLY = {TransactionType.DEPOSIT}
DEBIT_ONLY = {TransactionType.PAYMENT, TransactionType.WITHDRAWAL, TransactionType.CARD_PAYMENT,
              TransactionType.BILL_PAYMENT}
EITHER_WAY = {TransactionType.TRANSFER, TransactionType.INTERNATIONAL_TRANSFER}


def fixed_clock() -> datetime:
    return FIXED


def generate(count: int, **options) -> list[tuple[bytes, bytes]]:
    generator = TrafficGenerator(clock=fixed_clock, **options)
    return generator.next_batch(count)


def transactions(generator: TrafficGenerator, count: int) -> list[Transaction]:
    parsed = [parse_transaction(value) for _, value in generator.next_batch(count)]
    rejected = [item for item in parsed if isinstance(item, Rejection)]
    assert not rejected, f"good messages were rejected: {rejected[:3]}"
    return parsed  # type: ignore[return-value]


# -- murmur2 --------------------------------------------------------------------------------

# Java's org.apache.kafka.common.utils.UtilsTest.testMurmur2.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# kafka-python's test_partitioner.py: partitions out of 1000 that the Java partitioner picks.
JAVA_PARTITION_OF_1000 = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566, b"\x00 ": 742}


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_murmur2_matches_java(key, expected):
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), JAVA_PARTITION_OF_1000.items())
def test_murmur2_partition_matches_the_java_partitioner(key, expected):
    assert murmur2_partition(key, 1000) == expected


def test_murmur2_partition_needs_a_partition():
    with pytest.raises(ValueError):
        murmur2_partition(b"CUST-001", 0)


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_same_bytes_under_a_fixed_clock():
    assert generate(3000, seed=7, bad_ratio=0.1) == generate(3000, seed=7, bad_ratio=0.1)


def test_batches_and_single_messages_give_the_same_stream():
    single = TrafficGenerator(seed=7, clock=fixed_clock)
    assert [single.next_message() for _ in range(500)] == generate(500, seed=7)


def test_different_seeds_give_different_traffic_and_ibans():
    first, second = TrafficGenerator(seed=1), TrafficGenerator(seed=2)
    assert generate(100, seed=1) != generate(100, seed=2)
    assert first.customer_iban("CUST-001") != second.customer_iban("CUST-001")


def test_without_a_seed_one_is_chosen_and_named_in_the_transaction_ids():
    generator = TrafficGenerator()
    assert generator.seed > 0
    tx = transactions(generator, 1)[0]
    assert tx.transaction_id == f"TX-{generator.seed}-1"


def test_timestamps_come_from_the_clock_in_iso_8601_utc():
    moments = iter([FIXED, FIXED + timedelta(seconds=1)])
    generator = TrafficGenerator(seed=3, clock=lambda: next(moments))
    first, second = (json.loads(generator.next_message()[1]) for _ in range(2))
    assert first["timestamp"] == "2026-11-25T09:30:15.123Z"
    assert second["timestamp"] == "2026-11-25T09:30:16.123Z"
    naive = TrafficGenerator(seed=3, clock=lambda: datetime(2026, 1, 2, 3, 4, 5))
    assert json.loads(naive.next_message()[1])["timestamp"] == "2026-01-02T03:04:05.000Z"


# -- every good message is a valid lab transaction ------------------------------------------


def test_every_message_parses_with_exact_two_decimal_amounts_in_range():
    generator = TrafficGenerator(seed=11, clock=fixed_clock)
    parsed = transactions(generator, 20_000)
    for tx in parsed:
        assert isinstance(tx.amount, Decimal)
        assert tx.amount.as_tuple().exponent == -2
        assert Decimal("0.01") <= tx.amount <= Decimal("1000000")
        assert 0 <= tx.risk_score <= 100
        assert tx.timestamp == FIXED.replace(microsecond=123000)
        assert tx.description
    ids = [tx.transaction_id for tx in parsed]
    assert ids == [f"TX-11-{n}" for n in range(1, 20_001)]


def test_amounts_in_the_json_are_exact_decimal_literals():
    for _, value in generate(2000, seed=5):
        literal = re.search(rb'"amount":([0-9.]+),', value).group(1)  # type: ignore[union-attr]
        assert re.fullmatch(rb"[1-9][0-9]*\.[0-9]{2}|0\.[0-9]{2}", literal), literal
        assert parse_transaction(value).amount == Decimal(literal.decode())  # type: ignore[union-attr]


def test_the_mix_is_realistic():
    parsed = transactions(TrafficGenerator(seed=2, clock=fixed_clock), 20_000)
    types = Counter(tx.type for tx in parsed)
    assert set(types) == set(TransactionType)
    currencies = Counter(tx.currency for tx in parsed)
    assert currencies["EUR"] > 0.8 * len(parsed)
    assert {"USD", "GBP", "CHF"} <= set(currencies)
    statuses = Counter(tx.status for tx in parsed)
    assert statuses[TransactionStatus.COMPLETED] > 0.9 * len(parsed)
    assert {TransactionStatus.PENDING, TransactionStatus.FAILED, TransactionStatus.REJECTED} <= set(statuses)
    amounts = sorted(tx.amount for tx in parsed)
    assert amounts[len(amounts) // 2] < 200            # mostly small
    assert amounts[-1] > 10_000                         # with a rare large tail


# -- a consistent world ---------------------------------------------------------------------


def test_keys_are_the_customer_ids_and_every_customer_shows_up():
    messages = generate(5000, seed=4, customers=20)
    ids = {json.loads(value)["customerId"] for _, value in messages}
    assert ids == {f"CUST-{n:03d}" for n in range(1, 21)}
    for key, value in messages:
        assert key == json.loads(value)["customerId"].encode()


def test_each_customer_owns_one_distinct_french_iban():
    generator = TrafficGenerator(seed=9, customers=300)
    ibans = [generator.customer_iban(f"CUST-{n:03d}") for n in range(1, 301)]
    assert len(set(ibans)) == 300
    assert all(re.fullmatch(r"FR76[0-9]{17}", iban) for iban in ibans)
    assert TrafficGenerator(seed=9, customers=300).customer_iban("CUST-123") == ibans[122]
    with pytest.raises(KeyError):
        generator.customer_iban("CUST-301")


def test_credits_land_on_the_own_iban_and_debits_leave_from_it():
    generator = TrafficGenerator(seed=21, customers=30, clock=fixed_clock)
    ibans = {generator.customer_iban(f"CUST-{n:03d}") for n in range(1, 31)}
    for tx in transactions(generator, 20_000):
        own = generator.customer_iban(tx.customer_id)
        if tx.type in CREDIT_ONLY:
            assert tx.to_account == own and tx.from_account == "BANK"
        elif tx.type in DEBIT_ONLY:
            assert tx.from_account == own and tx.to_account not in ibans
        else:
            assert tx.type in EITHER_WAY
            assert (tx.from_account == own) != (tx.to_account == own)
            counterpart = tx.to_account if tx.from_account == own else tx.from_account
            assert counterpart not in ibans  # never another customer's account: one side per message


def test_each_customer_opens_with_a_completed_deposit():
    generator = TrafficGenerator(seed=8, customers=40, clock=fixed_clock, bad_ratio=0.5)
    first: dict[str, object] = {}
    for _, value in generator.next_batch(3000):
        tx = parse_transaction(value)
        customer_id = tx.customer_id if isinstance(tx, Transaction) else None
        if customer_id is not None and customer_id not in first:
            first[customer_id] = tx
    assert len(first) == 40
    for tx in first.values():
        assert tx.type is TransactionType.DEPOSIT and tx.status is TransactionStatus.COMPLETED  # type: ignore[attr-defined]
        assert tx.description == "Depot initial"  # type: ignore[attr-defined]


def test_the_ledger_reads_every_direction_as_intended():
    """The consumer's rule (core.ledger) sees exactly the credits and debits the generator meant."""
    generator = TrafficGenerator(seed=13, customers=25, clock=fixed_clock)
    ledger = Ledger()
    for tx in transactions(generator, 10_000):
        effect = ledger.apply(tx)
        if tx.status in (TransactionStatus.FAILED, TransactionStatus.REJECTED):
            assert effect is Effect.SKIPPED
        elif tx.to_account == generator.customer_iban(tx.customer_id):
            assert effect is Effect.CREDIT, tx
        else:
            assert effect is Effect.DEBIT, tx


# -- plausible balances (issue 13) ----------------------------------------------------------

#: The lab's mix by kind: (type, credit?) -> weight per 1000 (traffic.py's table, openings aside).
LAB_MIX = {
    (TransactionType.CARD_PAYMENT, False): 300, (TransactionType.PAYMENT, False): 110,
    (TransactionType.BILL_PAYMENT, False): 90, (TransactionType.WITHDRAWAL, False): 90,
    (TransactionType.DEPOSIT, True): 140, (TransactionType.TRANSFER, False): 114,
    (TransactionType.TRANSFER, True): 96, (TransactionType.INTERNATIONAL_TRANSFER, False): 35,
    (TransactionType.INTERNATIONAL_TRANSFER, True): 25,
}
OVERDRAFT_LIMIT = Decimal("-500.00")


@dataclass
class World:
    """200,000 generated transactions run through the real Ledger, with what happened to balances."""

    generator: TrafficGenerator
    parsed: list[Transaction]
    balances_seen: list[Decimal]      # the touched balance after every applied transaction
    credited: Decimal
    debited: Decimal
    ledger: Ledger


@pytest.fixture(scope="module")
def world() -> World:
    generator = TrafficGenerator(seed=2026, customers=50, bad_ratio=0.02, clock=fixed_clock)
    ledger = Ledger()
    parsed, seen = [], []
    credited = debited = Decimal("0.00")
    for _, value in generator.next_batch(200_000):
        tx = parse_transaction(value)
        if isinstance(tx, Rejection):
            continue
        parsed.append(tx)
        effect = ledger.apply(tx)
        if effect is Effect.CREDIT:
            credited += tx.amount
        elif effect is Effect.DEBIT:
            debited += tx.amount
        if effect is not Effect.SKIPPED:
            seen.append(ledger.balance(tx.customer_id, tx.currency))
    return World(generator, parsed, seen, credited, debited, ledger)


def test_balances_stay_plausible_for_a_bank(world):
    """CUST-004 used to reach -192,745.20 EUR within a minute: half of all balances were negative."""
    seen = sorted(world.balances_seen)
    below_limit = sum(1 for balance in seen if balance < OVERDRAFT_LIMIT)
    negative = sum(1 for balance in seen if balance < 0)
    assert below_limit <= len(seen) * 0.001, f"{below_limit} balances below {OVERDRAFT_LIMIT}, lowest {seen[0]}"
    assert negative <= len(seen) * 0.02, f"{negative / len(seen):.1%} of balances negative"
    assert Decimal("1000") < seen[len(seen) // 2] < Decimal("100000")   # a typical current account
    assert seen[int(len(seen) * 0.95)] < Decimal("1000000")
    assert world.credited >= world.debited  # income funds the spending
    finals = [row.balance for row in world.ledger.rows()]
    assert min(finals) >= OVERDRAFT_LIMIT


def test_the_mix_by_kind_is_still_the_labs(world):
    own = {world.generator.customer_iban(customer) for customer in world.generator.customer_ids}
    kinds = Counter((tx.type, tx.to_account in own) for tx in world.parsed if tx.description != "Depot initial")
    total = sum(kinds.values())
    for kind, weight in LAB_MIX.items():
        assert abs(kinds[kind] / total - weight / 1000) < 0.004, (kind, kinds[kind] / total)
    assert set(kinds) == set(LAB_MIX)


def test_debits_the_bank_refuses_are_rejected_and_rare(world):
    statuses = Counter(tx.status for tx in world.parsed)
    assert statuses[TransactionStatus.REJECTED] < 0.025 * len(world.parsed)  # 1% by the lab's mix, plus declines
    assert statuses[TransactionStatus.COMPLETED] > 0.9 * len(world.parsed)


def test_each_customer_earns_the_same_salary_every_time(world):
    salaries: dict[str, set[Decimal]] = {}
    for tx in world.parsed:
        if tx.description == "Virement salaire" and tx.status not in (TransactionStatus.FAILED,
                                                                      TransactionStatus.REJECTED):
            salaries.setdefault(tx.customer_id, set()).add(tx.amount)
    assert len(salaries) == 50
    assert all(len(amounts) == 1 for amounts in salaries.values())
    assert all(Decimal("1800") <= amount <= Decimal("6500") for (amount,) in salaries.values())


# -- malformed messages ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BadKind))
def test_each_bad_kind_is_rejected(kind):
    _, good = TrafficGenerator(seed=1, clock=fixed_clock).next_batch(200)[-1]
    assert isinstance(parse_transaction(good), Transaction)
    assert isinstance(parse_transaction(spoil(good, kind)), Rejection)


def test_bad_ratio_mixes_every_rejection_reason_at_about_that_share():
    generator = TrafficGenerator(seed=5, bad_ratio=0.2, clock=fixed_clock)
    messages = generator.next_batch(10_000)
    parsed = [parse_transaction(value) for _, value in messages]
    rejected = [item for item in parsed if isinstance(item, Rejection)]
    assert len(rejected) == generator.bad_generated
    assert 1700 < len(rejected) < 2300
    assert {item.reason for item in rejected} == set(RejectionReason)
    customers = {f"CUST-{n:03d}".encode() for n in range(1, 51)}
    assert {key for key, _ in messages} <= customers  # bad ones stay keyed by a customer too


def test_no_bad_messages_by_default():
    generator = TrafficGenerator(seed=5, clock=fixed_clock)
    transactions(generator, 5000)
    assert generator.bad_generated == 0


@pytest.mark.parametrize("options", [{"customers": 0}, {"bad_ratio": -0.1}, {"bad_ratio": 1.5}, {"seed": -1}])
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError):
        TrafficGenerator(**options)


# -- the command's pure parts ---------------------------------------------------------------


def test_profiles_are_the_lab_scenarios():
    assert PROFILES == {"normal": 100, "peak": 300, "black-friday": 1000}


def parse_produce_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    produce_command.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("argv", "rate"), [
    ((), 100), (("--profile", "black-friday"), 1000), (("--rate", "0"), 0),
    (("--profile", "peak", "--rate", "42"), 42),
])
def test_rate_comes_from_rate_then_profile_then_the_normal_profile(argv, rate):
    assert produce_command.resolve_rate(parse_produce_flags(*argv)) == rate


@pytest.mark.parametrize("argv", [("--rate", "-1"), ("--count", "0"), ("--duration", "0"),
                                  ("--bad-ratio", "2"), ("--customers", "0"), ("--profile", "cyber-monday")])
def test_bad_flags_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse_produce_flags(*argv)


def test_summary_names_totals_partitions_and_the_first_failure():
    clean = ProduceReport(sent=1000, delivered=1000, failed=0, first_error=None,
                          per_partition={0: 400, 3: 600}, seconds=2.0)
    text = produce_command.summary(clean, "banking.transactions")
    assert "1,000 of 1,000" in text and "500 tx/s" in text and "P0=400 P3=600" in text
    assert "delivery failures: 0" in text
    failed = ProduceReport(sent=10, delivered=7, failed=3, first_error="Local: Message timed out",
                           per_partition={1: 7}, seconds=1.0)
    assert "delivery failures: 3 (first: Local: Message timed out)" in produce_command.summary(failed, "t")


def test_the_command_exits_non_zero_when_a_message_failed(monkeypatch, capsys):
    from balance_tui.config import load_settings

    failing = ProduceReport(sent=5, delivered=4, failed=1, first_error="Broker: boom", per_partition={0: 4},
                            seconds=0.1)
    monkeypatch.setattr(produce_command, "wait_for_broker", lambda config, timeout: None)
    monkeypatch.setattr(produce_command, "produce", lambda *args, **kwargs: failing)
    args = parse_produce_flags("--count", "5")
    assert produce_command.run(args, load_settings({})) == 1
    assert "delivery failures: 1 (first: Broker: boom)" in capsys.readouterr().err
    monkeypatch.setattr(produce_command, "produce", lambda *args, **kwargs: ProduceReport(sent=5, delivered=5))
    assert produce_command.run(args, load_settings({})) == 0


# -- rate control (a simulated clock: no sleeps, no timing) ---------------------------------


def drive(bucket: TokenBucket, start: float, seconds: float, tick: float) -> list[tuple[float, int]]:
    """Ask the bucket every `tick` seconds; (time, messages allowed) for every ask that got some."""
    taken = []
    for step in range(1, round(seconds / tick) + 1):
        now = start + step * tick
        allowed = bucket.take(now)
        if allowed:
            taken.append((now, allowed))
    return taken


def test_token_bucket_is_smooth_at_the_lab_rates():
    bucket = TokenBucket(100, now=0.0)
    taken = drive(bucket, 0.0, 10.0, tick=0.001)
    assert sum(n for _, n in taken) in (1000, 1001)   # 100/s over 10 s, plus the first one at once
    assert max(n for _, n in taken) == 1              # one at a time: never 100 at the top of a second
    for second in range(10):
        in_window = sum(n for t, n in taken if second + 0.5 < t <= second + 0.6)
        assert in_window in (9, 10, 11)               # evenly spread inside each second


def test_token_bucket_does_not_catch_up_after_a_stall():
    bucket = TokenBucket(1000, now=0.0)
    bucket.take(0.0)
    assert bucket.take(30.0) == bucket.capacity == 50  # 50 ms worth, not 30,000 messages
    assert bucket.take(30.0) == 0
    assert bucket.wait() == pytest.approx(0.001)


def test_token_bucket_with_slow_asks_hands_out_what_accumulated():
    bucket = TokenBucket(300, now=0.0)
    taken = drive(bucket, 0.0, 2.0, tick=0.02)
    assert sum(n for _, n in taken) in (600, 601)
    assert max(n for _, n in taken) <= 7


def test_token_bucket_needs_a_positive_rate():
    with pytest.raises(ValueError):
        TokenBucket(0, now=0.0)


def poll_milliseconds(timeout: float) -> int:
    """What confluent-kafka's Producer.poll() waits for `timeout`: whole milliseconds, truncated."""
    return int(timeout * 1000)


@pytest.mark.parametrize("seconds", [1e-7, 0.0004, 0.0009, 0.000999, 0.001, 0.0011, 0.0049, 0.999e-3, 1.001, 0.1])
def test_poll_timeout_rounds_up_to_a_whole_millisecond_never_down_to_zero(seconds):
    waited = poll_milliseconds(poll_timeout(seconds))
    assert waited >= 1                       # poll(0.0009) used to return at once: a busy wait
    assert waited * 1e-3 >= seconds - 1e-9   # never shorter than asked
    assert waited * 1e-3 < seconds + 1e-3    # and at most one millisecond longer


def test_poll_timeout_of_nothing_is_nothing():
    assert poll_timeout(0.0) == 0.0
    assert poll_timeout(-1.0) == 0.0


@pytest.mark.parametrize("rate", [100, 300, 1000, 5000])
def test_the_throttled_loop_never_polls_with_zero_while_no_token_is_due_and_keeps_the_rate(rate):
    """The produce loop's pacing on a simulated clock: every wait really waits, and no token is lost."""
    bucket = TokenBucket(rate, now=0.0)
    elapsed_ms, sent, waits = 0, 0, []
    while elapsed_ms < 10_000:
        now = elapsed_ms / 1000
        taken = bucket.take(now)
        if taken:
            sent += taken
            continue
        wait = throttled_wait(bucket, now, (10.0, now + 0.5))
        assert poll_milliseconds(wait) >= 1, f"poll({wait}) returns at once at {now}"
        waits.append(wait)
        elapsed_ms += poll_milliseconds(wait)
    sent += bucket.take(10.0)  # the loop's last round at the deadline
    assert sent in (rate * 10, rate * 10 + 1)  # 10 s worth (plus the first one at once): none lost
    assert min(waits) >= MIN_WAIT_SECONDS - 1e-9 or rate * MIN_WAIT_SECONDS < 1
    assert max(waits) <= MAX_WAIT_SECONDS + 1e-3


def test_the_throttled_wait_stops_at_the_nearest_limit():
    bucket = TokenBucket(1, now=0.0)
    bucket.take(0.0)
    assert poll_milliseconds(throttled_wait(bucket, 0.0, (0.02, None))) == 20  # the deadline, not 1 s
    assert poll_milliseconds(throttled_wait(bucket, 0.0)) == MAX_WAIT_SECONDS * 1000


def test_the_status_line_shows_failures_and_a_broker_that_does_not_answer():
    report = ProduceReport(sent=100, delivered=60, failed=30, first_error="Local: Purged in queue",
                           last_error="Local: Message timed out", per_partition={0: 60}, seconds=1.0,
                           unreachable_seconds=4.2, reconnects=1)
    text = produce_command.status_text(report, rate=100)
    assert text.startswith("broker unreachable for 4s, paused")
    assert "failed 30 (last: Local: Message timed out)" in text
    assert "broker restarts 1" in text
    healthy = produce_command.status_text(ProduceReport(sent=10, delivered=8, per_partition={1: 8}, seconds=1), 10)
    assert "failed" not in healthy and "unreachable" not in healthy and "in flight 2" in healthy


def test_summary_counts_broker_restarts():
    report = ProduceReport(sent=10, delivered=7, failed=3, first_error="Local: Purged in queue",
                           per_partition={1: 7}, seconds=1.0, reconnects=2)
    assert "broker restarts: 2" in produce_command.summary(report, "t")
    assert "broker restarts" not in produce_command.summary(ProduceReport(sent=1, delivered=1), "t")
    away = ProduceReport(sent=5, delivered=2, failed=3, first_error="x", seconds=9.0, unreachable_seconds=6.4)
    assert "the broker was unreachable for the last 6s" in produce_command.summary(away, "t")


def test_reopened_accounts_start_again_with_an_opening_deposit():
    generator = TrafficGenerator(seed=6, customers=10, clock=fixed_clock)
    transactions(generator, 500)
    generator.reopen_accounts()
    first: dict[str, Transaction] = {}
    for tx in transactions(generator, 500):
        first.setdefault(tx.customer_id, tx)
    assert len(first) == 10
    assert {tx.description for tx in first.values()} == {"Depot initial"}
