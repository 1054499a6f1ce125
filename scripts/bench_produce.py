"""Benchmark `balance-tui produce --rate 0`: transactions per second into an embedded broker.

Starts its own Tansu broker on a free port, produces `--count` transactions
`--runs` times (a fresh 6-partition topic each run, in-process `produce()`, the same
code path as the CLI), and prints best and median delivered tx/s plus a markdown
table row for docs/performance.md. `--profile` adds a cProfile run of the hot path.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time
import uuid
from datetime import date

from balance_tui.config import load_settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.producer import ProduceReport, produce


def one_run(bootstrap: str, count: int, customers: int, seed: int) -> ProduceReport:
    settings = load_settings({"bootstrap_servers": bootstrap, "topic": f"bench-produce-{uuid.uuid4().hex[:8]}"})
    generator = TrafficGenerator(customers=customers, seed=seed)
    report = produce(settings, generator, rate=0, count=count, duration=None)
    if report.failed or report.delivered != count:
        sys.exit(f"run failed: delivered {report.delivered}/{count}, first error: {report.first_error}")
    return report


def generation_only(count: int, customers: int) -> float:
    """tx/s of the generator alone (no Kafka), to separate Python-side cost from the client's."""
    generator = TrafficGenerator(customers=customers, seed=1)
    started = time.perf_counter()
    for _ in range(count // 1000):
        generator.next_batch(1000)
    return (count // 1000 * 1000) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500_000, help="transactions per run (default 500000)")
    parser.add_argument("--runs", type=int, default=3, help="number of runs (default 3)")
    parser.add_argument("--customers", type=int, default=50, help="customers (default 50)")
    parser.add_argument("--profile", action="store_true", help="also profile one run with cProfile")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
          file=sys.stderr)
    rates: list[float] = []
    with TansuBroker(port=0) as broker:
        for run in range(1, args.runs + 1):
            report = one_run(broker.bootstrap, args.count, args.customers, seed=run)
            rates.append(report.rate)
            print(f"run {run}: {report.delivered:,} tx in {report.seconds:.2f}s = {report.rate:,.0f} tx/s",
                  file=sys.stderr)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            one_run(broker.bootstrap, args.count, args.customers, seed=99)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
            print(out.getvalue(), file=sys.stderr)
    generated = generation_only(args.count, args.customers)
    best, median = max(rates), statistics.median(rates)
    print(f"best {best:,.0f} tx/s, median {median:,.0f} tx/s over {args.runs} runs; "
          f"generator alone {generated:,.0f} tx/s", file=sys.stderr)
    # The row for docs/performance.md.
    print(f"| {date.today().isoformat()} | `scripts/bench produce` ({args.count:,} tx, {args.customers} customers, "
          f"--rate 0) | {os.cpu_count()} cores | {best:,.0f} | {median:,.0f} | {generated:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
