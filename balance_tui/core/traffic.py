"""Lab-shaped bank transactions, generated deterministically from a seed (no Kafka here).

The world is small and consistent: customers CUST-001 ... CUST-NNN each own one
IBAN (FR76..., derived from the seed). Credits (deposits, incoming transfers) land
on that IBAN (`toAccount`); debits (payments, withdrawals, card and bill payments,
outgoing transfers) leave from it (`fromAccount`). Counterparts are external IBANs,
"BANK" (cash) or merchant accounts. A customer's first transaction is always an
opening deposit ("Depot initial", like the lab's BAL-001), so a consumer that learns
accounts from the transactions themselves (`core.ledger`) knows the customer's IBAN
before any transfer names it.

Balances stay plausible for a bank. The generator keeps what each customer holds per
currency, exactly as the consumer's ledger will compute it (only transactions the ledger
applies: not Failed or Rejected ones, not malformed messages), and sizes debits against it.
The kind of each transaction is drawn as before, so the mix by kind (the weights below)
is unchanged; only amounts, the account a debit is paid from, and refusals follow the money:

* income funds spending: salaries (each customer's own monthly amount, a third of incoming
  transfers), deposits and incoming transfers bring in more than everyday spending takes;
* everyday payments (card, online, bills) may overdraw the main (EUR) account by at most
  OVERDRAFT_CENTS; beyond that the card is declined (status Rejected, which the ledger skips);
* nothing else overdraws: a larger debit moves half of what the account holds, or is declined
  if that is below the kind's smallest amount; a foreign-currency debit its currency cannot
  cover is paid from the main account;
* a transfer out from an account above the customer's comfortable balance (COMFORT_CENTS)
  also moves the excess to savings, so a house sale ("Virement notaire") does not stay forever.

Over 200,000 transactions (50 customers) about 0.3% of balances seen are negative, never
below -500.00, and about 1.4% of transactions are Rejected (1% by the lab's status mix).

Payloads are built as JSON bytes from a template, not through pydantic: this is the
hot path of `balance-tui produce --rate 0` (see docs/performance.md). The output
parses with `balance_tui.core.transaction.parse_transaction`; the unit tests check it.

Determinism: every random choice is drawn from one `random.Random(seed)` with
`random()` only (whose sequence Python keeps stable), so the same seed, customer
count and bad ratio give the same messages in the same order. Timestamps are the
production wall-clock time (what end-to-end latency needs); pass a fixed `clock`
to make the payloads byte-identical.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum

from balance_tui.core.transaction import TransactionStatus, TransactionType

#: The lab's load scenarios, in transactions per second.
PROFILES: dict[str, int] = {"normal": 100, "peak": 300, "black-friday": 1000}

#: Amounts are drawn in cents within these bounds (0.01 .. 1,000,000.00).
MIN_AMOUNT_CENTS = 1
MAX_AMOUNT_CENTS = 100_000_000

#: Everyday payments (card, online, bills) may overdraw the main account, in EUR, by this much;
#: nothing else may overdraw any account (see the module docstring).
OVERDRAFT_CENTS = 50_000

#: Each customer's comfortable balance is drawn between these (log-uniform), and the monthly
#: salary between the next two; transfers out sweep what exceeds the comfortable balance to savings.
COMFORT_CENTS = (500_000, 5_000_000)
SALARY_CENTS = (180_000, 650_000)

#: The account currency: a debit the customer's foreign-currency balance cannot cover is paid from it.
MAIN_CURRENCY = b"EUR"

#: Largest seed picked when none is given (it shows up in every transaction id).
_MAX_RANDOM_SEED = 2**31 - 1


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the generator's default clock)."""
    return datetime.now(UTC)


# -- murmur2: where a key lands -----------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (Java `Utils.murmur2`), as a signed 32-bit int."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x1_0000_0000 if h & 0x8000_0000 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner (and librdkafka `murmur2_random`) picks for `key`."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# -- malformed messages -------------------------------------------------------------------


class BadKind(str, Enum):
    """The kinds of deliberately malformed messages mixed in by `bad_ratio`: one per way a
    consumer must refuse a message (every `RejectionReason` of `parse_transaction`)."""

    INVALID_JSON = "invalid-json"                # truncated JSON text
    WRONG_SHAPE = "wrong-shape"                  # valid JSON, but an array instead of an object
    MISSING_FIELD = "missing-field"              # a transaction without its amount
    INVALID_FIELD = "invalid-field"              # riskScore given as a word
    AMOUNT_OUT_OF_RANGE = "amount-out-of-range"  # a negative amount
    UNKNOWN_TYPE = "unknown-type"                # type 99
    UNKNOWN_STATUS = "unknown-status"            # status 9
    NOT_UTF8 = "not-utf8"                        # bytes that do not decode as UTF-8


