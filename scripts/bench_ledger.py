"""Benchmark: the ledger alone at bank scale, and what the garbage collector costs it.

Generates `--count` lab transactions over `--customers` customers, parses them all first, then
times `Ledger.apply` over them in one loop with the app's collector settings
(`tune_garbage_collector`), and times every collection through `gc.callbacks`. No Kafka, no UI:
the worker's hot path without its client.

Usage: python scripts/bench_ledger.py [--customers 1000000] [--count 1500000]
(with `PYTHONPATH=<another checkout>` it measures that checkout's ledger, for A/B runs)
"""

from __future__ import annotations

import argparse
import time

from bench_dashboard import CollectionTimer

from balance_tui.core.ledger import Ledger
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.core.transaction import Transaction, parse_transaction
from balance_tui.kafka.worker import tune_garbage_collector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--count", type=int, default=1_500_000)
    args = parser.parse_args()
    generator = TrafficGenerator(customers=args.customers, seed=7)
    transactions = [parse_transaction(value) for _key, value in generator.next_batch(args.count)]
    assert all(isinstance(tx, Transaction) for tx in transactions)
    tune_garbage_collector()  # freezes what is here so far (the parsed input): only the ledger's objects count
    timer = CollectionTimer().start()
    ledger = Ledger()
    started = time.perf_counter()
    for offset, tx in enumerate(transactions):
        ledger.apply(tx, 0, offset)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    durations = timer.stop()
    collections = ", ".join(f"generation {g}: {len(durations[g])} in {sum(durations[g]):.2f} s" for g in range(3))
    print(f"{args.count / elapsed:,.0f} tx/s applied, {len(ledger.customers):,} customers; collections: {collections}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