_BAD_KINDS = tuple(BadKind)


# -- the world ---------------------------------------------------------------------------

#: Field order follows the lab's examples. `%b` slots take bytes, `%d` ints.
_TEMPLATE = (
    b'{"transactionId":"TX-%d-%d","fromAccount":"%b","toAccount":"%b","amount":%d.%02d,'
    b'"currency":"%b","type":%d,"description":"%b","customerId":"%b","timestamp":"%b",'
    b'"riskScore":%d,"status":%d}'
)

# Weighted tables are lists indexed by int(random() * len): one draw, no bisect.
_CURRENCIES_DOMESTIC = [b"EUR"] * 90 + [b"USD"] * 4 + [b"GBP"] * 3 + [b"CHF"] * 3
_CURRENCIES_INTERNATIONAL = [b"EUR"] * 40 + [b"USD"] * 25 + [b"GBP"] * 20 + [b"CHF"] * 15
_STATUSES = (
    [int(TransactionStatus.COMPLETED)] * 940
    + [int(TransactionStatus.PENDING)] * 30
    + [int(TransactionStatus.FAILED)] * 20
    + [int(TransactionStatus.REJECTED)] * 10
)

_MERCHANTS_CARD = [
    (b"Paiement carte Carrefour", b"MERCHANT-CARREFOUR"),
    (b"Paiement carte Monoprix", b"MERCHANT-MONOPRIX"),
    (b"Paiement carte SNCF", b"MERCHANT-SNCF"),
    (b"Paiement carte Boulangerie Paul", b"MERCHANT-PAUL"),
    (b"Paiement carte Caf\xc3\xa9 de Flore", b"MERCHANT-CAFEDEFLORE"),  # UTF-8 on purpose
    (b"Paiement carte Fnac", b"MERCHANT-FNAC"),
]
_MERCHANTS_ONLINE = [
    (b"Paiement en ligne Amazon", b"MERCHANT-AMAZON"),
    (b"Paiement en ligne Cdiscount", b"MERCHANT-CDISCOUNT"),
    (b"Paiement en ligne Airbnb", b"MERCHANT-AIRBNB"),
    (b"Paiement Uber", b"MERCHANT-UBER"),
]
_BILLERS = [
    (b"Facture EDF", b"MERCHANT-EDF"),
    (b"Facture Orange", b"MERCHANT-ORANGE"),
    (b"Facture eau Veolia", b"MERCHANT-VEOLIA"),
    (b"Pr\xc3\xa9l\xc3\xa8vement assurance habitation", b"MERCHANT-AXA"),
]


class _Kind:
    """One kind of transaction: its type, direction, counterparts and amount range."""

    __slots__ = (
        "credit",
        "currencies",
        "log_low",
        "log_span",
        "low_cents",
        "overdraft_cents",
        "pairs",
        "risk_base",
        "round_cents",
        "sweeps",
        "type",
    )

    def __init__(self, type_: TransactionType, credit: bool, pairs: list[tuple[bytes, bytes]],
                 low: float, high: float, *, round_cents: int = 1,
                 currencies: list[bytes] = _CURRENCIES_DOMESTIC, risk_base: int = 0,
                 everyday: bool = False, sweeps: bool = False) -> None:
        self.type = int(type_)
        self.credit = credit
        self.pairs = pairs                      # (description, counterpart account)
        self.log_low = math.log(low * 100)      # amounts are log-uniform: mostly small
        self.log_span = math.log(high * 100) - self.log_low
        self.low_cents = round(low * 100)
        self.round_cents = round_cents
        self.currencies = currencies
        self.risk_base = risk_base
        self.overdraft_cents = OVERDRAFT_CENTS if everyday else 0
        """How far below zero this debit may take the main (EUR) account."""
        self.sweeps = sweeps
        """A transfer out that also moves what exceeds the customer's comfortable balance to savings."""


def _log_uniform_cents(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(math.log(low) + (math.log(high) - math.log(low)) * rng.random()))


def _iban_pool(rng: random.Random, prefixes: list[str], count: int, digits: int) -> list[bytes]:
    pool: list[bytes] = []
    for i in range(count):
        number = int(rng.random() * 10**digits)
        pool.append(f"{prefixes[i % len(prefixes)]}{number:0{digits}d}".encode())
    return pool


class TrafficGenerator:
    """Produces (key, value) pairs: key = customerId, value = one transaction as JSON bytes."""

    def __init__(self, customers: int = 50, seed: int | None = None, bad_ratio: float = 0.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        if not 0.0 <= bad_ratio <= 1.0:
            raise ValueError("bad_ratio must be between 0 and 1")
        if seed is None:
            seed = random.SystemRandom().randint(1, _MAX_RANDOM_SEED)
        if seed < 0:
            raise ValueError("seed must not be negative")
        self.seed = seed
        self.customers = customers
        self.bad_ratio = bad_ratio
        self.generated = 0
        """Messages handed out so far (good and bad); the next transaction id's number."""
        self.bad_generated = 0
        self._clock = clock
        self._random = random.Random(seed).random

        # The world comes from its own stream, so it never depends on how much traffic was drawn.
        world = random.Random(f"balance-tui-world-{seed}")
        self.customer_ids = [f"CUST-{n:03d}" for n in range(1, customers + 1)]
        self._ibans: dict[str, str] = {}
        used: set[int] = set()
        for customer_id in self.customer_ids:
            number = int(world.random() * 10**9)
            while number in used:           # one IBAN per customer, never shared
                number = int(world.random() * 10**9)
            used.add(number)
            self._ibans[customer_id] = f"FR7630001000{number:09d}"
        # (key bytes, customerId bytes, own IBAN bytes): the per-customer constant parts.
        self._customers = [(cid.encode(), cid.encode(), self._ibans[cid].encode()) for cid in self.customer_ids]

        # Counterparts at other banks: bank codes other than the customers' 30001, so they never collide.
        external = _iban_pool(world, ["FR7610107000", "FR7620041000", "FR7630004000", "FR7630003000"], 64, 9)
        foreign = _iban_pool(world, ["DE8937040044", "GB29NWBK6016", "CH9300762011", "ES9121000418",
                                     "IT60X0542811"], 40, 10)
        employers = external[:8]
        kinds_by_weight = [
            # (weight per 1000, kind)
            (300, _Kind(TransactionType.CARD_PAYMENT, False, _MERCHANTS_CARD, 0.5, 200, risk_base=0,
                        everyday=True)),
            (110, _Kind(TransactionType.PAYMENT, False, _MERCHANTS_ONLINE, 5, 800, risk_base=5, everyday=True)),
            (90, _Kind(TransactionType.BILL_PAYMENT, False, _BILLERS, 15, 400, risk_base=0, everyday=True)),
            (90, _Kind(TransactionType.WITHDRAWAL, False, [(b"Retrait DAB", b"BANK")], 20, 800,
                       round_cents=1000, risk_base=5)),
            (140, _Kind(TransactionType.DEPOSIT, True,
                        [(b"Depot especes", b"BANK"), (b"Depot cheque", b"BANK"),
                         (b"D\xc3\xa9p\xc3\xb4t guichet", b"BANK")], 20, 3000, risk_base=0)),
            (110, _Kind(TransactionType.TRANSFER, False,
                        [(d, iban) for d in (b"Virement loyer", b"Virement \xc3\xa9pargne", b"Virement ami")
                         for iban in external], 10, 4000, risk_base=10, sweeps=True)),
            (92, _Kind(TransactionType.TRANSFER, True,
                       [(d, iban) for d in (b"Virement re\xc3\xa7u", b"Remboursement") for iban in external]
                       + [(b"Virement salaire", iban) for iban in employers] * 8, 10, 5000, risk_base=5)),
            (35, _Kind(TransactionType.INTERNATIONAL_TRANSFER, False,
                       [(b"Virement international", iban) for iban in foreign], 50, 20_000,
                       currencies=_CURRENCIES_INTERNATIONAL, risk_base=25)),
            (25, _Kind(TransactionType.INTERNATIONAL_TRANSFER, True,
                       [(b"Virement international re\xc3\xa7u", iban) for iban in foreign], 50, 20_000,
                       currencies=_CURRENCIES_INTERNATIONAL, risk_base=20)),
            # The rare large movements that fraud rules look at, up to the 1,000,000.00 ceiling
            # (a house sold, a house bought): one goes out only from a customer who has the money.
            (4, _Kind(TransactionType.TRANSFER, False,
                      [(b"Virement important", iban) for iban in external + foreign], 10_000, 1_000_000,
                      risk_base=40)),
            (4, _Kind(TransactionType.TRANSFER, True,
                      [(b"Virement notaire", iban) for iban in external], 10_000, 1_000_000, risk_base=30)),
        ]
        assert sum(weight for weight, _ in kinds_by_weight) == 1000
        for _, kind in kinds_by_weight:
            assert int(math.exp(kind.log_low)) >= MIN_AMOUNT_CENTS and \
                int(math.exp(kind.log_low + kind.log_span)) <= MAX_AMOUNT_CENTS
        self._kinds: list[_Kind] = [kind for weight, kind in kinds_by_weight for _ in range(weight)]
        # A customer's first transaction is the lab's "Depot initial" (BANK -> own IBAN, completed),
        # so a consumer learns the customer's account before any transfer names it.
        self._opening = _Kind(TransactionType.DEPOSIT, True, [(b"Depot initial", b"BANK")], 500, 5000,
                              currencies=[b"EUR"])
        self._opened = [False] * customers
        # What each customer holds, per currency, in cents, as the consumer's ledger will compute it
        # (debits are sized or refused against it); comfortable balance and salary from the world.
        self._held: list[dict[bytes, int]] = [{} for _ in range(customers)]
        self._comfort = [_log_uniform_cents(world, *COMFORT_CENTS) for _ in range(customers)]
        self._salary = [_log_uniform_cents(world, *SALARY_CENTS) for _ in range(customers)]
        self._salary_description = b"Virement salaire"

    # -- public API ------------------------------------------------------------------------

    def customer_iban(self, customer_id: str) -> str:
        """The IBAN `customer_id` owns; KeyError for a customer outside this world."""
        return self._ibans[customer_id]

    def reopen_accounts(self) -> None:
        """Make every customer's next transaction an opening deposit again.

        For a new, empty topic (a restarted in-memory broker): a consumer reading it learns
        each customer's account from that deposit before any transfer names it.
        """
        self._opened = [False] * self.customers
        self._held = [{} for _ in range(self.customers)]

    def next_message(self) -> tuple[bytes, bytes]:
        """One (key, value): key is the customerId, value the transaction JSON (or a malformed one)."""
        return self.next_batch(1)[0]

    def next_batch(self, size: int) -> list[tuple[bytes, bytes]]:  # noqa: PLR0915 - hot path, one frame per batch (measured)
        """`size` consecutive messages, all stamped with one clock reading (the hot path)."""
        # One frame, everything in locals: moving the ledger update into a method made 100k messages
        # about 7% slower (one call per message).
        timestamp = _format_timestamp(self._clock())
        r = self._random
        customers = self._customers
        n_customers = len(customers)
        kinds = self._kinds
        n_kinds = len(kinds)
        statuses = _STATUSES
        n_statuses = len(statuses)
        template = _TEMPLATE
        seed = self.seed
        bad_ratio = self.bad_ratio
        exp = math.exp
        opened = self._opened
        held_by = self._held
        comfort = self._comfort
        salary = self._salary
        salary_description = self._salary_description
        main = MAIN_CURRENCY
        completed = int(TransactionStatus.COMPLETED)
        rejected = int(TransactionStatus.REJECTED)
        first_skipped = _FIRST_SKIPPED_STATUS
        max_cents = MAX_AMOUNT_CENTS
        afford = _afford
        number = self.generated
        out: list[tuple[bytes, bytes]] = []
        append = out.append
        for _ in range(size):
            number += 1
            index = int(r() * n_customers)
            key, customer_id, iban = customers[index]
            opening = not opened[index]
            if opening:
                opened[index] = True
                kind = self._opening
            else:
                kind = kinds[int(r() * n_kinds)]
            description, counterpart = kind.pairs[int(r() * len(kind.pairs))]
            log_amount = kind.log_low + kind.log_span * r()
            # Within [MIN, MAX] by construction of each kind's bounds (checked in __init__).
            cents = int(exp(log_amount))
            if kind.round_cents != 1:
                cents = max(kind.round_cents, cents - cents % kind.round_cents)
            currencies = kind.currencies
            currency = currencies[int(r() * len(currencies))]
            # Risk grows with the order of magnitude above 10.00 (log of 1000 cents), plus noise.
            risk = min(100, kind.risk_base + max(0, int((log_amount - 6.9) * 6)) + int(r() * 10))
            status = completed if opening else statuses[int(r() * n_statuses)]
            spoiled = bad_ratio and not opening and r() < bad_ratio
            # Only what the consumer's ledger will apply moves money (docs/ledger.md): not a
            # failed or rejected transaction, not a malformed message.
            if not spoiled and status < first_skipped:
                held = held_by[index]
                if kind.credit:
                    if description == salary_description:
                        cents = salary[index]
                    held[currency] = held.get(currency, 0) + cents
                else:
                    balance = held.get(currency, 0)
                    if kind.sweeps and balance - cents > comfort[index]:
                        # More than the customer needs on the account: the excess goes to savings.
                        cents = min(max_cents, balance - comfort[index])
                    elif cents > balance + (kind.overdraft_cents if currency == main else 0):
                        cents, currency, status = afford(kind, cents, currency, held, status)
                        balance = held.get(currency, 0)
                    if status != rejected:
                        held[currency] = balance - cents
            if kind.credit:
                source, target = counterpart, iban
            else:
                source, target = iban, counterpart
            value = template % (seed, number, source, target, cents // 100, cents % 100, currency,
                                kind.type, description, customer_id, timestamp, risk, status)
            if spoiled:
                value = self._spoil(value, r)
            append((key, value))
        self.generated = number
        return out

    # -- malformed messages ------------------------------------------------------------------

    def _spoil(self, value: bytes, r: Callable[[], float]) -> bytes:
        self.bad_generated += 1
        kind = _BAD_KINDS[int(r() * len(_BAD_KINDS))]
        return spoil(value, kind)


#: Statuses from this one on (Failed, Rejected) are skipped by the ledger.
_FIRST_SKIPPED_STATUS = int(TransactionStatus.FAILED)
assert int(TransactionStatus.REJECTED) > _FIRST_SKIPPED_STATUS


def _afford(kind: _Kind, cents: int, currency: bytes, held: dict[bytes, int], status: int
            ) -> tuple[int, bytes, int]:
    """A debit larger than the account allows: the (amount, currency, status) that goes through.

    A foreign-currency debit its currency cannot cover is tried on the main account. An
    everyday payment beyond the overdraft is declined (Rejected, which the ledger skips);
    anything else is scaled down to half of what the account holds, as a customer who
    cannot pay the whole sum moves part of it, or declined if that is below the kind's
    smallest amount. So no account is ever emptied by one debit.
    """
    for account in (currency, MAIN_CURRENCY) if currency != MAIN_CURRENCY else (currency,):
        balance = held.get(account, 0)
        if kind.overdraft_cents:
            if cents <= balance + (kind.overdraft_cents if account == MAIN_CURRENCY else 0):
                return cents, account, status
            continue
        if cents <= balance:
            return cents, account, status
        part = balance // 2
        if kind.round_cents != 1:
            part -= part % kind.round_cents
        if part >= kind.low_cents:
            return part, account, status
    return cents, currency, _REJECTED


_REJECTED = int(TransactionStatus.REJECTED)


def spoil(value: bytes, kind: BadKind) -> bytes:
    """Turn a good transaction payload (as `next_batch` builds it) into a malformed one."""
    if kind is BadKind.INVALID_JSON:
        return value[: len(value) // 2]
    if kind is BadKind.WRONG_SHAPE:
        return b"[" + value + b"]"
    if kind is BadKind.MISSING_FIELD:
        start = value.index(b',"amount":')
        return value[:start] + value[value.index(b",", start + 1):]
    if kind is BadKind.INVALID_FIELD:
        return _replace_field(value, b"riskScore", b'"high"')
    if kind is BadKind.AMOUNT_OUT_OF_RANGE:
        return value.replace(b'"amount":', b'"amount":-', 1)
    if kind is BadKind.UNKNOWN_TYPE:
        return _replace_field(value, b"type", b"99")
    if kind is BadKind.UNKNOWN_STATUS:
        return _replace_field(value, b"status", b"9")
    if kind is BadKind.NOT_UTF8:
        return b"\xff\xfe" + value[:40] + b"\xc3\x28"
    raise ValueError(f"unknown bad kind {kind!r}")


def _replace_field(value: bytes, name: bytes, literal: bytes) -> bytes:
    """`value` with the JSON number of field `name` replaced by `literal` (our template only)."""
    start = value.index(b'"' + name + b'":') + len(name) + 3
    end = start
    while value[end] in b"-0123456789.":
        end += 1
    return value[:start] + literal + value[end:]


def _format_timestamp(moment: datetime) -> bytes:
    """ISO 8601 UTC with milliseconds and a Z, like the lab's "2026-02-08T22:00:00Z"."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment.isoformat(timespec="milliseconds") + "Z").encode()
